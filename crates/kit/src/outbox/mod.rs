//! The transactional outbox: a state change and the events it causes commit in one database
//! transaction, and a relay delivers the events afterwards, so nothing is lost when the
//! broker (or the service an event drives) is down, and nothing is sent for a change that
//! rolled back.
//!
//! A service writes [`OutboxEvent`]s into its own `outbox` table with [`insert_sql`] /
//! [`bind_rows`] inside the transaction (or statement) of the change. Each row names a
//! *sink*: `kafka` for the service's topic, or another name for a call the event must drive
//! (the patients service's `billing` sink opens billing accounts over gRPC). One [`Relay`] per
//! sink reads pending rows in commit-id order, hands them to its [`Publisher`], marks them
//! published, and prunes published rows after a while. While a publisher fails the relay
//! backs off (up to [`RelayConfig::max_backoff`]) and tries the same rows again.
//!
//! Delivery is at least once: a crash between a publish and its mark sends those rows again
//! on restart, so every consumer deduplicates by event id. On a clean stop the relay finishes
//! the batch it holds (publishes and marks it) before it returns.
//!
//! Several replicas of a service each run a relay; a pass holds a transaction-scoped advisory
//! lock named after the sink, so at any moment at most one of them publishes a sink's rows.
//! (`FOR UPDATE SKIP LOCKED` would let two replicas publish at once, but the second would skip
//! past rows the first still holds and could publish a newer event of the same record before
//! an older one; one publisher per sink keeps each record's events in order.)
//!
//! The table, created by each service's own migration (patients: 0006_outbox.sql):
//! ```sql
//! CREATE TABLE outbox (
//!     id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
//!     sink text NOT NULL, topic text NOT NULL, key text NOT NULL,
//!     event_id uuid NOT NULL, event_type text NOT NULL, payload bytea NOT NULL,
//!     created_at timestamptz NOT NULL DEFAULT now(), published_at timestamptz);
//! CREATE INDEX outbox_pending ON outbox (sink, id) WHERE published_at IS NULL;
//! ```

mod event;
mod kafka;
mod memory;
mod relay;

pub use event::{
    OutboxEvent, bind_rows, insert, insert_sql, instant as event_instant, timestamp as event_timestamp,
};
pub use kafka::KafkaPublisher;
pub use memory::MemoryPublisher;
pub use relay::{Relay, RelayConfig};
use uuid::Uuid;

/// A pending outbox row, as a relay hands it to its publisher.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Message {
    pub id: i64,
    pub topic: String,
    /// The aggregate id: the Kafka key, so one record's events stay on one partition.
    pub key: String,
    pub event_id: Uuid,
    pub event_type: String,
    /// The encoded [`proto::events::v1::Envelope`].
    pub payload: Vec<u8>,
}

/// Why a publisher could not deliver a batch; the relay retries the whole batch later.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PublishError(pub String);

/// Where a relay delivers its sink's events: Kafka, another service, or memory in unit tests.
/// `publish` succeeds only when every message of the batch is delivered, in order per key.
pub trait Publisher: Send + Sync + 'static {
    fn publish(&self, batch: &[Message]) -> impl Future<Output = Result<(), PublishError>> + Send;
}

#[cfg(test)]
mod tests;
