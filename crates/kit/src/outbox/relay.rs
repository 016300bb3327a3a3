//! The relay: the loop that moves one sink's pending outbox rows to its publisher.

use std::{sync::Arc, time::Duration};

use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Message, Publisher};
use crate::{
    config::{self, ConfigError},
    tasks::Background,
};

/// How a relay paces itself (`PMS_OUTBOX_*`, docs/configuration.md).
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Rows published per pass at most (`PMS_OUTBOX_BATCH`).
    pub batch: i64,
    /// How often to look for rows written by other processes (`PMS_OUTBOX_POLL_MS`); writes of
    /// this process wake the relay at once.
    pub poll: Duration,
    /// Longest wait between retries while the publisher fails (`PMS_OUTBOX_MAX_BACKOFF_MS`).
    pub max_backoff: Duration,
    /// How long published rows are kept before they are pruned (`PMS_OUTBOX_KEEP_MS`).
    pub keep_published: Duration,
    /// How long a stopping relay still waits for the publisher to take the batch in hand
    /// (`PMS_OUTBOX_STOP_GRACE_MS`; keep it under `PMS_SHUTDOWN_DEADLINE_MS`).
    pub stop_grace: Duration,
}

impl RelayConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            batch: config::parse_or("PMS_OUTBOX_BATCH", 500)?,
            poll: config::millis_or("PMS_OUTBOX_POLL_MS", Duration::from_millis(200))?,
            max_backoff: config::millis_or("PMS_OUTBOX_MAX_BACKOFF_MS", Duration::from_secs(5))?,
            keep_published: config::millis_or("PMS_OUTBOX_KEEP_MS", Duration::from_secs(60))?,
            stop_grace: config::millis_or("PMS_OUTBOX_STOP_GRACE_MS", Duration::from_secs(5))?,
        })
    }
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch: 500,
            poll: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            keep_published: Duration::from_secs(60),
            stop_grace: Duration::from_secs(5),
        }
    }
}

/// A running relay for one sink. Cloning shares it.
#[derive(Clone)]
pub struct Relay {
    wake: Arc<Notify>,
}

/// What one pass did.
enum Pass {
    /// Published this many rows (0: nothing was pending).
    Published(usize),
    /// Another replica holds the sink.
    Busy,
}

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const PRUNE_EVERY: Duration = Duration::from_secs(10);

impl Relay {
    /// Starts relaying `sink`'s rows of `pool`'s outbox to `publisher` on `background`, and
    /// pruning its published rows. On stop it finishes the pass in progress, waiting at most
    /// a few seconds for a publisher that does not answer.
    pub fn start(
        pool: PgPool,
        sink: &'static str,
        publisher: impl Publisher,
        config: RelayConfig,
        background: &Background,
    ) -> Self {
        let wake = Arc::new(Notify::new());
        let relay = Self { wake: wake.clone() };
        let prune_pool = pool.clone();
        let keep = config.keep_published;
        background.spawn("outbox relay", move |cancel| async move {
            run(pool, sink, publisher, config, wake, cancel).await;
        });
        background.every("outbox prune", PRUNE_EVERY, move || {
            let pool = prune_pool.clone();
            async move {
                if let Err(err) = prune(&pool, sink, keep).await {
                    tracing::warn!(sink, error = %err, "cannot prune published outbox rows");
                }
            }
        });
        relay
    }

    /// Tells the relay that rows were just committed, so it need not wait for its next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

async fn run(
    pool: PgPool,
    sink: &'static str,
    publisher: impl Publisher,
    config: RelayConfig,
    wake: Arc<Notify>,
    cancel: CancellationToken,
) {
    let mut backoff = FIRST_BACKOFF;
    while !cancel.is_cancelled() {
        let outcome = tokio::select! {
            outcome = pass(&pool, sink, &publisher, config.batch) => outcome,
            () = stopped_for(&cancel, config.stop_grace) => {
                // The broker has not acknowledged the batch in hand (it is down or stalled):
                // its rows stay pending, rolled back with the pass, and the next start sends
                // them again (consumers drop what they already have by its event id).
                tracing::warn!(sink, "stopping with an unacknowledged batch; it is sent again after the restart");
                break;
            }
        };
        let wait = match outcome {
            Ok(Pass::Published(n)) => {
                backoff = FIRST_BACKOFF;
                if n as i64 == config.batch {
                    continue; // more are pending
                }
                config.poll
            }
            Ok(Pass::Busy) => config.poll,
            Err(err) => {
                metrics::counter!("outbox_publish_failures_total", "sink" => sink).increment(1);
                tracing::warn!(sink, error = %err, retry_in_ms = backoff.as_millis() as u64, "cannot relay outbox rows");
                let wait = backoff.mul_f64(0.5 + fastrand::f64());
                backoff = (backoff * 2).min(config.max_backoff);
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(wait) => continue,
                }
            }
        };
        tokio::select! {
            () = cancel.cancelled() => break,
            () = wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Returns `grace` after `cancel` is cancelled.
async fn stopped_for(cancel: &CancellationToken, grace: Duration) {
    cancel.cancelled().await;
    tokio::time::sleep(grace).await;
}

/// One pass: under the sink's lock, the oldest pending rows are published and marked, all in
/// one transaction (a failed publish marks nothing).
async fn pass(
    pool: &PgPool,
    sink: &'static str,
    publisher: &impl Publisher,
    batch: i64,
) -> Result<Pass, Box<dyn std::error::Error + Send + Sync>> {
    let mut tx = pool.begin().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(hashtext('pms.outbox.' || $1))")
        .bind(sink)
        .fetch_one(&mut *tx)
        .await?;
    if !locked {
        return Ok(Pass::Busy);
    }
    let rows: Vec<Message> = sqlx::query_as(
        "SELECT id, topic, key, event_id, event_type, payload FROM outbox
         WHERE sink = $1 AND published_at IS NULL ORDER BY id LIMIT $2",
    )
    .bind(sink)
    .bind(batch)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(Pass::Published(0));
    }
    publisher.publish(&rows).await?;
    let ids: Vec<i64> = rows.iter().map(|m| m.id).collect();
    // The moment the publisher acknowledged the batch (not the pass's start, `now()`), so that
    // `published_at - created_at` is the relay's part of an event's delay (bench-events.sh).
    sqlx::query("UPDATE outbox SET published_at = clock_timestamp() WHERE id = ANY($1)")
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    metrics::counter!("outbox_published_total", "sink" => sink).increment(rows.len() as u64);
    Ok(Pass::Published(rows.len()))
}

/// Deletes `sink`'s rows published more than `keep` ago.
pub(super) async fn prune(pool: &PgPool, sink: &str, keep: Duration) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM outbox WHERE sink = $1 AND published_at < now() - make_interval(secs => $2)")
        .bind(sink)
        .bind(keep.as_secs_f64())
        .execute(pool)
        .await?;
    Ok(())
}
