//! Access tokens for services acting on their own behalf (the patients service's outbox relay
//! opening billing accounts): `POST /internal/service-token` with `{service, secret}`.
//!
//! The secret (`PMS_SERVICE_SECRET`, from the environment or a secret store; `pms up` makes a
//! random one per process) is shared by the services of one installation, so any holder may
//! name any service: it is a credential of the installation, kept off the public API (the
//! gateway routes nothing under `/internal`). The token's subject is `service:<name>`, which
//! no user id can be (those are UUIDs), with no roles and no session; it lives as long as a
//! user's access token. Services decide what a service principal may do in their policy.

use axum::{Json, extract::State, http::StatusCode};
use kit::{Problem, auth::Claims, problem::kinds};
use ring::digest;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::AuthState;

/// The route, outside the public API.
pub const PATH: &str = "/internal/service-token";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceTokenRequest {
    pub service: String,
    pub secret: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceToken {
    pub access_token: String,
    pub expires_in: u64,
}

/// A service name: 1 to 32 lower-case letters.
fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_lowercase())
}

/// Whether `offered` is `expected`. Their SHA-256 digests are compared, so how long the
/// comparison takes tells nothing about where the secrets themselves differ.
fn same_secret(offered: &str, expected: &str) -> bool {
    let digest = |text: &str| digest::digest(&digest::SHA256, text.as_bytes());
    digest(offered).as_ref() == digest(expected).as_ref()
}

pub async fn issue(
    State(state): State<AuthState>,
    kit::json::JsonBody(request): kit::json::JsonBody<ServiceTokenRequest>,
) -> Result<Json<ServiceToken>, Problem> {
    let Some(expected) = state.config.service_secret.as_deref() else {
        return Err(Problem::unavailable("service tokens are not configured (PMS_SERVICE_SECRET)"));
    };
    if !valid_name(&request.service) || !same_secret(&request.secret, expected) {
        tracing::warn!("a service token was refused");
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            kinds::UNAUTHORIZED,
            "Invalid service credentials",
        ));
    }
    let now = state.config.clock.now();
    let ttl = state.config.access_ttl;
    let claims = Claims {
        iss: state.config.tokens.issuer.clone(),
        aud: state.config.tokens.audience.clone(),
        sub: format!("service:{}", request.service),
        roles: Vec::new(),
        iat: now.unix_timestamp(),
        exp: now.unix_timestamp() + ttl.as_secs() as i64,
        jti: Uuid::new_v4().to_string(),
        sid: None,
        iat_ms: Some((now.unix_timestamp_nanos() / 1_000_000) as i64),
    };
    let key = state.keys.active().map_err(|e| Problem::internal(&e))?;
    let access_token = key.sign(&claims).map_err(|e| Problem::internal(&e))?;
    tracing::info!(service = %request.service, "service token issued");
    Ok(Json(ServiceToken { access_token, expires_in: ttl.as_secs() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_lower_case_words() {
        assert!(valid_name("patients"));
        assert!(!valid_name(""));
        assert!(!valid_name("Patients"));
        assert!(!valid_name("service:patients"));
        assert!(!valid_name(&"a".repeat(33)));
    }

    #[test]
    fn only_the_same_secret_matches() {
        assert!(same_secret("s3cret-value", "s3cret-value"));
        assert!(!same_secret("s3cret-valuf", "s3cret-value"));
        assert!(!same_secret("", "s3cret-value"));
    }
}
