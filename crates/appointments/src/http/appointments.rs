//! `/api/appointments`: book, list (by practitioner and day, by patient, by status; the front
//! desk's "today"), read, history, and the lifecycle: reschedule, cancel, check in, complete,
//! no-show. Every change names the version it read in `If-Match`.

use axum::{
    Json,
    extract::{Request, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use kit::{
    FieldError, Problem, RequestContext,
    extract::{PathId, etag, if_match},
    json::{Cursor, JsonBody, QueryParams, instant_param, uuid_param},
    openapi::{BodyRefused, Forbidden, InvalidParameters, MalformedId, PreconditionRefused, Unauthorized},
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{location, with_etag};
use crate::{
    access::Scheduling,
    domain::{Appointment, BookingDraft, BookingInput, CancelInput, RescheduleInput, Status},
    error::{Error, Result},
    policy::Action,
    store::{Booking, ListFilter, Position},
};

/// Book an appointment.
///
/// The patient must exist and be active (asked of the patients service; 503 if it cannot
/// answer: nothing is booked blind), the practitioner must be active and working for the
/// whole appointment, and neither may have another appointment overlapping it (409).
#[utoipa::path(post, path = "/api/appointments", tag = "appointments", request_body = BookingInput,
    responses((status = 201, description = "Booked", body = Appointment,
               headers(("Location" = String, description = "Its URL"), ("ETag" = String, description = "Its version"))),
              (status = 409, description = "The practitioner or the patient already has an appointment then", body = Problem, content_type = "application/problem+json"),
              (status = 503, description = "The patients service cannot confirm the patient", body = Problem, content_type = "application/problem+json"),
              BodyRefused, Unauthorized, Forbidden))]
pub async fn book(
    State(scheduling): State<Scheduling>,
    ctx: RequestContext,
    request: Request,
) -> Result<Response> {
    scheduling.authorize(&ctx, Action::Book, None).await?;
    let token = kit::auth::bearer(request.headers()).unwrap_or_default().to_owned();
    let input: BookingInput = JsonBody::read(request).await?;
    let draft = BookingDraft::parse(input, OffsetDateTime::now_utc()).map_err(Error::Invalid)?;
    let booking = scheduling.book(&ctx, &token, draft).await?;
    Ok(created(booking))
}

fn created(booking: Booking) -> Response {
    let a = booking.appointment;
    let headers = [
        (header::LOCATION, location(format!("/api/appointments/{}", a.id))),
        (header::ETAG, etag(a.version)),
    ];
    (StatusCode::CREATED, headers, Json(a)).into_response()
}

kit::paged_params! {
    /// Filters of the appointment list. Every given filter must match.
    pub struct AppointmentParams {
        #[param(value_type = Option<Uuid>)]
        pub practitioner_id: Option<String>,
        #[param(value_type = Option<Uuid>)]
        pub patient_id: Option<String>,
        #[param(value_type = Option<Status>)]
        pub status: Option<String>,
        /// A calendar date (`YYYY-MM-DD`) in each practitioner's time zone.
        #[param(value_type = Option<String>, format = Date)]
        pub date: Option<String>,
        /// Starting at or after this instant (RFC 3339).
        #[param(value_type = Option<String>, format = DateTime)]
        pub from: Option<String>,
        /// Starting before this instant (RFC 3339).
        #[param(value_type = Option<String>, format = DateTime)]
        pub to: Option<String>,
    }
}

kit::paged_params! {
    /// Filters of the "today" list.
    pub struct TodayParams {
        #[param(value_type = Option<Uuid>)]
        pub practitioner_id: Option<String>,
        #[param(value_type = Option<Status>)]
        pub status: Option<String>,
    }
}

/// A page of appointments, by start.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppointmentPage {
    pub appointments: Vec<Appointment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn status_param(raw: Option<&str>, errors: &mut Vec<FieldError>) -> Option<Status> {
    let raw = raw.map(str::trim)?;
    let status = Status::parse(raw);
    if status.is_none() {
        errors.push(FieldError::parameter(
            "status",
            "must be booked, checked_in, completed, cancelled or no_show",
        ));
    }
    status
}

fn page_params(
    limit: Option<&str>,
    cursor: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> (u32, Option<Position>) {
    (kit::json::page_limit(limit, 50, errors), Cursor::param(cursor, errors))
}

async fn respond(
    scheduling: &Scheduling,
    ctx: &RequestContext,
    filter: ListFilter,
    limit: u32,
    after: Option<Position>,
) -> Result<Json<AppointmentPage>> {
    let (appointments, next) = scheduling.list(ctx, &filter, limit, after.as_ref()).await?;
    Ok(Json(AppointmentPage { appointments, next_cursor: next.as_ref().map(Cursor::encode) }))
}

/// List appointments by start time: a practitioner's day (`practitionerId` and `date`), a
/// patient's (`patientId`), by status or time range.
#[utoipa::path(get, path = "/api/appointments", tag = "appointments", params(AppointmentParams),
    responses((status = 200, description = "One page", body = AppointmentPage), InvalidParameters, Unauthorized, Forbidden))]
pub async fn list(
    State(scheduling): State<Scheduling>,
    ctx: RequestContext,
    QueryParams(params): QueryParams<AppointmentParams>,
) -> Result<Json<AppointmentPage>> {
    scheduling.authorize(&ctx, Action::List, None).await?;
    let mut errors = Vec::new();
    let filter = ListFilter {
        practitioner_id: uuid_param(params.practitioner_id.as_deref(), "practitionerId", &mut errors),
        patient_id: uuid_param(params.patient_id.as_deref(), "patientId", &mut errors),
        status: status_param(params.status.as_deref(), &mut errors),
        from: instant_param(params.from.as_deref(), "from", &mut errors),
        to: instant_param(params.to.as_deref(), "to", &mut errors),
        date: params.date.as_deref().and_then(|d| {
            kit::date::parse_date(d).map_err(|e| errors.push(FieldError::parameter("date", e))).ok()
        }),
        today: false,
    };
    let (limit, after) = page_params(params.limit.as_deref(), params.cursor.as_deref(), &mut errors);
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    respond(&scheduling, &ctx, filter, limit, after).await
}

/// The front desk's day: appointments starting today in each practitioner's time zone, by start.
#[utoipa::path(get, path = "/api/appointments/today", tag = "appointments", params(TodayParams),
    responses((status = 200, description = "One page", body = AppointmentPage), InvalidParameters, Unauthorized, Forbidden))]
pub async fn today(
    State(scheduling): State<Scheduling>,
    ctx: RequestContext,
    QueryParams(params): QueryParams<TodayParams>,
) -> Result<Json<AppointmentPage>> {
    scheduling.authorize(&ctx, Action::List, None).await?;
    let mut errors = Vec::new();
    let filter = ListFilter {
        practitioner_id: uuid_param(params.practitioner_id.as_deref(), "practitionerId", &mut errors),
        status: status_param(params.status.as_deref(), &mut errors),
        today: true,
        ..ListFilter::default()
    };
    let (limit, after) = page_params(params.limit.as_deref(), params.cursor.as_deref(), &mut errors);
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    respond(&scheduling, &ctx, filter, limit, after).await
}

/// Read an appointment.
#[utoipa::path(get, path = "/api/appointments/{id}", tag = "appointments",
    params(("id" = Uuid, Path, description = "Appointment id")),
    responses((status = 200, description = "The appointment", body = Appointment, headers(("ETag" = String, description = "Its version"))),
              (status = 404, description = "No such appointment", body = Problem, content_type = "application/problem+json"),
              MalformedId, Unauthorized, Forbidden))]
pub async fn read(
    State(scheduling): State<Scheduling>,
    ctx: RequestContext,
    PathId(id): PathId,
) -> Result<Response> {
    scheduling.authorize(&ctx, Action::Read, Some(id)).await?;
    let appointment = scheduling.read(&ctx, id).await?;
    Ok(with_etag(appointment.version, appointment))
}

/// One kept version of an appointment.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppointmentVersion {
    pub version: i32,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub recorded_at: OffsetDateTime,
    pub appointment: Appointment,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AppointmentHistory {
    /// Newest first.
    pub versions: Vec<AppointmentVersion>,
}

/// Every version of an appointment, newest first: where it was before each reschedule, and
/// each change of status.
#[utoipa::path(get, path = "/api/appointments/{id}/history", tag = "appointments",
    params(("id" = Uuid, Path, description = "Appointment id")),
    responses((status = 200, description = "All versions", body = AppointmentHistory),
              (status = 404, description = "No such appointment", body = Problem, content_type = "application/problem+json"),
              MalformedId, Unauthorized, Forbidden))]
pub async fn history(
    State(scheduling): State<Scheduling>,
    ctx: RequestContext,
    PathId(id): PathId,
) -> Result<Json<AppointmentHistory>> {
    scheduling.authorize(&ctx, Action::Read, Some(id)).await?;
    let versions = scheduling.history(&ctx, id).await?;
    Ok(Json(AppointmentHistory {
        versions: versions
            .into_iter()
            .map(|(version, recorded_at, appointment)| AppointmentVersion {
                version,
                recorded_at,
                appointment,
            })
            .collect(),
    }))
}

/// Move a booked appointment (same length unless `end` is given). The same rules as for
/// booking apply to the new time; the old one stays in the history.
#[utoipa::path(post, path = "/api/appointments/{id}/reschedule", tag = "appointments",
    params(("id" = Uuid, Path, description = "Appointment id"),
           ("If-Match" = String, Header, pattern = r#"^"[1-9][0-9]{0,8}"$"#, description = "The ETag read, e.g. \"1\"")),
    request_body = RescheduleInput,
    responses((status = 200, description = "Moved", body = Appointment, headers(("ETag" = String, description = "The new version"))),
              (status = 404, description = "No such appointment", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Not booked any more, or the new time is taken", body = Problem, content_type = "application/problem+json"),
              BodyRefused, MalformedId, Unauthorized, Forbidden, PreconditionRefused))]
pub async fn reschedule(
    State(scheduling): State<Scheduling>,
    ctx: RequestContext,
    PathId(id): PathId,
    request: Request,
) -> Result<Response> {
    scheduling.authorize(&ctx, Action::Manage, Some(id)).await?;
    let expected = if_match(request.headers());
    let input: RescheduleInput = JsonBody::read(request).await?;
    let (start, end) = input.parse(OffsetDateTime::now_utc()).map_err(Error::Invalid)?;
    let booking = scheduling.reschedule(&ctx, id, expected?, start, end).await?;
    Ok(with_etag(booking.appointment.version, booking.appointment))
}

/// Cancel a booked appointment, saying why. Its time becomes free.
#[utoipa::path(post, path = "/api/appointments/{id}/cancel", tag = "appointments",
    params(("id" = Uuid, Path, description = "Appointment id"),
           ("If-Match" = String, Header, pattern = r#"^"[1-9][0-9]{0,8}"$"#, description = "The ETag read, e.g. \"1\"")),
    request_body = CancelInput,
    responses((status = 200, description = "Cancelled", body = Appointment, headers(("ETag" = String, description = "The new version"))),
              (status = 404, description = "No such appointment", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Not booked (checked in, completed, cancelled or no-show)", body = Problem, content_type = "application/problem+json"),
              BodyRefused, MalformedId, Unauthorized, Forbidden, PreconditionRefused))]
pub async fn cancel(
    State(scheduling): State<Scheduling>,
    ctx: RequestContext,
    PathId(id): PathId,
    request: Request,
) -> Result<Response> {
    scheduling.authorize(&ctx, Action::Manage, Some(id)).await?;
    let expected = if_match(request.headers());
    let input: CancelInput = JsonBody::read(request).await?;
    let reason = input.parse().map_err(Error::Invalid)?;
    let booking =
        scheduling.appointments.change_status(&ctx, id, expected?, Status::Cancelled, Some(&reason)).await?;
    Ok(with_etag(booking.appointment.version, booking.appointment))
}

async fn move_to(
    scheduling: &Scheduling,
    ctx: &RequestContext,
    id: Uuid,
    headers: &HeaderMap,
    to: Status,
) -> Result<Response> {
    scheduling.authorize(ctx, Action::Manage, Some(id)).await?;
    let expected = if_match(headers)?;
    let booking = scheduling.appointments.change_status(ctx, id, expected, to, None).await?;
    Ok(with_etag(booking.appointment.version, booking.appointment))
}

/// The patient has arrived (a booked appointment).
#[utoipa::path(post, path = "/api/appointments/{id}/check-in", tag = "appointments",
    params(("id" = Uuid, Path, description = "Appointment id"),
           ("If-Match" = String, Header, pattern = r#"^"[1-9][0-9]{0,8}"$"#, description = "The ETag read, e.g. \"1\"")),
    responses((status = 200, description = "Checked in", body = Appointment, headers(("ETag" = String, description = "The new version"))),
              (status = 404, description = "No such appointment", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Not booked", body = Problem, content_type = "application/problem+json"),
              MalformedId, Unauthorized, Forbidden, PreconditionRefused))]
pub async fn check_in(
    State(scheduling): State<Scheduling>,
    ctx: RequestContext,
    PathId(id): PathId,
    headers: HeaderMap,
) -> Result<Response> {
    move_to(&scheduling, &ctx, id, &headers, Status::CheckedIn).await
}

/// The appointment took place (a checked-in one).
#[utoipa::path(post, path = "/api/appointments/{id}/complete", tag = "appointments",
    params(("id" = Uuid, Path, description = "Appointment id"),
           ("If-Match" = String, Header, pattern = r#"^"[1-9][0-9]{0,8}"$"#, description = "The ETag read, e.g. \"2\"")),
    responses((status = 200, description = "Completed", body = Appointment, headers(("ETag" = String, description = "The new version"))),
              (status = 404, description = "No such appointment", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Not checked in", body = Problem, content_type = "application/problem+json"),
              MalformedId, Unauthorized, Forbidden, PreconditionRefused))]
pub async fn complete(
    State(scheduling): State<Scheduling>,
    ctx: RequestContext,
    PathId(id): PathId,
    headers: HeaderMap,
) -> Result<Response> {
    move_to(&scheduling, &ctx, id, &headers, Status::Completed).await
}

/// The patient did not come (a booked appointment).
#[utoipa::path(post, path = "/api/appointments/{id}/no-show", tag = "appointments",
    params(("id" = Uuid, Path, description = "Appointment id"),
           ("If-Match" = String, Header, pattern = r#"^"[1-9][0-9]{0,8}"$"#, description = "The ETag read, e.g. \"1\"")),
    responses((status = 200, description = "Marked no-show", body = Appointment, headers(("ETag" = String, description = "The new version"))),
              (status = 404, description = "No such appointment", body = Problem, content_type = "application/problem+json"),
              (status = 409, description = "Not booked", body = Problem, content_type = "application/problem+json"),
              MalformedId, Unauthorized, Forbidden, PreconditionRefused))]
pub async fn no_show(
    State(scheduling): State<Scheduling>,
    ctx: RequestContext,
    PathId(id): PathId,
    headers: HeaderMap,
) -> Result<Response> {
    move_to(&scheduling, &ctx, id, &headers, Status::NoShow).await
}
