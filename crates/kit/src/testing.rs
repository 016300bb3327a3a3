//! Test support, compiled only for tests (feature `testing`): a fresh PostgreSQL database per
//! test (dropped afterwards), tokens for any user and roles, listeners on random ports, an API
//! client, and assertions on answers.
//!
//! Integration tests run against a real server named by `PMS_TEST_DATABASE_URL` (the test
//! command starts a private throw-away cluster and sets it). Each test gets a database of its
//! own, so tests run in parallel without seeing each other's rows.

use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::JwkSet};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::Value;
use sqlx::{Connection, Executor, PgConnection, postgres::PgConnectOptions};

use crate::auth::{Claims, Role, TokenSettings, VerifierConfig};

/// Where tests find a server they may create databases on, when the variable is unset.
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn admin_url() -> String {
    std::env::var("PMS_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned())
}

fn admin_options() -> PgConnectOptions {
    admin_url().parse().expect("PMS_TEST_DATABASE_URL is a postgres:// URL")
}

/// `url` with its database replaced by `name` (query options such as `host=` kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let authority = base.find("://").map_or(0, |i| i + 3);
    let base = base[authority..].find('/').map_or(base, |i| &base[..authority + i]);
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// `url` with its user replaced by `user`.
fn with_user(url: &str, user: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    match rest.split_once('@') {
        Some((_, host)) => format!("{scheme}://{user}@{host}"),
        None => format!("{scheme}://{user}@{rest}"),
    }
}

/// An empty database of a test's own; dropped when the value is dropped.
pub struct TestDatabase {
    pub options: PgConnectOptions,
    name: String,
}

impl TestDatabase {
    /// Creates an empty database with a unique name.
    ///
    /// Panics with a hint when no server is reachable: a test cannot proceed without one.
    pub async fn create() -> Self {
        let admin = admin_options();
        let mut conn = PgConnection::connect_with(&admin).await.unwrap_or_else(|e| {
            panic!("no PostgreSQL for tests ({e}); run ./scripts/test.sh or set PMS_TEST_DATABASE_URL")
        });
        let name = format!("pms_test_{}", uuid::Uuid::new_v4().simple());
        conn.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create test database");
        conn.close().await.ok();
        Self { options: admin.database(&name), name }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its `postgres://` URL, as a service's configuration takes it.
    pub fn url(&self) -> String {
        with_database(&admin_url(), &self.name)
    }

    /// Its URL as the settings of a service: the service runs as `PMS_TEST_RUNTIME_USER` (the
    /// test command creates one that owns nothing, as in production) and migrates as the
    /// server's admin; without that variable, both are the admin.
    pub fn config(&self) -> crate::db::DbConfig {
        let mut config = crate::db::DbConfig::with_url(self.url());
        if let Ok(user) = std::env::var("PMS_TEST_RUNTIME_USER") {
            config.migration_url = Some(self.url());
            config.url = with_user(&self.url(), &user);
        }
        config
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs outside any async context guarantee: use a thread with its own runtime.
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let mut conn = PgConnection::connect_with(&admin_options()).await.ok()?;
                conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await.ok()
            })
        })
        .join();
        // A database left behind is removed by the next run of the test command.
        drop(dropped);
    }
}

/// An Ed25519 key that signs test tokens, as the auth service's keys do.
#[derive(Clone)]
pub struct TestKey {
    kid: String,
    encoding: EncodingKey,
    public: Vec<u8>,
}

impl TestKey {
    pub fn generate(kid: &str) -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).expect("generate a key");
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("read the key");
        Self {
            kid: kid.to_owned(),
            encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
            public: pair.public_key().as_ref().to_vec(),
        }
    }

    pub fn sign(&self, claims: &Claims) -> String {
        self.sign_as(&self.kid, claims)
    }

    /// Signs with this key but names key id `kid` in the header (a made-up or rotated kid).
    pub fn sign_as(&self, kid: &str, claims: &Claims) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("sign")
    }

    /// The public key as a JWK set.
    pub fn jwks(&self) -> JwkSet {
        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
        serde_json::from_value(serde_json::json!({ "keys": [{
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
            "kid": self.kid, "x": URL_SAFE_NO_PAD.encode(&self.public),
        }]}))
        .expect("jwks")
    }
}

/// A signing key and the verifier settings that trust it: tests mint tokens for any user
/// and roles without an auth service.
#[derive(Clone)]
pub struct TestTokens {
    key: TestKey,
    pub verifier: VerifierConfig,
}

impl Default for TestTokens {
    fn default() -> Self {
        Self::new()
    }
}

impl TestTokens {
    pub fn new() -> Self {
        let key = TestKey::generate("test-key");
        let tokens = TokenSettings { issuer: "pms-auth".into(), audience: "pms".into() };
        Self { verifier: VerifierConfig::fixed(key.jwks(), tokens), key }
    }

    /// The public key set that verifies these tokens (what an auth service would publish).
    pub fn jwks(&self) -> JwkSet {
        self.key.jwks()
    }

    /// A valid access token for `user` with `roles`, expiring in 10 minutes.
    pub fn token(&self, user: &str, roles: &[Role]) -> String {
        self.key.sign(&Self::claims(user, roles))
    }

    /// `claims` signed by this key (for tokens a test shapes itself).
    pub fn sign(&self, claims: &Claims) -> String {
        self.key.sign(claims)
    }

    /// A token signed by this key that names key id `kid` instead of its own.
    pub fn token_with_kid(&self, kid: &str, user: &str, roles: &[Role]) -> String {
        self.key.sign_as(kid, &Self::claims(user, roles))
    }

    fn claims(user: &str, roles: &[Role]) -> Claims {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Claims {
            iss: "pms-auth".into(),
            aud: "pms".into(),
            sub: user.into(),
            roles: roles.to_vec(),
            iat: now,
            exp: now + 600,
            jti: uuid::Uuid::new_v4().to_string(),
            sid: None,
            iat_ms: None,
        }
    }

    /// A client whose requests carry a token for `user` with `roles` (none if `roles` is empty).
    pub fn client_as(&self, user: &str, roles: &[Role]) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        if !roles.is_empty() {
            let value = format!("Bearer {}", self.token(user, roles));
            headers.insert(reqwest::header::AUTHORIZATION, value.parse().expect("header"));
        }
        reqwest::Client::builder().default_headers(headers).build().expect("client")
    }
}

/// A listener on 127.0.0.1 with a port of the system's choosing, and its base URL.
pub async fn listener() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    (listener, base)
}

/// Asserts `status` and returns the JSON body (or `Null` when there is none).
pub async fn expect_json(response: reqwest::Response, status: reqwest::StatusCode) -> Value {
    let actual = response.status();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(actual, status, "{text}");
    if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("a JSON body") }
}

/// Asserts a problem+json answer with `status` and returns its body.
pub async fn expect_problem(response: reqwest::Response, status: reqwest::StatusCode) -> Value {
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let body = expect_json(response, status).await;
    assert_eq!(content_type, crate::problem::CONTENT_TYPE, "{body}");
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

#[cfg(test)]
mod tests {
    #[test]
    fn a_test_database_url_keeps_the_server_and_its_options() {
        assert_eq!(
            super::with_database("postgres://pms@localhost/postgres?host=/tmp/pg", "t1"),
            "postgres://pms@localhost/t1?host=/tmp/pg"
        );
        assert_eq!(super::with_database("postgres://u@h:5432/db", "t2"), "postgres://u@h:5432/t2");
        assert_eq!(super::with_database("postgres://u@h:5432", "t3"), "postgres://u@h:5432/t3");
        assert_eq!(
            super::with_user("postgres://pms@localhost/t?host=/d", "app"),
            "postgres://app@localhost/t?host=/d"
        );
        assert_eq!(super::with_user("postgres://localhost/t", "app"), "postgres://app@localhost/t");
    }
}

/// A client of a pms API at `base` (the gateway, or one service directly) with the calls
/// tests make again and again: logging in, creating users, reading with a token.
#[derive(Clone)]
pub struct ApiClient {
    pub base: String,
    pub client: reqwest::Client,
    /// The first admin's credentials on this system.
    pub admin: (String, String),
}

impl ApiClient {
    pub fn new(base: impl Into<String>, admin_email: &str, admin_password: &str) -> Self {
        Self {
            base: base.into(),
            client: reqwest::Client::builder().user_agent("pms-tests").build().expect("client"),
            admin: (admin_email.to_owned(), admin_password.to_owned()),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.client
            .post(self.url("/auth/login"))
            .json(&serde_json::json!({ "email": email, "password": password }))
            .send()
            .await
            .expect("request")
    }

    /// Logs in and returns the token pair, asserting 200.
    pub async fn tokens(&self, email: &str, password: &str) -> Value {
        expect_json(self.login(email, password).await, reqwest::StatusCode::OK).await
    }

    pub async fn admin_token(&self) -> String {
        let (email, password) = &self.admin;
        self.tokens(email, password).await["accessToken"].as_str().expect("token").to_owned()
    }

    /// Creates a user with `roles` through the admin API; returns (id, email, password).
    pub async fn create_user(&self, name: &str, roles: &[Role]) -> (String, String, String) {
        let email = format!("{name}@test.example");
        let password = format!("{name}-password-123");
        let body =
            serde_json::json!({ "email": email, "displayName": name, "password": password, "roles": roles });
        let response = self
            .client
            .post(self.url("/api/users"))
            .bearer_auth(self.admin_token().await)
            .json(&body)
            .send()
            .await
            .expect("request");
        let user = expect_json(response, reqwest::StatusCode::CREATED).await;
        (user["id"].as_str().expect("id").to_owned(), email, password)
    }

    /// A logged-in user with `roles`: its access token.
    pub async fn token_for(&self, name: &str, roles: &[Role]) -> String {
        let (_, email, password) = self.create_user(name, roles).await;
        self.tokens(&email, &password).await["accessToken"].as_str().expect("token").to_owned()
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client.get(self.url(path)).bearer_auth(token).send().await.expect("request")
    }
}

/// Tokens a verifier must refuse, made from a `valid` one and a `sign` function using the
/// real signing key: expired, for another audience, tampered, unsigned (`alg: none`), and
/// signed by a key nobody trusts. Each comes with what it is.
pub fn forged_tokens(valid: &str, sign: impl Fn(&Claims) -> String) -> Vec<(&'static str, String)> {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let claims = |aud: &str, exp_in: i64| Claims {
        iss: "pms-auth".into(),
        aud: aud.into(),
        sub: "01890a5d-ac96-774b-bcce-b302099a8057".into(),
        roles: vec![Role::Admin],
        iat: now - 120,
        exp: now + exp_in,
        jti: "t".into(),
        sid: None,
        iat_ms: None,
    };
    let parts: Vec<&str> = valid.split('.').collect();
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json payload");
    payload["roles"] = serde_json::json!(["admin", "billing"]);
    let tampered = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(payload.to_string()), parts[2]);
    let none = format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#), parts[1]);
    vec![
        ("expired", sign(&claims("pms", -60))),
        ("wrong audience", sign(&claims("another-app", 600))),
        ("tampered", tampered),
        ("alg none", none),
        ("foreign key", TestTokens::new().token("someone", &[Role::Admin])),
    ]
}

/// A real Kafka-protocol broker process (Tansu, `PMS_TEST_TANSU`, installed by
/// scripts/test.sh) on a port of its own, keeping its data in a temporary directory, so a
/// test can stop it and start it again with its topics, records and group offsets intact.
pub struct TestBroker {
    pub port: u16,
    dir: std::path::PathBuf,
    process: Option<std::process::Child>,
}

impl TestBroker {
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(format!("pms-test-broker-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("broker directory");
        let mut broker = Self { port, dir, process: None };
        broker.resume().await;
        broker
    }

    /// `host:port`, as `PMS_KAFKA_BROKERS` takes it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn config(&self) -> crate::kafka::KafkaConfig {
        crate::kafka::KafkaConfig::plaintext(self.address())
    }

    /// Kills the broker (as a crash would: no clean shutdown).
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Freezes the broker (SIGSTOP): its connections stay open but nothing is answered, as
    /// with a broker that hangs or is starved of CPU.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen broker go on (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.process.as_ref().expect("the broker is running").id().to_string();
        let status = std::process::Command::new("kill").args([signal, &pid]).status().expect("kill");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// Starts the broker again on the same port and data, and waits until it accepts
    /// connections.
    pub async fn resume(&mut self) {
        assert!(self.process.is_none(), "the broker is running");
        let tansu = std::env::var("PMS_TEST_TANSU").unwrap_or_else(|_| "tansu".to_owned());
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let process = std::process::Command::new(&tansu)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", "sqlite://broker.db"])
            .current_dir(&self.dir)
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("broker.log")).expect("broker log"))
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start the Kafka broker `{tansu}` ({e}); run ./scripts/test.sh or set PMS_TEST_TANSU")
            });
        self.process = Some(process);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                self.index_headers().await;
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the test broker did not start listening within 5 s (see {})", self.dir.display());
    }

    /// Adds the index Tansu 0.6's sqlite engine lacks on its record headers, as
    /// scripts/lib.sh's broker_start does (see TANSU_HEADER_INDEX there): without it each
    /// fetched record scans every header the broker holds. Tansu may listen before it has
    /// made its tables, so this tries for a few seconds.
    async fn index_headers(&self) {
        for _ in 0..200 {
            let output = std::process::Command::new("sqlite3")
                .args(["-cmd", ".timeout 5000"])
                .arg(self.dir.join("broker.db"))
                .arg("CREATE INDEX IF NOT EXISTS pms_header_record ON header (topition, offset_id)")
                .output()
                .unwrap_or_else(|e| {
                    panic!("cannot run sqlite3 ({e}); run ./scripts/test.sh, which installs it")
                });
            if output.status.success() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("cannot index the test broker's headers within 5 s (see {})", self.dir.display());
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The LocalStack the tests send email and SMS through (`PMS_TEST_LOCALSTACK`, started by
/// scripts/test.sh).
pub fn localstack_url() -> String {
    std::env::var("PMS_TEST_LOCALSTACK").unwrap_or_else(|_| {
        panic!("no LocalStack for tests; run ./scripts/test.sh or set PMS_TEST_LOCALSTACK")
    })
}

/// One record read back from a topic.
#[derive(Debug, Clone)]
pub struct Record {
    pub key: String,
    pub payload: Vec<u8>,
    pub partition: i32,
}

/// Reads `topic` from its beginning with a consumer group of its own until `count` records
/// came (or 20 seconds passed), and then for another `settle` to catch any extra record.
pub async fn consume(
    config: &crate::kafka::KafkaConfig,
    topic: &str,
    count: usize,
    settle: std::time::Duration,
) -> Vec<Record> {
    use rdkafka::{
        Message as _,
        consumer::{Consumer as _, StreamConsumer},
    };
    let consumer: StreamConsumer = config
        .client_config()
        .set("group.id", format!("pms-test-{}", uuid::Uuid::new_v4().simple()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("test consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut records = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let until = if records.len() >= count { tokio::time::Instant::now() + settle } else { deadline };
        match tokio::time::timeout_at(until, consumer.recv()).await {
            Err(_) => break,
            // The topic may not exist yet: the producer creates it with its first record.
            Ok(Err(rdkafka::error::KafkaError::MessageConsumption(
                rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition,
            ))) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            Ok(Err(err)) => panic!("consuming {topic}: {err}"),
            Ok(Ok(message)) => records.push(Record {
                key: String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
                payload: message.payload().unwrap_or_default().to_vec(),
                partition: message.partition(),
            }),
        }
        if records.len() >= count && settle.is_zero() {
            break;
        }
    }
    records
}

/// The offsets group `group` has committed on `topic`, summed over its partitions (a
/// partition without a commit counts 0): how many of the topic's records the group would not
/// be handed again after a restart.
pub async fn committed(config: &crate::kafka::KafkaConfig, group: &str, topic: &str) -> i64 {
    use rdkafka::{
        Offset, TopicPartitionList,
        consumer::{BaseConsumer, Consumer as _},
    };
    let consumer: BaseConsumer =
        config.client_config().set("group.id", group).create().expect("offset reader");
    let (group, topic) = (group.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let timeout = std::time::Duration::from_secs(10);
        let metadata = consumer.fetch_metadata(Some(&topic), timeout).expect("metadata");
        let mut list = TopicPartitionList::new();
        for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
            list.add_partition(&topic, partition.id());
        }
        let offsets =
            consumer.committed_offsets(list, timeout).unwrap_or_else(|e| panic!("offsets of {group}: {e}"));
        offsets.elements().iter().map(|e| if let Offset::Offset(o) = e.offset() { o } else { 0 }).sum()
    })
    .await
    .expect("offset reader task")
}
