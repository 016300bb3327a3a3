//! `pms`: every service of the patient management system in one binary.

use anyhow::Context;
use clap::{Arg, ArgMatches, Command};
use kit::{db::DbConfig, service::Profile, shutdown::Shutdown};

fn cli() -> Command {
    let mut cli = Command::new("pms")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Patient management system")
        .subcommand_required(true)
        .subcommand(Command::new("up").about(
            "Run every service in this process (gateway on PMS_BIND, default 127.0.0.1:8080; each other \
             service on PMS_<NAME>_BIND), after migrating every schema. Creates a laptop admin on an empty \
             database unless PMS_ADMIN_EMAIL/PMS_ADMIN_PASSWORD say otherwise.",
        ))
        .subcommand(Command::new("migrate").about("Apply every service's database migrations, then exit"))
        .subcommand(Command::new("rotate-signing-key").about(
            "Retire the active token signing key and create a new one (no downtime: see docs/security.md)",
        ))
        .subcommand(
            Command::new("revoke-signing-key")
                .about(
                    "Revoke a token signing key at once (one that may be compromised): its tokens are refused \
                     within seconds everywhere; if it was signing, a new key takes over",
                )
                .arg(Arg::new("kid").required(true).help("the key id (the `kid` of its tokens and its JWK)")),
        )
        .subcommand(Command::new("openapi").about("Print the OpenAPI document of the public API"));
    for service in pms::SERVICES {
        let about = format!(
            "Run the {name} service alone on {bind} (default 127.0.0.1:{port}), after migrating its own schema \
             only; other services are reached at PMS_<NAME>_URL",
            name = service.name,
            bind = service.bind_var,
            port = service.default_port,
        );
        cli = cli.subcommand(Command::new(service.name).about(about));
    }
    cli
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let matches = cli().get_matches();
    kit::telemetry::init();
    run(&matches).await
}

async fn run(matches: &ArgMatches) -> anyhow::Result<()> {
    let (command, arguments) = matches.subcommand().context("a command is required")?;
    match command {
        "up" => {
            pms::migrate(pms::SERVICES).await.map_err(anyhow::Error::from_boxed)?;
            let shutdown = Shutdown::from_env()?.on_signal();
            pms::run(pms::SERVICES, shutdown, Profile::Laptop).await.map_err(anyhow::Error::from_boxed)
        }
        "migrate" => pms::migrate(pms::SERVICES).await.map_err(anyhow::Error::from_boxed),
        "rotate-signing-key" => {
            pms::migrate(&[&auth::SERVICE]).await.map_err(anyhow::Error::from_boxed)?;
            let pool = auth::SCHEMA
                .connect(&DbConfig::from_env(auth::SERVICE.name)?)
                .await
                .context("cannot connect to the auth database")?;
            let kid = auth::KeyStore::rotate(&pool).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("new signing key {kid}; auth services pick it up within 5 s");
            Ok(())
        }
        "revoke-signing-key" => {
            let kid = arguments.get_one::<String>("kid").context("a key id is required")?;
            pms::migrate(&[&auth::SERVICE]).await.map_err(anyhow::Error::from_boxed)?;
            let pool = auth::SCHEMA
                .connect(&DbConfig::from_env(auth::SERVICE.name)?)
                .await
                .context("cannot connect to the auth database")?;
            if !auth::KeyStore::revoke(&pool, kid).await.map_err(|e| anyhow::anyhow!("{e}"))? {
                anyhow::bail!("no signing key {kid} that is not revoked already");
            }
            println!("revoked signing key {kid}; its tokens are refused within seconds");
            Ok(())
        }
        "openapi" => {
            println!("{}", pms::openapi().to_pretty_json()?);
            Ok(())
        }
        name => {
            let service = pms::find(name).with_context(|| format!("no service is called {name}"))?;
            pms::migrate(&[service]).await.map_err(anyhow::Error::from_boxed)?;
            let shutdown = Shutdown::from_env()?.on_signal();
            pms::run(&[service], shutdown, Profile::Alone).await.map_err(anyhow::Error::from_boxed)
        }
    }
}
