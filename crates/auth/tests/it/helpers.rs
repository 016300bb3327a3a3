use kit::{
    clock::Clock,
    config::HttpConfig,
    shutdown::Shutdown,
    tasks::Background,
    testing::{ApiClient, TestDatabase},
};
use sqlx::PgPool;

pub use kit::testing::expect_problem;

pub const ADMIN_EMAIL: &str = "admin@test.example";
pub const ADMIN_PASSWORD: &str = "admin-password-123";

/// The auth service on 127.0.0.1:<random> with a database of its own, started as
/// `auth::run` starts it (`build`, `router`, `kit::http::run`), its state kept at hand.
pub struct TestAuth {
    pub api: ApiClient,
    pub pool: PgPool,
    pub state: auth::AuthState,
    /// The settings it was started with (tests restart it with variations).
    pub config: auth::Config,
    /// Its clock: tests move it instead of sleeping.
    pub clock: Clock,
    shutdown: Shutdown,
    _db: TestDatabase,
}

/// Settings for tests on `db`: the defaults, with a first admin.
pub fn config(db: &TestDatabase) -> auth::Config {
    let mut config = auth::Config::new(db.config(), HttpConfig::ephemeral());
    config.admin = Some(auth::AdminBootstrap { email: ADMIN_EMAIL.into(), password: ADMIN_PASSWORD.into() });
    config
}

impl TestAuth {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts the service after `tune` adjusted its settings.
    pub async fn start_with(tune: impl FnOnce(&mut auth::Config)) -> Self {
        let db = TestDatabase::create().await;
        let pool = auth::SCHEMA.connect_and_migrate(&db.config()).await.expect("migrate");
        let mut config = config(&db);
        tune(&mut config);
        let background = Background::new();
        let state = auth::build(config.clone(), &background).await.expect("auth starts");
        let (listener, base) = kit::testing::listener().await;
        let shutdown = Shutdown::default();
        tokio::spawn(kit::http::run(
            listener,
            auth::router(state.clone()),
            HttpConfig::ephemeral(),
            background,
            shutdown.clone(),
        ));
        let api = ApiClient::new(base, ADMIN_EMAIL, ADMIN_PASSWORD);
        let clock = config.clock.clone();
        Self { api, pool, state, config, clock, shutdown, _db: db }
    }
}

impl std::ops::Deref for TestAuth {
    type Target = ApiClient;

    fn deref(&self) -> &ApiClient {
        &self.api
    }
}

impl Drop for TestAuth {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}
