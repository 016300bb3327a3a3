//! Hostile input, to every parameter and body field of every operation the OpenAPI document
//! lists: NUL and other control characters, lone surrogates, malformed percent escapes and
//! 10 000-character strings must all be refused with a 4xx, never answered with a 5xx.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::system::TestSystem;

/// Raw (already percent-encoded) values for query and path parameters.
fn raw_values() -> Vec<String> {
    let mut values: Vec<String> =
        ["%00", "a%00b", "%1B%5B2J", "%ED%A0%80", "%zz", "%", "%E0%A4", "%FF%FE"].map(String::from).into();
    values.push("x".repeat(10_000));
    values
}

/// Hostile JSON string values for body fields.
fn json_values() -> Vec<Value> {
    vec![json!("\u{0}"), json!("a\u{0}b"), json!("\u{1b}[2J"), json!("x".repeat(10_000)), json!("\u{85}")]
}

/// A valid body for each request schema, so that one hostile field is the only thing wrong.
fn base_body(schema: &str) -> Value {
    match schema {
        "LoginRequest" => json!({ "email": "admin@test.example", "password": "wrong-password-123" }),
        "RefreshRequest" => json!({ "refreshToken": "not-a-token" }),
        "NewUser" => {
            json!({ "email": "fuzz@test.example", "displayName": "Fuzz", "password": "fuzz-password-123", "roles": ["clinician"] })
        }
        "UserPatch" => json!({ "displayName": "Fuzz" }),
        "SearchRequest" => json!({ "name": "fuzz", "birthDate": "1980-01-01", "email": "fuzz@example.org" }),
        "PasswordChange" => {
            json!({ "currentPassword": "admin-password-123", "newPassword": "brand-new-password" })
        }
        "PatientInput" => json!({
            "givenName": "Fuzz", "familyName": "Tester", "birthDate": "1980-01-01", "sex": "other",
            "email": "fuzz@example.org", "phone": "+4930123456",
            "address": { "line": ["Street 1"], "city": "Berlin", "state": "BE", "postalCode": "10115", "country": "DE" }
        }),
        "PractitionerInput" => json!({
            "name": "Dr Fuzz", "specialty": "Testing", "email": "dr.fuzz@example.org", "phone": "+4930123456",
            "location": "Room 1", "timeZone": "Europe/Berlin", "active": true
        }),
        "WorkingHours" => json!({ "hours": [{ "weekday": 1, "start": "09:00", "end": "13:00" }] }),
        "ExceptionInput" => {
            json!({ "date": "2027-04-02", "kind": "off", "start": "10:00", "end": "12:00", "reason": "Fuzz" })
        }
        "AppointmentTypeInput" => json!({ "name": "Fuzz visit", "minutes": 20 }),
        "BookingInput" => json!({
            "patientId": "018f0000-0000-7000-8000-000000000000", "practitionerId": "018f0000-0000-7000-8000-000000000000",
            "start": "2027-01-11T09:30:00+01:00", "type": "consultation", "end": "2027-01-11T10:00:00+01:00", "reason": "Fuzz"
        }),
        "RescheduleInput" => {
            json!({ "start": "2027-01-12T10:00:00+01:00", "end": "2027-01-12T10:30:00+01:00" })
        }
        "CancelInput" => json!({ "reason": "Fuzz" }),
        "Preferences" => json!({ "email": true, "sms": false }),
        other => panic!("no base body for {other}: add one"),
    }
}

/// Every string leaf of `value`, as a JSON pointer.
fn string_pointers(value: &Value, at: &str, out: &mut Vec<String>) {
    match value {
        Value::String(_) => out.push(at.to_owned()),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                string_pointers(item, &format!("{at}/{i}"), out);
            }
        }
        Value::Object(members) => {
            for (key, item) in members {
                string_pointers(item, &format!("{at}/{key}"), out);
            }
        }
        _ => {}
    }
}

struct Call {
    method: Method,
    path: String,
    body: Option<String>,
    what: String,
    /// A hostile value for a header parameter (`If-Match`), instead of a valid one.
    header: Option<(String, String)>,
}

/// Hostile header values that HTTP can carry at all (no NUL or line breaks).
fn header_values() -> Vec<String> {
    vec!["%00".into(), "\"1\", \"2\"".into(), "W/\"1\"".into(), "*".into(), "\"".into(), "x".repeat(10_000)]
}

#[tokio::test]
async fn hostile_input_to_every_parameter_of_every_operation_never_answers_5xx() {
    let system = TestSystem::start().await;
    let admin = system.admin_token().await;
    let doc: Value =
        system.client.get(system.url("/openapi.json")).send().await.expect("doc").json().await.expect("json");
    let patient = system
        .client
        .post(system.url("/api/patients"))
        .bearer_auth(&admin)
        .json(&base_body("PatientInput"))
        .send()
        .await
        .expect("register");
    assert_eq!(patient.status(), StatusCode::CREATED);
    let id = patient.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned();

    let mut calls = Vec::new();
    for (template, operations) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in operations.as_object().expect("operations") {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let path = template.replace("{id}", &id);
            let schema = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .and_then(|r| r.rsplit('/').next());
            let body = schema.map(base_body);
            let body_text = body.as_ref().map(Value::to_string);
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let name = parameter["name"].as_str().expect("name");
                for raw in raw_values() {
                    let (path, what) = match parameter["in"].as_str() {
                        Some("query") => (format!("{path}?{name}={raw}"), format!("query {name}")),
                        Some("path") => {
                            (template.replace(&format!("{{{name}}}"), &raw), format!("path {name}"))
                        }
                        _ => continue,
                    };
                    calls.push(Call {
                        method: method.clone(),
                        path,
                        body: body_text.clone(),
                        what,
                        header: None,
                    });
                }
                if parameter["in"] == "header" {
                    for value in header_values() {
                        calls.push(Call {
                            method: method.clone(),
                            path: path.clone(),
                            body: body_text.clone(),
                            what: format!("header {name}"),
                            header: Some((name.to_owned(), value)),
                        });
                    }
                }
            }
            let Some(body) = body else { continue };
            let mut pointers = Vec::new();
            string_pointers(&body, "", &mut pointers);
            for pointer in pointers {
                for value in json_values() {
                    let mut hostile = body.clone();
                    *hostile.pointer_mut(&pointer).expect("pointer") = value;
                    calls.push(Call {
                        method: method.clone(),
                        path: path.clone(),
                        body: Some(hostile.to_string()),
                        what: format!("body {pointer}"),
                        header: None,
                    });
                }
                // A lone surrogate can only be written as an escape: JSON text, not a Value.
                let lone = body.to_string().replacen(
                    &format!("{}", body.pointer(&pointer).expect("pointer")),
                    "\"\\ud800\"",
                    1,
                );
                calls.push(Call {
                    method: method.clone(),
                    path: path.clone(),
                    body: Some(lone),
                    what: format!("body {pointer} lone surrogate"),
                    header: None,
                });
            }
        }
    }
    assert!(calls.len() > 300, "every operation was reached: {}", calls.len());
    for call in calls {
        let mut request =
            system.client.request(call.method.clone(), system.url(&call.path)).bearer_auth(&admin);
        request = match &call.header {
            Some((name, value)) => request.header(name.as_str(), value.as_str()),
            None => request.header("if-match", "\"1\""),
        };
        let sent = call.body.as_deref().unwrap_or("").chars().take(80).collect::<String>();
        if let Some(body) = call.body {
            request = request.header("content-type", "application/json").body(body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        assert!(
            status.is_client_error() || status.is_success(),
            "{} {} ({}, body {sent}) answered {status}: {}",
            call.method,
            call.path.chars().take(120).collect::<String>(),
            call.what,
            response.text().await.unwrap_or_default().chars().take(300).collect::<String>(),
        );
    }
}
