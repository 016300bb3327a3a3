//! `/api/practitioners`: practitioners (admins manage them; staff read them), their weekly
//! hours and exceptions, and their free times.

use axum::{
    Json,
    extract::{Request, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use kit::{
    FieldError, Problem, RequestContext,
    extract::{PathId, etag, if_match},
    json::{Cursor, JsonBody, QueryParams, instant_param},
    openapi::{BodyRefused, Forbidden, InvalidParameters, MalformedId, PreconditionRefused, Unauthorized},
};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{PathIds, location, with_etag};
use crate::{
    access::{DEFAULT_TYPE, Scheduling},
    domain::{
        ExceptionInput, Practitioner, PractitionerDraft, PractitionerInput, ScheduleException, WorkingHours,
    },
    error::{Error, Result},
    policy::Action,
    practitioners::to_api,
};

/// Longest range availability is computed for at once.
const MAX_AVAILABILITY_DAYS: i64 = 31;

kit::paged_params! {
    /// Filters of the practitioner list.
    pub struct PractitionerParams {
        /// Only this specialty (ignoring case).
        #[param(max_length = 100)]
        pub specialty: Option<String>,
        /// `true` to include practitioners who no longer take appointments.
        #[param(value_type = Option<bool>)]
        pub include_inactive: Option<String>,
    }
}

/// A page of practitioners, by name.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PractitionerPage {
    pub practitioners: Vec<Practitioner>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// List practitioners by name.
#[utoipa::path(get, path = "/api/practitioners", tag = "practitioners", params(PractitionerParams),
    responses((status = 200, description = "One page", body = PractitionerPage), InvalidParameters, Unauthorized, Forbidden))]
pub async fn list(
    State(scheduling): State<Scheduling>,
    ctx: RequestContext,
    QueryParams(params): QueryParams<PractitionerParams>,
) -> Result<Json<PractitionerPage>> {
    scheduling.authorize(&ctx, Action::ReadSchedules, None).await?;
    let mut errors = Vec::new();
    let limit = kit::json::page_limit(params.limit.as_deref(), 50, &mut errors);
    let after: Option<(String, Uuid)> = Cursor::param(params.cursor.as_deref(), &mut errors);
    let include_inactive = match params.include_inactive.as_deref().map(str::trim) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            errors.push(FieldError::parameter("includeInactive", "must be true or false"));
            false
        }
    };
    let specialty = params.specialty.as_deref().map(str::trim);
    if specialty.is_some_and(|s| s.chars().count() > 100) {
        errors.push(FieldError::parameter("specialty", "must be at most 100 characters"));
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    let mut practitioners =
        scheduling.practitioners.list(specialty, include_inactive, limit, after.as_ref()).await?;
    let next = kit::json::next_page(&mut practitioners, limit, |p| (p.name.clone(), p.id));
    Ok(Json(PractitionerPage { practitioners, next_cursor: next.as_ref().map(Cursor::encode) }))
}

/// Add a practitioner (admins).
#[utoipa::path(post, path = "/api/practitioners", tag = "practitioners", request_body = PractitionerInput,
    responses((status = 201, description = "Added", body = Practitioner,
               headers(("Location" = String, description = "Its URL"), ("ETag" = String, description = "Its version"))),
              BodyRefused, Unauthorized, Forbidden))]
pub async fn create(
    State(scheduling): State<Scheduling>,
    ctx: RequestContext,
    request: Request,
) -> Result<Response> {
    scheduling.authorize(&ctx, Action::ManageSchedules, None).await?;
    let input: PractitionerInput = JsonBody::read(request).await?;
    let draft = PractitionerDraft::parse(input).map_err(Error::Invalid)?;
    let practitioner = scheduling.practitioners.create(&draft).await?;
    tracing::info!(practitioner = %practitioner.id, actor = %ctx.user_id, "practitioner added");
    let headers = [
        (header::LOCATION, location(format!("/api/practitioners/{}", practitioner.id))),
        (header::ETAG, etag(practitioner.version)),
    ];
    Ok((StatusCode::CREATED, headers, Json(practitioner)).into_response())
}

/// Read a practitioner.
#[utoipa::path(get, path = "/api/practitioners/{id}", tag = "practitioners",
    params(("id" = Uuid, Path, description = "Practitioner id")),
    responses((status = 200, description = "The practitioner", body = Practitioner, headers(("ETag" = String, description = "Its version"))),
              (status = 404, description = "No such practitioner", body = Problem, content_type = "application/problem+json"),
              MalformedId, Unauthorized, Forbidden))]
pub async fn read(
    State(scheduling): State<Scheduling>,
    ctx: RequestContext,
    PathId(id): PathId,
) -> Result<Response> {
    scheduling.authorize(&ctx, Action::ReadSchedules, None).await?;
    let practitioner = scheduling.practitioner(id).await?;
    Ok(with_etag(practitioner.version, practitioner))
}

/// Replace a practitioner's details (admins), with `If-Match`. Setting `active` to false stops
/// new bookings; booked appointments stay.
#[utoipa::path(put, path = "/api/practitioners/{id}", tag = "practitioners",
    params(("id" = Uuid, Path, description = "Practitioner id"),
           ("If-Match" = String, Header, pattern = r#"^"[1-9][0-9]{0,8}"$"#, description = "The ETag read, e.g. \"3\"")),
    request_body = PractitionerInput,
    responses((status = 200, description = "Replaced", body = Practitioner, headers(("ETag" = String, description = "The new version"))),
              (status = 404, description = "No such practitioner", body = Problem, content_type = "application/problem+json"),
              BodyRefused, MalformedId, Unauthorized, Forbidden, PreconditionRefused))]
pub async fn update(
    State(scheduling): State<Scheduling>,
    ctx: RequestContext,
    PathId(id): PathId,
    request: Request,
) -> Result<Response> {
    scheduling.authorize(&ctx, Action::ManageSchedules, None).await?;
    let expected = if_match(request.headers());
    let input: PractitionerInput = JsonBody::read(request).await?;
    let draft = PractitionerDraft::parse(input).map_err(Error::Invalid)?;
    let practitioner = scheduling.practitioners.update(id, expected?, &draft).await?;
    Ok(with_etag(practitioner.version, practitioner))
}

/// A practitioner's weekly working hours (wall-clock times in their time zone).
#[utoipa::path(get, path = "/api/practitioners/{id}/working-hours", tag = "practitioners",
    params(("id" = Uuid, Path, description = "Practitioner id")),
    responses((status = 200, description = "The week", body = WorkingHours),
              (status = 404, description = "No such practitioner", body = Problem, content_type = "application/problem+json"),
              MalformedId, Unauthorized, Forbidden))]
pub async fn working_hours(
    State(scheduling): State<Scheduling>,
    ctx: RequestContext,
    PathId(id): PathId,
) -> Result<Json<WorkingHours>> {
    scheduling.authorize(&ctx, Action::ReadSchedules, None).await?;
    scheduling.practitioner(id).await?;
    Ok(Json(WorkingHours::from_shifts(&scheduling.practitioners.week(id).await?)))
}

/// Replace a practitioner's weekly working hours (admins): the whole week at once. Booked
/// appointments stay where they are.
#[utoipa::path(put, path = "/api/practitioners/{id}/working-hours", tag = "practitioners",
    params(("id" = Uuid, Path, description = "Practitioner id")),
    request_body = WorkingHours,
    responses((status = 200, description = "The new week", body = WorkingHours),
              (status = 404, description = "No such practitioner", body = Problem, content_type = "application/problem+json"),
              BodyRefused, MalformedId, Unauthorized, Forbidden))]
pub async fn replace_working_hours(
    State(scheduling): State<Scheduling>,
    ctx: RequestContext,
    PathId(id): PathId,
    request: Request,
) -> Result<Json<WorkingHours>> {
    scheduling.authorize(&ctx, Action::ManageSchedules, None).await?;
    let input: WorkingHours = JsonBody::read(request).await?;
    let shifts = input.parse().map_err(Error::Invalid)?;
    scheduling.practitioner(id).await?;
    scheduling.practitioners.replace_week(id, &shifts).await?;
    Ok(Json(WorkingHours::from_shifts(&scheduling.practitioners.week(id).await?)))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ExceptionParams {
    /// First date (`YYYY-MM-DD`, default today).
    #[param(value_type = Option<String>, format = Date)]
    from: Option<String>,
    /// Last date, included (default 90 days after `from`; at most 366 days after it).
    #[param(value_type = Option<String>, format = Date)]
    to: Option<String>,
}

/// A practitioner's exceptions in a date range.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExceptionList {
    pub exceptions: Vec<ScheduleException>,
}

/// A practitioner's exceptions (days off, extra hours) from `from` to `to`.
#[utoipa::path(get, path = "/api/practitioners/{id}/exceptions", tag = "practitioners",
    params(("id" = Uuid, Path, description = "Practitioner id"), ExceptionParams),
    responses((status = 200, description = "By date", body = ExceptionList),
              (status = 404, description = "No such practitioner", body = Problem, content_type = "application/problem+json"),
              InvalidParameters, MalformedId, Unauthorized, Forbidden))]
pub async fn exceptions(
    State(scheduling): State<Scheduling>,
    ctx: RequestContext,
    PathId(id): PathId,
    QueryParams(params): QueryParams<ExceptionParams>,
) -> Result<Json<ExceptionList>> {
    scheduling.authorize(&ctx, Action::ReadSchedules, None).await?;
    let mut errors = Vec::new();
    let mut date = |raw: Option<&str>, name: &str| {
        raw.and_then(|r| {
            kit::date::parse_date(r).map_err(|d| errors.push(FieldError::parameter(name, d))).ok()
        })
    };
    let from = date(params.from.as_deref(), "from").unwrap_or_else(|| OffsetDateTime::now_utc().date());
    let to = date(params.to.as_deref(), "to").unwrap_or(from + Duration::days(90));
    if to < from || to - from > Duration::days(366) {
        errors.push(FieldError::parameter("to", "must be on or after `from` and at most 366 days after it"));
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    scheduling.practitioner(id).await?;
    let exceptions = scheduling.practitioners.exceptions(id, from, to).await?;
    Ok(Json(ExceptionList {
        exceptions: exceptions.into_iter().map(|(id, e, reason)| to_api(id, &e, reason)).collect(),
    }))
}

/// Add a day off (whole or some hours) or extra hours (admins).
#[utoipa::path(post, path = "/api/practitioners/{id}/exceptions", tag = "practitioners",
    params(("id" = Uuid, Path, description = "Practitioner id")),
    request_body = ExceptionInput,
    responses((status = 201, description = "Added", body = ScheduleException),
              (status = 404, description = "No such practitioner", body = Problem, content_type = "application/problem+json"),
              BodyRefused, MalformedId, Unauthorized, Forbidden))]
pub async fn add_exception(
    State(scheduling): State<Scheduling>,
    ctx: RequestContext,
    PathId(id): PathId,
    request: Request,
) -> Result<(StatusCode, Json<ScheduleException>)> {
    scheduling.authorize(&ctx, Action::ManageSchedules, None).await?;
    let input: ExceptionInput = JsonBody::read(request).await?;
    let (exception, reason) = input.parse().map_err(Error::Invalid)?;
    scheduling.practitioner(id).await?;
    let added = scheduling.practitioners.add_exception(id, &exception, reason.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(added)))
}

/// Remove an exception (admins).
#[utoipa::path(delete, path = "/api/practitioners/{id}/exceptions/{exceptionId}", tag = "practitioners",
    params(("id" = Uuid, Path, description = "Practitioner id"), ("exceptionId" = Uuid, Path, description = "Exception id")),
    responses((status = 204, description = "Removed"),
              (status = 404, description = "The practitioner has no such exception", body = Problem, content_type = "application/problem+json"),
              MalformedId, Unauthorized, Forbidden))]
pub async fn remove_exception(
    State(scheduling): State<Scheduling>,
    ctx: RequestContext,
    PathIds(id, exception_id): PathIds,
) -> Result<StatusCode> {
    scheduling.authorize(&ctx, Action::ManageSchedules, None).await?;
    if scheduling.practitioners.remove_exception(id, exception_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Error::NotFound("the practitioner has no exception with this id"))
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AvailabilityParams {
    /// From this instant (RFC 3339; default now; the past is never offered).
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<String>,
    /// Up to this instant (RFC 3339; default 7 days after `from`; at most 31 days after it).
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<String>,
    /// Appointment type code (default `consultation`): its length is the slot's.
    #[serde(rename = "type")]
    #[param(rename = "type", pattern = "^[a-z][a-z0-9-]{0,39}$")]
    kind: Option<String>,
}

/// One free time.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Slot {
    /// In the practitioner's time zone.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub start: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub end: OffsetDateTime,
}

/// Free start times of a practitioner.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AvailabilityPage {
    pub practitioner_id: Uuid,
    /// The zone the times are shown in.
    pub time_zone: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub minutes: i32,
    /// In order; empty when the practitioner does not take appointments.
    pub slots: Vec<Slot>,
}

/// Free times of a practitioner for an appointment type: their working hours (with the
/// exceptions) minus what is booked, on a 15-minute grid.
#[utoipa::path(get, path = "/api/practitioners/{id}/availability", tag = "practitioners",
    params(("id" = Uuid, Path, description = "Practitioner id"), AvailabilityParams),
    responses((status = 200, description = "Free times", body = AvailabilityPage),
              (status = 404, description = "No such practitioner", body = Problem, content_type = "application/problem+json"),
              InvalidParameters, MalformedId, Unauthorized, Forbidden))]
pub async fn availability(
    State(scheduling): State<Scheduling>,
    ctx: RequestContext,
    PathId(id): PathId,
    QueryParams(params): QueryParams<AvailabilityParams>,
) -> Result<Response> {
    scheduling.authorize(&ctx, Action::ReadSchedules, None).await?;
    let mut errors = Vec::new();
    let from =
        instant_param(params.from.as_deref(), "from", &mut errors).unwrap_or_else(OffsetDateTime::now_utc);
    let to = instant_param(params.to.as_deref(), "to", &mut errors).unwrap_or(from + Duration::days(7));
    if to <= from || to - from > Duration::days(MAX_AVAILABILITY_DAYS) {
        errors.push(FieldError::parameter("to", "must be after `from` and at most 31 days after it"));
    }
    let kind = params.kind.as_deref().map(str::trim).unwrap_or(DEFAULT_TYPE);
    if !crate::domain::valid_type_code(kind) {
        errors.push(FieldError::parameter("type", "must be an appointment type code such as consultation"));
    }
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    let found = scheduling.availability(id, from, to, kind).await?;
    let page = AvailabilityPage {
        practitioner_id: found.practitioner.id,
        time_zone: found.practitioner.time_zone,
        kind: found.kind.code,
        minutes: found.kind.minutes,
        slots: found.slots.into_iter().map(|(start, end)| Slot { start, end }).collect(),
    };
    Ok(Json(page).into_response())
}
