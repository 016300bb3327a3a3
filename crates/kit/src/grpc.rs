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
/// `connect_timeout` (the call then fails `UNAVAILABLE`). Always over the network; services
/// call their peers through [`PeerChannel`].
pub fn channel(
    url: &str,
    connect_timeout: Duration,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    Ok(endpoint(url, connect_timeout)?.connect_lazy())
}

fn endpoint(url: &str, connect_timeout: Duration) -> Result<Endpoint, tonic::transport::Error> {
    Ok(Endpoint::from_shared(url.to_owned())?.connect_timeout(connect_timeout).tcp_nodelay(true))
}

/// A service's channel to a peer's gRPC server at some `url`. Under `pms up` every service
/// runs in one process, and a call to a peer of this process goes to its gRPC routes
/// directly ([`crate::in_process`], as the gateway's calls do): the same generated server and
/// handler, without the HTTP/2 connection and the loopback socket. A peer of another process
/// (containers, Kubernetes, ECS), or one that has stopped, is called over the network
/// ([`channel`]). Each call is looked up anew, so a peer that stops or starts is noticed at
/// the next call. A call in-process that runs past `deadline`, or past its own timeout
/// (`Request::set_timeout`, the `grpc-timeout` header a server enforces), fails as a network
/// call past its deadline does (`tonic::TimeoutExpired`; see [`status`]).
#[derive(Clone)]
pub struct PeerChannel {
    remote: tonic::transport::Channel,
    uri: axum::http::Uri,
    deadline: Duration,
}

impl PeerChannel {
    /// A channel to `url` (`http://host:port`) whose calls end after `deadline`, connecting
    /// (over the network) within the same time.
    pub fn new(url: &str, deadline: Duration) -> Result<Self, tonic::transport::Error> {
        let endpoint = endpoint(url, deadline)?;
        let uri = endpoint.uri().clone();
        Ok(Self { remote: endpoint.connect_lazy(), uri, deadline })
    }
}

type GrpcRequest = axum::http::Request<tonic::body::Body>;
type GrpcResponse = axum::http::Response<tonic::body::Body>;

impl tower::Service<GrpcRequest> for PeerChannel {
    type Response = GrpcResponse;
    type Error = crate::service::BoxError;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<GrpcResponse, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        // Readiness is awaited in `call`, on whichever path the call takes.
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: GrpcRequest) -> Self::Future {
        if let Some(local) = crate::in_process::find(&self.uri) {
            let deadline =
                requested_timeout(request.headers()).map_or(self.deadline, |t| t.min(self.deadline));
            return Box::pin(async move {
                let request = request.map(axum::body::Body::new);
                match tokio::time::timeout(deadline, local.call(request)).await {
                    Ok(response) => Ok(response.map(tonic::body::Body::new)),
                    Err(_) => Err(Box::new(tonic::TimeoutExpired(())) as Self::Error),
                }
            });
        }
        let mut remote = self.remote.clone();
        Box::pin(async move {
            use tower::ServiceExt as _;
            let response = remote.ready().await?.call(request).await?;
            Ok(response)
        })
    }
}

/// The timeout a request carries in its `grpc-timeout` header (gRPC over HTTP/2: up to eight
/// digits and a unit, `H`, `M`, `S`, `m`, `u` or `n`), if it carries a valid one; a server
/// ends the call when it runs out.
fn requested_timeout(headers: &axum::http::HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
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
    let routes = tonic::service::Routes::new(health_service).add_service(reflection).add_service(service);
    // Peers of this process call these routes directly while they are served (PeerChannel).
    let registered = listener
        .local_addr()
        .ok()
        .map(|addr| crate::in_process::register(addr, routes.clone().prepare().into_axum_router()));
    let served = tonic::transport::Server::builder()
        .add_routes(routes)
        .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(listener), shutdown)
        .await;
    drop(registered);
    served?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use proto::patients::v1::{
        GetPatientRequest, Patient,
        patient_directory_client::PatientDirectoryClient,
        patient_directory_server::{PatientDirectory, PatientDirectoryServer},
    };

    use super::*;

    fn channel_to(url: &str) -> tonic::transport::Channel {
        channel(url, Duration::from_millis(200)).expect("channel")
    }

    /// Answers with the caller's address, and whether a socket brought the call, as the
    /// patient's id; a request for "slow" answers after a second.
    struct Echo;

    #[tonic::async_trait]
    impl PatientDirectory for Echo {
        async fn get_patient(
            &self,
            request: Request<GetPatientRequest>,
        ) -> Result<tonic::Response<Patient>, Status> {
            if request.get_ref().id == "slow" {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let from = request.remote_addr().map_or_else(|| "unknown".to_owned(), |a| a.ip().to_string());
            let id =
                format!("{from} {}", if request.local_addr().is_some() { "socket" } else { "in-process" });
            Ok(tonic::Response::new(Patient { id, ..Default::default() }))
        }
    }

    async fn ask<C>(channel: &C, id: &str) -> Result<String, Status>
    where
        C: tonic::client::GrpcService<tonic::body::Body> + Clone,
        C::Error: Into<crate::service::BoxError>,
        C::ResponseBody: tonic::transport::Body<Data = axum::body::Bytes> + Send + 'static,
        <C::ResponseBody as tonic::transport::Body>::Error: Into<crate::service::BoxError> + Send,
    {
        ask_within(channel, id, Duration::from_millis(200)).await
    }

    async fn ask_within<C>(channel: &C, id: &str, timeout: Duration) -> Result<String, Status>
    where
        C: tonic::client::GrpcService<tonic::body::Body> + Clone,
        C::Error: Into<crate::service::BoxError>,
        C::ResponseBody: tonic::transport::Body<Data = axum::body::Bytes> + Send + 'static,
        <C::ResponseBody as tonic::transport::Body>::Error: Into<crate::service::BoxError> + Send,
    {
        let request = outgoing(GetPatientRequest { id: id.to_owned() }, "token", None, timeout);
        let response =
            PatientDirectoryClient::new(channel.clone()).get_patient(request).await.map_err(status)?;
        Ok(response.into_inner().id)
    }

    const SHORT: Duration = Duration::from_millis(100);

    async fn timed<T>(call: impl Future<Output = T>) -> (T, Duration) {
        let started = std::time::Instant::now();
        let answer = call.await;
        (answer, started.elapsed())
    }

    #[test]
    fn a_requests_grpc_timeout_header_is_read_as_the_protocol_writes_it() {
        let of = |value: &str| {
            let mut headers = axum::http::HeaderMap::new();
            headers.insert("grpc-timeout", value.parse().expect("header"));
            requested_timeout(&headers)
        };
        assert_eq!(of("100m"), Some(Duration::from_millis(100)));
        assert_eq!(of("2S"), Some(Duration::from_secs(2)));
        assert_eq!(of("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(of("99999999n"), Some(Duration::from_nanos(99_999_999)));
        for invalid in ["", "m", "100", "100x", "123456789m", "-1S", "1.5S"] {
            assert_eq!(of(invalid), None, "{invalid:?}");
        }
        assert_eq!(requested_timeout(&axum::http::HeaderMap::new()), None);
    }

    #[tokio::test]
    async fn a_peer_of_this_process_is_called_in_process_while_it_serves_then_over_the_network() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let uri: axum::http::Uri = url.parse().expect("uri");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(PatientDirectoryServer::new(Echo), listener, async move {
            let _ = stopped.await;
        }));
        for _ in 0..200 {
            if crate::in_process::find(&uri).is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(crate::in_process::find(&uri).is_some(), "registered while serving");
        let channel = PeerChannel::new(&url, Duration::from_millis(200)).expect("channel");
        // The handler sees the caller where a loopback connection would show it; a channel of
        // its own (what a test or another process uses) still goes through the socket.
        assert_eq!(ask(&channel, "a").await.expect("answered"), "127.0.0.1 in-process");
        let network = channel_to(&url);
        assert_eq!(ask(&network, "a").await.expect("answered"), "127.0.0.1 socket");
        let late = ask(&channel, "slow").await.expect_err("past the deadline");
        assert_eq!(late.code(), tonic::Code::DeadlineExceeded, "{late:?}");
        // A call's own shorter timeout ends it in-process as the server ends it over the network.
        let patient = PeerChannel::new(&url, Duration::from_secs(5)).expect("channel");
        let (in_process, socket) = tokio::join!(
            timed(ask_within(&patient, "slow", SHORT)),
            timed(ask_within(&network, "slow", SHORT))
        );
        for (path, (answer, took)) in [("in-process", in_process), ("socket", socket)] {
            let late = answer.expect_err(path);
            assert_eq!(late.code(), tonic::Code::DeadlineExceeded, "{path}: {late:?}");
            assert!(took < Duration::from_millis(800), "{path}: {took:?}");
        }

        stop.send(()).expect("stop");
        server.await.expect("joined").expect("served");
        assert!(crate::in_process::find(&uri).is_none(), "unregistered once stopped");
        let refused = ask(&channel, "a").await.expect_err("nothing listens any more");
        assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    }
}
