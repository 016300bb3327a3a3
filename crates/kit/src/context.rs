//! Who is asking, and under which request and trace: what every handler of every service
//! decides on (its `policy`) and what audit trails record.

use axum::{
    extract::{FromRef, FromRequestParts},
    http::{HeaderMap, request::Parts},
};

use crate::{
    auth::{Action, Forbidden, Role, TokenError, Verifier, bearer},
    net::{Origin, TrustedProxies, header_text},
};

/// The verified caller of one request. Extracting it answers 401 without a valid access
/// token: each service checks tokens itself, whatever sits in front of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// The `sub` of the caller's token.
    pub user_id: String,
    pub roles: Vec<Role>,
    /// `x-request-id` (set by the gateway), at most 128 characters.
    pub request_id: Option<String>,
    /// The W3C trace id of the request's `traceparent`, 32 lower-case hex digits.
    pub trace_id: Option<String>,
    /// Where the request comes from, as [`TrustedProxies::client`] decides it.
    pub client_address: Option<String>,
    /// The client's `User-Agent`, at most 256 characters.
    pub user_agent: Option<String>,
    /// The client's own request id (`x-client-request-id`, kept by the gateway), if it sent one.
    pub client_request_id: Option<String>,
}

impl RequestContext {
    /// A caller with `roles` and nothing else known (tests, background work on someone's behalf).
    pub fn of(user_id: impl Into<String>, roles: Vec<Role>) -> Self {
        Self {
            user_id: user_id.into(),
            roles,
            request_id: None,
            trace_id: None,
            client_address: None,
            user_agent: None,
            client_request_id: None,
        }
    }

    pub fn has_any(&self, allowed: &[Role]) -> bool {
        self.roles.iter().any(|r| allowed.contains(r))
    }

    /// Whether the caller's roles allow `action` (the service's policy says which do).
    pub fn may(&self, action: impl Action) -> bool {
        self.has_any(action.allowed())
    }

    /// [`Forbidden`] unless the caller may do `action` (each service's `Error` converts it into
    /// its own refusal). Services whose refusals must be audited check [`may`](Self::may) and
    /// record the refusal themselves.
    pub fn require(&self, action: impl Action) -> Result<(), Forbidden> {
        if self.may(action) { Ok(()) } else { Err(Forbidden) }
    }

    /// The request and trace ids of `headers` (no caller): for anonymous endpoints.
    pub fn ids(headers: &HeaderMap) -> (Option<String>, Option<String>) {
        let request_id = header_text(headers, "x-request-id", 128);
        let trace_id = headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(crate::trace::parse)
            .map(|(trace_id, _)| trace_id);
        (request_id, trace_id)
    }
}

impl<S> FromRequestParts<S> for RequestContext
where
    Verifier: FromRef<S>,
    TrustedProxies: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = TokenError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, TokenError> {
        let token = bearer(&parts.headers).ok_or(TokenError::Missing)?;
        let claims = Verifier::from_ref(state).verify(token).await?;
        let (request_id, trace_id) = Self::ids(&parts.headers);
        let origin = Origin::of(parts, &TrustedProxies::from_ref(state));
        Ok(Self {
            user_id: claims.sub,
            roles: claims.roles,
            request_id,
            trace_id,
            client_address: origin.address.map(|ip| ip.to_string()),
            user_agent: origin.user_agent,
            client_request_id: header_text(&parts.headers, crate::http::CLIENT_REQUEST_ID, 128),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Problem;

    #[derive(Debug, Clone, Copy)]
    struct Read;
    impl Action for Read {
        fn allowed(self) -> &'static [Role] {
            &[Role::Admin, Role::Clinician]
        }
        fn as_str(self) -> &'static str {
            "read"
        }
    }

    fn with(roles: &[Role]) -> RequestContext {
        RequestContext::of("u", roles.to_vec())
    }

    #[test]
    fn any_allowed_role_suffices() {
        assert!(with(&[Role::Analyst, Role::Clinician]).may(Read));
        assert!(!with(&[Role::Analyst]).may(Read));
        assert!(with(&[Role::Billing]).require(Read).is_err());
        assert_eq!(Problem::from(Forbidden).status, 403);
    }

    #[test]
    fn request_and_trace_ids_come_from_the_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("x-request-id", "r-1".parse().expect("value"));
        headers.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().expect("value"),
        );
        let (request_id, trace_id) = RequestContext::ids(&headers);
        assert_eq!(request_id.as_deref(), Some("r-1"));
        assert_eq!(trace_id.as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        headers.insert("traceparent", "garbage".parse().expect("value"));
        assert_eq!(RequestContext::ids(&headers).1, None);
    }
}
