//! The `pms` binary itself: `pms up` starts every service of the list, and SIGTERM stops the
//! process cleanly with exit status 0.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use kit::testing::TestDatabase;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn pms_up_serves_every_service_and_exits_0_on_sigterm() {
    let db = TestDatabase::create().await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_pms"))
        .arg("up")
        .env("PMS_DATABASE_URL", db.url())
        .env("PMS_BIND", "127.0.0.1:0")
        .env("PMS_AUTH_BIND", "127.0.0.1:0")
        .env("PMS_PATIENTS_BIND", "127.0.0.1:0")
        .env("PMS_LOG", "info")
        .env_remove("PMS_LOG_FORMAT")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("pms starts");
    // Read the JSON log lines on a thread until "pms is up" names the gateway's address.
    let stdout = child.stdout.take().expect("stdout");
    let (found, api) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let Ok(entry) = serde_json::from_str::<Value>(&line) else { continue };
            if entry["message"] == "pms is up" {
                let _ = found.send(entry["api"].as_str().unwrap_or_default().to_owned());
            }
        }
    });
    let api = api.recv_timeout(Duration::from_secs(60)).expect("pms says it is up");

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

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || child.wait()).await.expect("join").expect("wait");
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
}
