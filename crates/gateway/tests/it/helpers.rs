use std::{net::SocketAddr, time::Duration};

use axum::{
    Json, Router,
    extract::ConnectInfo,
    http::{HeaderMap, Uri},
    routing::{get, post},
};
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
/// A service served by `kit::http::serve` in the test's process, as `pms up` serves each
/// service next to the gateway: what the gateway may call without a socket.
static HERE: Service = stand_in("here", &[RouteSpec::public("/here")]);

/// What [`here_upstream`] saw of a request to `/here/echo`.
async fn here_echo(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    body: String,
) -> Json<Value> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    Json(json!({
        "peerIp": peer.ip().to_string(),
        "peerPort": peer.port(),
        "target": uri.to_string(),
        "host": header("host"),
        "xForwardedFor": header("x-forwarded-for"),
        "traceparent": header("traceparent"),
        "body": body,
    }))
}

/// [`HERE`] on 127.0.0.1:<random>, until `shutdown`: its URL.
async fn here_upstream(shutdown: Shutdown) -> String {
    let api = Router::new().route("/here/echo", post(here_echo)).route(
        "/here/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "late"
        }),
    );
    let config = HttpConfig::ephemeral();
    let app = kit::http::app(HERE.name, api, kit::health::Readiness::default(), &config);
    let (listener, url) = kit::testing::listener().await;
    tokio::spawn(kit::http::serve(listener, app, config, shutdown));
    url
}

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
    /// Stops the [`HERE`] service (its listener closes at once).
    pub here_shutdown: Shutdown,
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
        let here_shutdown = Shutdown::new(Duration::ZERO, Duration::from_secs(1));
        let here = here_upstream(here_shutdown.clone()).await;
        let peers = Peers::new(vec![
            Peer { service: &ECHO, url: echo },
            Peer { service: &DOWN, url: "http://127.0.0.1:9".into() },
            Peer { service: &HERE, url: here },
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
            in_process: true,
        };
        tune(&mut config);
        let (listener, base) = kit::testing::listener().await;
        let shutdown = Shutdown::default();
        tokio::spawn(gateway::run(config, listener, shutdown.clone()));
        let admin = format!("http://{admin_addr}");
        Self { base, admin, client: reqwest::Client::new(), tokens, shutdown, here_shutdown }
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
        self.here_shutdown.trigger();
    }
}
