//! Configuration from `PMS_*` environment variables (12-factor), parsed once at start.
//!
//! Every setting has a default that runs on a laptop. Values are never echoed back in errors,
//! because some of them (database URLs, keys) are secrets.

use std::{net::SocketAddr, str::FromStr, time::Duration};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: String, reason: String },
    #[error("environment variable {name} is required")]
    Missing { name: String },
}

/// The value of `name`, if set and not empty.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The value of `name` parsed as `T`, or `default` when unset.
pub fn parse_or<T>(name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    parse_value(name, var(name), default)
}

/// Whether the switch `name` (`on` or `off`) is on; `default` when unset.
pub fn on_off(name: &str, default: bool) -> Result<bool, ConfigError> {
    match var(name).as_deref() {
        None => Ok(default),
        Some("on") => Ok(true),
        Some("off") => Ok(false),
        Some(_) => {
            Err(ConfigError::Invalid { name: name.to_owned(), reason: "must be on or off".to_owned() })
        }
    }
}

fn parse_value<T>(name: &str, raw: Option<String>, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match raw {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|e: T::Err| ConfigError::Invalid { name: name.to_owned(), reason: e.to_string() }),
    }
}

/// A duration given in milliseconds.
pub fn millis_or(name: &str, default: Duration) -> Result<Duration, ConfigError> {
    let ms = parse_or::<u64>(name, default.as_millis() as u64)?;
    Ok(Duration::from_millis(ms))
}

/// How a service's HTTP server behaves. Read from `PMS_<SERVICE>_BIND` and the shared
/// `PMS_HTTP_*` settings.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Where to listen.
    pub bind: SocketAddr,
    /// A request that takes longer answers 503.
    pub request_timeout: Duration,
    /// Requests served at once; further ones wait up to `queue_timeout`, then answer 503.
    pub max_concurrency: usize,
    /// How long a request may wait for a free slot.
    pub queue_timeout: Duration,
    /// Largest accepted request body in bytes; larger ones answer 413.
    pub body_limit: usize,
    /// Whether `/metrics` is served on this listener (not on a public one).
    pub metrics: bool,
    /// A client that has not sent its request headers after this long is disconnected.
    pub header_read_timeout: Duration,
    /// Connections open at once; further ones wait in the listen queue until one closes.
    pub max_connections: usize,
    /// The public edge (the gateway): every request gets a request id of ours; a client's
    /// own `x-request-id` is kept as `x-client-request-id`, never used as the correlation key.
    pub assign_request_ids: bool,
}

impl HttpConfig {
    pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

    pub fn from_env(bind_var: &str, default_bind: SocketAddr) -> Result<Self, ConfigError> {
        Ok(Self {
            bind: parse_or(bind_var, default_bind)?,
            request_timeout: millis_or("PMS_HTTP_REQUEST_TIMEOUT_MS", Duration::from_secs(10))?,
            max_concurrency: parse_or("PMS_HTTP_MAX_CONCURRENCY", 512)?,
            queue_timeout: millis_or("PMS_HTTP_QUEUE_TIMEOUT_MS", Duration::from_millis(500))?,
            body_limit: parse_or("PMS_HTTP_BODY_LIMIT", Self::DEFAULT_BODY_LIMIT)?,
            metrics: true,
            header_read_timeout: millis_or("PMS_HTTP_HEADER_READ_TIMEOUT_MS", Duration::from_secs(5))?,
            max_connections: parse_or("PMS_HTTP_MAX_CONNECTIONS", 1024)?,
            assign_request_ids: false,
        })
    }

    /// Defaults for tests and embedding: port 0 on loopback.
    pub fn ephemeral() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            request_timeout: Duration::from_secs(10),
            max_concurrency: 512,
            queue_timeout: Duration::from_millis(500),
            body_limit: Self::DEFAULT_BODY_LIMIT,
            metrics: true,
            header_read_timeout: Duration::from_secs(5),
            max_connections: 1024,
            assign_request_ids: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_variables_fall_back_to_the_default() {
        let v: u32 = parse_value("PMS_X", None, 7).expect("default");
        assert_eq!(v, 7);
        let v: u32 = parse_value("PMS_X", Some(" 42 ".into()), 7).expect("parsed");
        assert_eq!(v, 42);
    }

    #[test]
    fn invalid_values_name_the_variable_but_not_the_value() {
        let err = parse_value::<u32>("PMS_X", Some("secret-ish".into()), 1).expect_err("fails");
        let text = err.to_string();
        assert!(text.contains("PMS_X"), "{text}");
        assert!(!text.contains("secret-ish"), "{text}");
    }
}
