//! The auth service's settings (`PMS_AUTH_*`, `PMS_JWT_*`, `PMS_ADMIN_*`).

use std::time::Duration;

use kit::{
    auth::TokenSettings,
    config::{self, ConfigError},
};

use crate::lockout::Limits;

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

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub tokens: TokenSettings,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub limits: Limits,
    pub admin: Option<AdminBootstrap>,
}

impl AuthConfig {
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
        Ok(Self {
            tokens: TokenSettings::from_env(),
            access_ttl: Duration::from_secs(config::parse_or("PMS_AUTH_ACCESS_TTL_SECONDS", 15 * 60)?),
            refresh_ttl: Duration::from_secs(config::parse_or(
                "PMS_AUTH_REFRESH_TTL_SECONDS",
                14 * 24 * 3600,
            )?),
            limits: Limits {
                window: Duration::from_secs(config::parse_or("PMS_AUTH_LOCKOUT_WINDOW_SECONDS", 15 * 60)?),
                per_account: config::parse_or("PMS_AUTH_MAX_FAILURES_PER_ACCOUNT", 5)?,
                per_address: config::parse_or("PMS_AUTH_MAX_FAILURES_PER_ADDRESS", 20)?,
            },
            admin,
        })
    }
}
