//! The OpenAPI description of the patients API, generated from the handlers.

use kit::{FieldError, Problem};
use utoipa::OpenApi;

use crate::{
    audit::AuditRecord,
    domain::{Address, Patient, PatientInput, Sex},
    http::{AuditPage, PatientHistory, PatientPage},
    repository::PatientVersion,
};

#[derive(OpenApi)]
#[openapi(
    paths(
        crate::http::register,
        crate::http::search,
        crate::http::read,
        crate::http::update,
        crate::http::deactivate,
        crate::http::history,
        crate::http::audit_events,
    ),
    components(schemas(Patient, PatientInput, Address, Sex, PatientPage, PatientHistory, PatientVersion, Problem,
                       FieldError, AuditPage, AuditRecord)),
    tags((name = "patients", description = "Patient records: registration, search, updates, history"),
         (name = "audit", description = "Who saw or changed which patient record"))
)]
pub struct PatientsApi;
