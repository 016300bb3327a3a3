//! The auth service: users and roles, login, access tokens (EdDSA JWTs) and rotating refresh
//! tokens, the public keys (JWKS), brute-force limits, and user administration.
//!
//! [`start`] prepares the state (first admin, signing keys); [`app`] is the service as a
//! router, served by `pms up`, `pms auth` and the tests alike.

pub mod config;
pub mod error;
pub mod http;
pub mod keys;
pub mod lockout;
pub mod openapi;
pub mod passwords;
pub mod tokens;
pub mod users;

use std::{sync::Arc, time::Duration};

use axum::{Router, extract::FromRef};
use kit::{
    auth::Verifier,
    config::HttpConfig,
    health::{self, Readiness},
};
use sqlx::{PgPool, migrate::Migrator};

pub use config::{AdminBootstrap, AuthConfig};
pub use keys::KeyStore;
use users::UserRepository;

/// The PostgreSQL schema this service owns.
pub const SCHEMA: &str = "auth";

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

pub async fn connect(db: &kit::db::DbConfig) -> Result<PgPool, sqlx::Error> {
    kit::db::connect(db, SCHEMA, "pms-auth").await
}

pub async fn connect_with(
    options: sqlx::postgres::PgConnectOptions,
    db: &kit::db::DbConfig,
) -> Result<PgPool, sqlx::Error> {
    kit::db::connect_with(options, db, SCHEMA, "pms-auth").await
}

pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    kit::db::migrate(pool, SCHEMA, &MIGRATOR).await
}

/// Everything the handlers share.
#[derive(Clone)]
pub struct AuthState {
    pub pool: PgPool,
    pub config: Arc<AuthConfig>,
    pub keys: KeyStore,
    pub users: UserRepository,
}

impl FromRef<AuthState> for Verifier {
    fn from_ref(state: &AuthState) -> Verifier {
        state.keys.verifier()
    }
}

/// Prepares the service: creates the first admin when there are no users (and refuses to
/// start without one), and loads or creates the signing keys.
pub async fn start(pool: PgPool, config: AuthConfig) -> error::Result<AuthState> {
    tokio::task::spawn_blocking(passwords::warm_up).await.ok();
    let users = UserRepository::new(pool.clone());
    if !users.any_users().await? {
        let Some(admin) = &config.admin else {
            return Err(error::Error::Internal(
                "there are no users: set PMS_ADMIN_EMAIL and PMS_ADMIN_PASSWORD to create the first admin"
                    .into(),
            ));
        };
        if users.bootstrap_admin(&admin.email, &admin.password).await? {
            tracing::info!("there were no users: created the first admin");
        }
    }
    let keys = KeyStore::load(pool.clone(), config.tokens.clone(), config.access_ttl).await?;
    Ok(AuthState { pool, config: Arc::new(config), keys, users })
}

/// Background upkeep: reloads signing keys (rotations by other processes) and prunes expired
/// refresh tokens and old login attempts.
pub fn spawn_upkeep(state: &AuthState) {
    state.keys.spawn_reloader();
    let state = state.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(600)).await;
            if let Err(err) = tokens::prune(&state).await {
                tracing::warn!(error = %err, "cannot prune refresh tokens");
            }
            if let Err(err) = lockout::prune(&state.pool, &state.config.limits).await {
                tracing::warn!(error = %err, "cannot prune login attempts");
            }
        }
    });
}

/// The API routes alone.
pub fn routes(state: AuthState) -> Router {
    http::router(state)
}

/// The whole service: API, health, metrics and the shared layers.
pub fn app(state: AuthState, config: &HttpConfig) -> Router {
    let readiness = Readiness::default().with(health::Database(state.pool.clone()));
    kit::http::app("auth", routes(state), readiness, config)
}
