//! Group commit for bookings: the bookings that arrive while one batch commits are committed
//! together in the next ([`kit::batch`]), one statement and one WAL flush for many.
//!
//! The batch statement takes every schedule it touches in one order (all practitioners, then
//! all patients: [`crate::store`]'s locks, so batches and single changes queue rather than
//! deadlock), then inserts the appointments with `ON CONFLICT DO NOTHING`: a booking that
//! overlaps one already held, or an earlier booking of the same batch, is skipped by the
//! exclusion constraints themselves and writes nothing else. Each booked appointment gets its
//! first version, its audit row (naming the request that booked it) and its event in the same
//! statement. The skipped are then told apart (practitioner or patient taken) by one read.
//! A batch the database refuses as a whole is retried one booking at a time, so one bad
//! booking never fails the others; one it cannot take at all (unreachable, overloaded) fails
//! at once, every booking of it 503. Each request is answered once its booking is durable.

use std::collections::HashSet;

use kit::{
    RequestContext,
    auth::Action as _,
    batch::{self, Batcher, Limits},
    outbox::{self, OutboxEvent, Relay},
    tasks::Background,
    trail::{self, Entry},
};
use serde_json::json;
use sqlx::{PgPool, Row as _, types::Json};
use uuid::Uuid;

use crate::{
    error::{Error, Result},
    policy::Action,
    store::{ATTEMPTS, Booking, HOLDING, is_retryable, schedule_key},
};

/// A booking handed to the writer: what it books, the request that asked, and its event.
pub struct Pending {
    pub ctx: RequestContext,
    pub booking: Booking,
    pub event: OutboxEvent,
}

/// Bookings waiting for the writer at most (more wait for room), and in one statement at most.
const LIMITS: Limits = Limits { queue: 4096, max_batch: 128 };

/// The bookings writer of one service instance.
#[derive(Clone)]
pub struct Booker {
    batcher: Batcher<Pending, Result<()>>,
}

impl Booker {
    /// Starts the writer on `background`; after each commit it wakes `relay`.
    pub fn start(pool: PgPool, relay: Option<Relay>, background: &Background) -> Self {
        let batcher = Batcher::start(background, "booking writer", LIMITS, move |batch| {
            let (pool, relay) = (pool.clone(), relay.clone());
            async move {
                let results = commit(&pool, &batch).await;
                if let Some(relay) = &relay {
                    relay.wake();
                }
                results
            }
        });
        Self { batcher }
    }

    /// Books `pending` and returns once it is committed, or why it was not.
    pub async fn book(&self, pending: Pending) -> Result<()> {
        self.batcher.submit(pending).await.map_err(|_| Error::Stopping)?
    }
}

/// Books `batch`, or each of its bookings alone if the batch fails as a whole
/// ([`batch::together_else_alone`]).
async fn commit(pool: &PgPool, batch: &[Pending]) -> Vec<Result<()>> {
    metrics::histogram!("appointments_booking_batch_rows").record(batch.len() as f64);
    batch::together_else_alone("bookings", batch, |part| attempt(pool, part)).await
}

/// [`book_batch`], tried again when PostgreSQL rolled it back for a deadlock.
async fn attempt(pool: &PgPool, batch: &[Pending]) -> Result<Vec<Result<()>>> {
    let mut attempt = 1;
    loop {
        match book_batch(pool, batch).await {
            Err(Error::Database(err)) if attempt < ATTEMPTS && is_retryable(&err) => attempt += 1,
            other => return other,
        }
    }
}

/// The batch statement (see the module's documentation), parameters:
/// `$1`-`$9` the bookings' columns, `$10`-`$19` the audit rows ([`trail::insert_sql`]),
/// `$20`-`$25` the events ([`outbox::insert_sql`]).
fn batch_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "WITH input AS (
                 SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::timestamptz[],
                                      $6::timestamptz[], $7::text[], $8::timestamptz[], $9::jsonb[])
                     AS t(id, patient_id, practitioner_id, type, starts_at, ends_at, reason, booked_at, snapshot)),
             held AS (
                 SELECT count(pg_advisory_xact_lock(key)) AS locks
                 FROM (SELECT 1 AS schedule, {} AS key FROM input
                       UNION
                       SELECT 2, {} FROM input
                       ORDER BY 1, 2 OFFSET 0) AS ordered),
             booked AS (
                 INSERT INTO appointments (id, patient_id, practitioner_id, type, starts_at, ends_at, reason,
                                           booked_at, updated_at)
                 SELECT id, patient_id, practitioner_id, type, starts_at, ends_at, reason, booked_at, booked_at
                 FROM input, held WHERE held.locks > 0
                 ON CONFLICT DO NOTHING
                 RETURNING id),
             version AS (
                 INSERT INTO appointment_versions (appointment_id, version, recorded_at, snapshot)
                 SELECT i.id, 1, i.booked_at, i.snapshot FROM input i JOIN booked USING (id)),
             audit AS ({} WHERE s IN (SELECT id FROM booked)),
             outbox AS ({} WHERE k IN (SELECT id::text FROM booked))
             SELECT id FROM booked",
            schedule_key("practitioner", "practitioner_id"),
            schedule_key("patient", "patient_id"),
            trail::insert_sql(10),
            outbox::insert_sql(20)
        )
    })
}

/// Books `batch` in one statement; answers each booking in order: committed, or taken.
async fn book_batch(pool: &PgPool, batch: &[Pending]) -> Result<Vec<Result<()>>> {
    let appointments = || batch.iter().map(|p| &p.booking.appointment);
    let entries: Vec<Entry> = appointments()
        .map(|a| {
            Entry::new(Action::Book.as_str(), Some(a.id), Some(a.patient_id), "ok")
                .with_details(json!({ "version": a.version, "status": a.status.as_str() }))
        })
        .collect();
    let events: Vec<OutboxEvent> = batch.iter().map(|p| p.event.clone()).collect();
    let query = sqlx::query(batch_sql())
        .bind(appointments().map(|a| a.id).collect::<Vec<_>>())
        .bind(appointments().map(|a| a.patient_id).collect::<Vec<_>>())
        .bind(appointments().map(|a| a.practitioner_id).collect::<Vec<_>>())
        .bind(appointments().map(|a| a.kind.clone()).collect::<Vec<_>>())
        .bind(appointments().map(|a| a.start).collect::<Vec<_>>())
        .bind(appointments().map(|a| a.end).collect::<Vec<_>>())
        .bind(appointments().map(|a| a.reason.clone()).collect::<Vec<_>>())
        .bind(appointments().map(|a| a.booked_at).collect::<Vec<_>>())
        .bind(appointments().map(Json).collect::<Vec<_>>());
    let query = trail::bind_rows_each(query, batch.iter().map(|p| &p.ctx).zip(&entries));
    let rows = outbox::bind_rows(query, &events).fetch_all(pool).await?;
    let booked = rows.iter().map(|row| row.try_get::<Uuid, _>(0)).collect::<Result<HashSet<_>, _>>()?;
    let skipped: Vec<&Pending> =
        batch.iter().filter(|p| !booked.contains(&p.booking.appointment.id)).collect();
    let practitioner_taken =
        if skipped.is_empty() { HashSet::new() } else { practitioners_taken(pool, &skipped).await? };
    Ok(batch
        .iter()
        .map(|p| {
            let id = p.booking.appointment.id;
            if booked.contains(&id) {
                Ok(())
            } else if practitioner_taken.contains(&id) {
                Err(Error::PractitionerTaken)
            } else {
                Err(Error::PatientTaken)
            }
        })
        .collect())
}

/// Which of the `skipped` bookings overlap an appointment their practitioner holds (the rest
/// were skipped for their patient's).
async fn practitioners_taken(pool: &PgPool, skipped: &[&Pending]) -> Result<HashSet<Uuid>> {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let sql = SQL.get_or_init(|| {
        format!(
            "SELECT i.id FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::timestamptz[])
                 AS i(id, practitioner_id, starts_at, ends_at)
             WHERE EXISTS (SELECT 1 FROM appointments a
                           WHERE a.practitioner_id = i.practitioner_id AND a.status IN {HOLDING}
                             AND tstzrange(a.starts_at, a.ends_at) && tstzrange(i.starts_at, i.ends_at))"
        )
    });
    let appointments = || skipped.iter().map(|p| &p.booking.appointment);
    let taken: Vec<Uuid> = sqlx::query_scalar(sql)
        .bind(appointments().map(|a| a.id).collect::<Vec<_>>())
        .bind(appointments().map(|a| a.practitioner_id).collect::<Vec<_>>())
        .bind(appointments().map(|a| a.start).collect::<Vec<_>>())
        .bind(appointments().map(|a| a.end).collect::<Vec<_>>())
        .fetch_all(pool)
        .await?;
    Ok(taken.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use kit::auth::Role;
    use sqlx::postgres::PgPoolOptions;
    use time::OffsetDateTime;

    use super::*;
    use crate::{
        domain::{Appointment, Status},
        events::AppointmentEvents,
    };

    fn pending() -> Pending {
        let at = OffsetDateTime::now_utc();
        let booking = Booking {
            appointment: Appointment {
                id: Uuid::now_v7(),
                patient_id: Uuid::now_v7(),
                practitioner_id: Uuid::now_v7(),
                kind: Some("consultation".into()),
                start: at + time::Duration::days(1),
                end: at + time::Duration::days(1) + time::Duration::minutes(30),
                time_zone: "UTC".into(),
                status: Status::Booked,
                reason: None,
                cancel_reason: None,
                version: 1,
                booked_at: at,
                updated_at: at,
            },
            practitioner_name: "Dr Test".into(),
            location: None,
        };
        let event = AppointmentEvents::on("appointments.v1").booked(&booking, None);
        Pending { ctx: RequestContext::of("desk", vec![Role::Receptionist]), booking, event }
    }

    #[tokio::test]
    async fn a_batch_the_database_cannot_take_fails_at_once_not_one_booking_at_a_time() {
        // Nothing listens there: every attempt waits out the pool's acquire timeout.
        let wait = Duration::from_millis(300);
        let pool = PgPoolOptions::new()
            .acquire_timeout(wait)
            .connect_lazy("postgres://pms@127.0.0.1:1/pms")
            .expect("pool");
        let batch: Vec<Pending> = (0..5).map(|_| pending()).collect();
        let started = Instant::now();
        let results = commit(&pool, &batch).await;
        let took = started.elapsed();
        assert_eq!(results.len(), 5);
        assert!(results.iter().all(|r| matches!(r, Err(Error::DatabaseUnavailable))), "{results:?}");
        // One attempt (with its retries for deadlocks, none here), not one per booking after it.
        assert!(took < wait * 3, "took {took:?}");
    }
}
