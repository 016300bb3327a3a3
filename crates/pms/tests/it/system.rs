use std::time::Duration;

use gateway::{RateConfig, routes};
use kit::{
    auth::{KeySource, Role, TokenSettings, VerifierConfig},
    clock::Clock,
    config::HttpConfig,
    service::{Peer, Peers},
    shutdown::Shutdown,
    tasks::Background,
    testing::TestDatabase,
};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

pub const ADMIN_EMAIL: &str = "admin@test.example";
pub const ADMIN_PASSWORD: &str = "admin-password-123";

/// Gateway, auth and patients on random ports with one fresh database, each started by its
/// crate's own `run` (auth by `build` + `router`, to keep its state at hand).
pub struct TestSystem {
    pub base: String,
    pub client: reqwest::Client,
    pub auth_pool: PgPool,
    pub auth: auth::AuthState,
    /// The settings auth was started with (tests restart it with variations).
    pub auth_config: auth::Config,
    /// Auth's clock: tests move it instead of sleeping.
    pub clock: Clock,
    shutdown: Shutdown,
    _db: TestDatabase,
}

impl Drop for TestSystem {
    /// The services stop with the test (before its database is dropped).
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

fn tokens() -> TokenSettings {
    TokenSettings { issuer: "pms-auth".into(), audience: "pms".into() }
}

/// Auth settings for tests, on database `db`.
pub fn auth_config(db: &TestDatabase) -> auth::Config {
    auth::Config {
        db: db.config(),
        http: HttpConfig::ephemeral(),
        tokens: tokens(),
        access_ttl: Duration::from_secs(900),
        refresh_ttl: Duration::from_secs(3600),
        limits: auth::lockout::Limits::default(),
        admin: Some(auth::AdminBootstrap { email: ADMIN_EMAIL.into(), password: ADMIN_PASSWORD.into() }),
        clock: Clock::default(),
    }
}

impl TestSystem {
    pub async fn start() -> Self {
        Self::start_with(|_, _| {}).await
    }

    /// Starts the system after `tune` adjusted the auth and gateway settings.
    pub async fn start_with(tune: impl FnOnce(&mut auth::Config, &mut gateway::Config)) -> Self {
        let db = TestDatabase::create().await;
        let auth_pool = auth::SCHEMA.connect_and_migrate(&db.config()).await.expect("migrate auth");
        patients::SCHEMA.connect_and_migrate(&db.config()).await.expect("migrate patients");
        let (gateway_listener, gateway_url) = kit::testing::listener().await;
        let (auth_listener, auth_url) = kit::testing::listener().await;
        let (patients_listener, patients_url) = kit::testing::listener().await;
        let peers = Peers::new(vec![
            Peer { service: &gateway::SERVICE, url: gateway_url.clone() },
            Peer { service: &auth::SERVICE, url: auth_url.clone() },
            Peer { service: &patients::SERVICE, url: patients_url },
        ]);
        // Services verify tokens with keys fetched from auth's JWKS over HTTP, as in production.
        let verifier = VerifierConfig {
            keys: KeySource::Url(format!("{auth_url}/.well-known/jwks.json")),
            tokens: tokens(),
        };
        let mut gateway = gateway::Config {
            http: HttpConfig::ephemeral(),
            routes: routes::defaults(&peers),
            upstream_timeout: Duration::from_secs(5),
            rate: RateConfig { per_second: 10_000, burst: 10_000 },
            body_limit: 1024 * 1024,
            verifier: verifier.clone(),
            peers: peers.clone(),
        };
        let mut auth_config = auth_config(&db);
        tune(&mut auth_config, &mut gateway);
        let patients = patients::Config { db: db.config(), http: HttpConfig::ephemeral(), verifier };
        let shutdown = Shutdown::default();
        let background = Background::new();
        let auth = auth::build(auth_config.clone(), &background).await.expect("auth starts");
        tokio::spawn(kit::http::run(auth_listener, auth::router(auth.clone()), background, shutdown.clone()));
        tokio::spawn(patients::run(patients, patients_listener, shutdown.clone()));
        tokio::spawn(gateway::run(gateway, gateway_listener, shutdown.clone()));
        let clock = auth_config.clock.clone();
        Self {
            base: gateway_url,
            client: reqwest::Client::new(),
            auth_pool,
            auth,
            auth_config,
            clock,
            shutdown,
            _db: db,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.client
            .post(self.url("/auth/login"))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .expect("request")
    }

    /// Logs in and returns the token pair, asserting 200.
    pub async fn tokens(&self, email: &str, password: &str) -> Value {
        let response = self.login(email, password).await;
        assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap_or_default());
        response.json().await.expect("json")
    }

    pub async fn admin_token(&self) -> String {
        self.tokens(ADMIN_EMAIL, ADMIN_PASSWORD).await["accessToken"].as_str().expect("token").to_owned()
    }

    /// Creates a user with `roles` through the admin API; returns (id, email, password).
    pub async fn create_user(&self, name: &str, roles: &[Role]) -> (String, String, String) {
        let email = format!("{name}@test.example");
        let password = format!("{name}-password-123");
        let body = json!({ "email": email, "displayName": name, "password": password, "roles": roles });
        let response = self
            .client
            .post(self.url("/api/users"))
            .bearer_auth(self.admin_token().await)
            .json(&body)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::CREATED, "{}", response.text().await.unwrap_or_default());
        let user: Value = response.json().await.expect("json");
        (user["id"].as_str().expect("id").to_owned(), email, password)
    }

    /// A logged-in user with `roles`: its access token.
    pub async fn token_for(&self, name: &str, roles: &[Role]) -> String {
        let (_, email, password) = self.create_user(name, roles).await;
        self.tokens(&email, &password).await["accessToken"].as_str().expect("token").to_owned()
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.client.get(self.url(path)).bearer_auth(token).send().await.expect("request")
    }
}

/// Asserts a problem+json answer with `status` and returns it.
pub async fn expect_problem(response: Response, status: StatusCode) -> Value {
    let body = response.text().await.unwrap_or_default();
    let problem: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    assert_eq!(problem["status"], status.as_u16(), "{body}");
    problem
}
