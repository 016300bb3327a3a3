//! The relay against a real PostgreSQL, with the memory publisher standing in for the broker.

use std::time::Duration;

use sqlx::{Executor, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use super::*;
use crate::{tasks::Background, testing::TestDatabase};

const TABLE: &str = "CREATE TABLE outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, sink text NOT NULL, topic text NOT NULL,
    key text NOT NULL, event_id uuid NOT NULL, event_type text NOT NULL, payload bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(), published_at timestamptz);
    CREATE INDEX outbox_pending ON outbox (sink, id) WHERE published_at IS NULL";

async fn database() -> (TestDatabase, PgPool) {
    let db = TestDatabase::create().await;
    let pool = PgPool::connect_with(db.options.clone()).await.expect("connect");
    pool.execute(TABLE).await.expect("outbox table");
    (db, pool)
}

fn config() -> RelayConfig {
    RelayConfig {
        batch: 7,
        poll: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        keep_published: Duration::from_secs(60),
        stop_grace: Duration::from_millis(200),
    }
}

/// `n` events about `aggregates` keys in turn, on the `kafka` sink.
async fn write(pool: &PgPool, n: usize, aggregates: &[Uuid]) -> Vec<OutboxEvent> {
    let message = proto::Timestamp { seconds: 1, nanos: 0 };
    let events: Vec<OutboxEvent> = (0..n)
        .map(|i| {
            let key = aggregates[i % aggregates.len()];
            OutboxEvent::new("kafka", "t.v1", "test.Event", key, None, OffsetDateTime::now_utc(), &message)
        })
        .collect();
    insert(pool, &events).await.expect("insert");
    events
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting until {what}");
}

async fn pending(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(pool)
        .await
        .expect("count")
}

#[tokio::test]
async fn rows_are_published_in_commit_order_and_marked() {
    let (_db, pool) = database().await;
    let events = write(&pool, 30, &[Uuid::now_v7(), Uuid::now_v7()]).await;
    let publisher = MemoryPublisher::new();
    let background = Background::new();
    Relay::start(pool.clone(), "kafka", publisher.clone(), config(), &background);
    until("all are published", || publisher.published().len() == 30).await;
    let ids: Vec<Uuid> = publisher.published().iter().map(|m| m.event_id).collect();
    assert_eq!(ids, events.iter().map(|e| e.event_id).collect::<Vec<_>>());
    assert!(background.stop(Duration::from_secs(5)).await);
    assert_eq!(pending(&pool).await, 0);
}

#[tokio::test]
async fn while_the_publisher_fails_nothing_is_marked_and_all_follow_once_it_is_back() {
    let (_db, pool) = database().await;
    let publisher = MemoryPublisher::new();
    publisher.set_down(true);
    let background = Background::new();
    let relay = Relay::start(pool.clone(), "kafka", publisher.clone(), config(), &background);
    write(&pool, 20, &[Uuid::now_v7()]).await;
    relay.wake();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(pending(&pool).await, 20, "a failed publish marks nothing");
    publisher.set_down(false);
    until("all are published after the outage", || publisher.published().len() == 20).await;
    assert!(background.stop(Duration::from_secs(5)).await);
    assert_eq!(pending(&pool).await, 0);
}

#[tokio::test]
async fn a_stopping_relay_gives_up_a_batch_nobody_acknowledges_and_leaves_its_rows_pending() {
    let (_db, pool) = database().await;
    let publisher = MemoryPublisher::new();
    publisher.set_stalled(true);
    let background = Background::new();
    let relay = Relay::start(pool.clone(), "kafka", publisher.clone(), config(), &background);
    write(&pool, 5, &[Uuid::now_v7()]).await;
    relay.wake();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    assert!(background.stop(Duration::from_secs(3)).await, "the relay stopped");
    assert!(started.elapsed() < Duration::from_secs(1), "within its stop grace: {:?}", started.elapsed());
    assert_eq!(pending(&pool).await, 5, "nothing marked published: the next start sends them");
}

#[tokio::test]
async fn two_relays_on_one_outbox_publish_each_row_once_in_order() {
    let (_db, pool) = database().await;
    let key = Uuid::now_v7();
    let publisher = MemoryPublisher::new();
    let background = Background::new();
    for _ in 0..2 {
        Relay::start(pool.clone(), "kafka", publisher.clone(), config(), &background);
    }
    let mut written = Vec::new();
    for _ in 0..10 {
        written.extend(write(&pool, 10, &[key]).await);
    }
    until("all are published", || publisher.published().len() >= 100).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let published: Vec<Uuid> = publisher.published().iter().map(|m| m.event_id).collect();
    assert_eq!(published, written.iter().map(|e| e.event_id).collect::<Vec<_>>(), "once each, in order");
    assert!(background.stop(Duration::from_secs(5)).await);
}

#[tokio::test]
async fn a_relay_leaves_other_sinks_rows_alone() {
    let (_db, pool) = database().await;
    let message = proto::Timestamp::default();
    let other = OutboxEvent::new(
        "billing",
        "t.v1",
        "test.Event",
        Uuid::now_v7(),
        None,
        OffsetDateTime::now_utc(),
        &message,
    );
    insert(&pool, &[other]).await.expect("insert");
    write(&pool, 3, &[Uuid::now_v7()]).await;
    let publisher = MemoryPublisher::new();
    let background = Background::new();
    Relay::start(pool.clone(), "kafka", publisher.clone(), config(), &background);
    until("the kafka rows are published", || publisher.published().len() == 3).await;
    assert!(background.stop(Duration::from_secs(5)).await);
    assert_eq!(pending(&pool).await, 1, "the billing row waits for its own relay");
}

#[tokio::test]
async fn published_rows_are_pruned_after_their_keep_time() {
    let (_db, pool) = database().await;
    write(&pool, 5, &[Uuid::now_v7()]).await;
    sqlx::query("UPDATE outbox SET published_at = now() - interval '2 minutes' WHERE id <= 3")
        .execute(&pool)
        .await
        .expect("age rows");
    relay::prune(&pool, "kafka", Duration::from_secs(60)).await.expect("prune");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox").fetch_one(&pool).await.expect("count");
    assert_eq!(left, 2, "pending rows are never pruned");
}

// `published_at` is when the publisher acknowledged the batch, not when the pass began, so that
// `published_at - created_at` is the relay's part of an event's delay (bench-events.sh).
#[tokio::test]
async fn a_row_is_marked_published_when_the_publisher_acknowledged_it() {
    let (_db, pool) = database().await;
    let publisher = MemoryPublisher::new();
    publisher.set_stalled(true);
    let background = Background::new();
    Relay::start(pool.clone(), "kafka", publisher.clone(), config(), &background);
    write(&pool, 3, &[Uuid::now_v7()]).await;
    // The relay's pass holds the rows while the publisher stalls.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let released: OffsetDateTime =
        sqlx::query_scalar("SELECT clock_timestamp()").fetch_one(&pool).await.expect("clock");
    publisher.set_stalled(false);
    until("all are published", || publisher.published().len() == 3).await;
    assert!(background.stop(Duration::from_secs(5)).await);
    let earliest: OffsetDateTime =
        sqlx::query_scalar("SELECT min(published_at) FROM outbox").fetch_one(&pool).await.expect("marked");
    assert!(earliest >= released, "marked at {earliest}, before the publisher acknowledged at {released}");
}
