//! Who is calling: roles ([`roles`]), access token claims and the 401/403 answers
//! ([`tokens`]), and verifying tokens against the auth service's keys ([`verifier`]). Signing
//! belongs to the auth service alone; every other service only verifies.

pub mod roles;
pub mod tokens;
pub mod verifier;

pub use roles::{Access, Action, Role, RouteSpec};
pub use tokens::{Claims, Forbidden, TokenError, TokenSettings, bearer, forbidden, unauthorized};
pub use verifier::{KeySource, LEEWAY_SECONDS, Revocations, Verifier, VerifierConfig};
