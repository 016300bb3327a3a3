//! An audit trail in a service's own `audit_events` table: who did what to which record (and
//! whose record it is), and every refusal, under the request's id, the caller's roles, address
//! and user agent. Rows never hold names, contacts, reasons or times: ids, outcomes, counts.
//! The appointments and notifications services keep theirs here; patients keeps its own
//! partitioned, group-committed trail.
//!
//! The table (each service's migration creates it):
//! ```sql
//! CREATE TABLE audit_events (
//!     id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
//!     at timestamptz NOT NULL DEFAULT clock_timestamp(),
//!     action text NOT NULL, subject_id uuid, patient_id uuid, outcome text NOT NULL,
//!     details jsonb NOT NULL DEFAULT '{}', request_id text, actor_id text,
//!     actor_roles text[] NOT NULL DEFAULT '{}', client_address text, user_agent text);
//! ```

use serde_json::Value;
use sqlx::{PgExecutor, Postgres, postgres::PgArguments, query::Query};
use uuid::Uuid;

use crate::{RequestContext, auth::Action};

/// One row: `action` on the record `subject_id` (an appointment, a message) of patient
/// `patient_id`, ending `outcome` (`ok`, `denied`, `not_found`).
#[derive(Debug, Clone)]
pub struct Entry {
    pub action: &'static str,
    pub subject_id: Option<Uuid>,
    pub patient_id: Option<Uuid>,
    pub outcome: &'static str,
    pub details: Value,
}

impl Entry {
    pub fn new(
        action: &'static str,
        subject_id: Option<Uuid>,
        patient_id: Option<Uuid>,
        outcome: &'static str,
    ) -> Self {
        Self { action, subject_id, patient_id, outcome, details: Value::Object(Default::default()) }
    }

    /// What else the row keeps (never values that identify a person).
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

/// The statement that writes audit rows, one per element of the ten array parameters bound
/// from `$first` on by [`bind_rows`] (one caller) or [`bind_rows_each`] (each row its own).
/// Standalone ([`record`]) or as part of a larger statement that makes the change it records,
/// in one round trip (append `WHERE s IN (...)` to keep only the rows of records changed).
pub fn insert_sql(first: usize) -> String {
    let arrays = ["text", "uuid", "uuid", "text", "text", "text", "text", "text", "text", "text"]
        .iter()
        .enumerate()
        .map(|(i, kind)| format!("${}::{kind}[]", first + i))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "INSERT INTO audit_events (action, subject_id, patient_id, outcome, details, request_id,
                                   actor_id, actor_roles, client_address, user_agent)
         SELECT a, s, p, o, d::jsonb, r, u, string_to_array(ro, ','), c, ua
         FROM unnest({arrays}) AS t(a, s, p, o, d, r, u, ro, c, ua)"
    )
}

/// Binds the parameters of [`insert_sql`] for `entries` by `ctx`, in its order.
pub fn bind_rows<'q>(
    query: Query<'q, Postgres, PgArguments>,
    ctx: &RequestContext,
    entries: &[Entry],
) -> Query<'q, Postgres, PgArguments> {
    bind_rows_each(query, entries.iter().map(|entry| (ctx, entry)))
}

/// Binds the parameters of [`insert_sql`] for rows of several callers (a batch of requests
/// committed together), each entry with the request it records.
pub fn bind_rows_each<'a, 'q>(
    query: Query<'q, Postgres, PgArguments>,
    rows: impl Iterator<Item = (&'a RequestContext, &'a Entry)> + Clone,
) -> Query<'q, Postgres, PgArguments> {
    let column = |f: fn(&RequestContext, &Entry) -> Option<String>| {
        rows.clone().map(|(c, e)| f(c, e)).collect::<Vec<_>>()
    };
    // Roles never contain commas (they are fixed identifiers), so a joined text survives unnest.
    query
        .bind(column(|_, e| Some(e.action.to_owned())))
        .bind(rows.clone().map(|(_, e)| e.subject_id).collect::<Vec<_>>())
        .bind(rows.clone().map(|(_, e)| e.patient_id).collect::<Vec<_>>())
        .bind(column(|_, e| Some(e.outcome.to_owned())))
        .bind(column(|_, e| Some(e.details.to_string())))
        .bind(column(|c, _| c.request_id.clone()))
        .bind(column(|c, _| Some(c.user_id.clone())))
        .bind(column(|c, _| Some(c.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(","))))
        .bind(column(|c, _| c.client_address.clone()))
        .bind(column(|c, _| c.user_agent.clone()))
}

/// Writes `entries` by `ctx` in one statement (in the change's transaction, or before a read
/// is answered).
pub async fn record<'e>(
    executor: impl PgExecutor<'e>,
    ctx: &RequestContext,
    entries: &[Entry],
) -> Result<(), sqlx::Error> {
    let sql = insert_sql(1);
    bind_rows(sqlx::query(&sql), ctx, entries).execute(executor).await?;
    Ok(())
}

/// Why [`authorize`] refused.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The caller's roles do not allow the action (the refusal is recorded).
    #[error("the caller's roles do not allow this action")]
    Forbidden,
    /// The refusal could not be recorded.
    #[error("cannot record the refusal: {0}")]
    Unrecorded(#[from] sqlx::Error),
}

/// Ok when `ctx` may do `action`; otherwise the refusal is logged (the actor, never the
/// record) and recorded as `denied` on `subject_id` and `patient_id` before it is answered.
pub async fn authorize<'e>(
    executor: impl PgExecutor<'e>,
    ctx: &RequestContext,
    action: impl Action,
    subject_id: Option<Uuid>,
    patient_id: Option<Uuid>,
) -> Result<(), Refused> {
    if ctx.may(action) {
        return Ok(());
    }
    tracing::warn!(action = action.as_str(), actor = %ctx.user_id, "access denied");
    record(executor, ctx, &[Entry::new(action.as_str(), subject_id, patient_id, "denied")]).await?;
    Err(Refused::Forbidden)
}
