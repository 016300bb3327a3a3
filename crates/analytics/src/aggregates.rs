//! The aggregates and how each patient event changes them, exactly once per event.

use std::collections::{BTreeMap, HashMap, HashSet};

use kit::consumer::{Delivery, Handled, Handler};
use proto::{
    Message as _,
    patients::v1::{Patient, PatientDeactivated, PatientRegistered, PatientUpdated},
};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use time::{Date, OffsetDateTime, macros::format_description};
use uuid::Uuid;

/// Applies batches of patient events to the aggregates.
#[derive(Clone)]
pub struct Aggregates {
    pool: PgPool,
}

/// Why an event of a known type cannot be applied: it is parked, not retried.
struct Poison(String);

impl Aggregates {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Applies `batch` in one transaction of a few statements, whatever its size: the events'
    /// ids are recorded together first, and only those recorded for the first time change the
    /// aggregates, folded per patient and per day (a statement per event made the consumer's
    /// pace a database round trip per event: docs/benchmarks.md, 2026-12-04).
    async fn apply(&self, batch: &[Delivery]) -> Result<Handled, sqlx::Error> {
        let mut handled = Handled::default();
        let mut events = Vec::with_capacity(batch.len());
        for (index, delivery) in batch.iter().enumerate() {
            let envelope = &delivery.envelope;
            let Ok(event_id) = Uuid::parse_str(&envelope.event_id) else {
                handled.poison.push((index, "the event id is not a UUID".to_owned()));
                continue;
            };
            let occurred_at = envelope
                .occurred_at
                .as_ref()
                .and_then(kit::outbox::event_instant)
                .unwrap_or_else(OffsetDateTime::now_utc);
            events.push((index, event_id, occurred_at));
        }
        let mut tx = self.pool.begin().await?;
        let first: Vec<Uuid> = sqlx::query_scalar(
            "INSERT INTO processed_events (event_id, occurred_at)
             SELECT * FROM unnest($1::uuid[], $2::timestamptz[])
             ON CONFLICT DO NOTHING RETURNING event_id",
        )
        .bind(events.iter().map(|(_, id, _)| *id).collect::<Vec<_>>())
        .bind(events.iter().map(|(_, _, at)| *at).collect::<Vec<_>>())
        .fetch_all(&mut *tx)
        .await?;
        let mut first: HashSet<Uuid> = first.into_iter().collect();
        let mut changes = Changes::default();
        for (index, event_id, occurred_at) in events {
            // Taken out as it is used: a second copy in the same batch is a redelivery too.
            if !first.remove(&event_id) {
                metrics::counter!("analytics_duplicate_events_total").increment(1);
                continue;
            }
            let envelope = &batch[index].envelope;
            if let Err(Poison(why)) = changes.add(&envelope.event_type, &envelope.payload, occurred_at) {
                handled.poison.push((index, why));
            }
        }
        changes.write(&mut tx).await?;
        tx.commit().await?;
        Ok(handled)
    }
}

impl Handler for Aggregates {
    async fn handle(&self, batch: &[Delivery]) -> Result<Handled, Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.apply(batch).await?)
    }
}

/// What a batch's new events change, folded: the newest version of each patient, the newest
/// deactivation of each, registrations per day. Every row is version-gated, so writing the
/// patients before the deactivations ends where applying the events one by one would.
#[derive(Default)]
struct Changes {
    patients: HashMap<Uuid, PatientRow>,
    deactivations: HashMap<Uuid, i32>,
    registrations: BTreeMap<Date, i64>,
    latest: Option<OffsetDateTime>,
}

impl Changes {
    /// Adds one event's effect; an event of a known type that cannot be applied is poison.
    fn add(&mut self, event_type: &str, payload: &[u8], occurred_at: OffsetDateTime) -> Result<(), Poison> {
        let undecodable = |e: proto::prost::DecodeError| Poison(format!("undecodable {event_type}: {e}"));
        let row = |patient: &Patient| {
            PatientRow::of(patient).ok_or_else(|| Poison("a patient without a valid id or birth date".into()))
        };
        match event_type {
            "pms.patients.v1.PatientRegistered" => {
                let PatientRegistered { patient } =
                    PatientRegistered::decode(payload).map_err(undecodable)?;
                let patient = patient.ok_or_else(|| Poison("a registration without its patient".into()))?;
                self.keep(row(&patient)?);
                *self.registrations.entry(occurred_at.date()).or_default() += 1;
            }
            "pms.patients.v1.PatientUpdated" => {
                let PatientUpdated { patient } = PatientUpdated::decode(payload).map_err(undecodable)?;
                let patient = patient.ok_or_else(|| Poison("an update without its patient".into()))?;
                self.keep(row(&patient)?);
            }
            "pms.patients.v1.PatientDeactivated" => {
                let gone = PatientDeactivated::decode(payload).map_err(undecodable)?;
                let id = Uuid::parse_str(&gone.patient_id)
                    .map_err(|_| Poison("a deactivation without a valid patient id".into()))?;
                let version = self.deactivations.entry(id).or_insert(gone.version);
                *version = (*version).max(gone.version);
            }
            // Events of types this service does not use are recorded as seen and passed over.
            _ => return Ok(()),
        }
        self.latest = self.latest.max(Some(occurred_at));
        Ok(())
    }

    fn keep(&mut self, row: PatientRow) {
        match self.patients.get(&row.id) {
            Some(kept) if kept.version >= row.version => {}
            _ => {
                self.patients.insert(row.id, row);
            }
        }
    }

    /// Writes the changes, a statement per kind (none for a kind without any).
    async fn write(self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if !self.patients.is_empty() {
            // In id order, so that two writers (replicas during a rebalance) lock rows in one order.
            let mut rows: Vec<PatientRow> = self.patients.into_values().collect();
            rows.sort_by_key(|r| r.id);
            sqlx::query(
                "INSERT INTO patients (patient_id, sex, birth_date, active, version)
                 SELECT * FROM unnest($1::uuid[], $2::text[], $3::date[], $4::boolean[], $5::integer[])
                 ON CONFLICT (patient_id) DO UPDATE
                 SET sex = excluded.sex, birth_date = excluded.birth_date, active = excluded.active,
                     version = excluded.version
                 WHERE patients.version < excluded.version",
            )
            .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.sex.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.birth_date).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.active).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.version).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await?;
        }
        if !self.deactivations.is_empty() {
            let (ids, versions): (Vec<Uuid>, Vec<i32>) = self.deactivations.into_iter().unzip();
            sqlx::query(
                "UPDATE patients p SET active = false, version = d.version
                 FROM unnest($1::uuid[], $2::integer[]) AS d(patient_id, version)
                 WHERE p.patient_id = d.patient_id AND p.version < d.version",
            )
            .bind(ids)
            .bind(versions)
            .execute(&mut *conn)
            .await?;
        }
        if !self.registrations.is_empty() {
            let (days, counts): (Vec<Date>, Vec<i64>) = self.registrations.into_iter().unzip();
            sqlx::query(
                "INSERT INTO registrations_per_day (day, registrations)
                 SELECT * FROM unnest($1::date[], $2::bigint[])
                 ON CONFLICT (day) DO UPDATE
                 SET registrations = registrations_per_day.registrations + excluded.registrations",
            )
            .bind(days)
            .bind(counts)
            .execute(&mut *conn)
            .await?;
        }
        if let Some(at) = self.latest {
            sqlx::query("UPDATE freshness SET last_event_at = greatest(last_event_at, $1)")
                .bind(at)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

/// What analytics keeps of a patient.
struct PatientRow {
    id: Uuid,
    sex: String,
    birth_date: Date,
    active: bool,
    version: i32,
}

impl PatientRow {
    fn of(patient: &Patient) -> Option<Self> {
        let format = format_description!("[year]-[month]-[day]");
        Some(Self {
            id: Uuid::parse_str(&patient.id).ok()?,
            sex: patient.sex.clone(),
            birth_date: Date::parse(&patient.birth_date, format).ok()?,
            active: patient.active,
            version: patient.version,
        })
    }
}

/// The numbers analysts see: counts only, nothing about any one patient.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Patients registered and not deactivated.
    pub active_patients: i64,
    /// Active patients by sex (`female`, `male`, `other`, `unknown`).
    pub by_sex: Vec<Count>,
    /// Active patients by age band today (`0-17`, `18-34`, `35-49`, `50-64`, `65+`).
    pub by_age_band: Vec<Count>,
    /// Registrations per day (UTC) of the last `days` days, oldest first; days without any
    /// are left out.
    pub registrations_per_day: Vec<DayCount>,
    /// When the newest event applied happened (absent before the first).
    #[serde(skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_event_at: Option<OffsetDateTime>,
}

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Count {
    pub key: String,
    pub count: i64,
}

#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct DayCount {
    #[schema(value_type = String, format = Date)]
    #[serde(serialize_with = "iso_date")]
    pub day: Date,
    pub registrations: i64,
}

fn iso_date<S: serde::Serializer>(day: &Date, serializer: S) -> Result<S::Ok, S::Error> {
    let format = format_description!("[year]-[month]-[day]");
    serializer.serialize_str(&day.format(format).map_err(serde::ser::Error::custom)?)
}

const AGE_BAND: &str = "CASE WHEN age < 18 THEN '0-17' WHEN age < 35 THEN '18-34' WHEN age < 50 THEN '35-49'
                             WHEN age < 65 THEN '50-64' ELSE '65+' END";

/// The summary as of now, with registrations of the last `days` days: all its numbers from
/// one snapshot, so they agree with each other even while events are being applied.
pub async fn summary(pool: &PgPool, days: i32) -> Result<Summary, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
    let active_patients: i64 =
        sqlx::query_scalar("SELECT count(*) FROM patients WHERE active").fetch_one(&mut *tx).await?;
    let by_sex: Vec<Count> = sqlx::query_as(
        "SELECT sex AS key, count(*) AS count FROM patients WHERE active GROUP BY sex ORDER BY sex",
    )
    .fetch_all(&mut *tx)
    .await?;
    let by_age_band: Vec<Count> = sqlx::query_as(&format!(
        "SELECT {AGE_BAND} AS key, count(*) AS count
         FROM (SELECT date_part('year', age(current_date, birth_date)) AS age FROM patients WHERE active) a
         GROUP BY 1 ORDER BY min(age)"
    ))
    .fetch_all(&mut *tx)
    .await?;
    let registrations_per_day: Vec<DayCount> = sqlx::query_as(
        "SELECT day, registrations FROM registrations_per_day
         WHERE day > (now() AT TIME ZONE 'UTC')::date - $1 ORDER BY day",
    )
    .bind(days)
    .fetch_all(&mut *tx)
    .await?;
    let last_event_at: Option<OffsetDateTime> =
        sqlx::query_scalar("SELECT last_event_at FROM freshness").fetch_one(&mut *tx).await?;
    tx.commit().await?;
    Ok(Summary { active_patients, by_sex, by_age_band, registrations_per_day, last_event_at })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const REGISTERED: &str = "pms.patients.v1.PatientRegistered";
    const UPDATED: &str = "pms.patients.v1.PatientUpdated";
    const DEACTIVATED: &str = "pms.patients.v1.PatientDeactivated";
    const ID: &str = "0b9d1c1e-4a5f-4c1e-9a31-6f2d8e7c5b10";

    fn patient(version: i32, sex: &str) -> Patient {
        Patient {
            id: ID.into(),
            birth_date: "1980-02-29".into(),
            sex: sex.into(),
            active: true,
            version,
            ..Default::default()
        }
    }

    fn registered(version: i32, sex: &str) -> Vec<u8> {
        PatientRegistered { patient: Some(patient(version, sex)) }.encode_to_vec()
    }

    fn updated(version: i32, sex: &str) -> Vec<u8> {
        PatientUpdated { patient: Some(patient(version, sex)) }.encode_to_vec()
    }

    fn ok(changes: &mut Changes, event_type: &str, payload: &[u8], at: OffsetDateTime) {
        assert!(changes.add(event_type, payload, at).is_ok(), "{event_type} refused");
    }

    #[test]
    fn a_registration_and_its_update_fold_into_the_newest_row_and_one_registration() {
        let mut changes = Changes::default();
        ok(&mut changes, REGISTERED, &registered(1, "female"), datetime!(2026-12-03 23:59 UTC));
        ok(&mut changes, UPDATED, &updated(2, "other"), datetime!(2026-12-04 00:01 UTC));
        let id = Uuid::parse_str(ID).expect("a UUID");
        assert_eq!(changes.patients.len(), 1);
        assert_eq!((changes.patients[&id].version, changes.patients[&id].sex.as_str()), (2, "other"));
        // Counted on the day it happened, once.
        assert_eq!(
            changes.registrations.into_iter().collect::<Vec<_>>(),
            [(time::macros::date!(2026 - 12 - 03), 1)]
        );
        assert_eq!(changes.latest, Some(datetime!(2026-12-04 00:01 UTC)));
    }

    #[test]
    fn an_older_version_arriving_later_does_not_replace_the_newer() {
        let mut changes = Changes::default();
        let at = datetime!(2026-12-04 10:00 UTC);
        ok(&mut changes, UPDATED, &updated(3, "male"), at);
        ok(&mut changes, UPDATED, &updated(2, "female"), at);
        let deactivation = |version| {
            PatientDeactivated { patient_id: ID.into(), version, deactivated_at: None }.encode_to_vec()
        };
        ok(&mut changes, DEACTIVATED, &deactivation(5), at);
        ok(&mut changes, DEACTIVATED, &deactivation(4), at);
        let id = Uuid::parse_str(ID).expect("a UUID");
        assert_eq!((changes.patients[&id].version, changes.patients[&id].sex.as_str()), (3, "male"));
        assert_eq!(changes.deactivations[&id], 5);
        assert!(changes.registrations.is_empty());
    }

    #[test]
    fn undecodable_or_invalid_events_are_poison_and_change_nothing() {
        let mut changes = Changes::default();
        let at = datetime!(2026-12-04 10:00 UTC);
        assert!(changes.add(REGISTERED, b"\xff\xff\xff", at).is_err());
        let mut bad = patient(1, "female");
        bad.birth_date = "29/02/1980".into();
        let payload = PatientRegistered { patient: Some(bad) }.encode_to_vec();
        assert!(changes.add(REGISTERED, &payload, at).is_err());
        assert!(changes.add(UPDATED, &PatientUpdated { patient: None }.encode_to_vec(), at).is_err());
        assert!(changes.patients.is_empty() && changes.registrations.is_empty() && changes.latest.is_none());
    }

    #[test]
    fn events_of_other_types_are_passed_over() {
        let mut changes = Changes::default();
        ok(&mut changes, "pms.patients.v1.PatientMerged", b"anything", datetime!(2026-12-04 10:00 UTC));
        assert!(changes.patients.is_empty() && changes.latest.is_none());
    }
}
