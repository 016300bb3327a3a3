//! The API description the gateway serves.

use reqwest::StatusCode;
use serde_json::Value;

use crate::system::TestSystem;

#[tokio::test]
async fn one_openapi_3_1_document_describes_the_whole_public_api_with_bearer_auth() {
    let system = TestSystem::start().await;
    let response = system.client.get(system.url("/openapi.json")).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.expect("json");
    assert!(doc["openapi"].as_str().expect("version").starts_with("3.1"));
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/api/patients",
        "/api/patients/{id}",
        "/api/patients/{id}/history",
        "/api/audit-events",
        "/auth/login",
        "/auth/refresh",
        "/auth/logout",
        "/auth/validate",
        "/.well-known/jwks.json",
        "/api/users",
        "/api/users/{id}",
        "/api/users/me/password",
        "/api/users/names",
    ] {
        assert!(paths.contains_key(path), "{path} missing");
    }
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert!(doc["security"][0].get("bearer").is_some());
    // Login needs no token: its operation overrides the global requirement.
    assert_eq!(doc["paths"]["/auth/login"]["post"]["security"], serde_json::json!([{}]));
}

#[tokio::test]
async fn swagger_ui_is_served_offline_by_the_gateway() {
    let system = TestSystem::start().await;
    let page = system.client.get(system.url("/docs/")).send().await.expect("request");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(!html.contains("cdn"), "assets must not come from a CDN");
    for asset in ["swagger-ui.css", "swagger-ui-bundle.js", "swagger-initializer.js"] {
        let response =
            system.client.get(system.url(&format!("/docs/{asset}"))).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
    }
}
