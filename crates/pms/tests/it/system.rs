use std::time::Duration;

use gateway::{RateConfig, routes};
use kit::{
    auth::{KeySource, TokenSettings, VerifierConfig},
    config::HttpConfig,
    outbox::RelayConfig,
    service::{Peer, Peers},
    shutdown::Shutdown,
    tasks::Background,
    testing::{ApiClient, TestBroker, TestDatabase},
};
use sqlx::PgPool;

pub use kit::testing::expect_problem;

pub const ADMIN_EMAIL: &str = "admin@test.example";
pub const ADMIN_PASSWORD: &str = "admin-password-123";
/// The installation's service secret (services get their own tokens from auth with it).
pub const SERVICE_SECRET: &str = "test-service-secret";
/// How often the gateway and the services refresh token keys and revocations here.
pub const REFRESH: Duration = Duration::from_millis(200);

/// Gateway, auth, patients, billing, analytics, appointments and notifications (sending
/// through LocalStack) on random ports with one fresh database and a broker, each started by its
/// crate's own `run` (auth by `build` + `router`, to keep its state at hand), reached through
/// the gateway as clients reach them.
pub struct TestSystem {
    /// The gateway, as clients see it.
    pub api: ApiClient,
    pub auth_pool: PgPool,
    pub auth: auth::AuthState,
    /// The Kafka-protocol broker the services publish to.
    pub broker: TestBroker,
    /// The patients service's gRPC address (`PatientDirectory`).
    pub patients_grpc: String,
    /// Billing's gRPC address, `http://127.0.0.1:<port>`.
    pub billing_grpc: String,
    /// The billing service, which tests stop and start again.
    pub billing: BillingProcess,
    /// The appointments service's settings (tests start more instances with changes).
    pub appointments: appointments::Config,
    /// The notifications service, which tests stop and start again.
    pub notifications: NotificationsProcess,
    shutdown: Shutdown,
    _db: TestDatabase,
}

impl TestSystem {
    pub async fn start() -> Self {
        let db = TestDatabase::create().await;
        let broker = TestBroker::start().await;
        let auth_pool = auth::SCHEMA.connect_and_migrate(&db.config()).await.expect("migrate auth");
        patients::SCHEMA.connect_and_migrate(&db.config()).await.expect("migrate patients");
        billing::SCHEMA.connect_and_migrate(&db.config()).await.expect("migrate billing");
        analytics::SCHEMA.connect_and_migrate(&db.config()).await.expect("migrate analytics");
        appointments::SCHEMA.connect_and_migrate(&db.config()).await.expect("migrate appointments");
        notifications::SCHEMA.connect_and_migrate(&db.config()).await.expect("migrate notifications");
        let (gateway_listener, gateway_url) = kit::testing::listener().await;
        let (auth_listener, auth_url) = kit::testing::listener().await;
        let (patients_listener, patients_url) = kit::testing::listener().await;
        let (patients_grpc, patients_grpc_url) = kit::testing::listener().await;
        let (billing_listener, billing_url) = kit::testing::listener().await;
        let (billing_grpc, billing_grpc_url) = kit::testing::listener().await;
        let (analytics_listener, analytics_url) = kit::testing::listener().await;
        let (appointments_listener, appointments_url) = kit::testing::listener().await;
        let (notifications_listener, notifications_url) = kit::testing::listener().await;
        let peers = Peers::new(vec![
            Peer { service: &gateway::SERVICE, url: gateway_url.clone() },
            Peer { service: &auth::SERVICE, url: auth_url.clone() },
            Peer { service: &patients::SERVICE, url: patients_url },
            Peer { service: &billing::SERVICE, url: billing_url },
            Peer { service: &analytics::SERVICE, url: analytics_url },
            Peer { service: &appointments::SERVICE, url: appointments_url },
            Peer { service: &notifications::SERVICE, url: notifications_url },
        ]);
        let tokens = TokenSettings { issuer: "pms-auth".into(), audience: "pms".into() };
        // Services verify tokens with keys fetched from auth's JWKS over HTTP, as in production.
        let verifier = VerifierConfig {
            keys: KeySource::Url(format!("{auth_url}/.well-known/jwks.json")),
            tokens,
            revocations: Some(format!("{auth_url}/auth/revocations")),
            refresh: REFRESH,
        };
        let gateway = gateway::Config {
            http: HttpConfig::ephemeral(),
            routes: routes::defaults(&peers),
            upstream_timeout: Duration::from_secs(5),
            rate: RateConfig { per_second: 10_000, burst: 10_000 },
            address_rate: RateConfig { per_second: 10_000, burst: 10_000 },
            body_limit: 1024 * 1024,
            verifier: verifier.clone(),
            peers,
            trusted_proxies: kit::net::TrustedProxies::default(),
            admin_bind: None,
            web: None,
            // As under `pms up`: the services of this process are called without a socket.
            in_process: true,
        };
        let mut auth_config = auth::Config::new(db.config(), HttpConfig::ephemeral());
        auth_config.admin =
            Some(auth::AdminBootstrap { email: ADMIN_EMAIL.into(), password: ADMIN_PASSWORD.into() });
        auth_config.service_secret = Some(SERVICE_SECRET.into());
        let patients = patients::Config {
            db: db.config(),
            http: HttpConfig::ephemeral(),
            grpc_bind: patients_grpc.local_addr().expect("address"),
            verifier: verifier.clone(),
            trusted_proxies: kit::net::TrustedProxies::parse("127.0.0.0/8").expect("loopback"),
            events: patients::events::PatientEvents::on("patients.v1"),
            kafka: broker.config(),
            relay: RelayConfig { poll: Duration::from_millis(50), ..RelayConfig::default() },
            billing: Some(patients::BillingSink {
                url: billing_grpc_url.clone(),
                deadline: Duration::from_secs(2),
                auth_url: auth_url.clone(),
                service_secret: Some(SERVICE_SECRET.into()),
            }),
        };
        let billing = billing::Config {
            db: db.config(),
            http: HttpConfig::ephemeral(),
            grpc_bind: billing_grpc.local_addr().expect("address"),
            verifier: verifier.clone(),
            trusted_proxies: kit::net::TrustedProxies::parse("127.0.0.0/8").expect("loopback"),
        };
        let analytics = analytics::Config {
            db: db.config(),
            http: HttpConfig::ephemeral(),
            verifier: verifier.clone(),
            trusted_proxies: kit::net::TrustedProxies::parse("127.0.0.0/8").expect("loopback"),
            kafka: broker.config(),
            consumer: kit::consumer::ConsumerConfig {
                group: "pms-analytics".into(),
                topics: vec!["patients.v1".into()],
                dead_letter_topic: "patients.v1.analytics.dlq".into(),
                max_batch: 500,
            },
        };
        let appointments = appointments::Config {
            db: db.config(),
            http: HttpConfig::ephemeral(),
            verifier: verifier.clone(),
            trusted_proxies: kit::net::TrustedProxies::parse("127.0.0.0/8").expect("loopback"),
            events: appointments::events::AppointmentEvents::on("appointments.v1"),
            kafka: broker.config(),
            relay: RelayConfig { poll: Duration::from_millis(50), ..RelayConfig::default() },
            patients_url: patients_grpc_url.clone(),
            patients_deadline: Duration::from_secs(2),
            consumer: kit::consumer::ConsumerConfig {
                group: "pms-appointments".into(),
                topics: vec!["patients.v1".into()],
                dead_letter_topic: "patients.v1.appointments.dlq".into(),
                max_batch: 200,
            },
        };
        let notifications = notifications::Config {
            db: db.config(),
            http: HttpConfig::ephemeral(),
            verifier: verifier.clone(),
            trusted_proxies: kit::net::TrustedProxies::parse("127.0.0.0/8").expect("loopback"),
            kafka: broker.config(),
            consumer: kit::consumer::ConsumerConfig {
                group: "pms-notifications".into(),
                topics: vec!["patients.v1".into(), "appointments.v1".into()],
                dead_letter_topic: "notifications.dlq".into(),
                max_batch: 200,
            },
            channel: notifications::Channel::Aws,
            aws: notifications::sender::AwsSettings {
                region: Some("us-east-1".into()),
                endpoint: Some(kit::testing::localstack_url()),
                from: "clinic@pms.test".into(),
            },
            leads: vec![time::Duration::hours(24), time::Duration::hours(2)],
            clinic: "Test Clinic".into(),
        };
        let shutdown = Shutdown::default();
        let background = Background::new();
        let auth = auth::build(auth_config, &background).await.expect("auth starts");
        tokio::spawn(kit::http::run(
            auth_listener,
            auth::router(auth.clone()),
            HttpConfig::ephemeral(),
            background,
            shutdown.clone(),
        ));
        tokio::spawn(patients::run(patients, patients_listener, patients_grpc, shutdown.clone()));
        let billing = BillingProcess::start(billing, billing_listener, billing_grpc);
        tokio::spawn(analytics::run(analytics, analytics_listener, shutdown.clone()));
        tokio::spawn(appointments::run(appointments.clone(), appointments_listener, shutdown.clone()));
        let notifications = NotificationsProcess::start(notifications, notifications_listener).await;
        tokio::spawn(gateway::run(gateway, gateway_listener, shutdown.clone()));
        let api = ApiClient::new(gateway_url, ADMIN_EMAIL, ADMIN_PASSWORD);
        Self {
            api,
            auth_pool,
            auth,
            broker,
            billing_grpc: billing_grpc_url,
            patients_grpc: patients_grpc_url,
            billing,
            appointments,
            notifications,
            shutdown,
            _db: db,
        }
    }
}

impl TestSystem {
    /// How to connect to the system's database as its owner (every schema is readable).
    pub fn db_options(&self) -> &sqlx::postgres::PgConnectOptions {
        &self._db.options
    }
}

impl std::ops::Deref for TestSystem {
    type Target = ApiClient;

    fn deref(&self) -> &ApiClient {
        &self.api
    }
}

impl Drop for TestSystem {
    /// The services stop with the test (before its database is dropped).
    fn drop(&mut self) {
        self.shutdown.trigger();
        self.billing.shutdown.trigger();
        self.notifications.shutdown.trigger();
    }
}

/// The billing service on its two ports, stoppable and startable again on the same ports
/// (as a restarted container would be).
pub struct BillingProcess {
    config: billing::Config,
    rest: std::net::SocketAddr,
    shutdown: Shutdown,
    task: Option<tokio::task::JoinHandle<Result<(), kit::service::BoxError>>>,
}

impl BillingProcess {
    fn start(config: billing::Config, rest: tokio::net::TcpListener, grpc: tokio::net::TcpListener) -> Self {
        let address = rest.local_addr().expect("address");
        let shutdown = Shutdown::default();
        let task = tokio::spawn(billing::run(config.clone(), rest, grpc, shutdown.clone()));
        Self { config, rest: address, shutdown, task: Some(task) }
    }

    /// Stops billing and waits until both its ports are closed.
    pub async fn stop(&mut self) {
        self.shutdown.trigger();
        if let Some(task) = self.task.take() {
            task.await.expect("billing task").expect("billing stopped cleanly");
        }
    }

    /// Starts billing again on the same ports.
    pub async fn resume(&mut self) {
        let rest = tokio::net::TcpListener::bind(self.rest).await.expect("rebind billing REST");
        let grpc = tokio::net::TcpListener::bind(self.config.grpc_bind).await.expect("rebind billing gRPC");
        *self = Self::start(self.config.clone(), rest, grpc);
    }
}

/// The notifications service on its port, stoppable and startable again (with other
/// settings, such as reminder lead times).
pub struct NotificationsProcess {
    pub config: notifications::Config,
    address: std::net::SocketAddr,
    shutdown: Shutdown,
    task: Option<tokio::task::JoinHandle<Result<(), kit::service::BoxError>>>,
}

impl NotificationsProcess {
    async fn start(config: notifications::Config, listener: tokio::net::TcpListener) -> Self {
        let address = listener.local_addr().expect("address");
        let sender = notifications::sender(&config).await.expect("LocalStack answers");
        let shutdown = Shutdown::default();
        let task = tokio::spawn(notifications::run(config.clone(), sender, listener, shutdown.clone()));
        Self { config, address, shutdown, task: Some(task) }
    }

    /// Stops the service and waits until it has.
    pub async fn stop(&mut self) {
        self.shutdown.trigger();
        if let Some(task) = self.task.take() {
            task.await.expect("notifications task").expect("notifications stopped cleanly");
        }
    }

    /// Starts it again on the same port, with the same settings.
    pub async fn resume(&mut self) {
        self.resume_with(self.config.clone()).await;
    }

    /// Starts it again on the same port with `config`.
    pub async fn resume_with(&mut self, config: notifications::Config) {
        let listener = tokio::net::TcpListener::bind(self.address).await.expect("rebind notifications");
        *self = Self::start(config, listener).await;
    }
}
