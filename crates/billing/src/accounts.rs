//! `AccountRepository`: the SQL of billing accounts. Decides nothing about who may do what.

use std::collections::{HashMap, HashSet};

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

/// One account to open: for whom, billed to whom.
#[derive(Debug, Clone, Copy)]
pub struct Opening<'a> {
    pub patient_id: Uuid,
    pub name: &'a str,
    pub email: Option<&'a str>,
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

    /// Opens the patient's account, or returns the one it has (then its name and email are
    /// ignored): calling it any number of times opens one account. The second value says
    /// whether this call opened it.
    pub async fn open(&self, opening: Opening<'_>) -> Result<(Account, bool)> {
        self.open_many(&[opening]).await?.pop().ok_or(crate::error::Error::NotFound)
    }

    /// Opens the accounts of `asked` in one transaction, or returns those they have
    /// (idempotent by patient id): the accounts in the order asked, each with whether this call
    /// opened it (a patient asked twice gets one account, opened by the first).
    pub async fn open_many(&self, asked: &[Opening<'_>]) -> Result<Vec<(Account, bool)>> {
        let mut patients: Vec<Uuid> = asked.iter().map(|a| a.patient_id).collect();
        // Rows in patient order, so that two concurrent batches take their locks in one order.
        let mut order: Vec<usize> = (0..asked.len()).collect();
        order.sort_by_key(|&i| asked[i].patient_id);
        order.dedup_by_key(|i| asked[*i].patient_id);
        let mut tx = self.pool.begin().await?;
        let opened: Vec<Account> = sqlx::query_as(&format!(
            "INSERT INTO accounts (id, number, patient_id, name, email)
             SELECT id, 'BA-' || lpad(nextval('account_number_seq')::text, 6, '0'), patient_id, name, email
             FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[]) WITH ORDINALITY
                  AS a(id, patient_id, name, email, n)
             ORDER BY n
             ON CONFLICT (patient_id) DO NOTHING
             RETURNING {COLUMNS}"
        ))
        .bind(order.iter().map(|_| Uuid::now_v7()).collect::<Vec<_>>())
        .bind(order.iter().map(|&i| asked[i].patient_id).collect::<Vec<_>>())
        .bind(order.iter().map(|&i| asked[i].name).collect::<Vec<_>>())
        .bind(order.iter().map(|&i| asked[i].email).collect::<Vec<_>>())
        .fetch_all(&mut *tx)
        .await?;
        let mut found: HashMap<Uuid, (Account, bool)> =
            opened.into_iter().map(|a| (a.patient_id, (a, true))).collect();
        patients.retain(|p| !found.contains_key(p));
        if !patients.is_empty() {
            // Conflicting rows are committed (ON CONFLICT waited for them), so visible now.
            let existing: Vec<Account> =
                sqlx::query_as(&format!("SELECT {COLUMNS} FROM accounts WHERE patient_id = ANY($1)"))
                    .bind(&patients)
                    .fetch_all(&mut *tx)
                    .await?;
            found.extend(existing.into_iter().map(|a| (a.patient_id, (a, false))));
        }
        tx.commit().await?;
        let mut seen = HashSet::new();
        asked
            .iter()
            .map(|a| {
                let (account, opened) =
                    found.get(&a.patient_id).cloned().ok_or(crate::error::Error::NotFound)?;
                // Opened by its first entry only.
                Ok((account, opened && seen.insert(a.patient_id)))
            })
            .collect()
    }

    /// `patient_id`'s account, if it has one.
    pub async fn get(&self, patient_id: Uuid) -> Result<Option<Account>> {
        Ok(sqlx::query_as(&format!("SELECT {COLUMNS} FROM accounts WHERE patient_id = $1"))
            .bind(patient_id)
            .fetch_optional(&self.pool)
            .await?)
    }
}
