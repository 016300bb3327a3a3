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
    doc
}
