//! Registering patients, many in one statement: the API's registrations (grouped by the
//! [`Registrar`] into one commit) and `pms seed` both go through [`register_batch`], so a
//! patient enters the database one way only, with its names in the dictionary, version 1 and
//! its audit row, atomically.
//!
//! Two round trips per batch: the MRNs' sequence numbers (sequences are outside transactions;
//! a failed registration leaves a gap, never a duplicate), then one statement that writes
//! every patient, names, version, audit row and outbox rows ([`crate::events`]). A registration whose email belongs to another
//! active patient (or to an earlier one of the same batch) is skipped by the statement and
//! answered [`Error::DuplicateEmail`]; the others still commit.

use std::{
    collections::{BTreeMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use kit::{
    batch::{self, Batcher, Limits},
    outbox::{self, Relay},
    tasks::Background,
};
use sqlx::{PgPool, Row, types::Json};
use uuid::Uuid;

use crate::{
    audit::{self, AuditEvent},
    domain::{Patient, PatientDraft, PatientId, Phone, format_date},
    error::{Error, Result},
    events::PatientEvents,
    mrn::Mrn,
    names,
    records::{KEEP_VERSION, now},
};

/// One patient to register, with the audit row of its registration and the trace its
/// events carry.
#[derive(Clone)]
pub struct Registration {
    pub id: PatientId,
    pub draft: PatientDraft,
    pub audit: AuditEvent,
    pub trace_id: Option<String>,
}

/// Name keys travel as one space-separated text per name (keys are folded words: they never
/// contain white space), because PostgreSQL arrays of arrays must be rectangular.
fn joined(keys: Vec<String>) -> String {
    keys.join(" ")
}

/// Registers every patient of `batch` in one transaction, with their events when `events` is
/// given. Answers, in `batch`'s order, each patient as stored, or [`Error::DuplicateEmail`]
/// for one whose email is taken. Fails as a whole only if the statement fails (nothing of the
/// batch is then written).
pub async fn register_batch(
    pool: &PgPool,
    batch: Vec<Registration>,
    events: Option<&PatientEvents>,
) -> Result<Vec<Result<Patient>>> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let sequences: Vec<i64> = sqlx::query_scalar("SELECT nextval('mrn_seq') FROM generate_series(1, $1)")
        .bind(batch.len() as i64)
        .fetch_all(pool)
        .await?;
    let at = now();
    // Names go to the dictionary once each, in one order (concurrent batches then never wait
    // for each other's dictionary rows in opposite orders).
    let mut dictionary = BTreeMap::new();
    let mut columns = Columns::default();
    let mut patients = Vec::with_capacity(batch.len());
    let mut audits = Vec::with_capacity(batch.len());
    let mut outbox = Vec::with_capacity(if events.is_some() { 2 * batch.len() } else { 0 });
    for (registration, sequence) in batch.into_iter().zip(sequences) {
        let Registration { id, draft, audit, trace_id } = registration;
        let family_sort = names::sort_key(draft.family_name.as_str());
        let given_sort = names::sort_key(draft.given_name.as_str());
        dictionary
            .entry(family_sort.clone())
            .or_insert_with(|| joined(names::name_keys(draft.family_name.as_str())));
        dictionary
            .entry(given_sort.clone())
            .or_insert_with(|| joined(names::name_keys(draft.given_name.as_str())));
        let patient = Patient {
            id,
            mrn: Mrn::from_sequence(sequence).to_string(),
            given_name: draft.given_name.into_string(),
            family_name: draft.family_name.into_string(),
            birth_date: format_date(draft.birth_date),
            sex: draft.sex,
            email: draft.email.as_ref().map(|e| e.as_str().to_owned()),
            phone: draft.phone.map(Phone::into_string),
            address: draft.address,
            active: true,
            registered_at: at,
            updated_at: at,
            version: 1,
        };
        columns.ids.push(id.as_uuid());
        columns.mrns.push(patient.mrn.clone());
        columns.given.push(patient.given_name.clone());
        columns.family.push(patient.family_name.clone());
        columns.birth_dates.push(draft.birth_date);
        columns.sexes.push(patient.sex.as_str());
        columns.emails.push(patient.email.clone());
        columns.email_keys.push(draft.email.as_ref().map(|e| e.key().to_owned()));
        columns.phones.push(patient.phone.clone());
        columns.addresses.push(patient.address.clone().map(Json));
        columns.name_keys.push(joined(names::index_keys(&patient.given_name, &patient.family_name)));
        columns.family_sorts.push(family_sort);
        columns.given_sorts.push(given_sort);
        if let Some(events) = events {
            outbox.extend(events.registered(&patient, trace_id.as_deref()));
        }
        patients.push(patient);
        audits.push(audit);
    }
    let sql = format!(
        "WITH names AS (
             INSERT INTO name_dictionary (name, keys)
             SELECT n, string_to_array(k, ' ') FROM unnest($1::text[], $2::text[]) AS t(n, k)
             ON CONFLICT (name) DO NOTHING),
         input AS (
             SELECT * FROM unnest($3::uuid[], $4::text[], $5::text[], $6::text[], $7::date[], $8::text[],
                                  $9::text[], $10::text[], $11::text[], $12::jsonb[], $13::text[], $14::text[],
                                  $15::text[], $16::jsonb[], $34::text[])
                 AS t(id, mrn, given_name, family_name, birth_date, sex, email, email_key, phone, address,
                      family_sort, given_sort, name_keys, snapshot, recorded_by)),
         patient AS (
             INSERT INTO patients (id, mrn, given_name, family_name, birth_date, sex, email, email_key, phone,
                                   address, active, version, registered_at, updated_at, family_sort, given_sort,
                                   name_keys)
             SELECT id, mrn, given_name, family_name, birth_date, sex, email, email_key, phone, address,
                    true, 1, $17, $17, family_sort, given_sort, string_to_array(name_keys, ' ')
             FROM input
             ON CONFLICT (email_key) WHERE active AND email_key IS NOT NULL DO NOTHING
             RETURNING id),
         version AS ({KEEP_VERSION} SELECT i.id, 1, $17, i.snapshot, i.recorded_by, NULL
                     FROM input i JOIN patient USING (id)),
         audit AS ({} WHERE p IN (SELECT id FROM patient)),
         outbox AS ({} WHERE k IN (SELECT id::text FROM patient))
         SELECT id FROM patient",
        audit::insert_sql(18),
        outbox::insert_sql(28)
    );
    let (names, keys): (Vec<String>, Vec<String>) = dictionary.into_iter().unzip();
    let query = sqlx::query(&sql)
        .bind(names)
        .bind(keys)
        .bind(columns.ids)
        .bind(columns.mrns)
        .bind(columns.given)
        .bind(columns.family)
        .bind(columns.birth_dates)
        .bind(columns.sexes)
        .bind(columns.emails)
        .bind(columns.email_keys)
        .bind(columns.phones)
        .bind(columns.addresses)
        .bind(columns.family_sorts)
        .bind(columns.given_sorts)
        .bind(columns.name_keys)
        .bind(patients.iter().map(Json).collect::<Vec<_>>())
        .bind(at);
    let audit_rows: Vec<&AuditEvent> = audits.iter().collect();
    // $34, after the audit and outbox arrays: who registered each patient (its version's author).
    let authors: Vec<Option<String>> = audits.iter().map(|a| a.actor_id.clone()).collect();
    let query = outbox::bind_rows(audit::bind_rows(query, &audit_rows), &outbox).bind(authors);
    let rows = query.fetch_all(pool).await?;
    let stored = rows.iter().map(|row| row.try_get::<Uuid, _>(0)).collect::<Result<HashSet<_>, _>>()?;
    Ok(patients
        .into_iter()
        .map(|p| if stored.contains(&p.id.as_uuid()) { Ok(p) } else { Err(Error::DuplicateEmail) })
        .collect())
}

/// The columns of a batch, one array each.
#[derive(Default)]
struct Columns {
    ids: Vec<Uuid>,
    mrns: Vec<String>,
    given: Vec<String>,
    family: Vec<String>,
    birth_dates: Vec<time::Date>,
    sexes: Vec<&'static str>,
    emails: Vec<Option<String>>,
    email_keys: Vec<Option<String>>,
    phones: Vec<Option<String>>,
    addresses: Vec<Option<Json<crate::domain::Address>>>,
    family_sorts: Vec<String>,
    given_sorts: Vec<String>,
    name_keys: Vec<String>,
}

/// Registrations committed in one statement at most, and waiting for the writer at most
/// (more wait for room).
const LIMITS: Limits = Limits { queue: 4096, max_batch: 256 };

/// Groups the API's concurrent registrations into one commit each batch ([`kit::batch`]): a
/// busy front desk pays one statement and one WAL flush for many registrations, and each
/// request is answered once its patient is durable (and its events are in the outbox; the
/// relays are woken after each commit). A batch the database refuses as a whole is retried
/// one registration at a time, so one bad registration never fails the others; one it cannot
/// take at all (unreachable, overloaded) fails at once, every registration of it 503.
#[derive(Clone)]
pub struct Registrar {
    batcher: Batcher<Registration, Result<Patient>>,
}

/// How often the search-key index's pending list is merged after registrations.
const MERGE_KEYS_EVERY: Duration = Duration::from_millis(500);

impl Registrar {
    /// Starts the writer on `background`; when the background work stops, it registers every
    /// patient handed to it before, then ends. Also starts the merging of new search keys
    /// (migration 0005): every half second after registrations, so no registration waits for
    /// a merge of the whole pending list.
    pub fn start(pool: PgPool, events: PatientEvents, relays: Vec<Relay>, background: &Background) -> Self {
        let registered = Arc::new(AtomicUsize::new(0));
        let (writer_pool, counter) = (pool.clone(), registered.clone());
        let (events, relays) = (Arc::new(events), Arc::new(relays));
        let batcher = Batcher::start(background, "registrar", LIMITS, move |batch| {
            let (pool, counter, events, relays) =
                (writer_pool.clone(), counter.clone(), events.clone(), relays.clone());
            async move {
                counter.fetch_add(batch.len(), Ordering::Relaxed);
                let results = commit(&pool, batch, &events).await;
                relays.iter().for_each(Relay::wake);
                results
            }
        });
        background.every("search key merge", MERGE_KEYS_EVERY, move || {
            let (pool, registered) = (pool.clone(), registered.clone());
            async move {
                if registered.swap(0, Ordering::Relaxed) > 0
                    && let Err(err) =
                        sqlx::query("SELECT clean_name_keys_pending_list()").execute(&pool).await
                {
                    tracing::warn!(error = %err, "cannot merge the search keys' pending list");
                }
            }
        });
        Self { batcher }
    }

    /// Registrations handed over and not yet taken into a batch.
    pub fn waiting(&self) -> usize {
        self.batcher.waiting()
    }

    /// Registers `registration` and returns once it is committed.
    pub async fn register(&self, registration: Registration) -> Result<Patient> {
        self.batcher.submit(registration).await.map_err(|_| Error::Stopping)?
    }
}

/// Registers `batch`, or each of its registrations alone if the batch fails as a whole
/// ([`batch::together_else_alone`]).
async fn commit(pool: &PgPool, batch: Vec<Registration>, events: &PatientEvents) -> Vec<Result<Patient>> {
    metrics::histogram!("registration_batch_rows").record(batch.len() as f64);
    batch::together_else_alone("registrations", &batch, |part| {
        register_batch(pool, part.to_vec(), Some(events))
    })
    .await
}
