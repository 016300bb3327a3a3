//! Answers many operations share, for `#[utoipa::path(responses(...))]`, so every service
//! documents them alike: each is an RFC 9457 problem document. An operation lists its own
//! answers (200, 404, 409, ...) beside these.

use utoipa::IntoResponses;

use crate::Problem;

/// 401: no valid access token.
#[derive(IntoResponses)]
#[response(
    status = 401,
    description = "No valid access token (missing, expired or badly signed)",
    content_type = "application/problem+json"
)]
pub struct Unauthorized(pub Problem);

/// 403: the caller's roles do not allow the operation.
#[derive(IntoResponses)]
#[response(
    status = 403,
    description = "Your roles do not allow this",
    content_type = "application/problem+json"
)]
pub struct Forbidden(pub Problem);

/// 400: a path id that is not a UUID.
#[derive(IntoResponses)]
#[response(status = 400, description = "The id is not a UUID", content_type = "application/problem+json")]
pub struct MalformedId(pub Problem);

/// 422: query parameters that are not acceptable, each named in `errors`.
#[derive(IntoResponses)]
#[response(
    status = 422,
    description = "Invalid parameters, listed in `errors`",
    content_type = "application/problem+json"
)]
pub struct InvalidParameters(pub Problem);

/// How a JSON request body can be refused.
#[derive(IntoResponses)]
pub enum BodyRefused {
    #[response(status = 400, description = "Malformed JSON", content_type = "application/problem+json")]
    Malformed(Problem),
    #[response(
        status = 413,
        description = "Body over the size limit",
        content_type = "application/problem+json"
    )]
    TooLarge(Problem),
    #[response(status = 415, description = "Not JSON", content_type = "application/problem+json")]
    NotJson(Problem),
    #[response(
        status = 422,
        description = "Invalid fields, listed in `errors`",
        content_type = "application/problem+json"
    )]
    Invalid(Problem),
}

/// How a conditional change (`If-Match`, see [`crate::extract::if_match`]) can be refused.
#[derive(IntoResponses)]
pub enum PreconditionRefused {
    #[response(
        status = 412,
        description = "The record changed since it was read",
        content_type = "application/problem+json"
    )]
    Stale(Problem),
    #[response(
        status = 428,
        description = "If-Match is missing, `*`, weak or not an ETag this API returned",
        content_type = "application/problem+json"
    )]
    Required(Problem),
}
