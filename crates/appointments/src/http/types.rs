//! `/api/appointment-types`: the kinds of appointment and their lengths.

use axum::{
    Json,
    extract::{Path, Request, State},
    http::StatusCode,
};
use kit::{
    Problem, RequestContext,
    json::JsonBody,
    openapi::{BodyRefused, Forbidden, Unauthorized},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    access::Scheduling,
    domain::{AppointmentType, AppointmentTypeInput, valid_type_code},
    error::{Error, Result},
    policy::Action,
};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AppointmentTypeList {
    /// By code.
    pub types: Vec<AppointmentType>,
}

/// Every appointment type.
#[utoipa::path(get, path = "/api/appointment-types", tag = "appointments",
    responses((status = 200, description = "By code", body = AppointmentTypeList), Unauthorized, Forbidden))]
pub async fn list(
    State(scheduling): State<Scheduling>,
    ctx: RequestContext,
) -> Result<Json<AppointmentTypeList>> {
    scheduling.authorize(&ctx, Action::ReadSchedules, None).await?;
    Ok(Json(AppointmentTypeList { types: scheduling.practitioners.types().await? }))
}

/// Add or change an appointment type (admins). Booked appointments keep their times.
#[utoipa::path(put, path = "/api/appointment-types/{code}", tag = "appointments",
    params(("code" = String, Path, pattern = "^[a-z][a-z0-9-]{0,39}$", description = "e.g. `vaccination`")),
    request_body = AppointmentTypeInput,
    responses((status = 200, description = "Changed", body = AppointmentType),
              (status = 201, description = "Added", body = AppointmentType),
              (status = 400, description = "Not a valid code", body = Problem, content_type = "application/problem+json"),
              BodyRefused, Unauthorized, Forbidden))]
pub async fn put(
    State(scheduling): State<Scheduling>,
    ctx: RequestContext,
    Path(code): Path<String>,
    request: Request,
) -> Result<(StatusCode, Json<AppointmentType>)> {
    scheduling.authorize(&ctx, Action::ManageSchedules, None).await?;
    if !valid_type_code(&code) {
        return Err(Error::MalformedCode);
    }
    let input: AppointmentTypeInput = JsonBody::read(request).await?;
    let (name, minutes) = input.parse().map_err(Error::Invalid)?;
    let (kind, created) = scheduling.practitioners.put_type(&code, &name, minutes).await?;
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(kind)))
}
