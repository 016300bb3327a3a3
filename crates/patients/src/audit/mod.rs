//! The audit trail: who created, read, searched, changed or deactivated which patient record.
//!
//! Writes are audited atomically with the change (in the same statement or transaction, see
//! [`crate::records`]), so a change and its audit row commit together or not at all. Reads by
//! id are fetched and audited many at a time by [`AuditedReads`]; searches, histories and
//! refusals are audited through the group-committing [`AuditLog`]. Both answer each request
//! only once its row is durable. Every audit row is written by the one statement of
//! [`insert_sql`].

mod reader;
mod writer;

use kit::{RequestContext, tasks::Background};
pub use reader::AuditedReads;
use serde_json::Value;
use sqlx::{PgExecutor, PgPool, Postgres, postgres::PgArguments, query::Query};
use uuid::Uuid;
pub use writer::{AuditLog, AuditUnavailable};

use crate::{domain::PatientId, policy::Action};

/// One audit row. `details` must never hold values that identify a patient (no names, no
/// contacts, no search terms): only which filters were used, counts, versions.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub action: Action,
    pub patient_id: Option<PatientId>,
    pub outcome: &'static str,
    pub details: Value,
    pub request_id: Option<String>,
    pub actor_id: Option<String>,
    pub actor_roles: Vec<String>,
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
    pub client_request_id: Option<String>,
}

impl AuditEvent {
    pub fn new(
        ctx: &RequestContext,
        action: Action,
        patient_id: Option<PatientId>,
        outcome: &'static str,
    ) -> Self {
        Self {
            action,
            patient_id,
            outcome,
            details: Value::Object(Default::default()),
            request_id: ctx.request_id.clone(),
            actor_id: Some(ctx.user_id.clone()),
            actor_roles: ctx.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            client_address: ctx.client_address.clone(),
            user_agent: ctx.user_agent.clone(),
            client_request_id: ctx.client_request_id.clone(),
        }
    }

    /// An access by pms itself (`actor` names the command, e.g. `pms seed`), not by a request.
    pub fn system(actor: &str, action: Action, patient_id: Option<PatientId>) -> Self {
        Self {
            action,
            patient_id,
            outcome: "ok",
            details: Value::Object(Default::default()),
            request_id: None,
            actor_id: Some(actor.to_owned()),
            actor_roles: Vec::new(),
            client_address: None,
            user_agent: None,
            client_request_id: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

/// The statement that writes audit rows, one per element of ten array parameters bound
/// from `$first` on by [`bind_rows`]. Standalone, in a transaction, or as the last part of a
/// registration's or a batch of reads' statement: every audit row in the service is written by
/// this text.
pub fn insert_sql(first: usize) -> String {
    insert_sql_with_outcome(first, "o")
}

/// The parameter of [`insert_sql`]'s statement (bound from `$first` on) that holds the rows'
/// patient ids, for a statement that also reads those patients.
pub(crate) fn patient_ids_param(first: usize) -> String {
    format!("${}", first + 1)
}

/// [`insert_sql`], with each row's outcome the SQL expression `outcome` instead of the bound
/// one; it may use the row's patient id as `p` (a read's outcome is what its statement found).
pub(crate) fn insert_sql_with_outcome(first: usize, outcome: &str) -> String {
    let p = |i: usize| format!("${}", first + i);
    format!(
        "INSERT INTO audit_events (action, patient_id, outcome, details, request_id, actor_id, actor_roles,
                                   client_address, user_agent, client_request_id)
         SELECT a, p, {outcome}, d::jsonb, r, ac, coalesce(string_to_array(NULLIF(ro, ''), ','), '{{}}'), ca, ua, cr
         FROM unnest({}::text[], {}::uuid[], {}::text[], {}::text[], {}::text[], {}::text[], {}::text[],
                     {}::text[], {}::text[], {}::text[])
              AS t(a, p, o, d, r, ac, ro, ca, ua, cr)",
        p(0),
        p(1),
        p(2),
        p(3),
        p(4),
        p(5),
        p(6),
        p(7),
        p(8),
        p(9)
    )
}

/// Binds the ten arrays of [`insert_sql`] for `events`, in its parameter order.
pub fn bind_rows<'q>(
    query: Query<'q, Postgres, PgArguments>,
    events: &[&AuditEvent],
) -> Query<'q, Postgres, PgArguments> {
    use kit::auth::Action as _;
    let actions: Vec<&'static str> = events.iter().map(|e| e.action.as_str()).collect();
    let patients: Vec<Option<Uuid>> = events.iter().map(|e| e.patient_id.map(|p| p.as_uuid())).collect();
    let outcomes: Vec<&'static str> = events.iter().map(|e| e.outcome).collect();
    let details: Vec<String> = events.iter().map(|e| e.details.to_string()).collect();
    let requests: Vec<Option<String>> = events.iter().map(|e| e.request_id.clone()).collect();
    let actors: Vec<Option<String>> = events.iter().map(|e| e.actor_id.clone()).collect();
    // Roles never contain commas (they are fixed identifiers), so a joined text survives unnest.
    let roles: Vec<String> = events.iter().map(|e| e.actor_roles.join(",")).collect();
    let column =
        |f: fn(&AuditEvent) -> &Option<String>| events.iter().map(|e| f(e).clone()).collect::<Vec<_>>();
    let (addresses, agents, client_ids) =
        (column(|e| &e.client_address), column(|e| &e.user_agent), column(|e| &e.client_request_id));
    query
        .bind(actions)
        .bind(patients)
        .bind(outcomes)
        .bind(details)
        .bind(requests)
        .bind(actors)
        .bind(roles)
        .bind(addresses)
        .bind(agents)
        .bind(client_ids)
}

/// Writes `events` with `executor` (a pool, or the caller's transaction).
pub async fn insert<'e>(executor: impl PgExecutor<'e>, events: &[&AuditEvent]) -> Result<(), sqlx::Error> {
    let sql = insert_sql(1);
    bind_rows(sqlx::query(&sql), events).execute(executor).await?;
    Ok(())
}

/// One audit row as `GET /api/audit-events` shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditRecord {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub occurred_at: time::OffsetDateTime,
    /// create, read, update, deactivate, history or search.
    pub action: String,
    #[schema(value_type = Option<Uuid>)]
    pub patient_id: Option<PatientId>,
    /// The user id of the caller.
    pub actor_id: Option<String>,
    pub actor_roles: Vec<String>,
    /// The id the gateway assigned to the request.
    pub request_id: Option<String>,
    /// The client's own request id, if it sent one.
    pub client_request_id: Option<String>,
    /// Where the request came from.
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
    /// ok, not_found, gone or denied.
    pub outcome: String,
    /// Which filters a search used and how many results it had; versions of changes. Never
    /// values that identify a patient.
    #[schema(value_type = Object)]
    pub details: Value,
}

/// Which audit rows to list; all given filters must match.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub patient_id: Option<PatientId>,
    pub actor_id: Option<String>,
    pub from: Option<time::OffsetDateTime>,
    pub to: Option<time::OffsetDateTime>,
    /// Rows after this one (keyset paging, newest first).
    pub after: Option<AuditPosition>,
}

/// Where a page of the trail ended: the last row's time (microseconds since the Unix epoch,
/// PostgreSQL's precision) and id. The trail is ordered by both, newest first, which is the
/// order of its primary key and of its per-patient and per-actor indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditPosition {
    pub micros: i64,
    pub id: i64,
}

impl AuditPosition {
    pub fn of(record: &AuditRecord) -> Self {
        Self { micros: (record.occurred_at.unix_timestamp_nanos() / 1_000) as i64, id: record.id }
    }

    fn instant(self) -> Option<time::OffsetDateTime> {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.micros) * 1_000).ok()
    }
}

/// Audit rows matching `query`, newest first. Only the given filters become conditions, so
/// each combination is planned on the index that serves it, and only the months asked for are
/// read (the table is partitioned by month).
pub async fn list(pool: &PgPool, query: &AuditQuery, limit: u32) -> Result<Vec<AuditRecord>, sqlx::Error> {
    let mut sql = sqlx::QueryBuilder::<Postgres>::new(
        "SELECT id, occurred_at, action, patient_id, actor_id, actor_roles, request_id, client_request_id,
                client_address, user_agent, outcome, details
         FROM audit_events WHERE true",
    );
    if let Some(patient) = query.patient_id {
        sql.push(" AND patient_id = ").push_bind(patient);
    }
    if let Some(actor) = &query.actor_id {
        sql.push(" AND actor_id = ").push_bind(actor.clone());
    }
    if let Some(from) = query.from {
        sql.push(" AND occurred_at >= ").push_bind(from);
    }
    if let Some(to) = query.to {
        sql.push(" AND occurred_at < ").push_bind(to);
    }
    if let Some(after) = query.after {
        // A position whose time is out of range cannot come from a row: nothing is after it.
        let Some(at) = after.instant() else { return Ok(Vec::new()) };
        sql.push(" AND (occurred_at, id) < (").push_bind(at).push(", ").push_bind(after.id).push(")");
    }
    sql.push(" ORDER BY occurred_at DESC, id DESC LIMIT ").push_bind(i64::from(limit));
    sql.build_query_as().fetch_all(pool).await
}

/// Creates this month's and the next two months' partitions of the trail where missing.
/// Returns how many it created.
pub async fn ensure_partitions(pool: &PgPool) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar("SELECT ensure_audit_partitions()").fetch_one(pool).await
}

/// How often the service makes sure the coming months have their partitions.
const PARTITION_CHECK: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// Makes sure the trail has partitions for this month and the next two, now and every six
/// hours while the service runs. Without this month's partition no audit row could be
/// written, and reads would answer 503: the months are created long before they begin.
pub async fn keep_partitions(pool: PgPool, background: &Background) {
    async fn check(pool: &PgPool) {
        match ensure_partitions(pool).await {
            Ok(0) => {}
            Ok(created) => tracing::info!(created, "audit partitions created"),
            Err(err) => tracing::error!(error = %err, "cannot create the audit trail's coming partitions"),
        }
    }
    check(&pool).await;
    background.every("audit partitions", PARTITION_CHECK, move || {
        let pool = pool.clone();
        async move { check(&pool).await }
    });
}
