//! The billing service's errors and the answers they become: problem+json over REST, a status
//! over gRPC.

use axum::response::{IntoResponse, Response};
use kit::Problem;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the patient has no billing account")]
    NotFound,
    #[error("the caller's roles do not allow this action")]
    Forbidden,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<Error> for Problem {
    fn from(err: Error) -> Problem {
        match err {
            Error::NotFound => Problem::not_found("the patient has no billing account (yet)"),
            Error::Forbidden => kit::auth::forbidden(),
            Error::Database(err) => kit::db::problem(err),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        Problem::from(self).into_response()
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Status {
        match err {
            Error::NotFound => Status::not_found("the patient has no billing account"),
            Error::Forbidden => Status::permission_denied("the caller may not do this"),
            Error::Database(err) if kit::db::is_unavailable(&err) => {
                Status::unavailable("the database is unavailable")
            }
            Error::Database(err) => {
                tracing::error!(error = %err, "database error");
                Status::internal("internal error")
            }
        }
    }
}
