//! The OpenAPI document of the whole public API: every service's part, merged, with the
//! bearer scheme. The gateway serves it at `/openapi.json` (and Swagger UI at `/docs`).

use kit::service::Peers;
use utoipa::openapi::{
    InfoBuilder, OpenApi,
    security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme},
};

/// The document of the services in `peers`.
pub fn document(peers: &Peers) -> OpenApi {
    let mut doc = OpenApi::default();
    for peer in peers.iter() {
        doc.merge((peer.service.openapi)());
    }
    doc.info = InfoBuilder::new()
        .title("pms")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Patient management system. Log in at `POST /auth/login`, then send the access token as \
             `Authorization: Bearer <token>` (the Authorize button). Errors are RFC 9457 problem documents \
             (`application/problem+json`) with per-field `errors`; 401 means no valid token, 403 a role \
             that may not do the call.",
        ))
        .build();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
    );
    doc.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
    without_control_characters(doc)
}

/// No string the API takes or gives may hold a control character (requests with one answer
/// 422): said in the document as a pattern on every string schema that has no pattern or
/// format of its own, so clients and contract tests know it.
fn without_control_characters(doc: OpenApi) -> OpenApi {
    fn walk(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                let plain_string = map.get("type").is_some_and(|t| {
                    t == "string" || t.as_array().is_some_and(|a| a.iter().any(|t| t == "string"))
                }) && !map.contains_key("pattern")
                    && !map.contains_key("format")
                    && !map.contains_key("enum");
                if plain_string {
                    map.insert("pattern".into(), serde_json::Value::from(NO_CONTROL_CHARACTERS));
                }
                map.values_mut().for_each(walk);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let Ok(mut value) = serde_json::to_value(&doc) else { return doc };
    walk(&mut value);
    serde_json::from_value(value).unwrap_or(doc)
}

/// A JSON Schema pattern: no C0 or C1 control character, no DEL.
pub const NO_CONTROL_CHARACTERS: &str = r"^[^\u0000-\u001F\u007F-\u009F]*$";
