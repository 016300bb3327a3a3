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
             service on PMS_<NAME>_BIND), after migrating every schema (unless PMS_MIGRATE=off). Creates a laptop admin on an empty \
             database unless PMS_ADMIN_EMAIL/PMS_ADMIN_PASSWORD say otherwise.",
        ))
        .subcommand(
            Command::new("migrate")
                .about(
                    "Apply the database migrations of every service, or of SERVICE only, then exit (a deployment's \
                     migration step; safe when several run at once)",
                )
                .arg(Arg::new("service").help("one service's schema only")),
        )
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
        .subcommand(
            Command::new("seed")
                .about(
                    "Register COUNT realistic sample patients in bulk (same validation, search keys, versions, \
                     audit rows and events as the API; no HTTP), with a progress bar",
                )
                .arg(
                    Arg::new("no-events")
                        .long("no-events")
                        .action(clap::ArgAction::SetTrue)
                        .help("write no events (benchmark data: no billing accounts, not in analytics)"),
                )
                .arg(Arg::new("count").required(true).value_parser(clap::value_parser!(u64)).help("how many"))
                .arg(
                    Arg::new("names")
                        .long("names")
                        .default_value("wide")
                        .value_parser(["wide", "common"])
                        .help("family names spread over ~250 (wide), or 16 with a fifth García or Nguyễn (common)"),
                )
                .arg(
                    Arg::new("rng-seed")
                        .long("rng-seed")
                        .default_value("1")
                        .value_parser(clap::value_parser!(u64))
                        .help("the same seed gives the same patients"),
                ),
        )
        .subcommand(
            Command::new("audit-archive")
                .about(
                    "Archive a month of the patient audit trail that has ended to S3 (PMS_AUDIT_ARCHIVE_BUCKET), \
                     with its row count and SHA-256, then remove it from the database",
                )
                .arg(Arg::new("month").required(true).help("YYYY-MM")),
        )
        .subcommand(
            Command::new("audit-restore")
                .about("Bring an archived month of the patient audit trail back, after checking it against its manifest")
                .arg(Arg::new("month").required(true).help("YYYY-MM")),
        )
        .subcommand(Command::new("openapi").about("Print the OpenAPI document of the public API"))
        .subcommand(Command::new("services").about(
            "Print the list of services as JSON (name, listen variable and port, gRPC listener, schema): what \
             the deployment files must cover",
        ))
        .subcommand(
            Command::new("probe")
                .about(
                    "Exit 0 if every service whose listen variable (PMS_BIND, PMS_<NAME>_BIND) is set answers \
                     /health/live on it, else 1: the container health check (the image has no shell or curl). \
                     Liveness, not readiness: a platform replaces containers that fail it, and a database or \
                     service that is down must not get every container replaced",
                )
                .arg(
                    Arg::new("ready")
                        .long("ready")
                        .action(clap::ArgAction::SetTrue)
                        .help("ask /health/ready instead (its database reachable; the gateway's: every service)"),
                ),
        );
    for service in pms::SERVICES {
        let about = format!(
            "Run the {name} service alone on {bind} (default 127.0.0.1:{port}), after migrating its own schema \
             only (unless PMS_MIGRATE=off); other services are reached at PMS_<NAME>_URL",
            name = service.name,
            bind = service.bind_var,
            port = service.default_port,
        );
        cli = cli.subcommand(Command::new(service.name).about(about));
    }
    cli
}

fn main() -> anyhow::Result<()> {
    return_large_allocations();
    let matches = cli().get_matches();
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async {
        kit::telemetry::init();
        run(&matches).await
    })
}

/// Has glibc give every allocation of 128 KiB or more its own mapping, returned to the system
/// when freed. By default glibc raises that threshold to the size of the largest such block
/// freed so far, so after the first Argon2 run (19 MiB: auth's warm-up, then the laptop admin
/// or a login) a freed run stayed in the heap for good: `pms up` idled at 63 MB RSS instead of
/// 45 MB (docs/benchmarks.md). Called before any other thread exists.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn return_large_allocations() {
    // SAFETY: mallopt takes no pointers and only changes a tuning parameter of glibc's
    // allocator (under the allocator's own lock); nothing else runs yet.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_large_allocations() {}

async fn run(matches: &ArgMatches) -> anyhow::Result<()> {
    let (command, arguments) = matches.subcommand().context("a command is required")?;
    match command {
        "up" => {
            if pms::migrate_at_start()? {
                pms::migrate(pms::SERVICES).await.map_err(anyhow::Error::from_boxed)?;
            }
            let shutdown = Shutdown::from_env()?.on_signal();
            pms::run(pms::SERVICES, shutdown, Profile::Laptop).await.map_err(anyhow::Error::from_boxed)
        }
        "migrate" => {
            let services = match arguments.get_one::<String>("service") {
                None => pms::SERVICES.to_vec(),
                Some(name) => vec![pms::find(name).with_context(|| format!("no service is called {name}"))?],
            };
            pms::migrate(&services).await.map_err(anyhow::Error::from_boxed)
        }
        "rotate-signing-key" => {
            pms::migrate(&[&auth::SERVICE]).await.map_err(anyhow::Error::from_boxed)?;
            let pool = auth::SCHEMA
                .connect(&DbConfig::from_env(auth::SERVICE.name)?)
                .await
                .context("cannot connect to the auth database")?;
            let kid = auth::KeyStore::rotate(&pool, auth::KeySealer::from_env()?.as_ref())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
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
            if !auth::KeyStore::revoke(&pool, kid, auth::KeySealer::from_env()?.as_ref())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                anyhow::bail!("no signing key {kid} that is not revoked already");
            }
            println!("revoked signing key {kid}; its tokens are refused within seconds");
            Ok(())
        }
        "seed" => seed(arguments).await,
        "audit-archive" | "audit-restore" => audit_archive(command, arguments).await,
        "services" => {
            println!("{}", serde_json::to_string_pretty(&pms::describe())?);
            Ok(())
        }
        "probe" => probe(arguments.get_flag("ready")).await,
        "openapi" => {
            println!("{}", pms::openapi().to_pretty_json()?);
            Ok(())
        }
        name => {
            let service = pms::find(name).with_context(|| format!("no service is called {name}"))?;
            if pms::migrate_at_start()? {
                pms::migrate(&[service]).await.map_err(anyhow::Error::from_boxed)?;
            }
            let shutdown = Shutdown::from_env()?.on_signal();
            pms::run(&[service], shutdown, Profile::Alone).await.map_err(anyhow::Error::from_boxed)
        }
    }
}

/// `pms probe [--ready]`: each service this environment configures must answer
/// `/health/live` (or `/health/ready`) with 2xx.
async fn probe(ready: bool) -> anyhow::Result<()> {
    let targets = pms::configured_listeners()?;
    if targets.is_empty() {
        anyhow::bail!("no PMS_BIND or PMS_<NAME>_BIND is set: there is no service here to probe");
    }
    for (name, address) in targets {
        let url = format!("http://{address}/health/{}", if ready { "ready" } else { "live" });
        kit::client::get_json::<serde_json::Value>(&url)
            .await
            .with_context(|| format!("{name} does not answer {url}"))?;
    }
    Ok(())
}

/// `pms seed COUNT`: bulk registration of sample patients, with a progress bar on stderr.
async fn seed(arguments: &ArgMatches) -> anyhow::Result<()> {
    let count = *arguments.get_one::<u64>("count").context("a count is required")?;
    let names = arguments.get_one::<String>("names").context("names")?.parse().map_err(anyhow::Error::msg)?;
    let rng_seed = *arguments.get_one::<u64>("rng-seed").context("rng-seed")?;
    pms::migrate(&[&patients::SERVICE]).await.map_err(anyhow::Error::from_boxed)?;
    let pool = patients::SCHEMA
        .connect(&DbConfig::from_env(patients::SERVICE.name)?)
        .await
        .context("cannot connect to the patients database")?;
    let bar = indicatif::ProgressBar::new(count).with_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} patients, {per_sec}, {eta} left")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let events = if arguments.get_flag("no-events") {
        None
    } else {
        Some(patients::events::PatientEvents::from_env()?)
    };
    let seeded = patients::seed::seed(&pool, events, count, names, rng_seed, |done| {
        bar.set_position(done.registered + done.skipped)
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "registered {} patients in {seconds:.1} s ({:.0}/s){}",
        seeded.registered,
        seeded.registered as f64 / seconds,
        if seeded.skipped > 0 {
            format!("; {} skipped (email already taken)", seeded.skipped)
        } else {
            String::new()
        }
    );
    Ok(())
}

/// `pms audit-archive MONTH` and `pms audit-restore MONTH`, as the schema's owner.
async fn audit_archive(command: &str, arguments: &ArgMatches) -> anyhow::Result<()> {
    let month = arguments.get_one::<String>("month").context("a month is required")?;
    let month = patients::archive::Month::parse(month)?;
    let bucket =
        kit::config::var("PMS_AUDIT_ARCHIVE_BUCKET").context("PMS_AUDIT_ARCHIVE_BUCKET is not set")?;
    let prefix =
        kit::config::var("PMS_AUDIT_ARCHIVE_PREFIX").unwrap_or_else(|| "patients/audit-events/".to_owned());
    // Region, endpoint (AWS_ENDPOINT_URL, e.g. LocalStack) and credentials: the AWS SDK's own
    // settings; path-style addressing for emulators without bucket subdomains.
    let aws = aws_config::load_from_env().await;
    let path_style = kit::config::var("PMS_S3_FORCE_PATH_STYLE").is_some_and(|v| v == "true");
    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&aws).force_path_style(path_style).build(),
    );
    let store = patients::archive::ArchiveStore { client, bucket, prefix };
    let owner = patients::SCHEMA
        .connect_and_migrate(&DbConfig::from_env(patients::SERVICE.name)?)
        .await
        .context("cannot connect to the patients database as its owner")?;
    if command == "audit-archive" {
        let manifest = patients::archive::archive(&owner, &store, month).await?;
        println!(
            "archived {month}: {} rows, {} bytes, sha256 {} -> s3://{}/{}{month}.csv; removed from the database",
            manifest.rows, manifest.bytes, manifest.sha256, store.bucket, store.prefix
        );
    } else {
        let manifest = patients::archive::restore(&owner, &store, month).await?;
        println!("restored {month}: {} rows, sha256 {} checked", manifest.rows, manifest.sha256);
    }
    Ok(())
}
