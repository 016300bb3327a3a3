//! The REST API: practitioners and their schedules ([`practitioners`]), appointment types
//! ([`types`]) and appointments ([`appointments`]), and what their handlers share.

pub mod appointments;
pub mod practitioners;
pub mod types;

use axum::{
    Json, Router,
    extract::{FromRequestParts, Path},
    http::{HeaderValue, header, request::Parts},
    response::{IntoResponse, Response},
};
use kit::{FieldError, Problem, auth::Verifier, net::TrustedProxies};
use serde::Serialize;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::access::Scheduling;

#[derive(Clone)]
pub struct AppointmentsState {
    pub scheduling: Scheduling,
    pub verifier: Verifier,
    pub trusted_proxies: TrustedProxies,
}

kit::state_parts!(AppointmentsState {
    scheduling: Scheduling,
    verifier: Verifier,
    trusted_proxies: TrustedProxies
});

#[derive(OpenApi)]
#[openapi(
    components(schemas(Problem, FieldError)),
    tags((name = "practitioners", description = "Practitioners, their working hours, exceptions and free times"),
         (name = "appointments", description = "Booking and running appointments"))
)]
pub struct AppointmentsApi;

pub fn api() -> OpenApiRouter<AppointmentsState> {
    OpenApiRouter::with_openapi(AppointmentsApi::openapi())
        .routes(routes!(practitioners::list, practitioners::create))
        .routes(routes!(practitioners::read, practitioners::update))
        .routes(routes!(practitioners::working_hours, practitioners::replace_working_hours))
        .routes(routes!(practitioners::exceptions, practitioners::add_exception))
        .routes(routes!(practitioners::remove_exception))
        .routes(routes!(practitioners::availability))
        .routes(routes!(types::list))
        .routes(routes!(types::put))
        .routes(routes!(appointments::list, appointments::book))
        .routes(routes!(appointments::today))
        .routes(routes!(appointments::read))
        .routes(routes!(appointments::history))
        .routes(routes!(appointments::reschedule))
        .routes(routes!(appointments::cancel))
        .routes(routes!(appointments::check_in))
        .routes(routes!(appointments::complete))
        .routes(routes!(appointments::no_show))
}

/// The service's part of the public OpenAPI document.
pub fn document() -> utoipa::openapi::OpenApi {
    api().split_for_parts().1
}

pub fn routes(state: AppointmentsState) -> Router {
    api().split_for_parts().0.with_state(state)
}

/// `body` as JSON with the `ETag` of `version`.
fn with_etag(version: i32, body: impl Serialize) -> Response {
    ([(header::ETAG, kit::extract::etag(version))], Json(body)).into_response()
}

fn location(path: String) -> HeaderValue {
    HeaderValue::from_str(&path).unwrap_or(HeaderValue::from_static("/api"))
}

/// Two ids in the path (`/{id}/.../{childId}`), or 400 naming the one that is not a UUID.
pub struct PathIds(pub Uuid, pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for PathIds {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let Path((first, second)) = Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|_| Problem::malformed_parameter("id", "must be a UUID"))?;
        let first =
            Uuid::parse_str(&first).map_err(|_| Problem::malformed_parameter("id", "must be a UUID"))?;
        let second = Uuid::parse_str(&second)
            .map_err(|_| Problem::malformed_parameter("exceptionId", "must be a UUID"))?;
        Ok(PathIds(first, second))
    }
}
