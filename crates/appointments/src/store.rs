//! `Appointments`: the SQL that books, moves, changes and lists appointments.
//!
//! Every change runs in one transaction that also writes the appointment's new version, its
//! audit row and its event in the outbox ([`Appointments::commit`]), so none can be forgotten
//! and none survives a rollback. Overlaps are refused by PostgreSQL's exclusion constraints
//! (migrations/0001_appointments.sql), whatever the interleaving of requests; changes to one
//! appointment lock its row and check the version named by `If-Match`.

use kit::{
    RequestContext,
    auth::Action as _,
    db::violated_constraint,
    outbox::{self, OutboxEvent, Relay},
    tasks::Background,
    trail::{self, Entry},
    zone::Zone,
};
use serde_json::json;
use std::sync::OnceLock;

use sqlx::{PgConnection, PgPool, Postgres, postgres::PgArguments, query::Query, types::Json};
use time::{Date, Duration, OffsetDateTime};
use uuid::Uuid;

use crate::{
    booker::{Booker, Pending},
    domain::{Appointment, Practitioner, Status},
    error::{Error, Result},
    events::AppointmentEvents,
    policy::Action,
    practitioners::now,
};

const PRACTITIONER_OVERLAP: &str = "appointments_practitioner_overlap";
const PATIENT_OVERLAP: &str = "appointments_patient_overlap";
/// The statuses that hold the practitioner's and the patient's time (as the constraints say).
pub(crate) const HOLDING: &str = "('booked', 'checked_in', 'completed')";
/// How often a booking is tried again when PostgreSQL breaks a deadlock between two of them.
pub(crate) const ATTEMPTS: u32 = 3;

/// The joined columns of an appointment and its practitioner.
const SELECT: &str = "SELECT a.id, a.patient_id, a.practitioner_id, a.type, a.starts_at, a.ends_at, a.status,
                             a.reason, a.cancel_reason, a.version, a.booked_at, a.updated_at,
                             p.name AS practitioner_name, p.location, p.time_zone";

/// An appointment with what its messages need of its practitioner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booking {
    pub appointment: Appointment,
    pub practitioner_name: String,
    pub location: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    patient_id: Uuid,
    practitioner_id: Uuid,
    #[sqlx(rename = "type")]
    kind: Option<String>,
    starts_at: OffsetDateTime,
    ends_at: OffsetDateTime,
    status: String,
    reason: Option<String>,
    cancel_reason: Option<String>,
    version: i32,
    booked_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    practitioner_name: String,
    location: Option<String>,
    time_zone: String,
}

impl From<Row> for Booking {
    fn from(r: Row) -> Self {
        let local = in_zone(&r.time_zone);
        Booking {
            appointment: Appointment {
                id: r.id,
                patient_id: r.patient_id,
                practitioner_id: r.practitioner_id,
                kind: r.kind,
                start: local(r.starts_at),
                end: local(r.ends_at),
                time_zone: r.time_zone,
                status: Status::parse(&r.status).unwrap_or(Status::Booked),
                reason: r.reason,
                cancel_reason: r.cancel_reason,
                version: r.version,
                booked_at: r.booked_at,
                updated_at: r.updated_at,
            },
            practitioner_name: r.practitioner_name,
            location: r.location,
        }
    }
}

impl Booking {
    /// The booking `new` becomes with `practitioner` when committed at `at`: what the row
    /// will hold, so that its version, audit row and event go in the same statement.
    fn new(new: &NewAppointment, practitioner: &Practitioner, at: OffsetDateTime) -> Self {
        let local = in_zone(&practitioner.time_zone);
        Booking {
            appointment: Appointment {
                id: Uuid::now_v7(),
                patient_id: new.patient_id,
                practitioner_id: practitioner.id,
                kind: new.kind.clone(),
                start: local(new.start),
                end: local(new.end),
                time_zone: practitioner.time_zone.clone(),
                status: Status::Booked,
                reason: new.reason.clone(),
                cancel_reason: None,
                version: 1,
                booked_at: at,
                updated_at: at,
            },
            practitioner_name: practitioner.name.clone(),
            location: practitioner.location.clone(),
        }
    }
}

/// Shows instants in the IANA zone `time_zone` (as they are, if pms does not know it).
fn in_zone(time_zone: &str) -> impl Fn(OffsetDateTime) -> OffsetDateTime + use<> {
    let zone = Zone::parse(time_zone).ok();
    move |t| zone.as_ref().map_or(t, |z| z.local(t))
}

/// A booking to make.
#[derive(Debug, Clone)]
pub struct NewAppointment {
    pub patient_id: Uuid,
    pub practitioner_id: Uuid,
    pub kind: Option<String>,
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
    pub reason: Option<String>,
}

/// Which appointments a list holds. Every given filter must match.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub practitioner_id: Option<Uuid>,
    pub patient_id: Option<Uuid>,
    pub status: Option<Status>,
    /// Starting at or after.
    pub from: Option<OffsetDateTime>,
    /// Starting before.
    pub to: Option<OffsetDateTime>,
    /// On this calendar date in the practitioner's zone.
    pub date: Option<Date>,
    /// Today in the practitioner's zone.
    pub today: bool,
}

impl ListFilter {
    /// Which filters are used (for the audit row: never their values).
    pub fn used(&self) -> Vec<&'static str> {
        [
            (self.practitioner_id.is_some(), "practitionerId"),
            (self.patient_id.is_some(), "patientId"),
            (self.status.is_some(), "status"),
            (self.from.is_some(), "from"),
            (self.to.is_some(), "to"),
            (self.date.is_some(), "date"),
            (self.today, "today"),
        ]
        .into_iter()
        .filter_map(|(used, name)| used.then_some(name))
        .collect()
    }
}

/// Where a list page ends: the last appointment's start and id.
pub type Position = (OffsetDateTime, Uuid);

#[derive(Clone)]
pub struct Appointments {
    pool: PgPool,
    events: AppointmentEvents,
    relay: Option<Relay>,
    booker: Booker,
}

impl Appointments {
    /// Starts the bookings writer on `background` ([`crate::booker`]).
    pub fn new(
        pool: PgPool,
        events: AppointmentEvents,
        relay: Option<Relay>,
        background: &Background,
    ) -> Self {
        let booker = Booker::start(pool.clone(), relay.clone(), background);
        Self { pool, events, relay, booker }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Books `new` with `practitioner` (as the caller read it) for `ctx`, unless the
    /// practitioner or the patient is taken then: committed with its version, audit row and
    /// event, together with the other bookings of the moment ([`crate::booker`]), so a
    /// refused booking leaves nothing behind.
    pub async fn book(
        &self,
        ctx: &RequestContext,
        new: &NewAppointment,
        practitioner: &Practitioner,
    ) -> Result<Booking> {
        let booking = Booking::new(new, practitioner, now());
        let event = self.events.booked(&booking, ctx.trace_id.as_deref());
        self.booker.book(Pending { ctx: ctx.clone(), booking: booking.clone(), event }).await?;
        Ok(booking)
    }

    /// Moves a booked appointment to `[start, end)` if it is still at `expected_version`.
    pub async fn reschedule(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        expected_version: i32,
        start: OffsetDateTime,
        end: OffsetDateTime,
    ) -> Result<Booking> {
        let mut tx = self.pool.begin().await?;
        let current = lock(&mut tx, id, expected_version).await?;
        if current.appointment.status != Status::Booked {
            return Err(Error::transition(current.appointment.status, Status::Booked));
        }
        hold_schedules(&mut tx, current.appointment.practitioner_id, current.appointment.patient_id).await?;
        let row: Row = sqlx::query_as(&format!(
            "WITH a AS (UPDATE appointments SET starts_at = $2, ends_at = $3, version = version + 1, updated_at = $4
                        WHERE id = $1 RETURNING *)
             {SELECT} FROM a JOIN practitioners p ON p.id = a.practitioner_id"
        ))
        .bind(id)
        .bind(start)
        .bind(end)
        .bind(now())
        .fetch_one(&mut *tx)
        .await
        .map_err(overlap)?;
        let booking = Booking::from(row);
        let previous = (current.appointment.start, current.appointment.end);
        let event = self.events.rescheduled(&booking, previous, ctx.trace_id.as_deref());
        self.commit(tx, ctx, Action::Manage, &booking, Some(event)).await?;
        Ok(booking)
    }

    /// Moves an appointment at `expected_version` to status `to` (with `cancel_reason` when
    /// cancelling), if its lifecycle allows.
    pub async fn change_status(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        expected_version: i32,
        to: Status,
        cancel_reason: Option<&str>,
    ) -> Result<Booking> {
        let mut tx = self.pool.begin().await?;
        let current = lock(&mut tx, id, expected_version).await?;
        let from = current.appointment.status;
        if !from.may_become(to) || from == to {
            return Err(Error::transition(from, to));
        }
        let booking = set_status(&mut tx, id, to, cancel_reason).await?;
        let event = self.events.status_changed(&booking, ctx.trace_id.as_deref());
        self.commit(tx, ctx, Action::Manage, &booking, event).await?;
        Ok(booking)
    }

    /// Cancels the patient's booked appointments that have not started, as `ctx` (pms itself,
    /// acting on the patient's deactivation), in the transaction `tx`; returns how many.
    pub async fn cancel_future_of_patient(
        &self,
        tx: &mut PgConnection,
        ctx: &RequestContext,
        patient_id: Uuid,
        reason: &str,
    ) -> Result<usize> {
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM appointments WHERE patient_id = $1 AND status = 'booked' AND starts_at > now()
             ORDER BY starts_at FOR UPDATE",
        )
        .bind(patient_id)
        .fetch_all(&mut *tx)
        .await?;
        for &id in &ids {
            let booking = set_status(tx, id, Status::Cancelled, Some(reason)).await?;
            let event = self.events.status_changed(&booking, ctx.trace_id.as_deref());
            record(tx, ctx, Action::Manage, &booking, event).await?;
        }
        Ok(ids.len())
    }

    /// Wakes the relay after a commit made elsewhere (the deactivation consumer's).
    pub fn wake(&self) {
        if let Some(relay) = &self.relay {
            relay.wake();
        }
    }

    /// Records `booking`'s change by `ctx` in `tx` ([`record`]), commits, and wakes the relay.
    async fn commit(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
        ctx: &RequestContext,
        action: Action,
        booking: &Booking,
        event: Option<OutboxEvent>,
    ) -> Result<()> {
        record(&mut tx, ctx, action, booking, event).await?;
        tx.commit().await?;
        self.wake();
        Ok(())
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<Booking>> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "{SELECT} FROM appointments a JOIN practitioners p ON p.id = a.practitioner_id WHERE a.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Booking::from))
    }

    /// Every version of an appointment, newest first.
    pub async fn history(&self, id: Uuid) -> Result<Vec<(i32, OffsetDateTime, Appointment)>> {
        let rows: Vec<(i32, OffsetDateTime, Json<Appointment>)> = sqlx::query_as(
            "SELECT version, recorded_at, snapshot FROM appointment_versions WHERE appointment_id = $1
             ORDER BY version DESC",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(v, at, Json(a))| (v, at, a)).collect())
    }

    /// One page (`limit` + 1 rows, see [`kit::json::next_page`]) in start order, after `after`.
    pub async fn list(
        &self,
        filter: &ListFilter,
        limit: u32,
        after: Option<&Position>,
    ) -> Result<Vec<Booking>> {
        // A local date lies within a day and a half of the same UTC date (offsets reach ±14 h):
        // these bounds let the start index narrow the scan before the exact local-date test.
        let date_bounds = filter.date.map(|d| {
            let midnight = d.midnight().assume_utc();
            (midnight - Duration::days(1), midnight + Duration::days(2))
        });
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "{SELECT} FROM appointments a JOIN practitioners p ON p.id = a.practitioner_id
             WHERE ($1::uuid IS NULL OR a.practitioner_id = $1)
               AND ($2::uuid IS NULL OR a.patient_id = $2)
               AND ($3::text IS NULL OR a.status = $3)
               AND ($4::timestamptz IS NULL OR a.starts_at >= $4)
               AND ($5::timestamptz IS NULL OR a.starts_at < $5)
               AND ($6::date IS NULL OR ((a.starts_at AT TIME ZONE p.time_zone)::date = $6
                                         AND a.starts_at >= $7 AND a.starts_at < $8))
               AND (NOT $9 OR ((a.starts_at AT TIME ZONE p.time_zone)::date = (now() AT TIME ZONE p.time_zone)::date
                               AND a.starts_at > now() - interval '38 hours' AND a.starts_at < now() + interval '38 hours'))
               AND ($10::timestamptz IS NULL OR (a.starts_at, a.id) > ($10, $11))
             ORDER BY a.starts_at, a.id
             LIMIT $12"
        ))
        .bind(filter.practitioner_id)
        .bind(filter.patient_id)
        .bind(filter.status.map(Status::as_str))
        .bind(filter.from)
        .bind(filter.to)
        .bind(filter.date)
        .bind(date_bounds.map(|b| b.0))
        .bind(date_bounds.map(|b| b.1))
        .bind(filter.today)
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Booking::from).collect())
    }
}

/// The statement that takes the practitioner's (parameter `$practitioner`) and then the
/// patient's (`$patient`) schedule for the rest of the transaction (advisory locks, always in
/// this order: PostgreSQL evaluates a select list left to right), before an appointment takes
/// their time.
///
/// The exclusion constraints alone would refuse every overlap, but two bookings that overlap
/// on both constraints (one patient, two practitioners, at once) each wait on the other's
/// uncommitted index entry: a deadlock, which PostgreSQL detects only after `deadlock_timeout`
/// (1 s). Under fifty such requests that second adds up to timeouts. Ordered locks make them
/// queue instead; the constraint still decides.
fn holding_sql(practitioner: usize, patient: usize) -> String {
    format!(
        "SELECT pg_advisory_xact_lock({}), pg_advisory_xact_lock({})",
        schedule_key("practitioner", &format!("${practitioner}::uuid")),
        schedule_key("patient", &format!("${patient}::uuid"))
    )
}

/// The advisory lock key (SQL) of the `schedule` (`practitioner` or `patient`) whose id is the
/// SQL expression `id`: one formula for every statement that takes schedules
/// ([`holding_sql`], [`crate::booker`]), so they all queue on the same locks.
pub(crate) fn schedule_key(schedule: &str, id: &str) -> String {
    format!("hashtextextended('appointments:{schedule}:' || {id}::text, 0)")
}

/// Takes the locks of [`holding_sql`] in the transaction `tx`.
async fn hold_schedules(tx: &mut PgConnection, practitioner_id: Uuid, patient_id: Uuid) -> Result<()> {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL.get_or_init(|| holding_sql(1, 2));
    sqlx::query(sql).bind(practitioner_id).bind(patient_id).execute(&mut *tx).await?;
    Ok(())
}

/// The appointment `id`, locked, if it is at `expected_version`.
async fn lock(tx: &mut PgConnection, id: Uuid, expected_version: i32) -> Result<Booking> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "{SELECT} FROM appointments a JOIN practitioners p ON p.id = a.practitioner_id WHERE a.id = $1 FOR UPDATE OF a"
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let booking = Booking::from(row.ok_or(Error::NotFound("no appointment has this id"))?);
    if booking.appointment.version != expected_version {
        return Err(Error::VersionMismatch { current: booking.appointment.version });
    }
    Ok(booking)
}

async fn set_status(
    tx: &mut PgConnection,
    id: Uuid,
    to: Status,
    cancel_reason: Option<&str>,
) -> Result<Booking> {
    let row: Row = sqlx::query_as(&format!(
        "WITH a AS (UPDATE appointments SET status = $2, cancel_reason = coalesce($3, cancel_reason),
                           version = version + 1, updated_at = $4
                    WHERE id = $1 RETURNING *)
         {SELECT} FROM a JOIN practitioners p ON p.id = a.practitioner_id"
    ))
    .bind(id)
    .bind(to.as_str())
    .bind(cancel_reason)
    .bind(now())
    .fetch_one(&mut *tx)
    .await?;
    Ok(Booking::from(row))
}

/// Records a change in its transaction ([`record_sql`]).
async fn record(
    tx: &mut PgConnection,
    ctx: &RequestContext,
    action: Action,
    booking: &Booking,
    event: Option<OutboxEvent>,
) -> Result<()> {
    static SQL: OnceLock<String> = OnceLock::new();
    let sql = SQL.get_or_init(|| format!("WITH {}", record_sql(1)));
    bind_record(sqlx::query(sql), ctx, action, booking, event.as_slice()).execute(&mut *tx).await?;
    Ok(())
}

/// The end of a statement that records a change, in one round trip with it: the appointment's
/// new version, the audit row (naming the version and status, never times or reasons) and the
/// event, if the change has one. Two common table expressions and the final insert, with
/// parameters `$first` to `$first + 19`, bound by [`bind_record`].
fn record_sql(first: usize) -> String {
    format!(
        "version AS (INSERT INTO appointment_versions (appointment_id, version, recorded_at, snapshot)
                     VALUES (${}, ${}, ${}, ${})),
         audit AS ({})
         {}",
        first,
        first + 1,
        first + 2,
        first + 3,
        trail::insert_sql(first + 4),
        outbox::insert_sql(first + 14)
    )
}

/// Binds the parameters of [`record_sql`] for `booking`'s change by `ctx`.
fn bind_record<'q>(
    query: Query<'q, Postgres, PgArguments>,
    ctx: &RequestContext,
    action: Action,
    booking: &'q Booking,
    events: &[OutboxEvent],
) -> Query<'q, Postgres, PgArguments> {
    let a = &booking.appointment;
    let entry = Entry::new(action.as_str(), Some(a.id), Some(a.patient_id), "ok")
        .with_details(json!({ "version": a.version, "status": a.status.as_str() }));
    let query = query.bind(a.id).bind(a.version).bind(a.updated_at).bind(Json(a));
    outbox::bind_rows(trail::bind_rows(query, ctx, &[entry]), events)
}

/// A refused overlap as the conflict it is; any other error as it is.
fn overlap(err: sqlx::Error) -> Error {
    match violated_constraint(&err) {
        Some(PRACTITIONER_OVERLAP) => Error::PractitionerTaken,
        Some(PATIENT_OVERLAP) => Error::PatientTaken,
        _ => Error::Database(err),
    }
}

/// A deadlock or serialization failure: PostgreSQL rolled the transaction back, and trying
/// again will meet the other booking's outcome.
pub(crate) fn is_retryable(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().is_some_and(|c| c == "40P01" || c == "40001"))
}
