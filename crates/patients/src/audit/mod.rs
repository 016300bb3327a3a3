//! The audit trail: who created, read, searched, changed or deactivated which patient record.
//!
//! Writes are audited atomically with the change (in the same statement or transaction, see
//! [`crate::records`]), so a change and its audit row commit together or not at all. Reads and
//! searches are audited through the group-committing [`AuditLog`], which answers each request
//! only once its row is durable. Every audit row is written by the one statement of
//! [`insert_sql`].

mod writer;

use kit::RequestContext;
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
/// registration's statement: every audit row in the service is written by this text.
pub fn insert_sql(first: usize) -> String {
    let p = |i: usize| format!("${}", first + i);
    format!(
        "INSERT INTO audit_events (action, patient_id, outcome, details, request_id, actor_id, actor_roles,
                                   client_address, user_agent, client_request_id)
         SELECT a, p, o, d::jsonb, r, ac, coalesce(string_to_array(NULLIF(ro, ''), ','), '{{}}'), ca, ua, cr
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
    /// Rows with a smaller id than this (keyset paging, newest first).
    pub before_id: Option<i64>,
}

/// Audit rows matching `query`, newest first.
pub async fn list(pool: &PgPool, query: &AuditQuery, limit: u32) -> Result<Vec<AuditRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, occurred_at, action, patient_id, actor_id, actor_roles, request_id, client_request_id,
                client_address, user_agent, outcome, details
         FROM audit_events
         WHERE ($1::uuid IS NULL OR patient_id = $1) AND ($2::text IS NULL OR actor_id = $2)
           AND ($3::timestamptz IS NULL OR occurred_at >= $3) AND ($4::timestamptz IS NULL OR occurred_at < $4)
           AND ($5::bigint IS NULL OR id < $5)
         ORDER BY id DESC LIMIT $6",
    )
    .bind(query.patient_id)
    .bind(&query.actor_id)
    .bind(query.from)
    .bind(query.to)
    .bind(query.before_id)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
}
