//! HTTP client for calls between services (token keys, revocations, readiness of upstreams)
//! and for the gateway's proxy: hyper's pooled client, speaking `http://` and `https://`
//! (rustls with the Web PKI roots, plus the CAs of `PMS_TLS_CA_FILE` for a private CA).

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use axum::body::Body;
use http_body_util::BodyExt;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use rustls::{
    ClientConfig, RootCertStore,
    pki_types::{CertificateDer, pem::PemObject},
};
use serde::de::DeserializeOwned;

pub type HttpClient = Client<HttpsConnector<HttpConnector>, Body>;

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

/// How long an idle pooled connection is kept for reuse. Shorter than the time pms servers
/// keep an idle connection open (`PMS_HTTP_HEADER_READ_TIMEOUT_MS`, default 5 s, which also
/// bounds the wait for the next request on a kept-alive connection): with a longer keep, a
/// request sent at the moment the server closes its end fails (the token-key refresh, every
/// 5 s, hit that race about every other time).
pub const IDLE_KEEP: Duration = Duration::from_secs(2);

/// A new pooled client (connect timeout 2 s, idle connections kept [`IDLE_KEEP`]) trusting the Web
/// PKI roots and the CAs in `PMS_TLS_CA_FILE` (PEM), if set. A CA file that cannot be read is
/// reported and left out: the client then trusts the Web PKI only.
pub fn new_client() -> HttpClient {
    let extra = match crate::config::var("PMS_TLS_CA_FILE") {
        None => Vec::new(),
        Some(path) => match ca_certificates(&path) {
            Ok(certificates) => certificates,
            Err(err) => {
                tracing::error!(error = %err, "PMS_TLS_CA_FILE cannot be read; trusting the Web PKI roots only");
                Vec::new()
            }
        },
    };
    client_trusting(extra)
}

/// The certificates of a PEM file.
pub fn ca_certificates(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{path}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{path}: {e}"))
}

/// A client trusting the Web PKI roots and `extra` CAs.
pub fn client_trusting(extra: Vec<CertificateDer<'static>>) -> HttpClient {
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    for certificate in extra {
        if let Err(err) = roots.add(certificate) {
            tracing::error!(error = %err, "a CA certificate of PMS_TLS_CA_FILE is not usable");
        }
    }
    // Not reachable by input: ring supports the safe default protocol versions.
    #[allow(clippy::expect_used)]
    let tls = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(Duration::from_secs(2)));
    http.set_nodelay(true);
    http.enforce_http(false);
    let connector =
        HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().wrap_connector(http);
    Client::builder(TokioExecutor::new()).pool_idle_timeout(IDLE_KEEP).build(connector)
}

fn shared() -> &'static HttpClient {
    static CLIENT: OnceLock<HttpClient> = OnceLock::new();
    CLIENT.get_or_init(new_client)
}

/// GETs `url` and parses its JSON body; fails on a non-2xx status.
pub async fn get_json<T: DeserializeOwned>(url: &str) -> Result<T, ClientError> {
    let request =
        axum::http::Request::get(url).body(Body::empty()).map_err(|e| ClientError::Request(e.to_string()))?;
    send_for_json(request).await
}

/// POSTs `body` as JSON to `url` and parses the JSON answer; fails on a non-2xx status.
pub async fn post_json<T: DeserializeOwned>(
    url: &str,
    body: &impl serde::Serialize,
) -> Result<T, ClientError> {
    let body = serde_json::to_vec(body).map_err(|e| ClientError::Request(e.to_string()))?;
    let request = axum::http::Request::post(url)
        .header(axum::http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .map_err(|e| ClientError::Request(e.to_string()))?;
    send_for_json(request).await
}

async fn send_for_json<T: DeserializeOwned>(request: axum::http::Request<Body>) -> Result<T, ClientError> {
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

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use axum::http::{Request, Response};
    use http_body_util::{BodyExt, Full};
    use hyper::body::Bytes;
    use hyper_util::rt::TokioIo;
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    use super::*;

    /// An HTTPS server on 127.0.0.1 answering `{"ok":true}`, with a self-signed certificate for
    /// `localhost`; returns its port and the certificate.
    async fn tls_server() -> (u16, CertificateDer<'static>) {
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("certificate");
        let certificate = generated.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(generated.signing_key.serialize_der()));
        let config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_no_client_auth()
                .with_single_cert(vec![certificate.clone()], key)
                .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else { return };
                    let service = hyper::service::service_fn(|_: Request<hyper::body::Incoming>| async {
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"{\"ok\":true}"))))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        (port, certificate)
    }

    #[tokio::test]
    async fn https_urls_work_with_a_trusted_ca_and_fail_without_it() {
        let (port, certificate) = tls_server().await;
        let url = format!("https://localhost:{port}/keys");
        let get = |client: HttpClient| {
            let url = url.clone();
            async move {
                let request = Request::get(url.as_str()).body(Body::empty()).expect("request");
                let response = client.request(request).await.map_err(|e| e.to_string())?;
                let bytes = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
                Ok::<_, String>(bytes)
            }
        };
        let body = get(client_trusting(vec![certificate])).await.expect("served over TLS");
        assert_eq!(&body[..], b"{\"ok\":true}");
        assert!(get(client_trusting(Vec::new())).await.is_err(), "an unknown CA is refused");
    }
}
