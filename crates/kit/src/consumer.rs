//! Consuming events: one consumer group per service, batches handed to the service's
//! [`Handler`], poison records parked in a dead-letter topic, offsets committed only after a
//! batch was handled (together, every `PMS_KAFKA_COMMIT_INTERVAL_MS`, and when stopping), and
//! the group's lag as a metric.
//!
//! Delivery is at least once (a crash replays what was handled but not yet committed), so a
//! handler makes each event's effect happen once by recording its event id in the same
//! transaction as the effect. A record that is not an [`Envelope`] (or whose payload the
//! handler cannot decode) is produced to the dead-letter topic with its key, value and the
//! reason as a header, logged without its content, and passed over: it never stops the
//! consumer. While the handler fails (the database is down) the same batch is retried with
//! backoff; nothing is committed past it.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use proto::{Message as _, events::v1::Envelope};
use rdkafka::{
    Message, Offset, TopicPartitionList,
    consumer::{CommitMode, Consumer as _, StreamConsumer},
    error::{KafkaError, RDKafkaErrorCode},
    message::{Header, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};
use tokio_util::sync::CancellationToken;

use crate::{kafka::KafkaConfig, tasks::Background};

/// One record of a batch, decoded to its envelope.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub envelope: Envelope,
    pub key: Vec<u8>,
    pub payload: Vec<u8>,
}

/// What a handler says about a batch it handled: which of its deliveries (by index) it could
/// not understand, to be parked.
#[derive(Debug, Default)]
pub struct Handled {
    pub poison: Vec<(usize, String)>,
}

/// A service's handling of its events. `handle` is called with up to `max_batch` deliveries
/// in topic order per partition; it succeeds only when their effects are committed.
pub trait Handler: Send + Sync + 'static {
    fn handle(
        &self,
        batch: &[Delivery],
    ) -> impl Future<Output = Result<Handled, Box<dyn std::error::Error + Send + Sync>>> + Send;
}

/// How the consumer is set up.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub group: String,
    pub topics: Vec<String>,
    /// Where poison records go.
    pub dead_letter_topic: String,
    pub max_batch: usize,
}

const MAX_BACKOFF: Duration = Duration::from_secs(5);
const LAG_EVERY: Duration = Duration::from_secs(5);

/// Starts consuming on `background` until it stops; the batch in hand is finished and its
/// offsets committed first.
pub fn start(
    kafka: &KafkaConfig,
    config: ConsumerConfig,
    handler: impl Handler,
    background: &Background,
) -> Result<(), rdkafka::error::KafkaError> {
    let mut settings = kafka.client_config();
    settings
        .set("group.id", &config.group)
        // Offsets of handled batches are stored as they are handled and committed together
        // every `commit_interval` (and when stopping or giving partitions up), not once per
        // batch: each commit is a write per partition at the broker, and under load a batch
        // is a few events. A crash replays at most that interval, which the handlers'
        // processed event ids absorb.
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.commit.interval.ms", kafka.commit_interval.as_millis().to_string())
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        // A fetch waits at most this long for records (librdkafka's default, 500 ms, is what
        // a quiet topic adds to every event's delay on Tansu: scripts/bench-events.sh).
        .set("fetch.wait.max.ms", kafka.fetch_wait.as_millis().to_string())
        // Notice new partitions (and topics created late) within seconds, not 5 minutes.
        .set("topic.metadata.refresh.interval.ms", "10000");
    let consumer: StreamConsumer = settings.create()?;
    let consumer = Arc::new(ClosedAside(Some(consumer)));
    let producer = kafka.producer()?;
    let lag_consumer = consumer.clone();
    let kafka = kafka.clone();
    background.spawn("event consumer", move |cancel| async move {
        // The topics must exist before the subscription, or the group waits for the next
        // metadata refresh to see them; the broker may still be down, so keep trying.
        let mut topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
        topics.push(&config.dead_letter_topic);
        let mut backoff = Duration::from_millis(100);
        while let Err(err) = crate::kafka::ensure_topics(&kafka, &topics).await {
            tracing::warn!(error = %err, "cannot reach the broker to set up the topics; retrying");
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(backoff) => backoff = (backoff * 2).min(MAX_BACKOFF),
            }
        }
        topics.pop();
        if let Err(err) = consumer.subscribe(&topics) {
            tracing::error!(error = %err, "cannot subscribe; no events are consumed");
            return;
        }
        run(consumer, producer, config, handler, cancel).await;
    });
    background.every("consumer lag", LAG_EVERY, move || {
        let consumer = lag_consumer.clone();
        async move {
            let _ = tokio::task::spawn_blocking(move || record_lag(&consumer)).await;
        }
    });
    Ok(())
}

/// Records `event_ids` in the service's `processed_events (event_id uuid PRIMARY KEY)` table,
/// in the transaction of the events' effects, in one statement: the ids recorded now (the
/// first delivery of each; an id already there, or twice in `event_ids`, is a redelivery whose
/// effect is skipped). Take each id out of the set as its effect is applied, so that a second
/// copy in the same batch is skipped too.
pub async fn first_deliveries(
    conn: &mut sqlx::PgConnection,
    event_ids: &[uuid::Uuid],
) -> Result<std::collections::HashSet<uuid::Uuid>, sqlx::Error> {
    if event_ids.is_empty() {
        return Ok(Default::default());
    }
    let new: Vec<uuid::Uuid> = sqlx::query_scalar(
        "INSERT INTO processed_events (event_id) SELECT * FROM unnest($1::uuid[])
         ON CONFLICT DO NOTHING RETURNING event_id",
    )
    .bind(event_ids)
    .fetch_all(conn)
    .await?;
    Ok(new.into_iter().collect())
}

/// Owns a consumer and closes it on a thread of its own when dropped. Closing leaves the
/// group, which waits for the broker: a service stopping must not wait on it, and a process
/// whose broker is already gone (a test that ended) would wait forever.
struct ClosedAside(Option<StreamConsumer>);

impl std::ops::Deref for ClosedAside {
    type Target = StreamConsumer;

    fn deref(&self) -> &StreamConsumer {
        // Some until dropped.
        self.0.as_ref().expect("a consumer not yet dropped")
    }
}

impl Drop for ClosedAside {
    fn drop(&mut self) {
        if let Some(consumer) = self.0.take() {
            let closing =
                std::thread::Builder::new().name("consumer close".into()).spawn(move || drop(consumer));
            if let Err(err) = closing {
                tracing::warn!(error = %err, "cannot close the consumer aside; it is left open");
            }
        }
    }
}

async fn run(
    consumer: Arc<ClosedAside>,
    producer: FutureProducer,
    config: ConsumerConfig,
    handler: impl Handler,
    cancel: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            () = cancel.cancelled() => break,
            received = consumer.recv() => received,
        };
        let first = match first {
            Ok(message) => message.detach(),
            Err(err) => {
                tracing::warn!(error = %err, "cannot consume; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        // Whatever else is already here joins the batch.
        let mut records = vec![first];
        while records.len() < config.max_batch {
            match tokio::time::timeout(Duration::from_millis(1), consumer.recv()).await {
                Ok(Ok(message)) => records.push(message.detach()),
                _ => break,
            }
        }
        handle_batch(&consumer, &producer, &config, &handler, records, &cancel).await;
    }
    // Commit what was handled (a batch that could not be handled stored nothing), so that a
    // restart resumes right after it, then leave the group now (it does not wait), so another
    // replica takes the partitions at once rather than after the session times out: the close
    // that follows runs aside and may not finish before the process exits.
    let closing = consumer.clone();
    let committed =
        tokio::task::spawn_blocking(move || closing.commit_consumer_state(CommitMode::Sync)).await;
    match committed {
        Ok(Ok(())) | Ok(Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset))) => {}
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "cannot commit offsets; the records are handled again after a restart")
        }
        Err(err) => tracing::warn!(error = %err, "the final commit did not run"),
    }
    consumer.unsubscribe();
}

/// Handles `records` (retrying while the handler fails, unless stopping), parks poison, then
/// commits the batch's offsets.
async fn handle_batch(
    consumer: &StreamConsumer,
    producer: &FutureProducer,
    config: &ConsumerConfig,
    handler: &impl Handler,
    records: Vec<rdkafka::message::OwnedMessage>,
    cancel: &CancellationToken,
) {
    let mut deliveries = Vec::with_capacity(records.len());
    let mut poison: Vec<(&rdkafka::message::OwnedMessage, String)> = Vec::new();
    let mut sources = Vec::with_capacity(records.len());
    for record in &records {
        let payload = record.payload().unwrap_or_default();
        match Envelope::decode(payload) {
            Ok(envelope) if !envelope.event_id.is_empty() => {
                sources.push(record);
                deliveries.push(Delivery {
                    envelope,
                    key: record.key().unwrap_or_default().to_vec(),
                    payload: payload.to_vec(),
                });
            }
            Ok(_) => poison.push((record, "an envelope without an event id".to_owned())),
            Err(err) => poison.push((record, format!("not an event envelope: {err}"))),
        }
    }
    let mut backoff = Duration::from_millis(100);
    loop {
        match handler.handle(&deliveries).await {
            Ok(handled) => {
                poison.extend(
                    handled.poison.into_iter().filter_map(|(i, why)| sources.get(i).map(|r| (*r, why))),
                );
                break;
            }
            Err(err) => {
                metrics::counter!("consumer_handler_failures_total").increment(1);
                tracing::warn!(error = %err, retry_in_ms = backoff.as_millis() as u64, "cannot handle a batch of events");
                if cancel.is_cancelled() {
                    // Stopping: nothing of this batch is committed, so it is handled after the restart.
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    for (record, why) in poison {
        park(producer, &config.dead_letter_topic, record, &why).await;
    }
    metrics::counter!("consumer_events_total").increment(deliveries.len() as u64);
    store(consumer, &records);
}

/// Produces `record` to the dead-letter topic, retrying until it is there (a parked record
/// must not be lost), and logs where it came from, never its content.
async fn park(producer: &FutureProducer, topic: &str, record: &rdkafka::message::OwnedMessage, why: &str) {
    let origin = format!("{}/{}/{}", record.topic(), record.partition(), record.offset());
    tracing::error!(%origin, reason = why, dead_letter_topic = topic, "a poison record was parked");
    metrics::counter!("consumer_poison_total").increment(1);
    let headers = OwnedHeaders::new()
        .insert(Header { key: "pms-dead-letter-reason", value: Some(why) })
        .insert(Header { key: "pms-dead-letter-origin", value: Some(origin.as_str()) });
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut out =
            FutureRecord::to(topic).payload(record.payload().unwrap_or_default()).headers(headers.clone());
        if let Some(key) = record.key() {
            out = out.key(key);
        }
        match producer.send(out, Duration::from_secs(5)).await {
            Ok(_) => return,
            Err((err, _)) => {
                tracing::warn!(error = %err, "cannot park a poison record yet; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Stores, per partition, the offset after the last record of `records`: the next commit
/// (periodic, or the final one) takes it to the broker.
fn store(consumer: &StreamConsumer, records: &[rdkafka::message::OwnedMessage]) {
    let offsets = next_offsets(records.iter().map(|r| (r.topic(), r.partition(), r.offset())));
    // Fails only for a partition no longer assigned (a rebalance): its new owner handles
    // those records again.
    if let Err(err) = consumer.store_offsets(&offsets) {
        tracing::warn!(error = %err, "cannot store offsets; the records are handled again after a restart");
    }
}

/// One element per partition of `records` (topic, partition, offset): the offset after the
/// partition's last record, the position a restart resumes from.
fn next_offsets<'a>(records: impl Iterator<Item = (&'a str, i32, i64)>) -> TopicPartitionList {
    let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for (topic, partition, offset) in records {
        let entry = next.entry((topic, partition)).or_insert(offset + 1);
        *entry = (*entry).max(offset + 1);
    }
    let mut offsets = TopicPartitionList::with_capacity(next.len());
    for ((topic, partition), offset) in next {
        if let Err(err) = offsets.add_partition_offset(topic, partition, Offset::Offset(offset)) {
            tracing::warn!(error = %err, "cannot note an offset");
        }
    }
    offsets
}

/// The group's lag (records not yet consumed) per assigned partition, as the gauge
/// `consumer_lag{topic, partition}`.
fn record_lag(consumer: &StreamConsumer) {
    let Ok(positions) = consumer.position() else { return };
    for element in positions.elements() {
        let (topic, partition) = (element.topic().to_owned(), element.partition());
        let Ok((_, high)) = consumer.fetch_watermarks(&topic, partition, Duration::from_secs(2)) else {
            continue;
        };
        let position = match element.offset() {
            Offset::Offset(o) => o,
            _ => match consumer.committed_offsets(
                {
                    let mut list = TopicPartitionList::new();
                    list.add_partition(&topic, partition);
                    list
                },
                Duration::from_secs(2),
            ) {
                Ok(list) => list
                    .elements()
                    .first()
                    .and_then(|e| if let Offset::Offset(o) = e.offset() { Some(o) } else { None })
                    .unwrap_or(0),
                Err(_) => continue,
            },
        };
        metrics::gauge!("consumer_lag", "topic" => topic, "partition" => partition.to_string())
            .set((high - position).max(0) as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_stored_for_each_partition_is_the_one_after_its_last_record() {
        let records = [("a", 0, 7), ("a", 1, 3), ("a", 0, 8), ("b", 0, 1), ("a", 0, 6), ("a", 1, 4)];
        let offsets = next_offsets(records.into_iter());
        let got: Vec<(String, i32, Offset)> =
            offsets.elements().iter().map(|e| (e.topic().to_owned(), e.partition(), e.offset())).collect();
        assert_eq!(
            got,
            [
                ("a".to_owned(), 0, Offset::Offset(9)),
                ("a".to_owned(), 1, Offset::Offset(5)),
                ("b".to_owned(), 0, Offset::Offset(2)),
            ],
            "one element per partition, never a duplicate that would store a stale offset"
        );
    }
}
