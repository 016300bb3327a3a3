//! The gateway: the one public entry of pms.
//!
//! For every request it finds the route ([`routes`]), checks the bearer token locally against
//! the auth service's keys (401) and the route's roles (403), applies the caller's rate limit
//! (429), and forwards the request to the service with `x-request-id`, a continued W3C
//! `traceparent` and `x-forwarded-for`. A service that does not answer in time gives 504, one
//! that cannot be reached 503; the gateway never hangs. It also serves the OpenAPI document of
//! the whole public API and Swagger UI, and `/health/ready` reflects the services behind it.

pub mod limits;
pub mod routes;
pub mod trace;

use std::{future::Future, net::SocketAddr, pin::Pin, sync::Arc, time::Duration};

use axum::{
    Router,
    body::Body,
    extract::{ConnectInfo, Request, State},
    http::{HeaderName, HeaderValue, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};
use kit::{
    Problem,
    auth::{Claims, TokenError, Verifier},
    client::HttpClient,
    config::{self, ConfigError, HttpConfig},
    health::{Readiness, ReadinessCheck},
    problem::kinds,
};
use utoipa_swagger_ui::SwaggerUi;

pub use limits::RateConfig;
use limits::RateLimits;
use routes::{Access, Route};

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub routes: Vec<Route>,
    /// A service that takes longer answers 504.
    pub upstream_timeout: Duration,
    pub rate: RateConfig,
    /// Largest request body forwarded (413 beyond).
    pub body_limit: usize,
}

impl GatewayConfig {
    /// The default routes to `auth_url` and `patients_url`, plus `PMS_GATEWAY_ROUTES`, and the
    /// `PMS_GATEWAY_*` limits.
    pub fn from_env(auth_url: &str, patients_url: &str) -> Result<Self, ConfigError> {
        let extra = match config::var("PMS_GATEWAY_ROUTES") {
            Some(spec) => routes::parse(&spec)
                .map_err(|reason| ConfigError::Invalid { name: "PMS_GATEWAY_ROUTES".into(), reason })?,
            None => Vec::new(),
        };
        Ok(Self {
            routes: routes::merge(routes::defaults(auth_url, patients_url), extra),
            upstream_timeout: config::millis_or("PMS_GATEWAY_UPSTREAM_TIMEOUT_MS", Duration::from_secs(8))?,
            rate: RateConfig {
                per_second: config::parse_or("PMS_GATEWAY_RATE_PER_SECOND", 100)?,
                burst: config::parse_or("PMS_GATEWAY_RATE_BURST", 200)?,
            },
            body_limit: config::parse_or("PMS_GATEWAY_BODY_LIMIT", 1024 * 1024)?,
        })
    }
}

#[derive(Clone)]
struct Gateway {
    routes: Arc<Vec<Route>>,
    verifier: Verifier,
    client: HttpClient,
    limits: RateLimits,
    upstream_timeout: Duration,
    body_limit: usize,
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

async fn proxy(State(gateway): State<Gateway>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let Some(route) = routes::find(&gateway.routes, &path).cloned() else {
        return Problem::not_found("no resource lives at this path").into_response();
    };
    let token = kit::auth::bearer(request.headers()).map(str::to_owned);
    let claims = match authenticate(&gateway, &route, token).await {
        Ok(claims) => claims,
        Err(response) => return response,
    };
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
    let client_key = match (&claims, &peer) {
        (Some(claims), _) => format!("user:{}", claims.sub),
        (None, Some(ip)) => format!("ip:{ip}"),
        (None, None) => "ip:unknown".to_owned(),
    };
    let decision = gateway.limits.check(&client_key);
    if !decision.allowed {
        metrics::counter!("gateway_rate_limited_total").increment(1);
        let mut response =
            Problem::new(StatusCode::TOO_MANY_REQUESTS, kinds::TOO_MANY_REQUESTS, "Too many requests")
                .with_detail("slow down: this client is over its rate limit")
                .with_retry_after(decision.reset)
                .into_response();
        gateway.limits.headers(&decision, response.headers_mut());
        return response;
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
    match tokio::time::timeout(gateway.upstream_timeout, gateway.client.request(upstream)).await {
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
            Response::from_parts(parts, Body::new(body))
        }
    }
}

/// Readiness of a service behind the gateway: its own `/health/ready`.
struct Upstream {
    name: &'static str,
    url: String,
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

/// The gateway as a router. `upstreams` name the services whose readiness the gateway
/// reports; `openapi` is the document of the whole public API.
pub fn app(
    config: &GatewayConfig,
    verifier: Verifier,
    upstreams: &[(&'static str, String)],
    openapi: utoipa::openapi::OpenApi,
    http: &HttpConfig,
) -> Router {
    let limits = RateLimits::new(config.rate);
    limits.spawn_cleanup();
    let gateway = Gateway {
        routes: Arc::new(config.routes.clone()),
        verifier,
        client: kit::client::new_client(),
        limits,
        upstream_timeout: config.upstream_timeout,
        body_limit: config.body_limit,
    };
    let readiness = upstreams.iter().fold(Readiness::default(), |r, (name, base)| {
        r.with(Upstream { name, url: format!("{}/health/ready", base.trim_end_matches('/')) })
    });
    let docs: Router<Gateway> = SwaggerUi::new("/docs").url("/openapi.json", openapi).into();
    // The proxy is the fallback: the gateway's own routes (docs, health, metrics) come first.
    let api = docs.fallback(proxy).with_state(gateway);
    let mut http = http.clone();
    // The gateway's own deadline must outlast the upstream timeout, which answers 504 itself.
    http.request_timeout = http.request_timeout.max(config.upstream_timeout + Duration::from_secs(2));
    http.body_limit = config.body_limit;
    kit::http::layered("gateway", api, readiness, &http)
}
