//! The patients service's errors and the one mapping to the HTTP answers they become.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use kit::{FieldError, Problem, extract::PreconditionError, json::BodyError, problem::kinds};

use crate::audit::AuditUnavailable;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no patient has this id")]
    NotFound,
    #[error("the patient record is deactivated")]
    Gone,
    #[error("the caller's roles do not allow this action")]
    Forbidden,
    #[error("the record is at version {current}, not the one in If-Match")]
    VersionMismatch { current: i32 },
    #[error(transparent)]
    Precondition(#[from] PreconditionError),
    #[error("the email belongs to another active patient")]
    DuplicateEmail,
    #[error("invalid fields")]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error(transparent)]
    AuditUnavailable(#[from] AuditUnavailable),
    #[error("the service is stopping")]
    Stopping,
    #[error("the database is unavailable or busy")]
    DatabaseUnavailable,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for Problem {
    fn from(err: Error) -> Problem {
        match err {
            Error::NotFound => Problem::not_found("no patient has this id"),
            Error::Gone => Problem::gone("the patient record was deactivated; its history is still readable"),
            Error::Forbidden => kit::auth::forbidden(),
            Error::VersionMismatch { current } => Problem::new(
                StatusCode::PRECONDITION_FAILED,
                kinds::PRECONDITION_FAILED,
                "The record has changed",
            )
            .with_detail(format!(
                "the record is at version {current}; read it again, reapply the change and send If-Match: \"{current}\""
            )),
            Error::Precondition(err) => err.into(),
            Error::DuplicateEmail => {
                let mut p = Problem::conflict("another active patient has this email address");
                p.errors.push(FieldError::body("/email", "is already used by another active patient"));
                p
            }
            Error::Invalid(errors) => Problem::validation(errors),
            Error::Body(err) => err.into(),
            Error::AuditUnavailable(_) => {
                tracing::error!("audit log unavailable; refusing to serve patient data unaudited");
                Problem::unavailable("the audit log is unavailable; patient data is not served unaudited")
            }
            Error::Stopping => Problem::unavailable("the service is stopping; try again"),
            Error::DatabaseUnavailable => {
                Problem::unavailable("the database is unavailable or busy; nothing was done, try again")
            }
            Error::Database(err) => kit::db::problem(err),
        }
    }
}

impl From<kit::auth::Forbidden> for Error {
    fn from(_: kit::auth::Forbidden) -> Self {
        Error::Forbidden
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
