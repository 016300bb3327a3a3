//! The audit trail: who created, read, searched, changed or deactivated which patient record.
//!
//! Writes are audited atomically with the change (a registration in its one statement, updates
//! and deactivations with [`insert`] in their transaction), so a change and its audit row
//! commit together or not at all. Reads are audited through [`AuditLog`], which commits the
//! rows of many concurrent requests in one statement (group commit) and answers each request
//! only once its row is durable: no read is served unaudited, and a busy server pays one
//! commit per batch instead of one per read. If the audit table cannot be written, the read
//! answers 503 rather than showing the data.

use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::{
    context::RequestContext,
    error::{Error, Result},
};

/// Rows committed in one statement at most.
const MAX_BATCH: usize = 512;
/// Requests waiting for the writer at most; more wait for room (backpressure).
const QUEUE: usize = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Read,
    Update,
    Deactivate,
    History,
    Search,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Read => "read",
            Action::Update => "update",
            Action::Deactivate => "deactivate",
            Action::History => "history",
            Action::Search => "search",
        }
    }
}

/// One audit row. `details` must never hold values that identify a patient (no names, no
/// contacts, no search terms): only which filters were used, counts, versions.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub action: Action,
    pub patient_id: Option<Uuid>,
    pub outcome: &'static str,
    pub details: Value,
    pub request_id: Option<String>,
    pub actor_id: Option<String>,
    pub actor_roles: Vec<String>,
}

impl AuditEvent {
    pub fn new(
        ctx: &RequestContext,
        action: Action,
        patient_id: Option<Uuid>,
        outcome: &'static str,
    ) -> Self {
        Self {
            action,
            patient_id,
            outcome,
            details: Value::Object(Default::default()),
            request_id: ctx.request_id.clone(),
            actor_id: ctx.actor_id.clone(),
            actor_roles: ctx.actor_roles.iter().map(|r| r.as_str().to_owned()).collect(),
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

/// Writes `event` inside the caller's transaction.
pub async fn insert(conn: &mut PgConnection, event: &AuditEvent) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_events (action, patient_id, outcome, details, request_id, actor_id, actor_roles)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(event.action.as_str())
    .bind(event.patient_id)
    .bind(event.outcome)
    .bind(&event.details)
    .bind(&event.request_id)
    .bind(&event.actor_id)
    .bind(&event.actor_roles)
    .execute(conn)
    .await?;
    Ok(())
}

struct Pending {
    event: AuditEvent,
    done: oneshot::Sender<bool>,
}

/// Group-committing audit writer for reads and searches.
#[derive(Clone)]
pub struct AuditLog {
    sender: mpsc::Sender<Pending>,
}

impl AuditLog {
    /// Starts the writer task; it ends when the last `AuditLog` clone is dropped.
    pub fn spawn(pool: PgPool) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(pool, receiver));
        Self { sender }
    }

    /// Records `event` and returns once it is committed.
    pub async fn record(&self, event: AuditEvent) -> Result<()> {
        let (done, committed) = oneshot::channel();
        self.sender.send(Pending { event, done }).await.map_err(|_| Error::AuditUnavailable)?;
        match committed.await {
            Ok(true) => Ok(()),
            _ => Err(Error::AuditUnavailable),
        }
    }
}

async fn write_batches(pool: PgPool, mut receiver: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let committed = match insert_batch(&pool, &batch).await {
            Ok(()) => true,
            Err(err) => {
                tracing::error!(error = %err, rows = batch.len(), "cannot write audit rows");
                false
            }
        };
        metrics::histogram!("audit_batch_rows").record(batch.len() as f64);
        for pending in batch.drain(..) {
            let _ = pending.done.send(committed);
        }
    }
}

async fn insert_batch(pool: &PgPool, batch: &[Pending]) -> Result<(), sqlx::Error> {
    let events = batch.iter().map(|p| &p.event);
    let actions: Vec<&str> = events.clone().map(|e| e.action.as_str()).collect();
    let patients: Vec<Option<Uuid>> = events.clone().map(|e| e.patient_id).collect();
    let outcomes: Vec<&str> = events.clone().map(|e| e.outcome).collect();
    let details: Vec<String> = events.clone().map(|e| e.details.to_string()).collect();
    let requests: Vec<Option<&str>> = events.clone().map(|e| e.request_id.as_deref()).collect();
    let actors: Vec<Option<&str>> = events.clone().map(|e| e.actor_id.as_deref()).collect();
    // Roles never contain commas (they are fixed identifiers), so a joined text survives unnest.
    let roles: Vec<String> = events.map(|e| e.actor_roles.join(",")).collect();
    sqlx::query(
        "INSERT INTO audit_events (action, patient_id, outcome, details, request_id, actor_id, actor_roles)
         SELECT a, p, o, d::jsonb, r, ac, coalesce(string_to_array(NULLIF(ro, ''), ','), '{}')
         FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
              AS t(a, p, o, d, r, ac, ro)",
    )
    .bind(&actions)
    .bind(&patients)
    .bind(&outcomes)
    .bind(&details)
    .bind(&requests)
    .bind(&actors)
    .bind(&roles)
    .execute(pool)
    .await?;
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
    pub patient_id: Option<Uuid>,
    /// The user id of the caller.
    pub actor_id: Option<String>,
    pub actor_roles: Vec<String>,
    pub request_id: Option<String>,
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
    pub patient_id: Option<Uuid>,
    pub actor_id: Option<String>,
    pub from: Option<time::OffsetDateTime>,
    pub to: Option<time::OffsetDateTime>,
    /// Rows with a smaller id than this (keyset paging, newest first).
    pub before_id: Option<i64>,
}

/// Audit rows matching `query`, newest first.
pub async fn list(pool: &PgPool, query: &AuditQuery, limit: u32) -> Result<Vec<AuditRecord>> {
    Ok(sqlx::query_as(
        "SELECT id, occurred_at, action, patient_id, actor_id, actor_roles, request_id, outcome, details
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
    .await?)
}
