//! The patients service: patient records over REST, with search, history and an audit trail.
//!
//! [`app`] is the whole service as an `axum::Router`; `pms up`, `pms patients` and the tests
//! all serve that same router on a socket.

pub mod audit;
pub mod context;
pub mod domain;
pub mod error;
pub mod http;
pub mod mrn;
pub mod names;
pub mod openapi;
pub mod repository;

use axum::Router;
use kit::{
    auth::Verifier,
    config::HttpConfig,
    health::{self, Readiness},
};
use sqlx::{PgPool, migrate::Migrator};

pub use repository::PatientRepository;

/// The PostgreSQL schema this service owns.
pub const SCHEMA: &str = "patients";

/// The service's migrations, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Opens the service's pool on its own schema.
pub async fn connect(db: &kit::db::DbConfig) -> Result<PgPool, sqlx::Error> {
    kit::db::connect(db, SCHEMA, "pms-patients").await
}

/// Opens the service's pool on its own schema, with connection options already parsed.
pub async fn connect_with(
    options: sqlx::postgres::PgConnectOptions,
    db: &kit::db::DbConfig,
) -> Result<PgPool, sqlx::Error> {
    kit::db::connect_with(options, db, SCHEMA, "pms-patients").await
}

/// Applies the service's migrations.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    kit::db::migrate(pool, SCHEMA, &MIGRATOR).await
}

/// The API routes alone. Every request must carry an access token `verifier` accepts.
pub fn routes(pool: PgPool, verifier: Verifier) -> Router {
    http::router(http::PatientsState { patients: PatientRepository::new(pool), verifier })
}

/// The whole service: API, health, metrics and the shared layers.
pub fn app(pool: PgPool, verifier: Verifier, config: &HttpConfig) -> Router {
    let readiness = Readiness::default().with(health::Database(pool.clone()));
    kit::http::app("patients", routes(pool, verifier), readiness, config)
}
