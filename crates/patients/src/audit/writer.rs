//! The group-committing audit writer for reads and searches.
//!
//! It commits the rows of many concurrent requests in one statement ([`kit::batch`]) and
//! answers each request only once its row is durable: no read is served unaudited, and a busy
//! server pays one commit per batch instead of one per read. If the audit table cannot be
//! written, the read answers 503 rather than showing the data. On shutdown it commits what it
//! holds, then stops.
//!
//! Searches hand their rows here too, although a search could write its row on its own
//! connection after its statements: measured, one commit per search served 25-35 % fewer
//! exact searches than this writer's shared commits (docs/benchmarks.md, 2026-12-06 ninth
//! session).

use kit::{
    batch::{Batcher, Limits},
    tasks::Background,
};
use sqlx::PgPool;

use super::AuditEvent;

/// Rows committed in one statement at most, and requests waiting for the writer at most (more
/// wait for room).
const LIMITS: Limits = Limits { queue: 8192, max_batch: 512 };

/// Hands audit rows to the writer task. Fails once the writer has stopped.
#[derive(Clone)]
pub struct AuditLog {
    batcher: Batcher<AuditEvent, bool>,
}

/// The writer stopped or could not commit: the access must not be served.
#[derive(Debug, thiserror::Error)]
#[error("the audit log cannot record the access")]
pub struct AuditUnavailable;

impl AuditLog {
    /// Starts the writer on `background`; it stops when the background work stops, after
    /// committing every row handed to it before.
    pub fn start(pool: PgPool, background: &Background) -> Self {
        let batcher = Batcher::start(background, "audit writer", LIMITS, move |events| {
            let pool = pool.clone();
            async move { commit(&pool, events).await }
        });
        Self { batcher }
    }

    /// Records `event` and returns once it is committed.
    pub async fn record(&self, event: AuditEvent) -> Result<(), AuditUnavailable> {
        match self.batcher.submit(event).await {
            Ok(true) => Ok(()),
            _ => Err(AuditUnavailable),
        }
    }
}

/// Writes `events` in one statement; answers for each whether it is committed.
async fn commit(pool: &PgPool, events: Vec<AuditEvent>) -> Vec<bool> {
    let rows: Vec<&AuditEvent> = events.iter().collect();
    let committed = match super::insert(pool, &rows).await {
        Ok(()) => true,
        Err(err) => {
            tracing::error!(error = %err, rows = rows.len(), "cannot write audit rows");
            false
        }
    };
    metrics::histogram!("audit_batch_rows").record(rows.len() as f64);
    vec![committed; rows.len()]
}
