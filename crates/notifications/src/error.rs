//! The notifications service's errors and the HTTP answers they become.

use axum::response::{IntoResponse, Response};
use kit::{FieldError, Problem, json::BodyError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the caller's roles do not allow this action")]
    Forbidden,
    #[error("invalid parameters")]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for Problem {
    fn from(err: Error) -> Problem {
        match err {
            Error::Forbidden => kit::auth::forbidden(),
            Error::Invalid(errors) => Problem::validation(errors),
            Error::Body(err) => err.into(),
            Error::Database(err) => kit::db::problem(err),
        }
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

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}
