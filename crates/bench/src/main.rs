//! `pms-bench`: measures the pms HTTP API at fixed concurrency, as a client sees it.
//!
//! Against one base URL (the gateway, or a service's own port), for a fixed time each:
//! 1. read: `GET /api/patients/{id}` of random patients from `--ids-file`;
//! 2. exact family-name search: `GET /api/patients?name=<family>&limit=20`;
//! 3. mixed name search: a quarter each exact family name, three-letter prefix, one typo, and
//!    "given family" (see `patients::sample::name_query`);
//! 4. with `--create`, registration: `POST /api/patients` of sample patients.
//!
//! Family names follow `--names` (`wide` or `common`), as `pms seed` spread them. It logs in
//! first and sends the access token with every request. Prints Markdown table rows (no
//! header): target, operation, requests, requests/s, p50, p99, errors. Run it through
//! `scripts/bench.sh`, which seeds the database, starts the server and measures the
//! PostgreSQL ceiling with pgbench.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Parser;
use patients::sample::{self, Names};
use serde_json::{Value, json};

#[derive(Parser, Clone)]
#[command(about = "Measure the pms HTTP API at fixed concurrency")]
struct Args {
    /// Base URL the requests go to (the gateway, or the patients service directly).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base_url: String,
    /// Where to log in (the gateway), if not the base URL.
    #[arg(long)]
    login_url: Option<String>,
    /// What the rows call the target (e.g. gateway, service).
    #[arg(long, default_value = "gateway")]
    label: String,
    /// Patient ids to read, one per line.
    #[arg(long)]
    ids_file: std::path::PathBuf,
    /// How the family names of the stored patients are spread: wide or common.
    #[arg(long, default_value = "wide")]
    names: String,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Seconds each measurement runs.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Which measurements, comma-separated: read, exact, mixed, create.
    #[arg(long, default_value = "read,exact,mixed")]
    only: String,
    /// Log in as this user (needs the receptionist or admin role).
    #[arg(long, default_value = "admin@pms.local")]
    email: String,
    /// Its password.
    #[arg(long, env = "PMS_BENCH_PASSWORD", default_value = "pms-admin-password")]
    password: String,
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

    fn row(&self, label: &str) -> String {
        format!(
            "| {label} | {} | {} | {:.0} | {:.2} | {:.2} | {} |",
            self.name,
            self.requests,
            self.requests as f64 / self.elapsed.as_secs_f64(),
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3,
            self.errors
        )
    }
}

/// One request a worker sends; `expect` is the status that counts as success.
struct Request {
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
    expect: u16,
}

/// Sends requests made by `make` from `concurrency` workers for `seconds`.
async fn timed<F>(
    name: &'static str,
    args: &Args,
    client: &reqwest::Client,
    make: F,
) -> anyhow::Result<Report>
where
    F: Fn(&mut fastrand::Rng) -> Request + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency {
        let (client, make) = (client.clone(), make.clone());
        workers.push(tokio::spawn(async move {
            // Random seeds: a second create run must not repeat the first one's (unique) emails.
            let mut rng = fastrand::Rng::new();
            let mut outcome = Outcome::default();
            while Instant::now() < deadline {
                let request = make(&mut rng);
                let mut builder = client.request(request.method, &request.url);
                if let Some(body) = &request.body {
                    builder = builder.json(body);
                }
                let sent = Instant::now();
                match builder.send().await {
                    Ok(r) if r.status().as_u16() == request.expect => {
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

fn search(base: &str, name: &str) -> Request {
    let mut url = reqwest::Url::parse(&format!("{base}/api/patients")).expect("base url");
    url.query_pairs_mut().append_pair("name", name).append_pair("limit", "20");
    Request { method: reqwest::Method::GET, url: url.to_string(), body: None, expect: 200 }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let names: Names = args.names.parse().map_err(anyhow::Error::msg)?;
    let login_url = args.login_url.clone().unwrap_or_else(|| args.base_url.clone());
    let anonymous = reqwest::Client::new();
    anonymous
        .get(format!("{}/health/ready", args.base_url))
        .send()
        .await
        .context("is pms up?")?
        .error_for_status()?;
    let login: Value = anonymous
        .post(format!("{login_url}/auth/login"))
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
    let ids: Vec<String> = std::fs::read_to_string(&args.ids_file)
        .with_context(|| format!("cannot read {}", args.ids_file.display()))?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if ids.is_empty() {
        bail!("no patient ids in {}", args.ids_file.display());
    }
    let ids = Arc::new(ids);

    let mut reports = Vec::new();
    for measurement in args.only.split(',') {
        let base = args.base_url.clone();
        eprintln!("{}: {measurement} for {} s ...", args.label, args.seconds);
        let report = match measurement {
            "read" => {
                let ids = ids.clone();
                timed("read by id", &args, &client, move |rng| Request {
                    method: reqwest::Method::GET,
                    url: format!("{base}/api/patients/{}", ids[rng.usize(..ids.len())]),
                    body: None,
                    expect: 200,
                })
                .await?
            }
            "exact" => {
                timed("exact family-name search, 20 rows", &args, &client, move |rng| {
                    search(&base, names.family(rng))
                })
                .await?
            }
            "mixed" => {
                timed("mixed name search, 20 rows", &args, &client, move |rng| {
                    search(&base, &sample::name_query(names, rng))
                })
                .await?
            }
            "create" => {
                timed("create", &args, &client, move |rng| Request {
                    method: reqwest::Method::POST,
                    url: format!("{base}/api/patients"),
                    body: Some(
                        serde_json::to_value(PatientBody::from(sample::patient(names, rng))).expect("json"),
                    ),
                    expect: 201,
                })
                .await?
            }
            other => bail!("{other}: the measurements are read, exact, mixed and create"),
        };
        println!("{}", report.row(&format!("{} ({})", args.label, args.names)));
        reports.push(report);
    }
    if reports.iter().any(|r| r.errors > 0) {
        bail!("some requests failed (see above)");
    }
    Ok(())
}

/// A sample patient as the API's JSON body.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct PatientBody {
    given_name: String,
    family_name: String,
    birth_date: String,
    sex: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<String>,
}

impl From<patients::domain::PatientInput> for PatientBody {
    fn from(input: patients::domain::PatientInput) -> Self {
        Self {
            given_name: input.given_name,
            family_name: input.family_name,
            birth_date: input.birth_date,
            sex: input.sex,
            email: input.email,
            phone: input.phone,
        }
    }
}
