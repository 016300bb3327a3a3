//! User administration under `/api/users` (admins), and `/api/users/me/password`.

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use kit::{
    FieldError, Problem, RequestContext,
    email::Email,
    extract::PathId,
    json::{Cursor, JsonBody, QueryParams},
    net::ClientAddress,
    openapi::{BodyRefused, Forbidden, InvalidParameters, MalformedId, Unauthorized},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::{
    AuthState,
    error::{Error, Result},
    lockout, passwords,
    policy::Action,
    trail::AuthEvent,
    users::{NewUser, User, UserId, UserPatch},
};

/// Create a user (admins).
#[utoipa::path(post, path = "/api/users", tag = "users", request_body = NewUser,
    responses(
        (status = 201, description = "Created", body = User),
        Unauthorized, Forbidden,
        (status = 409, description = "Email taken", body = Problem, content_type = "application/problem+json"),
        BodyRefused,
    ))]
pub async fn create_user(
    State(state): State<AuthState>,
    ctx: RequestContext,
    client: ClientAddress,
    JsonBody(body): JsonBody<NewUser>,
) -> Result<Response> {
    ctx.require(Action::ManageUsers)?;
    let draft = body.parse()?;
    let hash = state.hasher.hash(draft.password.clone()).await?;
    let user = state.users.create(&draft, &hash).await?;
    AuthEvent::new("user_create", "ok")
        .of(user.id)
        .by(UserId::parse(&ctx.user_id))
        .from(&client)
        .with(json!({ "roles": user.roles }))
        .record(&state.pool, state.config.clock.now())
        .await?;
    tracing::info!(user = %user.id, by = %ctx.user_id, "user created");
    let location = HeaderValue::from_str(&format!("/api/users/{}", user.id))
        .unwrap_or(HeaderValue::from_static("/api/users"));
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(user)).into_response())
}

kit::paged_params! {
    /// Paging of the user list.
    pub struct ListParams {}
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserPage {
    /// Ordered by email.
    pub users: Vec<User>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// List users by email (admins).
#[utoipa::path(get, path = "/api/users", tag = "users", params(ListParams),
    responses((status = 200, description = "A page of users", body = UserPage),
              InvalidParameters, Unauthorized, Forbidden))]
pub async fn list_users(
    State(state): State<AuthState>,
    ctx: RequestContext,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Json<UserPage>> {
    ctx.require(Action::ManageUsers)?;
    let mut errors = Vec::new();
    let limit = kit::json::page_limit(params.limit.as_deref(), 50, &mut errors);
    let after: Option<String> = Cursor::param(params.cursor.as_deref(), &mut errors);
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    let mut items = state.users.list(limit + 1, after.as_deref()).await?;
    let next_cursor =
        kit::json::next_page(&mut items, limit, |last| Cursor::encode(&Email::key_of(&last.email)));
    Ok(Json(UserPage { users: items, next_cursor }))
}

/// Read a user (admins).
#[utoipa::path(get, path = "/api/users/{id}", tag = "users", params(("id" = Uuid, Path, description = "User id")),
    responses((status = 200, description = "The user", body = User),
              (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
              MalformedId, Unauthorized, Forbidden))]
pub async fn get_user(
    State(state): State<AuthState>,
    ctx: RequestContext,
    PathId(id): PathId<UserId>,
) -> Result<Json<User>> {
    ctx.require(Action::ManageUsers)?;
    Ok(Json(state.users.get(id).await?))
}

/// Change a user's roles, name or enabled flag (admins). Disabling revokes its refresh tokens.
#[utoipa::path(patch, path = "/api/users/{id}", tag = "users", params(("id" = Uuid, Path, description = "User id")),
    request_body = UserPatch,
    responses((status = 200, description = "Updated", body = User),
              (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
              BodyRefused, MalformedId, Unauthorized, Forbidden))]
pub async fn update_user(
    State(state): State<AuthState>,
    ctx: RequestContext,
    client: ClientAddress,
    PathId(id): PathId<UserId>,
    JsonBody(patch): JsonBody<UserPatch>,
) -> Result<Json<User>> {
    ctx.require(Action::ManageUsers)?;
    patch.validate()?;
    let user = state.users.update(id, &patch, state.config.clock.now()).await?;
    let changed = json!({
        "roles": patch.roles,
        "enabled": patch.enabled,
        "displayNameChanged": patch.display_name.is_some(),
    });
    AuthEvent::new("user_update", "ok")
        .of(id)
        .by(UserId::parse(&ctx.user_id))
        .from(&client)
        .with(changed)
        .record(&state.pool, state.config.clock.now())
        .await?;
    state.keys.reload().await?;
    tracing::info!(user = %id, by = %ctx.user_id, "user updated");
    Ok(Json(user))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PasswordChange {
    pub current_password: String,
    /// 12 to 128 characters.
    pub new_password: String,
}

/// Change your own password. Every session of yours ends: log in again.
///
/// Wrong current passwords count against the same limits as failed logins (429 beyond them).
#[utoipa::path(post, path = "/api/users/me/password", tag = "users", request_body = PasswordChange,
    responses((status = 204, description = "Changed"),
              (status = 429, description = "Too many failed attempts", body = Problem, content_type = "application/problem+json"),
              BodyRefused, Unauthorized))]
pub async fn change_password(
    State(state): State<AuthState>,
    ctx: RequestContext,
    client: ClientAddress,
    JsonBody(body): JsonBody<PasswordChange>,
) -> Result<StatusCode> {
    ctx.require(Action::ChangeOwnPassword)?;
    // Tokens name users by their UUID; one that does not is no user of this service.
    let id = UserId::parse(&ctx.user_id).ok_or(Error::NotFound)?;
    let user = state.users.get(id).await?;
    let limits = &state.config.limits;
    let clock = &state.config.clock;
    let event = |outcome| AuthEvent::new("password_change", outcome).of(id).from(&client);
    let attempt =
        match lockout::begin(&state.pool, limits, clock, &Email::key_of(&user.email), &client.0).await {
            Err(Error::LockedOut { retry_after }) => {
                event("locked").record(&state.pool, clock.now()).await?;
                return Err(Error::LockedOut { retry_after });
            }
            other => other?,
        };
    let mut errors: Vec<FieldError> =
        passwords::check_policy(&body.new_password, "/newPassword").into_iter().collect();
    let current = state.users.password_hash(id).await?;
    if state.hasher.verify(body.current_password, Some(current)).await? {
        attempt.succeeded(&state.pool).await?;
    } else {
        event("failed").record(&state.pool, clock.now()).await?;
        errors.insert(0, FieldError::body("/currentPassword", "is not your current password"));
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    let hash = state.hasher.hash(body.new_password).await?;
    state.users.set_password(id, &hash, clock.now()).await?;
    event("ok").record(&state.pool, clock.now()).await?;
    state.keys.reload().await?;
    tracing::info!(user = %id, "password changed");
    Ok(StatusCode::NO_CONTENT)
}
