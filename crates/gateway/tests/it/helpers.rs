use std::time::Duration;

use axum::{Json, Router, http::HeaderMap, routing::get};
use gateway::{RateConfig, routes};
use kit::{
    auth::{KeySource, RouteSpec, TokenSettings, VerifierConfig},
    config::HttpConfig,
    service::{Peer, Peers, Service},
    shutdown::Shutdown,
    testing::TestTokens,
};
use serde_json::{Value, json};

pub use kit::testing::expect_problem;

const fn stand_in(name: &'static str, routes: &'static [RouteSpec]) -> Service {
    Service {
        name,
        bind_var: "PMS_UNUSED_BIND",
        default_port: 0,
        grpc: None,
        schema: None,
        routes,
        openapi: utoipa::openapi::OpenApi::default,
        launch: |_| Box::pin(async { Ok(()) }),
    }
}

/// A service that echoes the headers it received at `/echo`, answers `/echo/slow` after
/// 30 s, and whose routes need no token; and one nobody listens for.
static ECHO: Service = stand_in("echo", &[RouteSpec::public("/echo"), RouteSpec::authenticated("/private")]);
static DOWN: Service = stand_in("down", &[RouteSpec::public("/down")]);

async fn echo_upstream(jwks: Value) -> String {
    async fn echo(headers: HeaderMap) -> Json<Value> {
        let map: serde_json::Map<String, Value> =
            headers.iter().map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or("")))).collect();
        Json(Value::Object(map))
    }
    let app = Router::new()
        .route("/echo", get(echo).post(echo))
        .route("/private", get(echo))
        .route("/health/ready", get(|| async { Json(json!({ "status": "ready" })) }))
        .route("/.well-known/jwks.json", get(move || async move { Json(jwks) }))
        .route(
            "/echo/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        );
    let (listener, url) = kit::testing::listener().await;
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// The gateway on 127.0.0.1:<random> in front of [`ECHO`] and [`DOWN`].
pub struct TestGateway {
    pub base: String,
    /// The admin address: metrics.
    pub admin: String,
    pub client: reqwest::Client,
    pub tokens: TestTokens,
    shutdown: Shutdown,
}

impl TestGateway {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts the gateway after `tune` adjusted its settings.
    pub async fn start_with(tune: impl FnOnce(&mut gateway::Config)) -> Self {
        let tokens = TestTokens::new();
        // The stand-in also publishes the test key, as auth publishes its keys.
        let echo = echo_upstream(serde_json::to_value(tokens.jwks()).expect("jwks")).await;
        let verifier = VerifierConfig {
            keys: KeySource::Url(format!("{echo}/.well-known/jwks.json")),
            tokens: TokenSettings { issuer: "pms-auth".into(), audience: "pms".into() },
            revocations: None,
            refresh: Duration::from_secs(60),
        };
        let peers = Peers::new(vec![
            Peer { service: &ECHO, url: echo },
            Peer { service: &DOWN, url: "http://127.0.0.1:9".into() },
        ]);
        // A free port for the admin address (the gateway binds it itself).
        let admin_addr =
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");
        let mut config = gateway::Config {
            http: HttpConfig::ephemeral(),
            routes: routes::defaults(&peers),
            upstream_timeout: Duration::from_millis(300),
            rate: RateConfig { per_second: 10_000, burst: 10_000 },
            address_rate: RateConfig { per_second: 10_000, burst: 10_000 },
            body_limit: 1024 * 1024,
            verifier,
            peers,
            trusted_proxies: kit::net::TrustedProxies::default(),
            admin_bind: Some(admin_addr),
            web: None,
        };
        tune(&mut config);
        let (listener, base) = kit::testing::listener().await;
        let shutdown = Shutdown::default();
        tokio::spawn(gateway::run(config, listener, shutdown.clone()));
        Self { base, admin: format!("http://{admin_addr}"), client: reqwest::Client::new(), tokens, shutdown }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The Prometheus text served on the admin address.
    pub async fn metrics(&self) -> String {
        let response = self.client.get(format!("{}/metrics", self.admin)).send().await.expect("request");
        response.text().await.expect("text")
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}
