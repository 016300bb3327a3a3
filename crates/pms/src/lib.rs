//! What the `pms` binary runs: the services, composed for a laptop (`pms up`: gateway, auth
//! and patients in one process, each on its own port) or alone (one service per container),
//! and the OpenAPI document of the whole public API.

use anyhow::Context;
use gateway::GatewayConfig;
use kit::{auth::Verifier, config::HttpConfig};
use sqlx::PgPool;
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};
use utoipa::{
    OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme},
};

/// The OpenAPI document of the whole public API, as the gateway serves it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = patients::openapi::PatientsApi::openapi();
    doc.merge(auth::openapi::AuthApi::openapi());
    doc.info = utoipa::openapi::InfoBuilder::new()
        .title("pms")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Patient management system. Log in at `POST /auth/login`, then send the access token as \
             `Authorization: Bearer <token>` (the Authorize button). Errors are RFC 9457 problem documents \
             (`application/problem+json`) with per-field `errors`; 401 means no valid token, 403 a role \
             that may not do the call.",
        ))
        .build();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
    );
    doc.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
    doc
}

/// The JWKS URL of the auth service at `auth_url`.
pub fn jwks_url(auth_url: &str) -> String {
    format!("{}/.well-known/jwks.json", auth_url.trim_end_matches('/'))
}

/// Listeners for the three services, bound by the caller (configured ports, or port 0).
pub struct Listeners {
    pub gateway: TcpListener,
    pub auth: TcpListener,
    pub patients: TcpListener,
}

impl Listeners {
    pub fn url(listener: &TcpListener) -> String {
        listener.local_addr().map(|a| format!("http://{a}")).unwrap_or_default()
    }
}

/// What `start` needs besides the listeners.
pub struct SystemConfig {
    pub auth_pool: PgPool,
    pub patients_pool: PgPool,
    pub auth: auth::AuthConfig,
    /// The gateway's routes must point at the listeners' addresses.
    pub gateway: GatewayConfig,
    pub http: HttpConfig,
}

/// The services running in this process.
pub struct System {
    pub gateway_url: String,
    pub auth_url: String,
    pub patients_url: String,
    pub auth: auth::AuthState,
    pub servers: Vec<JoinHandle<std::io::Result<()>>>,
}

async fn until(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// Starts auth, patients and the gateway on their listeners; they stop when `stop` turns true.
/// Services verify tokens with keys fetched from auth's JWKS over HTTP, as in production.
pub async fn start(
    config: SystemConfig,
    listeners: Listeners,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<System> {
    let (gateway_url, auth_url, patients_url) = (
        Listeners::url(&listeners.gateway),
        Listeners::url(&listeners.auth),
        Listeners::url(&listeners.patients),
    );
    let tokens = config.auth.tokens.clone();
    let auth_state =
        auth::start(config.auth_pool, config.auth).await.context("the auth service cannot start")?;
    auth::spawn_upkeep(&auth_state);
    let verifier = || Verifier::from_url(jwks_url(&auth_url), tokens.clone());
    let auth_app = auth::app(auth_state.clone(), &config.http);
    let patients_app = patients::app(config.patients_pool, verifier(), &config.http);
    let upstreams = [("auth", auth_url.clone()), ("patients", patients_url.clone())];
    let gateway_app = gateway::app(&config.gateway, verifier(), &upstreams, openapi(), &config.http);
    let servers = vec![
        tokio::spawn(kit::http::serve(listeners.auth, auth_app, until(stop.clone()))),
        tokio::spawn(kit::http::serve(listeners.patients, patients_app, until(stop.clone()))),
        tokio::spawn(kit::http::serve(listeners.gateway, gateway_app, until(stop))),
    ];
    Ok(System { gateway_url, auth_url, patients_url, auth: auth_state, servers })
}
