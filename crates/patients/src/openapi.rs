//! The OpenAPI description of the patients API, generated from the handlers.

use kit::{FieldError, Problem};
use utoipa::OpenApi;

use crate::{
    audit::AuditRecord,
    domain::{Address, Patient, PatientInput, Sex},
    http::{
        audit::AuditPage,
        patients::{PatientHistory, PatientPage},
    },
    records::PatientVersion,
};

#[derive(OpenApi)]
#[openapi(
    paths(
        crate::http::patients::register,
        crate::http::patients::search,
        crate::http::patients::read,
        crate::http::patients::update,
        crate::http::patients::deactivate,
        crate::http::patients::history,
        crate::http::audit::audit_events,
    ),
    components(schemas(Patient, PatientInput, Address, Sex, PatientPage, PatientHistory, PatientVersion, Problem,
                       FieldError, AuditPage, AuditRecord)),
    tags((name = "patients", description = "Patient records: registration, search, updates, history"),
         (name = "audit", description = "Who saw or changed which patient record"))
)]
pub struct PatientsApi;

/// The service's part of the public OpenAPI document.
pub fn document() -> utoipa::openapi::OpenApi {
    PatientsApi::openapi()
}
