//! HTTP client for calls between services (token keys, readiness of upstreams) and for the
//! gateway's proxy: hyper's pooled client, plain HTTP inside the deployment.

use std::{sync::OnceLock, time::Duration};

use axum::body::Body;
use http_body_util::BodyExt;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde::de::DeserializeOwned;

pub type HttpClient = Client<HttpConnector, Body>;

/// Largest JSON document `get_json` reads.
const MAX_JSON_BYTES: usize = 1024 * 1024;
const GET_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("request failed: {0}")]
    Request(String),
    #[error("timed out")]
    Timeout,
    #[error("answered {0}")]
    Status(u16),
    #[error("unreadable answer: {0}")]
    Body(String),
}

/// A new pooled client (connect timeout 2 s, idle connections kept 30 s).
pub fn new_client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(2)));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector)
}

fn shared() -> &'static HttpClient {
    static CLIENT: OnceLock<HttpClient> = OnceLock::new();
    CLIENT.get_or_init(new_client)
}

/// GETs `url` and parses its JSON body; fails on a non-2xx status.
pub async fn get_json<T: DeserializeOwned>(url: &str) -> Result<T, ClientError> {
    let request =
        axum::http::Request::get(url).body(Body::empty()).map_err(|e| ClientError::Request(e.to_string()))?;
    let response = tokio::time::timeout(GET_TIMEOUT, shared().request(request))
        .await
        .map_err(|_| ClientError::Timeout)?
        .map_err(|e| ClientError::Request(e.to_string()))?;
    if !response.status().is_success() {
        return Err(ClientError::Status(response.status().as_u16()));
    }
    let body = http_body_util::Limited::new(response.into_body(), MAX_JSON_BYTES);
    let bytes = tokio::time::timeout(GET_TIMEOUT, body.collect())
        .await
        .map_err(|_| ClientError::Timeout)?
        .map_err(|e| ClientError::Body(e.to_string()))?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| ClientError::Body(e.to_string()))
}
