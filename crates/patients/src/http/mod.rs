//! The REST API: patient records ([`patients`]) and their audit trail ([`audit`]), and what
//! their handlers share.

pub mod audit;
pub mod patients;

use axum::{
    Json, Router,
    extract::Request,
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use kit::{auth::Verifier, json::JsonBody, net::TrustedProxies};
use time::{Date, Duration, OffsetDateTime};
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    access::PatientAccess,
    domain::{Patient, PatientDraft, PatientId, PatientInput},
    error::{Error, Result},
};

/// What the handlers share: access to the records, and the token verifier.
#[derive(Clone)]
pub struct PatientsState {
    pub access: PatientAccess,
    pub verifier: Verifier,
    pub trusted_proxies: TrustedProxies,
}

kit::state_parts!(PatientsState {
    access: PatientAccess,
    verifier: Verifier,
    trusted_proxies: TrustedProxies
});

/// The service's part of the public OpenAPI document: its tags, and every operation as it
/// is routed.
pub fn document() -> utoipa::openapi::OpenApi {
    api().split_for_parts().1
}

/// The routes of the patients API with their OpenAPI description: each handler's
/// `#[utoipa::path]` says where it is routed, so the document cannot drift from the router.
pub fn api() -> OpenApiRouter<PatientsState> {
    OpenApiRouter::with_openapi(crate::openapi::PatientsApi::openapi())
        .routes(routes!(patients::search, patients::register))
        .routes(routes!(patients::read, patients::update, patients::deactivate))
        .routes(routes!(patients::history))
        .routes(routes!(patients::search_by_body))
        .routes(routes!(audit::audit_events))
}

/// The routes of the patients API, serving `state`.
pub fn routes(state: PatientsState) -> Router {
    let (router, _) = api().split_for_parts();
    router.with_state(state)
}

/// The validated patient in the request body, read only after the caller is known to be
/// allowed to send it.
async fn draft(request: Request) -> Result<PatientDraft> {
    let input: PatientInput = JsonBody::read(request).await?;
    PatientDraft::parse(input, latest_today()).map_err(Error::Invalid)
}

/// The latest calendar date anywhere on earth (UTC+14): a baby born "today" in Kiribati is
/// not born in the future.
fn latest_today() -> Date {
    (OffsetDateTime::now_utc() + Duration::hours(14)).date()
}

fn location(id: PatientId) -> HeaderValue {
    HeaderValue::from_str(&format!("/api/patients/{id}")).unwrap_or(HeaderValue::from_static("/api/patients"))
}

fn with_etag(patient: Patient) -> Response {
    ([(header::ETAG, kit::extract::etag(patient.version))], Json(patient)).into_response()
}

/// A query parameter's value, trimmed; `None` when absent or blank.
fn present(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}
