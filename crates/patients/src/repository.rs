//! `PatientRepository`: every SQL statement the patients service runs.
//!
//! Each write (the row, its version snapshot, its audit row) happens in one transaction.
//! Updates are optimistic: `UPDATE ... WHERE version = $expected` under the row lock means of
//! two concurrent updates from the same version exactly one succeeds; the other sees a
//! mismatch and answers 412.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder, types::Json};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::{
    audit::{self, Action, AuditEvent, AuditLog},
    context::RequestContext,
    domain::{Address, Patient, PatientDraft, Sex, format_date},
    error::{Error, Result},
    mrn::Mrn,
    names::{self, NameQuery, Rank},
};

const COLUMNS: &str = "id, mrn, given_name, family_name, birth_date, sex, email, phone, address, \
                       active, registered_at, updated_at, version";

const ACTIVE_EMAIL_CONSTRAINT: &str = "patients_active_email_key";

#[derive(sqlx::FromRow)]
struct PatientRow {
    id: Uuid,
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
    /// The record as it was at this version.
    pub patient: Patient,
}

/// What to search for; every given filter must match.
#[derive(Debug, Clone, Default)]
pub struct SearchFilter {
    pub name: Option<NameQuery>,
    pub birth_date: Option<Date>,
    pub mrn: Option<Mrn>,
    /// Lower-cased.
    pub email: Option<String>,
    /// E.164.
    pub phone: Option<String>,
}

impl SearchFilter {
    /// The names of the filters used: what the audit trail keeps instead of the values.
    fn used(&self) -> Vec<&'static str> {
        let mut used = Vec::new();
        if self.name.is_some() {
            used.push("name");
        }
        if self.birth_date.is_some() {
            used.push("birthDate");
        }
        if self.mrn.is_some() {
            used.push("mrn");
        }
        if self.email.is_some() {
            used.push("email");
        }
        if self.phone.is_some() {
            used.push("phone");
        }
        used
    }
}

/// Where the next page starts: the sort key of the last row returned. Opaque to clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    #[serde(rename = "r")]
    rank: i16,
    #[serde(rename = "f")]
    family: String,
    #[serde(rename = "g")]
    given: String,
    #[serde(rename = "i")]
    id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn decode(text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// One page of search results.
#[derive(Debug)]
pub struct SearchPage {
    pub items: Vec<Patient>,
    pub next: Option<Cursor>,
}

#[derive(sqlx::FromRow)]
struct SearchRow {
    #[sqlx(flatten)]
    patient: PatientRow,
    family_sort: String,
    given_sort: String,
    rank: i16,
}

#[derive(Clone)]
pub struct PatientRepository {
    pool: PgPool,
    audit: AuditLog,
}

/// Now, at the microsecond precision PostgreSQL keeps, so stored and returned values agree.
fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000).unwrap_or(now)
}

impl PatientRepository {
    pub fn new(pool: PgPool) -> Self {
        let audit = AuditLog::spawn(pool.clone());
        Self { pool, audit }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Registers a new patient: allocates its MRN and writes version 1 and the audit row.
    pub async fn register(&self, draft: PatientDraft, ctx: &RequestContext) -> Result<Patient> {
        let mut tx = self.pool.begin().await?;
        let sequence: i64 = sqlx::query_scalar("SELECT nextval('mrn_seq')").fetch_one(&mut *tx).await?;
        let at = now();
        let patient = Patient {
            id: Uuid::now_v7(),
            mrn: Mrn::from_sequence(sequence).to_string(),
            given_name: draft.given_name,
            family_name: draft.family_name,
            birth_date: format_date(draft.birth_date),
            sex: draft.sex,
            email: draft.email,
            phone: draft.phone,
            address: draft.address,
            active: true,
            registered_at: at,
            updated_at: at,
            version: 1,
        };
        sqlx::query(
            "INSERT INTO patients (id, mrn, given_name, family_name, birth_date, sex, email, email_key, phone,
                                   address, active, version, registered_at, updated_at,
                                   family_sort, given_sort, name_keys)
             VALUES ($1, $2, $3, $4, $5, $6, $7, lower($7), $8, $9, true, 1, $10, $10, $11, $12, $13)",
        )
        .bind(patient.id)
        .bind(&patient.mrn)
        .bind(&patient.given_name)
        .bind(&patient.family_name)
        .bind(draft.birth_date)
        .bind(patient.sex.as_str())
        .bind(&patient.email)
        .bind(&patient.phone)
        .bind(patient.address.as_ref().map(Json))
        .bind(at)
        .bind(names::sort_key(&patient.family_name))
        .bind(names::sort_key(&patient.given_name))
        .bind(names::index_keys(&patient.given_name, &patient.family_name))
        .execute(&mut *tx)
        .await
        .map_err(duplicate_email)?;
        keep_version(&mut tx, &patient).await?;
        audit::insert(&mut tx, &AuditEvent::new(ctx, Action::Create, Some(patient.id), "ok")).await?;
        tx.commit().await?;
        Ok(patient)
    }

    /// Reads a patient; the read is audited whatever the outcome.
    pub async fn get(&self, id: Uuid, ctx: &RequestContext) -> Result<Patient> {
        let row: Option<PatientRow> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM patients WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let (outcome, result) = match row {
            None => ("not_found", Err(Error::NotFound)),
            Some(row) if !row.active => ("gone", Err(Error::Gone)),
            Some(row) => ("ok", Ok(Patient::from(row))),
        };
        self.audit.record(AuditEvent::new(ctx, Action::Read, Some(id), outcome)).await?;
        result
    }

    /// Replaces a patient's data if it is still at `expected_version`.
    pub async fn update(
        &self,
        id: Uuid,
        expected_version: Option<i32>,
        draft: PatientDraft,
        ctx: &RequestContext,
    ) -> Result<Patient> {
        let mut tx = self.pool.begin().await?;
        let at = now();
        let row: Option<PatientRow> = sqlx::query_as(&format!(
            "UPDATE patients
             SET given_name = $3, family_name = $4, birth_date = $5, sex = $6, email = $7, email_key = lower($7),
                 phone = $8, address = $9, updated_at = $10, version = version + 1,
                 family_sort = $11, given_sort = $12, name_keys = $13
             WHERE id = $1 AND active AND ($2::integer IS NULL OR version = $2)
             RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(expected_version)
        .bind(&draft.given_name)
        .bind(&draft.family_name)
        .bind(draft.birth_date)
        .bind(draft.sex.as_str())
        .bind(&draft.email)
        .bind(&draft.phone)
        .bind(draft.address.as_ref().map(Json))
        .bind(at)
        .bind(names::sort_key(&draft.family_name))
        .bind(names::sort_key(&draft.given_name))
        .bind(names::index_keys(&draft.given_name, &draft.family_name))
        .fetch_optional(&mut *tx)
        .await
        .map_err(duplicate_email)?;
        let Some(row) = row else {
            return Err(why_not_changed(&mut tx, id).await);
        };
        let patient = Patient::from(row);
        keep_version(&mut tx, &patient).await?;
        let event = AuditEvent::new(ctx, Action::Update, Some(id), "ok").with_details(json!({ "version": patient.version }));
        audit::insert(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(patient)
    }

    /// Deactivates a patient: it keeps its record and history but leaves searches and reads.
    pub async fn deactivate(&self, id: Uuid, expected_version: Option<i32>, ctx: &RequestContext) -> Result<Patient> {
        let mut tx = self.pool.begin().await?;
        let row: Option<PatientRow> = sqlx::query_as(&format!(
            "UPDATE patients SET active = false, updated_at = $3, version = version + 1
             WHERE id = $1 AND active AND ($2::integer IS NULL OR version = $2)
             RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(expected_version)
        .bind(now())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(why_not_changed(&mut tx, id).await);
        };
        let patient = Patient::from(row);
        keep_version(&mut tx, &patient).await?;
        let event = AuditEvent::new(ctx, Action::Deactivate, Some(id), "ok").with_details(json!({ "version": patient.version }));
        audit::insert(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(patient)
    }

    /// Every version of a patient record, newest first (also for deactivated records).
    pub async fn history(&self, id: Uuid, ctx: &RequestContext) -> Result<Vec<PatientVersion>> {
        let rows: Vec<(i32, OffsetDateTime, Json<Patient>)> = sqlx::query_as(
            "SELECT version, recorded_at, snapshot FROM patient_versions WHERE patient_id = $1 ORDER BY version DESC",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let outcome = if rows.is_empty() { "not_found" } else { "ok" };
        self.audit.record(AuditEvent::new(ctx, Action::History, Some(id), outcome)).await?;
        if rows.is_empty() {
            return Err(Error::NotFound);
        }
        Ok(rows
            .into_iter()
            .map(|(version, recorded_at, Json(patient))| PatientVersion { version, recorded_at, patient })
            .collect())
    }

    /// One page of active patients matching `filter`: by relevance for name searches (exact,
    /// then prefix, then fuzzy matches), each group by family then given name.
    pub async fn search(
        &self,
        filter: &SearchFilter,
        limit: u32,
        after: Option<&Cursor>,
        ctx: &RequestContext,
    ) -> Result<SearchPage> {
        let mut sql = search_query(filter, limit, after);
        let mut rows: Vec<SearchRow> = sql.build_query_as().fetch_all(&self.pool).await?;
        let next = if rows.len() > limit as usize {
            rows.truncate(limit as usize);
            rows.last().map(|last| Cursor {
                rank: last.rank,
                family: last.family_sort.clone(),
                given: last.given_sort.clone(),
                id: last.patient.id,
            })
        } else {
            None
        };
        let items: Vec<Patient> = rows.into_iter().map(|r| Patient::from(r.patient)).collect();
        let event = AuditEvent::new(ctx, Action::Search, None, "ok")
            .with_details(json!({ "filters": filter.used(), "results": items.len() }));
        self.audit.record(event).await?;
        Ok(SearchPage { items, next })
    }
}

fn search_query<'a>(filter: &'a SearchFilter, limit: u32, after: Option<&'a Cursor>) -> QueryBuilder<'a, Postgres> {
    let mut sql = QueryBuilder::new("SELECT * FROM (SELECT ");
    sql.push(COLUMNS).push(", family_sort, given_sort, ");
    match &filter.name {
        Some(query) => {
            sql.push("(CASE WHEN name_keys @> ")
                .push_bind(&query.exact)
                .push(format!(" THEN {} WHEN name_keys @> ", Rank::Exact as i16))
                .push_bind(&query.prefix)
                .push(format!(" THEN {} ELSE {} END)::smallint", Rank::Prefix as i16, Rank::Fuzzy as i16));
        }
        None => {
            sql.push("0::smallint");
        }
    }
    sql.push(" AS rank FROM patients WHERE active");
    if let Some(query) = &filter.name {
        for word_keys in &query.fuzzy {
            sql.push(" AND name_keys && ").push_bind(word_keys);
        }
    }
    if let Some(birth_date) = filter.birth_date {
        sql.push(" AND birth_date = ").push_bind(birth_date);
    }
    if let Some(mrn) = &filter.mrn {
        sql.push(" AND mrn = ").push_bind(mrn.as_str());
    }
    if let Some(email) = &filter.email {
        sql.push(" AND email_key = ").push_bind(email);
    }
    if let Some(phone) = &filter.phone {
        sql.push(" AND phone = ").push_bind(phone);
    }
    sql.push(") AS matches");
    // Without a name every rank is 0: compare and sort on the indexed columns alone.
    let ranked = filter.name.is_some();
    if let Some(cursor) = after {
        sql.push(" WHERE (");
        if ranked {
            sql.push("rank, ");
        }
        sql.push("family_sort, given_sort, id) > (");
        if ranked {
            sql.push_bind(cursor.rank).push(", ");
        }
        sql.push_bind(&cursor.family).push(", ").push_bind(&cursor.given).push(", ").push_bind(cursor.id).push(")");
    }
    sql.push(if ranked { " ORDER BY rank, " } else { " ORDER BY " });
    sql.push("family_sort, given_sort, id LIMIT ").push_bind(i64::from(limit) + 1);
    sql
}

async fn keep_version(conn: &mut PgConnection, patient: &Patient) -> Result<()> {
    sqlx::query("INSERT INTO patient_versions (patient_id, version, recorded_at, snapshot) VALUES ($1, $2, $3, $4)")
        .bind(patient.id)
        .bind(patient.version)
        .bind(patient.updated_at)
        .bind(Json(patient))
        .execute(conn)
        .await?;
    Ok(())
}

/// After a conditional update changed nothing: was the record missing, gone, or newer?
async fn why_not_changed(conn: &mut PgConnection, id: Uuid) -> Error {
    let state: Result<Option<(bool, i32)>, _> = sqlx::query_as("SELECT active, version FROM patients WHERE id = $1")
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

fn duplicate_email(err: sqlx::Error) -> Error {
    if kit::db::violated_constraint(&err) == Some(ACTIVE_EMAIL_CONSTRAINT) {
        Error::DuplicateEmail
    } else {
        Error::Database(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = Cursor { rank: 2, family: "müller".into(), given: "anna".into(), id: Uuid::nil() };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(Cursor::decode("not a cursor"), None);
        assert_eq!(Cursor::decode(&URL_SAFE_NO_PAD.encode(b"{\"r\":1}")), None);
    }

    #[test]
    fn search_sql_orders_by_rank_only_for_name_searches() {
        let by_name = SearchFilter { name: NameQuery::parse("jhon").ok(), ..Default::default() };
        let sql = search_query(&by_name, 20, None).into_sql();
        assert!(sql.contains("ORDER BY rank, family_sort"), "{sql}");
        assert!(sql.contains("name_keys &&"), "{sql}");
        let by_date = SearchFilter { birth_date: Some(time::macros::date!(1980 - 01 - 01)), ..Default::default() };
        let cursor = Cursor { rank: 0, family: "a".into(), given: "b".into(), id: Uuid::nil() };
        let sql = search_query(&by_date, 20, Some(&cursor)).into_sql();
        assert!(sql.contains("WHERE (family_sort, given_sort, id) > ("), "{sql}");
        assert!(!sql.contains("rank,"), "{sql}");
    }
}
