//! What the gateway adds: request ids, trace context, forwarding, rate limits, limits and
//! timeouts that answer instead of hanging, readiness of the services behind it.

use std::time::Duration;

use gateway::RateConfig;
use kit::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestGateway, expect_problem};

#[tokio::test]
async fn request_ids_and_trace_context_travel_to_the_service() {
    let system = TestGateway::start().await;
    let response = system
        .client
        .get(system.url("/echo"))
        .header("x-request-id", "client-chosen-id")
        .header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        .send()
        .await
        .expect("request");
    // The gateway assigns the request id; a client's own is kept beside it, never trusted as
    // the correlation key.
    let assigned = response.headers()["x-request-id"].to_str().expect("id").to_owned();
    assert_ne!(assigned, "client-chosen-id");
    assert_eq!(response.headers()["x-client-request-id"], "client-chosen-id");
    let seen: Value = response.json().await.expect("json");
    assert_eq!(seen["x-request-id"], assigned.as_str());
    assert_eq!(seen["x-client-request-id"], "client-chosen-id");
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
    let metrics = system.metrics().await;
    assert!(
        metrics.lines().any(|l| l.contains("service=\"gateway\"") && l.contains("route=\"/echo/*\"")),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_slow_service_is_504_and_an_unreachable_one_503() {
    let system = TestGateway::start().await;
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
    let system =
        TestGateway::start_with(|gateway| gateway.rate = RateConfig { per_second: 1, burst: 3 }).await;
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
    let system = TestGateway::start_with(|gateway| gateway.body_limit = 1024).await;
    let body = json!({ "givenName": "x".repeat(2000), "familyName": "Big" });
    let response = system.client.post(system.url("/echo")).json(&body).send().await.expect("request");
    expect_problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
    let small =
        system.client.post(system.url("/echo")).json(&json!({ "a": 1 })).send().await.expect("request");
    assert_eq!(small.status(), StatusCode::OK);
}

#[tokio::test]
async fn routes_that_need_a_token_are_refused_without_a_valid_one() {
    let system = TestGateway::start().await;
    let response = system.client.get(system.url("/private")).send().await.expect("request");
    let problem = expect_problem(response, StatusCode::UNAUTHORIZED).await;
    assert!(problem["detail"].as_str().is_some());
    let foreign = kit::testing::TestTokens::new().token("someone", &[Role::Admin]);
    let response =
        system.client.get(system.url("/private")).bearer_auth(foreign).send().await.expect("request");
    expect_problem(response, StatusCode::UNAUTHORIZED).await;
    let token = system.tokens.token("clin-1", &[Role::Clinician]);
    let response =
        system.client.get(system.url("/private")).bearer_auth(token).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn metrics_are_served_on_the_admin_address_only_with_bounded_labels() {
    let system = TestGateway::start().await;
    let public = system.client.get(system.url("/metrics")).send().await.expect("request");
    assert_eq!(public.status(), StatusCode::NOT_FOUND, "no metrics on the public address");
    let foo = reqwest::Method::from_bytes(b"FOO").expect("method");
    system.client.request(foo, system.url("/echo")).send().await.expect("request");
    let metrics = system.metrics().await;
    assert!(metrics.contains("http_requests_total"), "{metrics}");
    assert!(!metrics.contains("method=\"FOO\""), "invented verbs add no series: {metrics}");
    assert!(metrics.contains("method=\"other\""), "{metrics}");
}

#[tokio::test]
async fn answers_carry_no_store() {
    let system = TestGateway::start().await;
    let response = system.client.get(system.url("/echo")).send().await.expect("request");
    assert_eq!(response.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn readiness_reflects_the_services_behind_the_gateway() {
    let system = TestGateway::start().await;
    let response = system.client.get(system.url("/health/ready")).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "one service behind it is down");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["checks"], json!({ "echo": "ok", "down": "failing", "here": "ok" }));
}

#[tokio::test]
async fn made_up_key_ids_are_refused_fast_and_do_not_queue() {
    let system = TestGateway::start().await;
    let started = std::time::Instant::now();
    let requests: Vec<_> = (0..20)
        .map(|i| {
            let token = system.tokens.token_with_kid(&format!("made-up-{i}"), "someone", &[Role::Admin]);
            let request = system.client.get(system.url("/private")).bearer_auth(token);
            tokio::spawn(async move { request.send().await.map(|r| r.status()) })
        })
        .collect();
    for request in requests {
        assert_eq!(request.await.expect("task").expect("request"), StatusCode::UNAUTHORIZED);
    }
    // Twenty unknown key ids cost one or two key fetches, not a second each in a queue.
    assert!(started.elapsed() < Duration::from_secs(4), "{:?}", started.elapsed());
    let again = std::time::Instant::now();
    let token = system.tokens.token_with_kid("made-up-0", "someone", &[Role::Admin]);
    let response =
        system.client.get(system.url("/private")).bearer_auth(token).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(again.elapsed() < Duration::from_millis(500), "a known-unknown kid is refused at once");
    // The real key still works: it was fetched from the published key set.
    let token = system.tokens.token("clin-1", &[Role::Clinician]);
    let response =
        system.client.get(system.url("/private")).bearer_auth(token).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn each_address_is_limited_before_its_token_is_checked() {
    let system =
        TestGateway::start_with(|gateway| gateway.address_rate = RateConfig { per_second: 1, burst: 3 })
            .await;
    for _ in 0..3 {
        let response =
            system.client.get(system.url("/private")).bearer_auth("garbage").send().await.expect("request");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let response =
        system.client.get(system.url("/private")).bearer_auth("garbage").send().await.expect("request");
    expect_problem(response, StatusCode::TOO_MANY_REQUESTS).await;
}
