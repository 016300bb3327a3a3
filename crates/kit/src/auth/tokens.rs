//! Access token claims, the settings every token must match, and the 401/403 answers.

use axum::{
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use super::Role;
use crate::problem::{Problem, kinds};

/// The claims of a pms access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: String,
    pub roles: Vec<Role>,
    pub iat: i64,
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
    /// The session (refresh-token family, one per login) the token was issued in: logging out
    /// revokes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// When the token was issued, in milliseconds since the epoch (`iat` has whole seconds;
    /// revocations need finer: a role change and the next login can share a second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat_ms: Option<i64>,
}

impl Claims {
    /// When the token was issued, in milliseconds since the epoch.
    pub fn issued_at_ms(&self) -> i64 {
        self.iat_ms.unwrap_or(self.iat.saturating_mul(1000))
    }
}

/// Issuer and audience every token must carry.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub issuer: String,
    pub audience: String,
}

impl TokenSettings {
    /// From `PMS_JWT_ISSUER` (default `pms-auth`) and `PMS_JWT_AUDIENCE` (default `pms`).
    pub fn from_env() -> Self {
        Self {
            issuer: crate::config::var("PMS_JWT_ISSUER").unwrap_or_else(|| "pms-auth".into()),
            audience: crate::config::var("PMS_JWT_AUDIENCE").unwrap_or_else(|| "pms".into()),
        }
    }
}

/// Why a token was refused. Deliberately coarse towards clients.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no bearer token")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("token expired")]
    Expired,
    #[error("token revoked")]
    Revoked,
    #[error("the signing keys cannot be fetched: {0}")]
    KeysUnavailable(String),
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        if let TokenError::KeysUnavailable(err) = &self {
            tracing::warn!(error = %err, "cannot fetch the token keys");
            return Problem::unavailable("tokens cannot be verified right now").into_response();
        }
        let (code, detail) = match &self {
            TokenError::Missing => (None, "send `Authorization: Bearer <access token>`"),
            TokenError::Expired => (Some("invalid_token"), "the access token has expired; refresh it"),
            TokenError::Revoked => (Some("invalid_token"), "the access token was revoked; log in again"),
            _ => (Some("invalid_token"), "the access token is not valid"),
        };
        unauthorized(detail, code)
    }
}

/// A 401 problem with its `WWW-Authenticate: Bearer` challenge; `error` is the RFC 6750 error
/// code (`invalid_token`), when there is one.
pub fn unauthorized(detail: &str, error: Option<&str>) -> Response {
    let mut response = Problem::new(StatusCode::UNAUTHORIZED, kinds::UNAUTHORIZED, "Unauthorized")
        .with_detail(detail)
        .into_response();
    let challenge = match error {
        Some(code) => format!("Bearer realm=\"pms\", error=\"{code}\""),
        None => "Bearer realm=\"pms\"".to_owned(),
    };
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim()).filter(|t| !t.is_empty())
}

/// The 403 problem.
pub fn forbidden() -> Problem {
    Problem::new(StatusCode::FORBIDDEN, kinds::FORBIDDEN, "Forbidden")
        .with_detail("your roles do not allow this operation")
}

/// The caller's roles do not allow the action (403 at the edge).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the caller's roles do not allow this action")]
pub struct Forbidden;

impl From<Forbidden> for Problem {
    fn from(_: Forbidden) -> Problem {
        forbidden()
    }
}
