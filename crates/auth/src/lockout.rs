//! Brute-force limits: after too many failed logins for one account (5) or from one client
//! address (20) within the window (15 minutes), logins answer 429 until the oldest counted
//! failure leaves the window. A successful login resets the account's and the address's count.

use std::time::Duration;

use kit::clock::Clock;
use sqlx::PgPool;
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

/// Failure times counted against `column = value`: within the window and after the last success.
async fn failures(
    pool: &PgPool,
    column: &str,
    value: &str,
    since: OffsetDateTime,
) -> Result<Vec<OffsetDateTime>> {
    let sql = format!(
        "SELECT at FROM login_attempts
         WHERE {column} = $1 AND NOT succeeded AND at > $2
           AND at > coalesce((SELECT max(at) FROM login_attempts WHERE {column} = $1 AND succeeded), '-infinity')
         ORDER BY at"
    );
    Ok(sqlx::query_scalar(&sql).bind(value).bind(since).fetch_all(pool).await?)
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

/// Fails with [`Error::LockedOut`] when the account or the address is over its limit.
pub async fn check(
    pool: &PgPool,
    limits: &Limits,
    clock: &Clock,
    email_key: &str,
    address: &str,
) -> Result<()> {
    let now = clock.now();
    let since = now - limits.window;
    let account = failures(pool, "email_key", email_key, since).await?;
    let from_address = failures(pool, "address", address, since).await?;
    let wait = [
        retry_after(&account, limits.per_account, limits.window, now),
        retry_after(&from_address, limits.per_address, limits.window, now),
    ]
    .into_iter()
    .flatten()
    .max();
    match wait {
        Some(retry_after) => {
            tracing::warn!(retry_after, "login refused: too many failures");
            Err(Error::LockedOut { retry_after })
        }
        None => Ok(()),
    }
}

pub async fn record(
    pool: &PgPool,
    clock: &Clock,
    email_key: &str,
    address: &str,
    succeeded: bool,
) -> Result<()> {
    sqlx::query("INSERT INTO login_attempts (email_key, address, succeeded, at) VALUES ($1, $2, $3, $4)")
        .bind(email_key)
        .bind(address)
        .bind(succeeded)
        .bind(clock.now())
        .execute(pool)
        .await?;
    Ok(())
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
