use std::time::Duration;

use kit::{
    auth::Role,
    config::HttpConfig,
    consumer::ConsumerConfig,
    outbox::{KafkaPublisher, Message, OutboxEvent, Publisher},
    shutdown::Shutdown,
    testing::{TestBroker, TestDatabase, TestTokens},
};
use proto::patients::v1::{Patient, PatientDeactivated, PatientRegistered, PatientUpdated};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

pub const TOPIC: &str = "patients.v1";
pub const DEAD_LETTERS: &str = "patients.v1.analytics.dlq";

/// The analytics service on 127.0.0.1:<random>, consuming from `broker` as group `group`.
pub struct TestApp {
    pub base: String,
    pub tokens: TestTokens,
    pub shutdown: Shutdown,
    pub server: tokio::task::JoinHandle<Result<(), kit::service::BoxError>>,
}

impl TestApp {
    pub async fn spawn(db: &TestDatabase, broker: &TestBroker, group: &str) -> Self {
        analytics::SCHEMA.connect_and_migrate(&db.config()).await.expect("migrate");
        let tokens = TestTokens::new();
        let config = analytics::Config {
            db: db.config(),
            http: HttpConfig::ephemeral(),
            verifier: tokens.verifier.clone(),
            trusted_proxies: kit::net::TrustedProxies::default(),
            kafka: broker.config(),
            consumer: ConsumerConfig {
                group: group.to_owned(),
                topics: vec![TOPIC.to_owned()],
                dead_letter_topic: DEAD_LETTERS.to_owned(),
                max_batch: 500,
            },
        };
        let (listener, base) = kit::testing::listener().await;
        let shutdown = Shutdown::default();
        let server = tokio::spawn(analytics::run(config, listener, shutdown.clone()));
        Self { base, tokens, shutdown, server }
    }

    pub async fn summary(&self) -> Value {
        let client = self.tokens.client_as("analyst", &[Role::Analyst]);
        let response =
            client.get(format!("{}/api/analytics/summary", self.base)).send().await.expect("request");
        kit::testing::expect_json(response, reqwest::StatusCode::OK).await
    }

    /// Polls the summary until `done` holds for it (fifteen seconds at most).
    pub async fn summary_when(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..300 {
            let summary = self.summary().await;
            if done(&summary) {
                return summary;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the summary never showed {what}: {}", self.summary().await);
    }

    /// Stops the service (as SIGTERM does) and waits for it.
    pub async fn stop(self) {
        self.shutdown.trigger();
        self.server.await.expect("task").expect("stopped cleanly");
    }
}

pub fn patient(sex: &str, birth_date: &str, version: i32) -> Patient {
    Patient {
        id: Uuid::now_v7().to_string(),
        mrn: "100000011".into(),
        given_name: "Ana".into(),
        family_name: "García".into(),
        birth_date: birth_date.into(),
        sex: sex.into(),
        active: true,
        version,
        ..Default::default()
    }
}

fn event(event_type: &'static str, patient_id: &str, message: &impl proto::Message) -> Message {
    let id = Uuid::parse_str(patient_id).expect("uuid");
    OutboxEvent::new("kafka", TOPIC, event_type, id, None, OffsetDateTime::now_utc(), message).into_message(0)
}

pub fn registered(patient: &Patient) -> Message {
    event(
        "pms.patients.v1.PatientRegistered",
        &patient.id,
        &PatientRegistered { patient: Some(patient.clone()) },
    )
}

pub fn updated(patient: &Patient) -> Message {
    event("pms.patients.v1.PatientUpdated", &patient.id, &PatientUpdated { patient: Some(patient.clone()) })
}

pub fn deactivated(patient: &Patient, version: i32) -> Message {
    let message = PatientDeactivated { patient_id: patient.id.clone(), version, deactivated_at: None };
    event("pms.patients.v1.PatientDeactivated", &patient.id, &message)
}

/// Publishes `messages` to the broker as the patients service's relay would.
pub async fn publish(broker: &TestBroker, messages: &[Message]) {
    let publisher = KafkaPublisher::new(&broker.config()).expect("producer");
    publisher.publish(messages).await.expect("published");
}

/// `summary[field]` as a map from key to count.
pub fn counts(summary: &Value, field: &str) -> Vec<(String, i64)> {
    summary[field]
        .as_array()
        .expect("array")
        .iter()
        .map(|c| (c["key"].as_str().expect("key").to_owned(), c["count"].as_i64().expect("count")))
        .collect()
}

pub fn registrations(summary: &Value) -> i64 {
    summary["registrationsPerDay"]
        .as_array()
        .expect("days")
        .iter()
        .map(|d| d["registrations"].as_i64().unwrap_or(0))
        .sum()
}
