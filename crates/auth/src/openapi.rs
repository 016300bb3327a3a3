//! The OpenAPI description of the auth API.

use utoipa::OpenApi;

use crate::{
    http::{LoginRequest, PasswordChange, RefreshRequest, TokenInfo, UserPage},
    tokens::TokenPair,
    users::{NewUser, User, UserPatch},
};

#[derive(OpenApi)]
#[openapi(
    paths(
        crate::http::login,
        crate::http::refresh,
        crate::http::logout,
        crate::http::validate,
        crate::http::jwks,
        crate::http::create_user,
        crate::http::list_users,
        crate::http::get_user,
        crate::http::update_user,
        crate::http::change_password,
    ),
    components(schemas(LoginRequest, RefreshRequest, TokenPair, TokenInfo, User, NewUser, UserPatch, UserPage,
                        PasswordChange, kit::auth::Role)),
    tags((name = "auth", description = "Login, tokens and keys"), (name = "users", description = "User administration"))
)]
pub struct AuthApi;
