//! `pms`: every service of the patient management system in one binary.

use std::net::SocketAddr;

use anyhow::Context;
use clap::{Parser, Subcommand};
use kit::{
    auth::Verifier,
    config::{self, HttpConfig},
    db::DbConfig,
};
use tokio::sync::watch;

#[derive(Parser)]
#[command(name = "pms", version, about = "Patient management system")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run gateway (PMS_BIND, 127.0.0.1:8080), patients (PMS_PATIENTS_BIND, :8081) and auth
    /// (PMS_AUTH_BIND, :8082) in this process. Creates a default admin on an empty database
    /// unless PMS_ADMIN_EMAIL/PMS_ADMIN_PASSWORD say otherwise.
    Up,
    /// Run the gateway alone; services at PMS_AUTH_URL and PMS_PATIENTS_URL.
    Gateway,
    /// Run the auth service alone on PMS_AUTH_BIND (needs PMS_ADMIN_* on an empty database).
    Auth,
    /// Run the patients service alone on PMS_PATIENTS_BIND; keys from PMS_AUTH_URL.
    Patients,
    /// Apply every service's database migrations, then exit.
    Migrate,
    /// Retire the active token signing key and create a new one (no downtime: see docs/security.md).
    RotateSigningKey,
    /// Print the OpenAPI document of the public API.
    Openapi,
}

/// The laptop defaults of `pms up` (documented in docs/security.md); never used by `pms auth`.
const LAPTOP_ADMIN_EMAIL: &str = "admin@pms.local";
const LAPTOP_ADMIN_PASSWORD: &str = "pms-admin-password";

fn addr(var: &str, port: u16) -> anyhow::Result<SocketAddr> {
    Ok(config::parse_or(var, SocketAddr::from(([127, 0, 0, 1], port)))?)
}

fn url(var: &str, port: u16) -> String {
    config::var(var).unwrap_or_else(|| format!("http://127.0.0.1:{port}"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    kit::telemetry::init();
    match cli.command {
        Command::Up => up().await,
        Command::Gateway => gateway_alone().await,
        Command::Auth => auth_alone().await,
        Command::Patients => patients_alone().await,
        Command::Migrate => migrate().await.map(drop),
        Command::RotateSigningKey => {
            let (auth_pool, _) = migrate().await?;
            let kid = auth::KeyStore::rotate(&auth_pool).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("new signing key {kid}; auth services pick it up within 30 s");
            Ok(())
        }
        Command::Openapi => {
            println!("{}", pms::openapi().to_pretty_json()?);
            Ok(())
        }
    }
}

/// Connects to PMS_DATABASE_URL and migrates every service's schema.
async fn migrate() -> anyhow::Result<(sqlx::PgPool, sqlx::PgPool)> {
    let db = DbConfig::from_env()?;
    let auth_pool = auth::connect(&db).await.context("cannot connect to PostgreSQL (PMS_DATABASE_URL)")?;
    auth::migrate(&auth_pool).await.context("auth migrations failed")?;
    let patients_pool =
        patients::connect(&db).await.context("cannot connect to PostgreSQL (PMS_DATABASE_URL)")?;
    patients::migrate(&patients_pool).await.context("patients migrations failed")?;
    tracing::info!("migrations applied");
    Ok((auth_pool, patients_pool))
}

fn stop_on_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        kit::shutdown::signal().await;
        let _ = tx.send(true);
    });
    rx
}

async fn up() -> anyhow::Result<()> {
    let (auth_pool, patients_pool) = migrate().await?;
    let http = HttpConfig::from_env("PMS_BIND", SocketAddr::from(([127, 0, 0, 1], 8080)))?;
    let listeners = pms::Listeners {
        gateway: kit::http::bind(http.bind).await?,
        auth: kit::http::bind(addr("PMS_AUTH_BIND", 8082)?).await?,
        patients: kit::http::bind(addr("PMS_PATIENTS_BIND", 8081)?).await?,
    };
    let mut auth_config = auth::AuthConfig::from_env()?;
    if auth_config.admin.is_none() {
        tracing::warn!(
            email = LAPTOP_ADMIN_EMAIL,
            "PMS_ADMIN_EMAIL/PMS_ADMIN_PASSWORD unset: an empty database gets the laptop admin with the \
             documented default password (docs/security.md); never use `pms up` this way in production"
        );
        auth_config.admin = Some(auth::AdminBootstrap {
            email: LAPTOP_ADMIN_EMAIL.into(),
            password: LAPTOP_ADMIN_PASSWORD.into(),
        });
    }
    let gateway = gateway::GatewayConfig::from_env(
        &pms::Listeners::url(&listeners.auth),
        &pms::Listeners::url(&listeners.patients),
    )?;
    let config = pms::SystemConfig { auth_pool, patients_pool, auth: auth_config, gateway, http };
    let system = pms::start(config, listeners, stop_on_signal()).await?;
    tracing::info!(api = %system.gateway_url, docs = %format!("{}/docs", system.gateway_url), "pms is up");
    for server in system.servers {
        server.await??;
    }
    Ok(())
}

async fn gateway_alone() -> anyhow::Result<()> {
    let http = HttpConfig::from_env("PMS_BIND", SocketAddr::from(([127, 0, 0, 1], 8080)))?;
    let (auth_url, patients_url) = (url("PMS_AUTH_URL", 8082), url("PMS_PATIENTS_URL", 8081));
    let config = gateway::GatewayConfig::from_env(&auth_url, &patients_url)?;
    let verifier = Verifier::from_url(pms::jwks_url(&auth_url), kit::auth::TokenSettings::from_env());
    let upstreams = [("auth", auth_url), ("patients", patients_url)];
    let app = gateway::app(&config, verifier, &upstreams, pms::openapi(), &http);
    kit::http::serve(kit::http::bind(http.bind).await?, app, kit::shutdown::signal()).await?;
    Ok(())
}

async fn auth_alone() -> anyhow::Result<()> {
    let (auth_pool, _) = migrate().await?;
    let http = HttpConfig::from_env("PMS_AUTH_BIND", SocketAddr::from(([127, 0, 0, 1], 8082)))?;
    let state =
        auth::start(auth_pool, auth::AuthConfig::from_env()?).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    auth::spawn_upkeep(&state);
    kit::http::serve(kit::http::bind(http.bind).await?, auth::app(state, &http), kit::shutdown::signal())
        .await?;
    Ok(())
}

async fn patients_alone() -> anyhow::Result<()> {
    let (_, pool) = migrate().await?;
    let http = HttpConfig::from_env("PMS_PATIENTS_BIND", SocketAddr::from(([127, 0, 0, 1], 8081)))?;
    let verifier =
        Verifier::from_url(pms::jwks_url(&url("PMS_AUTH_URL", 8082)), kit::auth::TokenSettings::from_env());
    kit::http::serve(
        kit::http::bind(http.bind).await?,
        patients::app(pool, verifier, &http),
        kit::shutdown::signal(),
    )
    .await?;
    Ok(())
}
