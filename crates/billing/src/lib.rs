//! The billing service: one billing account per patient. Other services open and read
//! accounts over gRPC (`pms.billing.v1.BillingService`, proto/pms/billing/v1/billing.proto);
//! billing staff read them over REST through the gateway. The patients service opens each
//! new patient's account from its outbox, so a registration never waits for billing and an
//! account is opened exactly once even if billing was down (docs/events.md).
//!
//! Its face is the one every pms service has: [`Config::from_env`], [`SCHEMA`], [`build`],
//! [`router`], [`run`], and [`SERVICE`]; it also listens for gRPC on a port of its own
//! (`PMS_BILLING_GRPC_BIND`).

pub mod accounts;
pub mod error;
pub mod grpc;
pub mod http;
pub mod policy;

use std::net::SocketAddr;

use axum::Router;
use kit::{
    auth::VerifierConfig,
    config::{ConfigError, HttpConfig},
    db::{DbConfig, Plans, Schema},
    health::{self, Readiness},
    net::TrustedProxies,
    service::{BoxError, GrpcListener, Launch, Peers, Running, Service},
    shutdown::Shutdown,
    tasks::Background,
};
use sqlx::{PgPool, migrate::Migrator};
use tokio::net::TcpListener;

use proto::billing::v1::billing_service_server::BillingServiceServer;

use crate::{accounts::AccountRepository, grpc::BillingGrpc, http::BillingState};

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

pub const SCHEMA: Schema = Schema { name: "billing", migrator: &MIGRATOR, plans: Plans::Chosen };

pub const SERVICE: Service = Service {
    name: "billing",
    bind_var: "PMS_BILLING_BIND",
    default_port: 8083,
    grpc: Some(GRPC),
    schema: Some(&SCHEMA),
    routes: policy::ROUTES,
    openapi: http::document,
    launch,
};

/// Its gRPC listener (`BillingService`): `PMS_BILLING_GRPC_BIND`, default 127.0.0.1:50053.
pub const GRPC: GrpcListener = GrpcListener { bind_var: "PMS_BILLING_GRPC_BIND", default_port: 50053 };

#[derive(Debug, Clone)]
pub struct Config {
    /// `PMS_BILLING_DATABASE_URL`, else `PMS_DATABASE_URL`.
    pub db: DbConfig,
    /// `PMS_BILLING_BIND` and the shared `PMS_HTTP_*` limits.
    pub http: HttpConfig,
    /// `PMS_BILLING_GRPC_BIND`, default 127.0.0.1:50053.
    pub grpc_bind: SocketAddr,
    pub verifier: VerifierConfig,
    pub trusted_proxies: TrustedProxies,
}

impl Config {
    pub fn from_env(peers: &Peers) -> Result<Self, ConfigError> {
        Ok(Self {
            db: DbConfig::from_env(SERVICE.name)?,
            http: HttpConfig::from_env(SERVICE.bind_var, SERVICE.bind_address()?)?,
            grpc_bind: GRPC.bind_address()?,
            verifier: VerifierConfig::from_env(&peers.auth_url())?,
            trusted_proxies: TrustedProxies::from_env()?,
        })
    }
}

#[derive(Clone)]
pub struct State {
    pub pool: PgPool,
    pub api: BillingState,
    pub http: HttpConfig,
}

pub async fn build(config: &Config, background: &Background) -> Result<State, BoxError> {
    let pool = SCHEMA.connect(&config.db).await?;
    let api = BillingState {
        accounts: AccountRepository::new(pool.clone()),
        verifier: config.verifier.start(background),
        trusted_proxies: config.trusted_proxies.clone(),
    };
    Ok(State { pool, api, http: config.http.clone() })
}

pub fn router(state: State) -> Router {
    let readiness = Readiness::default().with(health::Database(state.pool.clone()));
    kit::http::app(SERVICE.name, http::routes(state.api), readiness, &state.http)
}

/// Runs the service: REST on `listener`, gRPC on `grpc_listener`, until `shutdown`.
pub async fn run(
    config: Config,
    listener: TcpListener,
    grpc_listener: TcpListener,
    shutdown: Shutdown,
) -> Result<(), BoxError> {
    let background = Background::new();
    let state = build(&config, &background).await?;
    let service = BillingGrpc { accounts: state.api.accounts.clone(), verifier: state.api.verifier.clone() };
    let rest = kit::http::run(listener, router(state), config.http.clone(), background, shutdown.clone());
    kit::grpc::run_beside(rest, BillingServiceServer::new(service), grpc_listener, shutdown).await
}

fn launch(launch: Launch) -> Running {
    Box::pin(async move {
        let config = Config::from_env(&launch.peers)?;
        let grpc_listener = kit::http::bind(config.grpc_bind).await?;
        tracing::info!(address = %config.grpc_bind, "billing gRPC listening");
        run(config, launch.listener, grpc_listener, launch.shutdown).await
    })
}
