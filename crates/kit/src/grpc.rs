//! gRPC between services (tonic): who is calling, and how calls carry identity, trace and
//! deadline.
//!
//! A caller sends its access token as `authorization: Bearer ...` metadata (a user's token
//! when it acts for a user; a service token from auth when it acts for itself, see
//! [`crate::service_token`]), its `traceparent` and a deadline (`grpc-timeout`, which tonic
//! turns into a server-side timeout: a call past its deadline ends `DEADLINE_EXCEEDED` /
//! `CANCELLED`). A server reads the caller with [`caller`]: `UNAUTHENTICATED` without a valid
//! token, `UNAVAILABLE` when the token keys cannot be fetched.

use std::time::Duration;

use tonic::{Request, Status, metadata::MetadataMap, transport::Endpoint};

use crate::{
    RequestContext,
    auth::{TokenError, Verifier},
};

/// The verified caller of a gRPC request (as [`RequestContext`] is for HTTP).
pub async fn caller<T>(verifier: &Verifier, request: &Request<T>) -> Result<RequestContext, Status> {
    let metadata = request.metadata();
    let token = text(metadata, "authorization")
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")).map(str::to_owned))
        .ok_or_else(|| Status::unauthenticated("send `authorization: Bearer <access token>` metadata"))?;
    let claims = verifier.verify(&token).await.map_err(|err| match err {
        TokenError::KeysUnavailable(e) => {
            tracing::warn!(error = %e, "cannot fetch the token keys");
            Status::unavailable("tokens cannot be verified right now")
        }
        TokenError::Expired => Status::unauthenticated("the access token has expired"),
        _ => Status::unauthenticated("the access token is not valid"),
    })?;
    let trace_id =
        text(metadata, "traceparent").and_then(|t| crate::trace::parse(&t)).map(|(trace, _)| trace);
    let mut ctx = RequestContext::of(claims.sub, claims.roles);
    ctx.trace_id = trace_id;
    ctx.request_id = text(metadata, "x-request-id").filter(|r| r.len() <= 128);
    ctx.client_address = request.remote_addr().map(|a| a.ip().to_string());
    Ok(ctx)
}

fn text(metadata: &MetadataMap, key: &str) -> Option<String> {
    metadata.get(key).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// The status a caller should act on: tonic reports a call that ran past its deadline as
/// `CANCELLED` ("Timeout expired", on the client and on the server alike), where gRPC says
/// `DEADLINE_EXCEEDED`; this gives it that code, and leaves every other status as it is.
pub fn status(status: Status) -> Status {
    let timed_out = std::error::Error::source(&status).is_some_and(|s| s.is::<tonic::TimeoutExpired>())
        || (status.code() == tonic::Code::Cancelled && status.message() == "Timeout expired");
    if timed_out { Status::deadline_exceeded("the call ran past its deadline") } else { status }
}

/// Adds the caller's token and trace to an outgoing request, with a deadline.
pub fn outgoing<T>(message: T, token: &str, traceparent: Option<&str>, deadline: Duration) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(deadline);
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    if let Some(value) = traceparent.and_then(|t| t.parse().ok()) {
        request.metadata_mut().insert("traceparent", value);
    }
    request
}

/// A lazily connecting channel to `url` (`http://host:port`): the first call connects, a
/// broken connection is re-established by the next call, and connecting gives up after
/// `connect_timeout` (the call then fails `UNAVAILABLE`).
pub fn channel(
    url: &str,
    connect_timeout: Duration,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    Ok(Endpoint::from_shared(url.to_owned())?
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .connect_lazy())
}

/// A generated tonic server (`...Server::new(impl)`), as [`serve`] takes it.
pub trait GrpcService:
    tower::Service<axum::http::Request<tonic::body::Body>, Error = std::convert::Infallible>
    + tonic::server::NamedService
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> GrpcService for S where
    S: tower::Service<axum::http::Request<tonic::body::Body>, Error = std::convert::Infallible>
        + tonic::server::NamedService
        + Clone
        + Send
        + Sync
        + 'static
{
}

/// Runs a service's REST side (`rest`, e.g. [`crate::http::run`]) and serves its gRPC
/// `service` on `listener` beside it ([`serve`]), both until `shutdown`; when one ends the
/// other is stopped too.
pub async fn run_beside<S>(
    rest: impl Future<Output = std::io::Result<()>>,
    service: S,
    listener: tokio::net::TcpListener,
    shutdown: crate::shutdown::Shutdown,
) -> Result<(), crate::service::BoxError>
where
    S: GrpcService,
    S::Response: axum::response::IntoResponse,
    S::Future: Send + 'static,
{
    let stop = shutdown.clone();
    let grpc = tokio::spawn(serve(service, listener, async move { stop.triggered().await }));
    let rest = rest.await;
    shutdown.trigger();
    let grpc = grpc.await.map_err(|e| format!("the gRPC server panicked: {e}"))?;
    rest?;
    grpc
}

/// Serves `service` with standard gRPC health checking (SERVING for it) and server reflection
/// (every pms contract) on `listener` until `shutdown`: what every pms gRPC server offers.
pub async fn serve<S>(
    service: S,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), crate::service::BoxError>
where
    S: GrpcService,
    S::Response: axum::response::IntoResponse,
    S::Future: Send + 'static,
{
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<S>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(service)
        .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(listener), shutdown)
        .await?;
    Ok(())
}
