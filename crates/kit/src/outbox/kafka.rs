//! The Kafka sink: each row becomes one record on its topic, keyed by its aggregate id, with
//! its event id and type as headers.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use futures_util::future::try_join_all;
use rdkafka::{
    message::{Header, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};

use super::{Message, PublishError, Publisher};
use crate::kafka::{KafkaConfig, ensure_topics};

/// Publishes outbox rows with one idempotent producer.
#[derive(Clone)]
pub struct KafkaPublisher {
    producer: FutureProducer,
    config: KafkaConfig,
    /// Topics known to exist (created on first use).
    ready: Arc<Mutex<HashSet<String>>>,
}

impl KafkaPublisher {
    pub fn new(config: &KafkaConfig) -> Result<Self, rdkafka::error::KafkaError> {
        Ok(Self { producer: config.producer()?, config: config.clone(), ready: Default::default() })
    }

    async fn ensure(&self, batch: &[Message]) -> Result<(), PublishError> {
        let missing: Vec<String> = {
            let ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
            let mut missing: Vec<String> =
                batch.iter().map(|m| m.topic.clone()).filter(|t| !ready.contains(t)).collect();
            missing.sort();
            missing.dedup();
            missing
        };
        if missing.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = missing.iter().map(String::as_str).collect();
        ensure_topics(&self.config, &names)
            .await
            .map_err(|e| PublishError(format!("cannot create topics: {e}")))?;
        self.ready.lock().unwrap_or_else(|p| p.into_inner()).extend(missing);
        Ok(())
    }
}

impl Publisher for KafkaPublisher {
    async fn publish(&self, batch: &[Message]) -> Result<(), PublishError> {
        self.ensure(batch).await?;
        // Everything is handed to the producer first (it batches and pipelines them, in order
        // per partition); then every delivery is awaited.
        let mut deliveries = Vec::with_capacity(batch.len());
        for message in batch {
            let event_id = message.event_id.to_string();
            let headers = OwnedHeaders::new()
                .insert(Header { key: "event_id", value: Some(event_id.as_str()) })
                .insert(Header { key: "event_type", value: Some(message.event_type.as_str()) });
            let record = FutureRecord::to(&message.topic)
                .key(message.key.as_str())
                .payload(message.payload.as_slice())
                .headers(headers);
            let delivery = self
                .producer
                .send_result(record)
                .map_err(|(e, _)| PublishError(format!("cannot queue a record: {e}")))?;
            deliveries.push(async move {
                match delivery.await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err((e, _))) => Err(PublishError(format!("delivery failed: {e}"))),
                    Err(_) => Err(PublishError("the producer was dropped".to_owned())),
                }
            });
        }
        // The producer never gives a record up, so neither does this wait; it says when the
        // broker is slow to acknowledge (down, stalled, or overloaded).
        let all = try_join_all(deliveries);
        tokio::pin!(all);
        let started = std::time::Instant::now();
        loop {
            match tokio::time::timeout(self.config.slow_delivery, &mut all).await {
                Ok(delivered) => return delivered.map(drop),
                Err(_) => {
                    metrics::counter!("outbox_slow_deliveries_total").increment(1);
                    tracing::warn!(
                        records = batch.len(),
                        waited_ms = started.elapsed().as_millis() as u64,
                        "the broker has not acknowledged a batch yet; still waiting"
                    );
                }
            }
        }
    }
}
