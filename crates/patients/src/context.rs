//! Who is asking, and under which request id: what authorisation decides on and what the
//! audit trail records for every access.

use axum::{
    extract::{FromRef, FromRequestParts},
    http::request::Parts,
};
use kit::auth::{Caller, Role, TokenError, Verifier};

use crate::audit::Action;

/// The verified caller of one request and its request id. Extracting it answers 401 without
/// a valid access token: the service checks tokens itself, whatever sits in front of it.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: Option<String>,
    pub actor_id: Option<String>,
    pub actor_roles: Vec<Role>,
}

impl RequestContext {
    /// Whether the caller's roles allow `action` (see docs/security.md).
    pub fn may(&self, action: Action) -> bool {
        let allowed: &[Role] = match action {
            Action::Create | Action::Update | Action::Deactivate => &[Role::Admin, Role::Receptionist],
            Action::Read | Action::Search | Action::History => {
                &[Role::Admin, Role::Receptionist, Role::Clinician]
            }
        };
        self.actor_roles.iter().any(|r| allowed.contains(r))
    }

    pub fn is_admin(&self) -> bool {
        self.actor_roles.contains(&Role::Admin)
    }
}

impl<S> FromRequestParts<S> for RequestContext
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = TokenError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, TokenError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(128).collect());
        Ok(Self { request_id, actor_id: Some(caller.claims.sub), actor_roles: caller.claims.roles })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(roles: &[Role]) -> RequestContext {
        RequestContext { request_id: None, actor_id: None, actor_roles: roles.to_vec() }
    }

    #[test]
    fn the_role_matrix() {
        use Action::*;
        let all = [Create, Read, Update, Deactivate, History, Search];
        assert!(all.iter().all(|&a| with(&[Role::Admin]).may(a)));
        assert!(all.iter().all(|&a| with(&[Role::Receptionist]).may(a)));
        let clinician = with(&[Role::Clinician]);
        assert!([Read, Search, History].iter().all(|&a| clinician.may(a)));
        assert!([Create, Update, Deactivate].iter().all(|&a| !clinician.may(a)));
        for role in [Role::Billing, Role::Analyst] {
            assert!(all.iter().all(|&a| !with(&[role]).may(a)), "{role:?}");
        }
        assert!(with(&[Role::Analyst, Role::Clinician]).may(Read), "roles add up");
    }
}
