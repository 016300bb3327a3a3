//! Serving a service: the middleware every service shares, fallbacks, graceful shutdown.
//!
//! Layers, outermost first: panics become a 500 problem; a request id is taken from
//! `x-request-id` or created, and echoed back; `Cache-Control: no-store` unless the handler
//! chose otherwise (answers carry patient data and tokens: no proxy or browser may keep
//! them); a tracing span per request; metrics; admission
//! (a bounded number of requests in flight, a short queue, then 503) and a deadline (503 when
//! exceeded, and the handler's future is dropped, which rolls back any open transaction); the
//! body size limit (413).

use std::{any::Any, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{ConnectInfo, DefaultBodyLimit, Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::Semaphore};
use tower::{ServiceBuilder, ServiceExt};
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    set_header::SetResponseHeaderLayer,
    trace::TraceLayer,
};

use crate::{
    config::HttpConfig,
    health::{self, Readiness},
    problem::{Problem, kinds},
    shutdown::Shutdown,
    tasks::Background,
    telemetry,
};

#[derive(Clone)]
struct Admission {
    slots: Arc<Semaphore>,
    queue_timeout: Duration,
    request_timeout: Duration,
}

/// Wraps a service's API routes with health, metrics, fallbacks and the shared layers.
pub fn app(service: &'static str, api: Router, readiness: Readiness, config: &HttpConfig) -> Router {
    layered(service, api.fallback(not_found), readiness, config)
}

/// As [`app`], for a router that brings its own fallback (the gateway's proxy).
pub fn layered(service: &'static str, api: Router, readiness: Readiness, config: &HttpConfig) -> Router {
    // Install the recorder now: anything recorded before it exists is lost.
    crate::metrics::handle();
    let admission = Admission {
        slots: Arc::new(Semaphore::new(config.max_concurrency)),
        queue_timeout: config.queue_timeout,
        request_timeout: config.request_timeout,
    };
    let assign_request_ids = config.assign_request_ids;
    api.merge(health::router(readiness, config.metrics))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(
            ServiceBuilder::new()
                .layer(CatchPanicLayer::custom(panic_response))
                .layer(middleware::from_fn(move |req: Request, next: Next| {
                    keep_client_request_id(assign_request_ids, req, next)
                }))
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("no-store"),
                ))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(telemetry::request_span)
                        .on_request(())
                        .on_response(telemetry::log_response),
                )
                .layer(middleware::from_fn(move |req: Request, next: Next| {
                    crate::metrics::track(service, req, next)
                }))
                .layer(middleware::from_fn_with_state(admission, admit))
                .layer(DefaultBodyLimit::max(config.body_limit)),
        )
}

/// The header that carries a client's own request id past the edge.
pub const CLIENT_REQUEST_ID: &str = "x-client-request-id";

/// At the edge (`assign`): moves a client's `x-request-id` to `x-client-request-id` (bounded,
/// and echoed back), so that the next layer assigns an id of ours that clients cannot choose.
async fn keep_client_request_id(assign: bool, mut req: Request, next: Next) -> Response {
    if !assign {
        return next.run(req).await;
    }
    let headers = req.headers_mut();
    headers.remove(CLIENT_REQUEST_ID);
    let client = headers
        .remove("x-request-id")
        .filter(|v| v.len() <= 128 && v.to_str().is_ok_and(|t| !t.chars().any(char::is_control)));
    if let Some(value) = &client {
        headers.insert(CLIENT_REQUEST_ID, value.clone());
    }
    let mut response = next.run(req).await;
    if let Some(value) = client {
        response.headers_mut().insert(CLIENT_REQUEST_ID, value);
    }
    response
}

async fn admit(State(admission): State<Admission>, req: Request, next: Next) -> Response {
    let slot = tokio::time::timeout(admission.queue_timeout, admission.slots.clone().acquire_owned()).await;
    let Ok(Ok(_slot)) = slot else {
        metrics::counter!("http_requests_shed_total").increment(1);
        return Problem::unavailable("the service is at capacity; retry shortly").into_response();
    };
    match tokio::time::timeout(admission.request_timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            metrics::counter!("http_requests_timed_out_total").increment(1);
            tracing::warn!("request exceeded its deadline");
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, kinds::TIMEOUT, "Request timed out")
                .with_detail("the request took too long and was abandoned; nothing was changed")
                .with_retry_after(1)
                .into_response()
        }
    }
}

async fn not_found() -> Problem {
    Problem::not_found("no resource lives at this path")
}

async fn method_not_allowed() -> Problem {
    Problem::new(StatusCode::METHOD_NOT_ALLOWED, kinds::METHOD_NOT_ALLOWED, "Method not allowed")
        .with_detail("this resource does not support the method")
}

fn panic_response(_payload: Box<dyn Any + Send + 'static>) -> Response {
    // The payload may quote request data; it is deliberately not logged.
    tracing::error!("a request handler panicked");
    Problem::new(StatusCode::INTERNAL_SERVER_ERROR, kinds::INTERNAL, "Internal error").into_response()
}

/// Binds `addr`, saying which address failed.
pub async fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

/// Serves `app` on `listener` until `shutdown` is triggered: from then on `/health/ready`
/// answers 503; after the shutdown's grace the listener closes and requests in flight finish,
/// until the shutdown's deadline at most. At most `config.max_connections` connections are
/// open at once (more wait in the listen queue), and a client that has not sent its request
/// headers within `config.header_read_timeout` is disconnected (slow-header attacks).
/// While the listener is open, a gateway in the same process may call `app` without a socket
/// ([`crate::in_process`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    config: HttpConfig,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "listening");
    }
    let draining = shutdown.clone();
    let app = app.layer(middleware::from_fn(move |req: Request, next: Next| {
        let draining = draining.clone();
        async move {
            if draining.is_triggered() && req.uri().path() == "/health/ready" {
                return Problem::unavailable("shutting down").into_response();
            }
            next.run(req).await
        }
    }));
    // The gateway of the same process (`pms up`) calls this router directly while it serves.
    let registered = listener.local_addr().ok().map(|addr| crate::in_process::register(addr, app.clone()));
    let connections = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1.timer(TokioTimer::new()).header_read_timeout(config.header_read_timeout);
    let closing = shutdown.close_listeners();
    tokio::pin!(closing);
    loop {
        let permit = tokio::select! {
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut closing => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut closing => break,
        };
        let _ = stream.set_nodelay(true);
        // Connection info lets handlers see the peer address (rate limits, login limits).
        let service = app.clone().map_request(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
        let connection =
            graceful.watch(http1.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service)));
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    drop(registered);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(shutdown.remaining()) => {
            tracing::warn!("requests still in flight at the shutdown deadline were cut off");
        }
    }
    Ok(())
}

/// Runs a service: serves `app` (see [`serve`]), then stops its background tasks, which
/// finish their current batch within what is left of the shutdown's deadline.
pub async fn run(
    listener: TcpListener,
    app: Router,
    config: HttpConfig,
    background: Background,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    let served = serve(listener, app, config, shutdown.clone()).await;
    background.stop(shutdown.remaining()).await;
    served
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::{body::Body, routing::get};
    use tower::ServiceExt;

    fn test_app(config: &HttpConfig) -> Router {
        let api = Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    "done"
                }),
            )
            .route("/panic", get(|| async { if true { panic!("boom") } else { "unreachable" } }));
        app("test", api, Readiness::default(), config)
    }

    async fn call(app: Router, uri: &str) -> Response {
        app.oneshot(Request::get(uri).body(Body::empty()).expect("request")).await.expect("infallible")
    }

    #[tokio::test]
    async fn unknown_paths_and_methods_answer_problem_json() {
        let app = test_app(&HttpConfig::ephemeral());
        let response = call(app.clone(), "/nope").await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.headers()["content-type"], crate::problem::CONTENT_TYPE);
        assert!(response.headers().contains_key("x-request-id"));
        let response = app
            .oneshot(Request::post("/slow").body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[tokio::test]
    async fn a_request_over_its_deadline_answers_503() {
        let mut config = HttpConfig::ephemeral();
        config.request_timeout = Duration::from_millis(50);
        let response = call(test_app(&config), "/slow").await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["retry-after"], "1");
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_house_sheds_load_with_503() {
        let mut config = HttpConfig::ephemeral();
        config.max_concurrency = 1;
        config.queue_timeout = Duration::from_millis(20);
        let app = test_app(&config);
        let busy = tokio::spawn(call(app.clone(), "/slow"));
        // Let the slow request take the only slot (paused time: no wall-clock sleeping).
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        assert!(!busy.is_finished());
        let response = call(app, "/health/live").await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        busy.abort();
    }

    #[tokio::test]
    async fn a_panic_is_a_500_problem_not_a_dropped_connection() {
        let response = call(test_app(&HttpConfig::ephemeral()), "/panic").await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()["content-type"], crate::problem::CONTENT_TYPE);
    }

    #[tokio::test]
    async fn answers_are_not_stored_by_caches_unless_the_handler_says_so() {
        let api = Router::new()
            .route("/public", get(|| async { ([(header::CACHE_CONTROL, "public, max-age=60")], "keys") }));
        let app = app("test", api, Readiness::default(), &HttpConfig::ephemeral());
        let response = call(app.clone(), "/health/live").await;
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        let response = call(app, "/public").await;
        assert_eq!(response.headers()[header::CACHE_CONTROL], "public, max-age=60");
    }

    #[tokio::test]
    async fn metrics_are_served_only_where_configured() {
        let mut config = HttpConfig::ephemeral();
        assert_eq!(call(test_app(&config), "/metrics").await.status(), StatusCode::OK);
        config.metrics = false;
        assert_eq!(call(test_app(&config), "/metrics").await.status(), StatusCode::NOT_FOUND);
    }

    /// Serves `test_app` on a random port with `config`; returns its address.
    async fn serving(config: HttpConfig) -> (std::net::SocketAddr, Shutdown) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = Shutdown::default();
        tokio::spawn(serve(listener, test_app(&config), config, shutdown.clone()));
        (addr, shutdown)
    }

    #[tokio::test]
    async fn a_client_slow_to_send_its_headers_is_disconnected() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut config = HttpConfig::ephemeral();
        config.header_read_timeout = Duration::from_millis(200);
        let (addr, _shutdown) = serving(config).await;
        let mut slow = tokio::net::TcpStream::connect(addr).await.expect("connect");
        slow.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n").await.expect("write");
        let mut rest = Vec::new();
        // The server closes the connection (with or without a 408) instead of waiting forever.
        let closed = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "still open after 5 s");
    }

    #[tokio::test]
    async fn connections_beyond_the_limit_wait_until_one_closes() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut config = HttpConfig::ephemeral();
        config.max_connections = 1;
        let (addr, _shutdown) = serving(config).await;
        let request = b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut first = tokio::net::TcpStream::connect(addr).await.expect("connect");
        first.write_all(request).await.expect("write");
        let mut answer = [0u8; 12];
        first.read_exact(&mut answer).await.expect("first answered");
        assert_eq!(&answer, b"HTTP/1.1 200");
        // The first connection stays open (keep-alive): the second is not served meanwhile.
        let mut second = tokio::net::TcpStream::connect(addr).await.expect("connect");
        second.write_all(request).await.expect("write");
        let waiting = tokio::time::timeout(Duration::from_millis(300), second.read_exact(&mut answer)).await;
        assert!(waiting.is_err(), "served beyond the connection limit");
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), second.read_exact(&mut answer))
            .await
            .expect("served once the first closed")
            .expect("read");
        assert_eq!(&answer, b"HTTP/1.1 200");
    }

    #[tokio::test]
    async fn an_incoming_request_id_is_echoed() {
        let app = test_app(&HttpConfig::ephemeral());
        let request = Request::get("/health/live")
            .header("x-request-id", "abc-123")
            .body(Body::empty())
            .expect("request");
        let response = app.oneshot(request).await.expect("infallible");
        assert_eq!(response.headers()["x-request-id"], "abc-123");
    }
}
