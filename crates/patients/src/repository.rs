//! `PatientRepository`: every SQL statement the patients service runs.
//!
//! Each write (the row, its version snapshot, its audit row) commits atomically: a registration
//! as one statement, an update or deactivation as one transaction.
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
    names::{self, NameQuery, WordQuery, WordTier},
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

/// Where the next page starts: the rank and sort key of the last row returned (the sort key
/// is family then given name, or given then family in the given-prefix tier). Opaque to
/// clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    #[serde(rename = "r")]
    rank: i16,
    #[serde(rename = "a")]
    first: String,
    #[serde(rename = "b")]
    second: String,
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
    rank: i16,
    /// The row's sort key within its rank.
    k1: String,
    k2: String,
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

    /// Records an attempt the caller's roles do not allow and returns the 403 to answer.
    pub async fn deny(&self, ctx: &RequestContext, action: Action, patient_id: Option<Uuid>) -> Error {
        tracing::warn!(
            action = action.as_str(),
            actor = ctx.actor_id.as_deref().unwrap_or("-"),
            "access denied"
        );
        match self.audit.record(AuditEvent::new(ctx, action, patient_id, "denied")).await {
            Ok(()) => Error::Problem(kit::auth::forbidden()),
            Err(err) => err,
        }
    }

    /// 403 (audited) unless the caller may do `action`.
    pub async fn authorize(
        &self,
        ctx: &RequestContext,
        action: Action,
        patient_id: Option<Uuid>,
    ) -> Result<()> {
        if ctx.may(action) { Ok(()) } else { Err(self.deny(ctx, action, patient_id).await) }
    }

    /// Registers a new patient: allocates its MRN and writes version 1 and the audit row.
    ///
    /// Two round trips: the MRN's sequence number (sequences are outside transactions anyway;
    /// a failed registration leaves a gap, never a duplicate), then one statement that writes
    /// the patient, its names to the dictionary, version 1 and the audit row, atomically.
    pub async fn register(&self, draft: PatientDraft, ctx: &RequestContext) -> Result<Patient> {
        let sequence: i64 = sqlx::query_scalar("SELECT nextval('mrn_seq')").fetch_one(&self.pool).await?;
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
        let audit = AuditEvent::new(ctx, Action::Create, Some(patient.id), "ok");
        sqlx::query(
            "WITH names AS (INSERT INTO name_dictionary (name, keys) VALUES ($11, $14), ($12, $15)
                            ON CONFLICT (name) DO NOTHING),
                  patient AS (
                      INSERT INTO patients (id, mrn, given_name, family_name, birth_date, sex, email, email_key,
                                            phone, address, active, version, registered_at, updated_at,
                                            family_sort, given_sort, name_keys)
                      VALUES ($1, $2, $3, $4, $5, $6, $7, lower($7), $8, $9, true, 1, $10, $10, $11, $12, $13)
                      RETURNING id),
                  version AS (
                      INSERT INTO patient_versions (patient_id, version, recorded_at, snapshot)
                      SELECT id, 1, $10, $16 FROM patient)
             INSERT INTO audit_events (action, patient_id, outcome, request_id, actor_id, actor_roles)
             SELECT 'create', id, 'ok', $17, $18, $19 FROM patient",
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
        .bind(names::name_keys(&patient.family_name))
        .bind(names::name_keys(&patient.given_name))
        .bind(Json(&patient))
        .bind(&audit.request_id)
        .bind(&audit.actor_id)
        .bind(&audit.actor_roles)
        .execute(&self.pool)
        .await
        .map_err(duplicate_email)?;
        Ok(patient)
    }

    /// Reads a patient; the read is audited whatever the outcome.
    pub async fn get(&self, id: Uuid, ctx: &RequestContext) -> Result<Patient> {
        let row: Option<PatientRow> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM patients WHERE id = $1"))
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
            "WITH names AS (INSERT INTO name_dictionary (name, keys) VALUES ($11, $14), ($12, $15)
                            ON CONFLICT (name) DO NOTHING)
             UPDATE patients
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
        .bind(names::name_keys(&draft.family_name))
        .bind(names::name_keys(&draft.given_name))
        .fetch_optional(&mut *tx)
        .await
        .map_err(duplicate_email)?;
        let Some(row) = row else {
            return Err(why_not_changed(&mut tx, id).await);
        };
        let patient = Patient::from(row);
        keep_version(&mut tx, &patient).await?;
        let event = AuditEvent::new(ctx, Action::Update, Some(id), "ok")
            .with_details(json!({ "version": patient.version }));
        audit::insert(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(patient)
    }

    /// Deactivates a patient: it keeps its record and history but leaves searches and reads.
    pub async fn deactivate(
        &self,
        id: Uuid,
        expected_version: Option<i32>,
        ctx: &RequestContext,
    ) -> Result<Patient> {
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
        let event = AuditEvent::new(ctx, Action::Deactivate, Some(id), "ok")
            .with_details(json!({ "version": patient.version }));
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

    /// One page of active patients matching `filter`, best matches first (see
    /// [`NameQuery::rank`]); without a name, by family then given name.
    pub async fn search(
        &self,
        filter: &SearchFilter,
        limit: u32,
        after: Option<&Cursor>,
        ctx: &RequestContext,
    ) -> Result<SearchPage> {
        let mut rows = match &filter.name {
            Some(NameQuery::Word(word)) => self.search_word_tiers(filter, word, limit, after).await?,
            _ => ranked_query(filter, limit, after).build_query_as().fetch_all(&self.pool).await?,
        };
        let next = kit::json::next_page(&mut rows, limit, |last| Cursor {
            rank: last.rank,
            first: last.k1.clone(),
            second: last.k2.clone(),
            id: last.patient.id,
        });
        let items: Vec<Patient> = rows.into_iter().map(|r| Patient::from(r.patient)).collect();
        let event = AuditEvent::new(ctx, Action::Search, None, "ok")
            .with_details(json!({ "filters": filter.used(), "results": items.len() }));
        self.audit.record(event).await?;
        Ok(SearchPage { items, next })
    }

    /// Reads the tiers of a one-word query in rank order, from the cursor's tier on, and stops
    /// as soon as the page (plus one row, to know whether there is a next page) is full.
    async fn search_word_tiers(
        &self,
        filter: &SearchFilter,
        word: &WordQuery,
        limit: u32,
        after: Option<&Cursor>,
    ) -> Result<Vec<SearchRow>> {
        let wanted = limit as usize + 1;
        let mut rows: Vec<SearchRow> = Vec::with_capacity(wanted);
        for tier in WordTier::ALL {
            if after.is_some_and(|c| c.rank > tier as i16) {
                continue;
            }
            let cursor = after.filter(|c| c.rank == tier as i16);
            let mut sql = tier_query(filter, word, tier, wanted - rows.len(), cursor);
            rows.extend(sql.build_query_as::<SearchRow>().fetch_all(&self.pool).await?);
            if rows.len() >= wanted {
                break;
            }
        }
        Ok(rows)
    }
}

/// The filters other than the name, as `AND` conditions.
fn push_filters<'a>(sql: &mut QueryBuilder<'a, Postgres>, filter: &'a SearchFilter) {
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
}

/// `AND ([rank,] k1, k2, id) > (cursor)`, then the order and the limit. `ranked` puts the
/// rank first, for queries whose rows carry several ranks.
fn push_page<'a>(
    sql: &mut QueryBuilder<'a, Postgres>,
    keys: (&str, &str),
    ranked: bool,
    cursor: Option<&'a Cursor>,
    rows: usize,
) {
    let (k1, k2) = keys;
    let lead = if ranked { "rank, " } else { "" };
    if let Some(cursor) = cursor {
        sql.push(format!(" AND ({lead}{k1}, {k2}, id) > ("));
        if ranked {
            sql.push_bind(cursor.rank).push(", ");
        }
        sql.push_bind(&cursor.first)
            .push(", ")
            .push_bind(&cursor.second)
            .push(", ")
            .push_bind(cursor.id)
            .push(")");
    }
    sql.push(format!(" ORDER BY {lead}{k1}, {k2}, id LIMIT ")).push_bind(rows as i64);
}

/// One tier of a one-word query. The tiers are disjoint (each excludes what a better tier
/// holds) and each reads `patients_sort` or `patients_given_sort` in order, so a page costs
/// about as many rows as it returns:
///
/// - exact and prefix tiers are ranges of the folded names;
/// - the `*Other` tiers first find, in `name_dictionary`, the distinct names with a word that
///   starts with the query word or is one typo away (a handful), then read exactly those
///   names (`= ANY(sorted names)` on the leading index column keeps the index order).
fn tier_query<'a>(
    filter: &'a SearchFilter,
    q: &'a WordQuery,
    tier: WordTier,
    rows: usize,
    cursor: Option<&'a Cursor>,
) -> QueryBuilder<'a, Postgres> {
    let keys = match tier {
        WordTier::GivenPrefix | WordTier::GivenOther => ("given_sort", "family_sort"),
        _ => ("family_sort", "given_sort"),
    };
    let mut sql = QueryBuilder::new(format!(
        "SELECT {COLUMNS}, {}::smallint AS rank, {} AS k1, {} AS k2 FROM patients WHERE active",
        tier as i16, keys.0, keys.1
    ));
    let (w, end) = (&q.word, &q.prefix_end);
    let not_prefixed = |sql: &mut QueryBuilder<'a, Postgres>, column: &str| {
        sql.push(format!(" AND NOT ({column} >= "))
            .push_bind(w)
            .push(format!(" AND {column} < "))
            .push_bind(end)
            .push(")");
    };
    let similar_names = |sql: &mut QueryBuilder<'a, Postgres>| {
        sql.push("ANY(ARRAY(SELECT name FROM name_dictionary WHERE keys && ")
            .push_bind(&q.keys)
            .push(" ORDER BY name))");
    };
    match tier {
        WordTier::FamilyExact => {
            sql.push(" AND family_sort = ").push_bind(w);
        }
        WordTier::GivenExact => {
            sql.push(" AND given_sort = ").push_bind(w).push(" AND family_sort <> ").push_bind(w);
        }
        WordTier::FamilyPrefix => {
            sql.push(" AND family_sort >= ").push_bind(w).push(" AND family_sort < ").push_bind(end);
            sql.push(" AND family_sort <> ").push_bind(w).push(" AND given_sort <> ").push_bind(w);
        }
        WordTier::GivenPrefix => {
            sql.push(" AND given_sort >= ").push_bind(w).push(" AND given_sort < ").push_bind(end);
            sql.push(" AND given_sort <> ").push_bind(w);
            not_prefixed(&mut sql, "family_sort");
        }
        WordTier::FamilyOther => {
            sql.push(" AND family_sort = ");
            similar_names(&mut sql);
            not_prefixed(&mut sql, "family_sort");
            not_prefixed(&mut sql, "given_sort");
        }
        WordTier::GivenOther => {
            sql.push(" AND given_sort = ");
            similar_names(&mut sql);
            not_prefixed(&mut sql, "family_sort");
            not_prefixed(&mut sql, "given_sort");
            sql.push(" AND NOT family_sort = ");
            similar_names(&mut sql);
        }
    }
    push_filters(&mut sql, filter);
    push_page(&mut sql, keys, false, cursor, rows);
    sql
}

/// Searches without a name (rank 0, indexed order) or with several words (ranked by the keys).
fn ranked_query<'a>(
    filter: &'a SearchFilter,
    limit: u32,
    after: Option<&'a Cursor>,
) -> QueryBuilder<'a, Postgres> {
    let mut sql = QueryBuilder::new("SELECT * FROM (SELECT ");
    sql.push(COLUMNS).push(", family_sort AS k1, given_sort AS k2, ");
    let words = match &filter.name {
        Some(NameQuery::Words(words)) => Some(words),
        _ => None,
    };
    match words {
        Some(q) => {
            sql.push("(CASE WHEN name_keys @> ")
                .push_bind(&q.exact)
                .push(" THEN 0 WHEN name_keys @> ")
                .push_bind(&q.prefix)
                .push(" THEN 1 ELSE 2 END)::smallint");
        }
        None => {
            sql.push("0::smallint");
        }
    }
    sql.push(" AS rank FROM patients WHERE active");
    for word_keys in words.iter().flat_map(|q| &q.fuzzy) {
        sql.push(" AND name_keys && ").push_bind(word_keys);
    }
    push_filters(&mut sql, filter);
    sql.push(") AS matches WHERE true");
    // Without a name every rank is 0: compare and sort on the indexed columns alone.
    push_page(&mut sql, ("k1", "k2"), words.is_some(), after, limit as usize + 1);
    sql
}

async fn keep_version(conn: &mut PgConnection, patient: &Patient) -> Result<()> {
    sqlx::query(
        "INSERT INTO patient_versions (patient_id, version, recorded_at, snapshot) VALUES ($1, $2, $3, $4)",
    )
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
        let cursor = Cursor { rank: 2, first: "müller".into(), second: "anna".into(), id: Uuid::nil() };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(Cursor::decode("not a cursor"), None);
        assert_eq!(Cursor::decode(&URL_SAFE_NO_PAD.encode(b"{\"r\":1}")), None);
    }

    #[test]
    fn one_word_tiers_use_ordered_ranges_and_later_tiers_exclude_earlier_ones() {
        let filter = SearchFilter { name: NameQuery::parse("smi").ok(), ..Default::default() };
        let Some(NameQuery::Word(word)) = &filter.name else { panic!("one word") };
        let sql = tier_query(&filter, word, WordTier::FamilyPrefix, 21, None).into_sql();
        assert!(sql.contains("family_sort >= $1 AND family_sort < $2"), "{sql}");
        assert!(sql.ends_with("ORDER BY family_sort, given_sort, id LIMIT $5"), "{sql}");
        let cursor = Cursor { rank: 3, first: "smith".into(), second: "a".into(), id: Uuid::nil() };
        let sql = tier_query(&filter, word, WordTier::GivenPrefix, 21, Some(&cursor)).into_sql();
        assert!(sql.contains("(given_sort, family_sort, id) > ("), "{sql}");
        assert!(sql.contains("NOT (family_sort >= "), "{sql}");
        let sql = tier_query(&filter, word, WordTier::GivenOther, 21, None).into_sql();
        assert!(
            sql.contains("given_sort = ANY(ARRAY(SELECT name FROM name_dictionary WHERE keys && $1"),
            "{sql}"
        );
        assert!(sql.contains("AND NOT family_sort = ANY(ARRAY("), "{sql}");
        assert!(sql.contains("ORDER BY given_sort, family_sort, id"), "{sql}");
    }

    #[test]
    fn searches_without_a_name_page_on_the_indexed_order() {
        let by_date =
            SearchFilter { birth_date: Some(time::macros::date!(1980 - 01 - 01)), ..Default::default() };
        let cursor = Cursor { rank: 0, first: "a".into(), second: "b".into(), id: Uuid::nil() };
        let sql = ranked_query(&by_date, 20, Some(&cursor)).into_sql();
        assert!(sql.contains("AND (k1, k2, id) > ("), "{sql}");
        assert!(sql.contains("ORDER BY k1, k2, id"), "{sql}");
        let by_words = SearchFilter { name: NameQuery::parse("anna smith").ok(), ..Default::default() };
        let sql = ranked_query(&by_words, 20, None).into_sql();
        assert!(sql.contains("ORDER BY rank, k1, k2, id"), "{sql}");
    }
}
