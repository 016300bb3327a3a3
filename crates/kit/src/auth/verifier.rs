//! Verifying access tokens (EdDSA-signed JWTs) against the auth service's public keys.
//!
//! The auth service signs access tokens with an Ed25519 key and publishes the public keys as a
//! JWKS. Every other service, and the gateway, verifies tokens locally with a [`Verifier`]:
//! signature, algorithm (only EdDSA: `alg: none` and HMAC tricks are refused), issuer,
//! audience and expiry. Keys are cached and refetched when a token names a key id the cache
//! does not know (a rotation), at most once per [`REFETCH_INTERVAL`]. A verified token is
//! remembered (bounded), so a client's next requests skip the signature check; its expiry is
//! still checked every time.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};

use super::{Claims, TokenError, TokenSettings};

/// Refetch the JWKS for an unknown key id at most this often. A token naming an unknown key
/// within this interval of the last fetch waits for the interval to pass, then the keys are
/// fetched again: a freshly rotated key is never refused, and tokens with made-up key ids
/// cannot make the verifier hammer the auth service.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(1);
/// Clock skew tolerated on `exp` and `iat`.
pub const LEEWAY_SECONDS: u64 = 5;
/// Verified tokens remembered (exact token text → claims), so a client's repeated requests
/// skip the signature check; the expiry is still checked on every use. Cleared when full.
const MAX_REMEMBERED: usize = 10_000;

/// Where a verifier finds the public keys.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A JWKS URL (e.g. `http://auth/.well-known/jwks.json`), fetched when needed.
    Url(String),
    /// A fixed key set (tests, or keys shipped by configuration).
    Fixed(JwkSet),
}

/// What a service needs to verify tokens: where the keys are and what tokens must claim.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    pub keys: KeySource,
    pub tokens: TokenSettings,
}

impl VerifierConfig {
    /// Keys from `PMS_JWKS_URL`, else from the auth service at `auth_url`; issuer and
    /// audience from `PMS_JWT_*`.
    pub fn from_env(auth_url: &str) -> Self {
        let url = crate::config::var("PMS_JWKS_URL")
            .unwrap_or_else(|| format!("{}/.well-known/jwks.json", auth_url.trim_end_matches('/')));
        Self { keys: KeySource::Url(url), tokens: TokenSettings::from_env() }
    }

    pub fn verifier(&self) -> Verifier {
        Verifier::new(self.keys.clone(), self.tokens.clone())
    }
}

struct VerifierState {
    keys: RwLock<HashMap<String, DecodingKey>>,
    verified: std::sync::Mutex<HashMap<String, Claims>>,
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    source: KeySource,
    settings: TokenSettings,
}

/// Verifies access tokens against the auth service's public keys.
#[derive(Clone)]
pub struct Verifier(Arc<VerifierState>);

impl Verifier {
    pub fn new(source: KeySource, settings: TokenSettings) -> Self {
        let keys = match &source {
            KeySource::Fixed(jwks) => decoding_keys(jwks),
            KeySource::Url(_) => HashMap::new(),
        };
        Self(Arc::new(VerifierState {
            keys: RwLock::new(keys),
            verified: std::sync::Mutex::new(HashMap::new()),
            last_fetch: tokio::sync::Mutex::new(None),
            source,
            settings,
        }))
    }

    /// A fixed set of keys.
    pub fn from_jwks(jwks: &JwkSet, settings: TokenSettings) -> Self {
        Self::new(KeySource::Fixed(jwks.clone()), settings)
    }

    /// Verifies `token` and returns its claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        if let Some(claims) = self.remembered(token) {
            return Ok(claims);
        }
        let claims = self.verify_signed(token).await?;
        if let Ok(mut verified) = self.0.verified.lock() {
            if verified.len() >= MAX_REMEMBERED {
                verified.clear();
            }
            verified.insert(token.to_owned(), claims.clone());
        }
        Ok(claims)
    }

    /// The claims of a token verified before, if it has not expired since.
    fn remembered(&self, token: &str) -> Option<Claims> {
        let verified = self.0.verified.lock().ok()?;
        let claims = verified.get(token)?;
        (claims.exp + LEEWAY_SECONDS as i64 > unix_now()).then(|| claims.clone())
    }

    async fn verify_signed(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| TokenError::Invalid(e.to_string()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Invalid("algorithm not accepted".into()));
        }
        let kid = header.kid.ok_or_else(|| TokenError::Invalid("no key id".into()))?;
        let key = match self.key(&kid) {
            Some(key) => key,
            None => {
                self.refetch(&kid).await?;
                self.key(&kid).ok_or_else(|| TokenError::Invalid("unknown key id".into()))?
            }
        };
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.0.settings.issuer]);
        validation.set_audience(&[&self.0.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        jsonwebtoken::decode::<Claims>(token, &key, &validation).map(|data| data.claims).map_err(|e| match e
            .kind()
        {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
            _ => TokenError::Invalid(e.to_string()),
        })
    }

    fn key(&self, kid: &str) -> Option<DecodingKey> {
        self.0.keys.read().ok().and_then(|keys| keys.get(kid).cloned())
    }

    async fn refetch(&self, kid: &str) -> Result<(), TokenError> {
        let KeySource::Url(url) = &self.0.source else {
            return Ok(());
        };
        let mut last = self.0.last_fetch.lock().await;
        if self.key(kid).is_some() {
            // Fetched by another request while this one waited for the lock.
            return Ok(());
        }
        if let Some(since) = last.map(|at| at.elapsed())
            && since < REFETCH_INTERVAL
        {
            tokio::time::sleep(REFETCH_INTERVAL - since).await;
        }
        *last = Some(Instant::now());
        let jwks: JwkSet =
            crate::client::get_json(url).await.map_err(|e| TokenError::KeysUnavailable(e.to_string()))?;
        let keys = decoding_keys(&jwks);
        tracing::info!(keys = keys.len(), "token keys fetched");
        if let Ok(mut cache) = self.0.keys.write() {
            *cache = keys;
        }
        Ok(())
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn decoding_keys(jwks: &JwkSet) -> HashMap<String, DecodingKey> {
    jwks.keys
        .iter()
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            DecodingKey::from_jwk(jwk).ok().map(|key| (kid, key))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

    use super::*;
    use crate::{auth::Role, testing::TestKey};

    fn settings() -> TokenSettings {
        TokenSettings { issuer: "pms-auth".into(), audience: "pms".into() }
    }

    fn claims(exp_in: i64) -> Claims {
        let now = unix_now();
        Claims {
            iss: "pms-auth".into(),
            aud: "pms".into(),
            sub: "user-1".into(),
            roles: vec![Role::Clinician],
            iat: now,
            exp: now + exp_in,
            jti: "t1".into(),
        }
    }

    fn setup() -> (TestKey, Verifier) {
        let key = TestKey::generate("k1");
        (key.clone(), Verifier::from_jwks(&key.jwks(), settings()))
    }

    #[tokio::test]
    async fn a_signed_token_verifies_and_keeps_its_roles() {
        let (key, verifier) = setup();
        let token = key.sign(&claims(60));
        let verified = verifier.verify(&token).await.expect("valid");
        assert_eq!(verified.roles, [Role::Clinician]);
    }

    #[tokio::test]
    async fn a_remembered_token_is_refused_once_it_expires() {
        let (key, verifier) = setup();
        let token = key.sign(&claims(60));
        assert!(verifier.verify(&token).await.is_ok());
        assert!(verifier.remembered(&token).is_some(), "verified tokens are remembered");
        // Pretend time passed: the remembered claims say it expired a minute ago.
        if let Ok(mut verified) = verifier.0.verified.lock()
            && let Some(c) = verified.get_mut(&token)
        {
            c.exp = unix_now() - 60;
        }
        assert!(verifier.remembered(&token).is_none());
        let expired = key.sign(&claims(-60));
        assert!(verifier.verify(&expired).await.is_err());
        assert!(verifier.remembered(&expired).is_none(), "refused tokens are not remembered");
    }

    #[tokio::test]
    async fn expired_tampered_unsigned_and_foreign_tokens_are_refused() {
        let (key, verifier) = setup();
        let expired = key.sign(&claims(-60));
        assert!(matches!(verifier.verify(&expired).await, Err(TokenError::Expired)));

        let token = key.sign(&claims(60));
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut payload: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).expect("b64")).expect("json");
        payload["roles"] = serde_json::json!(["admin"]);
        parts[1] = URL_SAFE_NO_PAD.encode(payload.to_string());
        assert!(verifier.verify(&parts.join(".")).await.is_err(), "tampered payload");

        let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT","kid":"k1"}"#);
        let unsigned = format!("{none_header}.{}.", parts[1]);
        assert!(verifier.verify(&unsigned).await.is_err(), "alg none");

        let mut wrong_aud = claims(60);
        wrong_aud.aud = "someone-else".into();
        assert!(verifier.verify(&key.sign(&wrong_aud)).await.is_err(), "audience");

        let other = TestKey::generate("k1");
        assert!(verifier.verify(&other.sign(&claims(60))).await.is_err(), "foreign key");
    }
}
