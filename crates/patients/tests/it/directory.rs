//! `PatientDirectory.GetPatient` over gRPC: the caller's own token decides and is audited,
//! with the status codes another service acts on.

use std::time::Duration;

use kit::auth::Role;
use proto::patients::v1::{GetPatientRequest, patient_directory_client::PatientDirectoryClient};
use reqwest::StatusCode;
use tonic::{Code, Request, transport::Channel};

use crate::helpers::TestApp;

fn client(app: &TestApp) -> PatientDirectoryClient<Channel> {
    PatientDirectoryClient::new(kit::grpc::channel(&app.grpc_url, Duration::from_secs(2)).expect("channel"))
}

/// A request for `id` as `user` with `roles`, with a request id and a 2-second deadline.
fn ask(app: &TestApp, id: &str, user: &str, roles: &[Role]) -> Request<GetPatientRequest> {
    let token = app.tokens.token(user, roles);
    let mut request =
        kit::grpc::outgoing(GetPatientRequest { id: id.into() }, &token, None, Duration::from_secs(2));
    request.metadata_mut().insert("x-request-id", "appointments-req-1".parse().expect("value"));
    request
}

#[tokio::test]
async fn a_patient_is_read_for_the_caller_and_the_read_is_audited_under_their_name() {
    let app = TestApp::spawn().await;
    let id = app.register_named("Dora", "Directory").await;
    let patient = client(&app).get_patient(ask(&app, &id, "clinician-7", &[Role::Clinician])).await;
    let patient = patient.expect("found").into_inner();
    assert_eq!(
        (patient.id.as_str(), patient.family_name.as_str(), patient.active),
        (id.as_str(), "Directory", true)
    );
    let audited: (String, String, Option<String>) = sqlx::query_as(
        "SELECT actor_id, outcome, request_id FROM audit_events WHERE action = 'read' AND patient_id = $1::uuid",
    )
    .bind(&id)
    .fetch_one(&app.pool)
    .await
    .expect("audit row");
    assert_eq!(audited, ("clinician-7".to_owned(), "ok".to_owned(), Some("appointments-req-1".to_owned())));
}

#[tokio::test]
async fn each_refusal_has_its_status_code() {
    let app = TestApp::spawn().await;
    let id = app.register_named("Gone", "Directory").await;
    let mut directory = client(&app);
    let bare = directory.get_patient(Request::new(GetPatientRequest { id: id.clone() })).await;
    assert_eq!(bare.expect_err("no token").code(), Code::Unauthenticated);
    let denied = directory.get_patient(ask(&app, &id, "biller", &[Role::Billing])).await;
    assert_eq!(denied.expect_err("denied").code(), Code::PermissionDenied);
    let denials: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE outcome = 'denied' AND actor_id = 'biller'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("count");
    assert_eq!(denials, 1, "the refusal is audited");
    let malformed = directory.get_patient(ask(&app, "42", "desk", &[Role::Receptionist])).await;
    assert_eq!(malformed.expect_err("malformed").code(), Code::InvalidArgument);
    let unknown = directory
        .get_patient(ask(&app, &uuid::Uuid::now_v7().to_string(), "desk", &[Role::Receptionist]))
        .await;
    assert_eq!(unknown.expect_err("unknown").code(), Code::NotFound);
    assert_eq!(
        app.delete(&format!("/api/patients/{id}"), Some("\"1\"")).await.status(),
        StatusCode::NO_CONTENT
    );
    let gone = directory.get_patient(ask(&app, &id, "desk", &[Role::Receptionist])).await;
    assert_eq!(gone.expect_err("deactivated").code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn a_call_past_its_deadline_ends_with_deadline_exceeded() {
    let app = TestApp::spawn().await;
    let id = app.register_named("Slow", "Directory").await;
    let mut lock = app.pool.begin().await.expect("begin");
    sqlx::query("LOCK TABLE patients IN ACCESS EXCLUSIVE MODE").execute(&mut *lock).await.expect("lock");
    let token = app.tokens.token("desk", &[Role::Receptionist]);
    let request = kit::grpc::outgoing(GetPatientRequest { id }, &token, None, Duration::from_millis(300));
    let late = client(&app).get_patient(request).await.expect_err("too late");
    assert_eq!(kit::grpc::status(late).code(), Code::DeadlineExceeded);
    lock.rollback().await.expect("release");
}
