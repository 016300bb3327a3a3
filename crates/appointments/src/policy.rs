//! Who may do what in the appointments service, in one place (docs/security.md shows the same
//! table), and the routes the gateway forwards here.

use kit::auth::{Role, RouteSpec};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Add and change practitioners, their hours and exceptions, and appointment types.
    ManageSchedules,
    /// Read practitioners, their hours, availability and appointment types.
    ReadSchedules,
    Book,
    /// Reschedule, cancel, check in, complete, mark no-show.
    Manage,
    Read,
    List,
}

/// The people who book and run the day: front desk and clinicians (and admins).
const STAFF: &[Role] = &[Role::Admin, Role::Receptionist, Role::Clinician];
const ADMINS: &[Role] = &[Role::Admin];

impl kit::auth::Action for Action {
    fn allowed(self) -> &'static [Role] {
        match self {
            Action::ManageSchedules => ADMINS,
            _ => STAFF,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Action::ManageSchedules => "manage_schedules",
            Action::ReadSchedules => "read_schedules",
            Action::Book => "book",
            Action::Manage => "manage",
            Action::Read => "read",
            Action::List => "list",
        }
    }
}

/// Any valid token passes the gateway: this service decides per action and audits refusals.
pub const ROUTES: &[RouteSpec] = &[
    RouteSpec::authenticated("/api/practitioners"),
    RouteSpec::authenticated("/api/appointments"),
    RouteSpec::authenticated("/api/appointment-types"),
];

#[cfg(test)]
mod tests {
    use kit::RequestContext;

    use super::*;

    #[test]
    fn the_role_matrix() {
        use Action::*;
        let with = |roles: &[Role]| RequestContext::of("u", roles.to_vec());
        let staff_actions = [ReadSchedules, Book, Manage, Read, List];
        for role in [Role::Admin, Role::Receptionist, Role::Clinician] {
            assert!(staff_actions.iter().all(|&a| with(&[role]).may(a)), "{role:?}");
        }
        assert!(with(&[Role::Admin]).may(ManageSchedules));
        assert!(!with(&[Role::Receptionist, Role::Clinician]).may(ManageSchedules));
        for role in [Role::Billing, Role::Analyst] {
            assert!(
                ![ManageSchedules, ReadSchedules, Book, Manage, Read, List]
                    .iter()
                    .any(|&a| with(&[role]).may(a))
            );
        }
    }
}
