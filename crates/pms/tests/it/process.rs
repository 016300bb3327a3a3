//! The `pms` binary itself: `pms up` starts every service of the list, `pms <service>` runs
//! one and migrates only its schema, SIGTERM stops the process cleanly with exit status 0, and
//! `pms seed` loads sample patients in bulk.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use kit::testing::TestDatabase;
use reqwest::StatusCode;
use serde_json::Value;

/// Starts `pms <command>` with `env` (every service on a free port, JSON logs) and waits for
/// the log line whose message is `message`; returns the process and that line.
fn start(command: &str, env: &[(&str, String)], message: &str) -> (Child, Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pms"))
        .arg(command)
        .env_remove("PMS_DATABASE_URL")
        .env("PMS_BIND", "127.0.0.1:0")
        .env("PMS_AUTH_BIND", "127.0.0.1:0")
        .env("PMS_PATIENTS_BIND", "127.0.0.1:0")
        .env("PMS_BILLING_BIND", "127.0.0.1:0")
        .env("PMS_BILLING_GRPC_BIND", "127.0.0.1:0")
        .env("PMS_ANALYTICS_BIND", "127.0.0.1:0")
        .env("PMS_PATIENTS_GRPC_BIND", "127.0.0.1:0")
        .env("PMS_GATEWAY_ADMIN_BIND", "127.0.0.1:0")
        // Never a laptop's broker: events wait in the outbox (these tests are about the process).
        .env("PMS_KAFKA_BROKERS", "127.0.0.1:9")
        .env("PMS_LOG", "info")
        .env_remove("PMS_LOG_FORMAT")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("pms starts");
    // Read the JSON log lines on a thread until the awaited one comes.
    let stdout = child.stdout.take().expect("stdout");
    let (found, line) = mpsc::channel();
    let message = message.to_owned();
    std::thread::spawn(move || {
        for text in BufReader::new(stdout).lines().map_while(Result::ok) {
            let Ok(entry) = serde_json::from_str::<Value>(&text) else { continue };
            if entry["message"] == message.as_str() {
                let _ = found.send(entry);
            }
        }
    });
    let line = line.recv_timeout(Duration::from_secs(60)).expect("the awaited log line");
    (child, line)
}

/// Sends SIGTERM and returns how the process ended.
async fn terminate(child: Child) -> std::process::ExitStatus {
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(killed.success());
    let mut child = child;
    tokio::task::spawn_blocking(move || child.wait()).await.expect("join").expect("wait")
}

#[tokio::test]
async fn pms_up_serves_every_service_and_exits_0_on_sigterm() {
    let db = TestDatabase::create().await;
    let cluster = laptop_cluster(&db.url());
    let (child, up) =
        start("up", &[("PMS_DATABASE_URL", db.url()), ("PMS_LAPTOP_CLUSTER", cluster)], "pms is up");
    let api = up["api"].as_str().expect("the gateway's address").to_owned();

    let client = reqwest::Client::new();
    let ready = client.get(format!("{api}/health/ready")).send().await.expect("ready");
    assert_eq!(ready.status(), StatusCode::OK, "gateway and every service behind it are ready");
    let login = client
        .post(format!("{api}/auth/login"))
        .json(&serde_json::json!({ "email": "admin@pms.local", "password": "pms-admin-password" }))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), StatusCode::OK, "the laptop admin of `pms up`");
    let token = login.json::<Value>().await.expect("json")["accessToken"].as_str().expect("token").to_owned();
    let patients =
        client.get(format!("{api}/api/patients")).bearer_auth(&token).send().await.expect("search");
    assert_eq!(patients.status(), StatusCode::OK);

    let status = terminate(child).await;
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
}

/// The socket directory of a private cluster's database URL (`...?host=DIR`), as up.sh sets
/// PMS_LAPTOP_CLUSTER; the URL itself when the tests use a TCP server.
fn laptop_cluster(url: &str) -> String {
    url.split("host=")
        .nth(1)
        .map(|rest| rest.split('&').next().unwrap_or(rest).to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn pms_up_refuses_the_laptop_admin_outside_the_laptop_setup() {
    let db = TestDatabase::create().await;
    for env in [
        // Not the private cluster of up.sh.
        vec![("PMS_DATABASE_URL", db.url())],
        // Listening beyond loopback.
        vec![
            ("PMS_DATABASE_URL", db.url()),
            ("PMS_LAPTOP_CLUSTER", laptop_cluster(&db.url())),
            ("PMS_BIND", "0.0.0.0:0".to_owned()),
        ],
        // A first admin whose password fails the policy.
        vec![
            ("PMS_DATABASE_URL", db.url()),
            ("PMS_ADMIN_EMAIL", "first@test.example".to_owned()),
            ("PMS_ADMIN_PASSWORD", "short".to_owned()),
        ],
    ] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_pms"));
        command
            .arg("up")
            .env_remove("PMS_DATABASE_URL")
            .env_remove("PMS_LAPTOP_CLUSTER")
            .env("PMS_BIND", "127.0.0.1:0")
            .env("PMS_AUTH_BIND", "127.0.0.1:0")
            .env("PMS_PATIENTS_BIND", "127.0.0.1:0")
            .env("PMS_BILLING_BIND", "127.0.0.1:0")
            .env("PMS_BILLING_GRPC_BIND", "127.0.0.1:0")
            .env("PMS_ANALYTICS_BIND", "127.0.0.1:0")
            .env("PMS_PATIENTS_GRPC_BIND", "127.0.0.1:0")
            .env("PMS_KAFKA_BROKERS", "127.0.0.1:9")
            .env("PMS_GATEWAY_ADMIN_BIND", "off")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let output = tokio::task::spawn_blocking(move || command.output()).await.expect("join").expect("run");
        assert!(!output.status.success(), "{env:?} must not start");
        let said = String::from_utf8_lossy(&output.stderr) + String::from_utf8_lossy(&output.stdout);
        assert!(said.contains("PMS_ADMIN_PASSWORD"), "{said}");
    }
}

#[tokio::test]
async fn a_service_alone_migrates_only_its_own_schema_in_its_own_database() {
    let db = TestDatabase::create().await;
    let (child, _) = start("patients", &[("PMS_PATIENTS_DATABASE_URL", db.url())], "listening");
    let pool = sqlx::PgPool::connect_with(db.options.clone()).await.expect("connect");
    let schemas: Vec<String> =
        sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname IN ('auth', 'patients')")
            .fetch_all(&pool)
            .await
            .expect("schemas");
    assert_eq!(schemas, ["patients"], "`pms patients` creates no auth tables");
    pool.close().await;
    assert!(terminate(child).await.success());
}

#[tokio::test]
async fn pms_seed_registers_sample_patients_in_bulk_and_says_how_many() {
    let db = TestDatabase::create().await;
    let mut command = Command::new(env!("CARGO_BIN_EXE_pms"));
    command
        .args(["seed", "2500", "--names", "common"])
        .env("PMS_DATABASE_URL", db.url())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let output = tokio::task::spawn_blocking(move || command.output()).await.expect("join").expect("run");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let said = String::from_utf8_lossy(&output.stdout);
    // Logs share stdout (JSON lines); the summary is the plain line.
    assert!(said.lines().any(|line| line.starts_with("registered 2500 patients in ")), "{said}");
    let pool = sqlx::PgPool::connect_with(db.options.clone()).await.expect("connect");
    let (patients, audited): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM patients.patients),
                (SELECT count(*) FROM patients.audit_events WHERE actor_id = 'pms seed' AND action = 'create')",
    )
    .fetch_one(&pool)
    .await
    .expect("counts");
    assert_eq!((patients, audited), (2500, 2500));

    let mut refused = Command::new(env!("CARGO_BIN_EXE_pms"));
    refused.args(["seed", "10", "--names", "everyone"]).env("PMS_DATABASE_URL", db.url());
    let output = tokio::task::spawn_blocking(move || refused.output()).await.expect("join").expect("run");
    assert!(!output.status.success(), "an unknown distribution is refused");
    assert!(String::from_utf8_lossy(&output.stderr).contains("wide"));
}
