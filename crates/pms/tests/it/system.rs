use std::time::Duration;

use gateway::{RateConfig, routes};
use kit::{
    auth::{KeySource, TokenSettings, VerifierConfig},
    config::HttpConfig,
    outbox::RelayConfig,
    service::{Peer, Peers},
    shutdown::Shutdown,
    tasks::Background,
    testing::{ApiClient, TestBroker, TestDatabase},
};
use sqlx::PgPool;

pub use kit::testing::expect_problem;

pub const ADMIN_EMAIL: &str = "admin@test.example";
pub const ADMIN_PASSWORD: &str = "admin-password-123";
/// How often the gateway and the services refresh token keys and revocations here.
pub const REFRESH: Duration = Duration::from_millis(200);

/// Gateway, auth and patients on random ports with one fresh database and a broker, each started by its
/// crate's own `run` (auth by `build` + `router`, to keep its state at hand), reached through
/// the gateway as clients reach them.
pub struct TestSystem {
    /// The gateway, as clients see it.
    pub api: ApiClient,
    pub auth_pool: PgPool,
    pub auth: auth::AuthState,
    /// The Kafka-protocol broker the services publish to.
    pub broker: TestBroker,
    shutdown: Shutdown,
    _db: TestDatabase,
}

impl TestSystem {
    pub async fn start() -> Self {
        let db = TestDatabase::create().await;
        let broker = TestBroker::start().await;
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
        let tokens = TokenSettings { issuer: "pms-auth".into(), audience: "pms".into() };
        // Services verify tokens with keys fetched from auth's JWKS over HTTP, as in production.
        let verifier = VerifierConfig {
            keys: KeySource::Url(format!("{auth_url}/.well-known/jwks.json")),
            tokens,
            revocations: Some(format!("{auth_url}/auth/revocations")),
            refresh: REFRESH,
        };
        let gateway = gateway::Config {
            http: HttpConfig::ephemeral(),
            routes: routes::defaults(&peers),
            upstream_timeout: Duration::from_secs(5),
            rate: RateConfig { per_second: 10_000, burst: 10_000 },
            address_rate: RateConfig { per_second: 10_000, burst: 10_000 },
            body_limit: 1024 * 1024,
            verifier: verifier.clone(),
            peers,
            trusted_proxies: kit::net::TrustedProxies::default(),
            admin_bind: None,
        };
        let mut auth_config = auth::Config::new(db.config(), HttpConfig::ephemeral());
        auth_config.admin =
            Some(auth::AdminBootstrap { email: ADMIN_EMAIL.into(), password: ADMIN_PASSWORD.into() });
        let patients = patients::Config {
            db: db.config(),
            http: HttpConfig::ephemeral(),
            verifier,
            trusted_proxies: kit::net::TrustedProxies::parse("127.0.0.0/8").expect("loopback"),
            events: patients::events::PatientEvents::on("patients.v1"),
            kafka: broker.config(),
            relay: RelayConfig { poll: Duration::from_millis(50), ..RelayConfig::default() },
        };
        let shutdown = Shutdown::default();
        let background = Background::new();
        let auth = auth::build(auth_config, &background).await.expect("auth starts");
        tokio::spawn(kit::http::run(
            auth_listener,
            auth::router(auth.clone()),
            HttpConfig::ephemeral(),
            background,
            shutdown.clone(),
        ));
        tokio::spawn(patients::run(patients, patients_listener, shutdown.clone()));
        tokio::spawn(gateway::run(gateway, gateway_listener, shutdown.clone()));
        let api = ApiClient::new(gateway_url, ADMIN_EMAIL, ADMIN_PASSWORD);
        Self { api, auth_pool, auth, broker, shutdown, _db: db }
    }
}

impl std::ops::Deref for TestSystem {
    type Target = ApiClient;

    fn deref(&self) -> &ApiClient {
        &self.api
    }
}

impl Drop for TestSystem {
    /// The services stop with the test (before its database is dropped).
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}
