//! Search: typo tolerance, ranking, exact filters, and cursor paging under concurrent inserts.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_fields, expect_problem, patient};

#[tokio::test]
async fn a_typo_finds_the_name() {
    let app = TestApp::spawn().await;
    app.register_named("John", "Smith").await;
    app.register_named("Maria", "Smithson").await;
    app.register_named("Peter", "Jones").await;
    assert_eq!(app.search_families("name=Jhon").await, ["John Smith"]);
    assert_eq!(app.search_families("name=smitson").await, ["Maria Smithson"]);
    assert_eq!(app.search_families("name=jhon%20smith").await, ["John Smith"]);
    assert!(app.search_families("name=xylophone").await.is_empty());
}

#[tokio::test]
async fn case_and_accents_do_not_matter() {
    let app = TestApp::spawn().await;
    app.register_named("José", "Müller").await;
    app.register_named("Sean", "O'Brien").await;
    assert_eq!(app.search_families("name=jose").await, ["José Müller"]);
    assert_eq!(app.search_families("name=MULLER").await, ["José Müller"]);
    assert_eq!(app.search_families("name=M%C3%BCller").await, ["José Müller"]);
    assert_eq!(app.search_families("name=obrien").await, ["Sean O'Brien"]);
}

#[tokio::test]
async fn exact_matches_rank_before_prefixes_before_typos() {
    let app = TestApp::spawn().await;
    // Registered in an order unlike the expected ranking.
    app.register_named("Jon", "Adams").await; // typo of "john"
    app.register_named("Johnny", "Baker").await; // "john" is a prefix
    app.register_named("John", "Young").await; // exact
    app.register_named("John", "Clark").await; // exact
    app.register_named("Peter", "Johnson").await; // prefix via the family name
    app.register_named("Mary", "Brown").await; // no match
    assert_eq!(
        app.search_families("name=john").await,
        ["John Clark", "John Young", "Johnny Baker", "Peter Johnson", "Jon Adams"]
    );
}

#[tokio::test]
async fn exact_filters_find_one_patient() {
    let app = TestApp::spawn().await;
    let mut body = patient("Filter", "Target");
    body["birthDate"] = json!("1961-07-04");
    body["email"] = json!("Target@Example.org");
    body["phone"] = json!("+1 555 010 2222");
    let target = app.register(&body).await;
    app.register_named("Other", "Person").await;
    let mrn = target["mrn"].as_str().expect("mrn").to_owned();

    for query in [
        "birthDate=1961-07-04".to_owned(),
        format!("mrn={mrn}"),
        "email=target@EXAMPLE.org".to_owned(),
        "phone=%2B15550102222".to_owned(),
        "name=target&birthDate=1961-07-04".to_owned(),
    ] {
        let page = app.search(&query).await;
        let items = page["items"].as_array().expect("items");
        assert_eq!(items.len(), 1, "{query}");
        assert_eq!(items[0]["id"], target["id"], "{query}");
    }
    assert!(app.search("name=target&birthDate=1961-07-05").await["items"].as_array().expect("items").is_empty());
}

#[tokio::test]
async fn a_mistyped_mrn_is_422_not_an_empty_result() {
    let app = TestApp::spawn().await;
    let target = app.register(&patient("Card", "Holder")).await;
    let mrn = target["mrn"].as_str().expect("mrn");
    let mut digits: Vec<char> = mrn.chars().collect();
    digits.swap(3, 4);
    if digits[3] == digits[4] {
        digits[3] = if digits[3] == '9' { '0' } else { '9' };
    }
    let typo: String = digits.into_iter().collect();
    let problem = expect_problem(app.get(&format!("/api/patients?mrn={typo}")).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(error_fields(&problem), ["mrn"]);
    assert!(problem["errors"][0]["detail"].as_str().expect("detail").contains("check digit"));
}

async fn all_pages(app: &TestApp, query: &str, limit: u32) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = format!("{query}&limit={limit}");
        if let Some(c) = &cursor {
            q.push_str(&format!("&cursor={c}"));
        }
        let page: Value = app.search(&q).await;
        let items = page["items"].as_array().expect("items");
        assert!(items.len() <= limit as usize);
        ids.extend(items.iter().map(|p| p["id"].as_str().expect("id").to_owned()));
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return ids,
        }
    }
}

#[tokio::test]
async fn paging_has_no_duplicates_or_gaps_while_rows_are_inserted() {
    let app = TestApp::spawn().await;
    let mut before = HashSet::new();
    for i in 0..40 {
        // Same family for many, so the tie-breakers (given name, id) matter.
        let family = if i % 2 == 0 { "Pager" } else { "Pagerson" };
        before.insert(app.register_named(&format!("P{:02}", (i * 7) % 40), family).await);
    }
    for query in ["name=pager", "birthDate=1980-01-01"] {
        // Insert concurrently while paging through.
        let inserter = async {
            for i in 0..15 {
                app.register_named(&format!("Late{i}"), "Pager").await;
            }
        };
        let (ids, ()) = tokio::join!(all_pages(&app, query, 7), inserter);
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "{query}: a patient appeared on two pages");
        let missing: Vec<&String> = before.iter().filter(|id| !unique.contains(id)).collect();
        assert!(missing.is_empty(), "{query}: rows present from the start were skipped: {missing:?}");
    }
}

#[tokio::test]
async fn pages_respect_the_limit_and_the_last_page_has_no_cursor() {
    let app = TestApp::spawn().await;
    for i in 0..5 {
        app.register_named(&format!("N{i}"), "Limit").await;
    }
    let page = app.search("name=limit&limit=2").await;
    assert_eq!(page["items"].as_array().expect("items").len(), 2);
    assert!(page["nextCursor"].is_string());
    let page = app.search("name=limit&limit=5").await;
    assert_eq!(page["items"].as_array().expect("items").len(), 5);
    assert!(page.get("nextCursor").is_none());
    let default_page = app.search("").await;
    assert_eq!(default_page["items"].as_array().expect("items").len(), 5);
}
