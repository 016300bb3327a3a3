//! The REST API: sessions and keys ([`sessions`]), user administration ([`users`]), and the
//! auth audit trail ([`trail`]).

pub mod sessions;
pub mod trail;
pub mod users;

use axum::Router;
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AuthState;

/// The service's part of the public OpenAPI document: its tags, and every operation as it
/// is routed.
pub fn document() -> utoipa::openapi::OpenApi {
    api().split_for_parts().1
}

/// The routes of the auth API with their OpenAPI description: each handler's
/// `#[utoipa::path]` says where it is routed, so the document cannot drift from the router.
pub fn api() -> OpenApiRouter<AuthState> {
    OpenApiRouter::with_openapi(crate::openapi::AuthApi::openapi())
        .routes(routes!(sessions::login))
        .routes(routes!(sessions::refresh))
        .routes(routes!(sessions::logout))
        .routes(routes!(sessions::validate))
        .routes(routes!(sessions::revocations))
        .routes(routes!(sessions::jwks))
        .routes(routes!(users::list_users, users::create_user))
        .routes(routes!(users::change_password))
        .routes(routes!(users::user_names))
        .routes(routes!(users::get_user, users::update_user))
        .routes(routes!(trail::auth_events))
}

/// The routes of the auth API, serving `state`, and the internal service-token route (not
/// part of the public API: the gateway routes nothing under `/internal`).
pub fn routes(state: AuthState) -> Router {
    let (router, _) = api().split_for_parts();
    router
        .route(crate::service_tokens::PATH, axum::routing::post(crate::service_tokens::issue))
        .with_state(state)
}
