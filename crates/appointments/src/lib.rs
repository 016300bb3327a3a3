//! The appointments service: practitioners and their schedules, free times computed from
//! working hours, and bookings that can never double-book (PostgreSQL's exclusion constraints
//! refuse any overlap for a practitioner or a patient), with their lifecycle and history.
//!
//! Booking asks the patients service over gRPC (`PatientDirectory`) whether the patient may
//! be booked; every change leaves an event on `appointments.v1` through the outbox; a consumer
//! on `patients.v1` cancels the future appointments of deactivated patients
//! (docs/scheduling.md). Its face is the one every pms service has: [`Config::from_env`],
//! [`SCHEMA`], [`build`], [`router`], [`run`], and [`SERVICE`]. A request goes `http` (parse,
//! answer) → [`access`] (policy, audit, booking rules) → [`store`] / [`practitioners`] (SQL).

pub mod access;
pub mod booker;
pub mod deactivations;
pub mod domain;
pub mod error;
pub mod events;
pub mod http;
pub mod patient_check;
pub mod policy;
pub mod practitioners;
pub mod schedule;
pub mod store;

use std::time::Duration;

use axum::Router;
use kit::{
    auth::VerifierConfig,
    config::{self, ConfigError, HttpConfig},
    consumer::{self, ConsumerConfig},
    db::{DbConfig, Plans, Schema},
    health::{self, Readiness},
    kafka::KafkaConfig,
    net::TrustedProxies,
    outbox::{KafkaPublisher, Relay, RelayConfig},
    service::{BoxError, Launch, Peers, Running, Service},
    shutdown::Shutdown,
    tasks::Background,
};
use sqlx::{PgPool, migrate::Migrator};
use tokio::net::TcpListener;

use crate::{
    access::Scheduling, deactivations::Deactivations, events::AppointmentEvents, http::AppointmentsState,
    patient_check::PatientCheck, practitioners::Practitioners, store::Appointments,
};

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

pub const SCHEMA: Schema = Schema { name: "appointments", migrator: &MIGRATOR, plans: Plans::Chosen };

pub const SERVICE: Service = Service {
    name: "appointments",
    bind_var: "PMS_APPOINTMENTS_BIND",
    default_port: 8085,
    grpc: None,
    schema: Some(&SCHEMA),
    routes: policy::ROUTES,
    openapi: http::document,
    launch,
};

/// Where the patients service's `PatientDirectory` listens on a laptop (its own default).
const DEFAULT_PATIENTS_GRPC_PORT: u16 = 50051;

/// The service's settings (docs/configuration.md).
#[derive(Debug, Clone)]
pub struct Config {
    /// `PMS_APPOINTMENTS_DATABASE_URL`, else `PMS_DATABASE_URL`.
    pub db: DbConfig,
    /// `PMS_APPOINTMENTS_BIND` and the shared `PMS_HTTP_*` limits.
    pub http: HttpConfig,
    pub verifier: VerifierConfig,
    pub trusted_proxies: TrustedProxies,
    /// The topic appointment events go to (`PMS_APPOINTMENTS_TOPIC`).
    pub events: AppointmentEvents,
    pub kafka: KafkaConfig,
    pub relay: RelayConfig,
    /// The patients service's gRPC address (`PMS_PATIENTS_GRPC_URL`, default
    /// `http://127.0.0.1:50051`).
    pub patients_url: String,
    /// Each patient check's deadline (`PMS_PATIENTS_DEADLINE_MS`, default 2 000).
    pub patients_deadline: Duration,
    /// The consumer of patient events: group `PMS_APPOINTMENTS_GROUP` (`pms-appointments`),
    /// topic `PMS_PATIENTS_TOPIC` (`patients.v1`), dead letters to
    /// `<topic>.appointments.dlq`.
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
            events: AppointmentEvents::from_env()?,
            kafka: KafkaConfig::from_env()?,
            relay: RelayConfig::from_env()?,
            patients_url: config::var("PMS_PATIENTS_GRPC_URL")
                .unwrap_or_else(|| format!("http://127.0.0.1:{DEFAULT_PATIENTS_GRPC_PORT}")),
            patients_deadline: config::millis_or("PMS_PATIENTS_DEADLINE_MS", Duration::from_secs(2))?,
            consumer: ConsumerConfig {
                group: config::var("PMS_APPOINTMENTS_GROUP").unwrap_or_else(|| "pms-appointments".to_owned()),
                dead_letter_topic: format!("{topic}.appointments.dlq"),
                topics: vec![topic],
                max_batch: 200,
            },
        })
    }
}

#[derive(Clone)]
pub struct State {
    pub pool: PgPool,
    pub api: AppointmentsState,
    pub http: HttpConfig,
}

/// Connects to the database and starts the outbox relay and the patient-event consumer on
/// `background`.
pub async fn build(config: &Config, background: &Background) -> Result<State, BoxError> {
    let pool = SCHEMA.connect(&config.db).await?;
    let kafka = KafkaPublisher::new(&config.kafka)?;
    let relay = Relay::start(pool.clone(), events::KAFKA, kafka, config.relay.clone(), background);
    let appointments = Appointments::new(pool.clone(), config.events.clone(), Some(relay), background);
    consumer::start(
        &config.kafka,
        config.consumer.clone(),
        Deactivations::new(appointments.clone()),
        background,
    )?;
    let patients = PatientCheck::new(&config.patients_url, config.patients_deadline)?;
    let scheduling = Scheduling::new(Practitioners::new(pool.clone()), appointments, patients);
    let api = AppointmentsState {
        scheduling,
        verifier: config.verifier.start(background),
        trusted_proxies: config.trusted_proxies.clone(),
    };
    Ok(State { pool, api, http: config.http.clone() })
}

pub fn router(state: State) -> Router {
    let readiness = Readiness::default().with(health::Database(state.pool.clone()));
    kit::http::app(SERVICE.name, http::routes(state.api), readiness, &state.http)
}

/// Runs the service until `shutdown`; the relay and the consumer finish their batch first.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> Result<(), BoxError> {
    let background = Background::new();
    let state = build(&config, &background).await?;
    kit::http::run(listener, router(state), config.http.clone(), background, shutdown).await?;
    Ok(())
}

fn launch(launch: Launch) -> Running {
    Box::pin(async move { run(Config::from_env(&launch.peers)?, launch.listener, launch.shutdown).await })
}
