//! `pms-bench broker`: the broker's own ceilings for the event path, with no database.
//!
//! Publishes `count` event records (a `PatientRegistered` envelope, as the patients service
//! writes them) through the relay's publisher ([`kit::outbox::KafkaPublisher`]: the same
//! idempotent producer and settings) in batches of `batch`, one batch after the other as the
//! relay does, and prints how many records a second the broker acknowledged:
//! `RESULT records records/s batch-p50-ms batch-p99-ms batch`.
//!
//! With `groups` > 0, that many consumer groups read the topic meanwhile through the services'
//! own consumer ([`kit::consumer`]: the same settings, batching and commits; handling costs
//! nothing), as analytics, notifications and appointments read `patients.v1`, and the batches
//! go out on a schedule of `rate` records a second (0: as fast as acknowledged). It then also
//! prints the time from a batch being handed to the publisher to each group having it:
//! `GROUPS groups records-each p50-ms p99-ms max-ms`. The difference from the run without
//! groups is what consuming costs the broker; the figures are what the event path could reach
//! if pms's own work cost nothing.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use kit::{
    consumer::{ConsumerConfig, Delivery, Handled, Handler},
    kafka::KafkaConfig,
    outbox::{KafkaPublisher, Message, OutboxEvent, Publisher},
    tasks::Background,
};
use proto::patients::v1::{Patient, PatientRegistered};
use time::OffsetDateTime;

/// One group's arrivals: seconds from hand-over to delivery.
#[derive(Clone, Default)]
struct Arrivals(Arc<Mutex<Vec<f64>>>);

impl Arrivals {
    fn count(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Handler for Arrivals {
    async fn handle(&self, batch: &[Delivery]) -> Result<Handled, Box<dyn std::error::Error + Send + Sync>> {
        let now = OffsetDateTime::now_utc();
        let mut arrivals = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for delivery in batch {
            let at = delivery.envelope.occurred_at.as_ref().ok_or("an envelope without its time")?;
            let sent = kit::outbox::event_instant(at).ok_or("an envelope time out of range")?;
            arrivals.push((now - sent).as_seconds_f64());
        }
        Ok(Handled::default())
    }
}

pub fn run(brokers: &str, count: usize, batch: usize, groups: usize, rate: f64) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        // One partition, as the broker that up.sh and bench_pms_start start has it (or
        // PMS_KAFKA_PARTITIONS).
        let mut config = KafkaConfig::plaintext(brokers);
        config.partitions =
            std::env::var("PMS_KAFKA_PARTITIONS").ok().and_then(|p| p.parse().ok()).unwrap_or(1);
        let publisher = KafkaPublisher::new(&config).context("cannot make a producer")?;
        let topic = format!("pms-bench.{}", uuid::Uuid::new_v4().simple());
        let message = |id: usize| {
            let key = uuid::Uuid::now_v7();
            let patient = Patient {
                id: key.to_string(),
                mrn: "100000011".into(),
                given_name: "Ana María".into(),
                family_name: "García López".into(),
                birth_date: "1985-04-12".into(),
                sex: "female".into(),
                email: "ana.garcia@example.org".into(),
                phone: "+34600111222".into(),
                active: true,
                version: 1,
                ..Default::default()
            };
            let registered = PatientRegistered { patient: Some(patient) };
            OutboxEvent::new(
                "kafka",
                &topic,
                "pms.patients.v1.PatientRegistered",
                key,
                Some("4bf92f3577b34da6a3ce929d0e0e4736"),
                OffsetDateTime::now_utc(),
                &registered,
            )
            .into_message(id as i64)
        };
        // The first batch creates the topic; it is not measured.
        publisher.publish(&[message(0)]).await.context("cannot publish")?;
        let background = Background::new();
        let arrivals: Vec<Arrivals> = (0..groups).map(|_| Arrivals::default()).collect();
        for (i, handler) in arrivals.iter().enumerate() {
            let consumer = ConsumerConfig {
                group: format!("pms-bench-{i}-{}", uuid::Uuid::new_v4().simple()),
                topics: vec![topic.clone()],
                dead_letter_topic: format!("{topic}.dlq"),
                max_batch: 500,
            };
            kit::consumer::start(&config, consumer, handler.clone(), &background)?;
        }
        if groups > 0 {
            // Every group has the first record: all are assigned and reading.
            wait_for(&arrivals, 1, Duration::from_secs(60)).await?;
        }
        let mut passes: Vec<Duration> = Vec::new();
        let started = Instant::now();
        let mut sent = 0;
        while sent < count {
            if rate > 0.0 {
                let due = started + Duration::from_secs_f64(sent as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
            }
            let rows: Vec<Message> = (sent..count.min(sent + batch)).map(message).collect();
            let pass = Instant::now();
            publisher.publish(&rows).await.context("cannot publish")?;
            passes.push(pass.elapsed());
            sent += rows.len();
        }
        let elapsed = started.elapsed();
        let mut passes: Vec<f64> = passes.iter().map(Duration::as_secs_f64).collect();
        println!(
            "RESULT {sent} {:.0} {:.1} {:.1} {batch}",
            sent as f64 / elapsed.as_secs_f64(),
            quantile(&mut passes, 0.5) * 1000.0,
            quantile(&mut passes, 0.99) * 1000.0,
        );
        if groups > 0 {
            wait_for(&arrivals, count + 1, Duration::from_secs(300)).await?;
            let mut all: Vec<f64> =
                arrivals.iter().flat_map(|a| a.0.lock().unwrap_or_else(|p| p.into_inner()).clone()).collect();
            let max = all.iter().copied().fold(0.0, f64::max);
            println!(
                "GROUPS {groups} {} {:.1} {:.1} {:.1}",
                count,
                quantile(&mut all, 0.5) * 1000.0,
                quantile(&mut all, 0.99) * 1000.0,
                max * 1000.0
            );
        }
        background.stop(Duration::from_secs(5)).await;
        anyhow::Ok(())
    })
}

/// Waits until every group has `count` arrivals.
async fn wait_for(arrivals: &[Arrivals], count: usize, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while arrivals.iter().any(|a| a.count() < count) {
        if Instant::now() > deadline {
            let seen: Vec<usize> = arrivals.iter().map(Arrivals::count).collect();
            bail!("the groups did not get {count} records within {within:?}: {seen:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

fn quantile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(((values.len().max(1) - 1) as f64 * q).round() as usize).copied().unwrap_or(0.0)
}
