//! The REST API: `/auth/*` (login, refresh, logout, validate), `/.well-known/jwks.json`, and
//! user administration under `/api/users`.

use std::net::SocketAddr;

use axum::{
    Json, Router,
    extract::{ConnectInfo, FromRequestParts, Path, State},
    http::{HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use kit::{
    FieldError, Problem,
    auth::{Caller, Role},
    json::{JsonBody, QueryParams},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    AuthState,
    error::{Error, Result},
    lockout, passwords,
    tokens::{self, TokenPair},
    users::{NewUser, User, UserPatch, email_key},
};

pub fn router(state: AuthState) -> Router {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/refresh", post(refresh))
        .route("/auth/logout", post(logout))
        .route("/auth/validate", get(validate))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/api/users", get(list_users).post(create_user))
        .route("/api/users/me/password", post(change_password))
        .route("/api/users/{id}", get(get_user).patch(update_user))
        .with_state(state)
}

/// The client's address: the last `X-Forwarded-For` entry (appended by the gateway, the only
/// way in), else the peer of the connection.
pub struct ClientAddress(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let forwarded = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty());
        let peer = || parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
        Ok(ClientAddress(forwarded.or_else(peer).unwrap_or_else(|| "unknown".into())))
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(example = "admin@pms.local")]
    pub email: String,
    pub password: String,
}

/// Log in with email and password.
///
/// Wrong email, wrong password and a disabled account all answer the same 401. After 5 failed
/// logins for an account, or 20 from one address, within 15 minutes: 429 with `Retry-After`.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest, security(()),
    responses(
        (status = 200, description = "Logged in", body = TokenPair),
        (status = 401, description = "Wrong credentials", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed logins", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn login(
    State(state): State<AuthState>,
    ClientAddress(address): ClientAddress,
    JsonBody(body): JsonBody<LoginRequest>,
) -> Result<Json<TokenPair>> {
    let key = email_key(&body.email);
    lockout::check(&state.pool, &state.config.limits, &key, &address).await?;
    let found = state.users.find_for_login(&body.email).await?;
    let hash = found.as_ref().map(|(_, hash)| hash.clone());
    let password_ok = passwords::verify(body.password, hash).await;
    let user = match found {
        Some((user, _)) if password_ok && user.enabled => user,
        _ => {
            lockout::record(&state.pool, &key, &address, false).await?;
            return Err(Error::InvalidCredentials);
        }
    };
    lockout::record(&state.pool, &key, &address, true).await?;
    let mut tx = state.pool.begin().await?;
    let pair = tokens::issue(&state, &mut tx, &user, Uuid::now_v7()).await?;
    tx.commit().await?;
    tracing::info!(user = %user.id, "logged in");
    Ok(Json(pair))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Exchange a refresh token for a new token pair.
///
/// Each refresh token works once; presenting a used one again revokes every token of its login.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest, security(()),
    responses(
        (status = 200, description = "A new pair", body = TokenPair),
        (status = 401, description = "Invalid, used, revoked or expired", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn refresh(
    State(state): State<AuthState>,
    JsonBody(body): JsonBody<RefreshRequest>,
) -> Result<Json<TokenPair>> {
    Ok(Json(tokens::refresh(&state, &body.refresh_token).await?))
}

/// Log out: revoke the refresh token and every token of the same login.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", request_body = RefreshRequest, security(()),
    responses((status = 204, description = "Revoked (also for unknown tokens)")))]
pub async fn logout(
    State(state): State<AuthState>,
    JsonBody(body): JsonBody<RefreshRequest>,
) -> Result<StatusCode> {
    tokens::logout(&state, &body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenInfo {
    /// The user id.
    pub sub: String,
    pub roles: Vec<Role>,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
}

/// Check a bearer token (for clients of the older API): 200 if valid, 401 otherwise.
#[utoipa::path(get, path = "/auth/validate", tag = "auth",
    responses(
        (status = 200, description = "Valid", body = TokenInfo),
        (status = 401, description = "Missing, malformed, expired or badly signed", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn validate(caller: Caller) -> Json<TokenInfo> {
    Json(TokenInfo { sub: caller.claims.sub, roles: caller.claims.roles, exp: caller.claims.exp })
}

/// The public keys that verify access tokens (RFC 7517).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth", security(()),
    responses((status = 200, description = "JWK set", body = Object)))]
pub async fn jwks(State(state): State<AuthState>) -> Response {
    let mut response = Json(state.keys.jwks()).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
    response
}

fn require_admin(caller: &Caller) -> Result<()> {
    Ok(caller.require(&[Role::Admin])?)
}

/// Create a user (admins).
#[utoipa::path(post, path = "/api/users", tag = "users", request_body = NewUser,
    responses(
        (status = 201, description = "Created", body = User),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Email taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create_user(
    State(state): State<AuthState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewUser>,
) -> Result<Response> {
    require_admin(&caller)?;
    body.validate()?;
    let hash = passwords::hash(body.password.clone()).await?;
    let user = state.users.create(&body, &hash).await?;
    tracing::info!(user = %user.id, by = %caller.user_id(), "user created");
    let location = HeaderValue::from_str(&format!("/api/users/{}", user.id))
        .unwrap_or(HeaderValue::from_static("/api/users"));
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(user)).into_response())
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1 to 100 (default 50).
    #[param(value_type = Option<u32>)]
    limit: Option<String>,
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserPage {
    pub items: Vec<User>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// List users by email (admins).
#[utoipa::path(get, path = "/api/users", tag = "users", params(ListParams),
    responses((status = 200, description = "A page of users", body = UserPage),
              (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json")))]
pub async fn list_users(
    State(state): State<AuthState>,
    caller: Caller,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Json<UserPage>> {
    require_admin(&caller)?;
    let mut errors = Vec::new();
    let limit = kit::json::page_limit(params.limit.as_deref(), 50, &mut errors);
    let after = match params.cursor.as_deref() {
        None => None,
        Some(c) => match URL_SAFE_NO_PAD.decode(c).ok().and_then(|b| String::from_utf8(b).ok()) {
            Some(email) => Some(email),
            None => {
                errors.push(FieldError::parameter("cursor", "is not a cursor this API returned"));
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    let mut items = state.users.list(limit + 1, after.as_deref()).await?;
    let next_cursor =
        kit::json::next_page(&mut items, limit, |last| URL_SAFE_NO_PAD.encode(email_key(&last.email)));
    Ok(Json(UserPage { items, next_cursor }))
}

fn user_id(raw: &str) -> Result<Uuid> {
    Uuid::parse_str(raw).map_err(|_| Problem::malformed_parameter("id", "must be a UUID").into())
}

/// Read a user (admins).
#[utoipa::path(get, path = "/api/users/{id}", tag = "users", params(("id" = Uuid, Path, description = "User id")),
    responses((status = 200, description = "The user", body = User),
              (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json")))]
pub async fn get_user(
    State(state): State<AuthState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<User>> {
    require_admin(&caller)?;
    Ok(Json(state.users.get(user_id(&id)?).await?))
}

/// Change a user's roles, name or enabled flag (admins). Disabling revokes its refresh tokens.
#[utoipa::path(patch, path = "/api/users/{id}", tag = "users", params(("id" = Uuid, Path, description = "User id")),
    request_body = UserPatch,
    responses((status = 200, description = "Updated", body = User),
              (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
              (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json")))]
pub async fn update_user(
    State(state): State<AuthState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<UserPatch>,
) -> Result<Json<User>> {
    require_admin(&caller)?;
    let id = user_id(&id)?;
    patch.validate()?;
    let user = state.users.update(id, &patch).await?;
    tracing::info!(user = %id, by = %caller.user_id(), "user updated");
    Ok(Json(user))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PasswordChange {
    pub current_password: String,
    /// 12 to 128 characters.
    pub new_password: String,
}

/// Change your own password. Every refresh token of yours is revoked: log in again.
#[utoipa::path(post, path = "/api/users/me/password", tag = "users", request_body = PasswordChange,
    responses((status = 204, description = "Changed"),
              (status = 422, description = "Wrong current password or weak new one", body = Problem, content_type = "application/problem+json")))]
pub async fn change_password(
    State(state): State<AuthState>,
    caller: Caller,
    JsonBody(body): JsonBody<PasswordChange>,
) -> Result<StatusCode> {
    let id = user_id(caller.user_id())?;
    let mut errors: Vec<FieldError> =
        passwords::check_policy(&body.new_password, "/newPassword").into_iter().collect();
    let current = state.users.password_hash(id).await?;
    if !passwords::verify(body.current_password, Some(current)).await {
        errors.insert(0, FieldError::body("/currentPassword", "is not your current password"));
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    let hash = passwords::hash(body.new_password).await?;
    state.users.set_password(id, &hash).await?;
    tracing::info!(user = %id, "password changed");
    Ok(StatusCode::NO_CONTENT)
}
