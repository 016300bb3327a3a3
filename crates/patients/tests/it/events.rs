//! Patient events on a real Kafka-protocol broker (a Tansu process): what each write
//! publishes, in order, with its trace id, and that nothing is lost while the broker is down.

use std::{collections::HashSet, time::Duration};

use kit::testing::{Record, TestBroker, consume};
use proto::{
    Message,
    events::v1::Envelope,
    patients::v1::{PatientDeactivated, PatientRegistered, PatientUpdated},
};
use reqwest::StatusCode;

use crate::helpers::{TOPIC, TestApp, patient};

fn envelope(record: &Record) -> Envelope {
    Envelope::decode(record.payload.as_slice()).expect("an envelope")
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[tokio::test]
async fn each_write_publishes_its_event_in_order_keyed_by_patient_with_its_trace() {
    let broker = TestBroker::start().await;
    let app = TestApp::spawn_with_broker(broker.config()).await;
    let traceparent = format!("00-{TRACE}-00f067aa0ba902b7-01");
    let created = app.client.post(app.url("/api/patients")).header("traceparent", &traceparent);
    let created = created.json(&patient("Ana", "García")).send().await.expect("register");
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: serde_json::Value = created.json().await.expect("json");
    let id = created["id"].as_str().expect("id").to_owned();
    let mut changed = patient("Ana María", "García");
    changed["email"] = "ana@example.org".into();
    let updated = app.put(&format!("/api/patients/{id}"), Some("\"1\""), &changed).await;
    assert_eq!(updated.status(), StatusCode::OK);
    let gone = app.delete(&format!("/api/patients/{id}"), Some("\"2\"")).await;
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);

    let records = consume(&broker.config(), TOPIC, 3, Duration::from_millis(300)).await;
    assert_eq!(records.len(), 3, "one record per write");
    assert!(records.iter().all(|r| r.key == id), "keyed by the patient id");
    let envelopes: Vec<Envelope> = records.iter().map(envelope).collect();
    let types: Vec<&str> = envelopes.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "pms.patients.v1.PatientRegistered",
            "pms.patients.v1.PatientUpdated",
            "pms.patients.v1.PatientDeactivated"
        ]
    );
    let first = &envelopes[0];
    assert_eq!(first.aggregate_id, id);
    assert_eq!(first.trace_id, TRACE, "the trace of the request that registered");
    assert_eq!(first.schema_version, 1);
    assert_eq!(uuid::Uuid::parse_str(&first.event_id).expect("uuid").get_version_num(), 7);
    assert_eq!(envelopes.iter().map(|e| &e.event_id).collect::<HashSet<_>>().len(), 3);
    let registered = PatientRegistered::decode(first.payload.as_slice()).expect("payload");
    let registered = registered.patient.expect("patient");
    assert_eq!((registered.given_name.as_str(), registered.family_name.as_str()), ("Ana", "García"));
    assert_eq!((registered.version, registered.birth_date.as_str()), (1, "1980-01-01"));
    let updated = PatientUpdated::decode(envelopes[1].payload.as_slice()).expect("payload");
    let updated = updated.patient.expect("patient");
    assert_eq!(
        (updated.given_name.as_str(), updated.email.as_str(), updated.version),
        ("Ana María", "ana@example.org", 2)
    );
    let deactivated = PatientDeactivated::decode(envelopes[2].payload.as_slice()).expect("payload");
    assert_eq!((deactivated.patient_id.as_str(), deactivated.version), (id.as_str(), 3));
    assert!(envelopes[2].trace_id.is_empty(), "this request carried no traceparent");
}

#[tokio::test]
async fn registrations_while_the_broker_is_down_are_published_once_it_is_back() {
    let mut broker = TestBroker::start().await;
    let app = TestApp::spawn_with_broker(broker.config()).await;
    let before = app.register_named("Before", "Outage").await;
    assert_eq!(consume(&broker.config(), TOPIC, 1, Duration::ZERO).await.len(), 1);
    broker.stop();
    let mut ids = HashSet::new();
    for i in 0..50 {
        ids.insert(app.register_named(&format!("During{i}"), "Outage").await);
    }
    let pending: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE sink = 'kafka' AND published_at IS NULL")
            .fetch_one(&app.pool)
            .await
            .expect("count");
    assert_eq!(pending, 50, "every registration answered 201 and waits in the outbox");
    broker.resume().await;
    let records = consume(&broker.config(), TOPIC, 51, Duration::from_secs(1)).await;
    let envelopes: Vec<Envelope> = records.iter().map(envelope).collect();
    let mut published: HashSet<String> = envelopes.iter().map(|e| e.aggregate_id.clone()).collect();
    assert_eq!(records.len(), 51, "each registration published once");
    assert!(published.remove(&before));
    assert_eq!(published, ids);
}

#[tokio::test]
async fn a_broker_frozen_for_longer_than_the_slow_delivery_warning_gets_every_event_once_and_still_serves() {
    let broker = TestBroker::start().await;
    let config = kit::kafka::KafkaConfig { slow_delivery: Duration::from_millis(300), ..broker.config() };
    let app = TestApp::spawn_with_broker(config).await;
    let before = app.register_named("Before", "Freeze").await;
    assert_eq!(consume(&broker.config(), TOPIC, 1, Duration::ZERO).await.len(), 1);
    broker.freeze();
    let mut ids = HashSet::from([before]);
    for i in 0..20 {
        ids.insert(app.register_named(&format!("During{i}"), "Freeze").await);
    }
    // The relay's batch sits in the producer, unacknowledged, several warning periods long.
    tokio::time::sleep(Duration::from_secs(2)).await;
    broker.thaw();
    ids.insert(app.register_named("After", "Freeze").await);
    let records = consume(&broker.config(), TOPIC, 22, Duration::from_secs(1)).await;
    let published: Vec<String> = records.iter().map(|r| envelope(r).aggregate_id).collect();
    assert_eq!(published.len(), 22, "each registration published once: {published:?}");
    assert_eq!(published.into_iter().collect::<HashSet<_>>(), ids);
}

#[tokio::test]
async fn a_relay_stopped_mid_stream_and_another_started_publish_every_event_exactly_once() {
    use kit::{
        outbox::{KafkaPublisher, Relay, RelayConfig},
        tasks::Background,
    };
    use patients::{events::PatientEvents, sample::Names};
    let broker = TestBroker::start().await;
    let mut app = TestApp::spawn_with_broker(broker.config()).await;
    // 3 000 registrations committed at once (with their events) while the relay runs.
    let events = PatientEvents { billing: false, ..PatientEvents::on(TOPIC) };
    patients::seed::seed(&app.pool, Some(events), 3_000, Names::Wide, 11, |_| {}).await.expect("seed");
    // Stop the service as SIGTERM does: the relay finishes the batch it holds, then stops.
    app.shutdown.trigger();
    (&mut app.server).await.expect("task").expect("stopped cleanly");
    let pool = app.pool.clone();
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(&pool)
        .await
        .expect("count");
    eprintln!("{pending} events left for the next relay");
    // The next process's relay takes over from the outbox.
    let background = Background::new();
    let publisher = KafkaPublisher::new(&broker.config()).expect("producer");
    Relay::start(pool.clone(), patients::events::KAFKA, publisher, RelayConfig::default(), &background);
    let records = consume(&broker.config(), TOPIC, 3_000, Duration::from_secs(1)).await;
    assert!(background.stop(Duration::from_secs(10)).await);
    let ids: HashSet<String> = records.iter().map(|r| envelope(r).event_id).collect();
    assert_eq!((records.len(), ids.len()), (3_000, 3_000), "every event once, none twice");
}
