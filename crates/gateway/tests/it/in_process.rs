//! A service of the gateway's own process (`pms up`) is called without a socket, and the
//! answer is the one the same request over loopback HTTP gets.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestGateway, expect_problem};

/// What the `here` service saw of one POST through the gateway.
async fn seen(system: &TestGateway) -> Value {
    let response = system
        .client
        .post(system.url("/here/echo?x=1"))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("x-request-id"));
    response.json().await.expect("json")
}

#[tokio::test]
async fn a_service_of_the_same_process_sees_the_same_request_with_or_without_a_socket() {
    let direct = TestGateway::start().await;
    let over_http = TestGateway::start_with(|gateway| gateway.in_process = false).await;
    let (direct_seen, http_seen) = (seen(&direct).await, seen(&over_http).await);

    // No connection: the service sees loopback with no port; over HTTP, the gateway's socket.
    assert_eq!(direct_seen["peerPort"], 0, "{direct_seen}");
    assert_ne!(http_seen["peerPort"], 0, "{http_seen}");
    for seen in [&direct_seen, &http_seen] {
        assert_eq!(seen["peerIp"], "127.0.0.1");
        assert_eq!(seen["target"], "/here/echo?x=1", "origin-form, as a server reads it");
        assert_eq!(seen["xForwardedFor"], "127.0.0.1");
        assert_eq!(seen["body"], "hello");
        assert!(seen["traceparent"].as_str().is_some_and(|t| t.len() == 55), "{seen}");
        let host = seen["host"].as_str().expect("host");
        assert!(host.starts_with("127.0.0.1:"), "{host}");
    }
}

#[tokio::test]
async fn a_slow_service_of_the_same_process_is_504() {
    let system = TestGateway::start().await;
    let started = Instant::now();
    expect_problem(
        system.client.get(system.url("/here/slow")).send().await.expect("request"),
        StatusCode::GATEWAY_TIMEOUT,
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(5), "answered, did not hang");
}

#[tokio::test]
async fn a_stopped_service_of_the_same_process_is_503_not_served_by_its_old_router() {
    let system = TestGateway::start().await;
    assert_eq!(seen(&system).await["peerPort"], 0);
    system.here_shutdown.trigger();
    // Its listener closes at once (no grace); from then on nothing answers at its address.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let response = system.client.post(system.url("/here/echo")).body("x").send().await.expect("request");
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            expect_problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
            break;
        }
        assert!(Instant::now() < deadline, "still answered with status {}", response.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
