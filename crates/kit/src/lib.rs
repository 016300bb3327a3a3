//! The platform every pms service stands on.
//!
//! A service crate builds its own `axum::Router` and hands it to [`http::serve`], which wraps it
//! in the layers every service shares (request ids, tracing, metrics, timeouts, admission
//! control, body limits, problem+json for whatever goes wrong) and adds the health and metrics
//! endpoints. Configuration comes from `PMS_*` environment variables ([`config`]), the database
//! from [`db`], errors leave as RFC 9457 problem documents ([`problem`]) and request bodies are
//! parsed by [`json::JsonBody`], which reports exactly which field was wrong.

pub mod auth;
pub mod batch;
pub mod client;
pub mod clock;
pub mod config;
pub mod consumer;
pub mod context;
pub mod date;
pub mod db;
pub mod email;
pub mod extract;
pub mod grpc;
pub mod health;
pub mod http;
pub mod in_process;
pub mod json;
pub mod kafka;
pub mod metrics;
pub mod net;
pub mod openapi;
pub mod outbox;
pub mod phone;
pub mod problem;
pub mod service;
pub mod service_token;
pub mod shutdown;
pub mod tasks;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod trace;
pub mod trail;
pub mod zone;

pub use context::RequestContext;
pub use problem::{FieldError, Problem};
