//! Every role against every patient endpoint, through the gateway, and the audit of it.

use kit::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::system::{TestSystem, expect_problem};

fn patient(family: &str) -> Value {
    json!({ "givenName": "Matrix", "familyName": family, "birthDate": "1970-01-01", "sex": "unknown" })
}

/// Registers a patient as `token`'s user with an optional request id; returns its id.
async fn register(system: &TestSystem, token: &str, family: &str, request_id: Option<&str>) -> String {
    let mut request =
        system.client.post(system.url("/api/patients")).bearer_auth(token).json(&patient(family));
    if let Some(id) = request_id {
        request = request.header("x-request-id", id);
    }
    let created: Value = request.send().await.expect("request").json().await.expect("json");
    created["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn the_role_matrix_holds_for_every_patient_endpoint() {
    let system = TestSystem::start().await;
    let admin = system.admin_token().await;
    let mut tokens = vec![("admin", admin.clone())];
    for (name, role) in [
        ("receptionist", Role::Receptionist),
        ("clinician", Role::Clinician),
        ("billing", Role::Billing),
        ("analyst", Role::Analyst),
    ] {
        tokens.push((name, system.token_for(name, &[role]).await));
    }
    for (role, token) in &tokens {
        // A record of its own for each role, created by the admin.
        let id = register(&system, &admin, role, None).await;
        let writer = matches!(*role, "admin" | "receptionist");
        let reader = writer || *role == "clinician";
        let calls: [(Method, String, Option<Value>, StatusCode); 7] = [
            (Method::POST, "/api/patients".into(), Some(patient(role)), StatusCode::CREATED),
            (Method::GET, "/api/patients?name=matrix".into(), None, StatusCode::OK),
            (Method::GET, format!("/api/patients/{id}"), None, StatusCode::OK),
            (Method::GET, format!("/api/patients/{id}/history"), None, StatusCode::OK),
            (Method::PUT, format!("/api/patients/{id}"), Some(patient(&format!("{role}x"))), StatusCode::OK),
            (Method::DELETE, format!("/api/patients/{id}"), None, StatusCode::NO_CONTENT),
            (Method::GET, "/api/audit-events".into(), None, StatusCode::OK),
        ];
        for (method, path, body, allowed) in calls {
            let may = match (&method, path.as_str()) {
                (_, "/api/audit-events") => *role == "admin",
                (&Method::GET, _) => reader,
                _ => writer,
            };
            let mut request = system.client.request(method.clone(), system.url(&path)).bearer_auth(token);
            if method == Method::PUT {
                request = request.header("if-match", "\"1\"");
            }
            if method == Method::DELETE {
                request = request.header("if-match", "\"2\"");
            }
            if let Some(body) = body {
                request = request.json(&body);
            }
            let status = request.send().await.expect("request").status();
            let expected = if may { allowed } else { StatusCode::FORBIDDEN };
            assert_eq!(status, expected, "{role} {method} {path}");
        }
    }
}

#[tokio::test]
async fn without_a_token_everything_but_login_answers_401() {
    let system = TestSystem::start().await;
    let id = "01890a5d-ac96-774b-bcce-b302099a8057";
    for (method, path) in [
        (Method::GET, "/api/patients".to_owned()),
        (Method::POST, "/api/patients".to_owned()),
        (Method::GET, format!("/api/patients/{id}")),
        (Method::PUT, format!("/api/patients/{id}")),
        (Method::DELETE, format!("/api/patients/{id}")),
        (Method::GET, format!("/api/patients/{id}/history")),
        (Method::GET, "/api/audit-events".to_owned()),
        (Method::GET, "/api/users".to_owned()),
        (Method::POST, "/api/users/me/password".to_owned()),
        (Method::GET, format!("/api/users/names?ids={id}")),
        (Method::GET, "/auth/validate".to_owned()),
    ] {
        let response =
            system.client.request(method.clone(), system.url(&path)).send().await.expect("request");
        assert!(response.headers().contains_key("www-authenticate"), "{method} {path}");
        expect_problem(response, StatusCode::UNAUTHORIZED).await;
    }
    let response = system.client.get(system.url("/.well-known/jwks.json")).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::OK);
}

// A clinician reading a record's history sees who wrote each version by name: the version
// holds the author's user id, and the gateway lets any colleague turn it into a name.
#[tokio::test]
async fn a_history_author_is_named_to_any_colleague() {
    let system = TestSystem::start().await;
    let (front_desk, email, password) = system.create_user("rosa", &[Role::Receptionist]).await;
    let receptionist =
        system.tokens(&email, &password).await["accessToken"].as_str().expect("token").to_owned();
    let clinician = system.token_for("doc", &[Role::Clinician]).await;
    let id = register(&system, &receptionist, "Authored", None).await;

    let history: Value =
        system.get(&format!("/api/patients/{id}/history"), &clinician).await.json().await.expect("json");
    let author = history["versions"][0]["recordedBy"].as_str().expect("author");
    assert_eq!(author, front_desk);
    let response = system.get(&format!("/api/users/names?ids={author}"), &clinician).await;
    assert_eq!(response.status(), StatusCode::OK);
    let names: Value = response.json().await.expect("json");
    assert_eq!(names, json!({ "users": [{ "id": front_desk, "displayName": "rosa" }] }));
}

#[tokio::test]
async fn patient_operations_are_audited_with_the_user_and_denials_too() {
    let system = TestSystem::start().await;
    let (clinician_id, email, password) = system.create_user("doc", &[Role::Clinician]).await;
    let clinician = system.tokens(&email, &password).await["accessToken"].as_str().expect("token").to_owned();
    let admin = system.admin_token().await;
    let id = register(&system, &admin, "Audited", Some("req-e2e-1")).await;
    assert_eq!(system.get(&format!("/api/patients/{id}"), &clinician).await.status(), StatusCode::OK);
    let response = system
        .client
        .delete(system.url(&format!("/api/patients/{id}")))
        .bearer_auth(&clinician)
        .send()
        .await
        .expect("request");
    expect_problem(response, StatusCode::FORBIDDEN).await;

    let page: Value =
        system.get(&format!("/api/audit-events?patientId={id}"), &admin).await.json().await.expect("json");
    let rows = page["events"].as_array().expect("events");
    let seen: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap_or(""),
                r["outcome"].as_str().unwrap_or(""),
                r["actorId"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let admin_id = rows.last().and_then(|r| r["actorId"].as_str()).unwrap_or("").to_owned();
    assert_eq!(
        seen,
        [
            ("deactivate", "denied", clinician_id.as_str()),
            ("read", "ok", clinician_id.as_str()),
            ("create", "ok", admin_id.as_str())
        ]
    );
    // The gateway assigned the request id; the client's own is kept beside it.
    assert_eq!(rows[2]["clientRequestId"], "req-e2e-1");
    assert!(rows[2]["requestId"].as_str().is_some_and(|id| id != "req-e2e-1" && id.len() == 36));
    assert_eq!(rows[0]["actorRoles"], json!(["clinician"]));
    // Where each access came from: the client's address (through the gateway) and its agent.
    assert!(rows.iter().all(|r| r["clientAddress"] == "127.0.0.1"), "{rows:?}");
    assert!(rows.iter().all(|r| r["userAgent"] == "pms-tests"), "{rows:?}");
}
