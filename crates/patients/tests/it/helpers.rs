use std::time::Duration;

use kit::{
    auth::Role,
    config::HttpConfig,
    kafka::KafkaConfig,
    outbox::RelayConfig,
    shutdown::Shutdown,
    tasks::Background,
    testing::{TestDatabase, TestTokens},
};
use patients::events::PatientEvents;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio::task::JoinHandle;

/// The topic of the test apps' events.
pub const TOPIC: &str = "patients.v1";

pub use kit::testing::{error_fields, expect_problem};

/// The patients service on 127.0.0.1:<random> with a database of its own, started the way
/// `patients::run` starts it.
pub struct TestApp {
    pub base: String,
    /// The `PatientDirectory`, `http://127.0.0.1:<port>`.
    pub grpc_url: String,
    pub client: reqwest::Client,
    /// The service's own pool.
    pub pool: PgPool,
    pub tokens: TestTokens,
    pub shutdown: Shutdown,
    pub server: JoinHandle<std::io::Result<()>>,
    /// Dropped with the app.
    pub _db: TestDatabase,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Shutdown::default()).await
    }

    /// As [`spawn`](Self::spawn), stopping as `shutdown` says when it is triggered.
    pub async fn spawn_with(shutdown: Shutdown) -> Self {
        // No broker listens there: events wait in the outbox (tests of events start one).
        Self::spawn_full(shutdown, KafkaConfig::plaintext("127.0.0.1:9")).await
    }

    /// As [`spawn`](Self::spawn), publishing its events to `kafka`.
    pub async fn spawn_with_broker(kafka: KafkaConfig) -> Self {
        Self::spawn_full(Shutdown::default(), kafka).await
    }

    pub async fn spawn_full(shutdown: Shutdown, kafka: KafkaConfig) -> Self {
        let db = TestDatabase::create().await;
        patients::SCHEMA.connect_and_migrate(&db.config()).await.expect("migrate");
        let tokens = TestTokens::new();
        let (grpc, grpc_url) = kit::testing::listener().await;
        let config = patients::Config {
            db: db.config(),
            http: HttpConfig::ephemeral(),
            grpc_bind: grpc.local_addr().expect("address"),
            verifier: tokens.verifier.clone(),
            trusted_proxies: kit::net::TrustedProxies::default(),
            events: PatientEvents::on(TOPIC),
            kafka,
            relay: RelayConfig { poll: Duration::from_millis(50), ..RelayConfig::default() },
            // Billing accounts are the end-to-end suite's (crates/pms/tests/it/flow.rs).
            billing: None,
        };
        let background = Background::new();
        let state = patients::build(&config, &background).await.expect("build");
        let pool = state.pool.clone();
        let stop = shutdown.clone();
        tokio::spawn(kit::grpc::serve(
            patients::directory(&state),
            grpc,
            async move { stop.triggered().await },
        ));
        let (listener, base) = kit::testing::listener().await;
        let server = tokio::spawn(kit::http::run(
            listener,
            patients::router(state),
            HttpConfig::ephemeral(),
            background,
            shutdown.clone(),
        ));
        let client = tokens.client_as("admin-1", &[Role::Admin]);
        Self { base, grpc_url, client, pool, tokens, shutdown, server, _db: db }
    }

    /// How to connect to the app's database as its owner (the role migrations run as).
    pub fn db_options(&self) -> &sqlx::postgres::PgConnectOptions {
        &self._db.options
    }

    /// A client whose requests carry a token for `user` with `roles` (or none at all).
    pub fn client_as(&self, user: &str, roles: &[Role]) -> reqwest::Client {
        self.tokens.client_as(user, roles)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.client.post(self.url(path)).json(body).send().await.expect("request")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("request")
    }

    pub async fn put(&self, path: &str, if_match: Option<&str>, body: &Value) -> Response {
        let mut request = self.client.put(self.url(path)).json(body);
        if let Some(tag) = if_match {
            request = request.header("if-match", tag);
        }
        request.send().await.expect("request")
    }

    pub async fn delete(&self, path: &str, if_match: Option<&str>) -> Response {
        let mut request = self.client.delete(self.url(path));
        if let Some(tag) = if_match {
            request = request.header("if-match", tag);
        }
        request.send().await.expect("request")
    }

    /// Registers a patient and returns its JSON, asserting 201.
    pub async fn register(&self, body: &Value) -> Value {
        kit::testing::expect_json(self.post("/api/patients", body).await, StatusCode::CREATED).await
    }

    /// Registers `given family` born 1980-01-01 and returns its id.
    pub async fn register_named(&self, given: &str, family: &str) -> String {
        let patient = self.register(&patient(given, family)).await;
        patient["id"].as_str().expect("id").to_owned()
    }

    /// Searches with the given query string; asserts 200 and returns the page.
    pub async fn search(&self, query: &str) -> Value {
        kit::testing::expect_json(self.get(&format!("/api/patients?{query}")).await, StatusCode::OK).await
    }

    /// Family names of a search page, in order.
    pub async fn search_families(&self, query: &str) -> Vec<String> {
        let page = self.search(query).await;
        page["patients"]
            .as_array()
            .expect("items")
            .iter()
            .map(|p| {
                format!(
                    "{} {}",
                    p["givenName"].as_str().unwrap_or(""),
                    p["familyName"].as_str().unwrap_or("")
                )
            })
            .collect()
    }
}

/// The ids of a search page's patients, in order.
pub fn page_ids(page: &Value) -> Vec<String> {
    page["patients"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["id"].as_str().expect("id").to_owned())
        .collect()
}

/// A minimal valid registration body.
pub fn patient(given: &str, family: &str) -> Value {
    json!({ "givenName": given, "familyName": family, "birthDate": "1980-01-01", "sex": "unknown" })
}
