//! Search: typo tolerance, ranking, exact filters, and cursor paging under concurrent inserts.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_fields, expect_problem, page_ids, patient};

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

    // A name that arrives by an update is found by a typo too.
    let id = app.register_named("Renamed", "Before").await;
    let response =
        app.put(&format!("/api/patients/{id}"), Some("\"1\""), &patient("Renamed", "Quenneville")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.search_families("name=quenevile").await, Vec::<String>::new(), "two typos: no match");
    assert_eq!(app.search_families("name=queneville").await, ["Renamed Quenneville"]);
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
async fn one_word_ranks_exact_names_then_prefixes_then_typos() {
    let app = TestApp::spawn().await;
    // Registered in an order unlike the expected ranking.
    app.register_named("Jon", "Adams").await; // typo of "john"
    app.register_named("Johnny", "Baker").await; // given name starts with "john"
    app.register_named("John", "Young").await; // given name is "john"
    app.register_named("Ann", "John").await; // family name is "john"
    app.register_named("John", "Clark").await; // given name is "john"
    app.register_named("Peter", "Johnson").await; // family name starts with "john"
    app.register_named("Mary Johanna", "Brown").await; // no match
    app.register_named("Mary", "Jonh").await; // family name one typo away
    app.register_named("Ada", "Smith-John").await; // a later word of the family name
    assert_eq!(
        app.search_families("name=john").await,
        [
            "Ann John",
            "John Clark",
            "John Young",
            "Peter Johnson",
            "Johnny Baker",
            "Mary Jonh",
            "Ada Smith-John",
            "Jon Adams"
        ]
    );
}

#[tokio::test]
async fn several_words_must_all_match_and_exact_ranks_first() {
    let app = TestApp::spawn().await;
    app.register_named("Johnny", "Smithson").await; // both prefixes
    app.register_named("John", "Smith").await; // both exact
    app.register_named("Jhon", "Smith").await; // one typo
    app.register_named("John", "Jones").await; // one word only: no match
    assert_eq!(
        app.search_families("name=john%20smith").await,
        ["John Smith", "Johnny Smithson", "Jhon Smith"]
    );
    // Paged one row at a time, across the three ranks, the order is the same.
    let one_page = all_pages(&app, "name=john%20smith", 100).await;
    assert_eq!(all_pages(&app, "name=john%20smith", 1).await, one_page);
}

/// A query that is a whole family name of several words ranks that family first, read in
/// the family name's order, before the same words split between given and family name.
#[tokio::test]
async fn words_that_are_a_family_name_rank_that_family_first() {
    let app = TestApp::spawn().await;
    app.register_named("Van", "Dijk").await; // the words, but split: rank 1
    app.register_named("Piet", "van Dijk").await; // the family name: rank 0
    app.register_named("Anna", "Van Dijkstra").await; // prefixes: rank 2
    app.register_named("Anna", "Van Dijk").await; // the family name: rank 0
    app.register_named("Anna", "Van Dijck").await; // a typo: rank 3
    assert_eq!(
        app.search_families("name=van%20dijk").await,
        ["Anna Van Dijk", "Piet van Dijk", "Van Dijk", "Anna Van Dijkstra", "Anna Van Dijck"]
    );
    let one_page = all_pages(&app, "name=van%20dijk", 100).await;
    assert_eq!(all_pages(&app, "name=van%20dijk", 1).await, one_page);
}

/// Among typo matches of several words, the patients whose family name alone matches every
/// word come first, in the family name's order; then the same typos split between given and
/// family name.
#[tokio::test]
async fn typos_within_a_family_name_rank_before_typos_across_names() {
    let app = TestApp::spawn().await;
    app.register_named("Van", "Dijk").await; // the words split: rank 4
    app.register_named("Zoe", "Van Dijk").await; // the family name, one typo: rank 3
    app.register_named("Vaan", "Dijk").await; // rank 4
    app.register_named("Anna", "van Dijk").await; // rank 3
    app.register_named("Anna", "Van Dijkstra").await; // no word is one edit from "dijkk"
    assert_eq!(
        app.search_families("name=van%20dijkk").await,
        ["Anna van Dijk", "Zoe Van Dijk", "Vaan Dijk", "Van Dijk"]
    );
    let one_page = all_pages(&app, "name=van%20dijkk", 100).await;
    assert_eq!(all_pages(&app, "name=van%20dijkk", 1).await, one_page);
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
        let items = page["patients"].as_array().expect("items");
        assert_eq!(items.len(), 1, "{query}");
        assert_eq!(items[0]["id"], target["id"], "{query}");
    }
    assert!(
        app.search("name=target&birthDate=1961-07-05").await["patients"]
            .as_array()
            .expect("items")
            .is_empty()
    );
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
    let problem =
        expect_problem(app.get(&format!("/api/patients?mrn={typo}")).await, StatusCode::UNPROCESSABLE_ENTITY)
            .await;
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
        let items = page_ids(&page);
        assert!(items.len() <= limit as usize);
        ids.extend(items);
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return ids,
        }
    }
}

#[tokio::test]
async fn paging_has_no_duplicates_or_gaps_while_rows_are_inserted() {
    let app = TestApp::spawn().await;
    // Many share a family name, so the tie-breakers (given name, id) matter; "pager" and
    // "pag" cross rank tiers (family exact, family prefix, given prefix, typo).
    let (mut pager, mut pagerson, mut pageant) = (HashSet::new(), HashSet::new(), HashSet::new());
    for i in 0..40 {
        match i % 4 {
            0 | 1 => pager.insert(app.register_named(&format!("P{:02}", (i * 7) % 40), "Pager").await),
            2 => pagerson.insert(app.register_named(&format!("P{:02}", i % 3), "Pagerson").await),
            _ => pageant.insert(app.register_named(&format!("Pageant{}", i % 5), "Zed").await),
        };
    }
    let typo = app.register_named("Pgaer", "Typo").await;
    let union =
        |sets: &[&HashSet<String>]| sets.iter().flat_map(|s| s.iter().cloned()).collect::<HashSet<_>>();
    let mut everyone = union(&[&pager, &pagerson, &pageant]);
    everyone.insert(typo.clone());
    let mut by_pager = union(&[&pager, &pagerson]);
    by_pager.insert(typo);
    let cases = [
        ("name=pager", by_pager),
        ("name=pag", union(&[&pager, &pagerson, &pageant])),
        ("birthDate=1980-01-01", everyone),
    ];
    for (query, expected) in cases {
        // Rows are inserted while a client pages through.
        let inserter = async {
            for i in 0..15 {
                app.register_named(&format!("Late{i}"), "Pager").await;
            }
        };
        let (ids, ()) = tokio::join!(all_pages(&app, query, 7), inserter);
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "{query}: a patient appeared on two pages");
        let missing: Vec<&String> = expected.iter().filter(|id| !unique.contains(id)).collect();
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
    assert_eq!(page["patients"].as_array().expect("items").len(), 2);
    assert!(page["nextCursor"].is_string());
    let page = app.search("name=limit&limit=5").await;
    assert_eq!(page["patients"].as_array().expect("items").len(), 5);
    assert!(page.get("nextCursor").is_none());
    let default_page = app.search("").await;
    assert_eq!(default_page["patients"].as_array().expect("items").len(), 5);
}

#[tokio::test]
async fn a_search_sent_in_the_body_finds_what_the_query_finds_and_keeps_filters_out_of_urls() {
    let app = TestApp::spawn().await;
    let mut anna = patient("Anna", "Müller");
    anna["birthDate"] = json!("1984-03-17");
    app.register(&anna).await;
    app.register_named("Anne", "Miller").await;
    let by_query = app.search("name=muller&birthDate=1984-03-17").await;
    let by_body = kit::testing::expect_json(
        app.post("/api/patients/search", &json!({ "name": "muller", "birthDate": "1984-03-17" })).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(by_body["patients"], by_query["patients"]);
    assert_eq!(by_body["patients"].as_array().expect("patients").len(), 1);

    let paged = kit::testing::expect_json(
        app.post("/api/patients/search", &json!({ "limit": 1 })).await,
        StatusCode::OK,
    )
    .await;
    let cursor = paged["nextCursor"].as_str().expect("a next page");
    let next = kit::testing::expect_json(
        app.post("/api/patients/search", &json!({ "limit": 1, "cursor": cursor })).await,
        StatusCode::OK,
    )
    .await;
    assert_ne!(next["patients"][0]["id"], paged["patients"][0]["id"]);

    let problem = expect_problem(
        app.post("/api/patients/search", &json!({ "birthDate": "1984-13-01", "limit": 500, "shoeSize": 44 }))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&problem), ["/shoeSize"], "unknown members are refused first");
    let problem = expect_problem(
        app.post("/api/patients/search", &json!({ "birthDate": "1984-13-01", "limit": 500 })).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&problem), ["/birthDate", "/limit"]);
    let audited: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = 'search'")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(audited, 4, "body searches are audited like query searches");
}

/// Concurrent name searches, whose audit rows are committed together, are each answered with
/// their own page and audited once with the patients they showed: searches whose family name
/// fills the page, searches that go on to other ranks, and searches of several words.
#[tokio::test]
async fn concurrent_name_searches_each_get_their_own_page_and_one_audit_row() {
    let app = TestApp::spawn().await;
    let mut alder = Vec::new();
    for given in ["Carla", "Dario", "Elena", "Fabio", "Greta"] {
        alder.push(app.register_named(given, "Alder").await);
    }
    let alderson = app.register_named("Zoe", "Alderson").await;
    let birch = vec![app.register_named("Bea", "Birch").await, app.register_named("Bo", "Birch").await];
    let with_alderson = alder.iter().cloned().chain([alderson]).collect::<Vec<_>>();
    // The query, the ids it shows in order, and whether a next page is announced.
    let cases: [(&str, Vec<String>, bool); 6] = [
        ("name=alder&limit=3", alder[..3].to_vec(), true), // the family name fills the page
        ("name=alder&limit=5", alder.clone(), true),       // exactly: a prefix match is next
        ("name=alder&limit=6", with_alderson, false),      // the family name, then a prefix
        ("name=birch", birch, false),                      // fewer than a page
        ("name=dario%20alder", vec![alder[1].clone()], false), // several words
        ("name=nobody", Vec::new(), false),
    ];
    let app = &app;
    let searches = cases.iter().enumerate().flat_map(|(case, (query, _, _))| {
        (0..8).map(move |copy| {
            let request = app
                .client
                .get(app.url(&format!("/api/patients?{query}")))
                .header("x-request-id", format!("concurrent-{case}-{copy}"));
            async move {
                (case, kit::testing::expect_json(request.send().await.expect("send"), StatusCode::OK).await)
            }
        })
    });
    let pages = futures_util::future::join_all(searches).await;

    for (case, page) in &pages {
        let (query, expected, more) = &cases[*case];
        assert_eq!(page_ids(page), *expected, "{query}");
        assert_eq!(page["nextCursor"].is_string(), *more, "{query}: next page");
    }
    let audited: Vec<(String, Value)> = sqlx::query_as(
        "SELECT request_id, details FROM audit_events
         WHERE action = 'search' AND outcome = 'ok' AND request_id LIKE 'concurrent-%' ORDER BY request_id",
    )
    .fetch_all(&app.pool)
    .await
    .expect("audit rows");
    assert_eq!(audited.len(), pages.len(), "one audit row per search");
    for (request, details) in &audited {
        let case: usize = request.split('-').nth(1).and_then(|c| c.parse().ok()).expect("case");
        let (query, expected, _) = &cases[case];
        let wanted = json!({ "filters": ["name"], "results": expected.len(), "patientIds": expected });
        assert_eq!(*details, wanted, "{request} ({query})");
    }
    let requests: HashSet<&String> = audited.iter().map(|(request, _)| request).collect();
    assert_eq!(requests.len(), audited.len(), "no search audited twice");
}

/// Searches run on connections of their own (which keep one generic plan per statement), and
/// the page size is written into each statement: with a bound `LIMIT`, PostgreSQL planned a
/// search afresh on every call.
#[tokio::test]
async fn searches_run_on_their_own_connections_with_the_page_size_in_the_statement() {
    let app = TestApp::spawn().await;
    app.register_named("Plan", "Cache").await;
    assert_eq!(app.search_families("name=cache&limit=7").await, ["Plan Cache"]);
    let statements: Vec<String> = sqlx::query_scalar(
        "SELECT query FROM pg_stat_activity WHERE application_name = 'pms-patients-search' AND datname = current_database()",
    )
    .fetch_all(&app.pool)
    .await
    .expect("activity");
    assert!(!statements.is_empty(), "no search connection");
    assert!(
        statements.iter().any(|q| q.contains("FROM patients WHERE active") && q.ends_with("LIMIT 8")),
        "{statements:?}"
    );
}
