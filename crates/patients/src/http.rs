//! The REST API under `/api/patients`, read top to bottom: register, search, read, update,
//! deactivate, history.

use axum::{
    Json, Router,
    extract::{FromRef, FromRequest, Path, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use kit::{
    FieldError, Problem,
    json::{JsonBody, QueryParams},
};
use serde::{Deserialize, Serialize};
use time::{Date, Duration, OffsetDateTime};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    audit::{self, Action, AuditQuery, AuditRecord},
    context::RequestContext,
    domain::{Patient, PatientDraft, PatientInput, parse_date, parse_phone},
    error::{Error, Result},
    mrn::Mrn,
    names::NameQuery,
    repository::{Cursor, PatientRepository, PatientVersion, SearchFilter},
};

pub const DEFAULT_PAGE_SIZE: u32 = 20;
const MAX_NAME_QUERY_CHARS: usize = 200;

/// What the handlers share: the records and the token verifier.
#[derive(Clone)]
pub struct PatientsState {
    pub patients: PatientRepository,
    pub verifier: kit::auth::Verifier,
}

impl FromRef<PatientsState> for PatientRepository {
    fn from_ref(state: &PatientsState) -> Self {
        state.patients.clone()
    }
}

impl FromRef<PatientsState> for kit::auth::Verifier {
    fn from_ref(state: &PatientsState) -> Self {
        state.verifier.clone()
    }
}

/// The routes of the patients API.
pub fn router(state: PatientsState) -> Router {
    Router::new()
        .route("/api/patients", get(search).post(register))
        .route("/api/patients/{id}", get(read).put(update).delete(deactivate))
        .route("/api/patients/{id}/history", get(history))
        .route("/api/audit-events", get(audit_events))
        .with_state(state)
}

/// The request body, read only after the caller is known to be allowed to send it.
async fn body<T: serde::de::DeserializeOwned>(request: Request) -> Result<T> {
    Ok(JsonBody::<T>::from_request(request, &()).await?.0)
}

/// The latest calendar date anywhere on earth (UTC+14): a baby born "today" in Kiribati is
/// not born in the future.
fn latest_today() -> Date {
    (OffsetDateTime::now_utc() + Duration::hours(14)).date()
}

fn etag(version: i32) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

fn location(id: Uuid) -> HeaderValue {
    HeaderValue::from_str(&format!("/api/patients/{id}")).unwrap_or(HeaderValue::from_static("/api/patients"))
}

fn with_etag(patient: Patient) -> Response {
    ([(header::ETAG, etag(patient.version))], Json(patient)).into_response()
}

fn patient_id(raw: &str) -> Result<Uuid> {
    Uuid::parse_str(raw).map_err(|_| Problem::malformed_parameter("id", "must be a UUID").into())
}

/// The version named by `If-Match`: `Ok(None)` for `*`, 428 when absent, 412 when unreadable.
fn if_match(headers: &HeaderMap, required: bool) -> Result<Option<i32>> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return if required { Err(Error::PreconditionRequired) } else { Ok(None) };
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
        .ok_or_else(|| {
            Problem::new(
                StatusCode::PRECONDITION_FAILED,
                kit::problem::kinds::PRECONDITION_FAILED,
                "The record has changed",
            )
            .with_detail("If-Match must be an ETag this API returned, such as \"3\"")
            .into()
        })
}

/// Register a patient.
#[utoipa::path(
    post, path = "/api/patients", tag = "patients",
    request_body = PatientInput,
    responses(
        (status = 201, description = "Registered", body = Patient,
         headers(("Location" = String, description = "URL of the new record"), ("ETag" = String, description = "Its version"))),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The email belongs to another active patient", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 64 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, listed in `errors`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn register(
    State(patients): State<PatientRepository>,
    ctx: RequestContext,
    request: Request,
) -> Result<Response> {
    patients.authorize(&ctx, Action::Create, None).await?;
    let input: PatientInput = body(request).await?;
    let draft = PatientDraft::parse(input, latest_today()).map_err(Error::Invalid)?;
    let patient = patients.register(draft, &ctx).await?;
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
    name: Option<String>,
    /// `YYYY-MM-DD`.
    #[param(value_type = Option<String>, format = Date)]
    birth_date: Option<String>,
    /// Medical record number; a mistyped check digit answers 422.
    mrn: Option<String>,
    /// Exact email, ignoring case.
    email: Option<String>,
    /// Exact phone number (E.164; separators ignored).
    phone: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
}

/// A page of search results.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatientPage {
    pub items: Vec<Patient>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn present(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn parse_search(params: SearchParams) -> Result<(SearchFilter, u32, Option<Cursor>)> {
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
    filter.email = present(params.email).map(|e| e.to_lowercase());
    if let Some(phone) = present(params.phone) {
        match parse_phone(&phone) {
            Ok(phone) => filter.phone = Some(phone),
            Err(detail) => errors.push(FieldError::parameter("phone", detail)),
        }
    }
    let limit = kit::json::page_limit(params.limit.as_deref(), DEFAULT_PAGE_SIZE, &mut errors);
    let cursor = present(params.cursor).and_then(|raw| {
        let cursor = Cursor::decode(&raw);
        if cursor.is_none() {
            errors.push(FieldError::parameter("cursor", "is not a cursor this API returned"));
        }
        cursor
    });
    if errors.is_empty() { Ok((filter, limit, cursor)) } else { Err(Error::Invalid(errors)) }
}

/// Search active patients.
///
/// A one-word name ranks family name equal, given name equal, family name starting with it,
/// given name starting with it, then names with a word that starts with it or is one typo away
/// (family before given). Several words must all match; all-exact first. Otherwise results are
/// ordered by family then given name. Pages follow `nextCursor`.
#[utoipa::path(
    get, path = "/api/patients", tag = "patients",
    params(SearchParams),
    responses(
        (status = 200, description = "One page of matches", body = PatientPage),
        (status = 422, description = "Invalid parameters, listed in `errors`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn search(
    State(patients): State<PatientRepository>,
    ctx: RequestContext,
    QueryParams(params): QueryParams<SearchParams>,
) -> Result<Json<PatientPage>> {
    patients.authorize(&ctx, Action::Search, None).await?;
    let (filter, limit, cursor) = parse_search(params)?;
    let page = patients.search(&filter, limit, cursor.as_ref(), &ctx).await?;
    Ok(Json(PatientPage { items: page.items, next_cursor: page.next.map(|c| c.encode()) }))
}

/// Read a patient record.
#[utoipa::path(
    get, path = "/api/patients/{id}", tag = "patients",
    params(("id" = Uuid, Path, description = "Patient id")),
    responses(
        (status = 200, description = "The record", body = Patient, headers(("ETag" = String, description = "Its version"))),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such patient", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The record is deactivated", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn read(
    State(patients): State<PatientRepository>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> Result<Response> {
    patients.authorize(&ctx, Action::Read, Uuid::parse_str(&id).ok()).await?;
    let id = patient_id(&id)?;
    Ok(with_etag(patients.get(id, &ctx).await?))
}

/// Replace a patient's data.
///
/// Send the whole record (as for registration) with `If-Match` set to the `ETag` you read;
/// the previous version stays readable in the history.
#[utoipa::path(
    put, path = "/api/patients/{id}", tag = "patients",
    params(("id" = Uuid, Path, description = "Patient id"),
           ("If-Match" = String, Header, description = "The ETag of the version being replaced, e.g. \"3\"")),
    request_body = PatientInput,
    responses(
        (status = 200, description = "Updated", body = Patient, headers(("ETag" = String, description = "The new version"))),
        (status = 404, description = "No such patient", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The email belongs to another active patient", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "The record is deactivated", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The record changed since it was read", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match is missing", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn update(
    State(patients): State<PatientRepository>,
    ctx: RequestContext,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response> {
    patients.authorize(&ctx, Action::Update, Uuid::parse_str(&id).ok()).await?;
    let id = patient_id(&id)?;
    let expected = if_match(request.headers(), true)?;
    let input: PatientInput = body(request).await?;
    let draft = PatientDraft::parse(input, latest_today()).map_err(Error::Invalid)?;
    Ok(with_etag(patients.update(id, expected, draft, &ctx).await?))
}

/// Deactivate a patient.
///
/// The record and its history stay; reads answer 410 and searches no longer find it.
/// `If-Match` is optional here; when sent, a stale version answers 412.
#[utoipa::path(
    delete, path = "/api/patients/{id}", tag = "patients",
    params(("id" = Uuid, Path, description = "Patient id"),
           ("If-Match" = Option<String>, Header, description = "Only deactivate this version")),
    responses(
        (status = 204, description = "Deactivated"),
        (status = 404, description = "No such patient", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "Already deactivated", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The record changed since it was read", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn deactivate(
    State(patients): State<PatientRepository>,
    ctx: RequestContext,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode> {
    patients.authorize(&ctx, Action::Deactivate, Uuid::parse_str(&id).ok()).await?;
    let id = patient_id(&id)?;
    let expected = if_match(&headers, false)?;
    patients.deactivate(id, expected, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every version of a patient record.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PatientHistory {
    /// Newest first.
    pub items: Vec<PatientVersion>,
}

/// A patient record's history, newest version first (deactivated records included).
#[utoipa::path(
    get, path = "/api/patients/{id}/history", tag = "patients",
    params(("id" = Uuid, Path, description = "Patient id")),
    responses(
        (status = 200, description = "All versions", body = PatientHistory),
        (status = 404, description = "No such patient", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn history(
    State(patients): State<PatientRepository>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> Result<Json<PatientHistory>> {
    patients.authorize(&ctx, Action::History, Uuid::parse_str(&id).ok()).await?;
    let id = patient_id(&id)?;
    Ok(Json(PatientHistory { items: patients.history(id, &ctx).await? }))
}

/// Filters of the audit trail.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only rows about this patient.
    #[param(value_type = Option<Uuid>)]
    patient_id: Option<String>,
    /// Only rows of this user (the `sub` of their token).
    user_id: Option<String>,
    /// Only rows at or after this instant (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<String>,
    /// Only rows before this instant (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<String>,
    /// Page size, 1 to 100 (default 50).
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
}

/// A page of the audit trail, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditPage {
    pub items: Vec<AuditRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn parse_instant(raw: &str, name: &str, errors: &mut Vec<FieldError>) -> Option<OffsetDateTime> {
    match OffsetDateTime::parse(raw.trim(), &time::format_description::well_known::Rfc3339) {
        Ok(at) => Some(at),
        Err(_) => {
            errors.push(FieldError::parameter(
                name,
                "must be an RFC 3339 instant such as 2026-01-31T08:00:00Z",
            ));
            None
        }
    }
}

fn parse_audit_params(params: AuditParams) -> Result<(AuditQuery, u32)> {
    let mut errors = Vec::new();
    let mut query = AuditQuery::default();
    if let Some(raw) = present(params.patient_id) {
        match Uuid::parse_str(&raw) {
            Ok(id) => query.patient_id = Some(id),
            Err(_) => errors.push(FieldError::parameter("patientId", "must be a UUID")),
        }
    }
    query.actor_id = present(params.user_id);
    query.from = present(params.from).and_then(|raw| parse_instant(&raw, "from", &mut errors));
    query.to = present(params.to).and_then(|raw| parse_instant(&raw, "to", &mut errors));
    if let Some(raw) = present(params.cursor) {
        match raw.parse::<i64>() {
            Ok(id) if id > 0 => query.before_id = Some(id),
            _ => errors.push(FieldError::parameter("cursor", "is not a cursor this API returned")),
        }
    }
    let limit = kit::json::page_limit(params.limit.as_deref(), 50, &mut errors);
    if errors.is_empty() { Ok((query, limit)) } else { Err(Error::Invalid(errors)) }
}

/// The audit trail of patient records (admins): who did what to which record, when.
#[utoipa::path(
    get, path = "/api/audit-events", tag = "audit",
    params(AuditParams),
    responses(
        (status = 200, description = "One page, newest first", body = AuditPage),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid parameters", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn audit_events(
    State(patients): State<PatientRepository>,
    ctx: RequestContext,
    QueryParams(params): QueryParams<AuditParams>,
) -> Result<Json<AuditPage>> {
    if !ctx.is_admin() {
        return Err(Error::Problem(kit::auth::forbidden()));
    }
    let (query, limit) = parse_audit_params(params)?;
    let mut items = audit::list(patients.pool(), &query, limit + 1).await?;
    let next_cursor = kit::json::next_page(&mut items, limit, |last| last.id.to_string());
    Ok(Json(AuditPage { items, next_cursor }))
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
        assert_eq!(if_match(&headers("\"3\""), true).ok(), Some(Some(3)));
        assert_eq!(if_match(&headers("W/\"4\""), true).ok(), Some(Some(4)));
        assert_eq!(if_match(&headers("*"), true).ok(), Some(None));
        assert!(matches!(if_match(&HeaderMap::new(), true), Err(Error::PreconditionRequired)));
        assert_eq!(if_match(&HeaderMap::new(), false).ok(), Some(None));
        assert!(matches!(if_match(&headers("3"), true), Err(Error::Problem(p)) if p.status == 412));
    }

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
