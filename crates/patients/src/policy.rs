//! Who may do what with patient records: the patients service's actions and its role matrix,
//! in one place (docs/security.md shows the same table), and the routes the gateway forwards
//! here with its coarse check.

use kit::auth::{Role, RouteSpec};

/// Everything a caller can do in this service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Read,
    Update,
    Deactivate,
    History,
    Search,
    /// Read the audit trail of patient records.
    ReadAudit,
}

const FRONT_DESK: &[Role] = &[Role::Admin, Role::Receptionist];
const CARE_TEAM: &[Role] = &[Role::Admin, Role::Receptionist, Role::Clinician];
const ADMINS: &[Role] = &[Role::Admin];

impl kit::auth::Action for Action {
    fn allowed(self) -> &'static [Role] {
        match self {
            Action::Create | Action::Update | Action::Deactivate => FRONT_DESK,
            Action::Read | Action::Search | Action::History => CARE_TEAM,
            Action::ReadAudit => ADMINS,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Read => "read",
            Action::Update => "update",
            Action::Deactivate => "deactivate",
            Action::History => "history",
            Action::Search => "search",
            Action::ReadAudit => "read_audit",
        }
    }
}

/// The routes the gateway forwards here. Patient records accept any valid token at the
/// gateway: this service decides per action and audits every refusal. The audit trail is for
/// the roles of [`Action::ReadAudit`] alone, at the gateway already.
pub const ROUTES: &[RouteSpec] =
    &[RouteSpec::authenticated("/api/patients"), RouteSpec::roles("/api/audit-events", ADMINS)];

#[cfg(test)]
mod tests {
    use kit::{RequestContext, auth::Action as _};

    use super::*;

    fn with(roles: &[Role]) -> RequestContext {
        RequestContext::of("u", roles.to_vec())
    }

    #[test]
    fn the_role_matrix() {
        use Action::*;
        let records = [Create, Read, Update, Deactivate, History, Search];
        assert!(records.iter().all(|&a| with(&[Role::Admin]).may(a)));
        assert!(records.iter().all(|&a| with(&[Role::Receptionist]).may(a)));
        let clinician = with(&[Role::Clinician]);
        assert!([Read, Search, History].iter().all(|&a| clinician.may(a)));
        assert!([Create, Update, Deactivate].iter().all(|&a| !clinician.may(a)));
        for role in [Role::Billing, Role::Analyst] {
            assert!(records.iter().all(|&a| !with(&[role]).may(a)), "{role:?}");
        }
        assert!(with(&[Role::Analyst, Role::Clinician]).may(Read), "roles add up");
        assert!(with(&[Role::Admin]).may(ReadAudit));
        assert!(!with(&[Role::Receptionist, Role::Clinician]).may(ReadAudit));
    }

    #[test]
    fn the_gateway_check_never_contradicts_the_matrix() {
        let audit = ROUTES.iter().find(|r| r.prefix == "/api/audit-events").expect("route");
        assert_eq!(audit.roles, Some(Action::ReadAudit.allowed()));
        let records = ROUTES.iter().find(|r| r.prefix == "/api/patients").expect("route");
        assert_eq!(records.roles, Some(&[][..]), "any token: the service decides and audits refusals");
    }
}
