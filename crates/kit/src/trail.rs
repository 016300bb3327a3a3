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

/// The statement that writes audit rows by one caller, one per element of the ten
/// parameters bound from `$first` on by [`bind_rows`]. Standalone ([`record`]) or as part of a
/// larger statement that makes the change it records, in one round trip.
pub fn insert_sql(first: usize) -> String {
    let p = |i: usize| format!("${}", first + i);
    format!(
        "INSERT INTO audit_events (action, subject_id, patient_id, outcome, details, request_id,
                                   actor_id, actor_roles, client_address, user_agent)
         SELECT a, s, p, o, d::jsonb, {}, {}, {}, {}, {}
         FROM unnest({}::text[], {}::uuid[], {}::uuid[], {}::text[], {}::text[]) AS t(a, s, p, o, d)",
        p(5),
        p(6),
        p(7),
        p(8),
        p(9),
        p(0),
        p(1),
        p(2),
        p(3),
        p(4)
    )
}

/// Binds the parameters of [`insert_sql`] for `entries` by `ctx`, in its order.
pub fn bind_rows<'q>(
    query: Query<'q, Postgres, PgArguments>,
    ctx: &RequestContext,
    entries: &[Entry],
) -> Query<'q, Postgres, PgArguments> {
    let actions: Vec<&str> = entries.iter().map(|e| e.action).collect();
    let subjects: Vec<Option<Uuid>> = entries.iter().map(|e| e.subject_id).collect();
    let patients: Vec<Option<Uuid>> = entries.iter().map(|e| e.patient_id).collect();
    let outcomes: Vec<&str> = entries.iter().map(|e| e.outcome).collect();
    let details: Vec<String> = entries.iter().map(|e| e.details.to_string()).collect();
    let roles: Vec<String> = ctx.roles.iter().map(|r| r.as_str().to_owned()).collect();
    query
        .bind(actions)
        .bind(subjects)
        .bind(patients)
        .bind(outcomes)
        .bind(details)
        .bind(ctx.request_id.clone())
        .bind(ctx.user_id.clone())
        .bind(roles)
        .bind(ctx.client_address.clone())
        .bind(ctx.user_agent.clone())
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
