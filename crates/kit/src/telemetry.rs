//! Logs: JSON lines (or human text) through `tracing`, filtered by `PMS_LOG`.
//!
//! Each request runs in a span carrying its request id, method and route template, so every
//! line logged while serving it carries them too. Query strings and bodies are never logged:
//! they hold patient names and contacts.

use axum::{extract::MatchedPath, http::Request};
use tracing::Span;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Installs the global subscriber. `PMS_LOG` filters (default `info,sqlx=warn`); `PMS_LOG_FORMAT=text`
/// prints for humans instead of JSON. Safe to call more than once.
pub fn init() {
    let filter = EnvFilter::try_from_env("PMS_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let text = std::env::var("PMS_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("text"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = if text {
        registry.with(fmt::layer().with_target(false)).try_init()
    } else {
        registry
            .with(fmt::layer().json().flatten_event(true).with_current_span(true).with_span_list(false))
            .try_init()
    };
    // A second call (tests start many services in one process) keeps the first subscriber.
    drop(result);
}

/// Marks an answer as machine traffic (health probes, the key and revocation refresh every
/// service makes every few seconds): logged at debug, so the request log shows what people do.
#[derive(Debug, Clone, Copy)]
pub struct Quiet;

/// Logs a finished request: status and latency in microseconds, at info (debug for [`Quiet`]
/// answers), inside the request's span (request id, method, route).
pub fn log_response<B>(response: &axum::http::Response<B>, latency: std::time::Duration, _span: &Span) {
    let status = response.status().as_u16();
    let latency = latency.as_micros() as u64;
    if response.extensions().get::<Quiet>().is_some() {
        tracing::debug!(status, latency_us = latency, "finished processing request");
    } else {
        tracing::info!(status, latency_us = latency, "finished processing request");
    }
}

/// The span of one HTTP request: request id, method and route template, never the raw URI.
pub fn request_span<B>(req: &Request<B>) -> Span {
    let request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
    let route = req.extensions().get::<MatchedPath>().map(MatchedPath::as_str).unwrap_or("-");
    tracing::info_span!("request", request_id, method = %req.method(), route)
}
