//! What the `pms` binary runs: the one list of services, and how they are started together
//! (`pms up`: every service in one process, each on its own port, for a laptop) or alone (one
//! service per process, for containers), and migrated.
//!
//! Adding a service: write its crate with the shape every service has (see
//! docs/architecture.md), add one line to [`SERVICES`], and add the crate to the workspace
//! and to this crate's dependencies. `pms up`, `pms migrate`, `pms <name>`, the gateway's
//! route table and the OpenAPI document all follow from the list.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use kit::{
    db::DbConfig,
    service::{BoxError, Launch, Peer, Peers, Profile, Service},
    shutdown::Shutdown,
};
use tokio::task::JoinSet;

/// Every service of pms. The gateway comes first: it is the one public entry.
pub const SERVICES: &[&Service] = &[
    &gateway::SERVICE,
    &auth::SERVICE,
    &patients::SERVICE,
    &billing::SERVICE,
    &analytics::SERVICE,
    &appointments::SERVICE,
    &notifications::SERVICE,
];

/// The service called `name`.
pub fn find(name: &str) -> Option<&'static Service> {
    SERVICES.iter().copied().find(|s| s.name == name)
}

/// The service list for deployment tooling (`pms services`): what compose, Kubernetes and
/// CloudFormation must each run, on which ports.
pub fn describe() -> serde_json::Value {
    let services: Vec<serde_json::Value> = SERVICES
        .iter()
        .map(|s| {
            serde_json::json!({
                "name": s.name,
                "bindVar": s.bind_var,
                "port": s.default_port,
                "grpcBindVar": s.grpc.map(|g| g.bind_var),
                "grpcPort": s.grpc.map(|g| g.default_port),
                "schema": s.schema.map(|schema| schema.name),
            })
        })
        .collect();
    serde_json::Value::Array(services)
}

/// The services whose listen variable is set in this environment, each with the address to
/// reach it from inside the same host or container (a wildcard address becomes loopback).
pub fn configured_listeners() -> Result<Vec<(&'static str, SocketAddr)>, kit::config::ConfigError> {
    let mut listeners = Vec::new();
    for service in SERVICES {
        if kit::config::var(service.bind_var).is_none() {
            continue;
        }
        let mut address = service.bind_address()?;
        if address.ip().is_unspecified() {
            address.set_ip(if address.is_ipv4() {
                Ipv4Addr::LOCALHOST.into()
            } else {
                Ipv6Addr::LOCALHOST.into()
            });
        }
        listeners.push((service.name, address));
    }
    Ok(listeners)
}

/// The OpenAPI document of the whole public API, as the gateway serves it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    gateway::openapi::document(&Peers::from_env(SERVICES))
}

/// Applies the migrations of each of `services` that owns a schema, and only those, each on
/// its own database (`PMS_<NAME>_DATABASE_URL`, else `PMS_DATABASE_URL`).
pub async fn migrate(services: &[&Service]) -> Result<(), BoxError> {
    for service in services {
        if let Some(schema) = service.schema {
            let db = DbConfig::from_env(service.name)?;
            let pool = schema
                .connect_and_migrate(&db)
                .await
                .map_err(|e| format!("migrating the {} schema failed: {e}", schema.name))?;
            pool.close().await;
            tracing::info!(schema = schema.name, "migrations applied");
        }
    }
    Ok(())
}

/// Whether `pms up` and `pms <service>` migrate before they serve (`PMS_MIGRATE`, `on` by
/// default). `off` when a deployment migrates in a step of its own (`pms migrate`, with the
/// schema owner's credentials) and runs the services with credentials that own nothing.
pub fn migrate_at_start() -> Result<bool, kit::config::ConfigError> {
    kit::config::on_off("PMS_MIGRATE", true)
}

/// Runs `services` in this process until `shutdown` is triggered and all have stopped. Each
/// listens on its own address; the others of [`SERVICES`] are reached at their
/// `PMS_<NAME>_URL`. If one fails, the others are stopped too.
pub async fn run(
    services: &[&'static Service],
    shutdown: Shutdown,
    profile: Profile,
) -> Result<(), BoxError> {
    let mut bound = Vec::new();
    for &service in services {
        let listener = kit::http::bind(service.bind_address()?).await?;
        bound.push((service, listener));
    }
    let peers = Peers::new(
        SERVICES
            .iter()
            .map(|&service| {
                let local = bound.iter().find(|(s, _)| s.name == service.name);
                let url = match local.and_then(|(_, l)| l.local_addr().ok()) {
                    Some(addr) => format!("http://{addr}"),
                    None => service.url_from_env(),
                };
                Peer { service, url }
            })
            .collect(),
    );
    if let Some(url) = peers.url(gateway::SERVICE.name).filter(|_| profile == Profile::Laptop) {
        tracing::info!(api = %url, docs = %format!("{url}/docs"), "pms is up");
    }
    // Services that act on their own (the outbox relay calling billing) get tokens from auth
    // with the installation's secret; one process on a laptop can make its own.
    let service_secret =
        kit::config::var("PMS_SERVICE_SECRET").or_else(|| (profile == Profile::Laptop).then(random_secret));
    let mut running = JoinSet::new();
    for (service, listener) in bound {
        let launch = Launch {
            listener,
            peers: peers.clone(),
            shutdown: shutdown.clone(),
            profile,
            service_secret: service_secret.clone(),
        };
        let name = service.name;
        running.spawn(async move { (service.launch)(launch).await.map_err(|e| format!("{name}: {e}")) });
    }
    let mut failure = None;
    while let Some(ended) = running.join_next().await {
        let outcome = ended.map_err(|e| e.to_string()).and_then(|r| r);
        if let Err(err) = outcome {
            tracing::error!(error = %err, "a service stopped with an error; stopping the others");
            shutdown.trigger();
            failure.get_or_insert(err);
        }
    }
    match failure {
        Some(err) => Err(err.into()),
        None => Ok(()),
    }
}

/// 244 random bits from the operating system (UUIDv4 draws on it), as text.
fn random_secret() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}
