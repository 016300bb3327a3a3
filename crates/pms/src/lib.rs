//! What the `pms` binary runs: the services, composed for a laptop (`pms up`) or alone (one
//! service per container), plus the public API description.
//!
//! `pms up` serves the public API on one address: the services' routes, `/openapi.json`
//! (OpenAPI 3.1, generated from the code) and Swagger UI at `/docs`, whose assets are compiled
//! into the binary so it works offline.

use axum::Router;
use kit::{
    config::HttpConfig,
    health::{self, Readiness},
};
use sqlx::PgPool;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

/// The OpenAPI document of the whole public API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = patients::openapi::PatientsApi::openapi();
    doc.info = utoipa::openapi::InfoBuilder::new()
        .title("pms")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Patient management system. Errors are RFC 9457 problem documents \
             (`application/problem+json`) with per-field `errors`.",
        ))
        .build();
    doc
}

/// Swagger UI at `/docs` and the document at `/openapi.json`.
pub fn docs() -> Router {
    SwaggerUi::new("/docs").url("/openapi.json", openapi()).into()
}

/// Everything `pms up` serves on its public address.
pub fn public_app(patients_pool: PgPool, config: &HttpConfig) -> Router {
    let readiness = Readiness::default().with(health::Database(patients_pool.clone()));
    kit::http::app("pms", patients::routes(patients_pool).merge(docs()), readiness, config)
}
