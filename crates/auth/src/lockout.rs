//! Brute-force limits: after too many failed attempts for one account (5) or from one client
//! address (20) within the window (15 minutes), logins (and password changes) answer 429 until
//! the oldest counted failure leaves the window. Attempts are counted before the password is
//! checked, atomically; a success does not reset the count.

use std::time::Duration;

use kit::clock::Clock;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub struct Limits {
    pub window: Duration,
    pub per_account: usize,
    pub per_address: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { window: Duration::from_secs(15 * 60), per_account: 5, per_address: 20 }
    }
}

/// Failed (or not yet finished) attempt times counted against `column = value` within the
/// window. A success does not reset the count: an attacker who also knows one password cannot
/// clear the failures of a guessing run with it.
async fn failures(
    conn: &mut PgConnection,
    column: &str,
    value: &str,
    since: OffsetDateTime,
) -> Result<Vec<OffsetDateTime>> {
    let sql = format!(
        "SELECT at FROM login_attempts WHERE {column} = $1 AND NOT succeeded AND at > $2 ORDER BY at"
    );
    Ok(sqlx::query_scalar(&sql).bind(value).bind(since).fetch_all(conn).await?)
}

/// Seconds until enough of `failures` leave the window for a login to be allowed again.
fn retry_after(
    failures: &[OffsetDateTime],
    limit: usize,
    window: Duration,
    now: OffsetDateTime,
) -> Option<u64> {
    if failures.len() < limit {
        return None;
    }
    // Allowed again when the count drops below the limit: when this one expires.
    let freeing = failures[failures.len() - limit];
    let free_at = freeing + window;
    Some((free_at - now).whole_seconds().max(0) as u64 + 1)
}

/// An attempt counted as failed until [`Attempt::succeeded`] says otherwise.
#[derive(Debug)]
pub struct Attempt {
    id: i64,
}

/// Counts an attempt for the account `email_key` from `address` **before** the password is
/// checked, atomically with the check of the limits (per-account and per-address advisory
/// locks): of many concurrent guesses only as many as the limits allow get to try, and a
/// crash between counting and hashing still counts. Fails with [`Error::LockedOut`] when the
/// account or the address is over its limit.
pub async fn begin(
    pool: &PgPool,
    limits: &Limits,
    clock: &Clock,
    email_key: &str,
    address: &str,
) -> Result<Attempt> {
    let now = clock.now();
    let since = now - limits.window;
    let mut tx = pool.begin().await?;
    // Always the account first, then the address: no two attempts wait on each other in a circle.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('pms.auth.login.account:' || $1)), pg_advisory_xact_lock(hashtext('pms.auth.login.address:' || $2))")
        .bind(email_key)
        .bind(address)
        .execute(&mut *tx)
        .await?;
    let account = failures(&mut tx, "email_key", email_key, since).await?;
    let from_address = failures(&mut tx, "address", address, since).await?;
    let wait = [
        retry_after(&account, limits.per_account, limits.window, now),
        retry_after(&from_address, limits.per_address, limits.window, now),
    ]
    .into_iter()
    .flatten()
    .max();
    if let Some(retry_after) = wait {
        tracing::warn!(retry_after, "login refused: too many failures");
        return Err(Error::LockedOut { retry_after });
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO login_attempts (email_key, address, succeeded, at) VALUES ($1, $2, false, $3) RETURNING id",
    )
    .bind(email_key)
    .bind(address)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Attempt { id })
}

impl Attempt {
    /// The password was right: this attempt no longer counts as a failure (the earlier ones
    /// still do).
    pub async fn succeeded(self, pool: &PgPool) -> Result<()> {
        sqlx::query("UPDATE login_attempts SET succeeded = true WHERE id = $1")
            .bind(self.id)
            .execute(pool)
            .await?;
        Ok(())
    }
}

/// Forgets attempts older than the window (called now and then).
pub async fn prune(pool: &PgPool, limits: &Limits, clock: &Clock) -> Result<u64> {
    let cutoff = clock.now() - limits.window;
    Ok(sqlx::query("DELETE FROM login_attempts WHERE at < $1")
        .bind(cutoff)
        .execute(pool)
        .await?
        .rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_lock_lifts_when_enough_failures_leave_the_window() {
        let window = Duration::from_secs(900);
        let now = datetime!(2026-01-01 12:00:00 UTC);
        let at = |m: i64| now - time::Duration::minutes(m);
        assert_eq!(retry_after(&[at(10), at(9), at(8), at(7)], 5, window, now), None);
        // Five failures, the oldest 10 minutes ago: free in 5 minutes.
        assert_eq!(retry_after(&[at(10), at(9), at(8), at(7), at(1)], 5, window, now), Some(301));
        // Six failures: the second oldest decides.
        assert_eq!(retry_after(&[at(14), at(10), at(9), at(8), at(7), at(1)], 5, window, now), Some(301));
    }
}
