//! Roles, and who may call a route: what every service's policy module is written in.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a user may do; see docs/security.md for the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including user administration and the audit trail.
    Admin,
    /// Registers and edits patients, books appointments.
    Receptionist,
    /// Reads patients, manages appointments.
    Clinician,
    /// Billing data.
    Billing,
    /// Aggregated analytics only, no patient-identifying data.
    Analyst,
}

impl Role {
    pub const ALL: [Role; 5] =
        [Role::Admin, Role::Receptionist, Role::Clinician, Role::Billing, Role::Analyst];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Receptionist => "receptionist",
            Role::Clinician => "clinician",
            Role::Billing => "billing",
            Role::Analyst => "analyst",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// Who may call a route at the gateway (the coarse check; services decide per operation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// No token needed (login, refresh, keys).
    Public,
    /// Any valid access token; the service decides per operation (and audits its refusals).
    Authenticated,
    /// A valid access token with one of these roles.
    Roles(Vec<Role>),
}

/// The actions of one service, each with the roles that may do it: a service's `policy`
/// module implements this for its own action enum, so its role matrix lives in one place.
pub trait Action: Copy + std::fmt::Debug {
    /// Roles that may do this action (any one of them suffices).
    fn allowed(self) -> &'static [Role];
    /// A stable name (audit rows, logs).
    fn as_str(self) -> &'static str;
}

/// A path prefix a service serves publicly and who may call it there. The gateway's route
/// table is made of these, so the gateway's coarse check is written by the service that owns
/// the routes, beside its own policy.
#[derive(Debug, Clone, Copy)]
pub struct RouteSpec {
    pub prefix: &'static str,
    /// `None`: no token needed. `Some(&[])`: any valid token. Otherwise one of these roles.
    pub roles: Option<&'static [Role]>,
}

impl RouteSpec {
    pub const fn public(prefix: &'static str) -> Self {
        Self { prefix, roles: None }
    }

    pub const fn authenticated(prefix: &'static str) -> Self {
        Self { prefix, roles: Some(&[]) }
    }

    pub const fn roles(prefix: &'static str, roles: &'static [Role]) -> Self {
        Self { prefix, roles: Some(roles) }
    }

    pub fn access(&self) -> Access {
        match self.roles {
            None => Access::Public,
            Some([]) => Access::Authenticated,
            Some(roles) => Access::Roles(roles.to_vec()),
        }
    }
}
