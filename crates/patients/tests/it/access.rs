//! Tokens and roles: the service checks the caller itself and audits what it refuses.

use kit::auth::Role;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, expect_problem, patient};

#[tokio::test]
async fn without_a_valid_token_nothing_is_served() {
    let app = TestApp::spawn().await;
    let id = app.register_named("Secret", "Record").await;
    let anonymous = app.client_as("nobody", &[]);
    for path in
        ["/api/patients".to_owned(), format!("/api/patients/{id}"), format!("/api/patients/{id}/history")]
    {
        let response = anonymous.get(app.url(&path)).send().await.expect("request");
        assert!(response.headers()["www-authenticate"].to_str().expect("header").starts_with("Bearer"));
        expect_problem(response, StatusCode::UNAUTHORIZED).await;
        let forged = anonymous.get(app.url(&path)).bearer_auth("not.a.token").send().await.expect("request");
        expect_problem(forged, StatusCode::UNAUTHORIZED).await;
    }
    // A token signed by some other key is refused too.
    let stranger = kit::testing::TestTokens::new().token("admin-1", &[Role::Admin]);
    let response = anonymous
        .get(app.url(&format!("/api/patients/{id}")))
        .bearer_auth(stranger)
        .send()
        .await
        .expect("request");
    expect_problem(response, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn a_clinician_reads_but_does_not_write_and_the_refusal_is_audited() {
    let app = TestApp::spawn().await;
    let id = app.register_named("Care", "Taker").await;
    let clinician = app.client_as("clin-7", &[Role::Clinician]);
    let path = app.url(&format!("/api/patients/{id}"));
    assert_eq!(clinician.get(&path).send().await.expect("request").status(), StatusCode::OK);
    let response = clinician
        .put(&path)
        .header("if-match", "\"1\"")
        .json(&patient("Care", "Giver"))
        .send()
        .await
        .expect("request");
    expect_problem(response, StatusCode::FORBIDDEN).await;
    // Denied before the body is even read: an invalid body is still a 403, not a 422.
    let response = clinician
        .post(app.url("/api/patients"))
        .body("{")
        .header("content-type", "application/json")
        .send()
        .await
        .expect("request");
    expect_problem(response, StatusCode::FORBIDDEN).await;

    let rows: Vec<(String, String, Option<String>, Vec<String>)> = sqlx::query_as(
        "SELECT action, outcome, actor_id, actor_roles FROM audit_events WHERE actor_id = 'clin-7' ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .expect("audit");
    let seen: Vec<(&str, &str)> = rows.iter().map(|r| (r.0.as_str(), r.1.as_str())).collect();
    assert_eq!(seen, [("read", "ok"), ("update", "denied"), ("create", "denied")]);
    assert!(rows.iter().all(|r| r.3 == ["clinician"]));
    let unchanged: Value = app.get(&format!("/api/patients/{id}")).await.json().await.expect("json");
    assert_eq!(unchanged["familyName"], "Taker");
}

#[tokio::test]
async fn billing_and_analysts_see_no_patient_data() {
    let app = TestApp::spawn().await;
    let id = app.register_named("Private", "Person").await;
    for role in [Role::Billing, Role::Analyst] {
        let client = app.client_as("someone", &[role]);
        for path in [
            "/api/patients?name=private".to_owned(),
            format!("/api/patients/{id}"),
            format!("/api/patients/{id}/history"),
        ] {
            let response = client.get(app.url(&path)).send().await.expect("request");
            expect_problem(response, StatusCode::FORBIDDEN).await;
        }
    }
}

#[tokio::test]
async fn admins_read_the_audit_trail_filtered_and_paged() {
    let app = TestApp::spawn().await;
    let a = app.register_named("Aud", "One").await;
    let b = app.register_named("Aud", "Two").await;
    for _ in 0..3 {
        app.get(&format!("/api/patients/{a}")).await;
    }
    // Users are named by UUIDs, as the auth service names them.
    let receptionist = "01890a5d-ac96-774b-bcce-b302099a8057";
    app.client_as(receptionist, &[Role::Receptionist])
        .get(app.url(&format!("/api/patients/{b}")))
        .send()
        .await
        .expect("request");

    let page: Value =
        app.get(&format!("/api/audit-events?patientId={a}&limit=2")).await.json().await.expect("json");
    let items = page["events"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|r| r["patientId"] == a.as_str()));
    assert_eq!(items[0]["action"], "read");
    assert_eq!(items[0]["actorId"], "admin-1");
    let cursor = page["nextCursor"].as_str().expect("more pages");
    let rest: Value = app
        .get(&format!("/api/audit-events?patientId={a}&limit=10&cursor={cursor}"))
        .await
        .json()
        .await
        .expect("json");
    let rest = rest["events"].as_array().expect("items");
    assert_eq!(rest.len(), 2, "3 reads + 1 create about patient a, 2 per page");
    assert_eq!(rest[1]["action"], "create");

    let by_user: Value =
        app.get(&format!("/api/audit-events?userId={receptionist}")).await.json().await.expect("json");
    assert_eq!(by_user["events"].as_array().expect("items").len(), 1);
    expect_problem(app.get("/api/audit-events?userId=recep-1").await, StatusCode::UNPROCESSABLE_ENTITY).await;
    let future: Value =
        app.get("/api/audit-events?from=2999-01-01T00:00:00Z").await.json().await.expect("json");
    assert!(future["events"].as_array().expect("items").is_empty());
    expect_problem(app.get("/api/audit-events?from=yesterday").await, StatusCode::UNPROCESSABLE_ENTITY).await;

    let clinician = app.client_as("clin-1", &[Role::Clinician]);
    let response = clinician.get(app.url("/api/audit-events")).send().await.expect("request");
    expect_problem(response, StatusCode::FORBIDDEN).await;
}

#[tokio::test]
async fn the_service_runs_as_a_role_that_cannot_change_delete_or_unprotect_audit_rows() {
    let app = TestApp::spawn().await;
    app.register_named("Kept", "Forever").await;
    let (runtime, owner): (String, String) = sqlx::query_as(
        "SELECT current_user::text, (SELECT tableowner::text FROM pg_tables WHERE tablename = 'audit_events')",
    )
    .fetch_one(&app.pool)
    .await
    .expect("roles");
    assert_ne!(runtime, owner, "the service must not run as the owner (run ./scripts/test.sh)");
    for statement in [
        "UPDATE audit_events SET outcome = 'tampered'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
        "UPDATE patient_versions SET version = version + 100",
        "DELETE FROM patient_versions",
    ] {
        let err = sqlx::query(statement).execute(&app.pool).await.expect_err(statement);
        assert!(err.to_string().contains("permission denied"), "{statement}: {err}");
    }
    let err = sqlx::query("ALTER TABLE audit_events DISABLE TRIGGER ALL")
        .execute(&app.pool)
        .await
        .expect_err("alter");
    assert!(err.to_string().contains("must be owner"), "{err}");
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_events").fetch_one(&app.pool).await.expect("count");
    assert_eq!(rows, 1);
}
