//! Who may do what in the notifications service, and the routes the gateway forwards here.

use kit::auth::{Role, RouteSpec};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read the delivery log (which messages went to whom, and how it went).
    ReadLog,
    ReadPreferences,
    SetPreferences,
}

/// The staff who talk to patients: front desk and clinicians (and admins).
const STAFF: &[Role] = &[Role::Admin, Role::Receptionist, Role::Clinician];

impl kit::auth::Action for Action {
    fn allowed(self) -> &'static [Role] {
        STAFF
    }

    fn as_str(self) -> &'static str {
        match self {
            Action::ReadLog => "read_log",
            Action::ReadPreferences => "read_preferences",
            Action::SetPreferences => "set_preferences",
        }
    }
}

/// Any valid token passes the gateway: this service decides and audits refusals.
pub const ROUTES: &[RouteSpec] = &[RouteSpec::authenticated("/api/notifications")];

#[cfg(test)]
mod tests {
    use kit::RequestContext;

    use super::*;

    #[test]
    fn staff_may_and_billing_and_analysts_may_not() {
        let with = |role: Role| RequestContext::of("u", vec![role]);
        for action in [Action::ReadLog, Action::ReadPreferences, Action::SetPreferences] {
            for role in [Role::Admin, Role::Receptionist, Role::Clinician] {
                assert!(with(role).may(action));
            }
            assert!(!with(Role::Billing).may(action) && !with(Role::Analyst).may(action));
        }
    }
}
