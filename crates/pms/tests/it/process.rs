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

/// Every listener of every service (`pms::SERVICES`, REST and gRPC) on a free port: tests run
/// at once, and a service left on its default port met another test's.
fn free_ports() -> Vec<(&'static str, &'static str)> {
    pms::SERVICES
        .iter()
        .flat_map(|s| std::iter::once(s.bind_var).chain(s.grpc.map(|g| g.bind_var)))
        .map(|var| (var, "127.0.0.1:0"))
        .collect()
}

/// Starts `pms <command>` with `env` (every service on a free port, JSON logs) and waits for
/// the log line whose message is `message`; returns the process and that line.
fn start(command: &str, env: &[(&str, String)], message: &str) -> (Child, Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pms"))
        .arg(command)
        .env_remove("PMS_DATABASE_URL")
        .envs(free_ports())
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
            .envs(free_ports())
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

/// The schemas of pms's services that exist in `db`.
async fn schemas(db: &TestDatabase) -> Vec<String> {
    let pool = sqlx::PgPool::connect_with(db.options.clone()).await.expect("connect");
    let schemas = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname IN \
         ('auth', 'patients', 'billing', 'analytics', 'appointments', 'notifications') ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .expect("schemas");
    pool.close().await;
    schemas
}

// Deployments migrate in a step of their own (a Kubernetes init container, an ECS container the
// service's waits for) with the owner's credentials, and run the service without them.
#[tokio::test]
async fn a_deployment_migrates_one_schema_apart_and_the_service_then_does_not_migrate() {
    let db = TestDatabase::create().await;
    let migrated = Command::new(env!("CARGO_BIN_EXE_pms"))
        .args(["migrate", "billing"])
        .env("PMS_BILLING_DATABASE_URL", db.url())
        .stdout(Stdio::null())
        .status()
        .expect("pms migrate billing runs");
    assert!(migrated.success());
    assert_eq!(schemas(&db).await, ["billing"], "`pms migrate billing` migrates billing's schema only");

    let (child, _) = start(
        "analytics",
        &[("PMS_ANALYTICS_DATABASE_URL", db.url()), ("PMS_MIGRATE", "off".to_owned())],
        "listening",
    );
    assert!(terminate(child).await.success());
    assert_eq!(schemas(&db).await, ["billing"], "with PMS_MIGRATE=off the service leaves the schemas alone");
}

// A deployment hands `pms migrate` the owner's URL and the runtime user's URL (its password
// from a secret store, apart): the runtime login is created, and can do only what its role may.
#[tokio::test]
async fn pms_migrate_creates_the_runtime_login_from_its_url_and_password() {
    let db = TestDatabase::create().await;
    let user = format!("pms_deploy_{}", uuid::Uuid::new_v4().simple());
    let mut runtime = url::Url::parse(&db.url()).expect("the test URL");
    runtime.set_username(&user).expect("a user");
    let migrated = Command::new(env!("CARGO_BIN_EXE_pms"))
        .args(["migrate", "billing"])
        .env("PMS_BILLING_DATABASE_URL", runtime.as_str())
        .env("PMS_DATABASE_PASSWORD", "from a secret store")
        .env("PMS_BILLING_MIGRATION_DATABASE_URL", db.url())
        .stdout(Stdio::null())
        .status()
        .expect("pms migrate billing runs");
    assert!(migrated.success());

    let pool = sqlx::PgPool::connect_with(db.options.clone()).await.expect("connect");
    let (login, member, password): (bool, bool, bool) = sqlx::query_as(
        "SELECT rolcanlogin, pg_has_role(rolname, 'pms_billing_runtime', 'MEMBER'), rolpassword IS NOT NULL \
         FROM pg_authid WHERE rolname = $1",
    )
    .bind(&user)
    .fetch_one(&pool)
    .await
    .expect("the runtime login exists");
    assert!(login && member && password, "a login with its password, in billing's runtime role");
    sqlx::query(&format!("DROP ROLE \"{user}\"")).execute(&pool).await.ok();
    pool.close().await;
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

/// `pms probe ARGS` with `env`: whether it exited 0, and what it printed on stderr.
fn probe(args: &[&str], env: &[(&str, String)]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_pms"))
        .arg("probe")
        .args(args)
        .env_remove("PMS_BIND")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("pms probe runs");
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

// The container health check: the image has no shell or curl, so `pms probe` asks the service
// the container runs (found from its listen variable, on every address) whether it is live, or
// with --ready whether it is ready.
#[tokio::test]
async fn pms_probe_says_whether_the_service_of_this_environment_is_live_and_ready() {
    let (nothing, why) = probe(&[], &[]);
    assert!(!nothing && why.contains("no PMS_BIND"), "no service configured: {why}");

    let db = TestDatabase::create().await;
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("port").port();
    let bind = ("PMS_BILLING_BIND", format!("0.0.0.0:{port}"));
    let (child, _) = start("billing", &[("PMS_BILLING_DATABASE_URL", db.url()), bind.clone()], "listening");
    let (live, why) = probe(&[], std::slice::from_ref(&bind));
    assert!(live, "billing answers on loopback: {why}");
    let (ready, why) = probe(&["--ready"], std::slice::from_ref(&bind));
    assert!(ready, "billing is ready: {why}");

    assert!(terminate(child).await.success());
    let (live, why) = probe(&[], std::slice::from_ref(&bind));
    assert!(!live && why.contains("billing does not answer"), "a stopped service fails the probe: {why}");
    let (ready, _) = probe(&["--ready"], &[bind]);
    assert!(!ready);
}

// Deployment files are checked against this list (scripts/check-deploy.sh).
#[test]
fn pms_services_lists_every_service_with_its_ports() {
    let output = Command::new(env!("CARGO_BIN_EXE_pms")).arg("services").output().expect("pms services runs");
    assert!(output.status.success());
    let services: Vec<Value> = serde_json::from_slice(&output.stdout).expect("JSON");
    let names: Vec<&str> = services.iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(
        names,
        ["gateway", "auth", "patients", "billing", "analytics", "appointments", "notifications"]
    );
    let patients = &services[2];
    assert_eq!((patients["port"].as_u64(), patients["grpcPort"].as_u64()), (Some(8081), Some(50051)));
    assert_eq!(services[0]["schema"], Value::Null, "the gateway keeps no data");
}
