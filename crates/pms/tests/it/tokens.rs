//! Tokens across services: the gateway and the patients service verify with auth's keys.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use serde_json::Value;

use crate::system::TestSystem;

#[tokio::test]
async fn forged_tokens_are_refused_by_the_gateway_before_any_service_sees_them() {
    let system = TestSystem::start().await;
    let valid = system.admin_token().await;
    assert_eq!(system.get("/api/patients", &valid).await.status(), StatusCode::OK);
    let key = system.auth.keys.active().expect("key");
    for (what, token) in kit::testing::forged_tokens(&valid, |claims| key.sign(claims).expect("sign")) {
        let response = system.get("/api/patients", &token).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what} through the gateway");
    }
}

#[tokio::test]
async fn signing_keys_rotate_without_downtime() {
    let system = TestSystem::start().await;
    let old_token = system.admin_token().await;
    assert_eq!(system.get("/api/patients", &old_token).await.status(), StatusCode::OK);
    let new_kid = auth::KeyStore::rotate(&system.auth_pool, None).await.expect("rotate");
    system.auth.keys.reload().await.expect("reload");

    let new_token = system.admin_token().await;
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD.decode(new_token.split('.').next().expect("header")).expect("b64"),
    )
    .expect("json");
    assert_eq!(header["kid"], new_kid.as_str());
    // The gateway and the patients service learn the new key on first sight; the old token
    // keeps working until it expires.
    assert_eq!(system.get("/api/patients", &new_token).await.status(), StatusCode::OK);
    assert_eq!(system.get("/api/patients", &old_token).await.status(), StatusCode::OK);
}

/// Polls `GET /api/patients` through the gateway with `token` until it answers 401, for at
/// most `REFRESH` many times over; returns how long that took.
async fn refused_within(system: &TestSystem, token: &str) -> std::time::Duration {
    let started = std::time::Instant::now();
    let deadline = crate::system::REFRESH * 15;
    loop {
        let status = system.get("/api/patients", token).await.status();
        if status == StatusCode::UNAUTHORIZED {
            return started.elapsed();
        }
        assert_eq!(status, StatusCode::OK);
        assert!(started.elapsed() < deadline, "still accepted after {:?}", started.elapsed());
        tokio::time::sleep(crate::system::REFRESH / 4).await;
    }
}

#[tokio::test]
async fn a_revoked_signing_key_is_refused_everywhere_within_the_refresh_interval() {
    let system = TestSystem::start().await;
    let token = system.admin_token().await;
    assert_eq!(system.get("/api/patients", &token).await.status(), StatusCode::OK);
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD.decode(token.split('.').next().expect("header")).expect("b64"),
    )
    .expect("json");
    let kid = header["kid"].as_str().expect("kid");
    assert!(auth::KeyStore::revoke(&system.auth_pool, kid, None).await.expect("revoke"));
    system.auth.keys.reload().await.expect("reload");
    let took = refused_within(&system, &token).await;
    assert!(took <= crate::system::REFRESH * 10, "{took:?}");
    assert_eq!(system.get("/auth/validate", &token).await.status(), StatusCode::UNAUTHORIZED);
    // A new key signs from now on, and its tokens work everywhere.
    let fresh = system.admin_token().await;
    assert_eq!(system.get("/api/patients", &fresh).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn logout_disabling_and_role_changes_end_access_tokens_within_seconds() {
    let system = TestSystem::start().await;
    let admin = system.admin_token().await;

    // Logout ends the session: its access token too, not only its refresh token.
    let (_, email, password) = system.create_user("leaving", &[kit::auth::Role::Receptionist]).await;
    let pair = system.tokens(&email, &password).await;
    let access = pair["accessToken"].as_str().expect("token");
    assert_eq!(system.get("/api/patients", access).await.status(), StatusCode::OK);
    let other_session =
        system.tokens(&email, &password).await["accessToken"].as_str().expect("token").to_owned();
    let logout = system
        .client
        .post(system.url("/auth/logout"))
        .json(&serde_json::json!({ "refreshToken": pair["refreshToken"] }))
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    refused_within(&system, access).await;
    assert_eq!(
        system.get("/api/patients", &other_session).await.status(),
        StatusCode::OK,
        "other logins stay"
    );

    // A role change ends the tokens that carry the old roles.
    let (id, email, password) = system.create_user("moved", &[kit::auth::Role::Receptionist]).await;
    let access = system.tokens(&email, &password).await["accessToken"].as_str().expect("token").to_owned();
    assert_eq!(system.get("/api/patients", &access).await.status(), StatusCode::OK);
    let patch = system
        .client
        .patch(system.url(&format!("/api/users/{id}")))
        .bearer_auth(&admin)
        .json(&serde_json::json!({ "roles": ["analyst"] }))
        .send()
        .await
        .expect("patch");
    assert_eq!(patch.status(), StatusCode::OK);
    refused_within(&system, &access).await;

    // Disabling a user ends all of its tokens.
    let (id, email, password) = system.create_user("disabled", &[kit::auth::Role::Clinician]).await;
    let access = system.tokens(&email, &password).await["accessToken"].as_str().expect("token").to_owned();
    let patch = system
        .client
        .patch(system.url(&format!("/api/users/{id}")))
        .bearer_auth(&admin)
        .json(&serde_json::json!({ "enabled": false }))
        .send()
        .await
        .expect("patch");
    assert_eq!(patch.status(), StatusCode::OK);
    refused_within(&system, &access).await;
}
