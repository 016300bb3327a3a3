//! Request extractors that fail with problem+json naming the exact field.
//!
//! axum's own `Json` and `Query` rejections are plain text and stop at "failed to
//! deserialize". Front-desk software needs to know *which* field to highlight, so these
//! extractors keep serde's path to the error and turn it into a JSON pointer or parameter name.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Query, Request},
    http::{StatusCode, header, request::Parts},
};
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::problem::{FieldError, Problem, kinds};

/// A JSON request body of type `T`. Rejections: 415 without a JSON content type, 413 over the
/// body limit, 400 for malformed JSON, 422 for a wrong type, a missing or an unknown field.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

/// Why a request body was refused, already phrased as the answer (415, 413, 400 or 422).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BodyError(pub Problem);

impl From<BodyError> for Problem {
    fn from(err: BodyError) -> Problem {
        err.0
    }
}

impl axum::response::IntoResponse for BodyError {
    fn into_response(self) -> axum::response::Response {
        self.0.into_response()
    }
}

impl<T: DeserializeOwned> JsonBody<T> {
    /// Reads the body of `request` (for handlers that check the caller before reading it).
    pub async fn read(request: Request) -> Result<T, BodyError> {
        Ok(Self::from_request(request, &()).await?.0)
    }
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = BodyError;

    async fn from_request(req: Request, state: &S) -> Result<Self, BodyError> {
        Self::parse(req, state).await.map_err(BodyError)
    }
}

impl<T: DeserializeOwned> JsonBody<T> {
    async fn parse<S: Send + Sync>(req: Request, state: &S) -> Result<Self, Problem> {
        if !has_json_content_type(&req) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                kinds::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported media type",
            )
            .with_detail("send the body as JSON with `Content-Type: application/json`"));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(StatusCode::PAYLOAD_TOO_LARGE, kinds::PAYLOAD_TOO_LARGE, "Payload too large")
                    .with_detail("the request body exceeds the size limit")
            } else {
                Problem::malformed(rejection.body_text())
            }
        })?;
        parse_json(&bytes).map(JsonBody)
    }
}

fn has_json_content_type(req: &Request) -> bool {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses `bytes` as `T`, mapping every failure to a problem that names the field.
/// Request bodies are JSON objects; serde would otherwise read a struct from an array. No
/// string may hold a control character (an escaped `\u0000` included: PostgreSQL cannot
/// store it, and no field of this API needs one).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(Problem::validation(vec![FieldError::body("/", "must be a JSON object")]));
    }
    // JSON forbids raw control characters in strings; only a `\u00XX` escape makes one. The
    // scan is cheap; a body that has such an escape (`\u00e9` too) is looked at closely.
    if bytes.windows(4).any(|w| w == b"\\u00")
        && let Ok(value) = serde_json::from_slice::<serde_json::Value>(bytes)
        && let Some(pointer) = control_character_at(&value, String::new())
    {
        return Err(Problem::validation(vec![FieldError::body(
            pointer,
            "must not contain control characters",
        )]));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(value) => value,
        Err(err) => {
            let pointer = pointer_of(err.path());
            let inner = err.into_inner();
            return Err(match inner.classify() {
                Category::Data => {
                    let (pointer, detail) = describe_data_error(pointer, &inner);
                    Problem::validation(vec![FieldError::body(pointer, detail)])
                }
                Category::Syntax | Category::Eof | Category::Io => {
                    Problem::malformed(format!("the body is not valid JSON: {inner}"))
                }
            });
        }
    };
    de.end().map_err(|e| Problem::malformed(format!("the body is not valid JSON: {e}")))?;
    Ok(value)
}

/// The JSON pointer of the first string (member name or value) in `value` that holds a
/// control character.
fn control_character_at(value: &serde_json::Value, at: String) -> Option<String> {
    use serde_json::Value;
    let escape = |key: &str| key.replace('~', "~0").replace('/', "~1");
    match value {
        Value::String(text) => {
            text.chars().any(char::is_control).then(|| if at.is_empty() { "/".into() } else { at })
        }
        Value::Array(items) => {
            items.iter().enumerate().find_map(|(i, item)| control_character_at(item, format!("{at}/{i}")))
        }
        Value::Object(members) => members.iter().find_map(|(key, item)| {
            let pointer = format!("{at}/{}", escape(key));
            if key.chars().any(char::is_control) {
                Some(pointer)
            } else {
                control_character_at(item, pointer)
            }
        }),
        _ => None,
    }
}

fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
            Segment::Map { key } => {
                pointer.push('/');
                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
            }
            Segment::Enum { variant } => {
                pointer.push('/');
                pointer.push_str(variant);
            }
            Segment::Unknown => {}
        }
    }
    pointer
}

/// serde reports unknown and missing fields at the parent; point at the field itself.
fn describe_data_error(parent: String, err: &serde_json::Error) -> (String, String) {
    let message = err.to_string();
    let message = match message.find(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message,
    };
    let named = |prefix: &str| {
        message.strip_prefix(prefix).and_then(|rest| rest.split('`').next()).map(str::to_owned)
    };
    if let Some(field) = named("unknown field `") {
        // serde_path_to_error already appends the unknown key to the path.
        let pointer =
            if parent.ends_with(&format!("/{field}")) { parent } else { format!("{parent}/{field}") };
        return (pointer, "is not a known field".to_owned());
    }
    if let Some(field) = named("missing field `") {
        return (format!("{parent}/{field}"), "is required".to_owned());
    }
    let pointer = if parent.is_empty() { "/".to_owned() } else { parent };
    (pointer, message)
}

/// Query parameters of type `T` (use `#[serde(deny_unknown_fields)]` and `Option<String>`
/// fields, then validate); a parameter that cannot be read answers 422 naming it. Before `T`
/// sees them, every parameter is checked: valid UTF-8 once decoded, not blank (a parameter
/// without a value is left out, not sent empty), no control characters (PostgreSQL cannot even
/// store a NUL), at most [`MAX_PARAMETER_CHARS`] characters.
#[derive(Debug, Clone)]
pub struct QueryParams<T>(pub T);

/// Longest query parameter value accepted by any operation (most accept far less).
pub const MAX_PARAMETER_CHARS: usize = 1024;

/// The first problem with the decoded query `pairs`, if any.
fn check_parameters(pairs: &[(String, String)]) -> Option<FieldError> {
    pairs.iter().find_map(|(name, value)| {
        let name: String = name.chars().filter(|c| !c.is_control()).take(64).collect();
        if value.trim().is_empty() {
            Some(FieldError::parameter(name, "must not be empty; leave the parameter out instead"))
        } else if value.chars().any(char::is_control) {
            Some(FieldError::parameter(name, "must not contain control characters"))
        } else if value.chars().count() > MAX_PARAMETER_CHARS {
            Some(FieldError::parameter(name, format!("must be at most {MAX_PARAMETER_CHARS} characters")))
        } else {
            None
        }
    })
}

impl<S, T> FromRequestParts<S> for QueryParams<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        let pairs = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri).map_err(|_| {
            Problem::validation(vec![FieldError::parameter(
                "query",
                "is not valid UTF-8 once percent-decoded",
            )])
        })?;
        if let Some(error) = check_parameters(&pairs.0) {
            return Err(Problem::validation(vec![error]));
        }
        match Query::<T>::try_from_uri(&parts.uri) {
            Ok(Query(value)) => Ok(QueryParams(value)),
            Err(rejection) => {
                let text = rejection.body_text();
                let name = text
                    .split("unknown field `")
                    .nth(1)
                    .and_then(|rest| rest.split('`').next())
                    .unwrap_or("query");
                let detail = if name == "query" { text.clone() } else { "is not a known parameter".into() };
                Err(Problem::validation(vec![FieldError::parameter(name, detail)]))
            }
        }
    }
}

/// Declares the query parameters of a paged list: the struct as written, plus `limit` (1 to
/// 100, default 50) and `cursor` (the `nextCursor` of the previous page), with the derives and
/// serde settings [`QueryParams`] needs. Every paged list documents and reads them alike.
///
/// ```ignore
/// kit::paged_params! {
///     /// Filters of the list.
///     pub struct ListParams {}
/// }
/// ```
#[macro_export]
macro_rules! paged_params {
    ($(#[$meta:meta])* pub struct $name:ident { $($field:tt)* }) => {
        $(#[$meta])*
        #[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        #[into_params(parameter_in = Query)]
        pub struct $name {
            $($field)*
            /// Page size, 1 to 100 (default 50).
            #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
            pub limit: Option<String>,
            /// `nextCursor` of the previous page.
            #[param(min_length = 1)]
            pub cursor: Option<String>,
        }
    };
}

/// As [`paged_params!`], for a trail (an audit list): also `userId` (whose actions) and the
/// time range `from` (inclusive) and `to` (exclusive), RFC 3339 instants.
#[macro_export]
macro_rules! trail_params {
    ($(#[$meta:meta])* pub struct $name:ident { $($field:tt)* }) => {
        $crate::paged_params! {
            $(#[$meta])*
            pub struct $name {
                $($field)*
                /// Only entries of this user (the `sub` of their token).
                #[param(value_type = Option<uuid::Uuid>)]
                pub user_id: Option<String>,
                /// Only entries at or after this instant (RFC 3339).
                #[param(value_type = Option<String>, format = DateTime)]
                pub from: Option<String>,
                /// Only entries before this instant (RFC 3339).
                #[param(value_type = Option<String>, format = DateTime)]
                pub to: Option<String>,
            }
        }
    };
}

/// Reads a whole number written either way JSON allows (`470`, or `470.0`: JSON Schema's
/// `integer` accepts both) into any integer type it fits, for
/// `#[serde(deserialize_with = "kit::json::whole_number")]`.
pub fn whole_number<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i64>,
{
    use serde::{Deserialize, de::Error};
    let number = serde_json::Number::deserialize(deserializer)?;
    let whole = number
        .as_i64()
        .or_else(|| number.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64))
        .ok_or_else(|| D::Error::custom("must be a whole number"))?;
    T::try_from(whole).map_err(|_| D::Error::custom("is out of range"))
}

/// Most items a page may hold.
pub const MAX_PAGE_SIZE: u32 = 100;

/// Reads the `limit` query parameter: absent or blank gives `default`; anything but a whole
/// number from 1 to [`MAX_PAGE_SIZE`] adds an error (and gives `default`).
pub fn page_limit(raw: Option<&str>, default: u32, errors: &mut Vec<FieldError>) -> u32 {
    match raw.map(str::trim).filter(|r| !r.is_empty()).map(str::parse::<u32>) {
        None => default,
        Some(Ok(n)) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
        Some(_) => {
            errors.push(FieldError::parameter(
                "limit",
                format!("must be a whole number from 1 to {MAX_PAGE_SIZE}"),
            ));
            default
        }
    }
}

/// Reads an instant parameter (RFC 3339): absent or blank gives `None`; anything else that is
/// not one adds an error naming `name`.
pub fn instant_param(
    raw: Option<&str>,
    name: &str,
    errors: &mut Vec<FieldError>,
) -> Option<time::OffsetDateTime> {
    let raw = raw.map(str::trim).filter(|r| !r.is_empty())?;
    let parsed = time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339).ok();
    if parsed.is_none() {
        errors.push(FieldError::parameter(name, "must be an RFC 3339 instant such as 2026-01-31T08:00:00Z"));
    }
    parsed
}

/// Reads a UUID parameter: absent or blank gives `None`; anything else that is not one adds
/// an error naming `name`.
pub fn uuid_param(raw: Option<&str>, name: &str, errors: &mut Vec<FieldError>) -> Option<uuid::Uuid> {
    let raw = raw.map(str::trim).filter(|r| !r.is_empty())?;
    let parsed = uuid::Uuid::parse_str(raw).ok();
    if parsed.is_none() {
        errors.push(FieldError::parameter(name, "must be a UUID"));
    }
    parsed
}

/// Cuts `items`, fetched with one row more than `limit`, to the page, and returns the cursor
/// of its last item when that extra row shows there is a next page.
pub fn next_page<T, C>(items: &mut Vec<T>, limit: u32, cursor_of: impl FnOnce(&T) -> C) -> Option<C> {
    if items.len() <= limit as usize {
        return None;
    }
    items.truncate(limit as usize);
    items.last().map(cursor_of)
}

/// Where the next page of a list starts: the position of the last item returned (its sort
/// key), serialised and base64url-encoded. Every paged list uses this one type, so clients
/// see one opaque `nextCursor` shape and a cursor of one list never parses as another's.
pub struct Cursor;

impl Cursor {
    /// The text of the cursor at `position`.
    pub fn encode<T: serde::Serialize>(position: &T) -> String {
        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(position).unwrap_or_default())
    }

    /// The position in a cursor text, if it is one this API made for a list of `T`.
    pub fn decode<T: DeserializeOwned>(text: &str) -> Option<T> {
        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Reads the `cursor` query parameter: absent or blank gives `None`; one this API did not
    /// make adds an error.
    pub fn param<T: DeserializeOwned>(raw: Option<&str>, errors: &mut Vec<FieldError>) -> Option<T> {
        let raw = raw.map(str::trim).filter(|r| !r.is_empty())?;
        let position = Self::decode(raw);
        if position.is_none() {
            errors.push(FieldError::parameter("cursor", "is not a cursor this API returned"));
        }
        position
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Position {
        name: String,
        id: u32,
    }

    #[test]
    fn cursors_round_trip_and_reject_what_this_api_did_not_make() {
        let position = Position { name: "müller".into(), id: 7 };
        let text = Cursor::encode(&position);
        assert_eq!(Cursor::decode::<Position>(&text), Some(position));
        let mut errors = Vec::new();
        assert_eq!(Cursor::param::<Position>(Some("  "), &mut errors), None);
        assert!(errors.is_empty());
        assert_eq!(Cursor::param::<Position>(Some("not a cursor"), &mut errors), None);
        assert_eq!(Cursor::param::<Position>(Some(&Cursor::encode(&42)), &mut errors), None);
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].parameter.as_deref(), Some("cursor"));
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Person {
        given_name: String,
        address: Option<Address>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Address {
        line: Vec<String>,
    }

    fn only_error(p: &Problem) -> &FieldError {
        assert_eq!(p.errors.len(), 1, "{p:?}");
        &p.errors[0]
    }

    #[test]
    fn page_limits_are_whole_numbers_from_1_to_100() {
        let mut errors = Vec::new();
        assert_eq!(page_limit(None, 20, &mut errors), 20);
        assert_eq!(page_limit(Some(" "), 20, &mut errors), 20);
        assert_eq!(page_limit(Some("100"), 20, &mut errors), 100);
        assert!(errors.is_empty());
        for bad in ["0", "101", "-1", "ten"] {
            assert_eq!(page_limit(Some(bad), 20, &mut errors), 20);
        }
        assert_eq!(errors.len(), 4);
    }

    #[test]
    fn a_next_page_exists_only_when_the_extra_row_came() {
        let mut full = vec![1, 2, 3];
        assert_eq!(next_page(&mut full, 2, |last| *last), Some(2));
        assert_eq!(full, [1, 2]);
        let mut last_page = vec![1, 2];
        assert_eq!(next_page(&mut last_page, 2, |last| *last), None);
        assert_eq!(last_page, [1, 2]);
    }

    #[test]
    fn malformed_json_is_400() {
        let p = parse_json::<Person>(b"{\"givenName\": ").expect_err("fails");
        assert_eq!(p.status, 400);
        let p = parse_json::<Person>(b"{\"givenName\": \"a\"} trailing").expect_err("fails");
        assert_eq!(p.status, 400);
    }

    #[test]
    fn wrong_types_point_at_the_nested_field() {
        let p = parse_json::<Person>(br#"{"givenName":"a","address":{"line":["x", 3]}}"#).expect_err("fails");
        assert_eq!(p.status, 422);
        assert_eq!(only_error(&p).pointer.as_deref(), Some("/address/line/1"));
    }

    #[test]
    fn unknown_and_missing_fields_point_at_the_field_itself() {
        let p = parse_json::<Person>(br#"{"givenName":"a","shoeSize":44}"#).expect_err("fails");
        assert_eq!(only_error(&p).pointer.as_deref(), Some("/shoeSize"));
        assert_eq!(only_error(&p).detail, "is not a known field");
        let p = parse_json::<Person>(br#"{"address":{"line":[]}}"#).expect_err("fails");
        assert_eq!(only_error(&p).pointer.as_deref(), Some("/givenName"));
        assert_eq!(only_error(&p).detail, "is required");
    }

    #[test]
    fn control_characters_in_any_string_are_refused_with_their_pointer() {
        let p = parse_json::<Person>(br#"{"givenName":"a\u0000b"}"#).expect_err("NUL");
        assert_eq!(p.status, 422);
        assert_eq!(only_error(&p).pointer.as_deref(), Some("/givenName"));
        let p = parse_json::<Person>(br#"{"givenName":"a","address":{"line":["ok","\u001b[2J"]}}"#)
            .expect_err("escape");
        assert_eq!(only_error(&p).pointer.as_deref(), Some("/address/line/1"));
        // Escaped letters are fine, and so is a backslash followed by "u0000" as text.
        let person = parse_json::<Person>(br#"{"givenName":"Ren\u00e9e \\u0000"}"#).expect("valid");
        assert_eq!(person.given_name, "Ren\u{e9}e \\u0000");
    }

    #[test]
    fn query_parameters_must_be_short_and_free_of_control_characters() {
        let pair = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
        assert!(check_parameters(&pair("name", "anna")).is_none());
        let error = check_parameters(&pair("email", "a\0b")).expect("NUL");
        assert_eq!(error.parameter.as_deref(), Some("email"));
        assert!(check_parameters(&pair("name", &"x".repeat(10_000))).is_some());
        assert!(check_parameters(&pair("birthDate", "")).is_some(), "an empty value is no value");
    }

    #[test]
    fn a_body_that_is_not_an_object_is_a_validation_error_at_the_root() {
        let p = parse_json::<Person>(b"[1,2]").expect_err("fails");
        assert_eq!(p.status, 422);
        assert_eq!(only_error(&p).pointer.as_deref(), Some("/"));
    }
}
