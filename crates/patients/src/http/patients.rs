//! The patient records API under `/api/patients`, read top to bottom: register, search,
//! read, update, deactivate, history.

use axum::{
    Json,
    extract::{Request, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use kit::{
    FieldError, Problem, RequestContext,
    email::Email,
    extract::{PathId, etag, if_match},
    json::{Cursor, JsonBody, QueryParams},
    openapi::{BodyRefused, Forbidden, InvalidParameters, MalformedId, PreconditionRefused, Unauthorized},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{draft, location, present, with_etag};
use crate::{
    access::PatientAccess,
    domain::{Patient, PatientId, PatientInput, Phone, parse_date},
    error::{Error, Result},
    mrn::Mrn,
    names::NameQuery,
    policy::Action,
    records::PatientVersion,
    search::{Position, SearchFilter},
};

pub const DEFAULT_PAGE_SIZE: u32 = 20;
const MAX_NAME_QUERY_CHARS: usize = 200;

/// Register a patient.
#[utoipa::path(
    post, path = "/api/patients", tag = "patients",
    request_body = PatientInput,
    responses(
        (status = 201, description = "Registered", body = Patient,
         headers(("Location" = String, description = "URL of the new record"), ("ETag" = String, description = "Its version"))),
        (status = 409, description = "The email belongs to another active patient", body = Problem, content_type = "application/problem+json"),
        BodyRefused, Unauthorized, Forbidden,
    )
)]
pub async fn register(
    State(access): State<PatientAccess>,
    ctx: RequestContext,
    request: Request,
) -> Result<Response> {
    access.authorize(&ctx, Action::Create, None).await?;
    let draft = draft(request).await?;
    let patient = access.register(&ctx, draft).await?;
    let headers = [(header::LOCATION, location(patient.id)), (header::ETAG, etag(patient.version))];
    Ok((StatusCode::CREATED, headers, Json(patient)).into_response())
}

/// Search parameters. Every given filter must match.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Given or family name, or both ("anna müller"): case, accents and one typo per word are
    /// forgiven; a word may be the start of a name.
    #[param(min_length = 1, max_length = 200)]
    name: Option<String>,
    /// `YYYY-MM-DD`.
    #[param(value_type = Option<String>, format = Date)]
    birth_date: Option<String>,
    /// Medical record number: 9 digits, the last a check digit (a mistyped one answers 422).
    #[param(pattern = "^[0-9]{9}$")]
    mrn: Option<String>,
    /// Exact email, ignoring case.
    #[param(value_type = Option<String>, format = Email, max_length = 254)]
    email: Option<String>,
    /// Exact phone number (E.164; separators ignored).
    #[param(pattern = r"^\s*[ ().-]*\+[ ().-]*[1-9]([ ().-]*[0-9]){6,14}[ ().-]*\s*$")]
    phone: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// `nextCursor` of the previous page.
    #[param(min_length = 1)]
    cursor: Option<String>,
}

/// A page of search results.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatientPage {
    /// The matches, best first.
    pub patients: Vec<Patient>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn parse_search(params: SearchParams) -> Result<(SearchFilter, u32, Option<Position>)> {
    let mut errors = Vec::new();
    let mut filter = SearchFilter::default();
    if let Some(name) = present(params.name) {
        if name.chars().count() > MAX_NAME_QUERY_CHARS {
            errors.push(FieldError::parameter(
                "name",
                format!("must be at most {MAX_NAME_QUERY_CHARS} characters"),
            ));
        } else {
            match NameQuery::parse(&name) {
                Ok(query) => filter.name = Some(query),
                Err(detail) => errors.push(FieldError::parameter("name", detail)),
            }
        }
    }
    if let Some(date) = present(params.birth_date) {
        match parse_date(&date) {
            Ok(date) => filter.birth_date = Some(date),
            Err(detail) => errors.push(FieldError::parameter("birthDate", detail)),
        }
    }
    if let Some(mrn) = present(params.mrn) {
        match Mrn::parse(&mrn) {
            Ok(mrn) => filter.mrn = Some(mrn),
            Err(err) => errors.push(FieldError::parameter("mrn", err.to_string())),
        }
    }
    if let Some(email) = present(params.email) {
        match Email::parse(&email) {
            Ok(email) => filter.email = Some(email.key().to_owned()),
            Err(detail) => errors.push(FieldError::parameter("email", detail)),
        }
    }
    if let Some(phone) = present(params.phone) {
        match Phone::parse(&phone) {
            Ok(phone) => filter.phone = Some(phone),
            Err(detail) => errors.push(FieldError::parameter("phone", detail)),
        }
    }
    let limit = kit::json::page_limit(params.limit.as_deref(), DEFAULT_PAGE_SIZE, &mut errors);
    let cursor = Cursor::param(params.cursor.as_deref(), &mut errors);
    if errors.is_empty() { Ok((filter, limit, cursor)) } else { Err(Error::Invalid(errors)) }
}

/// Search active patients.
///
/// A one-word name ranks family name equal, given name equal, family name starting with it,
/// given name starting with it, then names with a word that starts with it or is one typo away
/// (family before given). Several words must all match: a family name that is exactly the
/// words first ("van dijk": Anna Van Dijk), then all words whole, all prefixes, a family name
/// matching every word with at most one typo, the rest. Otherwise results are ordered by
/// family then given name. Pages follow `nextCursor`.
#[utoipa::path(
    get, path = "/api/patients", tag = "patients",
    params(SearchParams),
    responses(
        (status = 200, description = "One page of matches", body = PatientPage),
        InvalidParameters, Unauthorized, Forbidden,
    )
)]
pub async fn search(
    State(access): State<PatientAccess>,
    ctx: RequestContext,
    QueryParams(params): QueryParams<SearchParams>,
) -> Result<Json<PatientPage>> {
    access.authorize(&ctx, Action::Search, None).await?;
    let (filter, limit, after) = parse_search(params)?;
    let page = access.search(&ctx, &filter, limit, after.as_ref()).await?;
    Ok(Json(PatientPage { patients: page.items, next_cursor: page.next.as_ref().map(Cursor::encode) }))
}

/// A search sent in the request body: the same filters as the query parameters of
/// `GET /api/patients`, kept out of the URL (where proxies and load balancers log them).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SearchRequest {
    /// Given or family name, or both ("anna müller"): case, accents and one typo per word are
    /// forgiven; a word may be the start of a name.
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    /// `YYYY-MM-DD`.
    #[schema(format = Date)]
    pub birth_date: Option<String>,
    /// Medical record number: 9 digits, the last a check digit (a mistyped one answers 422).
    #[schema(pattern = "^[0-9]{9}$")]
    pub mrn: Option<String>,
    /// Exact email, ignoring case.
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
    /// Exact phone number (E.164; separators ignored).
    #[schema(pattern = r"^\s*[ ().-]*\+[ ().-]*[1-9]([ ().-]*[0-9]){6,14}[ ().-]*\s*$")]
    pub phone: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[schema(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page.
    #[schema(min_length = 1)]
    pub cursor: Option<String>,
}

/// Search active patients, with the filters in the body (the way to search: names, birth
/// dates and contacts stay out of URLs and the logs of every proxy on the way).
///
/// Ranking and paging as for `GET /api/patients`; invalid filters are named by JSON pointer.
#[utoipa::path(
    post, path = "/api/patients/search", tag = "patients",
    request_body = SearchRequest,
    responses(
        (status = 200, description = "One page of matches", body = PatientPage),
        BodyRefused, Unauthorized, Forbidden,
    )
)]
pub async fn search_by_body(
    State(access): State<PatientAccess>,
    ctx: RequestContext,
    request: Request,
) -> Result<Json<PatientPage>> {
    access.authorize(&ctx, Action::Search, None).await?;
    let body: SearchRequest = JsonBody::read(request).await?;
    let blank: Vec<FieldError> = [
        ("/name", &body.name),
        ("/birthDate", &body.birth_date),
        ("/mrn", &body.mrn),
        ("/email", &body.email),
        ("/phone", &body.phone),
        ("/cursor", &body.cursor),
    ]
    .into_iter()
    .filter(|(_, value)| value.as_deref().is_some_and(|v| v.trim().is_empty()))
    .map(|(pointer, _)| FieldError::body(pointer, "must not be empty; leave the member out instead"))
    .collect();
    if !blank.is_empty() {
        return Err(Error::Invalid(blank));
    }
    let params = SearchParams {
        name: body.name,
        birth_date: body.birth_date,
        mrn: body.mrn,
        email: body.email,
        phone: body.phone,
        limit: body.limit.map(|l| l.to_string()),
        cursor: body.cursor,
    };
    let (filter, limit, after) = parse_search(params).map_err(|err| match err {
        // The same checks as for query parameters, named as body members.
        Error::Invalid(errors) => Error::Invalid(
            errors
                .into_iter()
                .map(|e| FieldError::body(format!("/{}", e.parameter.unwrap_or_default()), e.detail))
                .collect(),
        ),
        other => other,
    })?;
    let page = access.search(&ctx, &filter, limit, after.as_ref()).await?;
    Ok(Json(PatientPage { patients: page.items, next_cursor: page.next.as_ref().map(Cursor::encode) }))
}

/// Read a patient record.
#[utoipa::path(
    get, path = "/api/patients/{id}", tag = "patients",
    params(("id" = Uuid, Path, description = "Patient id")),
    responses(
        (status = 200, description = "The record", body = Patient, headers(("ETag" = String, description = "Its version"))),
        MalformedId, Unauthorized, Forbidden,
        (status = 404, description = "No such patient", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The record is deactivated", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn read(
    State(access): State<PatientAccess>,
    ctx: RequestContext,
    PathId(id): PathId<PatientId>,
) -> Result<Response> {
    access.authorize(&ctx, Action::Read, Some(id)).await?;
    Ok(with_etag(access.read(&ctx, id).await?))
}

/// Replace a patient's data.
///
/// Send the whole record (as for registration) with `If-Match` set to the `ETag` you read;
/// the previous version stays readable in the history.
#[utoipa::path(
    put, path = "/api/patients/{id}", tag = "patients",
    params(("id" = Uuid, Path, description = "Patient id"),
           ("If-Match" = String, Header, pattern = r#"^"[1-9][0-9]{0,8}"$"#,
            description = "The ETag of the version being replaced, e.g. \"3\"")),
    request_body = PatientInput,
    responses(
        (status = 200, description = "Updated", body = Patient, headers(("ETag" = String, description = "The new version"))),
        (status = 404, description = "No such patient", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The email belongs to another active patient", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The record is deactivated", body = Problem, content_type = "application/problem+json"),
        BodyRefused, MalformedId, Unauthorized, Forbidden, PreconditionRefused,
    )
)]
pub async fn update(
    State(access): State<PatientAccess>,
    ctx: RequestContext,
    PathId(id): PathId<PatientId>,
    request: Request,
) -> Result<Response> {
    access.authorize(&ctx, Action::Update, Some(id)).await?;
    let expected = if_match(request.headers());
    let draft = draft(request).await?;
    let expected = expected?;
    Ok(with_etag(access.update(&ctx, id, expected, draft).await?))
}

/// Why a record is deactivated: the optional body of `DELETE /api/patients/{id}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Deactivation {
    /// Why (1–500 characters), kept with the record's last version and shown in its history;
    /// never written to the audit trail.
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

const MAX_REASON_CHARS: usize = 500;

/// Deactivate a patient.
///
/// The record and its history stay; reads answer 410 and searches no longer find it.
/// `If-Match` must name the version read, as for updates: a stale version answers 412. The
/// body, `{"reason": "…"}`, is optional; without it, send none (no `Content-Type`).
#[utoipa::path(
    delete, path = "/api/patients/{id}", tag = "patients",
    params(("id" = Uuid, Path, description = "Patient id"),
           ("If-Match" = String, Header, pattern = r#"^"[1-9][0-9]{0,8}"$"#,
            description = "The ETag of the version being deactivated, e.g. \"3\"")),
    request_body(content = Option<Deactivation>, description = "Why the record is deactivated (optional)"),
    responses(
        (status = 204, description = "Deactivated"),
        BodyRefused, MalformedId, Unauthorized, Forbidden,
        (status = 404, description = "No such patient", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "Already deactivated", body = Problem, content_type = "application/problem+json"),
        PreconditionRefused,
    )
)]
pub async fn deactivate(
    State(access): State<PatientAccess>,
    ctx: RequestContext,
    PathId(id): PathId<PatientId>,
    request: Request,
) -> Result<StatusCode> {
    access.authorize(&ctx, Action::Deactivate, Some(id)).await?;
    let expected = if_match(request.headers())?;
    let reason = deactivation_reason(request).await?;
    access.deactivate(&ctx, id, expected, reason).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The reason in a deactivation's body, if it has one: no `Content-Type` means no body (as
/// before reasons existed); otherwise it must be a [`Deactivation`].
async fn deactivation_reason(request: Request) -> Result<Option<String>> {
    if !request.headers().contains_key(header::CONTENT_TYPE) {
        return Ok(None);
    }
    let Deactivation { reason } = JsonBody::read(request).await?;
    let reason = reason.trim();
    let count = reason.chars().count();
    if count == 0 || count > MAX_REASON_CHARS {
        let detail = format!("must be 1 to {MAX_REASON_CHARS} characters");
        return Err(Error::Invalid(vec![FieldError::body("/reason", detail)]));
    }
    Ok(Some(reason.to_owned()))
}

/// Every version of a patient record.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PatientHistory {
    /// Newest first.
    pub versions: Vec<PatientVersion>,
}

/// A patient record's history, newest version first (deactivated records included).
#[utoipa::path(
    get, path = "/api/patients/{id}/history", tag = "patients",
    params(("id" = Uuid, Path, description = "Patient id")),
    responses(
        (status = 200, description = "All versions", body = PatientHistory),
        MalformedId, Unauthorized, Forbidden,
        (status = 404, description = "No such patient", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn history(
    State(access): State<PatientAccess>,
    ctx: RequestContext,
    PathId(id): PathId<PatientId>,
) -> Result<Json<PatientHistory>> {
    access.authorize(&ctx, Action::History, Some(id)).await?;
    Ok(Json(PatientHistory { versions: access.history(&ctx, id).await? }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_parameters_are_validated_together() {
        let params = SearchParams {
            birth_date: Some("1984-13-01".into()),
            mrn: Some("123456789".into()),
            limit: Some("500".into()),
            cursor: Some("bogus".into()),
            ..Default::default()
        };
        let Err(Error::Invalid(errors)) = parse_search(params) else { panic!("must fail") };
        let names: Vec<_> = errors.iter().filter_map(|e| e.parameter.as_deref()).collect();
        assert_eq!(names, ["birthDate", "mrn", "limit", "cursor"]);
    }
}
