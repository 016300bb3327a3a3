//! `/health/live`, `/health/ready` and `/metrics`.
//!
//! Liveness says the process serves HTTP; readiness says its dependencies answer, so a load
//! balancer only sends traffic to an instance that can serve it.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

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

#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<Arc<dyn ReadinessCheck>>,
}

impl Readiness {
    pub fn with(mut self, check: impl ReadinessCheck) -> Self {
        self.checks.push(Arc::new(check));
        self
    }
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The health and metrics routes.
pub fn router(readiness: Readiness) -> Router {
    Router::new()
        .route("/health/live", get(|| async { Json(json!({ "status": "live" })) }))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(readiness)
}

async fn ready(State(readiness): State<Readiness>) -> impl IntoResponse {
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
    let body = json!({ "status": if all_ok { "ready" } else { "unavailable" }, "checks": checks });
    (status, Json(body))
}

async fn metrics() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], crate::metrics::handle().render())
}
