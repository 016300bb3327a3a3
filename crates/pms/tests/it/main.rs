//! The public API as `pms up` serves it: OpenAPI document and Swagger UI, over a real socket.

use kit::config::HttpConfig;
use reqwest::StatusCode;
use serde_json::Value;

async fn spawn() -> String {
    let options = kit::testing::fresh_database().await;
    let pool =
        patients::connect_with(options, &kit::db::DbConfig::with_url("unused")).await.expect("connect");
    patients::migrate(&pool).await.expect("migrate");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let app = pms::public_app(pool, &HttpConfig::ephemeral());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

#[tokio::test]
async fn the_openapi_document_is_3_1_and_describes_the_patients_api() {
    let base = spawn().await;
    let response = reqwest::get(format!("{base}/openapi.json")).await.expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.expect("json");
    assert!(doc["openapi"].as_str().expect("version").starts_with("3.1"));
    let paths = doc["paths"].as_object().expect("paths");
    for path in ["/api/patients", "/api/patients/{id}", "/api/patients/{id}/history"] {
        assert!(paths.contains_key(path), "{path} missing");
    }
    assert!(doc["paths"]["/api/patients"]["post"]["responses"]["422"].is_object());
    assert!(doc["components"]["schemas"]["Problem"].is_object());
}

#[tokio::test]
async fn swagger_ui_is_served_offline_from_the_binary() {
    let base = spawn().await;
    let page = reqwest::get(format!("{base}/docs/")).await.expect("request");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(!html.contains("cdn"), "assets must not come from a CDN");
    for asset in ["swagger-ui.css", "swagger-ui-bundle.js", "swagger-initializer.js"] {
        let response = reqwest::get(format!("{base}/docs/{asset}")).await.expect("request");
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert!(response.bytes().await.expect("body").len() > 100, "{asset}");
    }
    let init = reqwest::get(format!("{base}/docs/swagger-initializer.js")).await.expect("request");
    assert!(init.text().await.expect("js").contains("/openapi.json"));
}

#[tokio::test]
async fn the_public_app_serves_patients_and_health() {
    let base = spawn().await;
    let client = reqwest::Client::new();
    let body = serde_json::json!({ "givenName": "Up", "familyName": "Check", "birthDate": "1990-05-05", "sex": "other" });
    let created = client.post(format!("{base}/api/patients")).json(&body).send().await.expect("request");
    assert_eq!(created.status(), StatusCode::CREATED);
    let ready = reqwest::get(format!("{base}/health/ready")).await.expect("request");
    assert_eq!(ready.status(), StatusCode::OK);
}
