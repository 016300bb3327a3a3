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
    let new_kid = auth::KeyStore::rotate(&system.auth_pool).await.expect("rotate");
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
