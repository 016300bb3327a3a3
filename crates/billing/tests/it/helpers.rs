use std::time::Duration;

use kit::{
    auth::Role,
    config::HttpConfig,
    shutdown::Shutdown,
    testing::{TestDatabase, TestTokens},
};
use proto::billing::v1::billing_service_client::BillingServiceClient;
use sqlx::PgPool;
use tonic::transport::Channel;

/// The billing service on 127.0.0.1 (REST and gRPC on random ports), started by its own
/// `run`, with a database of its own.
pub struct TestApp {
    pub base: String,
    pub grpc_url: String,
    pub tokens: TestTokens,
    /// The database as its owner.
    pub pool: PgPool,
    shutdown: Shutdown,
    _db: TestDatabase,
}

impl TestApp {
    pub async fn spawn() -> Self {
        let db = TestDatabase::create().await;
        let pool = billing::SCHEMA.connect_and_migrate(&db.config()).await.expect("migrate");
        let tokens = TestTokens::new();
        let (listener, base) = kit::testing::listener().await;
        let (grpc, grpc_url) = kit::testing::listener().await;
        let config = billing::Config {
            db: db.config(),
            http: HttpConfig::ephemeral(),
            grpc_bind: grpc.local_addr().expect("address"),
            verifier: tokens.verifier.clone(),
            trusted_proxies: kit::net::TrustedProxies::default(),
        };
        let shutdown = Shutdown::default();
        tokio::spawn(billing::run(config, listener, grpc, shutdown.clone()));
        Self { base, grpc_url, tokens, pool, shutdown, _db: db }
    }

    pub fn channel(&self) -> Channel {
        kit::grpc::channel(&self.grpc_url, Duration::from_secs(2)).expect("channel")
    }

    pub fn client(&self) -> BillingServiceClient<Channel> {
        BillingServiceClient::new(self.channel())
    }

    /// `message` with a token for `user` with `roles` and a 2-second deadline.
    pub fn request<T>(&self, message: T, user: &str, roles: &[Role]) -> tonic::Request<T> {
        kit::grpc::outgoing(message, &self.tokens.token(user, roles), None, Duration::from_secs(2))
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}
