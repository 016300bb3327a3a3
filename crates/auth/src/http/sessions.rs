//! Sessions: `/auth/login`, `/auth/refresh`, `/auth/logout`, `/auth/validate`, and the
//! public keys at `/.well-known/jwks.json`.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use kit::{
    FieldError, Problem,
    auth::{Revocations, Role, TokenError},
    email::{Email, MAX_EMAIL_CHARS},
    json::JsonBody,
    net::ClientAddress,
    openapi::BodyRefused,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    AuthState,
    error::{Error, Result},
    lockout,
    tokens::{self, TokenPair},
    trail::AuthEvent,
};

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
        BodyRefused,
    ))]
pub async fn login(
    State(state): State<AuthState>,
    client: ClientAddress,
    JsonBody(body): JsonBody<LoginRequest>,
) -> Result<Json<TokenPair>> {
    if body.email.chars().count() > MAX_EMAIL_CHARS {
        // No account has such an address; refusing it here keeps it out of the lockout table.
        return Err(Error::Invalid(vec![FieldError::body("/email", "must be at most 254 characters")]));
    }
    let key = Email::key_of(&body.email);
    let clock = &state.config.clock;
    let event = |outcome| AuthEvent::new("login", outcome).from(&client);
    // Counted before the password is checked: concurrent guesses cannot all slip through.
    let attempt = match lockout::begin(&state.pool, &state.config.limits, clock, &key, &client.0).await {
        Err(Error::LockedOut { retry_after }) => {
            event("locked").record(&state.pool, clock.now()).await?;
            return Err(Error::LockedOut { retry_after });
        }
        other => other?,
    };
    let found = state.users.find_for_login(&body.email).await?;
    let hash = found.as_ref().map(|(_, hash)| hash.clone());
    let password_ok = match state.hasher.verify(body.password, hash).await {
        Err(Error::Busy) => {
            event("busy").record(&state.pool, clock.now()).await?;
            return Err(Error::Busy);
        }
        other => other?,
    };
    let user = match found {
        Some((user, _)) if password_ok && user.enabled => user,
        Some((user, _)) => {
            event("failed").of(user.id).record(&state.pool, clock.now()).await?;
            return Err(Error::InvalidCredentials);
        }
        None => {
            // No account has this email: the trail names none (an email is a contact).
            event("failed").record(&state.pool, clock.now()).await?;
            return Err(Error::InvalidCredentials);
        }
    };
    attempt.succeeded(&state.pool).await?;
    event("ok").of(user.id).record(&state.pool, clock.now()).await?;
    let mut tx = state.pool.begin().await?;
    let session = tokens::Session::start(state.config.clock.now());
    let pair = tokens::issue(&state, &mut tx, &user, session).await?;
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
        BodyRefused,
    ))]
pub async fn refresh(
    State(state): State<AuthState>,
    JsonBody(body): JsonBody<RefreshRequest>,
) -> Result<Json<TokenPair>> {
    Ok(Json(tokens::refresh(&state, &body.refresh_token).await?))
}

/// Log out: revoke the refresh token and every token of the same login.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", request_body = RefreshRequest, security(()),
    responses((status = 204, description = "Revoked (also for unknown tokens)"), BodyRefused))]
pub async fn logout(
    State(state): State<AuthState>,
    client: ClientAddress,
    JsonBody(body): JsonBody<RefreshRequest>,
) -> Result<StatusCode> {
    tokens::logout(&state, &body.refresh_token, &client).await?;
    // This service's own verifier learns it now; the others within their refresh interval.
    state.keys.reload().await?;
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
pub async fn validate(
    State(state): State<AuthState>,
    headers: HeaderMap,
) -> Result<Json<TokenInfo>, TokenError> {
    let token = kit::auth::bearer(&headers).ok_or(TokenError::Missing)?;
    let claims = state.keys.verifier().verify(token).await?;
    Ok(Json(TokenInfo { sub: claims.sub, roles: claims.roles, exp: claims.exp }))
}

/// Access tokens to refuse before they expire: sessions that ended (logout, a stolen refresh
/// token) and users whose earlier tokens no longer count (disabled, roles or password changed).
///
/// Polled every few seconds by the gateway and the services, so revocation takes effect within
/// seconds, not when the 15-minute access token expires. Holds ids only, never names.
#[utoipa::path(get, path = "/auth/revocations", tag = "auth", security(()),
    responses((status = 200, description = "Current revocations", body = Revocations)))]
pub async fn revocations(State(state): State<AuthState>) -> Result<Response> {
    let now = state.config.clock.now();
    let mut response =
        Json(crate::revocations::current(&state.pool, state.config.access_ttl, now).await?).into_response();
    response.extensions_mut().insert(kit::telemetry::Quiet);
    Ok(response)
}

/// The public keys that verify access tokens (RFC 7517).
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth", security(()),
    responses((status = 200, description = "JWK set", body = Object)))]
pub async fn jwks(State(state): State<AuthState>) -> Response {
    let mut response = Json(state.keys.jwks()).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=60"));
    response.extensions_mut().insert(kit::telemetry::Quiet);
    response
}
