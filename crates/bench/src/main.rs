//! `pms-bench`: measures the pms HTTP API at fixed concurrency.
//!
//! 1. create: registers N patients (default 100 000) with realistic multilingual names through
//!    `POST /api/patients`; this is both the load and the create measurement;
//! 2. read: `GET /api/patients/{id}` of random registered patients for a fixed duration;
//! 3. search: `GET /api/patients?name=...&limit=20` with exact, prefix and typo queries.
//!
//! It logs in first and sends the access token with every request, through the gateway, as a
//! front-desk client would. Prints a Markdown table (throughput, p50, p99, errors). Run it
//! through `scripts/bench.sh`, which also starts the server and measures the PostgreSQL
//! ceiling with pgbench.

mod names;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};

#[derive(Parser, Clone)]
#[command(about = "Measure the pms HTTP API at fixed concurrency")]
struct Args {
    /// Base URL of the API.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base_url: String,
    /// Patients to register (the create measurement).
    #[arg(long, default_value_t = 100_000)]
    patients: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Seconds each of the read and search measurements runs.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Log in as this user (needs the receptionist or admin role).
    #[arg(long, default_value = "admin@pms.local")]
    email: String,
    /// Its password.
    #[arg(long, env = "PMS_BENCH_PASSWORD", default_value = "pms-admin-password")]
    password: String,
    /// Write the registered ids here, one per line (for the pgbench ceiling).
    #[arg(long)]
    ids_file: Option<std::path::PathBuf>,
}

#[derive(Default)]
struct Outcome {
    latencies: Vec<Duration>,
    errors: usize,
    /// What went wrong the first time, for the report.
    first_error: Option<String>,
}

impl Outcome {
    async fn failed(&mut self, answer: Result<reqwest::Response, reqwest::Error>) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(match answer {
                Ok(response) => {
                    format!("{} {}", response.status(), response.text().await.unwrap_or_default())
                }
                Err(err) => err.to_string(),
            });
        }
    }
}

struct Report {
    name: &'static str,
    requests: usize,
    errors: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

impl Report {
    fn new(name: &'static str, outcomes: Vec<Outcome>, elapsed: Duration) -> Self {
        if let Some(error) = outcomes.iter().find_map(|o| o.first_error.as_ref()) {
            eprintln!("{name}: first failure: {error}");
        }
        let mut latencies: Vec<Duration> =
            outcomes.iter().flat_map(|o| o.latencies.iter().copied()).collect();
        latencies.sort();
        let at = |q: f64| {
            latencies
                .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        Self {
            name,
            requests: latencies.len(),
            errors: outcomes.iter().map(|o| o.errors).sum(),
            elapsed,
            p50: at(0.50),
            p99: at(0.99),
        }
    }

    fn row(&self) -> String {
        format!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {} |",
            self.name,
            self.requests,
            self.requests as f64 / self.elapsed.as_secs_f64(),
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3,
            self.errors
        )
    }
}

fn new_patient(rng: &mut fastrand::Rng) -> Value {
    let given = names::GIVEN[rng.usize(..names::GIVEN.len())];
    let family = names::FAMILY[rng.usize(..names::FAMILY.len())];
    let year = rng.i32(1925..2025);
    let birth_date = format!("{year}-{:02}-{:02}", rng.u8(1..13), rng.u8(1..29));
    let sex = ["female", "male", "other", "unknown"][rng.usize(..4)];
    json!({ "givenName": given, "familyName": family, "birthDate": birth_date, "sex": sex,
            "phone": format!("+49{}", rng.u64(1_000_000_000..9_999_999_999)) })
}

async fn create_all(client: &reqwest::Client, args: &Args) -> anyhow::Result<(Report, Vec<String>)> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..args.concurrency {
        let (client, next, url, total) =
            (client.clone(), next.clone(), format!("{}/api/patients", args.base_url), args.patients);
        workers.push(tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(worker as u64);
            let (mut outcome, mut ids) = (Outcome::default(), Vec::new());
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let body = new_patient(&mut rng);
                let sent = Instant::now();
                match client.post(&url).json(&body).send().await {
                    Ok(r) if r.status() == 201 => {
                        outcome.latencies.push(sent.elapsed());
                        if let Ok(v) = r.json::<Value>().await
                            && let Some(id) = v["id"].as_str()
                        {
                            ids.push(id.to_owned());
                        }
                    }
                    answer => outcome.failed(answer).await,
                }
            }
            (outcome, ids)
        }));
    }
    let mut outcomes = Vec::new();
    let mut ids = Vec::new();
    for w in workers {
        let (o, i) = w.await?;
        outcomes.push(o);
        ids.extend(i);
    }
    Ok((Report::new("create (POST /api/patients)", outcomes, started.elapsed()), ids))
}

async fn timed<F>(
    name: &'static str,
    args: &Args,
    client: &reqwest::Client,
    make_url: F,
) -> anyhow::Result<Report>
where
    F: Fn(&mut fastrand::Rng) -> String + Send + Sync + 'static,
{
    let make_url = Arc::new(make_url);
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..args.concurrency {
        let (client, make_url) = (client.clone(), make_url.clone());
        workers.push(tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(1_000 + worker as u64);
            let mut outcome = Outcome::default();
            while Instant::now() < deadline {
                let url = make_url(&mut rng);
                let sent = Instant::now();
                match client.get(&url).send().await {
                    Ok(r) if r.status() == 200 => {
                        let _ = r.bytes().await;
                        outcome.latencies.push(sent.elapsed());
                    }
                    answer => outcome.failed(answer).await,
                }
            }
            outcome
        }));
    }
    let mut outcomes = Vec::new();
    for w in workers {
        outcomes.push(w.await?);
    }
    Ok(Report::new(name, outcomes, started.elapsed()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let anonymous = reqwest::Client::new();
    anonymous
        .get(format!("{}/health/ready", args.base_url))
        .send()
        .await
        .context("is pms up?")?
        .error_for_status()?;
    let login: Value = anonymous
        .post(format!("{}/auth/login", args.base_url))
        .json(&json!({ "email": args.email, "password": args.password }))
        .send()
        .await?
        .error_for_status()
        .context("cannot log in")?
        .json()
        .await?;
    let token = login["accessToken"].as_str().context("no access token")?;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse()?);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .default_headers(headers)
        .build()?;

    eprintln!("registering {} patients at concurrency {} ...", args.patients, args.concurrency);
    let (create, ids) = create_all(&client, &args).await?;
    if ids.is_empty() {
        bail!("no patient could be registered");
    }
    if let Some(path) = &args.ids_file {
        std::fs::write(path, ids.join("\n"))?;
    }
    let ids = Arc::new(ids);

    eprintln!("reading by id for {} s ...", args.seconds);
    let base = args.base_url.clone();
    let read_ids = ids.clone();
    let read = timed("read (GET /api/patients/{id})", &args, &client, move |rng| {
        format!("{base}/api/patients/{}", read_ids[rng.usize(..read_ids.len())])
    })
    .await?;

    eprintln!("searching by name for {} s ...", args.seconds);
    let base = args.base_url.clone();
    let search = timed("name search (GET /api/patients?name=, 20 rows)", &args, &client, move |rng| {
        let family = names::FAMILY[rng.usize(..names::FAMILY.len())];
        let query = names::query_for(family, rng);
        let mut url = reqwest::Url::parse(&format!("{base}/api/patients")).expect("base url");
        url.query_pairs_mut().append_pair("name", &query).append_pair("limit", "20");
        url.to_string()
    })
    .await?;

    println!("| operation | requests | requests/s | p50 ms | p99 ms | errors |");
    println!("|---|---|---|---|---|---|");
    for report in [create, read, search] {
        println!("{}", report.row());
    }
    Ok(())
}
