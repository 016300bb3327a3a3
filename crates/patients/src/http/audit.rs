//! The audit trail of patient records, `GET /api/audit-events` (admins).

use axum::{Json, extract::State};
use kit::{
    RequestContext,
    json::{Cursor, QueryParams, instant_param, uuid_param},
    openapi::{Forbidden, InvalidParameters, Unauthorized},
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    access::PatientAccess,
    audit::{AuditPosition, AuditQuery, AuditRecord},
    domain::PatientId,
    error::{Error, Result},
    policy::Action,
};

kit::trail_params! {
    /// Filters of the audit trail.
    pub struct AuditParams {
        /// Only rows about this patient.
        #[param(value_type = Option<Uuid>)]
        pub patient_id: Option<String>,
    }
}

/// A page of the audit trail, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditPage {
    /// Newest first.
    pub events: Vec<AuditRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn parse_audit_params(params: AuditParams) -> Result<(AuditQuery, u32)> {
    let mut errors = Vec::new();
    let query = AuditQuery {
        patient_id: uuid_param(params.patient_id.as_deref(), "patientId", &mut errors).map(PatientId::from),
        // Users are named by the UUID in their tokens' `sub`.
        actor_id: uuid_param(params.user_id.as_deref(), "userId", &mut errors).map(|id| id.to_string()),
        from: instant_param(params.from.as_deref(), "from", &mut errors),
        to: instant_param(params.to.as_deref(), "to", &mut errors),
        after: Cursor::param(params.cursor.as_deref(), &mut errors),
    };
    let limit = kit::json::page_limit(params.limit.as_deref(), 50, &mut errors);
    if errors.is_empty() { Ok((query, limit)) } else { Err(Error::Invalid(errors)) }
}

/// The audit trail of patient records (admins): who did what to which record, when.
#[utoipa::path(
    get, path = "/api/audit-events", tag = "audit",
    params(AuditParams),
    responses(
        (status = 200, description = "One page, newest first", body = AuditPage),
        InvalidParameters, Unauthorized, Forbidden,
    )
)]
pub async fn audit_events(
    State(access): State<PatientAccess>,
    ctx: RequestContext,
    QueryParams(params): QueryParams<AuditParams>,
) -> Result<Json<AuditPage>> {
    ctx.require(Action::ReadAudit)?;
    let (query, limit) = parse_audit_params(params)?;
    let mut items = access.audit_trail(&query, limit + 1).await?;
    let next_cursor =
        kit::json::next_page(&mut items, limit, |last| Cursor::encode(&AuditPosition::of(last)));
    Ok(Json(AuditPage { events: items, next_cursor }))
}
