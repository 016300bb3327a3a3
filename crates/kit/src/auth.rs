//! Who is calling: access tokens (EdDSA-signed JWTs), the keys that verify them, and roles.
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

use axum::{
    extract::{FromRef, FromRequestParts},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, jwk::JwkSet};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::problem::{Problem, kinds};

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

/// What a user may do; see docs/security.md for the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including user administration and the audit trail.
    Admin,
    /// Registers and edits patients, books appointments.
    Receptionist,
    /// Reads patients, manages appointments.
    Clinician,
    /// Billing data.
    Billing,
    /// Aggregated analytics only, no patient-identifying data.
    Analyst,
}

impl Role {
    pub const ALL: [Role; 5] =
        [Role::Admin, Role::Receptionist, Role::Clinician, Role::Billing, Role::Analyst];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Receptionist => "receptionist",
            Role::Clinician => "clinician",
            Role::Billing => "billing",
            Role::Analyst => "analyst",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// The claims of a pms access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: String,
    pub roles: Vec<Role>,
    pub iat: i64,
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
}

/// Issuer and audience every token must carry.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub issuer: String,
    pub audience: String,
}

impl TokenSettings {
    /// From `PMS_JWT_ISSUER` (default `pms-auth`) and `PMS_JWT_AUDIENCE` (default `pms`).
    pub fn from_env() -> Self {
        Self {
            issuer: crate::config::var("PMS_JWT_ISSUER").unwrap_or_else(|| "pms-auth".into()),
            audience: crate::config::var("PMS_JWT_AUDIENCE").unwrap_or_else(|| "pms".into()),
        }
    }
}

/// Why a token was refused. Deliberately coarse towards clients.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no bearer token")]
    Missing,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("token expired")]
    Expired,
    #[error("the signing keys cannot be fetched: {0}")]
    KeysUnavailable(String),
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        if let TokenError::KeysUnavailable(err) = &self {
            tracing::warn!(error = %err, "cannot fetch the token keys");
            return Problem::unavailable("tokens cannot be verified right now").into_response();
        }
        let (code, detail) = match &self {
            TokenError::Missing => (None, "send `Authorization: Bearer <access token>`"),
            TokenError::Expired => (Some("invalid_token"), "the access token has expired; refresh it"),
            _ => (Some("invalid_token"), "the access token is not valid"),
        };
        unauthorized(detail, code)
    }
}

/// A 401 problem with its `WWW-Authenticate: Bearer` challenge; `error` is the RFC 6750 error
/// code (`invalid_token`), when there is one.
pub fn unauthorized(detail: &str, error: Option<&str>) -> Response {
    let mut response = Problem::new(StatusCode::UNAUTHORIZED, kinds::UNAUTHORIZED, "Unauthorized")
        .with_detail(detail)
        .into_response();
    let challenge = match error {
        Some(code) => format!("Bearer realm=\"pms\", error=\"{code}\""),
        None => "Bearer realm=\"pms\"".to_owned(),
    };
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

enum KeySource {
    Fixed,
    Url(String),
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
    /// Keys fetched from a JWKS URL (e.g. `http://auth/.well-known/jwks.json`) when needed.
    pub fn from_url(url: impl Into<String>, settings: TokenSettings) -> Self {
        Self::new(KeySource::Url(url.into()), HashMap::new(), settings)
    }

    /// A fixed set of keys (tests, or keys shipped by configuration).
    pub fn from_jwks(jwks: &JwkSet, settings: TokenSettings) -> Self {
        Self::new(KeySource::Fixed, decoding_keys(jwks), settings)
    }

    fn new(source: KeySource, keys: HashMap<String, DecodingKey>, settings: TokenSettings) -> Self {
        Self(Arc::new(VerifierState {
            keys: RwLock::new(keys),
            verified: std::sync::Mutex::new(HashMap::new()),
            last_fetch: tokio::sync::Mutex::new(None),
            source,
            settings,
        }))
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

/// An Ed25519 signing key with its key id.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    encoding: EncodingKey,
    /// The raw 32-byte public key.
    pub public: Vec<u8>,
}

impl SigningKey {
    /// A new random key; also returns its PKCS#8 document, to be stored.
    pub fn generate(kid: impl Into<String>) -> Result<(Self, Vec<u8>), ring::error::Unspecified> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())?;
        let key = Self::from_pkcs8(kid, pkcs8.as_ref())?;
        Ok((key, pkcs8.as_ref().to_vec()))
    }

    /// A stored key.
    pub fn from_pkcs8(kid: impl Into<String>, pkcs8: &[u8]) -> Result<Self, ring::error::Unspecified> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| ring::error::Unspecified)?;
        Ok(Self {
            kid: kid.into(),
            encoding: EncodingKey::from_ed_der(pkcs8),
            public: pair.public_key().as_ref().to_vec(),
        })
    }

    pub fn sign(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
    }

    /// The public key as a JWK (RFC 8037 OKP).
    pub fn jwk(&self) -> serde_json::Value {
        public_jwk(&self.kid, &self.public)
    }
}

/// A JWK for an Ed25519 public key.
pub fn public_jwk(kid: &str, public: &[u8]) -> serde_json::Value {
    serde_json::json!({
        "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
        "kid": kid, "x": URL_SAFE_NO_PAD.encode(public),
    })
}

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim()).filter(|t| !t.is_empty())
}

/// The verified caller of a request. Extracting it answers 401 when the token is missing or
/// invalid; [`Caller::require`] answers 403 for a role that may not act.
#[derive(Debug, Clone)]
pub struct Caller {
    pub claims: Claims,
}

impl Caller {
    pub fn user_id(&self) -> &str {
        &self.claims.sub
    }

    pub fn has_any(&self, allowed: &[Role]) -> bool {
        self.claims.roles.iter().any(|r| allowed.contains(r))
    }

    /// 403 unless the caller has one of `allowed`.
    pub fn require(&self, allowed: &[Role]) -> Result<(), Problem> {
        if self.has_any(allowed) { Ok(()) } else { Err(forbidden()) }
    }
}

/// The 403 problem.
pub fn forbidden() -> Problem {
    Problem::new(StatusCode::FORBIDDEN, kinds::FORBIDDEN, "Forbidden")
        .with_detail("your roles do not allow this operation")
}

impl<S> FromRequestParts<S> for Caller
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = TokenError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, TokenError> {
        let token = bearer(&parts.headers).ok_or(TokenError::Missing)?;
        let verifier = Verifier::from_ref(state);
        let claims = verifier.verify(token).await?;
        Ok(Caller { claims })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> TokenSettings {
        TokenSettings { issuer: "pms-auth".into(), audience: "pms".into() }
    }

    fn claims(exp_in: i64) -> Claims {
        let now = time_now();
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

    fn time_now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }

    fn setup() -> (SigningKey, Verifier) {
        let (key, _) = SigningKey::generate("k1").expect("key");
        let jwks: JwkSet = serde_json::from_value(serde_json::json!({ "keys": [key.jwk()] })).expect("jwks");
        (key, Verifier::from_jwks(&jwks, settings()))
    }

    #[tokio::test]
    async fn a_signed_token_verifies_and_keeps_its_roles() {
        let (key, verifier) = setup();
        let token = key.sign(&claims(60)).expect("sign");
        let verified = verifier.verify(&token).await.expect("valid");
        assert_eq!(verified.roles, [Role::Clinician]);
    }

    #[tokio::test]
    async fn a_remembered_token_is_refused_once_it_expires() {
        let (key, verifier) = setup();
        let token = key.sign(&claims(60)).expect("sign");
        assert!(verifier.verify(&token).await.is_ok());
        assert!(verifier.remembered(&token).is_some(), "verified tokens are remembered");
        // Pretend time passed: the remembered claims say it expired a minute ago.
        if let Ok(mut verified) = verifier.0.verified.lock()
            && let Some(c) = verified.get_mut(&token)
        {
            c.exp = time_now() - 60;
        }
        assert!(verifier.remembered(&token).is_none());
        // Re-verification of the signature still passes (the real token is valid), so only
        // a token whose own exp passed is refused: check that path with an expired one.
        let expired = key.sign(&claims(-60)).expect("sign");
        assert!(verifier.verify(&expired).await.is_err());
        assert!(verifier.remembered(&expired).is_none(), "refused tokens are not remembered");
    }

    #[tokio::test]
    async fn expired_tampered_unsigned_and_foreign_tokens_are_refused() {
        let (key, verifier) = setup();
        let expired = key.sign(&claims(-60)).expect("sign");
        assert!(matches!(verifier.verify(&expired).await, Err(TokenError::Expired)));

        let token = key.sign(&claims(60)).expect("sign");
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
        assert!(verifier.verify(&key.sign(&wrong_aud).expect("sign")).await.is_err(), "audience");

        let (other, _) = SigningKey::generate("k1").expect("key");
        assert!(verifier.verify(&other.sign(&claims(60)).expect("sign")).await.is_err(), "foreign key");
    }
}
