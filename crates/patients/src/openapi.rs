//! The OpenAPI description of the patients API: its tags and shared schemas here; the
//! operations come from the handlers as they are routed ([`crate::http::document`]).

use kit::{FieldError, Problem};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    components(schemas(Problem, FieldError)),
    tags((name = "patients", description = "Patient records: registration, search, updates, history"),
         (name = "audit", description = "Who saw or changed which patient record"))
)]
pub struct PatientsApi;
