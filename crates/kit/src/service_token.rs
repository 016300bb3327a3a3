//! A service's own access token, for calls it makes on its own behalf (not for a user): got
//! from auth's `/internal/service-token` with the installation's service secret, kept until a
//! minute before it expires, then renewed on the next call.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::client::{ClientError, post_json};

/// Renew this long before expiry, so a token never expires in flight.
const RENEW_BEFORE: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct ServiceTokens {
    url: String,
    service: &'static str,
    secret: Option<String>,
    current: Arc<Mutex<Option<(String, Instant)>>>,
}

#[derive(Serialize)]
struct Ask<'a> {
    service: &'a str,
    secret: &'a str,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    access_token: String,
    expires_in: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceTokenError {
    #[error("no service secret is configured (PMS_SERVICE_SECRET)")]
    NoSecret,
    #[error("auth refused or failed: {0}")]
    Auth(#[from] ClientError),
}

impl ServiceTokens {
    /// Tokens for `service` from the auth service at `auth_url`.
    pub fn new(auth_url: &str, service: &'static str, secret: Option<String>) -> Self {
        Self {
            url: format!("{}/internal/service-token", auth_url.trim_end_matches('/')),
            service,
            secret,
            current: Arc::default(),
        }
    }

    /// A token valid for at least another minute.
    pub async fn get(&self) -> Result<String, ServiceTokenError> {
        let mut current = self.current.lock().await;
        if let Some((token, renew_at)) = current.as_ref()
            && Instant::now() < *renew_at
        {
            return Ok(token.clone());
        }
        let secret = self.secret.as_deref().ok_or(ServiceTokenError::NoSecret)?;
        let answer: Answer = post_json(&self.url, &Ask { service: self.service, secret }).await?;
        let lifetime = Duration::from_secs(answer.expires_in).saturating_sub(RENEW_BEFORE);
        *current = Some((answer.access_token.clone(), Instant::now() + lifetime));
        Ok(answer.access_token)
    }

    /// Forgets the token (after a call refused it), so the next [`get`](Self::get) renews it.
    pub async fn forget(&self) {
        *self.current.lock().await = None;
    }
}
