//! Access tokens refused before they expire: every session (refresh-token family, the `sid`
//! of its access tokens) ended by logout or by a reused refresh token, and every user whose
//! tokens issued before an instant no longer count (disabled, roles or password changed).
//!
//! Entries matter only while a token they refuse could still be valid, so they are kept for
//! the access-token lifetime plus leeway ([`window`]) and pruned after. Verifiers (gateway,
//! services, auth itself) read them from `GET /auth/revocations` every few seconds.

use std::time::Duration;

use kit::auth::Revocations;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{error::Result, user_id::UserId};

/// How long an entry can still refuse a token: the access-token lifetime plus leeway.
pub fn window(access_ttl: Duration) -> Duration {
    access_ttl + Duration::from_secs(kit::auth::LEEWAY_SECONDS + 60)
}

/// Ends the session `family`: its access tokens are refused from now on.
pub async fn end_session(conn: &mut PgConnection, family: Uuid, now: OffsetDateTime) -> Result<()> {
    sqlx::query(
        "INSERT INTO revoked_sessions (family_id, revoked_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(family)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Refuses every access token issued to `user` before `now`.
pub async fn refuse_tokens_of(conn: &mut PgConnection, user: UserId, now: OffsetDateTime) -> Result<()> {
    sqlx::query(
        "INSERT INTO user_not_before (user_id, not_before) VALUES ($1, $2)
         ON CONFLICT (user_id) DO UPDATE SET not_before = greatest(user_not_before.not_before, excluded.not_before)",
    )
    .bind(user)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// The revocations that can still refuse a token at `now`.
pub async fn current(pool: &PgPool, access_ttl: Duration, now: OffsetDateTime) -> Result<Revocations> {
    let since = now - window(access_ttl);
    let users: Vec<(Uuid, OffsetDateTime)> =
        sqlx::query_as("SELECT user_id, not_before FROM user_not_before WHERE not_before > $1")
            .bind(since)
            .fetch_all(pool)
            .await?;
    let sessions: Vec<Uuid> =
        sqlx::query_scalar("SELECT family_id FROM revoked_sessions WHERE revoked_at > $1")
            .bind(since)
            .fetch_all(pool)
            .await?;
    Ok(Revocations {
        users: users
            .into_iter()
            .map(|(id, at)| (id.to_string(), (at.unix_timestamp_nanos() / 1_000_000) as i64))
            .collect(),
        sessions: sessions.into_iter().map(|id| id.to_string()).collect(),
    })
}

/// Deletes entries that can no longer refuse any token.
pub async fn prune(pool: &PgPool, access_ttl: Duration, now: OffsetDateTime) -> Result<()> {
    let since = now - window(access_ttl);
    sqlx::query("DELETE FROM user_not_before WHERE not_before < $1").bind(since).execute(pool).await?;
    sqlx::query("DELETE FROM revoked_sessions WHERE revoked_at < $1").bind(since).execute(pool).await?;
    Ok(())
}
