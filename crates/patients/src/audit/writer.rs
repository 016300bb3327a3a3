//! The group-committing audit writer for reads and searches.
//!
//! It commits the rows of many concurrent requests in one statement and answers each request
//! only once its row is durable: no read is served unaudited, and a busy server pays one
//! commit per batch instead of one per read. If the audit table cannot be written, the read
//! answers 503 rather than showing the data. On shutdown it commits what it holds, then stops.

use kit::tasks::Background;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::AuditEvent;

/// Rows committed in one statement at most.
const MAX_BATCH: usize = 512;
/// Requests waiting for the writer at most; more wait for room (backpressure).
const QUEUE: usize = 8192;

struct Pending {
    event: AuditEvent,
    done: oneshot::Sender<bool>,
}

/// Hands audit rows to the writer task. Fails once the writer has stopped.
#[derive(Clone)]
pub struct AuditLog {
    sender: mpsc::Sender<Pending>,
}

/// The writer stopped or could not commit: the access must not be served.
#[derive(Debug, thiserror::Error)]
#[error("the audit log cannot record the access")]
pub struct AuditUnavailable;

impl AuditLog {
    /// Starts the writer on `background`; it stops when the background work stops, after
    /// committing every row handed to it before.
    pub fn start(pool: PgPool, background: &Background) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        background.spawn("audit writer", move |stop| write_batches(pool, receiver, stop));
        Self { sender }
    }

    /// Records `event` and returns once it is committed.
    pub async fn record(&self, event: AuditEvent) -> Result<(), AuditUnavailable> {
        let (done, committed) = oneshot::channel();
        self.sender.send(Pending { event, done }).await.map_err(|_| AuditUnavailable)?;
        match committed.await {
            Ok(true) => Ok(()),
            _ => Err(AuditUnavailable),
        }
    }
}

async fn write_batches(pool: PgPool, mut receiver: mpsc::Receiver<Pending>, stop: CancellationToken) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        tokio::select! {
            received = receiver.recv_many(&mut batch, MAX_BATCH) => {
                if received == 0 {
                    return;
                }
                commit(&pool, &mut batch).await;
            }
            () = stop.cancelled() => break,
        }
    }
    // Stopping: refuse new rows, commit every row already handed over, then end.
    receiver.close();
    while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
        commit(&pool, &mut batch).await;
    }
}

async fn commit(pool: &PgPool, batch: &mut Vec<Pending>) {
    let events: Vec<&AuditEvent> = batch.iter().map(|p| &p.event).collect();
    let committed = match super::insert(pool, &events).await {
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
