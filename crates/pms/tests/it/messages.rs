//! Messages to patients through the gateway and LocalStack: a booking's confirmation by email
//! (SES) and SMS (SNS), exactly once; a reminder due while the notifications service was
//! stopped, sent once after it restarts; a message whose dispatcher died mid-send, sent once
//! when its claim lapses; cancelling cancels reminders and sends a notice; a
//! patient who opted out gets nothing, and one without a phone gets no SMS.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::{
    scheduling::{Staff, act, always_working, booking, days_ahead, json_of, post, send, staff},
    system::TestSystem,
};

/// A patient with a unique email (and phone, if `with_phone`); their id, email and phone.
async fn patient(system: &TestSystem, staff: &Staff, with_phone: bool) -> (String, String, String) {
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let email = format!("p{}@example.org", &unique[..12]);
    let digits: String =
        unique.chars().filter(char::is_ascii_digit).chain("1234567".chars()).take(7).collect();
    let phone = format!("+3469{digits}");
    let mut body = json!({ "givenName": "Marta", "familyName": "Message", "birthDate": "1975-06-07", "sex": "female",
                           "email": email });
    if with_phone {
        body["phone"] = phone.clone().into();
    }
    let created = json_of(post(system, "/api/patients", &staff.desk, body).await, StatusCode::CREATED).await;
    (created["id"].as_str().expect("id").to_owned(), email, phone)
}

/// The emails LocalStack's SES holds for `to`.
async fn emails_to(to: &str) -> Vec<Value> {
    let all: Value = reqwest::get(format!("{}/_aws/ses", kit::testing::localstack_url()))
        .await
        .expect("LocalStack")
        .json()
        .await
        .expect("json");
    all["messages"]
        .as_array()
        .map(|m| m.iter().filter(|m| m["Destination"]["ToAddresses"][0] == to).cloned().collect())
        .unwrap_or_default()
}

/// The texts of the SMS LocalStack's SNS holds for `phone`.
async fn texts_to(phone: &str) -> Vec<String> {
    let all: Value = reqwest::get(format!("{}/_aws/sns/sms-messages", kit::testing::localstack_url()))
        .await
        .expect("LocalStack")
        .json()
        .await
        .expect("json");
    all["sms_messages"][phone]
        .as_array()
        .map(|m| m.iter().filter_map(|m| m["Message"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

fn subjects(emails: &[Value], start: &str) -> usize {
    emails.iter().filter(|e| e["Subject"].as_str().is_some_and(|s| s.starts_with(start))).count()
}

/// Waits (30 s at most: one retry of a provider error comes 10 s later) until `done` holds for
/// the delivery log of `patient`; the log.
async fn log_until(
    system: &TestSystem,
    token: &str,
    patient: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let mut last = Vec::new();
    for _ in 0..300 {
        let page = json_of(
            system.get(&format!("/api/notifications?patientId={patient}&limit=100"), token).await,
            StatusCode::OK,
        )
        .await;
        last = page["notifications"].as_array().cloned().unwrap_or_default();
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the delivery log never got there: {last:?}");
}

fn of<'a>(log: &'a [Value], kind: &str, channel: &str) -> Vec<&'a Value> {
    log.iter().filter(|m| m["kind"] == kind && m["channel"] == channel).collect()
}

#[tokio::test]
async fn a_booking_sends_one_confirmation_by_email_and_one_by_sms() {
    let system = TestSystem::start().await;
    let staff = staff(&system).await;
    let doctor = always_working(&system, &staff).await;
    let (patient, email, phone) = patient(&system, &staff, true).await;
    let booked = json_of(
        post(&system, "/api/appointments", &staff.desk, booking(&patient, &doctor, days_ahead(5, 10))).await,
        StatusCode::CREATED,
    )
    .await;
    let log = log_until(&system, &staff.desk, &patient, |log| {
        ["email", "sms"]
            .iter()
            .all(|c| of(log, "confirmation", c).first().is_some_and(|m| m["status"] == "sent"))
    })
    .await;
    assert_eq!(of(&log, "confirmation", "email")[0]["recipient"], email.as_str());
    assert_eq!(of(&log, "confirmation", "email")[0]["appointmentId"], booked["id"]);
    assert_eq!(of(&log, "reminder", "email").len(), 2, "24 h and 2 h before: {log:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let emails = emails_to(&email).await;
    assert_eq!(subjects(&emails, "Your appointment on"), 1, "{emails:?}");
    let confirmation = emails
        .iter()
        .find(|e| e["Subject"].as_str().is_some_and(|s| s.starts_with("Your appointment on")))
        .expect("email");
    assert!(confirmation["Body"]["text_part"].as_str().expect("text").contains("Dr Ana Ruiz"));
    assert!(confirmation["Body"]["html_part"].as_str().expect("html").contains("<p>Dear Marta,</p>"));
    assert_eq!(confirmation["Source"], "clinic@pms.test");
    let texts = texts_to(&phone).await;
    assert_eq!(texts.iter().filter(|t| t.contains("appointment with Dr Ana Ruiz")).count(), 1, "{texts:?}");
    assert_eq!(texts.iter().filter(|t| t.contains("welcome")).count(), 1, "the welcome SMS too: {texts:?}");
}

#[tokio::test]
async fn a_reminder_due_while_the_service_is_stopped_is_sent_once_after_it_restarts() {
    let mut system = TestSystem::start().await;
    let staff = staff(&system).await;
    let doctor = always_working(&system, &staff).await;
    let (patient, email, _) = patient(&system, &staff, false).await;
    // An appointment two to three minutes ahead, with a reminder due in about 20 seconds (time for the
    // restarted consumer to rejoin its group and queue it).
    let now = OffsetDateTime::now_utc();
    let start =
        (now + time::Duration::minutes(3)).replace_second(0).expect("s").replace_nanosecond(0).expect("ns");
    let mut config = system.notifications.config.clone();
    config.leads = vec![start - (now + time::Duration::seconds(20))];
    system.notifications.stop().await;
    system.notifications.resume_with(config).await;
    json_of(
        post(&system, "/api/appointments", &staff.desk, booking(&patient, &doctor, start)).await,
        StatusCode::CREATED,
    )
    .await;
    log_until(&system, &staff.desk, &patient, |log| {
        of(log, "reminder", "email").first().is_some_and(|m| m["status"] == "queued")
    })
    .await;
    system.notifications.stop().await;
    let due = start - system.notifications.config.leads[0];
    let wait = (due - OffsetDateTime::now_utc()).whole_milliseconds().max(0) as u64 + 1500;
    tokio::time::sleep(Duration::from_millis(wait)).await;
    assert_eq!(
        subjects(&emails_to(&email).await, "Reminder"),
        0,
        "nothing is sent while the service is stopped"
    );
    system.notifications.resume().await;
    log_until(&system, &staff.desk, &patient, |log| {
        of(log, "reminder", "email").first().is_some_and(|m| m["status"] == "sent")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(subjects(&emails_to(&email).await, "Reminder"), 1, "sent once");
}

#[tokio::test]
async fn a_message_whose_dispatcher_died_mid_send_is_sent_once_when_its_claim_lapses() {
    let mut system = TestSystem::start().await;
    let staff = staff(&system).await;
    let doctor = always_working(&system, &staff).await;
    let (patient, email, _) = patient(&system, &staff, false).await;
    json_of(
        post(&system, "/api/appointments", &staff.desk, booking(&patient, &doctor, days_ahead(8, 9))).await,
        StatusCode::CREATED,
    )
    .await;
    log_until(&system, &staff.desk, &patient, |log| of(log, "reminder", "email").len() == 2).await;
    system.notifications.stop().await;
    // Two reminders were claimed (as a dispatcher claims: the lease only) by a dispatcher that
    // then died: the claim on the first has lapsed, the claim on the second still runs for an
    // hour.
    let pool = sqlx::PgPool::connect_with(system.db_options().clone()).await.expect("connect");
    let reminders: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT id FROM notifications.messages WHERE patient_id = $1 AND kind = 'reminder' AND channel = 'email'
         ORDER BY due_at",
    )
    .bind(patient.parse::<uuid::Uuid>().expect("uuid"))
    .fetch_all(&pool)
    .await
    .expect("reminders");
    assert_eq!(reminders.len(), 2);
    for (id, lease) in [(reminders[0], "-1 second"), (reminders[1], "1 hour")] {
        sqlx::query(
            "UPDATE notifications.messages SET due_at = now() - interval '1 minute', lease_until = now() + $2::interval
             WHERE id = $1",
        )
        .bind(id)
        .bind(lease)
        .execute(&pool)
        .await
        .expect("claimed");
    }
    system.notifications.resume().await;
    let status = |log: &[Value], id: uuid::Uuid| {
        log.iter().find(|m| m["id"] == id.to_string().as_str()).map(|m| m["status"].clone())
    };
    // The lapsed claim is taken over.
    log_until(&system, &staff.desk, &patient, |log| status(log, reminders[0]) == Some("sent".into())).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(subjects(&emails_to(&email).await, "Reminder"), 1, "sent once, and only the lapsed one");
    let log = log_until(&system, &staff.desk, &patient, |_| true).await;
    assert_eq!(status(&log, reminders[1]), Some("sending".into()), "a running claim is left alone");
}

#[tokio::test]
async fn cancelling_cancels_the_reminders_and_sends_a_notice() {
    let system = TestSystem::start().await;
    let staff = staff(&system).await;
    let doctor = always_working(&system, &staff).await;
    let (patient, email, _) = patient(&system, &staff, false).await;
    let booked = json_of(
        post(&system, "/api/appointments", &staff.desk, booking(&patient, &doctor, days_ahead(6, 9))).await,
        StatusCode::CREATED,
    )
    .await;
    let id = booked["id"].as_str().expect("id");
    log_until(&system, &staff.desk, &patient, |log| of(log, "reminder", "email").len() == 2).await;
    json_of(
        act(&system, &staff.desk, id, "cancel", 1, Some(json!({ "reason": "Patient called" }))).await,
        StatusCode::OK,
    )
    .await;
    // Both emails, however the dispatcher ordered or retried them.
    let log = log_until(&system, &staff.desk, &patient, |log| {
        ["confirmation", "cancellation"]
            .iter()
            .all(|kind| of(log, kind, "email").first().is_some_and(|m| m["status"] == "sent"))
    })
    .await;
    for reminder in of(&log, "reminder", "email").into_iter().chain(of(&log, "reminder", "sms")) {
        assert_eq!(reminder["status"], "cancelled", "{reminder}");
    }
    // The SMS channel has no number: skipped, and said why.
    assert_eq!(of(&log, "cancellation", "sms")[0]["status"], "skipped");
    assert_eq!(of(&log, "cancellation", "sms")[0]["lastError"], "no phone number");
    assert_eq!(
        subjects(&emails_to(&email).await, "Your appointment on"),
        2,
        "the confirmation and the notice"
    );
}

#[tokio::test]
async fn a_patient_who_opted_out_gets_nothing() {
    let system = TestSystem::start().await;
    let staff = staff(&system).await;
    let doctor = always_working(&system, &staff).await;
    let (patient, email, phone) = patient(&system, &staff, true).await;
    let path = format!("/api/notifications/preferences/{patient}");
    let set = send(
        &system,
        reqwest::Method::PUT,
        &path,
        &staff.desk,
        Some(json!({ "email": false, "sms": false })),
    )
    .await;
    assert_eq!(json_of(set, StatusCode::OK).await, json!({ "email": false, "sms": false }));
    json_of(
        post(&system, "/api/appointments", &staff.desk, booking(&patient, &doctor, days_ahead(7, 9))).await,
        StatusCode::CREATED,
    )
    .await;
    let log = log_until(&system, &staff.desk, &patient, |log| {
        ["email", "sms"]
            .iter()
            .all(|c| of(log, "confirmation", c).first().is_some_and(|m| m["status"] == "skipped"))
    })
    .await;
    assert_eq!(of(&log, "confirmation", "email")[0]["lastError"], "the patient does not want email messages");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(subjects(&emails_to(&email).await, "Your appointment"), 0);
    assert!(!texts_to(&phone).await.iter().any(|t| t.contains("appointment")));
    // Billing and analysts may not read the log.
    let analyst = system.token_for("analyst", &[kit::auth::Role::Analyst]).await;
    crate::system::expect_problem(
        system.get(&format!("/api/notifications?patientId={patient}"), &analyst).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    // The trail: the preference change, the staff's reads of the log, the analyst's refusal.
    let pool = sqlx::PgPool::connect_with(system.db_options().clone()).await.expect("connect");
    let rows: Vec<(String, String, Option<uuid::Uuid>)> =
        sqlx::query_as("SELECT action, outcome, patient_id FROM notifications.audit_events ORDER BY id")
            .fetch_all(&pool)
            .await
            .expect("audit rows");
    let patient = Some(patient.parse().expect("uuid"));
    for action in ["set_preferences", "read_log"] {
        assert!(rows.iter().any(|r| r.0 == action && r.1 == "ok" && r.2 == patient), "{action}: {rows:?}");
    }
    assert!(rows.iter().any(|r| r.0 == "read_log" && r.1 == "denied"), "the refusal: {rows:?}");
}

/// The notifications service's statements each handle a batch on tables that start empty:
/// its connections plan every call for its parameters, so a plan made while a table was
/// nearly empty (a sequential scan) is not kept as the table grows. The patients service's
/// searches run on connections of their own that keep one generic plan per statement, so a
/// search is not planned again on every call. Other pools keep PostgreSQL's default.
#[tokio::test]
async fn each_pool_plans_its_statements_as_its_statements_need() {
    let db = kit::testing::TestDatabase::create().await;
    let mode = |pool: sqlx::PgPool| async move {
        sqlx::query_scalar::<_, String>("SHOW plan_cache_mode").fetch_one(&pool).await.expect("show")
    };
    let notifications = notifications::SCHEMA.connect_and_migrate(&db.config()).await.expect("notifications");
    assert_eq!(mode(notifications).await, "force_custom_plan");
    let appointments = appointments::SCHEMA.connect_and_migrate(&db.config()).await.expect("appointments");
    assert_eq!(mode(appointments).await, "auto");
    let patients = patients::SCHEMA.connect_and_migrate(&db.config()).await.expect("patients");
    assert_eq!(mode(patients).await, "auto");
    let searches = patients::SCHEMA.connect_for(&db.config(), patients::SEARCHES).await.expect("searches");
    assert_eq!(searches.options().get_max_connections(), 8, "half the default pool");
    let name: String = sqlx::query_scalar("SELECT current_setting('application_name')")
        .fetch_one(&searches)
        .await
        .expect("name");
    assert_eq!(name, "pms-patients-search");
    assert_eq!(mode(searches).await, "force_generic_plan");
}

/// A dispatcher's claim sets only the lease, so PostgreSQL makes it a heap-only update that
/// writes none of the messages table's five index entries; the delivery log shows claimed
/// messages as `sending`, and they are not claimed again while the lease runs.
#[tokio::test]
async fn a_claim_writes_no_index_entry_and_shows_as_sending() {
    use notifications::{
        store::{LogFilter, Queued, Store},
        templates::Kind,
    };
    let db = kit::testing::TestDatabase::create().await;
    // One connection: the statistics read below are those the claiming connection flushed.
    let config = kit::db::DbConfig { max_connections: 1, ..db.config() };
    let pool = notifications::SCHEMA.connect_and_migrate(&config).await.expect("notifications");
    let store = Store::new(pool.clone());
    let due = OffsetDateTime::now_utc() - time::Duration::seconds(1);
    let queued: Vec<Queued> = (0..4)
        .map(|i| Queued {
            patient_id: uuid::Uuid::new_v4(),
            appointment_id: None,
            kind: Kind::Welcome,
            due_at: due,
            key: format!("claim-test:{i}"),
        })
        .collect();
    let mut tx = pool.begin().await.expect("begin");
    Store::enqueue(&mut tx, &queued).await.expect("enqueue");
    tx.commit().await.expect("commit");

    let lease = time::Duration::seconds(60);
    assert_eq!(store.claim(32, lease).await.expect("claim").len(), 8, "four messages on two channels");
    assert!(
        store.claim(32, lease).await.expect("claim").is_empty(),
        "not claimed twice while the lease runs"
    );
    sqlx::query("SELECT pg_stat_force_next_flush()").execute(&pool).await.expect("flush");
    let (updated, heap_only): (i64, i64) = sqlx::query_as(
        "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relid = 'notifications.messages'::regclass",
    )
    .fetch_one(&pool)
    .await
    .expect("statistics");
    assert_eq!((updated, heap_only), (8, 8), "every claim is a heap-only update");
    let log = store.log(&LogFilter::default(), 50, None).await.expect("log");
    assert_eq!(log.len(), 8);
    assert!(log.iter().all(|m| m.status == "sending"), "{log:?}");
    let filter = LogFilter { status: Some("queued".into()), ..LogFilter::default() };
    assert!(store.log(&filter, 50, None).await.expect("log").is_empty(), "none shows as queued");
}
