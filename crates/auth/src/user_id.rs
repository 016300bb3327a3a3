//! The id of a user: a type of its own, so it is never taken for another id.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A user's id (a UUIDv7); the `sub` of the user's access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct UserId(Uuid);

impl UserId {
    /// A new id, for a new user.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// The user a token's subject names, if it names one at all.
    pub fn parse(text: &str) -> Option<Self> {
        Uuid::parse_str(text).ok().map(Self)
    }
}

impl From<Uuid> for UserId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

impl From<UserId> for Uuid {
    fn from(id: UserId) -> Self {
        id.0
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Default for UserId {
    fn default() -> Self {
        Self::new()
    }
}
