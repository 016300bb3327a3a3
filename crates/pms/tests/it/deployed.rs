//! pms as it is deployed (compose.yaml, deploy/k8s, deploy/aws): `pms migrate` once as the
//! schema owner, then each service in a process of its own with `PMS_MIGRATE=off` and the
//! runtime login, listening on its own ports, finding its peers at `PMS_<NAME>_URL` and
//! `PMS_<NAME>_GRPC_URL`, and holding only the secrets deploy/facts.py gives it. A wiring
//! mistake in that environment would show here before it shows in a cluster.

use std::{
    collections::BTreeMap,
    process::{Child, Command, Stdio},
    time::Duration,
};

use kit::testing::{TestBroker, TestDatabase};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Who gets `PMS_SERVICE_SECRET`: the `SERVICE_SECRET = {...}` line of deploy/facts.py, from
/// which the deployment files are generated.
fn service_secret_holders() -> Vec<String> {
    let facts = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/facts.py"))
        .expect("deploy/facts.py");
    let line =
        facts.lines().find(|l| l.starts_with("SERVICE_SECRET = {")).expect("SERVICE_SECRET in facts.py");
    line.split('"').skip(1).step_by(2).map(str::to_owned).collect()
}
const ADMIN_EMAIL: &str = "admin@deploy.example";
const ADMIN_PASSWORD: &str = "deployed-admin-password";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("address").port()
}

/// The environment every service process gets, as the deployment files give it.
fn shared_env(
    db_runtime_url: &str,
    broker: &str,
    ports: &BTreeMap<&str, (u16, Option<u16>)>,
) -> Vec<(String, String)> {
    let mut env = vec![
        ("PMS_MIGRATE".to_owned(), "off".to_owned()),
        ("PMS_KAFKA_BROKERS".to_owned(), broker.to_owned()),
        ("PMS_NOTIFICATIONS_CHANNEL".to_owned(), "log".to_owned()),
        ("PMS_GATEWAY_ADMIN_BIND".to_owned(), "off".to_owned()),
        ("PMS_LOG".to_owned(), "warn".to_owned()),
    ];
    for service in pms::SERVICES {
        let (port, grpc) = ports[service.name];
        let name = service.name.to_ascii_uppercase();
        env.push((format!("PMS_{name}_URL"), format!("http://127.0.0.1:{port}")));
        if let Some(grpc) = grpc {
            env.push((format!("PMS_{name}_GRPC_URL"), format!("http://127.0.0.1:{grpc}")));
        }
    }
    if !db_runtime_url.is_empty() {
        env.push(("PMS_DATABASE_URL".to_owned(), db_runtime_url.to_owned()));
    }
    env
}

async fn ready(url: &str) -> bool {
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(response) = client.get(url).send().await
            && response.status() == StatusCode::OK
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// `method path` on the gateway at `base` with `token` (if any) and a JSON `body` (if any).
async fn call(
    base: &str,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new().request(method, format!("{base}{path}"));
    if !token.is_empty() {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("the gateway answers")
}

struct Processes(Vec<(&'static str, Child)>);

impl Processes {
    /// SIGTERM to each; whether each exited 0.
    fn stop(mut self) -> Vec<(&'static str, bool)> {
        let mut exits = Vec::new();
        for (name, child) in self.0.iter_mut() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            exits.push((*name, child.wait().map(|s| s.success()).unwrap_or(false)));
        }
        self.0.clear();
        exits
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for (_, child) in self.0.iter_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test]
async fn every_service_in_its_own_process_works_with_the_others_as_deployed() {
    let db = TestDatabase::create().await;
    let broker = TestBroker::start().await;
    let ports: BTreeMap<&str, (u16, Option<u16>)> =
        pms::SERVICES.iter().map(|s| (s.name, (free_port(), s.grpc.map(|_| free_port())))).collect();
    // The owner migrates; the services run as the runtime login (PMS_TEST_RUNTIME_USER, which
    // owns nothing), as in production.
    let runtime = db.config().url;
    let migrated = Command::new(env!("CARGO_BIN_EXE_pms"))
        .arg("migrate")
        .env_clear()
        .env("PMS_DATABASE_URL", &runtime)
        .env("PMS_MIGRATION_DATABASE_URL", db.url())
        .stdout(Stdio::null())
        .status()
        .expect("pms migrate runs");
    assert!(migrated.success(), "the migration step");

    let shared = shared_env(&runtime, &broker.address(), &ports);
    let holders = service_secret_holders();
    assert!(holders.iter().any(|h| h == "auth"), "{holders:?}");
    let mut processes = Processes(Vec::new());
    for service in pms::SERVICES {
        let (port, grpc) = ports[service.name];
        let mut command = Command::new(env!("CARGO_BIN_EXE_pms"));
        command
            .arg(service.name)
            .env_clear()
            .envs(shared.iter().map(|(k, v)| (k, v)))
            .env(service.bind_var, format!("127.0.0.1:{port}"))
            .stdout(Stdio::null());
        if let (Some(listener), Some(grpc)) = (service.grpc, grpc) {
            command.env(listener.bind_var, format!("127.0.0.1:{grpc}"));
        }
        if holders.iter().any(|h| h == service.name) {
            command.env("PMS_SERVICE_SECRET", "a secret of this installation only");
        }
        if service.name == "auth" {
            command
                .env("PMS_ADMIN_EMAIL", ADMIN_EMAIL)
                .env("PMS_ADMIN_PASSWORD", ADMIN_PASSWORD)
                .env("PMS_AUTH_KEY_ENCRYPTION_KEY", "a generated key-encryption key of 32+ characters");
        }
        processes.0.push((service.name, command.spawn().expect("a service starts")));
    }
    let gateway = format!("http://127.0.0.1:{}", ports["gateway"].0);
    assert!(
        ready(&format!("{gateway}/health/ready")).await,
        "the gateway and every service behind it are ready"
    );

    let probed = Command::new(env!("CARGO_BIN_EXE_pms"))
        .arg("probe")
        .env_clear()
        .env("PMS_BIND", format!("0.0.0.0:{}", ports["gateway"].0))
        .status()
        .expect("pms probe runs");
    assert!(probed.success(), "the container health check of the gateway");

    use reqwest::Method;
    let credentials = json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD });
    let login: Value =
        call(&gateway, Method::POST, "/auth/login", "", Some(credentials)).await.json().await.expect("json");
    let token = login["accessToken"].as_str().expect("the first admin logs in").to_owned();

    // patients -> outbox -> billing over gRPC, with a service token from auth.
    let patient = json!({ "givenName": "Deployed", "familyName": "Apart", "birthDate": "1984-07-09",
                          "sex": "female", "phone": "+34600999888" });
    let created = call(&gateway, Method::POST, "/api/patients", &token, Some(patient)).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let patient_id = created.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned();
    let mut account = StatusCode::NOT_FOUND;
    for _ in 0..200 {
        account = call(&gateway, Method::GET, &format!("/api/billing/accounts/{patient_id}"), &token, None)
            .await
            .status();
        if account == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(account, StatusCode::OK, "billing opened the account, called over gRPC by patients");

    // appointments -> patients' PatientDirectory over gRPC, with the caller's identity.
    let body = json!({ "name": "Dr Deployed", "specialty": "General practice", "timeZone": "UTC", "location": "Room 1" });
    let practitioner: Value = call(&gateway, Method::POST, "/api/practitioners", &token, Some(body))
        .await
        .json()
        .await
        .expect("json");
    let practitioner_id = practitioner["id"].as_str().expect("a practitioner").to_owned();
    let week: Vec<Value> =
        (1..=7).map(|d| json!({ "weekday": d, "start": "00:00", "end": "24:00" })).collect();
    let path = format!("/api/practitioners/{practitioner_id}/working-hours");
    let hours = call(&gateway, Method::PUT, &path, &token, Some(json!({ "hours": week }))).await;
    assert_eq!(hours.status(), StatusCode::OK);
    let start = (time::OffsetDateTime::now_utc() + time::Duration::days(3))
        .replace_time(time::Time::from_hms(10, 0, 0).expect("time"));
    let start = start.format(&time::format_description::well_known::Rfc3339).expect("format");
    let booking = json!({ "patientId": patient_id, "practitionerId": practitioner_id, "start": start,
                          "type": "consultation", "reason": "Check-up" });
    let booked = call(&gateway, Method::POST, "/api/appointments", &token, Some(booking)).await;
    assert_eq!(booked.status(), StatusCode::CREATED, "appointments checked the patient with the directory");

    // notifications consumed both events and recorded the messages.
    let mut kinds = Vec::new();
    for _ in 0..200 {
        let path = format!("/api/notifications?patientId={patient_id}&limit=100");
        let log: Value = call(&gateway, Method::GET, &path, &token, None).await.json().await.expect("json");
        kinds = log["notifications"]
            .as_array()
            .map(|items| items.iter().filter_map(|m| m["kind"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        if kinds.iter().any(|k| k == "confirmation") && kinds.iter().any(|k| k == "welcome") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(kinds.iter().any(|k| k == "confirmation") && kinds.iter().any(|k| k == "welcome"), "{kinds:?}");

    for (name, clean) in processes.stop() {
        assert!(clean, "{name} exits 0 on SIGTERM");
    }
}
