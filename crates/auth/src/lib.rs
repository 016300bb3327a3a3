//! The auth service: users and roles, login, access tokens (EdDSA JWTs) and rotating refresh
//! tokens, the public keys (JWKS), brute-force limits, and user administration.
//!
//! Its face is the one every pms service has: [`Config::from_env`], [`SCHEMA`], [`build`],
//! [`router`], [`run`], and [`SERVICE`] for the binary's list of services.

pub mod config;
pub mod error;
pub mod http;
pub mod keys;
pub mod lockout;
pub mod openapi;
pub mod passwords;
pub mod policy;
pub mod revocations;
pub mod sealing;
pub mod service_tokens;
pub mod tokens;
pub mod trail;
pub mod user_id;
pub mod users;

use std::{sync::Arc, time::Duration};

use axum::{Router, extract::FromRef};
use kit::{
    auth::Verifier,
    db::{Plans, Schema},
    email::Email,
    health::{self, Readiness},
    net::TrustedProxies,
    service::{BoxError, Launch, Profile, Running, Service},
    shutdown::Shutdown,
    tasks::Background,
};
use sqlx::{PgPool, migrate::Migrator};
use tokio::net::TcpListener;

pub use config::{AdminBootstrap, Config};
pub use keys::KeyStore;
pub use sealing::KeySealer;
use users::UserRepository;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The PostgreSQL schema this service owns.
pub const SCHEMA: Schema = Schema { name: "auth", migrator: &MIGRATOR, plans: Plans::Chosen };

/// The auth service in the binary's list of services.
pub const SERVICE: Service = Service {
    name: "auth",
    bind_var: "PMS_AUTH_BIND",
    default_port: 8082,
    grpc: None,
    schema: Some(&SCHEMA),
    routes: policy::ROUTES,
    openapi: http::document,
    launch,
};

/// How often expired refresh tokens and old login attempts are deleted.
const PRUNE_INTERVAL: Duration = Duration::from_secs(600);

/// Everything the handlers share.
#[derive(Clone)]
pub struct AuthState {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub keys: KeyStore,
    pub users: UserRepository,
    pub hasher: passwords::Hasher,
}

impl FromRef<AuthState> for TrustedProxies {
    fn from_ref(state: &AuthState) -> TrustedProxies {
        state.config.trusted_proxies.clone()
    }
}

impl FromRef<AuthState> for Verifier {
    fn from_ref(state: &AuthState) -> Verifier {
        state.keys.verifier()
    }
}

/// Prepares the service: creates the first admin when there are no users (and refuses to
/// start without one), loads or creates the signing keys, and starts its upkeep on
/// `background`: reloading keys (rotations by other processes) and pruning.
pub async fn build(config: Config, background: &Background) -> error::Result<AuthState> {
    let pool = SCHEMA.connect(&config.db).await?;
    tokio::task::spawn_blocking(passwords::warm_up).await.ok();
    let hasher = passwords::Hasher::new(config.hashes_at_once);
    let users = UserRepository::new(pool.clone());
    if !users.any_users().await? {
        let Some(admin) = &config.admin else {
            return Err(error::Error::Internal(
                "there are no users: set PMS_ADMIN_EMAIL and PMS_ADMIN_PASSWORD to create the first admin"
                    .into(),
            ));
        };
        let email = Email::parse(&admin.email)
            .map_err(|detail| error::Error::Internal(format!("PMS_ADMIN_EMAIL {detail}")))?;
        if let Some(error) = passwords::check_policy(&admin.password, "PMS_ADMIN_PASSWORD") {
            return Err(error::Error::Internal(format!("PMS_ADMIN_PASSWORD {}", error.detail)));
        }
        if users.bootstrap_admin(email, admin.password.clone(), &hasher).await? {
            tracing::info!("there were no users: created the first admin");
        }
    }
    let keys = KeyStore::load(
        pool.clone(),
        config.tokens.clone(),
        config.access_ttl,
        config.clock.clone(),
        config.key_sealer.clone(),
    )
    .await?;
    let state = AuthState { pool, config: Arc::new(config), keys, users, hasher };
    let reloading = state.keys.clone();
    background.every("signing key reload", keys::RELOAD_INTERVAL, move || {
        let keys = reloading.clone();
        async move {
            if let Err(err) = keys.reload().await {
                tracing::warn!(error = %err, "cannot reload signing keys");
            }
        }
    });
    let pruning = state.clone();
    background.every("auth pruning", PRUNE_INTERVAL, move || {
        let state = pruning.clone();
        async move {
            if let Err(err) = tokens::prune(&state).await {
                tracing::warn!(error = %err, "cannot prune refresh tokens");
            }
            if let Err(err) = lockout::prune(&state.pool, &state.config.limits, &state.config.clock).await {
                tracing::warn!(error = %err, "cannot prune login attempts");
            }
            let now = state.config.clock.now();
            if let Err(err) = revocations::prune(&state.pool, state.config.access_ttl, now).await {
                tracing::warn!(error = %err, "cannot prune revocations");
            }
        }
    });
    Ok(state)
}

/// The whole service as a router: API, health, metrics and the shared layers.
pub fn router(state: AuthState) -> Router {
    let readiness = Readiness::default().with(health::Database(state.pool.clone()));
    let http = state.config.http.clone();
    kit::http::app(SERVICE.name, http::routes(state), readiness, &http)
}

/// Runs the service on `listener` until `shutdown`, then stops its upkeep.
pub async fn run(config: Config, listener: TcpListener, shutdown: Shutdown) -> Result<(), BoxError> {
    let background = Background::new();
    let http = config.http.clone();
    let state = build(config, &background).await?;
    kit::http::run(listener, router(state), http, background, shutdown).await?;
    Ok(())
}

fn launch(launch: Launch) -> Running {
    Box::pin(async move {
        let mut config = Config::from_env()?;
        config.service_secret = config.service_secret.or(launch.service_secret.clone());
        if config.admin.is_none() && launch.profile == Profile::Laptop {
            laptop_admin_allowed(&config, &launch)?;
            tracing::warn!(
                email = config::LAPTOP_ADMIN_EMAIL,
                "PMS_ADMIN_EMAIL/PMS_ADMIN_PASSWORD unset: an empty database gets the laptop admin with the \
                 documented default password (docs/security.md); never use `pms up` this way in production"
            );
            config.admin = Some(AdminBootstrap::laptop());
        }
        run(config, launch.listener, launch.shutdown).await
    })
}

/// The laptop admin (a documented password) is only for a laptop: `pms up` listening on
/// loopback alone, on the private PostgreSQL cluster that scripts/up.sh made
/// (`PMS_LAPTOP_CLUSTER` names its directory, and the database URL must use its socket).
fn laptop_admin_allowed(config: &Config, launch: &Launch) -> Result<(), BoxError> {
    let refuse = |why: &str| -> Result<(), BoxError> {
        Err(format!(
            "set PMS_ADMIN_EMAIL and PMS_ADMIN_PASSWORD (12 to 128 characters) to create the first admin: \
             the laptop admin with its documented password is only created by `pms up` on loopback with the \
             private cluster of scripts/up.sh, and {why}"
        )
        .into())
    };
    let loopback = |url: &str| {
        let host = url.split("://").nth(1).unwrap_or(url).split(['/', '?']).next().unwrap_or("");
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h).trim_matches(['[', ']']);
        host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    };
    let public_on_loopback = launch.peers.iter().all(|peer| loopback(&peer.url))
        && launch.listener.local_addr().is_ok_and(|a| a.ip().is_loopback());
    if !public_on_loopback {
        return refuse("a service listens beyond loopback");
    }
    let Some(cluster) = kit::config::var("PMS_LAPTOP_CLUSTER") else {
        return refuse("PMS_LAPTOP_CLUSTER (set by scripts/up.sh) is unset");
    };
    if !config.db.url.contains(&format!("host={cluster}")) {
        return refuse("the database is not the private cluster of scripts/up.sh");
    }
    Ok(())
}
