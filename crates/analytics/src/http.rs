//! `GET /api/analytics/summary` (analysts and admins).

use axum::{Json, Router, extract::State};
use kit::{
    FieldError, Problem, RequestContext,
    auth::Verifier,
    json::QueryParams,
    net::TrustedProxies,
    openapi::{Forbidden, InvalidParameters, Unauthorized},
};
use serde::Deserialize;
use sqlx::PgPool;
use utoipa::{IntoParams, OpenApi};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    aggregates::{self, Summary},
    policy::Action,
};

#[derive(Clone)]
pub struct AnalyticsState {
    pub pool: PgPool,
    pub verifier: Verifier,
    pub trusted_proxies: TrustedProxies,
}

kit::state_parts!(AnalyticsState { pool: PgPool, verifier: Verifier, trusted_proxies: TrustedProxies });

#[derive(OpenApi)]
#[openapi(tags((name = "analytics", description = "Aggregates over all patients; nothing that identifies one")))]
pub struct AnalyticsApi;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SummaryParams {
    /// How many days of registrations per day, 1 to 366 (default 30).
    #[param(value_type = Option<i32>, minimum = 1, maximum = 366)]
    pub days: Option<String>,
}

/// Active patients, by sex and age band, and registrations per day: kept from the event
/// stream, usually a fraction of a second behind the patients service.
#[utoipa::path(get, path = "/api/analytics/summary", tag = "analytics", params(SummaryParams),
    responses((status = 200, description = "The numbers", body = Summary), InvalidParameters, Unauthorized, Forbidden))]
pub async fn summary(
    State(pool): State<PgPool>,
    ctx: RequestContext,
    QueryParams(params): QueryParams<SummaryParams>,
) -> Result<Json<Summary>, Problem> {
    ctx.require(Action::ReadSummary)?;
    let days = match params.days.as_deref().map(str::parse::<i32>) {
        None => 30,
        Some(Ok(days)) if (1..=366).contains(&days) => days,
        Some(_) => {
            return Err(Problem::validation(vec![FieldError::parameter(
                "days",
                "must be a whole number from 1 to 366",
            )]));
        }
    };
    Ok(Json(aggregates::summary(&pool, days).await.map_err(kit::db::problem)?))
}

fn api() -> OpenApiRouter<AnalyticsState> {
    OpenApiRouter::with_openapi(AnalyticsApi::openapi()).routes(routes!(summary))
}

pub fn document() -> utoipa::openapi::OpenApi {
    api().split_for_parts().1
}

pub fn routes(state: AnalyticsState) -> Router {
    api().split_for_parts().0.with_state(state)
}
