//! Integration tests of the auth service alone: the real service on a random port, a fresh
//! PostgreSQL database per test, driven over HTTP like a client would.

mod helpers;
mod login;
mod users;
