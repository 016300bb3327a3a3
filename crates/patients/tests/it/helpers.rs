use kit::{auth::Role, config::HttpConfig, testing::TestTokens};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

/// The patients service on 127.0.0.1:<random> with a database of its own.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub pool: PgPool,
    pub tokens: TestTokens,
}

impl TestApp {
    pub async fn spawn() -> Self {
        let options = kit::testing::fresh_database().await;
        let db = kit::db::DbConfig::with_url("unused: options given");
        let pool = patients::connect_with(options, &db).await.expect("connect");
        patients::migrate(&pool).await.expect("migrate");
        Self::serve(pool).await
    }

    /// Serves the service on `pool` (which may be broken on purpose).
    pub async fn serve(pool: PgPool) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let tokens = TestTokens::new();
        let app = patients::app(pool.clone(), tokens.verifier.clone(), &HttpConfig::ephemeral());
        tokio::spawn(kit::http::serve(listener, app, std::future::pending()));
        let token = tokens.token("admin-1", &[Role::Admin]);
        let client = reqwest::Client::builder()
            .default_headers(reqwest::header::HeaderMap::from_iter([(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {token}").parse().expect("header"),
            )]))
            .build()
            .expect("client");
        Self { base, client, pool, tokens }
    }

    /// A client whose requests carry a token for `user` with `roles` (or none at all).
    pub fn client_as(&self, user: &str, roles: &[Role]) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        if !roles.is_empty() {
            let value = format!("Bearer {}", self.tokens.token(user, roles));
            headers.insert(reqwest::header::AUTHORIZATION, value.parse().expect("header"));
        }
        reqwest::Client::builder().default_headers(headers).build().expect("client")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.client.post(self.url(path)).json(body).send().await.expect("request")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("request")
    }

    pub async fn put(&self, path: &str, if_match: Option<&str>, body: &Value) -> Response {
        let mut request = self.client.put(self.url(path)).json(body);
        if let Some(tag) = if_match {
            request = request.header("if-match", tag);
        }
        request.send().await.expect("request")
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.client.delete(self.url(path)).send().await.expect("request")
    }

    /// Registers a patient and returns its JSON, asserting 201.
    pub async fn register(&self, body: &Value) -> Value {
        let response = self.post("/api/patients", body).await;
        assert_eq!(response.status(), StatusCode::CREATED, "{}", response.text().await.unwrap_or_default());
        response.json().await.expect("json")
    }

    /// Registers `given family` born 1980-01-01 and returns its id.
    pub async fn register_named(&self, given: &str, family: &str) -> String {
        let patient = self.register(&patient(given, family)).await;
        patient["id"].as_str().expect("id").to_owned()
    }

    /// Searches with the given query string; asserts 200 and returns the page.
    pub async fn search(&self, query: &str) -> Value {
        let response = self.get(&format!("/api/patients?{query}")).await;
        assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap_or_default());
        response.json().await.expect("json")
    }

    /// Family names of a search page, in order.
    pub async fn search_families(&self, query: &str) -> Vec<String> {
        let page = self.search(query).await;
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|p| {
                format!(
                    "{} {}",
                    p["givenName"].as_str().unwrap_or(""),
                    p["familyName"].as_str().unwrap_or("")
                )
            })
            .collect()
    }
}

/// A minimal valid registration body.
pub fn patient(given: &str, family: &str) -> Value {
    json!({ "givenName": given, "familyName": family, "birthDate": "1980-01-01", "sex": "unknown" })
}

/// Asserts a problem+json answer with `status` and returns its body.
pub async fn expect_problem(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.expect("problem json");
    assert_eq!(body["status"], status.as_u16());
    assert!(body["type"].as_str().is_some_and(|t| t.starts_with("urn:pms:problem:")), "{body}");
    body
}

/// The JSON pointers (or parameter names) of a validation problem's errors.
pub fn error_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["pointer"].as_str().or(e["parameter"].as_str()).unwrap_or("?").to_owned())
                .collect()
        })
        .unwrap_or_default()
}
