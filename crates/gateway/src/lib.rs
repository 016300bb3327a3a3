//! The gateway: the one public entry of pms.
//!
//! For every request it finds the route ([`routes`]), checks the bearer token locally against
//! the auth service's keys (401) and the route's roles (403), applies the caller's rate limit
//! (429), and forwards the request to the service with `x-request-id`, a continued W3C
//! `traceparent` and `x-forwarded-for`. A service that does not answer in time gives 504, one
//! that cannot be reached 503; the gateway never hangs. It also serves the OpenAPI document of
//! the whole public API and Swagger UI, and `/health/ready` reflects the services behind it.

pub mod limits;
pub mod openapi;
pub mod proxy;
pub mod routes;
pub mod web;

use std::{net::SocketAddr, path::Path, sync::Arc, time::Duration};

use axum::Router;
use kit::{
    auth::VerifierConfig,
    config::{self, ConfigError, HttpConfig},
    health::Readiness,
    net::TrustedProxies,
    service::{BoxError, Launch, Peers, Running, Service},
    shutdown::Shutdown,
    tasks::Background,
};
pub use limits::RateConfig;
use limits::RateLimits;
use proxy::{Gateway, Upstream};
use routes::Route;
use tokio::net::TcpListener;
use utoipa_swagger_ui::SwaggerUi;
use web::WebApp;

/// The gateway in the binary's list of services. It owns no schema and serves no routes of
/// its own through itself; its table is made of the other services' routes.
pub const SERVICE: Service = Service {
    name: "gateway",
    bind_var: "PMS_BIND",
    default_port: 8080,
    grpc: None,
    schema: None,
    routes: &[],
    openapi: utoipa::openapi::OpenApi::default,
    launch,
};

/// How long the gateway reuses a readiness answer.
const READINESS_REUSE: Duration = Duration::from_secs(1);

/// How often idle clients are forgotten by the rate limiter.
const RATE_CLEANUP_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct Config {
    /// `PMS_BIND` and the shared `PMS_HTTP_*` limits.
    pub http: HttpConfig,
    pub routes: Vec<Route>,
    /// A service that takes longer answers 504.
    pub upstream_timeout: Duration,
    /// Per user (valid token), else per address.
    pub rate: RateConfig,
    /// Per client address, for every request, before its token is checked (a clinic behind
    /// one address sends for all its staff: set it above `rate`).
    pub address_rate: RateConfig,
    /// Largest request body forwarded (413 beyond).
    pub body_limit: usize,
    pub verifier: VerifierConfig,
    /// The services behind the gateway (readiness, and the OpenAPI document).
    pub peers: Peers,
    /// Where `/metrics` (and liveness) are served for operators: never on the public address.
    pub admin_bind: Option<SocketAddr>,
    /// Proxies in front of the gateway whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
    /// The web app served at `/` (`PMS_WEB_ROOT`, its build directory), if any.
    pub web: Option<WebApp>,
    /// `PMS_GATEWAY_IN_PROCESS` (`on` by default): whether a service running in the gateway's
    /// own process (`pms up`) is called directly rather than over loopback HTTP.
    pub in_process: bool,
}

impl Config {
    /// The routes the services of `peers` declare, plus `PMS_GATEWAY_ROUTES`, and the
    /// `PMS_GATEWAY_*` limits.
    pub fn from_env(peers: &Peers) -> Result<Self, ConfigError> {
        let extra = match config::var("PMS_GATEWAY_ROUTES") {
            Some(spec) => routes::parse(&spec)
                .map_err(|reason| ConfigError::Invalid { name: "PMS_GATEWAY_ROUTES".into(), reason })?,
            None => Vec::new(),
        };
        let http = HttpConfig::from_env(SERVICE.bind_var, SERVICE.bind_address()?)?;
        let admin_bind = match config::var("PMS_GATEWAY_ADMIN_BIND").as_deref() {
            Some("off") => None,
            _ => Some(config::parse_or("PMS_GATEWAY_ADMIN_BIND", SocketAddr::from(([127, 0, 0, 1], 9080)))?),
        };
        Ok(Self {
            http,
            routes: routes::merge(routes::defaults(peers), extra),
            upstream_timeout: config::millis_or("PMS_GATEWAY_UPSTREAM_TIMEOUT_MS", Duration::from_secs(8))?,
            rate: RateConfig {
                per_second: config::parse_or("PMS_GATEWAY_RATE_PER_SECOND", 100)?,
                burst: config::parse_or("PMS_GATEWAY_RATE_BURST", 200)?,
            },
            address_rate: RateConfig {
                per_second: config::parse_or("PMS_GATEWAY_ADDRESS_RATE_PER_SECOND", 1000)?,
                burst: config::parse_or("PMS_GATEWAY_ADDRESS_RATE_BURST", 2000)?,
            },
            body_limit: config::parse_or("PMS_GATEWAY_BODY_LIMIT", 1024 * 1024)?,
            verifier: VerifierConfig::from_env(&peers.auth_url())?,
            peers: peers.clone(),
            admin_bind,
            trusted_proxies: TrustedProxies::from_env()?,
            in_process: config::on_off("PMS_GATEWAY_IN_PROCESS", true)?,
            web: match config::var("PMS_WEB_ROOT") {
                Some(root) => Some(WebApp::load(Path::new(&root)).map_err(|err| ConfigError::Invalid {
                    name: "PMS_WEB_ROOT".into(),
                    reason: format!(
                        "cannot read the web app's build in {root}: {err} (run `npm run build` in web/)"
                    ),
                })?),
                None => None,
            },
        })
    }
}

/// The gateway's state, with the rate limiter's cleanup running on `background`.
pub fn build(config: Config, background: &Background) -> State {
    let limits = RateLimits::new(config.rate);
    let address_limits = RateLimits::new(config.address_rate);
    let cleaning = (limits.clone(), address_limits.clone());
    background.every("rate limit cleanup", RATE_CLEANUP_INTERVAL, move || {
        cleaning.0.forget_idle();
        cleaning.1.forget_idle();
        std::future::ready(())
    });
    let gateway = Gateway {
        routes: Arc::new(config.routes.clone()),
        verifier: config.verifier.start(background),
        client: kit::client::new_client(),
        limits,
        address_limits,
        trusted_proxies: config.trusted_proxies.clone(),
        upstream_timeout: config.upstream_timeout,
        body_limit: config.body_limit,
        in_process: config.in_process,
    };
    State { gateway, config }
}

/// The running gateway: its proxy and its configuration.
#[derive(Clone)]
pub struct State {
    pub gateway: Gateway,
    pub config: Config,
}

/// The gateway as a router: docs and health of its own, the proxy for the rest. Its metrics
/// are served on the admin address ([`run`]), not here.
pub fn router(state: State) -> Router {
    let State { gateway, config } = state;
    // Readiness asks every service behind the gateway: answers are reused for a second so
    // that probes (or anyone: it is public) cannot make every call fan out.
    let readiness = config.peers.iter().filter(|peer| peer.service.name != SERVICE.name).fold(
        Readiness::default().cached(READINESS_REUSE),
        |r, peer| {
            r.with(Upstream {
                name: peer.service.name,
                url: format!("{}/health/ready", peer.url.trim_end_matches('/')),
            })
        },
    );
    let docs: Router<Gateway> =
        SwaggerUi::new("/docs").url("/openapi.json", openapi::document(&config.peers)).into();
    let docs = match config.web.clone() {
        Some(web) => docs.merge(web.router()),
        None => docs,
    };
    // The proxy is the fallback: the gateway's own routes (docs, web app, health) come first.
    let api = docs.fallback(proxy::proxy).with_state(gateway);
    let mut http = config.http.clone();
    http.metrics = false;
    // The edge: request ids are ours; a client's own is kept beside it.
    http.assign_request_ids = true;
    // The gateway's own deadline must outlast the upstream timeout, which answers 504 itself.
    http.request_timeout = http.request_timeout.max(config.upstream_timeout + Duration::from_secs(2));
    http.body_limit = config.body_limit;
    kit::http::layered(SERVICE.name, api, readiness, &http)
}

/// Runs the gateway on `listener` until `shutdown`, and its metrics on the admin address.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> Result<(), BoxError> {
    let admin = match config.admin_bind {
        Some(addr) => Some(kit::http::bind(addr).await?),
        None => None,
    };
    let background = Background::new();
    let http = config.http.clone();
    let state = build(config, &background);
    let (admin_http, admin_shutdown) = (http.clone(), shutdown.clone());
    let admin = async move {
        match admin {
            Some(listener) => {
                kit::http::serve(listener, kit::health::admin_router(), admin_http, admin_shutdown).await
            }
            None => Ok(()),
        }
    };
    let (public, admin) =
        tokio::join!(kit::http::run(listener, router(state), http, background, shutdown.clone()), admin);
    public?;
    admin?;
    Ok(())
}

fn launch(launch: Launch) -> Running {
    Box::pin(async move { run(Config::from_env(&launch.peers)?, launch.listener, launch.shutdown).await })
}
