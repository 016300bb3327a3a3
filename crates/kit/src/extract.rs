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
    #[error("If-Match is required")]
    Required,
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
                "send the ETag of the version you read as If-Match, so that concurrent edits are not lost",
            ),
            PreconditionError::Malformed => Problem::new(
                StatusCode::PRECONDITION_FAILED,
                kinds::PRECONDITION_FAILED,
                "The record has changed",
            )
            .with_detail("If-Match must be an ETag this API returned, such as \"3\""),
        }
    }
}

/// The version named by `If-Match`: `Ok(None)` for `*` (any version) or, when not
/// `required`, for no header.
pub fn if_match(headers: &HeaderMap, required: bool) -> Result<Option<i32>, PreconditionError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return if required { Err(PreconditionError::Required) } else { Ok(None) };
    };
    let text = value.to_str().unwrap_or("").trim();
    if text == "*" {
        return Ok(None);
    }
    let tag = text.strip_prefix("W/").unwrap_or(text);
    tag.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .and_then(|t| t.parse::<i32>().ok())
        .map(Some)
        .ok_or(PreconditionError::Malformed)
}

/// The `ETag` of a version.
pub fn etag(version: i32) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
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
    fn if_match_reads_strong_weak_and_star() {
        assert_eq!(if_match(&headers("\"3\""), true), Ok(Some(3)));
        assert_eq!(if_match(&headers("W/\"4\""), true), Ok(Some(4)));
        assert_eq!(if_match(&headers("*"), true), Ok(None));
        assert_eq!(if_match(&HeaderMap::new(), true), Err(PreconditionError::Required));
        assert_eq!(if_match(&HeaderMap::new(), false), Ok(None));
        assert_eq!(if_match(&headers("3"), true), Err(PreconditionError::Malformed));
        assert_eq!(Problem::from(PreconditionError::Malformed).status, 412);
        assert_eq!(etag(7), "\"7\"");
    }
}
