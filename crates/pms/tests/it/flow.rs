//! What follows a registration through the gateway: its event on the broker (with the
//! client's trace), and its billing account opened over gRPC from the outbox, exactly once
//! even when billing was down.

use std::{collections::HashSet, time::Duration};

use kit::{auth::Role, grpc, testing::consume};
use proto::{
    Message,
    billing::v1::{GetBillingAccountRequest, billing_service_client::BillingServiceClient},
    events::v1::Envelope,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::system::TestSystem;

fn patient(given: &str) -> Value {
    json!({ "givenName": given, "familyName": "Flow", "birthDate": "1990-05-01", "sex": "female",
            "email": format!("{}@example.org", given.to_lowercase()) })
}

async fn register(system: &TestSystem, token: &str, given: &str) -> String {
    let response =
        system.client.post(system.url("/api/patients")).bearer_auth(token).json(&patient(given)).send().await;
    let response = response.expect("request");
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.expect("json");
    created["id"].as_str().expect("id").to_owned()
}

/// Polls `GET /api/billing/accounts/{id}` until it answers 200 (ten seconds at most).
async fn account(system: &TestSystem, token: &str, patient_id: &str) -> Value {
    for _ in 0..200 {
        let response = system.get(&format!("/api/billing/accounts/{patient_id}"), token).await;
        if response.status() == StatusCode::OK {
            return response.json().await.expect("json");
        }
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no billing account for {patient_id} within 10 s");
}

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
        .json(&patient("Traced"))
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

#[tokio::test]
async fn a_registration_opens_its_billing_account_readable_over_rest_and_grpc() {
    let system = TestSystem::start().await;
    let desk = system.token_for("desk", &[Role::Receptionist]).await;
    let billing = system.token_for("biller", &[Role::Billing]).await;
    let id = register(&system, &desk, "Billed").await;
    let account = account(&system, &billing, &id).await;
    assert_eq!(account["patientId"], id.as_str());
    assert_eq!(account["name"], "Billed Flow");
    assert_eq!(account["email"], "billed@example.org");
    assert_eq!(account["status"], "active");
    assert!(account["number"].as_str().expect("number").starts_with("BA-"));
    // The same account over gRPC, asked with the billing user's token.
    let channel = grpc::channel(&system.billing_grpc, Duration::from_secs(2)).expect("channel");
    let request = GetBillingAccountRequest { patient_id: id.clone() };
    let request = grpc::outgoing(request, &billing, None, Duration::from_secs(2));
    let over_grpc = BillingServiceClient::new(channel).get_billing_account(request).await.expect("gRPC read");
    assert_eq!(over_grpc.get_ref().number, account["number"].as_str().expect("number"));
    // The front desk may not read billing accounts; the gateway says so.
    let refused = system.get(&format!("/api/billing/accounts/{id}"), &desk).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn registrations_while_billing_is_down_get_their_accounts_exactly_once_when_it_is_back() {
    let mut system = TestSystem::start().await;
    let desk = system.token_for("desk", &[Role::Receptionist]).await;
    let billing = system.token_for("biller", &[Role::Billing]).await;
    let first = register(&system, &desk, "Before").await;
    account(&system, &billing, &first).await;
    system.billing.stop().await;
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(register(&system, &desk, &format!("During{i}")).await);
    }
    system.billing.resume().await;
    let mut numbers = HashSet::new();
    for id in &ids {
        numbers.insert(account(&system, &billing, id).await["number"].as_str().expect("number").to_owned());
    }
    assert_eq!(numbers.len(), 20, "one account each");
    let pool = sqlx::PgPool::connect_with(system.db_options().clone()).await.expect("connect");
    let accounts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM billing.accounts").fetch_one(&pool).await.expect("count");
    assert_eq!(accounts, 21, "no duplicate, none missing");
    let pending: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM patients.outbox WHERE sink = 'billing' AND published_at IS NULL",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    assert_eq!(pending, 0);
}

/// The analytics summary as an analyst sees it through the gateway, once `done` holds for it
/// (fifteen seconds at most).
async fn summary_when(system: &TestSystem, token: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..300 {
        let response = system.get("/api/analytics/summary", token).await;
        assert_eq!(response.status(), StatusCode::OK);
        let summary: Value = response.json().await.expect("json");
        if done(&summary) {
            return summary;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the analytics summary never showed {what}");
}

fn registrations(summary: &Value) -> i64 {
    summary["registrationsPerDay"]
        .as_array()
        .expect("days")
        .iter()
        .map(|d| d["registrations"].as_i64().unwrap_or(0))
        .sum()
}

#[tokio::test]
async fn analytics_counts_registrations_and_exactly_the_fifty_made_while_the_broker_was_down() {
    let mut system = TestSystem::start().await;
    let desk = system.token_for("desk", &[Role::Receptionist]).await;
    let analyst = system.token_for("analyst", &[Role::Analyst]).await;
    register(&system, &desk, "Counted").await;
    let summary =
        summary_when(&system, &analyst, "the first registration", |s| s["activePatients"] == 1).await;
    assert_eq!(registrations(&summary), 1);
    system.broker.stop();
    for i in 0..50 {
        register(&system, &desk, &format!("Offline{i}")).await;
    }
    system.broker.resume().await;
    summary_when(&system, &analyst, "51 registrations", |s| registrations(s) >= 51).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let response = system.get("/api/analytics/summary", &analyst).await;
    let summary: Value = response.json().await.expect("json");
    assert_eq!(
        (registrations(&summary), summary["activePatients"].as_i64()),
        (51, Some(51)),
        "exactly 50 more"
    );
    // Only analysts and admins see it.
    let refused = system.get("/api/analytics/summary", &desk).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_patient_directory_answers_over_grpc_for_the_user_whose_token_it_carries() {
    use proto::patients::v1::{GetPatientRequest, patient_directory_client::PatientDirectoryClient};
    let system = TestSystem::start().await;
    let desk = system.token_for("desk", &[Role::Receptionist]).await;
    let id = register(&system, &desk, "Directory").await;
    let channel = grpc::channel(&system.patients_grpc, Duration::from_secs(2)).expect("channel");
    let mut directory = PatientDirectoryClient::new(channel);
    // A clinician's token from auth, as appointments would pass it on.
    let clinician = system.token_for("doctor", &[Role::Clinician]).await;
    let ask = |token: &str| {
        grpc::outgoing(GetPatientRequest { id: id.clone() }, token, None, Duration::from_secs(2))
    };
    let found = directory.get_patient(ask(&clinician)).await.expect("found").into_inner();
    assert_eq!((found.given_name.as_str(), found.active), ("Directory", true));
    let analyst = system.token_for("numbers", &[Role::Analyst]).await;
    let denied = directory.get_patient(ask(&analyst)).await.expect_err("analysts read no patients");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
}
