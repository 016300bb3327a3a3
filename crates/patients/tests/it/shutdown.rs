//! Stopping cleanly: readiness goes first, requests in flight are answered, and every read
//! answered has its audit row committed before the service ends.

use std::time::Duration;

use kit::{RequestContext, auth::Role, shutdown::Shutdown, tasks::Background};
use patients::{
    audit::{AuditEvent, AuditLog},
    policy::Action,
};
use reqwest::StatusCode;

use crate::helpers::TestApp;

#[tokio::test]
async fn reads_in_flight_at_shutdown_are_answered_and_audited() {
    let mut app =
        TestApp::spawn_with(Shutdown::new(Duration::from_millis(300), Duration::from_secs(10))).await;
    let id = app.register_named("Last", "Batch").await;
    assert_eq!(app.get("/health/ready").await.status(), StatusCode::OK);

    let url = app.url(&format!("/api/patients/{id}"));
    let reads: Vec<_> = (0..60)
        .map(|_| {
            let (client, url) = (app.client.clone(), url.clone());
            tokio::spawn(async move { client.get(url).send().await.map(|r| r.status()) })
        })
        .collect();
    app.shutdown.trigger();
    // During the grace period the listener still accepts, but readiness already says no.
    assert_eq!(app.get("/health/ready").await.status(), StatusCode::SERVICE_UNAVAILABLE);

    let mut answered = 0;
    for read in reads {
        match read.await.expect("task") {
            Ok(status) => {
                assert_eq!(status, StatusCode::OK, "a request in flight is answered, not cut off");
                answered += 1;
            }
            Err(err) => assert!(err.is_connect(), "only refused after the listener closed: {err}"),
        }
    }
    let stopped = tokio::time::timeout(Duration::from_secs(10), &mut app.server).await;
    assert!(matches!(stopped, Ok(Ok(Ok(())))), "the service stops cleanly: {stopped:?}");

    let audited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = 'read' AND outcome = 'ok'")
            .fetch_one(&app.pool)
            .await
            .expect("count");
    assert_eq!(audited, answered, "every read answered was audited");
}

#[tokio::test]
async fn the_audit_writer_commits_its_last_batch_when_stopped() {
    let app = TestApp::spawn().await;
    let background = Background::new();
    let log = AuditLog::start(app.pool.clone(), &background);
    let ctx = RequestContext::of("clin-1", vec![Role::Clinician]);
    let records: Vec<_> = (0..300)
        .map(|_| {
            let (log, event) = (log.clone(), AuditEvent::new(&ctx, Action::Search, None, "ok"));
            tokio::spawn(async move { log.record(event).await.is_ok() })
        })
        .collect();
    // Let the writer take some rows, then stop it with the rest still queued or arriving.
    tokio::task::yield_now().await;
    assert!(background.stop(Duration::from_secs(10)).await, "the writer stops in time");

    let mut confirmed = 0;
    for record in records {
        confirmed += i64::from(record.await.expect("task"));
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE actor_id = 'clin-1'")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(rows, confirmed, "every confirmed row is committed, no other");
    assert!(confirmed > 0, "rows handed over before the stop are committed");
    assert!(
        log.record(AuditEvent::new(&ctx, Action::Search, None, "ok")).await.is_err(),
        "closed after stop"
    );
}
