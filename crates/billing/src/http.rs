//! The REST face: `GET /api/billing/accounts/{patientId}` (billing staff and admins).

use axum::{Json, Router, extract::State};
use kit::{
    RequestContext,
    auth::Verifier,
    extract::PathId,
    net::TrustedProxies,
    openapi::{Forbidden, MalformedId, Unauthorized},
};
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    accounts::{Account, AccountRepository},
    error::{Error, Result},
    policy::{self, Action},
};

#[derive(Clone)]
pub struct BillingState {
    pub accounts: AccountRepository,
    pub verifier: Verifier,
    pub trusted_proxies: TrustedProxies,
}

kit::state_parts!(BillingState {
    accounts: AccountRepository,
    verifier: Verifier,
    trusted_proxies: TrustedProxies
});

#[derive(OpenApi)]
#[openapi(tags((name = "billing", description = "Billing accounts, one per patient")))]
pub struct BillingApi;

/// A patient's billing account (opened when the patient was registered).
#[utoipa::path(get, path = "/api/billing/accounts/{patientId}", tag = "billing",
    params(("patientId" = uuid::Uuid, Path, description = "The patient's id")),
    responses(
        (status = 200, description = "The account", body = Account),
        (status = 404, description = "The patient has no account (unknown, or not opened yet)", body = kit::Problem, content_type = "application/problem+json"),
        MalformedId, Unauthorized, Forbidden,
    ))]
pub async fn get_account(
    State(accounts): State<AccountRepository>,
    ctx: RequestContext,
    PathId(patient_id): PathId,
) -> Result<Json<Account>> {
    if !policy::may(&ctx, Action::ReadAccount) {
        return Err(Error::Forbidden);
    }
    Ok(Json(accounts.get(patient_id).await?.ok_or(Error::NotFound)?))
}

fn api() -> OpenApiRouter<BillingState> {
    OpenApiRouter::with_openapi(BillingApi::openapi()).routes(routes!(get_account))
}

/// The service's part of the public OpenAPI document.
pub fn document() -> utoipa::openapi::OpenApi {
    api().split_for_parts().1
}

pub fn routes(state: BillingState) -> Router {
    api().split_for_parts().0.with_state(state)
}
