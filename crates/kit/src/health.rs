//! `/health/live`, `/health/ready` and `/metrics`.
//!
//! Liveness says the process serves HTTP; readiness says its dependencies answer, so a load
//! balancer only sends traffic to an instance that can serve it.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use serde_json::json;

type CheckFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Something readiness depends on: a database, a broker, another service.
pub trait ReadinessCheck: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn check(&self) -> CheckFuture<'_>;
}

/// Readiness of a PostgreSQL pool: one `SELECT 1`.
pub struct Database(pub sqlx::PgPool);

impl ReadinessCheck for Database {
    fn name(&self) -> &'static str {
        "database"
    }

    fn check(&self) -> CheckFuture<'_> {
        Box::pin(async move {
            sqlx::query("SELECT 1").execute(&self.0).await.map(|_| ()).map_err(|e| e.to_string())
        })
    }
}

/// The answer of one readiness round: status and body.
type Answer = (StatusCode, serde_json::Value);

#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<Arc<dyn ReadinessCheck>>,
    /// When set, an answer is reused this long: probes cannot make every call fan out.
    reuse_for: Option<Duration>,
    last: Arc<Mutex<Option<(Instant, Answer)>>>,
}

impl Readiness {
    pub fn with(mut self, check: impl ReadinessCheck) -> Self {
        self.checks.push(Arc::new(check));
        self
    }

    /// Reuses each answer for `ttl` (the gateway's readiness asks every service behind it).
    pub fn cached(mut self, ttl: Duration) -> Self {
        self.reuse_for = Some(ttl);
        self
    }

    fn reusable(&self) -> Option<Answer> {
        let ttl = self.reuse_for?;
        let last = self.last.lock().ok()?;
        last.as_ref().filter(|(at, _)| at.elapsed() < ttl).map(|(_, answer)| answer.clone())
    }
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The health routes, and `/metrics` unless `metrics` is false (the gateway serves its metrics
/// on an admin address, not on the public one).
pub fn router(readiness: Readiness, metrics: bool) -> Router {
    let router = Router::new()
        .route("/health/live", get(|| async { Json(json!({ "status": "live" })) }))
        .route("/health/ready", get(ready));
    let router = if metrics { router.route("/metrics", get(self::metrics)) } else { router };
    router.with_state(readiness).layer(axum::middleware::map_response(
        |mut response: axum::response::Response| async {
            response.extensions_mut().insert(crate::telemetry::Quiet);
            response
        },
    ))
}

/// What an admin address serves: liveness and metrics.
pub fn admin_router() -> Router {
    router(Readiness::default(), true)
}

async fn ready(State(readiness): State<Readiness>) -> impl IntoResponse {
    if let Some((status, body)) = readiness.reusable() {
        return (status, Json(body));
    }
    let answer = check_all(&readiness).await;
    if let Ok(mut last) = readiness.last.lock() {
        *last = Some((Instant::now(), answer.clone()));
    }
    (answer.0, Json(answer.1))
}

async fn check_all(readiness: &Readiness) -> Answer {
    let mut all_ok = true;
    let mut checks = serde_json::Map::new();
    for check in &readiness.checks {
        let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check.check()).await {
            Ok(Ok(())) => "ok".to_owned(),
            Ok(Err(err)) => {
                tracing::warn!(check = check.name(), error = %err, "readiness check failed");
                "failing".to_owned()
            }
            Err(_) => {
                tracing::warn!(check = check.name(), "readiness check timed out");
                "timeout".to_owned()
            }
        };
        all_ok &= outcome == "ok";
        checks.insert(check.name().to_owned(), outcome.into());
    }
    let status = if all_ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, json!({ "status": if all_ok { "ready" } else { "unavailable" }, "checks": checks }))
}

async fn metrics() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::metrics::handle().render())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::{body::Body, http::Request};
    use tower::ServiceExt;

    use super::*;

    struct Counting(Arc<AtomicUsize>);

    impl ReadinessCheck for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }

        fn check(&self) -> CheckFuture<'_> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async { Ok(()) })
        }
    }

    #[tokio::test]
    async fn a_cached_readiness_answer_is_reused_instead_of_asking_again() {
        let calls = Arc::new(AtomicUsize::new(0));
        let app =
            router(Readiness::default().with(Counting(calls.clone())).cached(Duration::from_secs(60)), false);
        for _ in 0..3 {
            let request = Request::get("/health/ready").body(Body::empty()).expect("request");
            let response = app.clone().oneshot(request).await.expect("infallible");
            assert_eq!(response.status(), StatusCode::OK);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
