//! Test support: a fresh PostgreSQL database per test.
//!
//! Integration tests run against a real server named by `PMS_TEST_DATABASE_URL` (the test
//! command starts a private throw-away cluster and sets it). Each test gets a database of its
//! own, so tests run in parallel without seeing each other's rows.

use sqlx::{Connection, Executor, PgConnection, postgres::PgConnectOptions};

/// Where tests find a server they may create databases on, when the variable is unset.
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Creates an empty database with a unique name and returns options that connect to it.
///
/// Panics with a hint when no server is reachable: a test cannot proceed without one.
pub async fn fresh_database() -> PgConnectOptions {
    let url = std::env::var("PMS_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned());
    let options: PgConnectOptions = url.parse().expect("PMS_TEST_DATABASE_URL is a postgres:// URL");
    let mut admin = PgConnection::connect_with(&options).await.unwrap_or_else(|e| {
        panic!("no PostgreSQL for tests ({e}); run ./scripts/test.sh or set PMS_TEST_DATABASE_URL")
    });
    let name = format!("pms_test_{}", uuid::Uuid::new_v4().simple());
    admin.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create test database");
    admin.close().await.ok();
    options.database(&name)
}

/// A signing key and a verifier that trusts it: tests mint tokens for any user and roles
/// without an auth service.
pub struct TestTokens {
    key: crate::auth::SigningKey,
    pub verifier: crate::auth::Verifier,
}

impl Default for TestTokens {
    fn default() -> Self {
        Self::new()
    }
}

impl TestTokens {
    pub fn new() -> Self {
        let (key, _) = crate::auth::SigningKey::generate("test-key").expect("generate a key");
        let jwks = serde_json::from_value(serde_json::json!({ "keys": [key.jwk()] })).expect("jwks");
        let settings = crate::auth::TokenSettings { issuer: "pms-auth".into(), audience: "pms".into() };
        Self { verifier: crate::auth::Verifier::from_jwks(&jwks, settings), key }
    }

    /// A valid access token for `user` with `roles`, expiring in 10 minutes.
    pub fn token(&self, user: &str, roles: &[crate::auth::Role]) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let claims = crate::auth::Claims {
            iss: "pms-auth".into(),
            aud: "pms".into(),
            sub: user.into(),
            roles: roles.to_vec(),
            iat: now,
            exp: now + 600,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        self.key.sign(&claims).expect("sign")
    }
}
