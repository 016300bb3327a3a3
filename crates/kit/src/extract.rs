//! Small pieces of HTTP every resource API needs: the id in the path, and the version in
//! `If-Match` / `ETag` (optimistic concurrency).

use axum::{
    extract::{FromRequestParts, Path},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
};
use uuid::Uuid;

use crate::problem::{Problem, kinds};

/// A resource id in the path (`/{id}`): a UUID, as the resource's own id type (`PatientId`,
/// `UserId`), or 400 naming the parameter `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathId<T = Uuid>(pub T);

impl<S: Send + Sync, T: From<Uuid>> FromRequestParts<S> for PathId<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let malformed = || Problem::malformed_parameter("id", "must be a UUID");
        let Path(raw) = Path::<String>::from_request_parts(parts, state).await.map_err(|_| malformed())?;
        Uuid::parse_str(&raw).map(|id| PathId(T::from(id))).map_err(|_| malformed())
    }
}

/// Why `If-Match` does not allow the change to be tried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreconditionError {
    /// No `If-Match`, or `If-Match: *`, which names no version.
    #[error("If-Match naming the version read is required")]
    Required,
    /// Not a strong ETag this API returned (weak tags never match: RFC 9110 §13.1.1), so it
    /// cannot name the version read either.
    #[error("If-Match is not an ETag this API returned")]
    Malformed,
}

impl From<PreconditionError> for Problem {
    fn from(err: PreconditionError) -> Problem {
        match err {
            PreconditionError::Required => Problem::new(
                StatusCode::PRECONDITION_REQUIRED,
                kinds::PRECONDITION_REQUIRED,
                "If-Match required",
            )
            .with_detail(
                "send the ETag of the version you read as If-Match (such as \"3\"; `*` names no version), \
                 so that concurrent edits are not lost",
            ),
            PreconditionError::Malformed => Problem::new(
                StatusCode::PRECONDITION_REQUIRED,
                kinds::PRECONDITION_REQUIRED,
                "If-Match required",
            )
            .with_detail(
                "If-Match must be a strong ETag this API returned, such as \"3\" (weak tags never match)",
            ),
        }
    }
}

/// The version named by `If-Match`, which every update and delete must send: the change is
/// made only if the record is still at that version. `*` (any version) and weak tags do not
/// skip that check: they are refused.
pub fn if_match(headers: &HeaderMap) -> Result<i32, PreconditionError> {
    let value = headers.get(header::IF_MATCH).ok_or(PreconditionError::Required)?;
    let text = value.to_str().unwrap_or("").trim();
    if text == "*" {
        return Err(PreconditionError::Required);
    }
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .and_then(|t| t.parse::<i32>().ok())
        .filter(|version| *version >= 1)
        .ok_or(PreconditionError::Malformed)
}

/// The `ETag` of a version.
pub fn etag(version: i32) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// Lets handlers extract parts of a service's state: `kit::state_parts!(BillingState {
/// accounts: AccountRepository, verifier: Verifier })` implements `FromRef<BillingState>` for
/// each named type by cloning its field (what [`crate::RequestContext`] needs: `Verifier` and
/// `TrustedProxies`; and what handlers take with `State<...>`).
#[macro_export]
macro_rules! state_parts {
    ($state:ty { $($field:ident: $part:ty),+ $(,)? }) => {
        $(
            impl ::axum::extract::FromRef<$state> for $part {
                fn from_ref(state: &$state) -> Self {
                    state.$field.clone()
                }
            }
        )+
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::IF_MATCH, HeaderValue::from_str(value).expect("header"));
        h
    }

    #[test]
    fn if_match_must_name_a_version_with_a_strong_tag() {
        assert_eq!(if_match(&headers("\"3\"")), Ok(3));
        assert_eq!(if_match(&headers(" \"3\" ")), Ok(3));
        assert_eq!(if_match(&headers("W/\"4\"")), Err(PreconditionError::Malformed));
        assert_eq!(if_match(&headers("*")), Err(PreconditionError::Required));
        assert_eq!(if_match(&HeaderMap::new()), Err(PreconditionError::Required));
        assert_eq!(if_match(&headers("3")), Err(PreconditionError::Malformed));
        assert_eq!(if_match(&headers("\"0\"")), Err(PreconditionError::Malformed));
        assert_eq!(Problem::from(PreconditionError::Malformed).status, 428);
        assert_eq!(etag(7), "\"7\"");
    }
}
