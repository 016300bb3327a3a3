//! The auth service's errors and the one mapping to the HTTP answers they become.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use kit::{FieldError, Problem, problem::kinds};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Wrong email, wrong password or disabled account: one answer for all, so an attacker
    /// cannot tell which accounts exist.
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("too many failed logins; retry in {retry_after} s")]
    LockedOut { retry_after: u64 },
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    #[error("the caller's roles do not allow this action")]
    Forbidden,
    #[error("no user has this id")]
    NotFound,
    #[error("the email belongs to another user")]
    DuplicateEmail,
    #[error("invalid fields")]
    Invalid(Vec<FieldError>),
    #[error("too many passwords are being checked at once")]
    Busy,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<kit::auth::Forbidden> for Error {
    fn from(_: kit::auth::Forbidden) -> Self {
        Error::Forbidden
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match self {
            Error::InvalidCredentials => kit::auth::unauthorized(
                "the email or the password is wrong, or the account is disabled",
                None,
            ),
            Error::InvalidRefreshToken => {
                kit::auth::unauthorized("the refresh token is not valid; log in again", None)
            }
            Error::LockedOut { retry_after } => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                kinds::TOO_MANY_REQUESTS,
                "Too many failed logins",
            )
            .with_detail("logins are paused after repeated failures; retry later")
            .with_retry_after(retry_after)
            .into_response(),
            Error::Forbidden => kit::auth::forbidden().into_response(),
            Error::NotFound => Problem::not_found("no user has this id").into_response(),
            Error::DuplicateEmail => {
                let mut p = Problem::conflict("another user has this email address");
                p.errors.push(FieldError::body("/email", "is already used by another user"));
                p.into_response()
            }
            Error::Invalid(errors) => Problem::validation(errors).into_response(),
            Error::Busy => Problem::unavailable("too many logins at once; retry shortly").into_response(),
            Error::Database(err) => kit::db::problem(err).into_response(),
            Error::Internal(err) => Problem::internal(&err).into_response(),
        }
    }
}
