//! Per-client rate limits (GCRA, via `governor`): a client is its user id when it sent a
//! valid token, else its address. Every answer carries `RateLimit-Limit`,
//! `RateLimit-Remaining` and `RateLimit-Reset`; over the limit: 429 with `Retry-After`.

use std::{num::NonZeroU32, sync::Arc};

use axum::http::{HeaderMap, HeaderValue};
use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    middleware::StateInformationMiddleware,
    state::keyed::DefaultKeyedStateStore,
};

type Limiter = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

#[derive(Debug, Clone, Copy)]
pub struct RateConfig {
    /// Sustained requests per second per client.
    pub per_second: u32,
    /// Requests a client may send at once.
    pub burst: u32,
}

/// The outcome of one check.
pub struct Decision {
    pub allowed: bool,
    pub remaining: u32,
    /// Seconds until the client may send again (denied) or has its full burst back.
    pub reset: u64,
}

#[derive(Clone)]
pub struct RateLimits {
    limiter: Arc<Limiter>,
    config: RateConfig,
}

impl RateLimits {
    pub fn new(config: RateConfig) -> Self {
        let per_second = NonZeroU32::new(config.per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        let limiter = RateLimiter::dashmap(Quota::per_second(per_second).allow_burst(burst))
            .with_middleware::<StateInformationMiddleware>();
        Self { limiter: Arc::new(limiter), config }
    }

    pub fn check(&self, client: &str) -> Decision {
        match self.limiter.check_key(&client.to_owned()) {
            Ok(state) => {
                let remaining = state.remaining_burst_capacity();
                let missing = self.config.burst.saturating_sub(remaining);
                Decision {
                    allowed: true,
                    remaining,
                    reset: u64::from(missing).div_ceil(u64::from(self.config.per_second.max(1))),
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Decision { allowed: false, remaining: 0, reset: wait.as_secs_f64().ceil().max(1.0) as u64 }
            }
        }
    }

    pub fn headers(&self, decision: &Decision, headers: &mut HeaderMap) {
        headers.insert("ratelimit-limit", HeaderValue::from(self.config.burst));
        headers.insert("ratelimit-remaining", HeaderValue::from(decision.remaining));
        headers.insert("ratelimit-reset", HeaderValue::from(decision.reset));
    }

    /// Forgets clients idle long enough to have their whole burst back; run now and then so
    /// the table does not grow without bound.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_burst_then_429_and_others_are_unaffected() {
        let limits = RateLimits::new(RateConfig { per_second: 1, burst: 3 });
        let remaining: Vec<u32> = (0..3).map(|_| limits.check("alice").remaining).collect();
        assert_eq!(remaining, [2, 1, 0]);
        let denied = limits.check("alice");
        assert!(!denied.allowed);
        assert!(denied.reset >= 1);
        assert!(limits.check("bob").allowed);
    }
}
