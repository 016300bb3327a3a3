//! The consumer group against a real broker: events change the aggregates once each, a
//! replay changes nothing, poison is parked, and a stop mid-stream loses nothing.

use std::time::Duration;

use kit::testing::{TestBroker, TestDatabase, committed, consume};

use crate::helpers::*;

#[tokio::test]
async fn registrations_updates_and_deactivations_shape_the_summary() {
    let (db, broker) = (TestDatabase::create().await, TestBroker::start().await);
    let app = TestApp::spawn(&db, &broker, "analytics").await;
    let ana = patient("female", "1990-02-01", 1);
    let luis = patient("male", "2015-06-30", 1);
    let mut ana_now = ana.clone();
    ana_now.sex = "other".into();
    ana_now.version = 2;
    publish(&broker, &[registered(&ana), registered(&luis), updated(&ana_now), deactivated(&luis, 2)]).await;
    let summary =
        app.summary_when("one active patient", |s| s["activePatients"] == 1 && registrations(s) == 2).await;
    assert_eq!(counts(&summary, "bySex"), [("other".to_owned(), 1)]);
    assert_eq!(counts(&summary, "byAgeBand"), [("35-49".to_owned(), 1)]);
    assert!(summary["lastEventAt"].is_string());
    let text = summary.to_string();
    assert!(!text.contains("García") && !text.contains(&ana.id), "nothing identifying: {text}");
    // An older version arriving late does not undo the newer one.
    publish(&broker, &[updated(&ana)]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(counts(&app.summary().await, "bySex"), [("other".to_owned(), 1)]);
    app.stop().await;
}

#[tokio::test]
async fn the_same_events_again_or_a_replay_of_the_whole_topic_change_nothing() {
    let (db, broker) = (TestDatabase::create().await, TestBroker::start().await);
    let app = TestApp::spawn(&db, &broker, "analytics").await;
    let events: Vec<_> = (0..5).map(|_| registered(&patient("female", "1980-01-01", 1))).collect();
    publish(&broker, &events).await;
    app.summary_when("five registrations", |s| registrations(s) == 5).await;
    // The very same records again (a relay that crashed before marking them published).
    publish(&broker, &events).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(registrations(&app.summary().await), 5);
    // A record twice in one produce request, so twice in one batch: counted once.
    let twice = registered(&patient("female", "1980-01-01", 1));
    publish(&broker, &[twice.clone(), twice]).await;
    app.summary_when("the sixth registration", |s| registrations(s) == 6).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(registrations(&app.summary().await), 6);
    app.stop().await;
    // A new consumer group reads the topic from its beginning: everything is delivered again.
    let replay = TestApp::spawn(&db, &broker, "analytics-replay").await;
    publish(&broker, &[registered(&patient("male", "1980-01-01", 1))]).await;
    let summary = replay.summary_when("the seventh registration", |s| registrations(s) == 7).await;
    assert_eq!(summary["activePatients"], 7);
    replay.stop().await;
}

#[tokio::test]
async fn a_garbage_record_is_parked_and_later_events_still_count() {
    let (db, broker) = (TestDatabase::create().await, TestBroker::start().await);
    let app = TestApp::spawn(&db, &broker, "analytics").await;
    let first = registered(&patient("female", "1970-01-01", 1));
    let mut garbage = registered(&patient("male", "1970-01-01", 1));
    garbage.payload = b"\xff\xfe not protobuf at all".to_vec();
    let mut bad_payload = registered(&patient("male", "1970-01-01", 1));
    // A valid envelope whose registration cannot be decoded.
    let mut envelope =
        <proto::events::v1::Envelope as proto::Message>::decode(bad_payload.payload.as_slice())
            .expect("envelope");
    envelope.payload = vec![0xff, 0xff, 0xff];
    bad_payload.payload = proto::Message::encode_to_vec(&envelope);
    let last = registered(&patient("other", "2000-01-01", 1));
    publish(&broker, &[first, garbage.clone(), bad_payload, last]).await;
    let summary = app.summary_when("both good registrations", |s| registrations(s) == 2).await;
    assert_eq!(summary["activePatients"], 2);
    let parked = consume(&broker.config(), DEAD_LETTERS, 2, Duration::from_millis(300)).await;
    assert_eq!(parked.len(), 2, "both poison records parked, once each");
    assert!(parked.iter().any(|r| r.payload == garbage.payload), "parked as it came");
    app.stop().await;
}

#[tokio::test]
async fn a_consumer_stopped_mid_stream_resumes_where_it_stopped() {
    let (db, broker) = (TestDatabase::create().await, TestBroker::start().await);
    let app = TestApp::spawn(&db, &broker, "analytics").await;
    let events: Vec<_> = (0..600).map(|_| registered(&patient("female", "1985-01-01", 1))).collect();
    publish(&broker, &events[..300]).await;
    app.summary_when("some registrations", |s| registrations(s) > 0).await;
    app.stop().await;
    // The stop committed exactly what was handled (offsets are otherwise committed only every
    // second): a restart is handed nothing twice.
    let pool = sqlx::PgPool::connect_with(db.options.clone()).await.expect("connect");
    let handled: i64 = sqlx::query_scalar("SELECT count(*) FROM analytics.processed_events")
        .fetch_one(&pool)
        .await
        .expect("processed events");
    assert_eq!(committed(&broker.config(), "analytics", TOPIC).await, handled, "committed on stop");
    publish(&broker, &events[300..]).await;
    let app = TestApp::spawn(&db, &broker, "analytics").await;
    let summary = app.summary_when("all 600", |s| registrations(s) >= 600).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(registrations(&app.summary().await), 600, "none skipped, none twice");
    assert_eq!(summary["activePatients"], 600);
    app.stop().await;
}
