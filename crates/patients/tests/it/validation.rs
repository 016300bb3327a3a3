//! Bad input always gets a 4xx problem+json naming the field, never a 500.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, error_fields, expect_problem, patient};

#[tokio::test]
async fn every_invalid_value_is_reported_by_pointer() {
    let app = TestApp::spawn().await;
    let body = json!({
        "givenName": "",
        "familyName": "Ok",
        "birthDate": "2999-01-01",
        "sex": "f",
        "email": "not-an-email",
        "phone": "0049 30 1234",
        "address": { "country": "Germany", "line": ["ok", "x".repeat(300)] }
    });
    let problem =
        expect_problem(app.post("/api/patients", &body).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(
        error_fields(&problem),
        ["/givenName", "/birthDate", "/sex", "/email", "/phone", "/address/line/1", "/address/country"]
    );
}

#[tokio::test]
async fn birth_dates_before_1900_or_malformed_are_refused() {
    let app = TestApp::spawn().await;
    for date in ["1899-12-31", "1980-02-30", "01/02/1980", "1980-1-1"] {
        let mut body = patient("Old", "Timer");
        body["birthDate"] = json!(date);
        let problem =
            expect_problem(app.post("/api/patients", &body).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(error_fields(&problem), ["/birthDate"], "{date}");
    }
}

#[tokio::test]
async fn wrong_types_missing_and_unknown_fields_are_422() {
    let app = TestApp::spawn().await;
    let mut wrong_type = patient("A", "B");
    wrong_type["givenName"] = json!(42);
    let problem =
        expect_problem(app.post("/api/patients", &wrong_type).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(error_fields(&problem), ["/givenName"]);

    let missing = json!({ "givenName": "A", "birthDate": "1980-01-01", "sex": "male" });
    let problem =
        expect_problem(app.post("/api/patients", &missing).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(error_fields(&problem), ["/familyName"]);

    let mut unknown = patient("A", "B");
    unknown["ssn"] = json!("123-45-6789");
    let problem =
        expect_problem(app.post("/api/patients", &unknown).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(error_fields(&problem), ["/ssn"]);

    let mut nested = patient("A", "B");
    nested["address"] = json!({ "city": "X", "planet": "Mars" });
    let problem =
        expect_problem(app.post("/api/patients", &nested).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(error_fields(&problem), ["/address/planet"]);
}

#[tokio::test]
async fn malformed_json_is_400_and_other_media_types_415() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(app.url("/api/patients"))
        .header("content-type", "application/json")
        .body("{\"givenName\": \"A\",")
        .send()
        .await
        .expect("request");
    expect_problem(response, StatusCode::BAD_REQUEST).await;

    let response =
        app.client.post(app.url("/api/patients")).body("givenName=A").send().await.expect("request");
    expect_problem(response, StatusCode::UNSUPPORTED_MEDIA_TYPE).await;
}

#[tokio::test]
async fn bodies_over_64_kib_are_413() {
    let app = TestApp::spawn().await;
    let mut body = patient("Big", "Body");
    body["givenName"] = json!("x".repeat(70 * 1024));
    expect_problem(app.post("/api/patients", &body).await, StatusCode::PAYLOAD_TOO_LARGE).await;
}

#[tokio::test]
async fn a_malformed_id_is_400_naming_the_parameter() {
    let app = TestApp::spawn().await;
    for path in ["/api/patients/not-a-uuid", "/api/patients/123/history"] {
        let problem = expect_problem(app.get(path).await, StatusCode::BAD_REQUEST).await;
        assert_eq!(error_fields(&problem), ["id"], "{path}");
    }
    expect_problem(
        app.put("/api/patients/xyz", Some("\"1\""), &patient("A", "B")).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    expect_problem(app.delete("/api/patients/xyz", Some("\"1\"")).await, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn bad_search_parameters_are_422_naming_each() {
    let app = TestApp::spawn().await;
    let response =
        app.get("/api/patients?limit=101&birthDate=yesterday&mrn=12345678&phone=12&cursor=zz").await;
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(error_fields(&problem), ["birthDate", "mrn", "phone", "limit", "cursor"]);

    let problem =
        expect_problem(app.get("/api/patients?nmae=smith").await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(error_fields(&problem), ["nmae"]);

    for limit in ["0", "-1", "abc"] {
        let response = app.get(&format!("/api/patients?limit={limit}")).await;
        expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems_too() {
    let app = TestApp::spawn().await;
    expect_problem(app.get("/api/nothing-here").await, StatusCode::NOT_FOUND).await;
    let response = app.client.patch(app.url("/api/patients")).send().await.expect("request");
    expect_problem(response, StatusCode::METHOD_NOT_ALLOWED).await;
}
