//! `GET /api/billing/accounts/{patientId}`: billing staff and admins read accounts; others
//! are refused; unknown patients and malformed ids answer problem documents.

use kit::{auth::Role, testing::expect_problem};
use proto::billing::v1::CreateBillingAccountRequest;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::TestApp;

#[tokio::test]
async fn billing_staff_read_an_account_others_may_not() {
    let app = TestApp::spawn().await;
    let patient = uuid::Uuid::now_v7().to_string();
    let ask = CreateBillingAccountRequest {
        patient_id: patient.clone(),
        name: "Ana García".into(),
        email: String::new(),
        trace_id: String::new(),
    };
    let opened =
        app.client().create_billing_account(app.request(ask, "service:patients", &[])).await.expect("open");
    let url = format!("{}/api/billing/accounts/{patient}", app.base);
    for roles in [&[Role::Billing][..], &[Role::Admin]] {
        let response = app.tokens.client_as("reader", roles).get(&url).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::OK);
        let account: Value = response.json().await.expect("json");
        assert_eq!(account["number"], opened.get_ref().number.as_str());
        assert_eq!(account["patientId"], patient.as_str());
        assert!(account.get("email").is_none(), "no email given, none shown");
    }
    for roles in [&[Role::Receptionist][..], &[Role::Clinician], &[Role::Analyst]] {
        let response = app.tokens.client_as("other", roles).get(&url).send().await.expect("request");
        expect_problem(response, StatusCode::FORBIDDEN).await;
    }
    let anonymous = reqwest::get(&url).await.expect("request");
    expect_problem(anonymous, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn unknown_patients_and_malformed_ids_answer_problems() {
    let app = TestApp::spawn().await;
    let client = app.tokens.client_as("reader", &[Role::Billing]);
    let unknown = format!("{}/api/billing/accounts/{}", app.base, uuid::Uuid::now_v7());
    expect_problem(client.get(&unknown).send().await.expect("request"), StatusCode::NOT_FOUND).await;
    let malformed = format!("{}/api/billing/accounts/not-a-uuid", app.base);
    expect_problem(client.get(&malformed).send().await.expect("request"), StatusCode::BAD_REQUEST).await;
}
