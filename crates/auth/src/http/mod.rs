//! The REST API: sessions and keys ([`sessions`]), user administration ([`users`]).

pub mod sessions;
pub mod users;

use axum::{
    Router,
    routing::{get, post},
};

use crate::AuthState;

pub fn routes(state: AuthState) -> Router {
    Router::new()
        .route("/auth/login", post(sessions::login))
        .route("/auth/refresh", post(sessions::refresh))
        .route("/auth/logout", post(sessions::logout))
        .route("/auth/validate", get(sessions::validate))
        .route("/.well-known/jwks.json", get(sessions::jwks))
        .route("/api/users", get(users::list_users).post(users::create_user))
        .route("/api/users/me/password", post(users::change_password))
        .route("/api/users/{id}", get(users::get_user).patch(users::update_user))
        .with_state(state)
}
