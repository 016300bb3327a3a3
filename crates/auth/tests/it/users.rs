//! User administration.

use kit::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestAuth, expect_problem};

#[tokio::test]
async fn admins_create_list_and_change_users() {
    let system = TestAuth::start().await;
    let admin = system.admin_token().await;
    let (id, email, password) = system.create_user("nurse", &[Role::Clinician]).await;

    let body = json!({ "email": email.to_uppercase(), "displayName": "Twin", "password": "another-password", "roles": ["clinician"] });
    let response = system
        .client
        .post(system.url("/api/users"))
        .bearer_auth(&admin)
        .json(&body)
        .send()
        .await
        .expect("request");
    expect_problem(response, StatusCode::CONFLICT).await;
    let bad = json!({ "email": "x", "displayName": "", "password": "short", "roles": [] });
    let response = system
        .client
        .post(system.url("/api/users"))
        .bearer_auth(&admin)
        .json(&bad)
        .send()
        .await
        .expect("request");
    let problem = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(problem["errors"].as_array().expect("errors").len(), 4);
    let unknown_role = json!({ "email": "a@b.example", "displayName": "A", "password": "long-enough-pass", "roles": ["wizard"] });
    let response = system
        .client
        .post(system.url("/api/users"))
        .bearer_auth(&admin)
        .json(&unknown_role)
        .send()
        .await
        .expect("request");
    expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;

    let page: Value = system.get("/api/users?limit=1", &admin).await.json().await.expect("json");
    assert_eq!(page["users"].as_array().expect("items").len(), 1);
    let next = page["nextCursor"].as_str().expect("cursor");
    let rest: Value =
        system.get(&format!("/api/users?limit=10&cursor={next}"), &admin).await.json().await.expect("json");
    assert_eq!(rest["users"].as_array().expect("items").len(), 1);
    assert!(page["users"][0].get("passwordHash").is_none());

    let response = system
        .client
        .patch(system.url(&format!("/api/users/{id}")))
        .bearer_auth(&admin)
        .json(&json!({ "roles": ["clinician", "receptionist"] }))
        .send()
        .await
        .expect("request");
    let user: Value = response.json().await.expect("json");
    assert_eq!(user["roles"], json!(["clinician", "receptionist"]));
    let token = system.tokens(&email, &password).await["accessToken"].as_str().expect("token").to_owned();
    let info: Value = system.get("/auth/validate", &token).await.json().await.expect("json");
    assert_eq!(info["roles"], json!(["clinician", "receptionist"]));
}

#[tokio::test]
async fn only_admins_manage_users() {
    let system = TestAuth::start().await;
    let receptionist = system.token_for("front", &[Role::Receptionist]).await;
    expect_problem(system.get("/api/users", &receptionist).await, StatusCode::FORBIDDEN).await;
    let body = json!({ "email": "x@test.example", "displayName": "X", "password": "long-enough-pass", "roles": ["admin"] });
    let response = system
        .client
        .post(system.url("/api/users"))
        .bearer_auth(&receptionist)
        .json(&body)
        .send()
        .await
        .expect("request");
    expect_problem(response, StatusCode::FORBIDDEN).await;
}

/// Disables user `id` as the admin.
async fn disable(system: &TestAuth, id: &str) {
    let response = system
        .client
        .patch(system.url(&format!("/api/users/{id}")))
        .bearer_auth(system.admin_token().await)
        .json(&json!({ "enabled": false }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_disabled_user_can_neither_log_in_nor_refresh() {
    let system = TestAuth::start().await;
    let (id, email, password) = system.create_user("leaver", &[Role::Receptionist]).await;
    let pair = system.tokens(&email, &password).await;
    disable(&system, &id).await;
    let refresh = json!({ "refreshToken": pair["refreshToken"] });
    let response =
        system.client.post(system.url("/auth/refresh")).json(&refresh).send().await.expect("request");
    expect_problem(response, StatusCode::UNAUTHORIZED).await;
    expect_problem(system.login(&email, &password).await, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn users_change_their_own_password() {
    let system = TestAuth::start().await;
    let (_, email, password) = system.create_user("changer", &[Role::Clinician]).await;
    let token = system.tokens(&email, &password).await["accessToken"].as_str().expect("token").to_owned();
    let change = |current: &str, new: &str| {
        system
            .client
            .post(system.url("/api/users/me/password"))
            .bearer_auth(&token)
            .json(&json!({ "currentPassword": current, "newPassword": new }))
            .send()
    };
    let problem = expect_problem(
        change("not-my-password", "brand-new-password").await.expect("request"),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem["errors"][0]["pointer"], "/currentPassword");
    assert_eq!(
        change(&password, "brand-new-password").await.expect("request").status(),
        StatusCode::NO_CONTENT
    );
    expect_problem(system.login(&email, &password).await, StatusCode::UNAUTHORIZED).await;
    assert_eq!(system.login(&email, "brand-new-password").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_auth_trail_keeps_logins_logouts_and_user_changes_durably_for_admins() {
    let system = TestAuth::start().await;
    let admin = system.admin_token().await;
    // Creating the user logs the admin in once more.
    let (id, email, password) = system.create_user("trailed", &[Role::Clinician]).await;
    expect_problem(system.login(&email, "wrong-password-123").await, StatusCode::UNAUTHORIZED).await;
    expect_problem(system.login("nobody@test.example", "wrong-password-123").await, StatusCode::UNAUTHORIZED)
        .await;
    let pair = system.tokens(&email, &password).await;
    let response = system
        .client
        .post(system.url("/auth/logout"))
        .json(&json!({ "refreshToken": pair["refreshToken"] }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = system
        .client
        .patch(system.url(&format!("/api/users/{id}")))
        .bearer_auth(&admin)
        .json(&json!({ "roles": ["receptionist"] }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);

    let page =
        kit::testing::expect_json(system.get("/api/auth-events?limit=100", &admin).await, StatusCode::OK)
            .await;
    let events = page["events"].as_array().expect("events");
    let seen: Vec<(&str, &str)> = events
        .iter()
        .rev()
        .map(|e| (e["action"].as_str().unwrap_or(""), e["outcome"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        seen,
        [
            ("login", "ok"),
            ("login", "ok"),
            ("user_create", "ok"),
            ("login", "failed"),
            ("login", "failed"),
            ("login", "ok"),
            ("logout", "ok"),
            ("user_update", "ok"),
        ]
    );
    let mine = kit::testing::expect_json(
        system.get(&format!("/api/auth-events?userId={id}"), &admin).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(mine["events"].as_array().expect("events").len(), 5, "create, failure, login, logout, update");
    assert_eq!(mine["events"][0]["details"]["roles"], json!(["receptionist"]));
    assert!(mine["events"][0]["actorId"].is_string() && mine["events"][0]["actorId"] != id.as_str());
    assert!(
        events.iter().all(|e| e["userAgent"] == "pms-tests" && e["address"] == "127.0.0.1"),
        "{events:?}"
    );
    let text = page.to_string();
    assert!(!text.contains("@test.example") && !text.contains("password"), "no emails or secrets: {text}");

    let clinician = system.token_for("nosy", &[Role::Clinician]).await;
    expect_problem(system.get("/api/auth-events", &clinician).await, StatusCode::FORBIDDEN).await;
    for statement in
        ["UPDATE auth_events SET outcome = 'ok'", "DELETE FROM auth_events", "TRUNCATE auth_events"]
    {
        assert!(sqlx::query(statement).execute(&system.pool).await.is_err(), "{statement}");
    }
}

// A record's history names its authors by user id; any colleague may turn those ids into
// names, disabled colleagues included, and learns nothing else about them.
#[tokio::test]
async fn any_colleague_reads_names_by_id_and_nothing_more() {
    let system = TestAuth::start().await;
    let (nurse, _, _) = system.create_user("nurse", &[Role::Clinician]).await;
    let (left, _, _) = system.create_user("left", &[Role::Receptionist]).await;
    disable(&system, &left).await;
    let analyst = system.token_for("numbers", &[Role::Analyst]).await;
    let nobody = uuid::Uuid::now_v7();

    let response = system.get(&format!("/api/users/names?ids={left},{nobody},{nurse}"), &analyst).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    let mut expected =
        vec![json!({ "id": nurse, "displayName": "nurse" }), json!({ "id": left, "displayName": "left" })];
    expected.sort_by_key(|u| u["id"].as_str().expect("id").to_owned());
    assert_eq!(body, json!({ "users": expected }), "names only, unknown ids left out");

    let problem = expect_problem(
        system.get("/api/users/names?ids=admin", &analyst).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem["errors"][0]["parameter"], "ids");
    let problem =
        expect_problem(system.get("/api/users/names", &analyst).await, StatusCode::UNPROCESSABLE_ENTITY)
            .await;
    assert_eq!(problem["errors"][0]["parameter"], "ids");
    let anonymous = system
        .client
        .get(system.url(&format!("/api/users/names?ids={nurse}")))
        .send()
        .await
        .expect("request");
    expect_problem(anonymous, StatusCode::UNAUTHORIZED).await;
}
