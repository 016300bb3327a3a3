//! Access and refresh tokens.
//!
//! An access token is a JWT signed with the active key, valid for `access_ttl` (15 minutes by
//! default); services verify it without calling auth. A refresh token is 32 random bytes,
//! stored only as its SHA-256, valid once: refreshing marks it used and issues the next token
//! of the same family. A used token presented again means two parties hold it, so the whole
//! family is revoked. A disabled user cannot refresh.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use kit::auth::Claims;
use ring::{digest, rand::SecureRandom};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    AuthState,
    error::{Error, Result},
    users::{User, UserId},
};

/// What login and refresh answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenPair {
    /// A JWT to send as `Authorization: Bearer <accessToken>`.
    pub access_token: String,
    /// The same access token, under the name clients of the system pms replaces read.
    pub token: String,
    /// Single use: exchange it at `/auth/refresh` for a new pair.
    pub refresh_token: String,
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

fn hash(token: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, token.as_bytes()).as_ref().to_vec()
}

fn random_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut bytes).map_err(|_| Error::Internal("no randomness".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Issues an access token for `user` and the next refresh token of `family`.
pub async fn issue(
    state: &AuthState,
    conn: &mut PgConnection,
    user: &User,
    family: Uuid,
) -> Result<TokenPair> {
    let now = OffsetDateTime::now_utc();
    let ttl = state.config.access_ttl;
    let claims = Claims {
        iss: state.config.tokens.issuer.clone(),
        aud: state.config.tokens.audience.clone(),
        sub: user.id.to_string(),
        roles: user.roles.clone(),
        iat: now.unix_timestamp(),
        exp: now.unix_timestamp() + ttl.as_secs() as i64,
        jti: Uuid::new_v4().to_string(),
    };
    let access_token = state.keys.active()?.sign(&claims).map_err(|e| Error::Internal(e.to_string()))?;
    let refresh_token = random_token()?;
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, family_id, user_id, issued_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(hash(&refresh_token))
    .bind(family)
    .bind(user.id)
    .bind(now)
    .bind(now + state.config.refresh_ttl)
    .execute(conn)
    .await?;
    Ok(TokenPair {
        token: access_token.clone(),
        access_token,
        refresh_token,
        token_type: "Bearer".into(),
        expires_in: ttl.as_secs(),
    })
}

async fn revoke_family(conn: &mut PgConnection, family: Uuid) -> Result<()> {
    sqlx::query("UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL")
        .bind(family)
        .execute(conn)
        .await?;
    Ok(())
}

/// Exchanges a refresh token for a new pair (rotation), detecting reuse.
pub async fn refresh(state: &AuthState, token: &str) -> Result<TokenPair> {
    let mut tx = state.pool.begin().await?;
    #[derive(sqlx::FromRow)]
    struct RefreshRow {
        family_id: Uuid,
        user_id: UserId,
        expires_at: OffsetDateTime,
        used_at: Option<OffsetDateTime>,
        revoked_at: Option<OffsetDateTime>,
    }
    let row: Option<RefreshRow> = sqlx::query_as(
        "SELECT family_id, user_id, expires_at, used_at, revoked_at FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
    )
    .bind(hash(token))
    .fetch_optional(&mut *tx)
    .await?;
    let Some(RefreshRow { family_id: family, user_id, expires_at, used_at, revoked_at }) = row else {
        return Err(Error::InvalidRefreshToken);
    };
    if revoked_at.is_some() || expires_at < OffsetDateTime::now_utc() {
        return Err(Error::InvalidRefreshToken);
    }
    if used_at.is_some() {
        // Reuse: whoever holds the newer token loses it too. The revocation must stick even
        // though the answer is an error.
        revoke_family(&mut tx, family).await?;
        tx.commit().await?;
        tracing::warn!(user = %user_id, "refresh token reused; its family is revoked");
        return Err(Error::InvalidRefreshToken);
    }
    let user = state.users.get(user_id).await?;
    if !user.enabled {
        revoke_family(&mut tx, family).await?;
        tx.commit().await?;
        return Err(Error::InvalidRefreshToken);
    }
    sqlx::query("UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1")
        .bind(hash(token))
        .execute(&mut *tx)
        .await?;
    let pair = issue(state, &mut tx, &user, family).await?;
    tx.commit().await?;
    Ok(pair)
}

/// Revokes the family of a refresh token. Unknown tokens are ignored (logout is idempotent).
pub async fn logout(state: &AuthState, token: &str) -> Result<()> {
    let family: Option<Uuid> =
        sqlx::query_scalar("SELECT family_id FROM refresh_tokens WHERE token_hash = $1")
            .bind(hash(token))
            .fetch_optional(&state.pool)
            .await?;
    if let Some(family) = family {
        let mut conn = state.pool.acquire().await?;
        revoke_family(&mut conn, family).await?;
    }
    Ok(())
}

/// Deletes refresh tokens that expired long ago.
pub async fn prune(state: &AuthState) -> Result<u64> {
    let cutoff = OffsetDateTime::now_utc() - time::Duration::days(1);
    Ok(sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1")
        .bind(cutoff)
        .execute(&state.pool)
        .await?
        .rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_are_long_random_and_stored_hashed() {
        let a = random_token().expect("token");
        let b = random_token().expect("token");
        assert_ne!(a, b);
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).expect("base64").len(), 32);
        assert_eq!(hash(&a).len(), 32);
        assert_ne!(hash(&a), a.as_bytes());
    }
}
