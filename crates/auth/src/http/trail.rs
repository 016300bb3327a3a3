//! The auth audit trail, `GET /api/auth-events` (admins).

use axum::{Json, extract::State};
use kit::{
    RequestContext,
    json::{Cursor, QueryParams, instant_param, uuid_param},
    openapi::{Forbidden, InvalidParameters, Unauthorized},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    AuthState,
    error::{Error, Result},
    policy::Action,
    trail::{self, AuthEventRecord, TrailQuery},
    users::UserId,
};

kit::trail_params! {
    /// Filters of the auth trail.
    pub struct TrailParams {}
}

/// A page of the auth trail.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthEventPage {
    /// Newest first.
    pub events: Vec<AuthEventRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The auth audit trail (admins): logins, logouts, stolen refresh tokens, password changes and
/// user changes, newest first.
#[utoipa::path(get, path = "/api/auth-events", tag = "users", params(TrailParams),
    responses((status = 200, description = "One page, newest first", body = AuthEventPage),
              InvalidParameters, Unauthorized, Forbidden))]
pub async fn auth_events(
    State(state): State<AuthState>,
    ctx: RequestContext,
    QueryParams(params): QueryParams<TrailParams>,
) -> Result<Json<AuthEventPage>> {
    ctx.require(Action::ReadAuthTrail)?;
    let mut errors = Vec::new();
    let query = TrailQuery {
        user_id: uuid_param(params.user_id.as_deref(), "userId", &mut errors).map(UserId::from),
        from: instant_param(params.from.as_deref(), "from", &mut errors),
        to: instant_param(params.to.as_deref(), "to", &mut errors),
        before_id: Cursor::param(params.cursor.as_deref(), &mut errors),
    };
    let limit = kit::json::page_limit(params.limit.as_deref(), 50, &mut errors);
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    let mut events = trail::list(&state.pool, &query, limit + 1).await?;
    let next_cursor = kit::json::next_page(&mut events, limit, |last| Cursor::encode(&last.id));
    Ok(Json(AuthEventPage { events, next_cursor }))
}
