//! The OpenAPI description of the patients API, generated from the handlers.

use kit::{FieldError, Problem};
use utoipa::OpenApi;

use crate::{
    domain::{Address, Patient, PatientInput, Sex},
    http::{PatientHistory, PatientPage},
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
    ),
    components(schemas(Patient, PatientInput, Address, Sex, PatientPage, PatientHistory, PatientVersion, Problem, FieldError)),
    tags((name = "patients", description = "Patient records: registration, search, updates, history"))
)]
pub struct PatientsApi;
