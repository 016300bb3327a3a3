//! Prometheus metrics: one process-wide recorder, rendered at `/metrics`.
//!
//! Every service in a process shares the recorder (`pms up` runs several services in one
//! process), and every HTTP request is counted and timed by route template, never by the
//! concrete path, so patient ids never become label values.

use std::{sync::OnceLock, time::Instant};

use axum::{
    extract::{MatchedPath, Request},
    http::Method,
    middleware::Next,
    response::Response,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

const LATENCY_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The process-wide Prometheus handle, installing the recorder on first use.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_duration_seconds".to_owned()), LATENCY_BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (e.g. by an embedding program); then
        // ours still renders what is recorded through it, which is nothing, but never panics.
        if let Err(err) = metrics::set_global_recorder(recorder) {
            tracing::warn!(error = %err, "a metrics recorder was already installed");
        }
        handle
    })
}

/// The `method` label: the methods the APIs serve, everything else as `other`, so a client
/// inventing verbs (`curl -X FOO`) cannot add series without bound.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// A route label set on a response by a handler that does its own routing.
#[derive(Debug, Clone)]
pub struct RouteLabel(pub String);

/// Middleware: counts and times each request by service, method, route template and status.
pub async fn track(service: &'static str, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(req.method()).to_owned();
    let started = Instant::now();
    let response = next.run(req).await;
    // A handler that routes by itself (the gateway's proxy) names its route on the response.
    let route = response.extensions().get::<RouteLabel>().map(|l| l.0.clone()).unwrap_or(route);
    let labels = [
        ("service", service.to_owned()),
        ("method", method),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invented_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"FOO").expect("method")), "other");
        assert_eq!(method_label(&Method::from_bytes(b"BAR").expect("method")), "other");
    }
}
