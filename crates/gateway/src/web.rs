//! The front desk's web app (`web/`, docs/adr/0004-web-app.md), served at `/`.
//!
//! Its built files (`npm run build` writes `web/dist`: an `index.html` and fingerprinted files
//! under `assets/`, each beside its gzip) are read once at start from `PMS_WEB_ROOT` and kept
//! in memory: a few tens of kilobytes. `index.html` is never cached (it names the current
//! assets) and carries a strict Content-Security-Policy (nothing but this origin: no inline
//! script or style, no framing); an asset's name changes with its content, so browsers keep
//! it for a year. Everything else the gateway answers is untouched.

use std::{collections::HashMap, io, path::Path, sync::Arc};

use axum::{
    Router,
    body::Bytes,
    extract::{Path as UrlPath, State},
    http::{HeaderMap, HeaderValue, header},
    response::{IntoResponse, Response},
    routing::get,
};
use kit::problem::Problem;

/// What the app's page may load and where it may connect: this origin only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

#[derive(Clone)]
struct Asset {
    content_type: &'static str,
    body: Bytes,
    gzip: Option<Bytes>,
}

/// The built app, in memory.
#[derive(Clone)]
pub struct WebApp {
    index: Bytes,
    assets: Arc<HashMap<String, Asset>>,
}

impl std::fmt::Debug for WebApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebApp").field("assets", &self.assets.keys().collect::<Vec<_>>()).finish()
    }
}

impl WebApp {
    /// Reads the build in `root` (`index.html` and `assets/`).
    pub fn load(root: &Path) -> io::Result<Self> {
        let index = std::fs::read(root.join("index.html"))?;
        let mut assets = HashMap::new();
        for entry in std::fs::read_dir(root.join("assets"))? {
            let path = entry?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else { continue };
            if name.ends_with(".gz") {
                continue;
            }
            let Some(content_type) = content_type(&name) else { continue };
            let gzip = std::fs::read(root.join("assets").join(format!("{name}.gz"))).ok().map(Bytes::from);
            assets.insert(name, Asset { content_type, body: Bytes::from(std::fs::read(&path)?), gzip });
        }
        Ok(Self { index: Bytes::from(index), assets: Arc::new(assets) })
    }

    /// `/` and `/assets/{name}`.
    pub fn router<S: Clone + Send + Sync + 'static>(self) -> Router<S> {
        Router::new().route("/", get(index)).route("/assets/{name}", get(asset)).with_state(self)
    }
}

fn content_type(name: &str) -> Option<&'static str> {
    Some(match name.rsplit_once('.')?.1 {
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        _ => return None,
    })
}

async fn index(State(app): State<WebApp>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        app.index.clone(),
    )
        .into_response()
}

async fn asset(State(app): State<WebApp>, UrlPath(name): UrlPath<String>, headers: HeaderMap) -> Response {
    let Some(asset) = app.assets.get(&name) else {
        return Problem::not_found("no file of the web app has this name").into_response();
    };
    let gzip = asset.gzip.as_ref().filter(|_| accepts_gzip(&headers));
    let mut response = (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, IMMUTABLE),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::VARY, "accept-encoding"),
        ],
        gzip.unwrap_or(&asset.body).clone(),
    )
        .into_response();
    if gzip.is_some() {
        response.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

/// Whether the client takes gzip (`Accept-Encoding`, not refused with `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).any(|v| {
        v.split(',').any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| p.replace(' ', "").eq_ignore_ascii_case("q=0"));
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
    })
}

#[cfg(test)]
mod tests {
    use axum::{body::Body, http::Request};
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    use super::*;

    /// A build on disk, read (the files are kept in memory) and removed.
    fn built() -> WebApp {
        let dir = std::env::temp_dir().join(format!("pms-web-{}", uuid::Uuid::new_v4()));
        let write = |name: &str, content: &[u8]| std::fs::write(dir.join(name), content).expect("write");
        std::fs::create_dir_all(dir.join("assets")).expect("mkdir");
        write("index.html", b"<!doctype html><script src=/assets/app-1.js>");
        write("assets/app-1.js", b"console.log(1)");
        write("assets/app-1.js.gz", &[0x1f, 0x8b]);
        write("assets/app-1.css", b"body{}");
        let app = WebApp::load(&dir).expect("load");
        std::fs::remove_dir_all(&dir).expect("rm");
        app
    }

    async fn get(app: &WebApp, path: &str, encoding: Option<&str>) -> Response {
        let mut request = Request::get(path);
        if let Some(e) = encoding {
            request = request.header(header::ACCEPT_ENCODING, e);
        }
        let request = request.body(Body::empty()).expect("request");
        app.clone().router::<()>().oneshot(request).await.expect("response")
    }

    #[tokio::test]
    async fn the_page_is_never_cached_and_allows_nothing_but_this_origin() {
        let app = built();
        let response = get(&app, "/", None).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-cache");
        let csp = response.headers()[header::CONTENT_SECURITY_POLICY].to_str().expect("text");
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(response.headers()[header::X_FRAME_OPTIONS], "DENY");
        let body = response.into_body().collect().await.expect("body").to_bytes();
        assert!(body.starts_with(b"<!doctype html>"));
    }

    #[tokio::test]
    async fn assets_are_immutable_and_gzipped_for_clients_that_take_it() {
        let app = built();
        let plain = get(&app, "/assets/app-1.js", None).await;
        assert_eq!(plain.status(), 200);
        assert_eq!(plain.headers()[header::CACHE_CONTROL], IMMUTABLE);
        assert_eq!(plain.headers()[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(&plain.into_body().collect().await.expect("body").to_bytes()[..], b"console.log(1)");

        let zipped = get(&app, "/assets/app-1.js", Some("br, gzip;q=0.8")).await;
        assert_eq!(zipped.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(&zipped.into_body().collect().await.expect("body").to_bytes()[..], [0x1f, 0x8b]);

        let refused = get(&app, "/assets/app-1.js", Some("gzip;q=0")).await;
        assert!(refused.headers().get(header::CONTENT_ENCODING).is_none());
        // A file without a gzip beside it is sent as it is.
        let css = get(&app, "/assets/app-1.css", Some("gzip")).await;
        assert!(css.headers().get(header::CONTENT_ENCODING).is_none());
    }

    #[tokio::test]
    async fn an_unknown_asset_is_a_404_problem() {
        let app = built();
        let response = get(&app, "/assets/nothing.js", None).await;
        assert_eq!(response.status(), 404);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/problem+json");
    }
}
