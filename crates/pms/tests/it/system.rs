use std::time::Duration;

use gateway::{GatewayConfig, RateConfig, routes};
use kit::{
    auth::{Role, TokenSettings},
    config::HttpConfig,
    db::DbConfig,
};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::{net::TcpListener, sync::watch};

pub const ADMIN_EMAIL: &str = "admin@test.example";
pub const ADMIN_PASSWORD: &str = "admin-password-123";

pub struct TestSystem {
    pub base: String,
    pub client: reqwest::Client,
    pub auth_pool: PgPool,
    pub system: pms::System,
    _stop: watch::Sender<bool>,
}

async fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.expect("bind")
}

pub fn auth_config() -> auth::AuthConfig {
    auth::AuthConfig {
        tokens: TokenSettings { issuer: "pms-auth".into(), audience: "pms".into() },
        access_ttl: Duration::from_secs(900),
        refresh_ttl: Duration::from_secs(3600),
        limits: auth::lockout::Limits::default(),
        admin: Some(auth::AdminBootstrap { email: ADMIN_EMAIL.into(), password: ADMIN_PASSWORD.into() }),
    }
}

impl TestSystem {
    pub async fn start() -> Self {
        Self::start_with(|_, _| {}).await
    }

    /// Starts the system after `tune` adjusted the auth and gateway settings.
    pub async fn start_with(tune: impl FnOnce(&mut auth::AuthConfig, &mut GatewayConfig)) -> Self {
        let db = kit::testing::fresh_database().await;
        let db_config = DbConfig::with_url("unused: options given");
        let auth_pool = auth::connect_with(db.clone(), &db_config).await.expect("connect");
        auth::migrate(&auth_pool).await.expect("migrate auth");
        let patients_pool = patients::connect_with(db.clone(), &db_config).await.expect("connect");
        patients::migrate(&patients_pool).await.expect("migrate patients");
        let listeners =
            pms::Listeners { gateway: listener().await, auth: listener().await, patients: listener().await };
        let mut gateway = GatewayConfig {
            routes: routes::defaults(
                &pms::Listeners::url(&listeners.auth),
                &pms::Listeners::url(&listeners.patients),
            ),
            upstream_timeout: Duration::from_secs(5),
            rate: RateConfig { per_second: 10_000, burst: 10_000 },
            body_limit: 1024 * 1024,
        };
        let mut auth = auth_config();
        tune(&mut auth, &mut gateway);
        let config = pms::SystemConfig {
            auth_pool: auth_pool.clone(),
            patients_pool: patients_pool.clone(),
            auth,
            gateway,
            http: HttpConfig::ephemeral(),
        };
        let (stop, stopped) = watch::channel(false);
        let system = pms::start(config, listeners, stopped).await.expect("start");
        Self {
            base: system.gateway_url.clone(),
            client: reqwest::Client::new(),
            auth_pool,
            system,
            _stop: stop,
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
