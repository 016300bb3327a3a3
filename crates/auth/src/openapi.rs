//! The OpenAPI description of the auth API.

use utoipa::OpenApi;

use crate::{
    http::{
        sessions::{LoginRequest, RefreshRequest, TokenInfo},
        users::{PasswordChange, UserPage},
    },
    tokens::TokenPair,
    users::{NewUser, User, UserPatch},
};

#[derive(OpenApi)]
#[openapi(
    paths(
        crate::http::sessions::login,
        crate::http::sessions::refresh,
        crate::http::sessions::logout,
        crate::http::sessions::validate,
        crate::http::sessions::jwks,
        crate::http::users::create_user,
        crate::http::users::list_users,
        crate::http::users::get_user,
        crate::http::users::update_user,
        crate::http::users::change_password,
    ),
    components(schemas(LoginRequest, RefreshRequest, TokenPair, TokenInfo, User, NewUser, UserPatch, UserPage,
                        PasswordChange, kit::auth::Role)),
    tags((name = "auth", description = "Login, tokens and keys"), (name = "users", description = "User administration"))
)]
pub struct AuthApi;

/// The service's part of the public OpenAPI document.
pub fn document() -> utoipa::openapi::OpenApi {
    AuthApi::openapi()
}
