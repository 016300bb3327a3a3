//! Graceful shutdown of a service process.
//!
//! [`Shutdown`] is triggered by SIGINT (Ctrl-C) or SIGTERM (what Kubernetes and ECS send), or
//! by a test. Then, in order:
//! 1. `/health/ready` answers 503 at once, so load balancers stop sending new requests;
//! 2. after `grace` (time for them to notice), listeners stop accepting and the requests in
//!    flight finish;
//! 3. background tasks finish their current batch ([`crate::tasks::Background::stop`]);
//!
//! all within `deadline` of the trigger; then the process exits 0.

use std::{
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use tokio_util::sync::CancellationToken;

use crate::config::{self, ConfigError};

/// The shutdown of one process: a trigger every server and task can watch.
#[derive(Clone, Debug)]
pub struct Shutdown {
    token: CancellationToken,
    triggered_at: Arc<OnceLock<Instant>>,
    /// Readiness answers 503 this long before the listeners close.
    pub grace: Duration,
    /// Everything stops within this long of the trigger.
    pub deadline: Duration,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new(Duration::ZERO, Duration::from_secs(10))
    }
}

impl Shutdown {
    pub fn new(grace: Duration, deadline: Duration) -> Self {
        Self { token: CancellationToken::new(), triggered_at: Arc::default(), grace, deadline }
    }

    /// From `PMS_SHUTDOWN_GRACE_MS` (default 0: nothing balances a laptop; set it to a few
    /// seconds behind a load balancer) and `PMS_SHUTDOWN_DEADLINE_MS` (default 10 000).
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self::new(
            config::millis_or("PMS_SHUTDOWN_GRACE_MS", Duration::ZERO)?,
            config::millis_or("PMS_SHUTDOWN_DEADLINE_MS", Duration::from_secs(10))?,
        ))
    }

    /// Triggers this shutdown when the process receives SIGINT or SIGTERM.
    pub fn on_signal(self) -> Self {
        let this = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = signal() => this.trigger(),
                () = this.token.cancelled() => {}
            }
        });
        self
    }

    pub fn trigger(&self) {
        let _ = self.triggered_at.set(Instant::now());
        self.token.cancel();
    }

    /// What is left of the deadline (all of it before the trigger).
    pub fn remaining(&self) -> Duration {
        match self.triggered_at.get() {
            Some(at) => self.deadline.saturating_sub(at.elapsed()),
            None => self.deadline,
        }
    }

    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once the shutdown is triggered.
    pub async fn triggered(&self) {
        self.token.cancelled().await;
    }

    /// Resolves when listeners should stop accepting: `grace` after the trigger.
    pub async fn close_listeners(&self) {
        self.triggered().await;
        tokio::time::sleep(self.grace).await;
    }
}

/// Waits for SIGINT or SIGTERM.
pub async fn signal() {
    let interrupt = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}
