//! What makes a crate a pms service, so that one list can start, migrate and route them all.
//!
//! Each service crate exports one [`Service`] value: its name (which is also its schema's name
//! and the `PMS_<NAME>_*` prefix of its settings), its default port, its schema, the routes
//! the gateway forwards to it with who may call them, its OpenAPI document, and how it is
//! launched. `crates/pms` keeps the one list of these; `pms up`, `pms migrate`, `pms <name>`
//! and the gateway's route table all read it.

use std::{future::Future, net::SocketAddr, pin::Pin, sync::Arc};

use tokio::net::TcpListener;

use crate::{
    auth::RouteSpec,
    config::{self, ConfigError},
    db::Schema,
    shutdown::Shutdown,
};

/// Any error a service's launch ends with (the binary reports it and exits non-zero).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A service's launch: runs until its shutdown is triggered and everything has stopped.
pub type Running = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;

/// One pms service, as the binary and the gateway see it.
pub struct Service {
    /// `auth`, `patients`, ...: the schema name and the `PMS_<NAME>_` settings prefix.
    pub name: &'static str,
    /// The variable naming its listen address (`PMS_<NAME>_BIND`; the gateway's is `PMS_BIND`).
    pub bind_var: &'static str,
    /// Its port on a laptop, on 127.0.0.1.
    pub default_port: u16,
    /// Its gRPC listener, if it serves gRPC to the other services.
    pub grpc: Option<GrpcListener>,
    /// The schema it owns, if it keeps data.
    pub schema: Option<&'static Schema>,
    /// The public path prefixes the gateway forwards to it, with who may call them.
    pub routes: &'static [RouteSpec],
    /// Its part of the public OpenAPI document.
    pub openapi: fn() -> utoipa::openapi::OpenApi,
    /// Reads its configuration from the environment and runs it on the listener.
    pub launch: fn(Launch) -> Running,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").field("name", &self.name).finish_non_exhaustive()
    }
}

/// A service's gRPC listener: the variable naming its address and its laptop port.
#[derive(Debug, Clone, Copy)]
pub struct GrpcListener {
    /// `PMS_<NAME>_GRPC_BIND`.
    pub bind_var: &'static str,
    /// Its port on a laptop, on 127.0.0.1.
    pub default_port: u16,
}

impl GrpcListener {
    /// Where it listens: its bind variable, else 127.0.0.1 and its default port.
    pub fn bind_address(&self) -> Result<SocketAddr, ConfigError> {
        listen_address(self.bind_var, self.default_port)
    }
}

/// The address `bind_var` names, else 127.0.0.1 and `default_port` (a laptop).
fn listen_address(bind_var: &str, default_port: u16) -> Result<SocketAddr, ConfigError> {
    config::parse_or(bind_var, SocketAddr::from(([127, 0, 0, 1], default_port)))
}

impl Service {
    /// Where it listens: its bind variable, else 127.0.0.1 and its default port.
    pub fn bind_address(&self) -> Result<SocketAddr, ConfigError> {
        listen_address(self.bind_var, self.default_port)
    }

    /// Where the others reach it: `PMS_<NAME>_URL`, else its laptop address.
    pub fn url_from_env(&self) -> String {
        config::var(&format!("PMS_{}_URL", self.name.to_ascii_uppercase()))
            .unwrap_or_else(|| format!("http://127.0.0.1:{}", self.default_port))
    }
}

/// How the process runs: `pms up` on a laptop (all services in one process, with laptop
/// conveniences such as a first admin), or one service per process (containers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Laptop,
    Alone,
}

/// A service and the base URL it is reached at.
#[derive(Debug, Clone)]
pub struct Peer {
    pub service: &'static Service,
    pub url: String,
}

/// Every service of the system and where it is reached: how services find each other.
#[derive(Debug, Clone, Default)]
pub struct Peers(Arc<Vec<Peer>>);

impl Peers {
    pub fn new(peers: Vec<Peer>) -> Self {
        Self(Arc::new(peers))
    }

    /// Each service at its `PMS_<NAME>_URL` (or laptop address): for one service per process.
    pub fn from_env(services: &[&'static Service]) -> Self {
        Self::new(services.iter().map(|&service| Peer { service, url: service.url_from_env() }).collect())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Peer> {
        self.0.iter()
    }

    /// The base URL of the service called `name`, if it is in the system.
    pub fn url(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|p| p.service.name == name).map(|p| p.url.as_str())
    }

    /// The auth service's URL (token keys come from there), or its laptop default.
    pub fn auth_url(&self) -> String {
        self.url("auth").map(str::to_owned).unwrap_or_else(|| "http://127.0.0.1:8082".to_owned())
    }
}

/// What a service is launched with.
pub struct Launch {
    /// Already bound (by the binary from [`Service::bind_address`], or port 0 in tests).
    pub listener: TcpListener,
    pub peers: Peers,
    pub shutdown: Shutdown,
    pub profile: Profile,
    /// The installation's service secret (`PMS_SERVICE_SECRET`; under `pms up` a random one
    /// when unset): what services present to auth for service tokens.
    pub service_secret: Option<String>,
}
