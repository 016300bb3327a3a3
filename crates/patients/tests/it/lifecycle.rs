//! Register, read, update with optimistic locking, history, deactivation, audit.

use patients::mrn::Mrn;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_problem, patient};

fn full_patient() -> Value {
    json!({
        "givenName": "José",
        "familyName": "García Márquez",
        "birthDate": "1975-06-30",
        "sex": "male",
        "email": "Jose.Garcia@Example.org",
        "phone": "+34 912 345 678",
        "address": { "line": ["Calle Mayor 1", "2º B"], "city": "Madrid", "postalCode": "28013", "country": "es" }
    })
}

#[tokio::test]
async fn registering_answers_201_with_location_etag_and_a_checked_mrn() {
    let app = TestApp::spawn().await;
    let response = app.post("/api/patients", &full_patient()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().expect("location").to_owned();
    assert_eq!(response.headers()["etag"], "\"1\"");
    let created: Value = response.json().await.expect("json");
    assert_eq!(location, format!("/api/patients/{}", created["id"].as_str().expect("id")));
    assert_eq!(created["version"], 1);
    assert_eq!(created["active"], true);
    assert_eq!(created["phone"], "+34912345678");
    assert_eq!(created["address"]["country"], "ES");
    assert_eq!(created["birthDate"], "1975-06-30");
    assert!(Mrn::parse(created["mrn"].as_str().expect("mrn")).is_ok());

    let read = app.get(&location).await;
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(read.headers()["etag"], "\"1\"");
    assert_eq!(read.headers()["cache-control"], "no-store", "no cache may keep patient data");
    let read: Value = read.json().await.expect("json");
    assert_eq!(read, created);
}

#[tokio::test]
async fn each_registration_gets_its_own_mrn() {
    let app = TestApp::spawn().await;
    let a = app.register(&patient("Ann", "One")).await;
    let b = app.register(&patient("Bea", "Two")).await;
    assert_ne!(a["mrn"], b["mrn"]);
    assert_ne!(a["id"], b["id"]);
}

#[tokio::test]
async fn an_email_belongs_to_one_active_patient_ignoring_case() {
    let app = TestApp::spawn().await;
    let mut first = patient("Ann", "One");
    first["email"] = json!("ann@example.org");
    let first = app.register(&first).await;
    let mut second = patient("Ann", "Other");
    second["email"] = json!("ANN@example.org");
    let problem = expect_problem(app.post("/api/patients", &second).await, StatusCode::CONFLICT).await;
    assert_eq!(problem["errors"][0]["pointer"], "/email");
    // Nothing of the refused registration was written.
    for table in ["patients", "patient_versions", "audit_events"] {
        let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&app.pool)
            .await
            .expect("count");
        assert_eq!(rows, 1, "{table}");
    }

    // Once the first record is deactivated the address is free again.
    let id = first["id"].as_str().expect("id");
    assert_eq!(
        app.delete(&format!("/api/patients/{id}"), Some("\"1\"")).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.post("/api/patients", &second).await.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn updates_need_the_current_version_and_keep_the_previous_one() {
    let app = TestApp::spawn().await;
    let created = app.register(&full_patient()).await;
    let path = format!("/api/patients/{}", created["id"].as_str().expect("id"));
    let mut changed = full_patient();
    changed["familyName"] = json!("García");
    changed["phone"] = json!("+34 600 000 000");

    expect_problem(app.put(&path, None, &changed).await, StatusCode::PRECONDITION_REQUIRED).await;
    expect_problem(app.put(&path, Some("*"), &changed).await, StatusCode::PRECONDITION_REQUIRED).await;
    expect_problem(app.put(&path, Some("W/\"1\""), &changed).await, StatusCode::PRECONDITION_REQUIRED).await;
    expect_problem(app.put(&path, Some("\"7\""), &changed).await, StatusCode::PRECONDITION_FAILED).await;

    let updated = app.put(&path, Some("\"1\""), &changed).await;
    assert_eq!(updated.status(), StatusCode::OK);
    assert_eq!(updated.headers()["etag"], "\"2\"");
    let updated: Value = updated.json().await.expect("json");
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["familyName"], "García");
    assert_eq!(updated["mrn"], created["mrn"]);
    assert_eq!(updated["registeredAt"], created["registeredAt"]);

    // The same If-Match again is now stale.
    expect_problem(app.put(&path, Some("\"1\""), &changed).await, StatusCode::PRECONDITION_FAILED).await;

    let history: Value = app.get(&format!("{path}/history")).await.json().await.expect("json");
    let items = history["versions"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["version"], 2);
    assert_eq!(items[0]["patient"], updated);
    assert_eq!(items[1]["version"], 1);
    assert_eq!(items[1]["patient"], created);
    // Who wrote each version: the user of the request (registration and update alike).
    assert_eq!(items[0]["recordedBy"], "admin-1");
    assert_eq!(items[1]["recordedBy"], "admin-1");
}

#[tokio::test]
async fn of_two_concurrent_updates_from_one_version_exactly_one_wins() {
    let app = TestApp::spawn().await;
    for round in 0..5 {
        let id = app.register_named("Race", &format!("Condition{round}")).await;
        let path = format!("/api/patients/{id}");
        let (alice, bob) = (patient("Alice", "Winner"), patient("Bob", "Winner"));
        let (a, b) =
            tokio::join!(app.put(&path, Some("\"1\""), &alice), app.put(&path, Some("\"1\""), &bob),);
        let mut statuses = [a.status(), b.status()];
        statuses.sort();
        assert_eq!(statuses, [StatusCode::OK, StatusCode::PRECONDITION_FAILED], "round {round}");
        let history: Value = app.get(&format!("{path}/history")).await.json().await.expect("json");
        assert_eq!(history["versions"].as_array().expect("items").len(), 2, "one new version, not two");
    }
}

#[tokio::test]
async fn a_deactivated_record_is_gone_but_its_history_stays() {
    let app = TestApp::spawn().await;
    let id = app.register_named("Gone", "Girl").await;
    let path = format!("/api/patients/{id}");

    expect_problem(
        app.client.delete(app.url(&path)).header("if-match", "\"9\"").send().await.expect("request"),
        StatusCode::PRECONDITION_FAILED,
    )
    .await;
    // Deleting needs the version read, like updating: `*`, weak tags and no header do not do.
    expect_problem(app.delete(&path, None).await, StatusCode::PRECONDITION_REQUIRED).await;
    expect_problem(app.delete(&path, Some("*")).await, StatusCode::PRECONDITION_REQUIRED).await;
    expect_problem(app.delete(&path, Some("W/\"1\"")).await, StatusCode::PRECONDITION_REQUIRED).await;
    // The reason is optional; when given, it must be one.
    let with_body =
        |body: Value| app.client.delete(app.url(&path)).header("if-match", "\"1\"").json(&body).send();
    for bad in [json!({ "reason": "  " }), json!({ "reason": "x".repeat(501) }), json!({ "why": "moved" })] {
        expect_problem(with_body(bad).await.expect("request"), StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let plain =
        app.client.delete(app.url(&path)).header("if-match", "\"1\"").header("content-type", "text/plain");
    expect_problem(plain.body("moved").send().await.expect("request"), StatusCode::UNSUPPORTED_MEDIA_TYPE)
        .await;
    let reason = json!({ "reason": "Moved abroad; records transferred" });
    assert_eq!(with_body(reason).await.expect("request").status(), StatusCode::NO_CONTENT);

    expect_problem(app.get(&path).await, StatusCode::GONE).await;
    expect_problem(app.delete(&path, Some("\"2\"")).await, StatusCode::GONE).await;
    expect_problem(app.put(&path, Some("\"2\""), &patient("Gone", "Girl")).await, StatusCode::GONE).await;
    for query in ["name=girl", "name=gril", "name=gone"] {
        let page = app.search(query).await;
        assert_eq!(page["patients"].as_array().expect("items").len(), 0, "{query}");
    }

    let history: Value = app.get(&format!("{path}/history")).await.json().await.expect("json");
    let items = history["versions"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["patient"]["active"], false);
    assert_eq!(items[0]["recordedBy"], "admin-1", "the deactivation's author");
    assert_eq!(items[0]["reason"], "Moved abroad; records transferred");
    assert_eq!(items[1]["patient"]["active"], true);
    assert!(items[1].get("reason").is_none(), "a registration has no reason");
}

#[tokio::test]
async fn unknown_ids_answer_404_everywhere() {
    let app = TestApp::spawn().await;
    let path = "/api/patients/01890a5d-ac96-774b-bcce-b302099a8057";
    expect_problem(app.get(path).await, StatusCode::NOT_FOUND).await;
    expect_problem(app.get(&format!("{path}/history")).await, StatusCode::NOT_FOUND).await;
    expect_problem(app.put(path, Some("\"1\""), &patient("No", "Body")).await, StatusCode::NOT_FOUND).await;
    expect_problem(app.delete(path, Some("\"1\"")).await, StatusCode::NOT_FOUND).await;
}

/// action, patient id, outcome, details, request id
type AuditRow = (String, Option<uuid::Uuid>, String, Value, Option<String>);

#[tokio::test]
async fn every_access_is_audited_without_identifying_data() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(app.url("/api/patients"))
        .header("x-request-id", "req-audit-1")
        .json(&patient("Audrey", "Trail"))
        .send()
        .await
        .expect("request");
    let id: String = response.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned();
    let path = format!("/api/patients/{id}");
    app.get(&path).await;
    app.put(&path, Some("\"1\""), &patient("Audrey", "Trails")).await;
    app.get(&format!("{path}/history")).await;
    app.search("name=audrey&birthDate=1980-01-01").await;
    app.delete(&path, Some("\"2\"")).await;
    app.get(&path).await;

    let rows: Vec<AuditRow> = sqlx::query_as(
        "SELECT action, patient_id, outcome, details, request_id FROM audit_events ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .expect("audit rows");
    let actions: Vec<(&str, &str)> = rows.iter().map(|r| (r.0.as_str(), r.2.as_str())).collect();
    assert_eq!(
        actions,
        [
            ("create", "ok"),
            ("read", "ok"),
            ("update", "ok"),
            ("history", "ok"),
            ("search", "ok"),
            ("deactivate", "ok"),
            ("read", "gone")
        ]
    );
    assert_eq!(rows[0].4.as_deref(), Some("req-audit-1"));
    assert!(rows.iter().all(|r| r.4.is_some()), "every row has a request id");
    let actors: Vec<(Option<String>, Vec<String>)> =
        sqlx::query_as("SELECT actor_id, actor_roles FROM audit_events")
            .fetch_all(&app.pool)
            .await
            .expect("actors");
    assert!(actors.iter().all(|(id, roles)| id.as_deref() == Some("admin-1") && roles == &["admin"]));
    let search = &rows[4];
    assert_eq!(search.1, None);
    assert_eq!(search.3["filters"], json!(["name", "birthDate"]));
    assert_eq!(search.3["patientIds"], json!([id]), "which patients the search showed");
    let all = serde_json::to_string(&rows.iter().map(|r| &r.3).collect::<Vec<_>>()).expect("json");
    assert!(!all.to_lowercase().contains("audrey"), "no names in the audit trail: {all}");

    // The trail is append-only, whoever asks.
    let update = sqlx::query("UPDATE audit_events SET outcome = 'tampered'").execute(&app.pool).await;
    assert!(update.is_err());
    let delete = sqlx::query("DELETE FROM audit_events").execute(&app.pool).await;
    assert!(delete.is_err());
    let truncate = sqlx::query("TRUNCATE audit_events").execute(&app.pool).await;
    assert!(truncate.is_err());
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_events").fetch_one(&app.pool).await.expect("count");
    assert_eq!(count, 7);
}

/// Reads arriving together are fetched and audited together; each keeps its own answer and
/// its own audit row.
#[tokio::test]
async fn reads_at_once_are_each_answered_and_audited_with_what_they_found() {
    let app = TestApp::spawn().await;
    let active = app.register_named("Ada", "Present").await;
    let deactivated = app.register_named("Bo", "Former").await;
    assert_eq!(
        app.delete(&format!("/api/patients/{deactivated}"), Some("\"1\"")).await.status(),
        StatusCode::NO_CONTENT
    );
    let unknown = uuid::Uuid::new_v4().to_string();
    let asked: Vec<(&str, StatusCode)> = [
        (active.as_str(), StatusCode::OK),
        (deactivated.as_str(), StatusCode::GONE),
        (unknown.as_str(), StatusCode::NOT_FOUND),
    ]
    .into_iter()
    .cycle()
    .take(60)
    .collect();
    let app = &app;
    let answers = futures_util::future::join_all(asked.iter().map(|(id, _)| async move {
        let response = app.get(&format!("/api/patients/{id}")).await;
        (response.status(), response.json::<Value>().await.expect("json"))
    }))
    .await;
    for ((id, expected), (status, body)) in asked.iter().zip(&answers) {
        assert_eq!(status, expected, "{id}: {body}");
        if *status == StatusCode::OK {
            assert_eq!(body["id"], *id, "each read gets its own record");
            assert_eq!(body["familyName"], "Present");
        }
    }
    let audited: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT patient_id::text, outcome, count(*) FROM audit_events WHERE action = 'read'
         GROUP BY 1, 2 ORDER BY 3, 2",
    )
    .fetch_all(&app.pool)
    .await
    .expect("audit rows");
    assert_eq!(
        audited,
        [
            (deactivated, "gone".to_owned(), 20),
            (unknown, "not_found".to_owned(), 20),
            (active, "ok".to_owned(), 20)
        ]
    );
}

/// No record is shown whose read or search could not be audited.
#[tokio::test]
async fn a_read_or_search_that_cannot_be_audited_is_refused_with_503() {
    let app = TestApp::spawn().await;
    let id = app.register_named("Unseen", "Record").await;
    app.register_named("Other", "Record").await;
    // The service's own role owns nothing; the table's owner adds a trigger that fails the rows
    // of reads and searches.
    let owner = sqlx::PgPool::connect_with(app.db_options().clone()).await.expect("owner");
    sqlx::raw_sql(
        "CREATE FUNCTION patients.refuse_reads() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'audit storage refused the row'; END $$;
         CREATE TRIGGER refuse_reads BEFORE INSERT ON patients.audit_events FOR EACH ROW
             WHEN (NEW.action IN ('read', 'search')) EXECUTE FUNCTION patients.refuse_reads();",
    )
    .execute(&owner)
    .await
    .expect("trigger");
    // A read; a search whose family name fills its page; one that goes on to its other ranks;
    // one with another filter.
    for path in [
        format!("/api/patients/{id}"),
        "/api/patients?name=record&limit=1".to_owned(),
        "/api/patients?name=record".to_owned(),
        "/api/patients?name=record&birthDate=1980-01-01".to_owned(),
    ] {
        let body = expect_problem(app.get(&path).await, StatusCode::SERVICE_UNAVAILABLE).await.to_string();
        assert!(body.contains("audit"), "{path}: {body}");
        assert!(!body.contains("Unseen") && !body.contains("Record"), "{path}: no patient data: {body}");
    }

    sqlx::raw_sql("DROP TRIGGER refuse_reads ON patients.audit_events").execute(&owner).await.expect("drop");
    assert_eq!(app.get(&format!("/api/patients/{id}")).await.status(), StatusCode::OK);
    assert_eq!(app.search_families("name=record&limit=1").await, ["Other Record"]);
    let outcomes: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, outcome FROM audit_events WHERE action IN ('read', 'search') ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .expect("rows");
    let served = [("read".to_owned(), "ok".to_owned()), ("search".to_owned(), "ok".to_owned())];
    assert_eq!(outcomes, served, "only the accesses that were served are in the trail");
}

#[tokio::test]
async fn a_database_outage_answers_503_not_500() {
    let app = TestApp::spawn().await;
    let id = app.register_named("Down", "Time").await;
    app.pool.close().await;
    let problem =
        expect_problem(app.get(&format!("/api/patients/{id}")).await, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(problem["detail"].as_str().is_some());
    expect_problem(
        app.post("/api/patients", &patient("Still", "Down")).await,
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert_eq!(app.get("/health/ready").await.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(app.get("/health/live").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn health_and_metrics_are_served() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/health/ready").await.status(), StatusCode::OK);
    app.get("/api/patients?name=x").await;
    let metrics = app.get("/metrics").await.text().await.expect("text");
    assert!(metrics.contains("http_requests_total"), "{metrics}");
    assert!(metrics.contains("route=\"/api/patients\""), "{metrics}");
}
