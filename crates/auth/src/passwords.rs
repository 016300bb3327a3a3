//! Password hashing with Argon2id (RFC 9106 via the `argon2` crate's defaults: 19 MiB, two
//! passes), run off the async workers because it is deliberately slow.

use std::{
    sync::{Arc, LazyLock},
    time::Duration,
};

use argon2::{
    Argon2,
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng},
};
use kit::FieldError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};

pub const MIN_LENGTH: usize = 12;
pub const MAX_LENGTH: usize = 128;

/// A hash of a random password, verified against when the account does not exist, so that a
/// wrong email costs the same time as a wrong password.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_now(&uuid::Uuid::new_v4().to_string()).unwrap_or_default());

fn hash_now(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("password hashing failed: {e}")))
}

fn verify_now(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Runs Argon2 with a bounded number of hashes at once: each takes 19 MiB and a core for tens
/// of milliseconds, so a flood of logins must queue (and soon answer 503), not exhaust memory.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
}

/// How long a login waits for a free hashing slot before answering 503.
const HASH_QUEUE_TIMEOUT: Duration = Duration::from_secs(2);

impl Hasher {
    pub fn new(at_once: usize) -> Self {
        Self { permits: Arc::new(Semaphore::new(at_once.max(1))) }
    }

    async fn slot(&self) -> Result<OwnedSemaphorePermit> {
        match tokio::time::timeout(HASH_QUEUE_TIMEOUT, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Error::Busy),
        }
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: String) -> Result<String> {
        let permit = self.slot().await?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            hash_now(&password)
        })
        .await
        .map_err(|e| Error::Internal(format!("hashing task failed: {e}")))?
    }

    /// Checks `password` against `hash`, or against a dummy hash when there is none.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool> {
        let permit = self.slot().await?;
        Ok(tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let hash = hash.unwrap_or_else(|| DUMMY_HASH.clone());
            verify_now(&password, &hash)
        })
        .await
        .unwrap_or(false))
    }
}

/// Computes the dummy hash now rather than during the first login.
pub fn warm_up() {
    LazyLock::force(&DUMMY_HASH);
}

/// The password policy: length only (NIST SP 800-63B), checked where passwords are set.
pub fn check_policy(password: &str, pointer: &str) -> Option<FieldError> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        Some(FieldError::body(pointer, format!("must be at least {MIN_LENGTH} characters")))
    } else if length > MAX_LENGTH {
        Some(FieldError::body(pointer, format!("must be at most {MAX_LENGTH} characters")))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_only_its_password() {
        let hasher = Hasher::new(2);
        let hashed = hasher.hash("correct horse battery".into()).await.expect("hash");
        assert!(hashed.starts_with("$argon2id$"));
        assert!(hasher.verify("correct horse battery".into(), Some(hashed.clone())).await.expect("slot"));
        assert!(!hasher.verify("wrong horse battery".into(), Some(hashed)).await.expect("slot"));
        assert!(!hasher.verify("anything".into(), None).await.expect("slot"));
    }

    #[tokio::test(start_paused = true)]
    async fn hashing_is_bounded_and_a_full_queue_answers_busy() {
        let hasher = Hasher::new(1);
        let held = hasher.slot().await.expect("the only slot");
        assert!(matches!(hasher.verify("x".into(), None).await, Err(Error::Busy)), "no second hash at once");
        drop(held);
        assert!(hasher.slot().await.is_ok());
    }

    #[test]
    fn the_policy_wants_12_to_128_characters() {
        assert!(check_policy("short", "/p").is_some());
        assert!(check_policy("twelve chars", "/p").is_none());
        assert!(check_policy(&"x".repeat(129), "/p").is_some());
    }
}
