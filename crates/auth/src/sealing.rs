//! The token signing keys at rest: sealed (AES-256-GCM) with a key-encryption key that lives in
//! a secret store (`PMS_AUTH_KEY_ENCRYPTION_KEY`: AWS Secrets Manager, a Kubernetes Secret), not
//! in the database. Whoever reads the database or a backup of it cannot sign tokens.
//!
//! A sealed key is `MAGIC || nonce (12) || ciphertext || tag`, with the key id as additional
//! data, so a sealed key cannot be moved to another row. Keys stored unsealed (an installation
//! that had no key-encryption key when they were made, such as a laptop) stay readable; they are
//! replaced at the next rotation.

use std::sync::Arc;

use kit::config::{self, ConfigError};
use ring::{
    aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    hkdf,
    rand::{SecureRandom, SystemRandom},
};

const MAGIC: &[u8] = b"pms-sealed-v1:";
/// The key-encryption key's least length: it is a generated secret, not a password.
const MIN_SECRET_LEN: usize = 32;

/// Seals and opens signing keys with the installation's key-encryption key.
#[derive(Clone)]
pub struct KeySealer {
    key: Arc<LessSafeKey>,
}

impl std::fmt::Debug for KeySealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeySealer(<secret>)")
    }
}

impl KeySealer {
    /// From a secret of at least 32 characters (any text: a secret store's generated string);
    /// the AES key is derived from it with HKDF-SHA256.
    pub fn from_secret(secret: &[u8]) -> Result<Self, String> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(format!("must be at least {MIN_SECRET_LEN} characters of generated secret"));
        }
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"pms auth signing keys").extract(secret);
        let okm =
            prk.expand(&[b"aes-256-gcm"], &AES_256_GCM).map_err(|_| "cannot derive a key".to_owned())?;
        let key = UnboundKey::from(okm);
        Ok(Self { key: Arc::new(LessSafeKey::new(key)) })
    }

    /// `PMS_AUTH_KEY_ENCRYPTION_KEY`, if set.
    pub fn from_env() -> Result<Option<Self>, ConfigError> {
        let name = "PMS_AUTH_KEY_ENCRYPTION_KEY";
        config::var(name)
            .map(|secret| {
                Self::from_secret(secret.as_bytes())
                    .map_err(|reason| ConfigError::Invalid { name: name.to_owned(), reason })
            })
            .transpose()
    }

    /// `pkcs8` sealed for the row of key `kid`.
    pub fn seal(&self, kid: &str, pkcs8: &[u8]) -> Result<Vec<u8>, String> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| "no randomness".to_owned())?;
        let mut sealed = pkcs8.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(kid.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| "cannot seal the signing key".to_owned())?;
        Ok([MAGIC, &nonce, &sealed].concat())
    }
}

/// Whether a stored private key is sealed.
pub fn is_sealed(stored: &[u8]) -> bool {
    stored.starts_with(MAGIC)
}

/// The PKCS#8 document of the key `kid` as stored: opened with `sealer` if sealed.
pub fn open(sealer: Option<&KeySealer>, kid: &str, stored: &[u8]) -> Result<Vec<u8>, String> {
    let Some(body) = stored.strip_prefix(MAGIC) else {
        return Ok(stored.to_vec());
    };
    let sealer = sealer
        .ok_or_else(|| format!("signing key {kid} is sealed and PMS_AUTH_KEY_ENCRYPTION_KEY is not set"))?;
    if body.len() < NONCE_LEN {
        return Err(format!("signing key {kid} is damaged"));
    }
    let (nonce, sealed) = body.split_at(NONCE_LEN);
    let nonce =
        Nonce::try_assume_unique_for_key(nonce).map_err(|_| format!("signing key {kid} is damaged"))?;
    let mut buffer = sealed.to_vec();
    let plain = sealer
        .key
        .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buffer)
        .map_err(|_| format!("signing key {kid} does not open with PMS_AUTH_KEY_ENCRYPTION_KEY"))?;
    Ok(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(secret: &str) -> KeySealer {
        KeySealer::from_secret(secret.as_bytes()).expect("a sealer")
    }

    #[test]
    fn a_sealed_key_opens_only_with_its_secret_and_for_its_own_row() {
        let pkcs8 = b"private key material".to_vec();
        let right = sealer("0123456789abcdef0123456789abcdef");
        let sealed = right.seal("kid-1", &pkcs8).expect("sealed");
        assert!(is_sealed(&sealed));
        assert!(!sealed.windows(pkcs8.len()).any(|w| w == pkcs8.as_slice()), "no plaintext at rest");
        assert_eq!(open(Some(&right), "kid-1", &sealed).expect("opens"), pkcs8);

        let wrong = sealer("another secret of at least 32 chars!");
        assert!(open(Some(&wrong), "kid-1", &sealed).is_err(), "another secret");
        assert!(open(Some(&right), "kid-2", &sealed).is_err(), "moved to another row");
        let missing = open(None, "kid-1", &sealed).expect_err("without the secret");
        assert!(missing.contains("PMS_AUTH_KEY_ENCRYPTION_KEY"), "{missing}");
        let mut tampered = sealed.clone();
        if let Some(last) = tampered.last_mut() {
            *last ^= 1;
        }
        assert!(open(Some(&right), "kid-1", &tampered).is_err(), "tampered");
    }

    #[test]
    fn keys_stored_before_sealing_stay_readable() {
        assert_eq!(open(None, "kid", b"plain").expect("plain"), b"plain");
        assert_eq!(
            open(Some(&sealer("0123456789abcdef0123456789abcdef")), "kid", b"plain").expect("plain"),
            b"plain"
        );
    }

    #[test]
    fn a_short_secret_is_refused() {
        assert!(KeySealer::from_secret(b"short").is_err());
    }
}
