//! `BillingService` over gRPC: idempotent opening, reading, and the status codes callers get
//! for bad input, missing or bad tokens, roles, and deadlines; plus health and reflection.

use std::time::Duration;

use kit::{auth::Role, testing::forged_tokens};
use proto::billing::v1::{
    CreateBillingAccountRequest, CreateBillingAccountsRequest, GetBillingAccountRequest,
};
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::helpers::TestApp;

const PATIENTS: &str = "service:patients";

fn open(patient_id: &str, name: &str) -> CreateBillingAccountRequest {
    CreateBillingAccountRequest {
        patient_id: patient_id.into(),
        name: name.into(),
        email: "ana@example.org".into(),
        trace_id: String::new(),
    }
}

#[tokio::test]
async fn opening_twice_or_at_once_gives_one_account_and_reading_finds_it() {
    let app = TestApp::spawn().await;
    let patient = uuid::Uuid::now_v7().to_string();
    let first =
        app.client().create_billing_account(app.request(open(&patient, "Ana García"), PATIENTS, &[])).await;
    let first = first.expect("opened").into_inner();
    assert!(first.number.starts_with("BA-") && first.number.len() == 9, "{}", first.number);
    assert_eq!(
        (first.status.as_str(), first.name.as_str(), first.email.as_str()),
        ("active", "Ana García", "ana@example.org")
    );
    // Again, and ten more at once (a relay retrying after a timeout): the same account.
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (mut client, request) = (app.client(), app.request(open(&patient, "Other Name"), PATIENTS, &[]));
        calls.spawn(async move { client.create_billing_account(request).await });
    }
    while let Some(call) = calls.join_next().await {
        let again = call.expect("task").expect("idempotent").into_inner();
        assert_eq!(again, first);
    }
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM accounts").fetch_one(&app.pool).await.expect("count");
    assert_eq!(count, 1);
    let read = app.request(GetBillingAccountRequest { patient_id: patient }, "b", &[Role::Billing]);
    let read = app.client().get_billing_account(read).await.expect("read");
    assert_eq!(read.into_inner(), first);
}

#[tokio::test]
async fn a_batch_opens_each_new_account_once_and_answers_in_the_order_asked() {
    let app = TestApp::spawn().await;
    let [known, new, twice] = [(); 3].map(|_| uuid::Uuid::now_v7().to_string());
    let request = app.request(open(&known, "Ana García"), PATIENTS, &[]);
    let existing = app.client().create_billing_account(request).await.expect("opened").into_inner();
    let batch = CreateBillingAccountsRequest {
        accounts: vec![
            open(&twice, "Luis Pérez"),
            open(&known, "Other Name"),
            open(&new, "Mei Chen"),
            open(&twice, "Luis Again"),
        ],
    };
    let answered =
        app.client().create_billing_accounts(app.request(batch.clone(), PATIENTS, &[])).await.expect("batch");
    let accounts = answered.into_inner().accounts;
    let patients: Vec<&str> = accounts.iter().map(|a| a.patient_id.as_str()).collect();
    assert_eq!(patients, [twice.as_str(), known.as_str(), new.as_str(), twice.as_str()]);
    assert_eq!(accounts[1], existing, "an account already open is answered as it is");
    assert_eq!(accounts[0], accounts[3], "a patient twice in one batch gets one account");
    assert_eq!((accounts[0].name.as_str(), accounts[2].name.as_str()), ("Luis Pérez", "Mei Chen"));
    // The same batch again (a relay retrying): the same accounts, none opened.
    let again = app.client().create_billing_accounts(app.request(batch, PATIENTS, &[])).await.expect("again");
    assert_eq!(again.into_inner().accounts, accounts);
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM accounts").fetch_one(&app.pool).await.expect("count");
    assert_eq!(count, 3);
    // One invalid entry refuses the whole batch, naming it, and opens nothing.
    let fresh = uuid::Uuid::now_v7().to_string();
    let bad = CreateBillingAccountsRequest { accounts: vec![open(&fresh, "Fine Name"), open("nope", "Ana")] };
    let refused =
        app.client().create_billing_accounts(app.request(bad, PATIENTS, &[])).await.expect_err("refused");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().starts_with("accounts[1]"), "{}", refused.message());
    let too_many = CreateBillingAccountsRequest {
        accounts: (0..501).map(|_| open(&uuid::Uuid::now_v7().to_string(), "Ana")).collect(),
    };
    let refused = app.client().create_billing_accounts(app.request(too_many, PATIENTS, &[])).await;
    assert_eq!(refused.expect_err("too many").code(), Code::InvalidArgument);
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM accounts").fetch_one(&app.pool).await.expect("count");
    assert_eq!(count, 3);
    // Only those who may open accounts may open them in bulk.
    let batch = CreateBillingAccountsRequest { accounts: vec![open(&fresh, "Ana")] };
    let denied = app.client().create_billing_accounts(app.request(batch, "service:analytics", &[])).await;
    assert_eq!(denied.expect_err("denied").code(), Code::PermissionDenied);
}

#[tokio::test]
async fn bad_input_and_unknown_patients_get_their_status_codes() {
    let app = TestApp::spawn().await;
    let mut client = app.client();
    let bad_id = client.create_billing_account(app.request(open("not-a-uuid", "Ana"), PATIENTS, &[])).await;
    assert_eq!(bad_id.expect_err("refused").code(), Code::InvalidArgument);
    let no_name = client
        .create_billing_account(app.request(open(&uuid::Uuid::now_v7().to_string(), "  "), PATIENTS, &[]))
        .await;
    assert_eq!(no_name.expect_err("refused").code(), Code::InvalidArgument);
    let unknown = GetBillingAccountRequest { patient_id: uuid::Uuid::now_v7().to_string() };
    let unknown = client.get_billing_account(app.request(unknown, "b", &[Role::Billing])).await;
    assert_eq!(unknown.expect_err("none").code(), Code::NotFound);
}

#[tokio::test]
async fn calls_without_a_valid_token_are_unauthenticated_and_other_roles_denied() {
    let app = TestApp::spawn().await;
    let mut client = app.client();
    let ask = || open(&uuid::Uuid::now_v7().to_string(), "Ana");
    let bare = client.create_billing_account(tonic::Request::new(ask())).await;
    assert_eq!(bare.expect_err("no token").code(), Code::Unauthenticated);
    let valid = app.tokens.token("someone", &[Role::Admin]);
    for (what, token) in forged_tokens(&valid, |claims| app.tokens.sign(claims)) {
        let request = kit::grpc::outgoing(ask(), &token, None, Duration::from_secs(2));
        let refused = client.create_billing_account(request).await.expect_err(what);
        assert_eq!(refused.code(), Code::Unauthenticated, "{what}");
    }
    for (user, roles) in [("desk", &[Role::Receptionist, Role::Clinician][..]), ("service:analytics", &[])] {
        let denied = client.create_billing_account(app.request(ask(), user, roles)).await;
        assert_eq!(denied.expect_err("denied").code(), Code::PermissionDenied, "{user}");
    }
    // The patients service opens accounts but does not read them.
    let read = GetBillingAccountRequest { patient_id: uuid::Uuid::now_v7().to_string() };
    let read = client.get_billing_account(app.request(read, PATIENTS, &[])).await;
    assert_eq!(read.expect_err("denied").code(), Code::PermissionDenied);
}

#[tokio::test]
async fn a_call_past_its_deadline_fails_with_deadline_exceeded_and_its_retry_opens_one_account() {
    let app = TestApp::spawn().await;
    // Hold the accounts table so the call cannot finish within its 300 ms deadline.
    let mut lock = app.pool.begin().await.expect("begin");
    sqlx::query("LOCK TABLE accounts IN EXCLUSIVE MODE").execute(&mut *lock).await.expect("lock");
    let patient = uuid::Uuid::now_v7().to_string();
    let token = app.tokens.token(PATIENTS, &[]);
    let request = kit::grpc::outgoing(open(&patient, "Late"), &token, None, Duration::from_millis(300));
    let started = std::time::Instant::now();
    let late = app.client().create_billing_account(request).await.expect_err("too late");
    assert_eq!(kit::grpc::status(late).code(), Code::DeadlineExceeded);
    assert!(started.elapsed() < Duration::from_secs(2));
    lock.rollback().await.expect("release");
    // The server answered at the deadline, but the statement it had sent may still commit once
    // the lock is gone: the caller cannot know, so it retries (as the outbox relay does), and
    // the retry answers the one account, whichever call opened it.
    let retry = app.request(open(&patient, "Late"), PATIENTS, &[]);
    let account = app.client().create_billing_account(retry).await.expect("retry").into_inner();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM accounts").fetch_one(&app.pool).await.expect("count");
    assert_eq!(count, 1);
    assert_eq!(account.patient_id, patient);
}

#[tokio::test]
async fn health_checking_and_reflection_are_served() {
    let app = TestApp::spawn().await;
    let mut health = HealthClient::new(app.channel());
    for service in ["", "pms.billing.v1.BillingService"] {
        let answer = health.check(HealthCheckRequest { service: service.into() }).await.expect("health");
        assert_eq!(answer.into_inner().status(), ServingStatus::Serving, "{service:?}");
    }
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let ask = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = ServerReflectionClient::new(app.channel())
        .server_reflection_info(tokio_stream_once(ask))
        .await
        .expect("reflection")
        .into_inner();
    let answer = answers.message().await.expect("message").expect("an answer");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("{answer:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&"pms.billing.v1.BillingService".to_owned()), "{names:?}");
}

/// A request stream of one message.
fn tokio_stream_once<T: Send + 'static>(item: T) -> impl tonic::codegen::tokio_stream::Stream<Item = T> {
    tonic::codegen::tokio_stream::iter([item])
}
