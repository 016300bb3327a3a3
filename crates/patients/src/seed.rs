//! `pms seed N`: loads N realistic sample patients in bulk, without an HTTP call each.
//!
//! Every patient passes the same domain validation as one registered through the API
//! ([`PatientDraft::parse`]) and is written by the same statement ([`register_batch`]): names
//! in the dictionary, search keys, version 1, and a `create` audit row whose actor is
//! `pms seed`, and (unless told otherwise, for benchmark data) the events of a registration,
//! so billing and analytics learn of seeded patients as of any other. Batches of [`BATCH`] patients, [`IN_FLIGHT`] of them committing at once (one
//! prepares its rows while another waits for PostgreSQL).

use sqlx::PgPool;
use tokio::task::JoinSet;

use crate::{
    audit::AuditEvent,
    domain::{PatientDraft, PatientId},
    error::{Error, Result},
    events::PatientEvents,
    policy::Action,
    registration::{Registration, register_batch},
    sample::{self, Names},
};

/// Patients per statement.
pub const BATCH: usize = 2_000;
/// Batches committing at once.
const IN_FLIGHT: usize = 2;
/// The actor of the audit rows of seeded patients.
pub const ACTOR: &str = "pms seed";

/// What a seed wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Seeded {
    pub registered: u64,
    /// Sample patients whose (random) email an active patient already had: skipped.
    pub skipped: u64,
}

/// Registers `count` sample patients with family names spread as `names`, with their events
/// when `events` is given; the same `rng_seed` gives the same patients. Calls `progress` with
/// the running total after every batch.
pub async fn seed(
    pool: &PgPool,
    events: Option<PatientEvents>,
    count: u64,
    names: Names,
    rng_seed: u64,
    mut progress: impl FnMut(Seeded),
) -> Result<Seeded> {
    let mut rng = fastrand::Rng::with_seed(rng_seed);
    let today = time::OffsetDateTime::now_utc().date();
    let mut done = Seeded::default();
    let mut batches = JoinSet::new();
    let mut remaining = count;
    while remaining > 0 || !batches.is_empty() {
        if remaining > 0 && batches.len() < IN_FLIGHT {
            let size = remaining.min(BATCH as u64);
            remaining -= size;
            let batch = sample_batch(size as usize, names, &mut rng, today)?;
            let (pool, events) = (pool.clone(), events.clone());
            batches.spawn(async move { register_batch(&pool, batch, events.as_ref()).await });
            continue;
        }
        let Some(finished) = batches.join_next().await else { break };
        // A batch task ends only by finishing or panicking (none is aborted): pass a panic on.
        let results = finished.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
        for result in results {
            match result {
                Ok(_) => done.registered += 1,
                Err(Error::DuplicateEmail) => done.skipped += 1,
                Err(err) => return Err(err),
            }
        }
        progress(done);
    }
    Ok(done)
}

fn sample_batch(
    size: usize,
    names: Names,
    rng: &mut fastrand::Rng,
    today: time::Date,
) -> Result<Vec<Registration>> {
    (0..size)
        .map(|_| {
            let draft = PatientDraft::parse(sample::patient(names, rng), today).map_err(Error::Invalid)?;
            let id = PatientId::new();
            let audit = AuditEvent::system(ACTOR, Action::Create, Some(id));
            Ok(Registration { id, draft, audit, trace_id: None })
        })
        .collect()
}
