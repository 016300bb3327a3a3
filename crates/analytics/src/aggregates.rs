//! The aggregates and how each patient event changes them, exactly once per event.

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

    /// Applies `batch` in one transaction: each event's id is recorded with its effect, and
    /// an event already recorded changes nothing.
    async fn apply(&self, batch: &[Delivery]) -> Result<Handled, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let mut handled = Handled::default();
        let mut latest: Option<OffsetDateTime> = None;
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
            let new: Option<Uuid> = sqlx::query_scalar(
                "INSERT INTO processed_events (event_id, occurred_at) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING RETURNING event_id",
            )
            .bind(event_id)
            .bind(occurred_at)
            .fetch_optional(&mut *tx)
            .await?;
            if new.is_none() {
                metrics::counter!("analytics_duplicate_events_total").increment(1);
                continue;
            }
            match apply_one(&mut tx, &envelope.event_type, &envelope.payload, occurred_at).await? {
                Ok(()) => latest = latest.max(Some(occurred_at)),
                Err(Poison(why)) => handled.poison.push((index, why)),
            }
        }
        if let Some(at) = latest {
            sqlx::query("UPDATE freshness SET last_event_at = greatest(last_event_at, $1)")
                .bind(at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(handled)
    }
}

impl Handler for Aggregates {
    async fn handle(&self, batch: &[Delivery]) -> Result<Handled, Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.apply(batch).await?)
    }
}

/// One event's effect, inside the batch's transaction.
async fn apply_one(
    conn: &mut PgConnection,
    event_type: &str,
    payload: &[u8],
    occurred_at: OffsetDateTime,
) -> Result<Result<(), Poison>, sqlx::Error> {
    let undecodable = |e: proto::prost::DecodeError| Poison(format!("undecodable {event_type}: {e}"));
    match event_type {
        "pms.patients.v1.PatientRegistered" => {
            let patient = match PatientRegistered::decode(payload).map_err(undecodable) {
                Ok(PatientRegistered { patient: Some(patient) }) => patient,
                Ok(_) => return Ok(Err(Poison("a registration without its patient".into()))),
                Err(poison) => return Ok(Err(poison)),
            };
            let Some(row) = PatientRow::of(&patient) else {
                return Ok(Err(Poison("a patient without a valid id or birth date".into())));
            };
            upsert(conn, &row).await?;
            sqlx::query(
                "INSERT INTO registrations_per_day (day, registrations) VALUES ($1, 1)
                 ON CONFLICT (day) DO UPDATE SET registrations = registrations_per_day.registrations + 1",
            )
            .bind(occurred_at.date())
            .execute(&mut *conn)
            .await?;
        }
        "pms.patients.v1.PatientUpdated" => {
            let patient = match PatientUpdated::decode(payload).map_err(undecodable) {
                Ok(PatientUpdated { patient: Some(patient) }) => patient,
                Ok(_) => return Ok(Err(Poison("an update without its patient".into()))),
                Err(poison) => return Ok(Err(poison)),
            };
            let Some(row) = PatientRow::of(&patient) else {
                return Ok(Err(Poison("a patient without a valid id or birth date".into())));
            };
            upsert(conn, &row).await?;
        }
        "pms.patients.v1.PatientDeactivated" => {
            let gone = match PatientDeactivated::decode(payload).map_err(undecodable) {
                Ok(gone) => gone,
                Err(poison) => return Ok(Err(poison)),
            };
            let Ok(id) = Uuid::parse_str(&gone.patient_id) else {
                return Ok(Err(Poison("a deactivation without a valid patient id".into())));
            };
            sqlx::query(
                "UPDATE patients SET active = false, version = $2 WHERE patient_id = $1 AND version < $2",
            )
            .bind(id)
            .bind(gone.version)
            .execute(&mut *conn)
            .await?;
        }
        // Events of types this service does not use are recorded as seen and passed over.
        _ => {}
    }
    Ok(Ok(()))
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

/// The patient's row as of `row.version`, unless a newer version is already kept.
async fn upsert(conn: &mut PgConnection, row: &PatientRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO patients (patient_id, sex, birth_date, active, version) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (patient_id) DO UPDATE
         SET sex = excluded.sex, birth_date = excluded.birth_date, active = excluded.active, version = excluded.version
         WHERE patients.version < excluded.version",
    )
    .bind(row.id)
    .bind(&row.sex)
    .bind(row.birth_date)
    .bind(row.active)
    .bind(row.version)
    .execute(conn)
    .await?;
    Ok(())
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
