//! The auth audit trail (`auth_events`): every login (succeeded, failed, locked out), logout,
//! reused refresh token, password change and user change, with who, whom, from where and
//! when, kept durably and append-only; admins read it at `GET /api/auth-events`. It never
//! holds passwords, tokens or email addresses: accounts are named by their ids.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{PgExecutor, PgPool};
use time::OffsetDateTime;
use utoipa::ToSchema;

use kit::net::ClientAddress;

use crate::{error::Result, user_id::UserId};

/// One entry to write.
#[derive(Debug, Clone)]
pub struct AuthEvent {
    pub action: &'static str,
    pub outcome: &'static str,
    pub user_id: Option<UserId>,
    pub actor_id: Option<UserId>,
    pub address: Option<String>,
    pub user_agent: Option<String>,
    pub details: Value,
}

impl AuthEvent {
    pub fn new(action: &'static str, outcome: &'static str) -> Self {
        Self {
            action,
            outcome,
            user_id: None,
            actor_id: None,
            address: None,
            user_agent: None,
            details: Value::Object(Default::default()),
        }
    }

    /// The account concerned, also the one acting (logins, logouts, own password).
    pub fn of(mut self, user: UserId) -> Self {
        self.user_id = Some(user);
        self.actor_id = Some(user);
        self
    }

    pub fn by(mut self, actor: Option<UserId>) -> Self {
        self.actor_id = actor;
        self
    }

    /// Where the request came from: the client's address and user agent.
    pub fn from(mut self, client: &ClientAddress) -> Self {
        self.address = Some(client.0.clone());
        self.user_agent = client.1.clone();
        self
    }

    pub fn with(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// Writes the entry with `executor` (the pool, or the change's own transaction).
    pub async fn record<'e>(&self, executor: impl PgExecutor<'e>, at: OffsetDateTime) -> Result<()> {
        sqlx::query(
            "INSERT INTO auth_events (occurred_at, action, outcome, user_id, actor_id, address, user_agent, details)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(at)
        .bind(self.action)
        .bind(self.outcome)
        .bind(self.user_id)
        .bind(self.actor_id)
        .bind(&self.address)
        .bind(&self.user_agent)
        .bind(&self.details)
        .execute(executor)
        .await?;
        Ok(())
    }
}

/// One entry as `GET /api/auth-events` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthEventRecord {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub occurred_at: OffsetDateTime,
    /// login, logout, refresh_reuse, password_change, user_create or user_update.
    pub action: String,
    /// ok, failed, locked or busy.
    pub outcome: String,
    #[schema(value_type = Option<uuid::Uuid>)]
    pub user_id: Option<UserId>,
    #[schema(value_type = Option<uuid::Uuid>)]
    pub actor_id: Option<UserId>,
    pub address: Option<String>,
    pub user_agent: Option<String>,
    /// What changed (roles, enabled), never secrets or contacts.
    #[schema(value_type = Object)]
    pub details: Value,
}

/// Which entries to list; all given filters must match.
#[derive(Debug, Clone, Default)]
pub struct TrailQuery {
    pub user_id: Option<UserId>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    /// Entries with a smaller id than this (keyset paging, newest first).
    pub before_id: Option<i64>,
}

/// Entries matching `query`, newest first.
pub async fn list(pool: &PgPool, query: &TrailQuery, limit: u32) -> Result<Vec<AuthEventRecord>> {
    Ok(sqlx::query_as(
        "SELECT id, occurred_at, action, outcome, user_id, actor_id, address, user_agent, details FROM auth_events
         WHERE ($1::uuid IS NULL OR user_id = $1)
           AND ($2::timestamptz IS NULL OR occurred_at >= $2) AND ($3::timestamptz IS NULL OR occurred_at < $3)
           AND ($4::bigint IS NULL OR id < $4)
         ORDER BY id DESC LIMIT $5",
    )
    .bind(query.user_id)
    .bind(query.from)
    .bind(query.to)
    .bind(query.before_id)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?)
}
