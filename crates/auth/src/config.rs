//! The auth service's settings (`PMS_AUTH_*`, `PMS_JWT_*`, `PMS_ADMIN_*`; docs/configuration.md).

use std::time::Duration;

use kit::{
    auth::TokenSettings,
    clock::Clock,
    config::{self, ConfigError, HttpConfig},
    db::DbConfig,
    net::TrustedProxies,
};

use crate::{SERVICE, lockout::Limits, sealing::KeySealer};

/// The first administrator, created when there are no users at all.
#[derive(Clone)]
pub struct AdminBootstrap {
    pub email: String,
    pub password: String,
}

impl std::fmt::Debug for AdminBootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminBootstrap")
            .field("email", &"<redacted>")
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The admin `pms up` creates on an empty database when `PMS_ADMIN_*` are unset (documented in
/// docs/security.md); never used when auth runs alone.
pub const LAPTOP_ADMIN_EMAIL: &str = "admin@pms.local";
const LAPTOP_ADMIN_PASSWORD: &str = "pms-admin-password";

impl AdminBootstrap {
    pub fn laptop() -> Self {
        Self { email: LAPTOP_ADMIN_EMAIL.into(), password: LAPTOP_ADMIN_PASSWORD.into() }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// `PMS_AUTH_DATABASE_URL`, else `PMS_DATABASE_URL`.
    pub db: DbConfig,
    /// `PMS_AUTH_BIND` and the shared `PMS_HTTP_*` limits.
    pub http: HttpConfig,
    pub tokens: TokenSettings,
    pub access_ttl: Duration,
    /// A session (a login and its refresh tokens) ends after this long without a refresh.
    pub session_idle: Duration,
    /// A session ends this long after its login, however often it was refreshed.
    pub session_lifetime: Duration,
    pub limits: Limits,
    pub admin: Option<AdminBootstrap>,
    /// What lockout windows are measured by (tests move it instead of sleeping).
    pub clock: Clock,
    /// Whose `X-Forwarded-For` is believed when counting attempts per address.
    pub trusted_proxies: TrustedProxies,
    /// Passwords hashed or checked at once (each Argon2 run takes 19 MiB).
    pub hashes_at_once: usize,
    /// `PMS_SERVICE_SECRET`: what services present for a service token; none, none issued.
    pub service_secret: Option<String>,
    /// `PMS_AUTH_KEY_ENCRYPTION_KEY`: seals the token signing keys in the database (none: they
    /// are stored unsealed, as on a laptop).
    pub key_sealer: Option<KeySealer>,
}

impl Config {
    /// The documented defaults (15-minute access tokens; sessions that end after 30 minutes
    /// without a refresh or 12 hours after login; 5 failures per account and 20 per address in
    /// 15 minutes), no first admin, on `db` and `http`.
    pub fn new(db: DbConfig, http: HttpConfig) -> Self {
        Self {
            db,
            http,
            tokens: TokenSettings { issuer: "pms-auth".into(), audience: "pms".into() },
            access_ttl: Duration::from_secs(15 * 60),
            session_idle: Duration::from_secs(30 * 60),
            session_lifetime: Duration::from_secs(12 * 3600),
            limits: Limits::default(),
            admin: None,
            clock: Clock::default(),
            trusted_proxies: TrustedProxies::parse("127.0.0.0/8,::1").unwrap_or_default(),
            hashes_at_once: 4,
            service_secret: None,
            key_sealer: None,
        }
    }

    /// From the environment. `PMS_ADMIN_EMAIL` and `PMS_ADMIN_PASSWORD` go together; without
    /// them no admin is created (and a service with no users refuses to start).
    pub fn from_env() -> Result<Self, ConfigError> {
        let admin = match (config::var("PMS_ADMIN_EMAIL"), config::var("PMS_ADMIN_PASSWORD")) {
            (Some(email), Some(password)) => Some(AdminBootstrap { email, password }),
            (None, None) => None,
            _ => {
                return Err(ConfigError::Invalid {
                    name: "PMS_ADMIN_EMAIL/PMS_ADMIN_PASSWORD".into(),
                    reason: "set both or neither".into(),
                });
            }
        };
        let defaults = Self::new(
            DbConfig::from_env(SERVICE.name)?,
            HttpConfig::from_env(SERVICE.bind_var, SERVICE.bind_address()?)?,
        );
        let seconds = |name: &str, default: Duration| {
            config::parse_or(name, default.as_secs()).map(Duration::from_secs)
        };
        Ok(Self {
            tokens: TokenSettings::from_env(),
            access_ttl: seconds("PMS_AUTH_ACCESS_TTL_SECONDS", defaults.access_ttl)?,
            session_idle: seconds("PMS_AUTH_SESSION_IDLE_SECONDS", defaults.session_idle)?,
            session_lifetime: seconds("PMS_AUTH_SESSION_LIFETIME_SECONDS", defaults.session_lifetime)?,
            limits: Limits {
                window: seconds("PMS_AUTH_LOCKOUT_WINDOW_SECONDS", defaults.limits.window)?,
                per_account: config::parse_or(
                    "PMS_AUTH_MAX_FAILURES_PER_ACCOUNT",
                    defaults.limits.per_account,
                )?,
                per_address: config::parse_or(
                    "PMS_AUTH_MAX_FAILURES_PER_ADDRESS",
                    defaults.limits.per_address,
                )?,
            },
            admin,
            trusted_proxies: TrustedProxies::from_env()?,
            hashes_at_once: config::parse_or("PMS_AUTH_HASHES_AT_ONCE", defaults.hashes_at_once)?,
            service_secret: config::var("PMS_SERVICE_SECRET"),
            key_sealer: KeySealer::from_env()?,
            ..defaults
        })
    }
}
