//! Who may do what in the billing service, in one place, and the routes the gateway forwards
//! here with its coarse check.

use kit::{
    RequestContext,
    auth::{Role, RouteSpec},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read a patient's billing account.
    ReadAccount,
    /// Open a patient's billing account.
    OpenAccount,
}

const BILLING: &[Role] = &[Role::Admin, Role::Billing];

/// The service principals (auth's service tokens, `service:<name>`) that may open accounts:
/// the patients service, whose outbox drives it for every registration.
const OPENERS: &[&str] = &["service:patients"];

impl kit::auth::Action for Action {
    fn allowed(self) -> &'static [Role] {
        BILLING
    }

    fn as_str(self) -> &'static str {
        match self {
            Action::ReadAccount => "read_account",
            Action::OpenAccount => "open_account",
        }
    }
}

/// Whether `ctx` may do `action`: by its roles, or as a service principal allowed to.
pub fn may(ctx: &RequestContext, action: Action) -> bool {
    ctx.may(action) || (action == Action::OpenAccount && OPENERS.contains(&ctx.user_id.as_str()))
}

pub const ROUTES: &[RouteSpec] = &[RouteSpec::roles("/api/billing", BILLING)];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billing_and_admins_read_and_open_the_patients_service_only_opens() {
        let with = |user: &str, roles: &[Role]| RequestContext::of(user, roles.to_vec());
        assert!(may(&with("u", &[Role::Billing]), Action::ReadAccount));
        assert!(may(&with("u", &[Role::Admin]), Action::OpenAccount));
        assert!(!may(&with("u", &[Role::Receptionist, Role::Clinician, Role::Analyst]), Action::ReadAccount));
        assert!(may(&with("service:patients", &[]), Action::OpenAccount));
        assert!(!may(&with("service:patients", &[]), Action::ReadAccount));
        assert!(!may(&with("service:analytics", &[]), Action::OpenAccount));
        assert_eq!(ROUTES[0].roles, Some(BILLING));
    }
}
