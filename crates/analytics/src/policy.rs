//! Who may read analytics: analysts and admins; the aggregates identify nobody.

use kit::auth::{Role, RouteSpec};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ReadSummary,
}

const READERS: &[Role] = &[Role::Admin, Role::Analyst];

impl kit::auth::Action for Action {
    fn allowed(self) -> &'static [Role] {
        READERS
    }

    fn as_str(self) -> &'static str {
        "read_summary"
    }
}

pub const ROUTES: &[RouteSpec] = &[RouteSpec::roles("/api/analytics", READERS)];
