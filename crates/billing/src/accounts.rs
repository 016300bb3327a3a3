//! `AccountRepository`: the SQL of billing accounts. Decides nothing about who may do what.

use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::Result;

/// A patient's billing account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub id: Uuid,
    /// Human-readable, e.g. `BA-000042`.
    #[schema(example = "BA-000042")]
    pub number: String,
    pub patient_id: Uuid,
    /// `active` or `closed`.
    #[schema(example = "active")]
    pub status: String,
    /// Who the account is billed to.
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub opened_at: OffsetDateTime,
}

const COLUMNS: &str = "id, number, patient_id, status, name, email, opened_at";

#[derive(Clone)]
pub struct AccountRepository {
    pool: PgPool,
}

impl AccountRepository {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Opens `patient_id`'s account, or returns the one it has (then `name` and `email` are
    /// ignored): calling it any number of times opens one account. The second value says
    /// whether this call opened it.
    pub async fn open(&self, patient_id: Uuid, name: &str, email: Option<&str>) -> Result<(Account, bool)> {
        let opened: Option<Account> = sqlx::query_as(&format!(
            "INSERT INTO accounts (id, number, patient_id, name, email)
             VALUES ($1, 'BA-' || lpad(nextval('account_number_seq')::text, 6, '0'), $2, $3, $4)
             ON CONFLICT (patient_id) DO NOTHING
             RETURNING {COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(patient_id)
        .bind(name)
        .bind(email)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(account) = opened {
            return Ok((account, true));
        }
        // The conflicting row is committed (ON CONFLICT waited for it), so it is visible now.
        let existing = self.get(patient_id).await?.ok_or(crate::error::Error::NotFound)?;
        Ok((existing, false))
    }

    /// `patient_id`'s account, if it has one.
    pub async fn get(&self, patient_id: Uuid) -> Result<Option<Account>> {
        Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM accounts WHERE patient_id = $1"))
            .bind(patient_id)
            .fetch_optional(&self.pool)
            .await?)
    }
}
