//! Services of this process, reached without a socket.
//!
//! Under `pms up` every service runs in one process, and the gateway forwards each request to
//! a service on loopback: a second HTTP exchange through the kernel on the same cores (about a
//! fifth of a read's cost, docs/benchmarks.md). [`crate::http::serve`] therefore registers each
//! router it serves under the address it listens on, and the gateway hands a request for that
//! address to the router directly ([`find`], [`Local::call`]): the same router with the same
//! layers (token check, admission, deadline, body limit, audit), only the connection is
//! missing. A service of another process (containers, Kubernetes, ECS) is not registered here
//! and is reached over HTTP as before.

use std::{
    collections::HashMap,
    convert::Infallible,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{LazyLock, RwLock},
};

use axum::{
    Router,
    extract::{ConnectInfo, Request},
    http::{HeaderValue, Uri, header, uri::Authority},
    response::Response,
};
use tower::ServiceExt;

/// The routers this process serves, by the address each listens on.
static SERVED: LazyLock<RwLock<HashMap<SocketAddr, Router>>> = LazyLock::new(Default::default);

/// A router registered while this lives; dropping it takes the router out again (its listener
/// closed: from then on callers reach that address over the network, or fail to).
#[must_use = "the router is unregistered when this is dropped"]
pub(crate) struct Registration(SocketAddr);

impl Drop for Registration {
    fn drop(&mut self) {
        SERVED.write().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&self.0);
    }
}

/// Registers `router` as what answers at `addr` in this process.
pub(crate) fn register(addr: SocketAddr, router: Router) -> Registration {
    SERVED.write().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(addr, router);
    Registration(addr)
}

/// A service of this process that answers at some address.
pub struct Local {
    router: Router,
    /// Where the service sees the request come from: what a loopback connection would show.
    peer: SocketAddr,
    authority: Authority,
}

/// The service of this process that `uri` (`http://IP:PORT/...`) would reach, if any: one
/// listening on exactly that address, or, for a loopback address, on the wildcard address of
/// the same port. Names are not resolved (a service known by a host name is reached over HTTP).
pub fn find(uri: &Uri) -> Option<Local> {
    if uri.scheme_str() != Some("http") {
        return None;
    }
    let authority = uri.authority()?;
    let ip: IpAddr = authority.host().trim_start_matches('[').trim_end_matches(']').parse().ok()?;
    let addr = SocketAddr::new(ip, authority.port_u16()?);
    let served = SERVED.read().unwrap_or_else(|poisoned| poisoned.into_inner());
    let router = served.get(&addr).or_else(|| {
        let wildcard: IpAddr =
            if ip.is_ipv4() { Ipv4Addr::UNSPECIFIED.into() } else { Ipv6Addr::UNSPECIFIED.into() };
        ip.is_loopback().then(|| served.get(&SocketAddr::new(wildcard, addr.port()))).flatten()
    })?;
    let peer_ip = if ip.is_unspecified() {
        if ip.is_ipv4() { Ipv4Addr::LOCALHOST.into() } else { Ipv6Addr::LOCALHOST.into() }
    } else {
        ip
    };
    Some(Local { router: router.clone(), peer: SocketAddr::new(peer_ip, 0), authority: authority.clone() })
}

impl Local {
    /// Answers `request` as the service would over a connection: the request carries only what
    /// a server reading it from a socket has (origin-form target, `Host`, the peer's address;
    /// none of the caller's extensions), and the answer none of the service's extensions.
    pub async fn call(self, request: Request) -> Response {
        let (mut parts, body) = request.into_parts();
        parts.extensions.clear();
        parts.extensions.insert(ConnectInfo(self.peer));
        // Where a gRPC server (tonic) looks for the peer's address.
        parts.extensions.insert(tonic::transport::server::TcpConnectInfo {
            local_addr: None,
            remote_addr: Some(self.peer),
        });
        if let Some(target) = parts.uri.path_and_query().cloned() {
            parts.uri = Uri::from(target);
        }
        if let Ok(host) = HeaderValue::from_str(self.authority.as_str()) {
            parts.headers.insert(header::HOST, host);
        }
        let answer: Result<Response, Infallible> =
            self.router.oneshot(Request::from_parts(parts, body)).await;
        let Ok(mut response) = answer;
        response.extensions_mut().clear();
        response
    }
}

#[cfg(test)]
mod tests {
    use axum::{body::Body, routing::get};
    use http_body_util::BodyExt;

    use super::*;

    async fn text(response: Response) -> String {
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    fn peer_router() -> Router {
        Router::new().route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>, uri: Uri, headers: axum::http::HeaderMap| async move {
                let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("").to_owned();
                format!("{} {uri} {host}", peer.ip())
            }),
        )
    }

    #[tokio::test]
    async fn a_registered_router_answers_for_its_address_until_unregistered() {
        let addr: SocketAddr = "127.0.0.1:40001".parse().expect("addr");
        let registration = register(addr, peer_router());
        let uri: Uri = "http://127.0.0.1:40001/peer?x=1".parse().expect("uri");
        let local = find(&uri).expect("registered");
        let request = Request::builder().uri(uri.clone()).body(Body::empty()).expect("request");
        assert_eq!(text(local.call(request).await).await, "127.0.0.1 /peer?x=1 127.0.0.1:40001");
        assert!(find(&"http://127.0.0.1:40002/peer".parse().expect("uri")).is_none(), "another port");
        assert!(
            find(&"https://127.0.0.1:40001/peer".parse().expect("uri")).is_none(),
            "TLS is a network call"
        );
        assert!(
            find(&"http://localhost:40001/peer".parse().expect("uri")).is_none(),
            "names are not resolved"
        );
        drop(registration);
        assert!(find(&uri).is_none(), "gone with its listener");
    }

    #[tokio::test]
    async fn a_router_on_the_wildcard_address_answers_for_loopback() {
        let registration = register("0.0.0.0:40003".parse().expect("addr"), peer_router());
        let uri: Uri = "http://127.0.0.1:40003/peer".parse().expect("uri");
        let request = Request::builder().uri(uri.clone()).body(Body::empty()).expect("request");
        let answer = text(find(&uri).expect("wildcard").call(request).await).await;
        assert!(answer.starts_with("127.0.0.1 /peer"), "{answer}");
        drop(registration);
    }
}
