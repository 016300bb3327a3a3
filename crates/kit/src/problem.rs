//! RFC 9457 problem details: the one shape every error takes when it leaves a service.
//!
//! A problem has a stable `type` (a URN clients can switch on), a human `title`, the HTTP
//! `status`, an optional `detail`, and for validation failures a list of `errors`, one per
//! offending field, each naming the field by JSON pointer (body) or by parameter name
//! (path, query, header). Internal errors are logged here and never described to the client.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const CONTENT_TYPE: &str = "application/problem+json";

/// Stable problem types. Clients switch on these, so they never change meaning.
pub mod kinds {
    pub const MALFORMED_REQUEST: &str = "urn:pms:problem:malformed-request";
    pub const UNAUTHORIZED: &str = "urn:pms:problem:unauthorized";
    pub const FORBIDDEN: &str = "urn:pms:problem:forbidden";
    pub const TOO_MANY_REQUESTS: &str = "urn:pms:problem:too-many-requests";
    pub const BAD_GATEWAY: &str = "urn:pms:problem:bad-gateway";
    pub const GATEWAY_TIMEOUT: &str = "urn:pms:problem:gateway-timeout";
    pub const VALIDATION: &str = "urn:pms:problem:validation";
    pub const NOT_FOUND: &str = "urn:pms:problem:not-found";
    pub const GONE: &str = "urn:pms:problem:gone";
    pub const CONFLICT: &str = "urn:pms:problem:conflict";
    pub const PRECONDITION_FAILED: &str = "urn:pms:problem:precondition-failed";
    pub const PRECONDITION_REQUIRED: &str = "urn:pms:problem:precondition-required";
    pub const PAYLOAD_TOO_LARGE: &str = "urn:pms:problem:payload-too-large";
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "urn:pms:problem:unsupported-media-type";
    pub const METHOD_NOT_ALLOWED: &str = "urn:pms:problem:method-not-allowed";
    pub const UNAVAILABLE: &str = "urn:pms:problem:unavailable";
    pub const TIMEOUT: &str = "urn:pms:problem:timeout";
    pub const INTERNAL: &str = "urn:pms:problem:internal";
}

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldError {
    /// JSON pointer (RFC 6901) to the offending member of the request body, e.g. `/address/city`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// Name of the offending path, query or header parameter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
    /// What is wrong, in words a person can act on.
    pub detail: String,
}

/// Text an answer may carry: no control characters (they become U+FFFD, so a member name a
/// client made up is named without echoing what it smuggled in), at most 500 characters.
fn printable(text: String) -> String {
    if text.len() <= 500 && !text.chars().any(char::is_control) {
        return text;
    }
    text.chars().take(500).map(|c| if c.is_control() { '\u{FFFD}' } else { c }).collect()
}

impl FieldError {
    /// An error in the request body; `pointer` is a JSON pointer such as `/givenName`.
    pub fn body(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        Self { pointer: Some(printable(pointer.into())), parameter: None, detail: printable(detail.into()) }
    }

    /// An error in a path, query or header parameter.
    pub fn parameter(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self { pointer: None, parameter: Some(printable(name.into())), detail: printable(detail.into()) }
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// A URN naming the kind of problem; stable across releases.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// One entry per invalid field, for validation problems.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Seconds after which a retry may succeed (sent as `Retry-After`).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl Problem {
    pub fn new(status: StatusCode, kind: &str, title: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: None,
            errors: Vec::new(),
            retry_after: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(printable(detail.into()));
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// 400: the request cannot be read at all (malformed JSON, a malformed identifier).
    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, kinds::MALFORMED_REQUEST, "Malformed request").with_detail(detail)
    }

    /// 400 naming the parameter that could not be read.
    pub fn malformed_parameter(name: &str, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        let mut p = Self::malformed(format!("parameter `{name}`: {detail}"));
        p.errors.push(FieldError::parameter(name, detail));
        p
    }

    /// 422: the request was read but some values are not acceptable.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let mut p =
            Self::new(StatusCode::UNPROCESSABLE_ENTITY, kinds::VALIDATION, "The request has invalid fields");
        p.detail = Some(match errors.len() {
            1 => "1 field is invalid; see `errors`".to_owned(),
            n => format!("{n} fields are invalid; see `errors`"),
        });
        p.errors = errors;
        p
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, kinds::NOT_FOUND, "Not found").with_detail(detail)
    }

    pub fn gone(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, kinds::GONE, "Gone").with_detail(detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, kinds::CONFLICT, "Conflict").with_detail(detail)
    }

    /// 503: a dependency is down or the service is overloaded; retrying later may work.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, kinds::UNAVAILABLE, "Service unavailable")
            .with_detail(detail)
            .with_retry_after(1)
    }

    /// 500 for a failure the client cannot fix. The cause is logged, never sent.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, kinds::INTERNAL, "Internal error")
            .with_detail("The error was logged; retrying will not help until it is fixed.")
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let retry_after = self.retry_after;
        let mut response = (status, Json(self)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.title)?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problem {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_problems_list_each_field_and_use_422() {
        let p = Problem::validation(vec![
            FieldError::body("/givenName", "must not be empty"),
            FieldError::parameter("limit", "must be at most 100"),
        ]);
        assert_eq!(p.status_code(), StatusCode::UNPROCESSABLE_ENTITY);
        let json = serde_json::to_value(&p).expect("serializes");
        assert_eq!(json["type"], kinds::VALIDATION);
        assert_eq!(json["errors"][0]["pointer"], "/givenName");
        assert_eq!(json["errors"][1]["parameter"], "limit");
        assert!(json["errors"][0].get("parameter").is_none());
    }

    #[test]
    fn answers_never_echo_control_characters() {
        let e = FieldError::body("/a\u{0}b", "bad\u{1b}[2J");
        assert_eq!(e.pointer.as_deref(), Some("/a\u{FFFD}b"));
        assert!(!e.detail.chars().any(char::is_control));
        let p = Problem::malformed("x\u{7}".repeat(400));
        let detail = p.detail.unwrap_or_default();
        assert!(detail.chars().count() <= 500 && !detail.chars().any(char::is_control));
    }

    #[test]
    fn responses_carry_the_problem_media_type_and_retry_after() {
        let response = Problem::unavailable("database is down").into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
}
