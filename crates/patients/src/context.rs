//! Who is asking, and under which request id: what the audit trail records for every access.

use axum::{extract::FromRequestParts, http::request::Parts};
use std::convert::Infallible;

/// The caller of one request. Until authentication lands the actor is unknown; the request id
/// is the one the HTTP layer assigned (or the client sent).
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub request_id: Option<String>,
    pub actor_id: Option<String>,
    pub actor_roles: Vec<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(128).collect());
        Ok(Self { request_id, actor_id: None, actor_roles: Vec::new() })
    }
}
