//! `pms`: every service of the patient management system in one binary.

use std::net::SocketAddr;

use anyhow::Context;
use clap::{Parser, Subcommand};
use kit::{config::HttpConfig, db::DbConfig};

#[derive(Parser)]
#[command(name = "pms", version, about = "Patient management system")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every service in this process, with the public API on PMS_BIND (127.0.0.1:8080).
    Up,
    /// Run the patients service alone on PMS_PATIENTS_BIND (127.0.0.1:8081).
    Patients,
    /// Apply every service's database migrations, then exit.
    Migrate,
    /// Print the OpenAPI document of the public API.
    Openapi,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    kit::telemetry::init();
    match cli.command {
        Command::Up => up().await,
        Command::Patients => patients_alone().await,
        Command::Migrate => migrate().await.map(drop),
        Command::Openapi => {
            println!("{}", pms::openapi().to_pretty_json()?);
            Ok(())
        }
    }
}

async fn migrate() -> anyhow::Result<sqlx::PgPool> {
    let db = DbConfig::from_env()?;
    let pool = patients::connect(&db).await.context("cannot connect to PostgreSQL (PMS_DATABASE_URL)")?;
    patients::migrate(&pool).await.context("patients migrations failed")?;
    tracing::info!("migrations applied");
    Ok(pool)
}

async fn up() -> anyhow::Result<()> {
    let pool = migrate().await?;
    let http = HttpConfig::from_env("PMS_BIND", SocketAddr::from(([127, 0, 0, 1], 8080)))?;
    let listener = kit::http::bind(http.bind).await?;
    tracing::info!(api = %format!("http://{}/docs", http.bind), "pms is up");
    kit::http::serve(listener, pms::public_app(pool, &http), kit::shutdown::signal()).await?;
    Ok(())
}

async fn patients_alone() -> anyhow::Result<()> {
    let pool = migrate().await?;
    let http = HttpConfig::from_env("PMS_PATIENTS_BIND", SocketAddr::from(([127, 0, 0, 1], 8081)))?;
    let listener = kit::http::bind(http.bind).await?;
    kit::http::serve(listener, patients::app(pool, &http), kit::shutdown::signal()).await?;
    Ok(())
}
