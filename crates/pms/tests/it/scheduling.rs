//! Scheduling through the gateway: practitioners and their hours, free times, bookings that
//! never double-book under concurrency, the lifecycle with its history and events, and the
//! patient checks over gRPC (unknown, deactivated, patients unreachable).

use std::time::Duration;

use kit::{auth::Role, testing::consume};
use proto::{Message, events::v1::Envelope};
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::{Date, OffsetDateTime, Weekday, format_description::well_known::Rfc3339, macros::time};
use tokio::task::JoinSet;

use crate::system::{TestSystem, expect_problem};

/// The admin's and the front desk's tokens.
pub(crate) struct Staff {
    pub admin: String,
    pub desk: String,
}

pub(crate) async fn staff(system: &TestSystem) -> Staff {
    Staff { admin: system.admin_token().await, desk: system.token_for("desk", &[Role::Receptionist]).await }
}

pub(crate) async fn send(
    system: &TestSystem,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = system.client.request(method, system.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request")
}

pub(crate) async fn post(system: &TestSystem, path: &str, token: &str, body: Value) -> reqwest::Response {
    send(system, reqwest::Method::POST, path, token, Some(body)).await
}

pub(crate) async fn json_of(response: reqwest::Response, status: StatusCode) -> Value {
    let got = response.status();
    let body = response.text().await.expect("body");
    assert_eq!(got, status, "{body}");
    serde_json::from_str(&body).expect("json")
}

/// A practitioner in `zone` working `hours` (`[[weekday, "HH:MM", "HH:MM"], ...]`).
pub(crate) async fn practitioner(
    system: &TestSystem,
    staff: &Staff,
    zone: &str,
    hours: &[(u8, &str, &str)],
) -> String {
    let body = json!({ "name": "Dr Ana Ruiz", "specialty": "General practice", "timeZone": zone,
                       "location": "Room 3" });
    let created =
        json_of(post(system, "/api/practitioners", &staff.admin, body).await, StatusCode::CREATED).await;
    let id = created["id"].as_str().expect("id").to_owned();
    let hours: Vec<Value> =
        hours.iter().map(|(d, s, e)| json!({ "weekday": d, "start": s, "end": e })).collect();
    let path = format!("/api/practitioners/{id}/working-hours");
    let response =
        send(system, reqwest::Method::PUT, &path, &staff.admin, Some(json!({ "hours": hours }))).await;
    json_of(response, StatusCode::OK).await;
    id
}

/// Every day, all day, in UTC.
pub(crate) async fn always_working(system: &TestSystem, staff: &Staff) -> String {
    let week: Vec<(u8, &str, &str)> = (1..=7).map(|d| (d, "00:00", "24:00")).collect();
    practitioner(system, staff, "UTC", &week).await
}

async fn patient(system: &TestSystem, staff: &Staff, given: &str) -> String {
    let body = json!({ "givenName": given, "familyName": "Booked", "birthDate": "1980-02-03", "sex": "male",
                       "phone": "+34600111222" });
    let created = json_of(post(system, "/api/patients", &staff.desk, body).await, StatusCode::CREATED).await;
    created["id"].as_str().expect("id").to_owned()
}

/// Deactivates a patient at version 1 through the gateway.
async fn deactivate(system: &TestSystem, staff: &Staff, patient: &str) {
    let path = format!("/api/patients/{patient}");
    let response =
        system.client.delete(system.url(&path)).bearer_auth(&staff.desk).header("if-match", "\"1\"");
    assert_eq!(response.send().await.expect("request").status(), StatusCode::NO_CONTENT);
}

pub(crate) fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).expect("format")
}

/// `days` days from now at `hour`:00 UTC.
pub(crate) fn days_ahead(days: i64, hour: u8) -> OffsetDateTime {
    (OffsetDateTime::now_utc().date() + time::Duration::days(days))
        .with_hms(hour, 0, 0)
        .expect("time")
        .assume_utc()
}

/// The first Monday at least a week from now.
fn next_monday() -> Date {
    let mut day = OffsetDateTime::now_utc().date() + time::Duration::days(7);
    while day.weekday() != Weekday::Monday {
        day = day.next_day().expect("day");
    }
    day
}

pub(crate) fn booking(patient: &str, practitioner: &str, start: OffsetDateTime) -> Value {
    json!({ "patientId": patient, "practitionerId": practitioner, "start": rfc3339(start), "type": "consultation",
            "reason": "Check-up" })
}

/// Sends `bodies` all at once; in any order, each answer's status with the practitioner its
/// booking asked for and, for a 409, whose appointment it says is in the way.
async fn concurrently(system: &TestSystem, token: &str, bodies: Vec<Value>) -> Vec<Answer> {
    let mut requests = JoinSet::new();
    for body in bodies {
        let (client, url, token) = (system.client.clone(), system.url("/api/appointments"), token.to_owned());
        requests.spawn(async move {
            let response = client.post(url).bearer_auth(token).json(&body).send().await.expect("request");
            let status = response.status();
            let mut taken = None;
            if status == StatusCode::CONFLICT {
                let problem: Value = response.json().await.expect("problem");
                assert_eq!(problem["errors"][0]["pointer"], "/start", "{problem}");
                let detail = problem["errors"][0]["detail"].as_str().expect("detail");
                taken = Some(if detail.ends_with("of the practitioner") {
                    Taken::Practitioner
                } else {
                    assert!(detail.ends_with("of the patient"), "{problem}");
                    Taken::Patient
                });
            }
            let practitioner = body["practitionerId"].as_str().expect("practitioner").to_owned();
            Answer { status, practitioner, taken }
        });
    }
    requests.join_all().await
}

/// Whose appointment a 409 names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Taken {
    Practitioner,
    Patient,
}

#[derive(Debug)]
struct Answer {
    status: StatusCode,
    practitioner: String,
    taken: Option<Taken>,
}

fn count(answers: &[Answer], status: StatusCode) -> usize {
    answers.iter().filter(|a| a.status == status).count()
}

#[tokio::test]
async fn fifty_concurrent_bookings_of_one_slot_give_one_201_and_49_409s() {
    let system = TestSystem::start().await;
    let staff = staff(&system).await;
    let doctor = always_working(&system, &staff).await;
    let mut patients = Vec::new();
    for i in 0..50 {
        patients.push(patient(&system, &staff, &format!("Racer{i}")).await);
    }
    let start = days_ahead(8, 10);
    let bodies = patients.iter().map(|p| booking(p, &doctor, start)).collect();
    let answers = concurrently(&system, &staff.desk, bodies).await;
    assert_eq!(
        (count(&answers, StatusCode::CREATED), count(&answers, StatusCode::CONFLICT)),
        (1, 49),
        "{answers:?}"
    );
    assert!(
        answers.iter().all(|a| a.status == StatusCode::CREATED || a.taken == Some(Taken::Practitioner)),
        "every refusal names the practitioner's appointment: {answers:?}"
    );
    let day = format!("/api/appointments?practitionerId={doctor}&date={}", start.date());
    let listed = json_of(system.get(&day, &staff.desk).await, StatusCode::OK).await;
    assert_eq!(listed["appointments"].as_array().expect("list").len(), 1);
}

#[tokio::test]
async fn one_patient_is_never_with_two_practitioners_at_once_but_back_to_back_is_fine() {
    let system = TestSystem::start().await;
    let staff = staff(&system).await;
    let (first, second) = (always_working(&system, &staff).await, always_working(&system, &staff).await);
    let patient = patient(&system, &staff, "Busy").await;
    let start = days_ahead(9, 9);
    let bodies =
        (0..50).map(|i| booking(&patient, if i % 2 == 0 { &first } else { &second }, start)).collect();
    let answers = concurrently(&system, &staff.desk, bodies).await;
    assert_eq!(
        (count(&answers, StatusCode::CREATED), count(&answers, StatusCode::CONFLICT)),
        (1, 49),
        "{answers:?}"
    );
    // A refused booking with the winner's practitioner names the practitioner's appointment;
    // one with the other practitioner, who is free then, names the patient's.
    let winner = answers.iter().find(|a| a.status == StatusCode::CREATED).expect("one booked");
    for answer in answers.iter().filter(|a| a.status == StatusCode::CONFLICT) {
        let expected =
            if answer.practitioner == winner.practitioner { Taken::Practitioner } else { Taken::Patient };
        assert_eq!(answer.taken, Some(expected), "{answers:?}");
    }
    // Ending exactly when the next starts is no overlap, for the patient and the practitioner.
    let next = start + time::Duration::minutes(30);
    json_of(
        post(&system, "/api/appointments", &staff.desk, booking(&patient, &first, next)).await,
        StatusCode::CREATED,
    )
    .await;
    let other = self::patient(&system, &staff, "Next").await;
    let after = next + time::Duration::minutes(30);
    json_of(
        post(&system, "/api/appointments", &staff.desk, booking(&other, &first, after)).await,
        StatusCode::CREATED,
    )
    .await;
}

#[tokio::test]
async fn availability_offers_only_free_working_times_and_out_of_hours_bookings_are_refused() {
    let system = TestSystem::start().await;
    let staff = staff(&system).await;
    let weekdays: Vec<(u8, &str, &str)> = (1..=5).map(|d| (d, "09:00", "12:00")).collect();
    let doctor = practitioner(&system, &staff, "Europe/Madrid", &weekdays).await;
    let patient = patient(&system, &staff, "Slot").await;
    let monday = next_monday();
    let madrid = kit::zone::Zone::parse("Europe/Madrid").expect("zone");
    let ten = madrid.at(monday, 10 * 60);
    json_of(
        post(&system, "/api/appointments", &staff.desk, booking(&patient, &doctor, ten)).await,
        StatusCode::CREATED,
    )
    .await;

    let (from, to) = (madrid.at(monday, 0), madrid.at(monday + time::Duration::days(7), 0));
    let path = format!(
        "/api/practitioners/{doctor}/availability?from={}&to={}&type=consultation",
        rfc3339(from).replace('+', "%2B"),
        rfc3339(to).replace('+', "%2B")
    );
    let free = json_of(system.get(&path, &staff.desk).await, StatusCode::OK).await;
    assert_eq!(free["timeZone"], "Europe/Madrid");
    assert_eq!(free["minutes"], 30);
    let slots = free["slots"].as_array().expect("slots");
    // 09:00 to 11:30 every 15 minutes is 11 starts a day, five days; 09:45, 10:00 and 10:15
    // on Monday overlap the booking.
    assert_eq!(slots.len(), 5 * 11 - 3);
    for slot in slots {
        let start = OffsetDateTime::parse(slot["start"].as_str().expect("start"), &Rfc3339).expect("instant");
        let local = madrid.local(start);
        assert_eq!(local.offset(), start.offset(), "shown in the practitioner's zone: {slot}");
        assert!(local.time() >= time!(09:00) && local.time() <= time!(11:30), "{slot}");
        assert!(!matches!(local.weekday(), Weekday::Saturday | Weekday::Sunday), "{slot}");
        assert!(
            start + time::Duration::minutes(30) <= ten || start >= ten + time::Duration::minutes(30),
            "{slot}"
        );
    }
    // Out of hours: a Saturday, and a consultation running past 12:00.
    for start in [madrid.at(monday + time::Duration::days(5), 10 * 60), madrid.at(monday, 11 * 60 + 45)] {
        let problem = expect_problem(
            post(&system, "/api/appointments", &staff.desk, booking(&patient, &doctor, start)).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(problem["errors"][0]["pointer"], "/start", "{problem}");
    }
    // A day off takes its times away.
    let off = json!({ "date": (monday + time::Duration::days(1)).to_string(), "kind": "off", "reason": "Training" });
    let path_off = format!("/api/practitioners/{doctor}/exceptions");
    json_of(post(&system, &path_off, &staff.admin, off).await, StatusCode::CREATED).await;
    let free = json_of(system.get(&path, &staff.desk).await, StatusCode::OK).await;
    assert_eq!(free["slots"].as_array().expect("slots").len(), 4 * 11 - 3);
    // Several exceptions in the window: Wednesday off until 10:00 (the consultations starting
    // 09:00 to 09:45 go), and extra hours on Saturday from 10:00 to 11:00 (10:00, 10:15 and
    // 10:30 come).
    let (wednesday, saturday) = (monday + time::Duration::days(2), monday + time::Duration::days(5));
    for exception in [
        json!({ "date": wednesday.to_string(), "kind": "off", "start": "09:00", "end": "10:00" }),
        json!({ "date": saturday.to_string(), "kind": "extra", "start": "10:00", "end": "11:00" }),
    ] {
        json_of(post(&system, &path_off, &staff.admin, exception).await, StatusCode::CREATED).await;
    }
    let free = json_of(system.get(&path, &staff.desk).await, StatusCode::OK).await;
    let starts: Vec<String> = free["slots"]
        .as_array()
        .expect("slots")
        .iter()
        .map(|slot| {
            let start =
                OffsetDateTime::parse(slot["start"].as_str().expect("start"), &Rfc3339).expect("instant");
            let local = madrid.local(start);
            format!("{} {:02}:{:02}", local.weekday(), local.hour(), local.minute())
        })
        .collect();
    assert_eq!(starts.len(), 4 * 11 - 3 - 4 + 3, "{starts:?}");
    let wednesday_starts: Vec<&String> = starts.iter().filter(|s| s.starts_with("Wednesday")).collect();
    assert_eq!(wednesday_starts.first().map(|s| s.as_str()), Some("Wednesday 10:00"), "{starts:?}");
    assert_eq!(wednesday_starts.len(), 7, "{starts:?}");
    assert_eq!(
        starts.iter().filter(|s| s.starts_with("Saturday")).collect::<Vec<_>>(),
        ["Saturday 10:00", "Saturday 10:15", "Saturday 10:30"]
    );
    // And the extra hours can be booked; the time taken off cannot.
    let extra = madrid.at(saturday, 10 * 60);
    json_of(
        post(&system, "/api/appointments", &staff.desk, booking(&patient, &doctor, extra)).await,
        StatusCode::CREATED,
    )
    .await;
    let problem = expect_problem(
        post(
            &system,
            "/api/appointments",
            &staff.desk,
            booking(&patient, &doctor, madrid.at(wednesday, 9 * 60)),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem["errors"][0]["pointer"], "/start", "{problem}");
}

#[tokio::test]
async fn free_times_from_now_keep_the_grid_of_the_working_hours() {
    let system = TestSystem::start().await;
    let staff = staff(&system).await;
    // Open around the clock: today's free times start now, yet on the quarter hours.
    let doctor = always_working(&system, &staff).await;
    let path = format!("/api/practitioners/{doctor}/availability?type=consultation");
    let free = json_of(system.get(&path, &staff.desk).await, StatusCode::OK).await;
    let slots = free["slots"].as_array().expect("slots");
    assert!(slots.len() > 600, "a week around the clock: {}", slots.len());
    let first = OffsetDateTime::parse(slots[0]["start"].as_str().expect("start"), &Rfc3339).expect("instant");
    assert!(first >= OffsetDateTime::now_utc() - time::Duration::minutes(1), "not in the past: {first}");
    for slot in slots {
        let start = OffsetDateTime::parse(slot["start"].as_str().expect("start"), &Rfc3339).expect("instant");
        assert!(
            start.minute().is_multiple_of(15) && start.second() == 0 && start.nanosecond() == 0,
            "{slot}"
        );
    }
}

#[tokio::test]
async fn hours_follow_the_clocks_on_the_day_they_change() {
    let system = TestSystem::start().await;
    let staff = staff(&system).await;
    let every_day: Vec<(u8, &str, &str)> = (1..=7).map(|d| (d, "09:00", "10:00")).collect();
    let doctor = practitioner(&system, &staff, "Europe/Madrid", &every_day).await;
    // Clocks in Madrid go forward on Sunday 28 March 2027.
    let path = format!(
        "/api/practitioners/{doctor}/availability?from=2027-03-27T00:00:00Z&to=2027-03-29T00:00:00Z&type=consultation"
    );
    let free = json_of(system.get(&path, &staff.desk).await, StatusCode::OK).await;
    let starts: Vec<&str> = free["slots"]
        .as_array()
        .expect("slots")
        .iter()
        .map(|s| s["start"].as_str().expect("start"))
        .collect();
    assert_eq!(
        starts,
        [
            "2027-03-27T09:00:00+01:00",
            "2027-03-27T09:15:00+01:00",
            "2027-03-27T09:30:00+01:00",
            "2027-03-28T09:00:00+02:00",
            "2027-03-28T09:15:00+02:00",
            "2027-03-28T09:30:00+02:00",
        ]
    );
    let patient = patient(&system, &staff, "Spring").await;
    let at = OffsetDateTime::parse("2027-03-28T09:30:00+02:00", &Rfc3339).expect("instant");
    let booked = json_of(
        post(&system, "/api/appointments", &staff.desk, booking(&patient, &doctor, at)).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(booked["start"], "2027-03-28T09:30:00+02:00");
    assert_eq!(booked["end"], "2027-03-28T10:00:00+02:00");
}

#[tokio::test]
async fn unknown_and_deactivated_patients_are_refused_and_an_unreachable_directory_answers_503() {
    let system = TestSystem::start().await;
    let staff = staff(&system).await;
    let doctor = always_working(&system, &staff).await;
    let start = days_ahead(10, 11);
    let unknown = booking(&uuid::Uuid::now_v7().to_string(), &doctor, start);
    let problem = expect_problem(
        post(&system, "/api/appointments", &staff.desk, unknown).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem["errors"][0]["pointer"], "/patientId");

    let gone = patient(&system, &staff, "Gone").await;
    deactivate(&system, &staff, &gone).await;
    let problem = expect_problem(
        post(&system, "/api/appointments", &staff.desk, booking(&gone, &doctor, start)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem["errors"][0]["detail"], "the patient record is deactivated");

    // A second appointments service whose patients service does not answer: nothing is booked.
    let mut config = system.appointments.clone();
    let (closed, closed_url) = kit::testing::listener().await;
    drop(closed);
    config.patients_url = closed_url;
    let (listener, blind_url) = kit::testing::listener().await;
    let shutdown = kit::shutdown::Shutdown::default();
    tokio::spawn(appointments::run(config, listener, shutdown.clone()));
    let patient = patient(&system, &staff, "Unchecked").await;
    let response = system
        .client
        .post(format!("{blind_url}/api/appointments"))
        .bearer_auth(&staff.desk)
        .json(&booking(&patient, &doctor, start))
        .send()
        .await
        .expect("request");
    let problem = expect_problem(response, StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(problem["detail"].as_str().expect("detail").contains("nothing was booked"));
    shutdown.trigger();
    let listed = json_of(
        system.get(&format!("/api/appointments?patientId={patient}"), &staff.desk).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["appointments"], json!([]));
}

pub(crate) async fn act(
    system: &TestSystem,
    token: &str,
    id: &str,
    action: &str,
    version: i64,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = system
        .client
        .post(system.url(&format!("/api/appointments/{id}/{action}")))
        .bearer_auth(token)
        .header("if-match", format!("\"{version}\""));
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request")
}

#[tokio::test]
async fn the_lifecycle_moves_forward_only_keeps_history_and_announces_each_change() {
    let system = TestSystem::start().await;
    let staff = staff(&system).await;
    let clinician = system.token_for("doc", &[Role::Clinician]).await;
    let doctor = always_working(&system, &staff).await;
    let patient = patient(&system, &staff, "Cycle").await;
    let start = days_ahead(12, 9);
    let booked = json_of(
        post(&system, "/api/appointments", &staff.desk, booking(&patient, &doctor, start)).await,
        StatusCode::CREATED,
    )
    .await;
    let id = booked["id"].as_str().expect("id").to_owned();
    assert_eq!((booked["status"].as_str(), booked["version"].as_i64()), (Some("booked"), Some(1)));

    // Rescheduling keeps the old time in the history; a stale If-Match is refused.
    let later = start + time::Duration::hours(2);
    let moved = json_of(
        act(&system, &staff.desk, &id, "reschedule", 1, Some(json!({ "start": rfc3339(later) }))).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(moved["start"], rfc3339(later));
    assert_eq!(moved["end"], rfc3339(later + time::Duration::minutes(30)));
    expect_problem(
        act(&system, &staff.desk, &id, "check-in", 1, None).await,
        StatusCode::PRECONDITION_FAILED,
    )
    .await;
    // The old time is free again: someone else takes it.
    let other = self::patient(&system, &staff, "Other").await;
    json_of(
        post(&system, "/api/appointments", &staff.desk, booking(&other, &doctor, start)).await,
        StatusCode::CREATED,
    )
    .await;

    json_of(act(&system, &clinician, &id, "check-in", 2, None).await, StatusCode::OK).await;
    expect_problem(
        act(&system, &clinician, &id, "cancel", 3, Some(json!({ "reason": "Too late" }))).await,
        StatusCode::CONFLICT,
    )
    .await;
    let done = json_of(act(&system, &clinician, &id, "complete", 3, None).await, StatusCode::OK).await;
    assert_eq!((done["status"].as_str(), done["version"].as_i64()), (Some("completed"), Some(4)));
    expect_problem(act(&system, &clinician, &id, "no-show", 4, None).await, StatusCode::CONFLICT).await;

    let history =
        json_of(system.get(&format!("/api/appointments/{id}/history"), &staff.desk).await, StatusCode::OK)
            .await;
    let versions = history["versions"].as_array().expect("versions");
    let statuses: Vec<&str> =
        versions.iter().map(|v| v["appointment"]["status"].as_str().expect("status")).collect();
    assert_eq!(statuses, ["completed", "checked_in", "booked", "booked"]);
    assert_eq!(versions[3]["appointment"]["start"], rfc3339(start), "the first version keeps the old time");

    // A cancelled one frees its time, and each announced change is on the topic, keyed by id.
    let third = self::patient(&system, &staff, "Third").await;
    let cancelled_at = start + time::Duration::hours(4);
    let b = json_of(
        post(&system, "/api/appointments", &staff.desk, booking(&third, &doctor, cancelled_at)).await,
        StatusCode::CREATED,
    )
    .await;
    let b_id = b["id"].as_str().expect("id");
    let cancelled = json_of(
        act(&system, &staff.desk, b_id, "cancel", 1, Some(json!({ "reason": "Patient called" }))).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(cancelled["cancelReason"], "Patient called");
    json_of(
        post(&system, "/api/appointments", &staff.desk, booking(&patient, &doctor, cancelled_at)).await,
        StatusCode::CREATED,
    )
    .await;

    let records = consume(&system.broker.config(), "appointments.v1", 8, Duration::from_millis(300)).await;
    let events: Vec<(String, String)> = records
        .iter()
        .map(|r| {
            let envelope = Envelope::decode(r.payload.as_slice()).expect("envelope");
            assert_eq!(envelope.aggregate_id, r.key);
            (r.key.clone(), envelope.event_type.rsplit('.').next().unwrap_or_default().to_owned())
        })
        .collect();
    let of = |key: &str| events.iter().filter(|(k, _)| k == key).map(|(_, t)| t.as_str()).collect::<Vec<_>>();
    assert_eq!(of(&id), ["AppointmentBooked", "AppointmentRescheduled", "AppointmentCompleted"]);
    assert_eq!(of(b_id), ["AppointmentBooked", "AppointmentCancelled"]);
    assert_eq!(events.len(), 7, "{events:?}");
}

#[tokio::test]
async fn a_deactivated_patients_future_appointments_are_cancelled() {
    let system = TestSystem::start().await;
    let staff = staff(&system).await;
    let doctor = always_working(&system, &staff).await;
    let patient = patient(&system, &staff, "Leaving").await;
    let mut ids = Vec::new();
    for days in [13, 14] {
        let booked = json_of(
            post(&system, "/api/appointments", &staff.desk, booking(&patient, &doctor, days_ahead(days, 15)))
                .await,
            StatusCode::CREATED,
        )
        .await;
        ids.push(booked["id"].as_str().expect("id").to_owned());
    }
    deactivate(&system, &staff, &patient).await;
    for id in ids {
        let mut last = Value::Null;
        for _ in 0..200 {
            last = json_of(system.get(&format!("/api/appointments/{id}"), &staff.desk).await, StatusCode::OK)
                .await;
            if last["status"] == "cancelled" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(last["status"], "cancelled", "{last}");
        assert_eq!(last["cancelReason"], appointments::deactivations::REASON);
    }
}

#[tokio::test]
async fn roles_decide_who_books_and_who_manages_schedules() {
    let system = TestSystem::start().await;
    let staff = staff(&system).await;
    let doctor = always_working(&system, &staff).await;
    let patient = patient(&system, &staff, "Roles").await;
    let clinician = system.token_for("doc", &[Role::Clinician]).await;
    let booked = json_of(
        post(&system, "/api/appointments", &clinician, booking(&patient, &doctor, days_ahead(15, 8))).await,
        StatusCode::CREATED,
    )
    .await;
    let id = booked["id"].as_str().expect("id").to_owned();
    json_of(system.get(&format!("/api/appointments/{id}"), &staff.desk).await, StatusCode::OK).await;
    for role in [Role::Billing, Role::Analyst] {
        let token = system.token_for(&format!("{role:?}").to_lowercase(), &[role]).await;
        expect_problem(system.get("/api/appointments", &token).await, StatusCode::FORBIDDEN).await;
        expect_problem(
            post(&system, "/api/appointments", &token, booking(&patient, &doctor, days_ahead(15, 9))).await,
            StatusCode::FORBIDDEN,
        )
        .await;
        expect_problem(
            system.get(&format!("/api/practitioners/{doctor}/availability"), &token).await,
            StatusCode::FORBIDDEN,
        )
        .await;
    }
    let body = json!({ "name": "Dr Who", "specialty": "Time", "timeZone": "UTC" });
    expect_problem(
        post(&system, "/api/practitioners", &staff.desk, body.clone()).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let bad_zone = json!({ "name": "Dr Who", "specialty": "Time", "timeZone": "Mars/Base" });
    let problem = expect_problem(
        post(&system, "/api/practitioners", &staff.admin, bad_zone).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(problem["errors"][0]["pointer"], "/timeZone");
    let today = json_of(system.get("/api/appointments/today", &staff.desk).await, StatusCode::OK).await;
    assert_eq!(today["appointments"], json!([]), "nothing booked for today");

    // Every access is in the trail: who, which appointment and whose, and every refusal.
    let pool = sqlx::PgPool::connect_with(system.db_options().clone()).await.expect("connect");
    type AuditRow = (String, String, Vec<String>, Option<uuid::Uuid>, Option<uuid::Uuid>);
    let rows: Vec<AuditRow> = sqlx::query_as(
        "SELECT action, outcome, actor_roles, subject_id, patient_id FROM appointments.audit_events ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .expect("audit rows");
    let (id, patient) = (Some(id.parse().expect("uuid")), Some(patient.parse().expect("uuid")));
    let has = |action: &str, outcome: &str, role: &str| {
        rows.iter().any(|r| r.0 == action && r.1 == outcome && r.2.iter().any(|x| x == role))
    };
    // The booking's row names the clinician who booked (bookings are committed in batches,
    // each row with its own request's caller).
    let clinician_booked = |r: &AuditRow| r.2 == ["clinician"];
    assert!(
        rows.iter().any(|r| r.0 == "book"
            && r.1 == "ok"
            && r.3 == id
            && r.4 == patient
            && clinician_booked(r)),
        "{rows:?}"
    );
    assert!(rows.iter().any(|r| r.0 == "read" && r.1 == "ok" && r.3 == id && r.4 == patient), "{rows:?}");
    for role in ["billing", "analyst"] {
        for action in ["list", "book", "read_schedules"] {
            assert!(has(action, "denied", role), "{action} denied for {role}: {rows:?}");
        }
    }
    assert!(has("manage_schedules", "denied", "receptionist"), "{rows:?}");
    assert!(has("list", "ok", "receptionist"), "the today view: {rows:?}");
}
