//! Access and refresh tokens.
//!
//! An access token is a JWT signed with the active key, valid for `access_ttl` (15 minutes by
//! default); services verify it without calling auth. It names its session (`sid`). A
//! refresh token is 32 random bytes, stored only as its SHA-256, valid once: refreshing marks
//! it used and issues the next token of the same session (family). A session ends after
//! `session_idle` without a refresh, `session_lifetime` after its login, at logout, or when a
//! used refresh token is presented again (two parties hold it); its access tokens are then
//! refused too ([`crate::revocations`]). A disabled user cannot refresh.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use kit::{auth::Claims, net::ClientAddress};
use ring::{digest, rand::SecureRandom};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    AuthState,
    error::{Error, Result},
    revocations,
    trail::AuthEvent,
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

/// A session: a login and the refresh tokens that follow from it (one family).
#[derive(Debug, Clone, Copy)]
pub struct Session {
    pub family: Uuid,
    pub started_at: OffsetDateTime,
}

impl Session {
    /// A new session, starting now (a login).
    pub fn start(now: OffsetDateTime) -> Self {
        Self { family: Uuid::now_v7(), started_at: now }
    }
}

/// Issues an access token for `user` in `session` (its `sid`) and the session's next refresh
/// token, which lives until the session goes idle or reaches its lifetime, whichever is first.
pub async fn issue(
    state: &AuthState,
    conn: &mut PgConnection,
    user: &User,
    session: Session,
) -> Result<TokenPair> {
    let now = state.config.clock.now();
    let ttl = state.config.access_ttl;
    let claims = Claims {
        iss: state.config.tokens.issuer.clone(),
        aud: state.config.tokens.audience.clone(),
        sub: user.id.to_string(),
        roles: user.roles.clone(),
        iat: now.unix_timestamp(),
        exp: now.unix_timestamp() + ttl.as_secs() as i64,
        jti: Uuid::new_v4().to_string(),
        sid: Some(session.family.to_string()),
        iat_ms: Some((now.unix_timestamp_nanos() / 1_000_000) as i64),
    };
    let access_token = state.keys.active()?.sign(&claims).map_err(|e| Error::Internal(e.to_string()))?;
    let refresh_token = random_token()?;
    let expires_at =
        (now + state.config.session_idle).min(session.started_at + state.config.session_lifetime);
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, family_id, user_id, issued_at, expires_at, family_started_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(hash(&refresh_token))
    .bind(session.family)
    .bind(user.id)
    .bind(now)
    .bind(expires_at)
    .bind(session.started_at)
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

/// Ends a session: its refresh tokens stop working, and so do its access tokens (verifiers
/// learn it within seconds through the revocations).
async fn end_session(conn: &mut PgConnection, family: Uuid, now: OffsetDateTime) -> Result<()> {
    sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL")
        .bind(family)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    revocations::end_session(conn, family, now).await
}

/// Exchanges a refresh token for a new pair (rotation), detecting reuse.
pub async fn refresh(state: &AuthState, token: &str) -> Result<TokenPair> {
    let now = state.config.clock.now();
    let mut tx = state.pool.begin().await?;
    #[derive(sqlx::FromRow)]
    struct RefreshRow {
        family_id: Uuid,
        family_started_at: OffsetDateTime,
        user_id: UserId,
        expires_at: OffsetDateTime,
        used_at: Option<OffsetDateTime>,
        revoked_at: Option<OffsetDateTime>,
    }
    let row: Option<RefreshRow> = sqlx::query_as(
        "SELECT family_id, family_started_at, user_id, expires_at, used_at, revoked_at
         FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
    )
    .bind(hash(token))
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Err(Error::InvalidRefreshToken);
    };
    let session = Session { family: row.family_id, started_at: row.family_started_at };
    if row.revoked_at.is_some() || row.expires_at < now {
        return Err(Error::InvalidRefreshToken);
    }
    if row.used_at.is_some() {
        // Reuse: whoever holds the newer token loses it too. The revocation must stick even
        // though the answer is an error.
        end_session(&mut tx, session.family, now).await?;
        AuthEvent::new("refresh_reuse", "failed").of(row.user_id).record(&mut *tx, now).await?;
        tx.commit().await?;
        tracing::warn!(user = %row.user_id, "refresh token reused; its session is ended");
        return Err(Error::InvalidRefreshToken);
    }
    let user = state.users.get(row.user_id).await?;
    if !user.enabled {
        end_session(&mut tx, session.family, now).await?;
        tx.commit().await?;
        return Err(Error::InvalidRefreshToken);
    }
    sqlx::query("UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1")
        .bind(hash(token))
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let pair = issue(state, &mut tx, &user, session).await?;
    tx.commit().await?;
    Ok(pair)
}

/// Ends the session of a refresh token, and records it in the trail. Unknown tokens are
/// ignored (logout is idempotent).
pub async fn logout(state: &AuthState, token: &str, client: &ClientAddress) -> Result<()> {
    let session: Option<(Uuid, UserId)> =
        sqlx::query_as("SELECT family_id, user_id FROM refresh_tokens WHERE token_hash = $1")
            .bind(hash(token))
            .fetch_optional(&state.pool)
            .await?;
    if let Some((family, user)) = session {
        let now = state.config.clock.now();
        let mut tx = state.pool.begin().await?;
        end_session(&mut tx, family, now).await?;
        AuthEvent::new("logout", "ok").of(user).from(client).record(&mut *tx, now).await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Deletes refresh tokens that expired long ago.
pub async fn prune(state: &AuthState) -> Result<u64> {
    let cutoff = state.config.clock.now() - time::Duration::days(1);
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
