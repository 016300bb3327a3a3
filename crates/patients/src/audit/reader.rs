//! Reads by id, fetched together and audited together.
//!
//! A read by id is one row by its primary key. Alone, it costs PostgreSQL a statement and pms
//! a round trip before its audit row even joins a commit. The reader takes the reads of many
//! concurrent requests ([`kit::batch`]) and runs one statement for them all
//! ([`records::read_audited`]): it fetches their records and writes their audit rows, each
//! with its read's outcome (`ok`, `not_found`, `gone`), and its rows come back only once it
//! has committed. As with the [`AuditLog`](super::AuditLog), no record is shown unaudited,
//! and a read that could not be audited is not shown (503).

use std::collections::HashMap;

use kit::{
    batch::{Batcher, Limits},
    tasks::Background,
};
use sqlx::PgPool;

use super::AuditEvent;
use crate::{
    domain::{Patient, PatientId},
    error::Error,
    records,
};

/// Reads fetched in one statement at most, and reads waiting at most (more wait for room).
/// One batch is read and committed at a time: two in flight (tried) made more, smaller
/// commits and served 30-35 % fewer reads (docs/benchmarks.md, 2026-12-05 fourth session),
/// and a commit overlapped with the next batch's statement served 10-35 % fewer (2026-12-06).
const LIMITS: Limits = Limits { queue: 8192, max_batch: 512 };

/// Why a read was not answered with its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failed {
    /// The database is down or busy.
    DatabaseUnavailable,
    /// The statement failed otherwise: the reads were not audited (logged).
    Audit,
}

/// One read: the record asked for and its audit row (whose outcome the statement sets).
struct Read {
    id: PatientId,
    audit: AuditEvent,
}

/// Hands reads by id to the reading task. Cheap to clone.
#[derive(Clone)]
pub struct AuditedReads {
    batcher: Batcher<Read, Result<Option<Patient>, Failed>>,
}

impl AuditedReads {
    /// Starts the reading task on `background`; it stops when the background work stops, after
    /// answering every read handed to it before.
    pub fn start(pool: PgPool, background: &Background) -> Self {
        let batcher = Batcher::start(background, "audited reads", LIMITS, move |reads| {
            let pool = pool.clone();
            async move { read_together(&pool, reads).await }
        });
        Self { batcher }
    }

    /// The record `id`, active or not (`None` if there is none), once the read is audited by
    /// `audit` (an event for [`Action::Read`](crate::policy::Action::Read) of `id`; the
    /// statement sets its outcome from what it found).
    pub async fn read(&self, id: PatientId, audit: AuditEvent) -> Result<Option<Patient>, Error> {
        match self.batcher.submit(Read { id, audit }).await {
            Ok(Ok(patient)) => Ok(patient),
            Ok(Err(Failed::DatabaseUnavailable)) => Err(Error::DatabaseUnavailable),
            Ok(Err(Failed::Audit)) => Err(super::AuditUnavailable.into()),
            Err(_) => Err(Error::Stopping),
        }
    }
}

/// Fetches the records of `reads` and commits their audit rows in one statement; answers for
/// each read its record, or why there is none to show.
async fn read_together(pool: &PgPool, reads: Vec<Read>) -> Vec<Result<Option<Patient>, Failed>> {
    let ids: Vec<PatientId> = reads.iter().map(|read| read.id).collect();
    let audits: Vec<&AuditEvent> = reads.iter().map(|read| &read.audit).collect();
    let found = match records::read_audited(pool, &audits).await {
        Ok(found) => found,
        Err(err) => {
            let failed = if kit::db::is_unavailable(&err) {
                tracing::warn!(error = %err, reads = reads.len(), "database unavailable; cannot read patients");
                Failed::DatabaseUnavailable
            } else {
                tracing::error!(error = %err, reads = reads.len(), "cannot audit reads of patients");
                Failed::Audit
            };
            return vec![Err(failed); reads.len()];
        }
    };
    metrics::histogram!("audit_batch_rows").record(reads.len() as f64);
    let found: HashMap<PatientId, Patient> = found.into_iter().map(|patient| (patient.id, patient)).collect();
    ids.iter().map(|id| Ok(found.get(id).cloned())).collect()
}
