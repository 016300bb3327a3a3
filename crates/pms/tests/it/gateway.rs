//! What the gateway adds: request ids, trace context, forwarding, rate limits, limits and
//! timeouts that answer instead of hanging, readiness of the services behind it.

use std::time::Duration;

use axum::{Json, Router, http::HeaderMap, routing::get};
use gateway::{
    RateConfig,
    routes::{Access, Route},
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::system::{TestSystem, expect_problem};

/// A stand-in upstream on a real socket: echoes the headers it received, or answers slowly.
async fn echo_upstream() -> String {
    async fn echo(headers: HeaderMap) -> Json<Value> {
        let map: serde_json::Map<String, Value> =
            headers.iter().map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or("")))).collect();
        Json(Value::Object(map))
    }
    let app = Router::new().route("/echo", get(echo)).route(
        "/echo/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "late"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn system_with_echo(rate: Option<RateConfig>) -> TestSystem {
    let upstream = echo_upstream().await;
    TestSystem::start_with(move |_, gateway| {
        gateway.routes.push(Route::new("/echo", &upstream, Access::Public));
        gateway.routes.push(Route::new("/down", "http://127.0.0.1:9", Access::Public));
        gateway.upstream_timeout = Duration::from_millis(300);
        if let Some(rate) = rate {
            gateway.rate = rate;
        }
    })
    .await
}

#[tokio::test]
async fn request_ids_and_trace_context_travel_to_the_service() {
    let system = system_with_echo(None).await;
    let response = system
        .client
        .get(system.url("/echo"))
        .header("x-request-id", "client-chosen-id")
        .header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        .send()
        .await
        .expect("request");
    assert_eq!(response.headers()["x-request-id"], "client-chosen-id");
    let seen: Value = response.json().await.expect("json");
    assert_eq!(seen["x-request-id"], "client-chosen-id");
    let traceparent = seen["traceparent"].as_str().expect("traceparent");
    assert!(traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{traceparent}");
    assert!(!traceparent.contains("00f067aa0ba902b7"), "the gateway is a new span");
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1");

    let response = system.client.get(system.url("/echo")).send().await.expect("request");
    let created = response.headers()["x-request-id"].to_str().expect("id").to_owned();
    let seen: Value = response.json().await.expect("json");
    assert_eq!(seen["x-request-id"], created.as_str(), "one id is created and passed on");
    assert!(seen["traceparent"].as_str().is_some_and(|t| t.len() == 55));

    // Proxied requests are counted under their route, not as unmatched.
    let metrics =
        system.client.get(system.url("/metrics")).send().await.expect("request").text().await.expect("text");
    assert!(
        metrics.lines().any(|l| l.contains("service=\"gateway\"") && l.contains("route=\"/echo/*\"")),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_slow_service_is_504_and_an_unreachable_one_503() {
    let system = system_with_echo(None).await;
    let started = std::time::Instant::now();
    expect_problem(
        system.client.get(system.url("/echo/slow")).send().await.expect("request"),
        StatusCode::GATEWAY_TIMEOUT,
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(5), "answered, did not hang");
    expect_problem(
        system.client.get(system.url("/down")).send().await.expect("request"),
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    expect_problem(
        system.client.get(system.url("/nowhere")).send().await.expect("request"),
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn each_client_is_rate_limited_with_ratelimit_headers() {
    let system = system_with_echo(Some(RateConfig { per_second: 1, burst: 3 })).await;
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let response = system.client.get(system.url("/echo")).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["ratelimit-limit"], "3");
        remaining.push(response.headers()["ratelimit-remaining"].to_str().expect("header").to_owned());
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let response = system.client.get(system.url("/echo")).send().await.expect("request");
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(response.headers()["ratelimit-remaining"], "0");
    expect_problem(response, StatusCode::TOO_MANY_REQUESTS).await;
}

#[tokio::test]
async fn oversized_bodies_are_refused_at_the_gateway() {
    let system = TestSystem::start_with(|_, gateway| gateway.body_limit = 1024).await;
    let token = system.admin_token().await;
    let body = json!({ "givenName": "x".repeat(2000), "familyName": "Big", "birthDate": "1980-01-01", "sex": "male" });
    let response = system
        .client
        .post(system.url("/api/patients"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request");
    expect_problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
}

#[tokio::test]
async fn readiness_reflects_the_services_behind_the_gateway() {
    let system = TestSystem::start().await;
    let response = system.client.get(system.url("/health/ready")).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["checks"], json!({ "auth": "ok", "patients": "ok" }));
}
