//! Registrations grouped into one commit (the registrar) and bulk loading (`pms seed`): both
//! go through one statement, so each patient has its version and audit row, and a refused
//! registration leaves nothing behind.

use std::{collections::HashSet, time::Duration};

use kit::{RequestContext, auth::Role, tasks::Background};
use patients::{
    audit::AuditEvent,
    domain::{PatientDraft, PatientId, PatientInput},
    error::Error,
    events::PatientEvents,
    policy::Action,
    registration::{Registrar, Registration},
    sample::Names,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TOPIC, TestApp, patient};

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.pool).await.expect("count")
}

#[tokio::test]
async fn concurrent_registrations_each_commit_once_and_a_shared_email_wins_once() {
    let app = TestApp::spawn().await;
    // 30 at once: 20 distinct patients, and 10 wanting the same email (in any case).
    let bodies: Vec<Value> = (0..30)
        .map(|i| {
            let mut body = patient(&format!("Given{i}"), "Concurrent");
            if i >= 20 {
                body["email"] = json!(if i % 2 == 0 { "same@example.org" } else { "SAME@example.org" });
            }
            body
        })
        .collect();
    let sent: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let request = app.client.post(app.url("/api/patients")).json(&body);
            tokio::spawn(async move { request.send().await.expect("request") })
        })
        .collect();
    let mut created = Vec::new();
    let mut conflicts = 0;
    for answer in sent {
        let answer = answer.await.expect("task");
        match answer.status() {
            StatusCode::CREATED => created.push(answer.json::<Value>().await.expect("json")),
            StatusCode::CONFLICT => conflicts += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created.len(), 21, "20 distinct patients and one owner of the shared email");
    assert_eq!(conflicts, 9);
    let mrns: HashSet<_> = created.iter().map(|p| p["mrn"].as_str().expect("mrn").to_owned()).collect();
    assert_eq!(mrns.len(), 21, "each has its own MRN");
    for p in &created {
        let id = p["id"].as_str().expect("id");
        let read: Value = app.get(&format!("/api/patients/{id}")).await.json().await.expect("json");
        assert_eq!(&read, p, "the answer is what was stored");
    }
    assert_eq!(count(&app, "SELECT count(*) FROM patients").await, 21);
    assert_eq!(count(&app, "SELECT count(*) FROM patient_versions WHERE version = 1").await, 21);
    assert_eq!(count(&app, "SELECT count(*) FROM audit_events WHERE action = 'create'").await, 21);
    // And its events, for the topic and for billing; none for the refused ones.
    let events =
        "SELECT count(DISTINCT key) FROM outbox WHERE event_type = 'pms.patients.v1.PatientRegistered'";
    assert_eq!(count(&app, events).await, 21);
    assert_eq!(count(&app, "SELECT count(*) FROM outbox WHERE sink = 'billing'").await, 21);
}

fn draft(given: &str) -> PatientDraft {
    let input: PatientInput = serde_json::from_value(patient(given, "Batch")).expect("input");
    PatientDraft::parse(input, time::OffsetDateTime::now_utc().date()).expect("valid")
}

fn registration(id: PatientId, given: &str) -> Registration {
    let ctx = RequestContext::of("desk-1", vec![Role::Receptionist]);
    let audit = AuditEvent::new(&ctx, Action::Create, Some(id), "ok");
    Registration { id, draft: draft(given), audit, trace_id: None }
}

#[tokio::test]
async fn a_registration_the_database_refuses_does_not_fail_the_others_of_its_batch() {
    let app = TestApp::spawn().await;
    let background = Background::new();
    let registrar = Registrar::start(app.pool.clone(), PatientEvents::on(TOPIC), Vec::new(), &background);
    let taken = PatientId::new();
    registrar.register(registration(taken, "First")).await.expect("first");
    // Hold the writer on a registration that waits for a table lock, so that the next three
    // queue up and are taken as one batch once the lock is released.
    let mut lock = app.pool.begin().await.expect("begin");
    sqlx::query("LOCK TABLE patients IN SHARE MODE").execute(&mut *lock).await.expect("lock");
    let spawn = |id, given: &'static str| {
        let registrar = registrar.clone();
        tokio::spawn(async move { registrar.register(registration(id, given)).await })
    };
    let held = spawn(PatientId::new(), "Held");
    let blocked = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()";
    wait_until(|| async { count(&app, blocked).await == 1 }).await;
    // The second reuses an id, which the statement cannot skip (only a taken email is
    // skipped): the batch fails as a whole and is retried one registration at a time.
    let (a, b, c) =
        (spawn(PatientId::new(), "Before"), spawn(taken, "Again"), spawn(PatientId::new(), "After"));
    wait_until(|| async { registrar.waiting() == 3 }).await;
    lock.commit().await.expect("release");
    assert!(held.await.expect("task").is_ok());
    let (a, b, c) = (a.await.expect("task"), b.await.expect("task"), c.await.expect("task"));
    assert!(a.is_ok() && c.is_ok(), "{a:?} {c:?}");
    assert!(matches!(b, Err(Error::Database(_))), "{b:?}");
    assert_eq!(count(&app, "SELECT count(*) FROM patients").await, 4);
    assert_eq!(count(&app, "SELECT count(*) FROM audit_events").await, 4);
    assert!(background.stop(Duration::from_secs(10)).await);
    assert!(matches!(registrar.register(registration(PatientId::new(), "Late")).await, Err(Error::Stopping)));
}

#[tokio::test]
async fn registrations_the_database_cannot_take_fail_at_once_not_one_at_a_time() {
    // Nothing listens there: every attempt waits out the pool's acquire timeout.
    let wait = Duration::from_millis(300);
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(wait)
        .connect_lazy("postgres://pms@127.0.0.1:1/pms")
        .expect("pool");
    let background = Background::new();
    let registrar = Registrar::start(pool, PatientEvents::on(TOPIC), Vec::new(), &background);
    let started = std::time::Instant::now();
    // Handed over together, so they are taken as one batch.
    let tasks: Vec<_> = ["Ada", "Bea", "Cy", "Dee", "Eve"]
        .into_iter()
        .map(|given| {
            let registrar = registrar.clone();
            tokio::spawn(async move { registrar.register(registration(PatientId::new(), given)).await })
        })
        .collect();
    for task in tasks {
        let answer = task.await.expect("task");
        let status = answer.map(|_| ()).map_err(|err| kit::Problem::from(err).status);
        assert_eq!(status, Err(StatusCode::SERVICE_UNAVAILABLE.as_u16()));
    }
    let took = started.elapsed();
    // One attempt for the batch, not one more for each registration after it (6 × 300 ms).
    assert!(took < wait * 3, "took {took:?}");
    assert!(background.stop(Duration::from_secs(5)).await);
}

/// Polls `condition` until it holds (five seconds at most).
async fn wait_until<F: Future<Output = bool>>(condition: impl Fn() -> F) {
    for _ in 0..500 {
        if condition().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the condition did not hold within 5 s");
}

#[tokio::test]
async fn seeded_patients_are_complete_audited_and_found_by_the_api() {
    let app = TestApp::spawn().await;
    let mut reported = Vec::new();
    let seeded =
        patients::seed::seed(&app.pool, Some(PatientEvents::on(TOPIC)), 4_500, Names::Common, 7, |done| {
            reported.push(done.registered)
        })
        .await
        .expect("seed");
    assert_eq!(seeded.registered + seeded.skipped, 4_500);
    assert_eq!(seeded.skipped, 0, "random emails do not collide");
    assert_eq!(reported.last().copied(), Some(4_500), "progress after each batch: {reported:?}");
    assert_eq!(reported.len(), 3, "batches of 2 000");
    assert_eq!(count(&app, "SELECT count(*) FROM patients").await, 4_500);
    assert_eq!(count(&app, "SELECT count(DISTINCT mrn) FROM patients").await, 4_500);
    assert_eq!(count(&app, "SELECT count(*) FROM patient_versions").await, 4_500);
    assert_eq!(
        count(&app, "SELECT count(*) FROM audit_events WHERE action = 'create' AND actor_id = 'pms seed'")
            .await,
        4_500
    );
    assert_eq!(count(&app, "SELECT count(*) FROM outbox WHERE sink = 'kafka'").await, 4_500);
    // About a tenth are called García: found by the name search, accent and case forgiven.
    let garcias = count(&app, "SELECT count(*) FROM patients WHERE family_name = 'García'").await;
    assert!((300..600).contains(&garcias), "{garcias}");
    let page = app.search("name=garcia&limit=100").await;
    let found = page["patients"].as_array().expect("patients");
    assert_eq!(found.len(), 100);
    assert!(found.iter().all(|p| p["familyName"] == "García"));
}

#[tokio::test]
async fn the_service_may_merge_new_search_keys_only_through_its_function() {
    let app = TestApp::spawn().await;
    for i in 0..40 {
        app.register_named(&format!("Key{i}"), "Merged").await;
    }
    // The runtime role may run the merge (the service does, every half second after
    // registrations); what it merged is searchable at once either way.
    let merged: i64 = sqlx::query_scalar("SELECT clean_name_keys_pending_list()")
        .fetch_one(&app.pool)
        .await
        .expect("merge");
    assert!(merged >= 0);
    let page = app.search("name=key1%20merged").await;
    assert!(!page["patients"].as_array().expect("patients").is_empty());
    let err = sqlx::query("SELECT gin_clean_pending_list('patients_name_keys'::regclass)")
        .execute(&app.pool)
        .await
        .expect_err("only through the function");
    assert!(
        err.to_string().contains("must be owner") || err.to_string().contains("permission denied"),
        "{err}"
    );
}
