//! `pms-bench broker`: the broker's own ceiling for the outbox relay. Publishes `count`
//! event-sized records through the relay's publisher ([`kit::outbox::KafkaPublisher`]: the
//! same idempotent producer and settings) in batches of `batch`, one batch after the other as
//! the relay does, and prints how many records a second the broker acknowledged. No database
//! is involved, so the figure is what a relay could reach if its own queries cost nothing.

use std::time::{Duration, Instant};

use anyhow::Context;
use kit::{
    kafka::KafkaConfig,
    outbox::{KafkaPublisher, Message, Publisher},
};

/// About the size of an encoded `PatientRegistered` envelope.
const PAYLOAD_BYTES: usize = 220;

pub fn run(brokers: &str, count: usize, batch: usize) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let publisher =
            KafkaPublisher::new(&KafkaConfig::plaintext(brokers)).context("cannot make a producer")?;
        let topic = format!("pms-bench.{}", uuid::Uuid::new_v4().simple());
        let message = |id: usize| Message {
            id: id as i64,
            topic: topic.clone(),
            key: uuid::Uuid::new_v4().to_string(),
            event_id: uuid::Uuid::now_v7(),
            event_type: "pms.bench.Probe".to_owned(),
            payload: vec![b'x'; PAYLOAD_BYTES],
        };
        // The first batch creates the topic; it is not measured.
        publisher.publish(&[message(0)]).await.context("cannot publish")?;
        let mut passes: Vec<Duration> = Vec::new();
        let started = Instant::now();
        let mut sent = 0;
        while sent < count {
            let rows: Vec<Message> = (sent..count.min(sent + batch)).map(message).collect();
            let pass = Instant::now();
            publisher.publish(&rows).await.context("cannot publish")?;
            passes.push(pass.elapsed());
            sent += rows.len();
        }
        let elapsed = started.elapsed();
        passes.sort();
        let at = |q: f64| passes[((passes.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
        println!(
            "RESULT {sent} {:.0} {:.1} {:.1} {batch}",
            sent as f64 / elapsed.as_secs_f64(),
            at(0.5),
            at(0.99)
        );
        anyhow::Ok(())
    })
}
