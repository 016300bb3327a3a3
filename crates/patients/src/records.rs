//! `PatientRepository`: the SQL that reads and writes patient records and their versions.
//!
//! It decides nothing about who may do what, and audits nothing by itself: [`crate::access`]
//! does both around it. A write takes the audit row to commit with it ([`Change`]), so a
//! change, its version snapshot, its audit row and its events in the outbox commit together or
//! not at all (an update or deactivation as one transaction, through [`record_change`];
//! registrations in batches, see [`crate::registration`]).
//! Updates are optimistic: `UPDATE ... WHERE version = $expected` under the row lock means of
//! two concurrent updates from the same version exactly one succeeds; the other sees a
//! mismatch and answers 412.

use kit::{
    RequestContext,
    db::ResultExt,
    email::Email,
    outbox::{self, OutboxEvent, Relay},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{PgConnection, PgPool, Postgres, Transaction, types::Json};
use time::{Date, OffsetDateTime};

use crate::{
    audit::{self, AuditEvent},
    domain::{Address, Patient, PatientDraft, PatientId, Phone, Sex, format_date},
    error::{Error, Result},
    events::PatientEvents,
    names,
    policy::Action,
};

/// What a write records beside the record: its audit row, and the trace id its event carries.
#[derive(Debug, Clone)]
pub struct Change {
    pub audit: AuditEvent,
    pub trace_id: Option<String>,
    /// Why, as the writer said (kept with the version, never in the audit row).
    pub reason: Option<String>,
}

impl Change {
    /// `ctx`'s `action` on patient `id`, succeeding.
    pub fn new(ctx: &RequestContext, action: Action, id: PatientId) -> Self {
        Self {
            audit: AuditEvent::new(ctx, action, Some(id), "ok"),
            trace_id: ctx.trace_id.clone(),
            reason: None,
        }
    }

    /// The same change, for `reason`.
    pub fn because(mut self, reason: Option<String>) -> Self {
        self.reason = reason;
        self
    }
}

pub(crate) const COLUMNS: &str = "id, mrn, given_name, family_name, birth_date, sex, email, phone, address, \
                                  active, registered_at, updated_at, version";

/// The statement head that keeps a version snapshot (every version is written through it).
pub(crate) const KEEP_VERSION: &str =
    "INSERT INTO patient_versions (patient_id, version, recorded_at, snapshot, recorded_by, reason)";

/// A kept version as stored: number, time, author, reason, snapshot.
type VersionRow = (i32, OffsetDateTime, Option<String>, Option<String>, Json<Patient>);

const ACTIVE_EMAIL_CONSTRAINT: &str = "patients_active_email_key";

#[derive(sqlx::FromRow)]
pub(crate) struct PatientRow {
    pub(crate) id: PatientId,
    mrn: String,
    given_name: String,
    family_name: String,
    birth_date: Date,
    sex: String,
    email: Option<String>,
    phone: Option<String>,
    address: Option<Json<Address>>,
    active: bool,
    registered_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    version: i32,
}

impl From<PatientRow> for Patient {
    fn from(row: PatientRow) -> Self {
        Patient {
            id: row.id,
            mrn: row.mrn,
            given_name: row.given_name,
            family_name: row.family_name,
            birth_date: format_date(row.birth_date),
            sex: row.sex.parse().unwrap_or(Sex::Unknown),
            email: row.email,
            phone: row.phone,
            address: row.address.map(|a| a.0),
            active: row.active,
            registered_at: row.registered_at,
            updated_at: row.updated_at,
            version: row.version,
        }
    }
}

/// One kept version of a record.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatientVersion {
    pub version: i32,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub recorded_at: OffsetDateTime,
    /// The user id of who wrote this version (absent for versions older than this field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded_by: Option<String>,
    /// Why, when the writer said so (a deactivation's reason).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The record as it was at this version.
    pub patient: Patient,
}

/// The records of the patients `audits` name, active or not, in no particular order (an
/// unknown id has none; one asked twice comes once), read by the statement that also writes
/// `audits`, the reads' audit rows: the statement reads exactly the patients its audit rows
/// name, its rows come back only once it has committed, and each audit row's outcome is what
/// it found for its patient (`ok`, `gone` or `not_found`; the outcome each event holds is not
/// used). Reads by id are fetched many at a time this way by [`crate::audit::AuditedReads`].
pub(crate) async fn read_audited(pool: &PgPool, audits: &[&AuditEvent]) -> sqlx::Result<Vec<Patient>> {
    let found = "coalesce((SELECT CASE WHEN f.active THEN 'ok' ELSE 'gone' END FROM found f WHERE f.id = p), 'not_found')";
    let sql = format!(
        "WITH found AS (SELECT {COLUMNS} FROM patients WHERE id = ANY({})),
              audited AS ({})
         SELECT * FROM found",
        audit::patient_ids_param(1),
        audit::insert_sql_with_outcome(1, found)
    );
    let rows: Vec<PatientRow> = audit::bind_rows(sqlx::query(&sql), audits)
        .try_map(|row: sqlx::postgres::PgRow| <PatientRow as sqlx::FromRow<_>>::from_row(&row))
        .fetch_all(pool)
        .await?;
    Ok(rows.into_iter().map(Patient::from).collect())
}

#[derive(Clone)]
pub struct PatientRepository {
    pool: PgPool,
    /// The searches' own connections ([`SEARCHES`](crate::SEARCHES)).
    search_pool: PgPool,
    events: PatientEvents,
    /// Woken after each committed change.
    relays: Vec<Relay>,
}

/// Now, at the microsecond precision PostgreSQL keeps, so stored and returned values agree.
pub(crate) fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000).unwrap_or(now)
}

impl PatientRepository {
    pub fn new(pool: PgPool, search_pool: PgPool, events: PatientEvents, relays: Vec<Relay>) -> Self {
        Self { pool, search_pool, events, relays }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The connections searches run on: each keeps one generic plan per statement.
    pub(crate) fn search_pool(&self) -> &PgPool {
        &self.search_pool
    }

    /// Replaces a patient's data if it is still at `expected_version`, recording `change`.
    pub async fn update(
        &self,
        id: PatientId,
        expected_version: i32,
        draft: PatientDraft,
        change: Change,
    ) -> Result<Patient> {
        let mut tx = self.pool.begin().await?;
        let row: Option<PatientRow> = sqlx::query_as(&format!(
            "WITH names AS (INSERT INTO name_dictionary (name, keys) VALUES ($11, $14), ($12, $15)
                            ON CONFLICT (name) DO NOTHING)
             UPDATE patients
             SET given_name = $3, family_name = $4, birth_date = $5, sex = $6, email = $7, email_key = $16,
                 phone = $8, address = $9, updated_at = $10, version = version + 1,
                 family_sort = $11, given_sort = $12, name_keys = $13
             WHERE id = $1 AND active AND version = $2
             RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(expected_version)
        .bind(draft.given_name.as_str())
        .bind(draft.family_name.as_str())
        .bind(draft.birth_date)
        .bind(draft.sex.as_str())
        .bind(draft.email.as_ref().map(Email::as_str))
        .bind(draft.phone.as_ref().map(Phone::as_str))
        .bind(draft.address.as_ref().map(Json))
        .bind(now())
        .bind(names::sort_key(draft.family_name.as_str()))
        .bind(names::sort_key(draft.given_name.as_str()))
        .bind(names::index_keys(draft.given_name.as_str(), draft.family_name.as_str()))
        .bind(names::name_keys(draft.family_name.as_str()))
        .bind(names::name_keys(draft.given_name.as_str()))
        .bind(draft.email.as_ref().map(Email::key))
        .fetch_optional(&mut *tx)
        .await
        .on_constraint(ACTIVE_EMAIL_CONSTRAINT, || Error::DuplicateEmail)?;
        self.commit_change(tx, id, row, change, PatientEvents::updated).await
    }

    /// Deactivates a patient, recording `change`: it keeps its record and history but leaves
    /// searches and reads.
    pub async fn deactivate(&self, id: PatientId, expected_version: i32, change: Change) -> Result<Patient> {
        let mut tx = self.pool.begin().await?;
        let row: Option<PatientRow> = sqlx::query_as(&format!(
            "UPDATE patients SET active = false, updated_at = $3, version = version + 1
             WHERE id = $1 AND active AND version = $2
             RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(expected_version)
        .bind(now())
        .fetch_optional(&mut *tx)
        .await?;
        self.commit_change(tx, id, row, change, PatientEvents::deactivated).await
    }

    /// Every version of a patient record, newest first (also for deactivated records); empty
    /// when there is no such patient.
    pub async fn history(&self, id: PatientId) -> Result<Vec<PatientVersion>> {
        let rows: Vec<VersionRow> = sqlx::query_as(
            "SELECT version, recorded_at, recorded_by, reason, snapshot FROM patient_versions WHERE patient_id = $1
             ORDER BY version DESC",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(version, recorded_at, recorded_by, reason, Json(patient))| PatientVersion {
                version,
                recorded_at,
                recorded_by,
                reason,
                patient,
            })
            .collect())
    }
}

impl PatientRepository {
    /// Finishes a conditional change: when `row` came back, records it ([`record_change`])
    /// with its `event` and commits, then wakes the relays; when the condition held no row,
    /// says why (missing, gone, or newer) and rolls back.
    async fn commit_change(
        &self,
        mut tx: Transaction<'_, Postgres>,
        id: PatientId,
        row: Option<PatientRow>,
        change: Change,
        event: fn(&PatientEvents, &Patient, Option<&str>) -> OutboxEvent,
    ) -> Result<Patient> {
        let Some(row) = row else {
            return Err(why_not_changed(&mut tx, id).await);
        };
        let patient = Patient::from(row);
        let event = event(&self.events, &patient, change.trace_id.as_deref());
        record_change(&mut tx, &patient, change, event).await?;
        tx.commit().await?;
        self.relays.iter().for_each(Relay::wake);
        Ok(patient)
    }
}

/// Records a change in its transaction: the record's new version snapshot, the change's
/// audit row (naming that version) and its event. Every update and deactivation goes through
/// here, so none can forget one.
async fn record_change(
    tx: &mut PgConnection,
    patient: &Patient,
    change: Change,
    event: OutboxEvent,
) -> Result<()> {
    let Change { audit, reason, .. } = change;
    sqlx::query(&format!("{KEEP_VERSION} VALUES ($1, $2, $3, $4, $5, $6)"))
        .bind(patient.id)
        .bind(patient.version)
        .bind(patient.updated_at)
        .bind(Json(patient))
        .bind(&audit.actor_id)
        .bind(reason)
        .execute(&mut *tx)
        .await?;
    let audit = audit.with_details(json!({ "version": patient.version }));
    audit::insert(&mut *tx, &[&audit]).await?;
    outbox::insert(&mut *tx, &[event]).await?;
    Ok(())
}

/// After a conditional update changed nothing: was the record missing, gone, or newer?
async fn why_not_changed(conn: &mut PgConnection, id: PatientId) -> Error {
    let state: Result<Option<(bool, i32)>, _> =
        sqlx::query_as("SELECT active, version FROM patients WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await;
    match state {
        Ok(None) => Error::NotFound,
        Ok(Some((false, _))) => Error::Gone,
        Ok(Some((true, current))) => Error::VersionMismatch { current },
        Err(err) => Error::Database(err),
    }
}
