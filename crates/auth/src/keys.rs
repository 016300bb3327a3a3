//! The Ed25519 keys that sign access tokens, stored in the `signing_keys` table.
//!
//! The newest key without `retired_at` signs. Rotating (`pms rotate-signing-key`) retires the
//! active key and creates a new one in one transaction; every auth replica reloads keys every
//! [`RELOAD_INTERVAL`], and the JWKS keeps publishing a retired key until every token it
//! signed has expired, so services verifying with a cached JWKS never see a gap: a token
//! signed by the new key names a key id they do not know, which makes them refetch.
//! Revoking (`pms revoke-signing-key KID`, for a key that may be compromised) stops publishing
//! the key at once; verifiers refresh their keys every few seconds and then refuse its tokens.

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::JwkSet};
use kit::{
    auth::{Claims, TokenSettings, Verifier},
    clock::Clock,
};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};
use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;

use crate::{
    error::{Error, Result},
    revocations,
    sealing::{self, KeySealer},
};

/// How often every auth replica re-reads the keys and the revocations its own verifier uses.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(5);

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

struct Loaded {
    active: SigningKey,
    jwks: Value,
    verifier: Verifier,
}

/// The signing keys, as last loaded from the database.
#[derive(Clone)]
pub struct KeyStore {
    pool: PgPool,
    /// Retired keys stay published this long (the access token lifetime plus leeway).
    publish_retired_for: Duration,
    settings: TokenSettings,
    access_ttl: Duration,
    /// Opens sealed signing keys (`PMS_AUTH_KEY_ENCRYPTION_KEY`).
    sealer: Option<KeySealer>,
    clock: Clock,
    loaded: Arc<RwLock<Loaded>>,
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(e.to_string())
}

async fn lock(tx: &mut Transaction<'_, Postgres>) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('pms.auth.signing_keys'))").execute(&mut **tx).await?;
    Ok(())
}

/// Creates a signing key, its private half sealed when the installation has a key-encryption
/// key (crate::sealing).
async fn insert_new_key(tx: &mut Transaction<'_, Postgres>, sealer: Option<&KeySealer>) -> Result<String> {
    let kid = format!("pms-{}", uuid::Uuid::now_v7().simple());
    let (key, pkcs8) = SigningKey::generate(kid.clone()).map_err(|_| internal("key generation failed"))?;
    let pkcs8 = match sealer {
        Some(sealer) => sealer.seal(&kid, &pkcs8).map_err(internal)?,
        None => pkcs8,
    };
    sqlx::query(
        "INSERT INTO signing_keys (kid, private_key, public_key, created_at) VALUES ($1, $2, $3, now())",
    )
    .bind(&kid)
    .bind(pkcs8)
    .bind(&key.public)
    .execute(&mut **tx)
    .await?;
    Ok(kid)
}

impl KeyStore {
    /// Loads the keys, creating the first one if there is none.
    pub async fn load(
        pool: PgPool,
        settings: TokenSettings,
        access_ttl: Duration,
        clock: Clock,
        sealer: Option<KeySealer>,
    ) -> Result<Self> {
        let mut tx = pool.begin().await?;
        lock(&mut tx).await?;
        let active: Option<String> = sqlx::query_scalar(
            "SELECT kid FROM signing_keys WHERE retired_at IS NULL AND revoked_at IS NULL LIMIT 1",
        )
        .fetch_optional(&mut *tx)
        .await?;
        if active.is_none() {
            let kid = insert_new_key(&mut tx, sealer.as_ref()).await?;
            tracing::info!(kid, "created the first token signing key");
        }
        tx.commit().await?;
        let publish_retired_for = revocations::window(access_ttl);
        let store = Self {
            loaded: Arc::new(RwLock::new(
                Self::read(&pool, &settings, publish_retired_for, sealer.as_ref()).await?,
            )),
            pool,
            sealer,
            publish_retired_for,
            settings,
            access_ttl,
            clock,
        };
        store.reload().await?;
        Ok(store)
    }

    /// Revokes key `kid` at once: it is no longer published, so the tokens it signed stop
    /// verifying as soon as verifiers refresh their keys (seconds). If it was the signing key,
    /// a new one takes over. Returns whether there was such a key.
    pub async fn revoke(pool: &PgPool, kid: &str, sealer: Option<&KeySealer>) -> Result<bool> {
        let mut tx = pool.begin().await?;
        lock(&mut tx).await?;
        let was_active: Option<bool> = sqlx::query_scalar(
            "SELECT retired_at IS NULL FROM signing_keys WHERE kid = $1 AND revoked_at IS NULL",
        )
        .bind(kid)
        .fetch_optional(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE signing_keys SET revoked_at = now(), retired_at = coalesce(retired_at, now()) WHERE kid = $1",
        )
        .bind(kid)
        .execute(&mut *tx)
        .await?;
        if was_active == Some(true) {
            let new = insert_new_key(&mut tx, sealer).await?;
            tracing::warn!(revoked = kid, new, "the revoked key was signing; a new key signs now");
        }
        tx.commit().await?;
        Ok(was_active.is_some())
    }

    /// Retires the active key and creates a new one; returns the new key id.
    pub async fn rotate(pool: &PgPool, sealer: Option<&KeySealer>) -> Result<String> {
        let mut tx = pool.begin().await?;
        lock(&mut tx).await?;
        sqlx::query(
            "UPDATE signing_keys SET retired_at = now() WHERE retired_at IS NULL AND revoked_at IS NULL",
        )
        .execute(&mut *tx)
        .await?;
        let kid = insert_new_key(&mut tx, sealer).await?;
        tx.commit().await?;
        Ok(kid)
    }

    async fn read(
        pool: &PgPool,
        settings: &TokenSettings,
        publish_retired_for: Duration,
        sealer: Option<&KeySealer>,
    ) -> Result<Loaded> {
        let cutoff = OffsetDateTime::now_utc() - publish_retired_for;
        #[derive(sqlx::FromRow)]
        struct KeyRow {
            kid: String,
            private_key: Vec<u8>,
            public_key: Vec<u8>,
            retired_at: Option<OffsetDateTime>,
        }
        let rows: Vec<KeyRow> = sqlx::query_as(
            "SELECT kid, private_key, public_key, retired_at FROM signing_keys
             WHERE revoked_at IS NULL AND (retired_at IS NULL OR retired_at > $1) ORDER BY created_at DESC",
        )
        .bind(cutoff)
        .fetch_all(pool)
        .await?;
        let newest =
            rows.iter().find(|r| r.retired_at.is_none()).ok_or_else(|| internal("no active signing key"))?;
        let pkcs8 = sealing::open(sealer, &newest.kid, &newest.private_key).map_err(internal)?;
        let active = SigningKey::from_pkcs8(newest.kid.clone(), &pkcs8)
            .map_err(|_| internal("unreadable signing key"))?;
        let jwks =
            json!({ "keys": rows.iter().map(|r| public_jwk(&r.kid, &r.public_key)).collect::<Vec<_>>() });
        let set: JwkSet = serde_json::from_value(jwks.clone()).map_err(internal)?;
        Ok(Loaded { active, verifier: Verifier::from_jwks(&set, settings.clone()), jwks })
    }

    /// Re-reads the keys and the revocations (picks up rotations, revocations and logouts
    /// made by other processes or requests).
    pub async fn reload(&self) -> Result<()> {
        let loaded =
            Self::read(&self.pool, &self.settings, self.publish_retired_for, self.sealer.as_ref()).await?;
        let now = self.clock.now();
        loaded.verifier.set_revocations(revocations::current(&self.pool, self.access_ttl, now).await?);
        if let Ok(mut slot) = self.loaded.write() {
            *slot = loaded;
        }
        Ok(())
    }

    pub fn active(&self) -> Result<SigningKey> {
        self.loaded.read().map(|l| l.active.clone()).map_err(|_| internal("key store poisoned"))
    }

    /// The published public keys (JWKS document).
    pub fn jwks(&self) -> Value {
        self.loaded.read().map(|l| l.jwks.clone()).unwrap_or_else(|_| json!({ "keys": [] }))
    }

    /// A verifier for tokens signed by the published keys.
    pub fn verifier(&self) -> Verifier {
        match self.loaded.read() {
            Ok(l) => l.verifier.clone(),
            Err(_) => Verifier::from_jwks(&JwkSet { keys: Vec::new() }, self.settings.clone()),
        }
    }
}
