//! Who may do what in the auth service, in one place, and the routes the gateway forwards
//! here with its coarse check (docs/security.md shows the same table).

use kit::auth::{Role, RouteSpec};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Create, list, read and change users and their roles.
    ManageUsers,
    /// Change one's own password (any signed-in user).
    ChangeOwnPassword,
    /// Read the auth audit trail.
    ReadAuthTrail,
    /// Look up colleagues' display names by user id (any signed-in user: a record's history
    /// and audit trail name their authors by id).
    ReadColleagueNames,
}

const ADMINS: &[Role] = &[Role::Admin];

impl kit::auth::Action for Action {
    fn allowed(self) -> &'static [Role] {
        match self {
            Action::ManageUsers | Action::ReadAuthTrail => ADMINS,
            Action::ChangeOwnPassword | Action::ReadColleagueNames => &Role::ALL,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Action::ManageUsers => "manage_users",
            Action::ChangeOwnPassword => "change_own_password",
            Action::ReadAuthTrail => "read_auth_trail",
            Action::ReadColleagueNames => "read_colleague_names",
        }
    }
}

/// Logging in, refreshing and the keys need no token; `/api/users/me` and
/// `/api/users/names` any valid token; the rest of `/api/users` the roles of
/// [`Action::ManageUsers`].
pub const ROUTES: &[RouteSpec] = &[
    RouteSpec::public("/auth"),
    RouteSpec::public("/.well-known"),
    RouteSpec::authenticated("/api/users/me"),
    RouteSpec::authenticated("/api/users/names"),
    RouteSpec::roles("/api/users", ADMINS),
    RouteSpec::roles("/api/auth-events", ADMINS),
];

#[cfg(test)]
mod tests {
    use kit::auth::Action as _;

    use super::*;

    #[test]
    fn the_gateway_check_never_contradicts_the_matrix() {
        let users = ROUTES.iter().find(|r| r.prefix == "/api/users").expect("route");
        assert_eq!(users.roles, Some(Action::ManageUsers.allowed()));
        let trail = ROUTES.iter().find(|r| r.prefix == "/api/auth-events").expect("route");
        assert_eq!(trail.roles, Some(Action::ReadAuthTrail.allowed()));
        let me = ROUTES.iter().find(|r| r.prefix == "/api/users/me").expect("route");
        assert_eq!(me.roles, Some(&[][..]));
        assert!(Role::ALL.iter().all(|r| Action::ChangeOwnPassword.allowed().contains(r)));
        let names = ROUTES.iter().find(|r| r.prefix == "/api/users/names").expect("route");
        assert_eq!(names.roles, Some(&[][..]));
        assert!(Role::ALL.iter().all(|r| Action::ReadColleagueNames.allowed().contains(r)));
    }
}
