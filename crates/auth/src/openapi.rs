//! The OpenAPI description of the auth API: its tags here; the operations come from the
//! handlers as they are routed ([`crate::http::document`]).

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    components(schemas(kit::auth::Role)),
    tags((name = "auth", description = "Login, tokens and keys"), (name = "users", description = "User administration"))
)]
pub struct AuthApi;
