//! The appointments service's errors and the one mapping to the HTTP answers they become.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use kit::{FieldError, Problem, extract::PreconditionError, json::BodyError, problem::kinds};

use crate::domain::Status;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(&'static str),
    #[error("the caller's roles do not allow this action")]
    Forbidden,
    #[error("the record is at version {current}, not the one in If-Match")]
    VersionMismatch { current: i32 },
    #[error(transparent)]
    Precondition(#[from] PreconditionError),
    #[error("invalid fields")]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error("the practitioner already has an appointment at that time")]
    PractitionerTaken,
    #[error("the patient already has an appointment at that time")]
    PatientTaken,
    #[error("an appointment that is {from} cannot become {to}")]
    Transition { from: &'static str, to: &'static str },
    #[error("not an appointment type code")]
    MalformedCode,
    #[error("the patients service cannot confirm the patient")]
    PatientsUnavailable,
    #[error("the service is stopping")]
    Stopping,
    #[error("the database is unavailable")]
    DatabaseUnavailable,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A 422 about one member of the body.
    pub fn field(pointer: &str, detail: impl Into<String>) -> Self {
        Error::Invalid(vec![FieldError::body(pointer, detail)])
    }

    pub fn transition(from: Status, to: Status) -> Self {
        Error::Transition { from: from.as_str(), to: to.as_str() }
    }
}

impl From<Error> for Problem {
    fn from(err: Error) -> Problem {
        match err {
            Error::NotFound(what) => Problem::not_found(what),
            Error::Forbidden => kit::auth::forbidden(),
            Error::VersionMismatch { current } => Problem::new(
                StatusCode::PRECONDITION_FAILED,
                kinds::PRECONDITION_FAILED,
                "The record has changed",
            )
            .with_detail(format!(
                "it is at version {current}; read it again, reapply the change and send If-Match: \"{current}\""
            )),
            Error::Precondition(err) => err.into(),
            Error::Invalid(errors) => Problem::validation(errors),
            Error::Body(err) => err.into(),
            Error::PractitionerTaken => {
                let mut p = Problem::conflict("the practitioner already has an appointment that overlaps this time");
                p.errors.push(FieldError::body("/start", "overlaps another appointment of the practitioner"));
                p
            }
            Error::PatientTaken => {
                let mut p = Problem::conflict("the patient already has an appointment that overlaps this time");
                p.errors.push(FieldError::body("/start", "overlaps another appointment of the patient"));
                p
            }
            Error::Transition { from, to } => Problem::conflict(format!(
                "an appointment that is {from} cannot become {to} (booked → checked_in → completed; a booked one may be cancelled, marked no_show or rescheduled)"
            )),
            Error::MalformedCode => Problem::malformed_parameter(
                "code",
                "must be lower-case letters, digits and dashes, starting with a letter (at most 40)",
            ),
            Error::PatientsUnavailable => {
                Problem::unavailable("the patients service cannot confirm the patient right now; nothing was booked")
            }
            Error::Stopping => Problem::unavailable("the service is stopping; nothing was booked"),
            Error::DatabaseUnavailable => Problem::unavailable("the database is unavailable or busy; nothing was booked"),
            Error::Database(err) => kit::db::problem(err),
        }
    }
}

impl From<kit::auth::Forbidden> for Error {
    fn from(_: kit::auth::Forbidden) -> Self {
        Error::Forbidden
    }
}

impl From<kit::trail::Refused> for Error {
    fn from(refused: kit::trail::Refused) -> Self {
        match refused {
            kit::trail::Refused::Forbidden => Error::Forbidden,
            kit::trail::Refused::Unrecorded(err) => Error::Database(err),
        }
    }
}

impl kit::batch::BatchError for Error {
    fn is_unavailable(&self) -> bool {
        matches!(self, Error::Database(err) if kit::db::is_unavailable(err))
    }
    fn unavailable() -> Self {
        Error::DatabaseUnavailable
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}
