//! What a write puts in the outbox, and the one statement that puts it there.

use proto::{Message as _, Timestamp, events::v1::Envelope};
use sqlx::{PgExecutor, Postgres, postgres::PgArguments, query::Query};
use time::OffsetDateTime;
use uuid::Uuid;

/// The envelope schema version this code writes.
const SCHEMA_VERSION: u32 = 1;

/// One event to deliver to one sink, already wrapped in its envelope.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub sink: &'static str,
    pub topic: String,
    pub key: String,
    pub event_id: Uuid,
    pub event_type: &'static str,
    pub payload: Vec<u8>,
}

impl OutboxEvent {
    /// `message` (of protobuf type `event_type`, e.g. `pms.patients.v1.PatientRegistered`)
    /// about aggregate `key`, in a new envelope: a fresh UUIDv7, the commit time and the trace
    /// id of the request that caused it.
    pub fn new(
        sink: &'static str,
        topic: &str,
        event_type: &'static str,
        key: Uuid,
        trace_id: Option<&str>,
        occurred_at: OffsetDateTime,
        message: &impl proto::Message,
    ) -> Self {
        let event_id = Uuid::now_v7();
        let envelope = Envelope {
            event_id: event_id.to_string(),
            event_type: event_type.to_owned(),
            occurred_at: Some(timestamp(occurred_at)),
            aggregate_id: key.to_string(),
            trace_id: trace_id.unwrap_or_default().to_owned(),
            schema_version: SCHEMA_VERSION,
            payload: message.encode_to_vec(),
        };
        Self {
            sink,
            topic: topic.to_owned(),
            key: key.to_string(),
            event_id,
            event_type,
            payload: envelope.encode_to_vec(),
        }
    }

    /// The same event for another sink (same event id: a consumer of both sees one event).
    pub fn for_sink(&self, sink: &'static str) -> Self {
        Self { sink, ..self.clone() }
    }

    /// The event as a relay reads it back from the outbox table, as row `id`: what a
    /// [`Publisher`](super::Publisher) is handed (tests and benchmarks that publish directly).
    pub fn into_message(self, id: i64) -> super::Message {
        super::Message {
            id,
            topic: self.topic,
            key: self.key,
            event_id: self.event_id,
            event_type: self.event_type.to_owned(),
            payload: self.payload,
        }
    }
}

/// A protobuf timestamp of `at`.
pub fn timestamp(at: OffsetDateTime) -> Timestamp {
    Timestamp { seconds: at.unix_timestamp(), nanos: at.nanosecond() as i32 }
}

/// The instant a protobuf timestamp names (the reverse of [`timestamp`]); `None` when it is out
/// of range.
pub fn instant(t: &Timestamp) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos))
        .ok()
}

/// The statement that writes outbox rows, one per element of six array parameters bound from
/// `$first` on by [`bind_rows`]. Standalone, in a transaction, or as part of a larger
/// statement (append `WHERE k IN (...)` to keep only the rows of changes that happened).
pub fn insert_sql(first: usize) -> String {
    let p = |i: usize| format!("${}", first + i);
    format!(
        "INSERT INTO outbox (sink, topic, key, event_id, event_type, payload)
         SELECT s, t, k, e, ty, pl
         FROM unnest({}::text[], {}::text[], {}::text[], {}::uuid[], {}::text[], {}::bytea[])
              AS o(s, t, k, e, ty, pl)",
        p(0),
        p(1),
        p(2),
        p(3),
        p(4),
        p(5)
    )
}

/// Binds the six arrays of [`insert_sql`] for `events`, in its parameter order.
pub fn bind_rows<'q>(
    query: Query<'q, Postgres, PgArguments>,
    events: &[OutboxEvent],
) -> Query<'q, Postgres, PgArguments> {
    query
        .bind(events.iter().map(|e| e.sink).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.topic.clone()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.key.clone()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.event_id).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.event_type).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.payload.clone()).collect::<Vec<_>>())
}

/// Writes `events` with `executor` (the transaction of the change they come from).
pub async fn insert<'e>(executor: impl PgExecutor<'e>, events: &[OutboxEvent]) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let sql = insert_sql(1);
    bind_rows(sqlx::query(&sql), events).execute(executor).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timestamp_names_the_instant_it_was_made_of() {
        let at = time::macros::datetime!(2026-12-03 16:45:01.123456789 UTC);
        assert_eq!(instant(&timestamp(at)), Some(at));
        assert_eq!(instant(&Timestamp { seconds: i64::MAX, nanos: 0 }), None, "out of range");
    }
}
