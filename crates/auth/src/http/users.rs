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
use utoipa::{IntoParams, ToSchema};

use crate::{
    AuthState,
    error::{Error, Result},
    lockout, passwords,
    policy::Action,
    trail::AuthEvent,
    users::{NewUser, User, UserId, UserName, UserPatch},
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

/// Most user ids one name lookup takes: as many as fit in one query parameter.
pub const MAX_NAME_LOOKUPS: usize = 25;

/// The ids whose names are wanted.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NamesParams {
    /// User ids, comma-separated, 1 to 25.
    #[param(
        required = true,
        pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(,[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}){0,24}$"
    )]
    pub ids: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserNames {
    /// Those of the ids asked for that are users (disabled ones too), ordered by id; an id
    /// that is no user is left out.
    pub users: Vec<UserName>,
}

/// The display names of colleagues, by user id (any signed-in user).
///
/// A record's history and the audit trails name who did something by user id; this turns
/// those ids into the names staff know each other by. Only names: email, roles and the rest
/// stay with the admins' `GET /api/users/{id}`.
#[utoipa::path(get, path = "/api/users/names", tag = "users", params(NamesParams),
    responses((status = 200, description = "The names of those ids that are users", body = UserNames),
              InvalidParameters, Unauthorized))]
pub async fn user_names(
    State(state): State<AuthState>,
    ctx: RequestContext,
    QueryParams(params): QueryParams<NamesParams>,
) -> Result<Json<UserNames>> {
    ctx.require(Action::ReadColleagueNames)?;
    let ids = parse_ids(params.ids.as_deref())?;
    Ok(Json(UserNames { users: state.users.names(&ids).await? }))
}

/// The `ids` parameter: 1 to [`MAX_NAME_LOOKUPS`] UUIDs, comma-separated.
fn parse_ids(raw: Option<&str>) -> Result<Vec<UserId>> {
    let invalid = |detail: &str| Error::Invalid(vec![FieldError::parameter("ids", detail)]);
    let raw = raw.ok_or_else(|| invalid("is required: user ids, comma-separated"))?;
    // Exactly the hyphenated form the document's pattern allows (36 characters: the uuid
    // crate would also take braced, URN and bare-hex forms).
    let ids: Option<Vec<UserId>> =
        raw.split(',').map(|id| if id.len() == 36 { UserId::parse(id) } else { None }).collect();
    let ids = ids.ok_or_else(|| invalid("must be user ids (UUIDs), comma-separated"))?;
    if ids.len() > MAX_NAME_LOOKUPS {
        return Err(invalid(&format!("must name at most {MAX_NAME_LOOKUPS} users")));
    }
    Ok(ids)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn field_detail(result: Result<Vec<UserId>>) -> String {
        match result {
            Err(Error::Invalid(errors)) => {
                assert_eq!(errors.len(), 1);
                errors[0].detail.clone()
            }
            other => panic!("expected one field error, got {other:?}"),
        }
    }

    #[test]
    fn ids_are_uuids_separated_by_commas() {
        let a = UserId::new();
        let b = UserId::new();
        assert_eq!(parse_ids(Some(&format!("{a},{b}"))).expect("two ids"), vec![a, b]);
        assert!(field_detail(parse_ids(None)).contains("required"));
        assert!(field_detail(parse_ids(Some(&format!("{a},admin")))).contains("UUIDs"));
        assert!(field_detail(parse_ids(Some(&format!("{a},")))).contains("UUIDs"));
        assert!(field_detail(parse_ids(Some(&format!("{a}, {b}")))).contains("UUIDs"));
        let bare = a.to_string().replace('-', "");
        assert!(field_detail(parse_ids(Some(&bare))).contains("UUIDs"));
        let many = vec![a.to_string(); MAX_NAME_LOOKUPS + 1].join(",");
        assert!(field_detail(parse_ids(Some(&many))).contains("at most 25"));
        let most = vec![a.to_string(); MAX_NAME_LOOKUPS].join(",");
        assert_eq!(parse_ids(Some(&most)).expect("25 ids").len(), MAX_NAME_LOOKUPS);
    }

    #[test]
    fn the_documented_pattern_and_the_web_app_take_as_many_ids_as_the_handler() {
        use utoipa::{
            IntoParams,
            openapi::{RefOr, schema::Schema},
        };
        let params = NamesParams::into_params(|| None);
        let ids = params.iter().find(|p| p.name == "ids").expect("the ids parameter");
        let Some(RefOr::T(Schema::Object(schema))) = &ids.schema else { panic!("an inline schema") };
        let pattern = schema.pattern.as_deref().expect("a pattern");
        // One id, then up to MAX_NAME_LOOKUPS - 1 more after commas.
        assert!(
            pattern.ends_with(&format!("){{0,{}}}$", MAX_NAME_LOOKUPS - 1)),
            "the OpenAPI pattern {pattern} must take {MAX_NAME_LOOKUPS} ids, as parse_ids does"
        );
        // The web app asks in batches of the same size.
        let web = include_str!("../../../../web/src/api.ts");
        assert!(
            web.contains(&format!("const MAX_NAME_LOOKUPS = {MAX_NAME_LOOKUPS};")),
            "web/src/api.ts must ask for at most {MAX_NAME_LOOKUPS} names a call"
        );
    }
}
