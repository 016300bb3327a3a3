//! The REST face: `GET /api/notifications` (the delivery log, for staff) and
//! `GET/PUT /api/notifications/preferences/{patientId}` (which channels a patient accepts).
//! Every read and change is audited (kit::trail), and every refusal.

use axum::{
    Json, Router,
    extract::{Request, State},
};
use kit::{
    FieldError, Problem, RequestContext,
    auth::Action as _,
    extract::PathId,
    json::{Cursor, JsonBody, QueryParams, uuid_param},
    openapi::{BodyRefused, Forbidden, InvalidParameters, MalformedId, Unauthorized},
    trail::{self, Entry},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{
    error::{Error, Result},
    policy::Action,
    store::{Delivery, LogFilter, Position, Preferences, Store},
};

#[derive(Clone)]
pub struct NotificationsState {
    pub store: Store,
    pub verifier: kit::auth::Verifier,
    pub trusted_proxies: kit::net::TrustedProxies,
}

kit::state_parts!(NotificationsState {
    store: Store,
    verifier: kit::auth::Verifier,
    trusted_proxies: kit::net::TrustedProxies
});

#[derive(OpenApi)]
#[openapi(
    components(schemas(Problem, FieldError)),
    tags((name = "notifications", description = "Messages to patients: the delivery log and contact preferences"))
)]
pub struct NotificationsApi;

/// 403 unless the caller may do `action`; the refusal is audited first.
async fn authorize(
    store: &Store,
    ctx: &RequestContext,
    action: Action,
    patient_id: Option<Uuid>,
) -> Result<()> {
    Ok(trail::authorize(store.pool(), ctx, action, None, patient_id).await?)
}

kit::paged_params! {
    /// Filters of the delivery log.
    pub struct LogParams {
        #[param(value_type = Option<Uuid>)]
        pub patient_id: Option<String>,
        #[param(value_type = Option<Uuid>)]
        pub appointment_id: Option<String>,
        /// `queued`, `sending`, `sent`, `failed`, `cancelled` or `skipped`.
        #[param(pattern = "^(queued|sending|sent|failed|cancelled|skipped)$")]
        pub status: Option<String>,
    }
}

/// A page of the delivery log, newest due first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryPage {
    pub notifications: Vec<Delivery>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

const STATUSES: [&str; 6] = ["queued", "sending", "sent", "failed", "cancelled", "skipped"];

/// The messages sent (or to be sent, or not sent, and why) to patients: welcome,
/// confirmations, notices and reminders, per channel, with their delivery state.
#[utoipa::path(get, path = "/api/notifications", tag = "notifications", params(LogParams),
    responses((status = 200, description = "One page", body = DeliveryPage), InvalidParameters, Unauthorized, Forbidden))]
pub async fn log(
    State(store): State<Store>,
    ctx: RequestContext,
    QueryParams(params): QueryParams<LogParams>,
) -> Result<Json<DeliveryPage>> {
    authorize(&store, &ctx, Action::ReadLog, None).await?;
    let mut errors = Vec::new();
    let status = params.status.as_deref().map(str::trim).map(str::to_owned);
    if status.as_deref().is_some_and(|s| !STATUSES.contains(&s)) {
        errors.push(FieldError::parameter(
            "status",
            "must be queued, sending, sent, failed, cancelled or skipped",
        ));
    }
    let filter = LogFilter {
        patient_id: uuid_param(params.patient_id.as_deref(), "patientId", &mut errors),
        appointment_id: uuid_param(params.appointment_id.as_deref(), "appointmentId", &mut errors),
        status,
    };
    let limit = kit::json::page_limit(params.limit.as_deref(), 50, &mut errors);
    let after: Option<Position> = Cursor::param(params.cursor.as_deref(), &mut errors);
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    let mut page = store.log(&filter, limit, after.as_ref()).await?;
    let next = kit::json::next_page(&mut page, limit, |d| (d.due_at, d.id));
    let shown: Vec<Uuid> = page.iter().map(|d| d.id).collect();
    let entry = Entry::new(Action::ReadLog.as_str(), None, filter.patient_id, "ok")
        .with_details(json!({ "results": shown.len(), "notificationIds": shown }));
    trail::record(store.pool(), &ctx, &[entry]).await?;
    Ok(Json(DeliveryPage { notifications: page, next_cursor: next.as_ref().map(Cursor::encode) }))
}

/// Which channels a patient accepts (both, unless changed).
#[utoipa::path(get, path = "/api/notifications/preferences/{patientId}", tag = "notifications",
    params(("patientId" = Uuid, Path, description = "The patient's id")),
    responses((status = 200, description = "The preferences", body = Preferences), MalformedId, Unauthorized, Forbidden))]
pub async fn preferences(
    State(store): State<Store>,
    ctx: RequestContext,
    PathId(patient_id): PathId,
) -> Result<Json<Preferences>> {
    authorize(&store, &ctx, Action::ReadPreferences, Some(patient_id)).await?;
    let preferences = store.preferences(patient_id).await?;
    trail::record(
        store.pool(),
        &ctx,
        &[Entry::new(Action::ReadPreferences.as_str(), None, Some(patient_id), "ok")],
    )
    .await?;
    Ok(Json(preferences))
}

/// Set which channels a patient accepts: `{"email": false, "sms": true}`. Messages not yet
/// sent follow the new choice (an opted-out channel's are skipped).
#[utoipa::path(put, path = "/api/notifications/preferences/{patientId}", tag = "notifications",
    params(("patientId" = Uuid, Path, description = "The patient's id")),
    request_body = Preferences,
    responses((status = 200, description = "Set", body = Preferences), BodyRefused, MalformedId, Unauthorized, Forbidden))]
pub async fn set_preferences(
    State(store): State<Store>,
    ctx: RequestContext,
    PathId(patient_id): PathId,
    request: Request,
) -> Result<Json<Preferences>> {
    authorize(&store, &ctx, Action::SetPreferences, Some(patient_id)).await?;
    let preferences: Preferences = JsonBody::read(request).await?;
    store.set_preferences(patient_id, preferences, &ctx.user_id).await?;
    let entry = Entry::new(Action::SetPreferences.as_str(), None, Some(patient_id), "ok")
        .with_details(json!({ "email": preferences.email, "sms": preferences.sms }));
    trail::record(store.pool(), &ctx, &[entry]).await?;
    Ok(Json(preferences))
}

fn api() -> OpenApiRouter<NotificationsState> {
    OpenApiRouter::with_openapi(NotificationsApi::openapi())
        .routes(routes!(log))
        .routes(routes!(preferences, set_preferences))
}

pub fn document() -> utoipa::openapi::OpenApi {
    api().split_for_parts().1
}

pub fn routes(state: NotificationsState) -> Router {
    api().split_for_parts().0.with_state(state)
}
