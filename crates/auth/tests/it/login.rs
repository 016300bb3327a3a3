//! Login, token lifecycle, brute-force limits, the first admin and key rotation.

use std::time::{Duration, Instant};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use kit::{tasks::Background, testing::TestDatabase};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestAuth, expect_problem};

#[tokio::test]
async fn login_answers_a_token_pair_and_failures_look_alike() {
    let system = TestAuth::start().await;
    let response = system.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(response.headers()["cache-control"], "no-store", "no cache may keep tokens");
    let pair = kit::testing::expect_json(response, StatusCode::OK).await;
    assert_eq!(pair["tokenType"], "Bearer");
    // Clients of the system pms replaces read `token`: the same access token.
    assert!(pair["token"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(pair["token"], pair["accessToken"]);
    assert_eq!(pair["expiresIn"], 900);
    assert!(pair["refreshToken"].as_str().is_some_and(|t| t.len() >= 43));
    // Email case does not matter.
    assert_eq!(system.login("ADMIN@test.example", ADMIN_PASSWORD).await.status(), StatusCode::OK);

    let timed = |email: &'static str| {
        let system = &system;
        async move {
            let started = Instant::now();
            let response = system.login(email, "wrong-password-123").await;
            (started.elapsed(), response)
        }
    };
    let mut wrong_password = Vec::new();
    let mut unknown_email = Vec::new();
    for _ in 0..4 {
        let (t, r) = timed(ADMIN_EMAIL).await;
        wrong_password.push((t, expect_problem(r, StatusCode::UNAUTHORIZED).await));
        let (t, r) = timed("nobody@test.example").await;
        unknown_email.push((t, expect_problem(r, StatusCode::UNAUTHORIZED).await));
    }
    // The same answer, so nobody learns which accounts exist...
    assert_eq!(wrong_password[0].1, unknown_email[0].1);
    // ...in about the same time: an unknown email is checked against a dummy hash, so it is
    // never the fast path (without it: ~1 ms against tens of ms for Argon2). The fastest of
    // several tries is compared: a busy machine only ever adds time, so minima stay stable
    // where medians of two busy cores do not.
    let fastest = |v: &[(Duration, Value)]| v.iter().map(|x| x.0).min().unwrap_or_default();
    let (wrong, unknown) = (fastest(&wrong_password), fastest(&unknown_email));
    assert!(unknown * 3 >= wrong, "unknown email {unknown:?} vs wrong password {wrong:?}");
}

async fn refresh(system: &TestAuth, token: &str) -> reqwest::Response {
    system
        .client
        .post(system.url("/auth/refresh"))
        .json(&json!({ "refreshToken": token }))
        .send()
        .await
        .expect("request")
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    let system = TestAuth::start().await;
    let first = system.tokens(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let r1 = first["refreshToken"].as_str().expect("token");
    let response = refresh(&system, r1).await;
    assert_eq!(response.status(), StatusCode::OK);
    let second: Value = response.json().await.expect("json");
    let r2 = second["refreshToken"].as_str().expect("token");
    assert_ne!(r1, r2);
    let access = second["accessToken"].as_str().expect("token");
    assert_eq!(system.get("/auth/validate", access).await.status(), StatusCode::OK);

    // r1 again: somebody replays it. Both r1 and the legitimate r2 stop working.
    expect_problem(refresh(&system, r1).await, StatusCode::UNAUTHORIZED).await;
    expect_problem(refresh(&system, r2).await, StatusCode::UNAUTHORIZED).await;
    // Another login is a new family and works.
    let other = system.tokens(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(
        refresh(&system, other["refreshToken"].as_str().expect("token")).await.status(),
        StatusCode::OK
    );
    expect_problem(refresh(&system, "made-up-token").await, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn logout_revokes_the_refresh_token() {
    let system = TestAuth::start().await;
    let pair = system.tokens(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let token = pair["refreshToken"].as_str().expect("token");
    let response = system
        .client
        .post(system.url("/auth/logout"))
        .json(&json!({ "refreshToken": token }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    expect_problem(refresh(&system, token).await, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn validate_accepts_only_valid_tokens() {
    let system = TestAuth::start().await;
    let valid = system.admin_token().await;
    let response = system.get("/auth/validate", &valid).await;
    assert_eq!(response.status(), StatusCode::OK);
    let info: Value = response.json().await.expect("json");
    assert_eq!(info["roles"], json!(["admin"]));

    let key = system.state.keys.active().expect("key");
    for (what, token) in kit::testing::forged_tokens(&valid, |claims| key.sign(claims).expect("sign")) {
        let response = system.get("/auth/validate", &token).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
    }
    let response = system.client.get(system.url("/auth/validate")).send().await.expect("request");
    expect_problem(response, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn five_failures_lock_an_account_until_the_window_passes() {
    let system = TestAuth::start_with(|auth| auth.limits.window = Duration::from_secs(3)).await;
    // A success in between does not reset the count: whoever also knows one password cannot
    // clear a guessing run with it.
    for _ in 0..4 {
        expect_problem(system.login(ADMIN_EMAIL, "wrong-password-123").await, StatusCode::UNAUTHORIZED).await;
    }
    system.tokens(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    expect_problem(system.login(ADMIN_EMAIL, "wrong-password-123").await, StatusCode::UNAUTHORIZED).await;
    // Locked: even the right password is refused, with a Retry-After.
    let response = system.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let retry_after: u64 =
        response.headers()["retry-after"].to_str().expect("header").parse().expect("seconds");
    assert!((1..=4).contains(&retry_after), "{retry_after}");
    expect_problem(response, StatusCode::TOO_MANY_REQUESTS).await;
    // Let the window pass on auth's clock, not on the wall clock.
    system.clock.advance(Duration::from_secs(retry_after));
    assert_eq!(system.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn concurrent_guesses_are_counted_before_the_password_is_checked() {
    let system = TestAuth::start().await;
    let guesses: Vec<_> = (0..12)
        .map(|i| {
            let api = system.api.clone();
            tokio::spawn(
                async move { api.login(ADMIN_EMAIL, &format!("guess-number-{i:04}")).await.status() },
            )
        })
        .collect();
    let mut tried = 0;
    for guess in guesses {
        match guess.await.expect("task") {
            StatusCode::UNAUTHORIZED => tried += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(tried, 5, "of 12 guesses at once, exactly the account's limit got to try a password");
}

#[tokio::test]
async fn wrong_current_passwords_count_like_failed_logins() {
    let system = TestAuth::start().await;
    let token = system.admin_token().await;
    let change = |current: &'static str| {
        system
            .client
            .post(system.url("/api/users/me/password"))
            .bearer_auth(&token)
            .json(&json!({ "currentPassword": current, "newPassword": "brand-new-password" }))
            .send()
    };
    for _ in 0..5 {
        expect_problem(
            change("wrong-password-123").await.expect("request"),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    expect_problem(change("wrong-password-123").await.expect("request"), StatusCode::TOO_MANY_REQUESTS).await;
    expect_problem(system.login(ADMIN_EMAIL, ADMIN_PASSWORD).await, StatusCode::TOO_MANY_REQUESTS).await;
}

#[tokio::test]
async fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
    let system = TestAuth::start_with(|auth| {
        auth.limits.per_address = 3;
        auth.trusted_proxies = kit::net::TrustedProxies::default();
    })
    .await;
    // The peer (loopback) is not trusted here: each made-up X-Forwarded-For changes nothing.
    for i in 0..3 {
        let response = system
            .client
            .post(system.url("/auth/login"))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .json(&json!({ "email": format!("nobody{i}@test.example"), "password": "wrong-password-123" }))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response = system
        .client
        .post(system.url("/auth/login"))
        .header("x-forwarded-for", "198.51.100.99")
        .json(&json!({ "email": "someone@test.example", "password": "wrong-password-123" }))
        .send()
        .await
        .expect("request");
    expect_problem(response, StatusCode::TOO_MANY_REQUESTS).await;
}

#[tokio::test]
async fn too_many_failures_from_one_address_pause_its_logins() {
    let system = TestAuth::start_with(|auth| auth.limits.per_address = 4).await;
    for i in 0..4 {
        let response = system.login(&format!("guess{i}@test.example"), "wrong-password-123").await;
        expect_problem(response, StatusCode::UNAUTHORIZED).await;
    }
    expect_problem(system.login(ADMIN_EMAIL, ADMIN_PASSWORD).await, StatusCode::TOO_MANY_REQUESTS).await;
}

#[tokio::test]
async fn the_first_admin_is_created_once_and_never_reset() {
    let system = TestAuth::start().await;
    let mut config = system.config.clone();
    config.admin = Some(auth::AdminBootstrap {
        email: "other@test.example".into(),
        password: "another-password-1".into(),
    });
    // A restart with other bootstrap settings changes nothing.
    auth::build(config, &Background::new()).await.expect("restart");
    let users: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&system.pool).await.expect("count");
    assert_eq!(users, 1);
    assert_eq!(system.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(), StatusCode::OK);
    expect_problem(system.login("other@test.example", "another-password-1").await, StatusCode::UNAUTHORIZED)
        .await;
    // Without bootstrap settings, a database with no users refuses to start.
    let empty = TestDatabase::create().await;
    auth::SCHEMA.connect_and_migrate(&empty.config()).await.expect("migrate");
    let mut config = crate::helpers::config(&empty);
    config.admin = None;
    assert!(auth::build(config, &Background::new()).await.is_err());
}

#[tokio::test]
async fn signing_keys_rotate_without_downtime() {
    let system = TestAuth::start().await;
    let old_token = system.admin_token().await;
    assert_eq!(system.get("/auth/validate", &old_token).await.status(), StatusCode::OK);
    let new_kid = auth::KeyStore::rotate(&system.pool, None).await.expect("rotate");
    system.state.keys.reload().await.expect("reload");

    let new_token = system.admin_token().await;
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD.decode(new_token.split('.').next().expect("header")).expect("b64"),
    )
    .expect("json");
    assert_eq!(header["kid"], new_kid.as_str());
    let jwks: Value = system
        .client
        .get(system.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    assert_eq!(jwks["keys"].as_array().expect("keys").len(), 2, "the retired key stays published");
    // Both keys verify: the old token keeps working until it expires (docs/security.md; the
    // gateway and the other services learning the new key is tested end to end in pms).
    assert_eq!(system.get("/auth/validate", &new_token).await.status(), StatusCode::OK);
    assert_eq!(system.get("/auth/validate", &old_token).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_session_ends_when_idle_and_at_its_lifetime_however_often_refreshed() {
    let system = TestAuth::start_with(|auth| {
        auth.session_idle = Duration::from_secs(30 * 60);
        auth.session_lifetime = Duration::from_secs(60 * 60);
    })
    .await;
    // Idle: no refresh for longer than 30 minutes.
    let pair = system.tokens(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    system.clock.advance(Duration::from_secs(31 * 60));
    let token = pair["refreshToken"].as_str().expect("token");
    expect_problem(refresh(&system, token).await, StatusCode::UNAUTHORIZED).await;

    // Lifetime: refreshed every 20 minutes, the session still ends an hour after login.
    let mut token =
        system.tokens(ADMIN_EMAIL, ADMIN_PASSWORD).await["refreshToken"].as_str().expect("token").to_owned();
    for _ in 0..2 {
        system.clock.advance(Duration::from_secs(20 * 60));
        let response = refresh(&system, &token).await;
        let pair = kit::testing::expect_json(response, StatusCode::OK).await;
        token = pair["refreshToken"].as_str().expect("token").to_owned();
    }
    system.clock.advance(Duration::from_secs(21 * 60));
    expect_problem(refresh(&system, &token).await, StatusCode::UNAUTHORIZED).await;
}

// With a key-encryption key from the secret store, a copy of the database cannot sign tokens:
// signing keys are stored sealed, logins still work, and without the key auth refuses to start
// rather than sign with something else.
#[tokio::test]
async fn signing_keys_are_sealed_at_rest_with_the_key_encryption_key() {
    let secret = "a generated secret of at least thirty-two characters";
    let sealer = auth::KeySealer::from_secret(secret.as_bytes()).expect("sealer");
    let system = TestAuth::start_with(|config| config.key_sealer = Some(sealer.clone())).await;
    let token = system.admin_token().await;
    assert_eq!(system.get("/auth/validate", &token).await.status(), StatusCode::OK);
    let rotated = auth::KeyStore::rotate(&system.pool, Some(&sealer)).await.expect("rotate");
    system.state.keys.reload().await.expect("reload");
    assert_eq!(system.get("/auth/validate", &system.admin_token().await).await.status(), StatusCode::OK);

    let stored: Vec<(String, Vec<u8>)> = sqlx::query_as("SELECT kid, private_key FROM signing_keys")
        .fetch_all(&system.pool)
        .await
        .expect("keys");
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().any(|(kid, _)| *kid == rotated));
    assert!(stored.iter().all(|(_, key)| auth::sealing::is_sealed(key)), "no signing key in the clear");

    let mut without = system.config.clone();
    without.key_sealer = None;
    let refused = auth::build(without, &Background::new()).await.err().expect("auth refuses to start");
    assert!(refused.to_string().contains("PMS_AUTH_KEY_ENCRYPTION_KEY"), "{refused}");
}
