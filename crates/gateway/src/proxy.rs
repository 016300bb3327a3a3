//! The proxy: find the route, check the token (401) and the route's roles (403), apply the
//! caller's rate limit (429) and the body limit (413), and forward with `x-request-id`, a
//! continued `traceparent` and `x-forwarded-for`; 504 when the service is too slow, 503 when
//! it cannot be reached. A service of the same process (`pms up`) is called directly, without
//! a socket ([`kit::in_process`]), unless `PMS_GATEWAY_IN_PROCESS=off`.

use std::{future::Future, net::SocketAddr, pin::Pin, sync::Arc, time::Duration};

use axum::{
    body::Body,
    extract::{ConnectInfo, Request, State},
    http::{HeaderName, HeaderValue, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use kit::{
    Problem,
    auth::{Claims, TokenError, Verifier},
    client::HttpClient,
    health::ReadinessCheck,
    net::TrustedProxies,
    problem::kinds,
    trace,
};

use crate::{
    limits::{Decision, RateLimits},
    routes::{self, Access, Route},
};

/// What the proxy shares between requests.
#[derive(Clone)]
pub struct Gateway {
    pub(crate) routes: Arc<Vec<Route>>,
    pub(crate) verifier: Verifier,
    pub(crate) client: HttpClient,
    /// Per user (valid token), else per address; checked after the token.
    pub(crate) limits: RateLimits,
    /// Per client address, for every request; checked before the token.
    pub(crate) address_limits: RateLimits,
    /// Whose `X-Forwarded-For` tells the client's address (a load balancer in front).
    pub(crate) trusted_proxies: TrustedProxies,
    pub(crate) upstream_timeout: Duration,
    pub(crate) body_limit: usize,
    /// Whether a service of this process is called without a socket ([`kit::in_process`]).
    pub(crate) in_process: bool,
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1): never forwarded.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn problem(status: StatusCode, kind: &str, title: &str, detail: &str) -> Response {
    Problem::new(status, kind, title).with_detail(detail).into_response()
}

/// The caller's claims, or the answer refusing the request.
async fn authenticate(
    gateway: &Gateway,
    route: &Route,
    token: Option<String>,
) -> Result<Option<Claims>, Response> {
    let claims = match token.as_deref() {
        Some(token) => match gateway.verifier.verify(token).await {
            Ok(claims) => Some(claims),
            // A public route is served anyway; the service ignores the bad token or rejects it.
            Err(_) if route.access == Access::Public => None,
            Err(err) => return Err(err.into_response()),
        },
        None if route.access == Access::Public => None,
        None => return Err(TokenError::Missing.into_response()),
    };
    if let (Access::Roles(allowed), Some(claims)) = (&route.access, &claims)
        && !claims.roles.iter().any(|r| allowed.contains(r))
    {
        tracing::warn!(user = %claims.sub, route = %route.prefix, "denied by the gateway's route roles");
        return Err(kit::auth::forbidden().into_response());
    }
    Ok(claims)
}

pub(crate) async fn proxy(State(gateway): State<Gateway>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let Some(route) = routes::find(&gateway.routes, &path).cloned() else {
        return Problem::not_found("no resource lives at this path").into_response();
    };
    let peer_ip = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let peer = peer_ip.map(|ip| ip.to_string());
    // The client is the peer, or the address a trusted proxy in front says it came from.
    let client = gateway.trusted_proxies.client(request.headers(), peer_ip);
    let address = format!("ip:{}", client.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string()));
    // Each address is limited before its token is even looked at: tokens that cost work to
    // refuse (made-up key ids) cannot flood the verifier from one place.
    let by_address = gateway.address_limits.check(&address);
    if !by_address.allowed {
        return too_many(&gateway.address_limits, &by_address);
    }
    let token = kit::auth::bearer(request.headers()).map(str::to_owned);
    let claims = match authenticate(&gateway, &route, token).await {
        Ok(claims) => claims,
        Err(response) => return response,
    };
    let client_key = match &claims {
        Some(claims) => format!("user:{}", claims.sub),
        None => address,
    };
    let decision = gateway.limits.check(&client_key);
    if !decision.allowed {
        return too_many(&gateway.limits, &decision);
    }
    let too_large = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
        .is_some_and(|n| n > gateway.body_limit);
    if too_large {
        return problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            kinds::PAYLOAD_TOO_LARGE,
            "Payload too large",
            "the request body exceeds the size limit",
        );
    }
    let mut response = forward(&gateway, &route, request, peer).await;
    gateway.limits.headers(&decision, response.headers_mut());
    response.extensions_mut().insert(kit::metrics::RouteLabel(format!("{}/*", route.prefix)));
    response
}

/// The 429 answer of a limiter's refusal, with its `RateLimit-*` headers.
fn too_many(limits: &RateLimits, decision: &Decision) -> Response {
    metrics::counter!("gateway_rate_limited_total").increment(1);
    let mut response =
        Problem::new(StatusCode::TOO_MANY_REQUESTS, kinds::TOO_MANY_REQUESTS, "Too many requests")
            .with_detail("slow down: this client is over its rate limit")
            .with_retry_after(decision.reset)
            .into_response();
    limits.headers(decision, response.headers_mut());
    response
}

async fn forward(gateway: &Gateway, route: &Route, request: Request, peer: Option<String>) -> Response {
    let (mut parts, body) = request.into_parts();
    let path_and_query = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let Ok(uri) = format!("{}{path_and_query}", route.upstream).parse::<Uri>() else {
        return problem(
            StatusCode::BAD_REQUEST,
            kinds::MALFORMED_REQUEST,
            "Malformed request",
            "the path cannot be forwarded",
        );
    };
    parts.uri = uri;
    let headers = &mut parts.headers;
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    headers.remove(header::HOST);
    let traceparent = trace::next_traceparent(headers.get("traceparent").and_then(|v| v.to_str().ok()));
    if let Ok(value) = HeaderValue::from_str(&traceparent) {
        headers.insert(HeaderName::from_static("traceparent"), value);
    }
    if let Some(ip) = peer {
        let forwarded = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(earlier) => format!("{earlier}, {ip}"),
            None => ip,
        };
        if let Ok(value) = HeaderValue::from_str(&forwarded) {
            headers.insert(HeaderName::from_static("x-forwarded-for"), value);
        }
    }
    let body = Body::new(http_body_util::Limited::new(body, gateway.body_limit));
    let upstream = Request::from_parts(parts, body);
    let local = if gateway.in_process { kit::in_process::find(upstream.uri()) } else { None };
    let answer = async {
        match local {
            Some(service) => Ok(service.call(upstream).await),
            None => gateway.client.request(upstream).await.map(|response| response.map(Body::new)),
        }
    };
    match tokio::time::timeout(gateway.upstream_timeout, answer).await {
        Err(_) => {
            tracing::warn!(route = %route.prefix, "upstream timed out");
            problem(
                StatusCode::GATEWAY_TIMEOUT,
                kinds::GATEWAY_TIMEOUT,
                "Gateway timeout",
                "the service did not answer in time",
            )
        }
        Ok(Err(err)) => {
            tracing::warn!(route = %route.prefix, error = %err, "upstream unreachable");
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, kinds::UNAVAILABLE, "Service unavailable")
                .with_detail("the service behind this path cannot be reached; retry shortly")
                .with_retry_after(1)
                .into_response()
        }
        Ok(Ok(response)) => {
            let (mut parts, body) = response.into_parts();
            for name in HOP_BY_HOP {
                parts.headers.remove(name);
            }
            Response::from_parts(parts, body)
        }
    }
}

/// Readiness of a service behind the gateway: its own `/health/ready`.
pub(crate) struct Upstream {
    pub(crate) name: &'static str,
    pub(crate) url: String,
}

impl ReadinessCheck for Upstream {
    fn name(&self) -> &'static str {
        self.name
    }

    fn check(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async move {
            kit::client::get_json::<serde_json::Value>(&self.url).await.map(drop).map_err(|e| e.to_string())
        })
    }
}
