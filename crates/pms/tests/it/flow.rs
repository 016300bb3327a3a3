//! What follows a registration through the gateway: its event on the broker, carrying the
//! client's trace.

use std::time::Duration;

use kit::{auth::Role, testing::consume};
use proto::{Message, events::v1::Envelope};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::system::TestSystem;

#[tokio::test]
async fn a_registration_through_the_gateway_reaches_the_topic_with_the_clients_trace() {
    let system = TestSystem::start().await;
    let token = system.token_for("desk", &[Role::Receptionist]).await;
    let trace = "0af7651916cd43dd8448eb211c80319c";
    let response = system
        .client
        .post(system.url("/api/patients"))
        .bearer_auth(&token)
        .header("traceparent", format!("00-{trace}-b7ad6b7169203331-01"))
        .json(&json!({ "givenName": "Flow", "familyName": "Through", "birthDate": "1990-05-01", "sex": "female" }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.expect("json");
    let records = consume(&system.broker.config(), "patients.v1", 1, Duration::from_millis(200)).await;
    assert_eq!(records.len(), 1);
    let envelope = Envelope::decode(records[0].payload.as_slice()).expect("envelope");
    assert_eq!(envelope.aggregate_id, created["id"].as_str().expect("id"));
    assert_eq!(envelope.trace_id, trace, "the gateway passes the client's trace on to the event");
}
