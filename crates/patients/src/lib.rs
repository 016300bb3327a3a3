//! The patients service: patient records over REST, with search, history and an audit trail.
//!
//! Its face is the one every pms service has: [`Config::from_env`], [`SCHEMA`], [`build`],
//! [`router`], [`run`], and [`SERVICE`] for the binary's list of services. Inside, a request
//! goes `http` (parse, answer) → [`access`] (policy, audit) → [`records`] / [`search`] (SQL).

pub mod access;
pub mod archive;
pub mod audit;
pub mod billing;
pub mod directory;
pub mod domain;
pub mod error;
pub mod events;
pub mod http;
pub mod mrn;
pub mod names;
pub mod openapi;
pub mod policy;
pub mod records;
pub mod registration;
pub mod sample;
pub mod search;
pub mod seed;

use axum::Router;
use kit::{
    auth::VerifierConfig,
    config::{ConfigError, HttpConfig},
    db::{DbConfig, Plans, Purpose, Schema},
    health::{self, Readiness},
    kafka::KafkaConfig,
    net::TrustedProxies,
    outbox::{KafkaPublisher, Relay, RelayConfig},
    service::{BoxError, GrpcListener, Launch, Peers, Running, Service},
    service_token::ServiceTokens,
    shutdown::Shutdown,
    tasks::Background,
};
use sqlx::{PgPool, migrate::Migrator};
use tokio::net::TcpListener;

use proto::patients::v1::patient_directory_server::PatientDirectoryServer;

use crate::{
    access::PatientAccess,
    audit::{AuditLog, AuditedReads},
    billing::BillingPublisher,
    directory::Directory,
    events::PatientEvents,
    http::PatientsState,
    records::PatientRepository,
    registration::Registrar,
};

/// The service's migrations, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The PostgreSQL schema this service owns.
pub const SCHEMA: Schema = Schema { name: "patients", migrator: &MIGRATOR, plans: Plans::Chosen };

/// The pool searches run on. Their statements are short (an ordered index range, or a few
/// hundred GIN matches sorted) and their good plans do not depend on the words searched for,
/// but PostgreSQL's own choice planned most of them afresh on every call, as long as running
/// them (docs/benchmarks.md, 2026-12-05, sixth session): these connections keep one generic
/// plan per statement. At most 8 (half the default pool; PostgreSQL has two cores here), so
/// searches cannot take every connection from registrations, reads and their audit rows.
pub const SEARCHES: Purpose = Purpose { name: "search", plans: Plans::Generic, max_connections: 8 };

/// The patients service in the binary's list of services.
pub const SERVICE: Service = Service {
    name: "patients",
    bind_var: "PMS_PATIENTS_BIND",
    default_port: 8081,
    grpc: Some(GRPC),
    schema: Some(&SCHEMA),
    routes: policy::ROUTES,
    openapi: http::document,
    launch,
};

/// The service's settings (docs/configuration.md).
#[derive(Debug, Clone)]
pub struct Config {
    /// `PMS_PATIENTS_DATABASE_URL`, else `PMS_DATABASE_URL`.
    pub db: DbConfig,
    /// `PMS_PATIENTS_BIND` and the shared `PMS_HTTP_*` limits.
    pub http: HttpConfig,
    /// `PMS_PATIENTS_GRPC_BIND` (default 127.0.0.1:50051): the `PatientDirectory`.
    pub grpc_bind: std::net::SocketAddr,
    /// Token keys from the auth service (`PMS_AUTH_URL`, `PMS_JWKS_URL`).
    pub verifier: VerifierConfig,
    /// Whose `X-Forwarded-For` names the client in audit rows (the gateway).
    pub trusted_proxies: TrustedProxies,
    /// The topic patient events go to (`PMS_PATIENTS_TOPIC`).
    pub events: PatientEvents,
    /// The broker (`PMS_KAFKA_*`).
    pub kafka: KafkaConfig,
    /// How the outbox relays pace themselves (`PMS_OUTBOX_*`).
    pub relay: RelayConfig,
    /// Where registrations open billing accounts (`PMS_BILLING_GRPC_URL`; `off`: nowhere).
    pub billing: Option<BillingSink>,
}

/// Where and how the `billing` sink opens accounts.
#[derive(Debug, Clone)]
pub struct BillingSink {
    /// The billing service's gRPC address, `http://host:port`.
    pub url: String,
    /// Each call's deadline (`PMS_BILLING_DEADLINE_MS`).
    pub deadline: std::time::Duration,
    /// Where service tokens come from: the auth service.
    pub auth_url: String,
    /// The installation's service secret (`PMS_SERVICE_SECRET`).
    pub service_secret: Option<String>,
}

impl BillingSink {
    fn from_env(peers: &Peers) -> Result<Option<Self>, ConfigError> {
        let url = kit::config::var("PMS_BILLING_GRPC_URL")
            .unwrap_or_else(|| format!("http://127.0.0.1:{}", DEFAULT_BILLING_GRPC_PORT));
        if url == "off" {
            return Ok(None);
        }
        Ok(Some(Self {
            url,
            deadline: kit::config::millis_or("PMS_BILLING_DEADLINE_MS", std::time::Duration::from_secs(5))?,
            auth_url: peers.auth_url(),
            service_secret: kit::config::var("PMS_SERVICE_SECRET"),
        }))
    }
}

/// Its gRPC listener (`PatientDirectory`): `PMS_PATIENTS_GRPC_BIND`, default 127.0.0.1:50051.
pub const GRPC: GrpcListener = GrpcListener { bind_var: "PMS_PATIENTS_GRPC_BIND", default_port: 50051 };

/// Where the billing service listens for gRPC on a laptop (billing's own default).
const DEFAULT_BILLING_GRPC_PORT: u16 = 50053;

impl Config {
    pub fn from_env(peers: &Peers) -> Result<Self, ConfigError> {
        Ok(Self {
            db: DbConfig::from_env(SERVICE.name)?,
            http: HttpConfig::from_env(SERVICE.bind_var, SERVICE.bind_address()?)?,
            grpc_bind: GRPC.bind_address()?,
            verifier: VerifierConfig::from_env(&peers.auth_url())?,
            trusted_proxies: TrustedProxies::from_env()?,
            events: PatientEvents::from_env()?,
            kafka: KafkaConfig::from_env()?,
            relay: RelayConfig::from_env()?,
            billing: BillingSink::from_env(peers)?,
        })
    }
}

/// The running service's state: its pool and what its handlers share.
#[derive(Clone)]
pub struct State {
    pub pool: PgPool,
    pub api: PatientsState,
    pub http: HttpConfig,
}

/// Connects to the database and starts on `background` the audit writer, the audited reads,
/// the registrar and the outbox relays (to the broker, and to billing).
pub async fn build(config: &Config, background: &Background) -> Result<State, BoxError> {
    let pool = SCHEMA.connect(&config.db).await?;
    audit::keep_partitions(pool.clone(), background).await;
    let audit = AuditLog::start(pool.clone(), background);
    let kafka = KafkaPublisher::new(&config.kafka)?;
    let mut relays = vec![Relay::start(pool.clone(), events::KAFKA, kafka, config.relay.clone(), background)];
    if let Some(sink) = &config.billing {
        let tokens = ServiceTokens::new(&sink.auth_url, SERVICE.name, sink.service_secret.clone());
        let billing = BillingPublisher::new(&sink.url, tokens, sink.deadline)?;
        relays.push(Relay::start(pool.clone(), events::BILLING, billing, config.relay.clone(), background));
    }
    let registrar = Registrar::start(pool.clone(), config.events.clone(), relays.clone(), background);
    let search_pool = SCHEMA.connect_for(&config.db, SEARCHES).await?;
    let records = PatientRepository::new(pool.clone(), search_pool, config.events.clone(), relays);
    let reads = AuditedReads::start(pool.clone(), background);
    let access = PatientAccess::new(records, registrar, audit, reads);
    Ok(State {
        pool,
        api: PatientsState {
            access,
            verifier: config.verifier.start(background),
            trusted_proxies: config.trusted_proxies.clone(),
        },
        http: config.http.clone(),
    })
}

/// The whole service as a router: API, health, metrics and the shared layers.
pub fn router(state: State) -> Router {
    let readiness = Readiness::default().with(health::Database(state.pool.clone()));
    kit::http::app(SERVICE.name, http::routes(state.api), readiness, &state.http)
}

/// The `PatientDirectory` gRPC service of `state`.
pub fn directory(state: &State) -> PatientDirectoryServer<Directory> {
    PatientDirectoryServer::new(Directory {
        access: state.api.access.clone(),
        verifier: state.api.verifier.clone(),
    })
}

/// Runs the service, REST on `listener` and gRPC on `grpc_listener`, until `shutdown`, then
/// lets its audit writer and relays finish.
pub async fn run(
    config: Config,
    listener: TcpListener,
    grpc_listener: TcpListener,
    shutdown: Shutdown,
) -> Result<(), BoxError> {
    let background = Background::new();
    let state = build(&config, &background).await?;
    let directory = directory(&state);
    let rest = kit::http::run(listener, router(state), config.http.clone(), background, shutdown.clone());
    kit::grpc::run_beside(rest, directory, grpc_listener, shutdown).await
}

fn launch(launch: Launch) -> Running {
    Box::pin(async move {
        let mut config = Config::from_env(&launch.peers)?;
        if let Some(sink) = config.billing.as_mut() {
            sink.service_secret = sink.service_secret.take().or(launch.service_secret);
        }
        let grpc_listener = kit::http::bind(config.grpc_bind).await?;
        tracing::info!(address = %config.grpc_bind, "patients gRPC listening");
        run(config, launch.listener, grpc_listener, launch.shutdown).await
    })
}
