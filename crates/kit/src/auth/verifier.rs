//! Verifying access tokens (EdDSA-signed JWTs) against the auth service's public keys.
//!
//! The auth service signs access tokens with an Ed25519 key and publishes the public keys as a
//! JWKS. Every other service, and the gateway, verifies tokens locally with a [`Verifier`]:
//! signature, algorithm (only EdDSA: `alg: none` and HMAC tricks are refused), issuer,
//! audience, expiry, and the revocations auth publishes (a user disabled or whose roles
//! changed, a session logged out). Keys and revocations are refreshed on a timer
//! ([`Verifier::keep_fresh`]), so a revoked key or session stops working within that interval.
//! A token naming a key id the cache does not know makes the verifier refetch the keys, at
//! most once per [`REFETCH_INTERVAL`] for all requests together; an id still unknown after a
//! fetch is remembered for [`UNKNOWN_KID_MEMORY`] and refused at once, so tokens with made-up
//! key ids cannot make requests queue. A verified token is remembered (bounded), so a
//! client's next requests skip the signature check; its expiry and revocation are checked
//! every time.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use serde::{Deserialize, Serialize};

use super::{Claims, TokenError, TokenSettings};
use crate::tasks::Background;

/// Refetch the JWKS for an unknown key id at most this often (all requests together).
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(1);
/// A key id still unknown after a fetch is refused without waiting this long.
pub const UNKNOWN_KID_MEMORY: Duration = Duration::from_secs(5);
/// Clock skew tolerated on `exp` and `iat`.
pub const LEEWAY_SECONDS: u64 = 5;
/// Verified tokens remembered (exact token text → key id and claims), so a client's repeated
/// requests skip the signature check; the expiry is still checked on every use. Cleared when full.
const MAX_REMEMBERED: usize = 10_000;
/// Unknown key ids remembered at most (cleared when full).
const MAX_UNKNOWN_KIDS: usize = 1_000;

/// Where a verifier finds the public keys.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A JWKS URL (e.g. `http://auth/.well-known/jwks.json`), fetched when needed.
    Url(String),
    /// A fixed key set (tests, or keys shipped by configuration).
    Fixed(JwkSet),
}

/// Access tokens to refuse before they expire, as `GET /auth/revocations` publishes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Revocations {
    /// User id → tokens issued before this instant (milliseconds since the epoch) are refused:
    /// the user was disabled, or their roles or password changed.
    pub users: HashMap<String, i64>,
    /// Sessions (the `sid` claim: a login) ended by logout or by a stolen refresh token.
    pub sessions: HashSet<String>,
}

impl Revocations {
    /// Whether a token with `claims` is revoked.
    pub fn refuses(&self, claims: &Claims) -> bool {
        self.users.get(&claims.sub).is_some_and(|not_before| claims.issued_at_ms() < *not_before)
            || claims.sid.as_ref().is_some_and(|sid| self.sessions.contains(sid))
    }
}

/// What a service needs to verify tokens: where the keys and revocations are, what tokens
/// must claim, and how often to refresh.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    pub keys: KeySource,
    pub tokens: TokenSettings,
    /// `GET` URL of the revocations (none: only expiry ends a token).
    pub revocations: Option<String>,
    /// How often keys and revocations are refreshed.
    pub refresh: Duration,
}

impl VerifierConfig {
    /// Keys from `PMS_JWKS_URL`, else from the auth service at `auth_url`, and revocations
    /// from that auth service, refreshed every `PMS_TOKEN_REFRESH_MS` (default 5 000);
    /// issuer and audience from `PMS_JWT_*`.
    pub fn from_env(auth_url: &str) -> Result<Self, crate::config::ConfigError> {
        let auth_url = auth_url.trim_end_matches('/');
        let url =
            crate::config::var("PMS_JWKS_URL").unwrap_or_else(|| format!("{auth_url}/.well-known/jwks.json"));
        Ok(Self {
            keys: KeySource::Url(url),
            tokens: TokenSettings::from_env(),
            revocations: Some(format!("{auth_url}/auth/revocations")),
            refresh: crate::config::millis_or("PMS_TOKEN_REFRESH_MS", Duration::from_secs(5))?,
        })
    }

    /// A fixed key set, nothing to refresh (tests, embedding).
    pub fn fixed(jwks: JwkSet, tokens: TokenSettings) -> Self {
        Self { keys: KeySource::Fixed(jwks), tokens, revocations: None, refresh: Duration::from_secs(5) }
    }

    /// A verifier whose keys and revocations are kept fresh on `background`.
    pub fn start(&self, background: &Background) -> Verifier {
        let verifier = Verifier::new(self.keys.clone(), self.tokens.clone());
        verifier.keep_fresh(background, self.revocations.clone(), self.refresh);
        verifier
    }
}

struct VerifierState {
    keys: RwLock<HashMap<String, DecodingKey>>,
    revocations: RwLock<Revocations>,
    verified: std::sync::Mutex<HashMap<String, (String, Claims)>>,
    unknown: std::sync::Mutex<HashMap<String, Instant>>,
    /// When the keys were last fetched; held only while fetching.
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
            revocations: RwLock::new(Revocations::default()),
            verified: std::sync::Mutex::new(HashMap::new()),
            unknown: std::sync::Mutex::new(HashMap::new()),
            last_fetch: tokio::sync::Mutex::new(None),
            source,
            settings,
        }))
    }

    /// A fixed set of keys.
    pub fn from_jwks(jwks: &JwkSet, settings: TokenSettings) -> Self {
        Self::new(KeySource::Fixed(jwks.clone()), settings)
    }

    /// Replaces the revocations (the auth service sets its own; others fetch them).
    pub fn set_revocations(&self, revocations: Revocations) {
        if let Ok(mut slot) = self.0.revocations.write() {
            *slot = revocations;
        }
    }

    /// Refreshes the keys (from a URL source) and the revocations (from `revocations`) every
    /// `every` on `background`, until it stops.
    pub fn keep_fresh(&self, background: &Background, revocations: Option<String>, every: Duration) {
        let KeySource::Url(jwks) = self.0.source.clone() else {
            return;
        };
        let verifier = self.clone();
        background.every("token key refresh", every, move || {
            let (verifier, jwks, revocations) = (verifier.clone(), jwks.clone(), revocations.clone());
            async move {
                if let Err(err) = verifier.fetch_keys(&jwks).await {
                    tracing::warn!(error = %err, "cannot refresh the token keys");
                }
                if let Some(url) = revocations {
                    match crate::client::get_json::<Revocations>(&url).await {
                        Ok(revocations) => verifier.set_revocations(revocations),
                        Err(err) => tracing::warn!(error = %err, "cannot refresh the token revocations"),
                    }
                }
            }
        });
    }

    /// Verifies `token` and returns its claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let claims = match self.remembered(token) {
            Some(claims) => claims,
            None => {
                let (kid, claims) = self.verify_signed(token).await?;
                if let Ok(mut verified) = self.0.verified.lock() {
                    if verified.len() >= MAX_REMEMBERED {
                        verified.clear();
                    }
                    verified.insert(token.to_owned(), (kid, claims.clone()));
                }
                claims
            }
        };
        let revoked = self.0.revocations.read().map(|r| r.refuses(&claims)).unwrap_or(false);
        if revoked { Err(TokenError::Revoked) } else { Ok(claims) }
    }

    /// The claims of a token verified before, if it has not expired since.
    fn remembered(&self, token: &str) -> Option<Claims> {
        let verified = self.0.verified.lock().ok()?;
        let (_, claims) = verified.get(token)?;
        (claims.exp + LEEWAY_SECONDS as i64 > unix_now()).then(|| claims.clone())
    }

    async fn verify_signed(&self, token: &str) -> Result<(String, Claims), TokenError> {
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
        let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid(e.to_string()),
            })?;
        Ok((kid, claims))
    }

    fn key(&self, kid: &str) -> Option<DecodingKey> {
        self.0.keys.read().ok().and_then(|keys| keys.get(kid).cloned())
    }

    /// Whether `kid` was still unknown after a recent fetch.
    fn known_unknown(&self, kid: &str) -> bool {
        self.0
            .unknown
            .lock()
            .ok()
            .and_then(|u| u.get(kid).copied())
            .is_some_and(|at| at.elapsed() < UNKNOWN_KID_MEMORY)
    }

    /// Fetches the keys for an unknown `kid`: at most once per [`REFETCH_INTERVAL`] for all
    /// requests together, never sleeping while holding the fetch lock. A request waits at
    /// most for the next fetch after it arrived, then has its answer.
    async fn refetch(&self, kid: &str) -> Result<(), TokenError> {
        let KeySource::Url(url) = &self.0.source else {
            return Ok(());
        };
        if self.known_unknown(kid) {
            return Ok(());
        }
        let arrived = Instant::now();
        loop {
            let wait = {
                let last = self.0.last_fetch.lock().await;
                if self.key(kid).is_some() || last.is_some_and(|at| at > arrived) {
                    // Found, or a fetch finished after this request arrived: that is its answer.
                    return Ok(());
                }
                match *last {
                    Some(at) if at.elapsed() < REFETCH_INTERVAL => REFETCH_INTERVAL - at.elapsed(),
                    _ => {
                        drop(last);
                        self.fetch_keys(url).await?;
                        if self.key(kid).is_none()
                            && let Ok(mut unknown) = self.0.unknown.lock()
                        {
                            if unknown.len() >= MAX_UNKNOWN_KIDS {
                                unknown.clear();
                            }
                            unknown.insert(kid.to_owned(), Instant::now());
                        }
                        return Ok(());
                    }
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Replaces the keys with those at `url`, and forgets remembered tokens whose key is gone
    /// (retired long enough, or revoked).
    async fn fetch_keys(&self, url: &str) -> Result<(), TokenError> {
        let mut last = self.0.last_fetch.lock().await;
        let jwks: JwkSet =
            crate::client::get_json(url).await.map_err(|e| TokenError::KeysUnavailable(e.to_string()))?;
        let keys = decoding_keys(&jwks);
        tracing::debug!(keys = keys.len(), "token keys fetched");
        if let Ok(mut verified) = self.0.verified.lock() {
            verified.retain(|_, (kid, _)| keys.contains_key(kid));
        }
        if let Ok(mut unknown) = self.0.unknown.lock() {
            unknown.retain(|kid, _| !keys.contains_key(kid));
        }
        if let Ok(mut cache) = self.0.keys.write() {
            *cache = keys;
        }
        *last = Some(Instant::now());
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
            sid: None,
            iat_ms: None,
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
            c.1.exp = unix_now() - 60;
        }
        assert!(verifier.remembered(&token).is_none());
        let expired = key.sign(&claims(-60));
        assert!(verifier.verify(&expired).await.is_err());
        assert!(verifier.remembered(&expired).is_none(), "refused tokens are not remembered");
    }

    #[tokio::test]
    async fn revoked_users_and_sessions_are_refused_even_when_remembered() {
        let (key, verifier) = setup();
        let mut in_session = claims(600);
        in_session.sid = Some("session-1".into());
        in_session.iat -= 10;
        let token = key.sign(&in_session);
        assert!(verifier.verify(&token).await.is_ok(), "remembered from here on");
        let mut revocations = Revocations::default();
        revocations.sessions.insert("session-1".into());
        verifier.set_revocations(revocations);
        assert!(matches!(verifier.verify(&token).await, Err(TokenError::Revoked)), "logged out");

        let mut revocations = Revocations::default();
        revocations.users.insert("user-1".into(), (in_session.iat + 1) * 1000);
        verifier.set_revocations(revocations.clone());
        assert!(matches!(verifier.verify(&token).await, Err(TokenError::Revoked)), "issued before the stamp");
        let mut later = claims(600);
        later.iat = in_session.iat + 1;
        assert!(verifier.verify(&key.sign(&later)).await.is_ok(), "issued at or after the stamp");
        assert!(revocations.refuses(&in_session) && !revocations.refuses(&later));
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
