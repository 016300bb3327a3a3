//! The analytics service: aggregates kept from the patients' event stream (a consumer group
//! on `patients.v1`), served to analysts as counts that identify nobody.
//!
//! Each event is applied exactly once in effect: its id is recorded in the same transaction
//! as its change to the aggregates, so redelivery (a replay, a restart before offsets were
//! committed) changes nothing; a record that cannot be decoded is parked in the dead-letter
//! topic and the consumer goes on (kit::consumer). Its face is the one every pms service has.

pub mod aggregates;
pub mod http;
pub mod policy;

use axum::Router;
use kit::{
    auth::VerifierConfig,
    config::{self, ConfigError, HttpConfig},
    consumer::{self, ConsumerConfig},
    db::{DbConfig, Plans, Schema},
    health::{self, Readiness},
    kafka::KafkaConfig,
    net::TrustedProxies,
    service::{BoxError, Launch, Peers, Running, Service},
    shutdown::Shutdown,
    tasks::Background,
};
use sqlx::{PgPool, migrate::Migrator};
use tokio::net::TcpListener;

use crate::{aggregates::Aggregates, http::AnalyticsState};

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

pub const SCHEMA: Schema = Schema { name: "analytics", migrator: &MIGRATOR, plans: Plans::Chosen };

pub const SERVICE: Service = Service {
    name: "analytics",
    bind_var: "PMS_ANALYTICS_BIND",
    default_port: 8084,
    grpc: None,
    schema: Some(&SCHEMA),
    routes: policy::ROUTES,
    openapi: http::document,
    launch,
};

#[derive(Debug, Clone)]
pub struct Config {
    pub db: DbConfig,
    pub http: HttpConfig,
    pub verifier: VerifierConfig,
    pub trusted_proxies: TrustedProxies,
    pub kafka: KafkaConfig,
    /// `PMS_ANALYTICS_GROUP` (default `pms-analytics`), topic `PMS_PATIENTS_TOPIC`
    /// (`patients.v1`), dead letters to `PMS_ANALYTICS_DEAD_LETTER_TOPIC`
    /// (`patients.v1.analytics.dlq`).
    pub consumer: ConsumerConfig,
}

impl Config {
    pub fn from_env(peers: &Peers) -> Result<Self, ConfigError> {
        let topic = config::var("PMS_PATIENTS_TOPIC").unwrap_or_else(|| "patients.v1".to_owned());
        Ok(Self {
            db: DbConfig::from_env(SERVICE.name)?,
            http: HttpConfig::from_env(SERVICE.bind_var, SERVICE.bind_address()?)?,
            verifier: VerifierConfig::from_env(&peers.auth_url())?,
            trusted_proxies: TrustedProxies::from_env()?,
            kafka: KafkaConfig::from_env()?,
            consumer: ConsumerConfig {
                group: config::var("PMS_ANALYTICS_GROUP").unwrap_or_else(|| "pms-analytics".to_owned()),
                dead_letter_topic: config::var("PMS_ANALYTICS_DEAD_LETTER_TOPIC")
                    .unwrap_or_else(|| format!("{topic}.analytics.dlq")),
                topics: vec![topic],
                max_batch: 500,
            },
        })
    }
}

#[derive(Clone)]
pub struct State {
    pub pool: PgPool,
    pub api: AnalyticsState,
    pub http: HttpConfig,
}

/// Connects to the database and starts the consumer on `background`.
pub async fn build(config: &Config, background: &Background) -> Result<State, BoxError> {
    let pool = SCHEMA.connect(&config.db).await?;
    consumer::start(&config.kafka, config.consumer.clone(), Aggregates::new(pool.clone()), background)?;
    let api = AnalyticsState {
        pool: pool.clone(),
        verifier: config.verifier.start(background),
        trusted_proxies: config.trusted_proxies.clone(),
    };
    Ok(State { pool, api, http: config.http.clone() })
}

pub fn router(state: State) -> Router {
    let readiness = Readiness::default().with(health::Database(state.pool.clone()));
    kit::http::app(SERVICE.name, http::routes(state.api), readiness, &state.http)
}

/// Runs the service until `shutdown`; the consumer finishes its batch and commits first.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> Result<(), BoxError> {
    let background = Background::new();
    let state = build(&config, &background).await?;
    kit::http::run(listener, router(state), config.http.clone(), background, shutdown).await?;
    Ok(())
}

fn launch(launch: Launch) -> Running {
    Box::pin(async move { run(Config::from_env(&launch.peers)?, launch.listener, launch.shutdown).await })
}
