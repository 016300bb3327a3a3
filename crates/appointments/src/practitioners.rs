//! `Practitioners`: the SQL of practitioners, their weekly hours and exceptions, and of
//! appointment types. Who may call it is decided by [`crate::access`].

use kit::{email::Email, phone::Phone};
use std::ops::Bound;

use sqlx::{PgPool, postgres::types::PgRange};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use kit::zone::Zone;

use crate::{
    domain::{
        AppointmentType, ExceptionKindName, MAX_LENGTH, Practitioner, PractitionerDraft, ScheduleException,
        format_clock,
    },
    error::{Error, Result},
    schedule::{Exception, ExceptionKind, Schedule, Shift, Span},
    store::HOLDING,
};

const COLUMNS: &str =
    "id, name, specialty, email, phone, location, time_zone, active, version, created_at, updated_at";

/// The practitioner's columns as `planning` selects them (from `practitioners p`).
const PLANNING_COLUMNS: &str = "p.id, p.name, p.specialty, p.email, p.phone, p.location, p.time_zone, p.active, \
                                p.version, p.created_at, p.updated_at";
/// The exceptions on the local dates `$3` to `$4`, in the order `exceptions` lists them.
const EXCEPTIONS: &str =
    "e.practitioner_id = p.id AND e.day BETWEEN $3 AND $4 ORDER BY e.day, e.start_minute NULLS FIRST, e.id";

/// The appointments of `whose` (`a.practitioner_id = p.id`, or a patient's) that hold time
/// overlapping `[$5, $6)`, by start (none when `$5` is NULL): appointments last at most
/// [`MAX_LENGTH`], so only those starting that long before `$5` can reach into it.
fn busy_condition(whose: &str) -> String {
    let reach = MAX_LENGTH.whole_seconds();
    format!(
        "$5::timestamptz IS NOT NULL AND {whose} AND a.status IN {HOLDING}
         AND a.starts_at < $6 AND a.starts_at > $5 - interval '{reach} seconds' AND a.ends_at > $5
         ORDER BY a.starts_at, a.id"
    )
}

/// A weekly shift's day as minutes since Monday 00:00: a shift travels as the range of
/// minutes of the week it covers, one array instead of three.
const MINUTE_OF_WEEK: &str = "(weekday - 1) * 1440";

/// The statement of [`Practitioners::planning`], made once. Each array is a subquery of its
/// own (a row of arrays decodes straight into [`PlanningRow`]); shifts and booked times come
/// as ranges, so their tables are read once each rather than once per column: 0.23 -> 0.18 ms
/// per call on the scheduling benchmark's database (docs/benchmarks.md, 2026-12-04, fourth
/// session).
fn planning_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let practitioner_busy = busy_condition("a.practitioner_id = p.id");
        let patient_busy = busy_condition("$7::uuid IS NOT NULL AND a.patient_id = $7");
        format!(
            "SELECT {PLANNING_COLUMNS}, t.code AS type_code, t.name AS type_name, t.minutes AS type_minutes,
                    ARRAY(SELECT int4range({MINUTE_OF_WEEK} + start_minute, {MINUTE_OF_WEEK} + end_minute)
                          FROM working_hours w WHERE w.practitioner_id = p.id
                          ORDER BY weekday, start_minute) AS week,
                    ARRAY(SELECT day FROM schedule_exceptions e WHERE {EXCEPTIONS}) AS exception_days,
                    ARRAY(SELECT kind FROM schedule_exceptions e WHERE {EXCEPTIONS}) AS exception_kinds,
                    ARRAY(SELECT start_minute FROM schedule_exceptions e WHERE {EXCEPTIONS}) AS exception_starts,
                    ARRAY(SELECT end_minute FROM schedule_exceptions e WHERE {EXCEPTIONS}) AS exception_ends,
                    ARRAY(SELECT tstzrange(starts_at, ends_at) FROM appointments a WHERE {practitioner_busy}) AS busy,
                    ARRAY(SELECT tstzrange(starts_at, ends_at) FROM appointments a WHERE {patient_busy}) AS patient_busy
             FROM practitioners p LEFT JOIN appointment_types t ON t.code = $2
             WHERE p.id = $1"
        )
    })
}

/// Whose booked times [`Practitioners::planning`] reads, over which window.
#[derive(Debug, Clone, Copy)]
pub struct BusyWindow {
    /// The practitioner's booked times overlapping this span are read.
    pub window: Span,
    /// And this patient's, if given (a booking checks both before asking anyone else).
    pub patient: Option<Uuid>,
}

/// A practitioner with what deciding their free times needs ([`Practitioners::planning`]).
pub struct Planning {
    pub practitioner: Practitioner,
    /// The appointment type asked for, if it exists.
    pub kind: Option<AppointmentType>,
    pub schedule: Schedule,
    /// The booked times overlapping the window asked for, by start (empty if none was asked).
    pub busy: Vec<Span>,
    /// The patient's booked times (with any practitioner) overlapping that window, by start
    /// (empty if no patient was named).
    pub patient_busy: Vec<Span>,
}

#[derive(sqlx::FromRow)]
struct PlanningRow {
    #[sqlx(flatten)]
    practitioner: Row,
    type_code: Option<String>,
    type_name: Option<String>,
    type_minutes: Option<i32>,
    week: Vec<PgRange<i32>>,
    exception_days: Vec<Date>,
    exception_kinds: Vec<String>,
    exception_starts: Vec<Option<i16>>,
    exception_ends: Vec<Option<i16>>,
    busy: Vec<PgRange<OffsetDateTime>>,
    patient_busy: Vec<PgRange<OffsetDateTime>>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    name: String,
    specialty: String,
    email: Option<String>,
    phone: Option<String>,
    location: Option<String>,
    time_zone: String,
    active: bool,
    version: i32,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl From<Row> for Practitioner {
    fn from(r: Row) -> Self {
        Practitioner {
            id: r.id,
            name: r.name,
            specialty: r.specialty,
            email: r.email,
            phone: r.phone,
            location: r.location,
            time_zone: r.time_zone,
            active: r.active,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Now, at the microsecond precision PostgreSQL keeps.
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000).unwrap_or(now)
}

#[derive(Clone)]
pub struct Practitioners {
    pool: PgPool,
}

impl Practitioners {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub async fn create(&self, draft: &PractitionerDraft) -> Result<Practitioner> {
        let at = now();
        let row: Row = sqlx::query_as(&format!(
            "INSERT INTO practitioners ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9)
             RETURNING {COLUMNS}"
        ))
        .bind(Uuid::now_v7())
        .bind(&draft.name)
        .bind(&draft.specialty)
        .bind(draft.email.as_ref().map(Email::as_str))
        .bind(draft.phone.as_ref().map(Phone::as_str))
        .bind(&draft.location)
        .bind(draft.zone.name())
        .bind(draft.active)
        .bind(at)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.into())
    }

    pub async fn update(
        &self,
        id: Uuid,
        expected_version: i32,
        draft: &PractitionerDraft,
    ) -> Result<Practitioner> {
        let row: Option<Row> = sqlx::query_as(&format!(
            "UPDATE practitioners SET name = $3, specialty = $4, email = $5, phone = $6, location = $7,
                    time_zone = $8, active = $9, updated_at = $10, version = version + 1
             WHERE id = $1 AND version = $2 RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(expected_version)
        .bind(&draft.name)
        .bind(&draft.specialty)
        .bind(draft.email.as_ref().map(Email::as_str))
        .bind(draft.phone.as_ref().map(Phone::as_str))
        .bind(&draft.location)
        .bind(draft.zone.name())
        .bind(draft.active)
        .bind(now())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(row.into()),
            None => match self.get(id).await? {
                None => Err(Error::NotFound("no practitioner has this id")),
                Some(p) => Err(Error::VersionMismatch { current: p.version }),
            },
        }
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<Practitioner>> {
        let row: Option<Row> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM practitioners WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(Into::into))
    }

    /// One page of practitioners by name, after `after` (name, id); inactive ones only if asked.
    pub async fn list(
        &self,
        specialty: Option<&str>,
        include_inactive: bool,
        limit: u32,
        after: Option<&(String, Uuid)>,
    ) -> Result<Vec<Practitioner>> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM practitioners
             WHERE ($1::text IS NULL OR lower(specialty) = lower($1)) AND ($2 OR active)
               AND ($3::text IS NULL OR (name, id) > ($3, $4))
             ORDER BY name, id LIMIT $5"
        ))
        .bind(specialty)
        .bind(include_inactive)
        .bind(after.map(|a| a.0.as_str()))
        .bind(after.map(|a| a.1))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// The practitioner's zone and weekly hours, with the exceptions from `from` to `to`
    /// (local dates, both included).
    pub async fn schedule(&self, practitioner: &Practitioner, from: Date, to: Date) -> Result<Schedule> {
        let zone = Zone::parse(&practitioner.time_zone)
            .map_err(|_| Error::NotFound("the practitioner's time zone is unknown"))?;
        let week = self.week(practitioner.id).await?;
        let exceptions = self
            .exceptions(practitioner.id, from, to)
            .await?
            .into_iter()
            .map(|(_, exception, _)| exception)
            .collect();
        Ok(Schedule { zone, week, exceptions })
    }

    /// What booking or offering times needs, in one round trip: the practitioner, the
    /// appointment type `kind` (if asked; `None` inside when unknown), their schedule for the
    /// local dates `from` to `to`, and (when `busy` names a window) their booked times that
    /// overlap it, and the named patient's. `None` when no practitioner has this id.
    pub async fn planning(
        &self,
        id: Uuid,
        kind: Option<&str>,
        from: Date,
        to: Date,
        busy: Option<BusyWindow>,
    ) -> Result<Option<Planning>> {
        let row: Option<PlanningRow> = sqlx::query_as(planning_sql())
            .bind(id)
            .bind(kind)
            .bind(from)
            .bind(to)
            .bind(busy.map(|b| b.window.0))
            .bind(busy.map(|b| b.window.1))
            .bind(busy.and_then(|b| b.patient))
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let zone = Zone::parse(&row.practitioner.time_zone)
            .map_err(|_| Error::NotFound("the practitioner's time zone is unknown"))?;
        let week = row.week.iter().map(shift).collect::<Result<_, _>>()?;
        let exceptions = row
            .exception_days
            .iter()
            .zip(&row.exception_kinds)
            .zip(row.exception_starts.iter().zip(&row.exception_ends))
            .map(|((&day, kind), (&start, &end))| exception(day, kind, start, end))
            .collect();
        let kind = match (row.type_code, row.type_name, row.type_minutes) {
            (Some(code), Some(name), Some(minutes)) => Some(AppointmentType { code, name, minutes }),
            _ => None,
        };
        Ok(Some(Planning {
            practitioner: row.practitioner.into(),
            kind,
            schedule: Schedule { zone, week, exceptions },
            busy: row.busy.iter().map(span).collect::<Result<_, _>>()?,
            patient_busy: row.patient_busy.iter().map(span).collect::<Result<_, _>>()?,
        }))
    }

    pub async fn week(&self, id: Uuid) -> Result<Vec<Shift>> {
        let rows: Vec<(i16, i16, i16)> = sqlx::query_as(
            "SELECT weekday, start_minute, end_minute FROM working_hours WHERE practitioner_id = $1
             ORDER BY weekday, start_minute",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(weekday, start, end)| Shift {
                weekday: weekday as u8,
                start: start as u16,
                end: end as u16,
            })
            .collect())
    }

    /// Replaces the practitioner's weekly hours.
    pub async fn replace_week(&self, id: Uuid, shifts: &[Shift]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        // Lock the practitioner so two replacements do not interleave.
        sqlx::query("SELECT 1 FROM practitioners WHERE id = $1 FOR UPDATE")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM working_hours WHERE practitioner_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO working_hours (practitioner_id, weekday, start_minute, end_minute)
             SELECT $1, w, s, e FROM unnest($2::smallint[], $3::smallint[], $4::smallint[]) AS t(w, s, e)",
        )
        .bind(id)
        .bind(shifts.iter().map(|s| s.weekday as i16).collect::<Vec<_>>())
        .bind(shifts.iter().map(|s| s.start as i16).collect::<Vec<_>>())
        .bind(shifts.iter().map(|s| s.end as i16).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn add_exception(
        &self,
        id: Uuid,
        exception: &Exception,
        reason: Option<&str>,
    ) -> Result<ScheduleException> {
        let exception_id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO schedule_exceptions (id, practitioner_id, day, kind, start_minute, end_minute, reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(exception_id)
        .bind(id)
        .bind(exception.day)
        .bind(kind_name(exception.kind))
        .bind(exception.minutes.map(|m| m.0 as i16))
        .bind(exception.minutes.map(|m| m.1 as i16))
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(to_api(exception_id, exception, reason.map(str::to_owned)))
    }

    /// The exceptions from `from` to `to` (both included), by day.
    pub async fn exceptions(
        &self,
        id: Uuid,
        from: Date,
        to: Date,
    ) -> Result<Vec<(Uuid, Exception, Option<String>)>> {
        let rows: Vec<ExceptionRow> = sqlx::query_as(
            "SELECT id, day, kind, start_minute, end_minute, reason FROM schedule_exceptions
             WHERE practitioner_id = $1 AND day BETWEEN $2 AND $3 ORDER BY day, start_minute NULLS FIRST, id",
        )
        .bind(id)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| (row.id, exception(row.day, &row.kind, row.start_minute, row.end_minute), row.reason))
            .collect())
    }

    /// Removes an exception; false if the practitioner has none with this id.
    pub async fn remove_exception(&self, id: Uuid, exception_id: Uuid) -> Result<bool> {
        let done = sqlx::query("DELETE FROM schedule_exceptions WHERE practitioner_id = $1 AND id = $2")
            .bind(id)
            .bind(exception_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn types(&self) -> Result<Vec<AppointmentType>> {
        Ok(sqlx::query_as("SELECT code, name, minutes FROM appointment_types ORDER BY code")
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn appointment_type(&self, code: &str) -> Result<Option<AppointmentType>> {
        Ok(sqlx::query_as("SELECT code, name, minutes FROM appointment_types WHERE code = $1")
            .bind(code)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Adds or changes the type `code`; true when it is new.
    pub async fn put_type(&self, code: &str, name: &str, minutes: i32) -> Result<(AppointmentType, bool)> {
        let row: TypeRow = sqlx::query_as(
            "INSERT INTO appointment_types (code, name, minutes) VALUES ($1, $2, $3)
             ON CONFLICT (code) DO UPDATE SET name = excluded.name, minutes = excluded.minutes
             RETURNING code, name, minutes, (xmax = 0) AS created",
        )
        .bind(code)
        .bind(name)
        .bind(minutes)
        .fetch_one(&self.pool)
        .await?;
        Ok((AppointmentType { code: row.code, name: row.name, minutes: row.minutes }, row.created))
    }
}

/// A shift from its range of minutes of the week ([`MINUTE_OF_WEEK`]); PostgreSQL gives
/// integer ranges as `[lower, upper)`, and the table's checks keep a shift inside its day.
fn shift(range: &PgRange<i32>) -> Result<Shift, sqlx::Error> {
    let (Bound::Included(lower), Bound::Excluded(upper)) = (range.start, range.end) else {
        return Err(unexpected_range());
    };
    let day = lower.div_euclid(1440);
    match (u8::try_from(day + 1), u16::try_from(lower - day * 1440), u16::try_from(upper - day * 1440)) {
        (Ok(weekday), Ok(start), Ok(end)) => Ok(Shift { weekday, start, end }),
        _ => Err(unexpected_range()),
    }
}

/// A booked time from its `tstzrange(starts_at, ends_at)`, `[start, end)` (never empty: the
/// table checks that an appointment ends after it starts).
fn span(range: &PgRange<OffsetDateTime>) -> Result<Span, sqlx::Error> {
    match (range.start, range.end) {
        (Bound::Included(start), Bound::Excluded(end)) => Ok((start, end)),
        _ => Err(unexpected_range()),
    }
}

fn unexpected_range() -> sqlx::Error {
    sqlx::Error::Decode("the planning read returned a range with unexpected bounds".into())
}

/// An exception as stored: `kind` is `off` or `extra`, minutes after local midnight or none.
fn exception(day: Date, kind: &str, start: Option<i16>, end: Option<i16>) -> Exception {
    Exception {
        day,
        kind: if kind == "extra" { ExceptionKind::Extra } else { ExceptionKind::Off },
        minutes: start.zip(end).map(|(s, e)| (s as u16, e as u16)),
    }
}

#[derive(sqlx::FromRow)]
struct ExceptionRow {
    id: Uuid,
    day: Date,
    kind: String,
    start_minute: Option<i16>,
    end_minute: Option<i16>,
    reason: Option<String>,
}

#[derive(sqlx::FromRow)]
struct TypeRow {
    code: String,
    name: String,
    minutes: i32,
    created: bool,
}

fn kind_name(kind: ExceptionKind) -> &'static str {
    match kind {
        ExceptionKind::Off => "off",
        ExceptionKind::Extra => "extra",
    }
}

pub fn to_api(id: Uuid, exception: &Exception, reason: Option<String>) -> ScheduleException {
    ScheduleException {
        id,
        date: kit::date::format_date(exception.day),
        kind: match exception.kind {
            ExceptionKind::Off => ExceptionKindName::Off,
            ExceptionKind::Extra => ExceptionKindName::Extra,
        },
        start: exception.minutes.map(|m| format_clock(m.0)),
        end: exception.minutes.map(|m| format_clock(m.1)),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minutes(lower: i32, upper: i32) -> PgRange<i32> {
        PgRange { start: Bound::Included(lower), end: Bound::Excluded(upper) }
    }

    #[test]
    fn a_shift_comes_back_from_its_minutes_of_the_week() {
        let monday_morning = shift(&minutes(8 * 60, 12 * 60)).expect("a shift");
        assert_eq!(monday_morning, Shift { weekday: 1, start: 480, end: 720 });
        // A shift to midnight ends where the next day starts, and stays on its own day.
        let sunday_evening = shift(&minutes(6 * 1440 + 18 * 60, 7 * 1440)).expect("a shift");
        assert_eq!(sunday_evening, Shift { weekday: 7, start: 1080, end: 1440 });
        let unbounded = PgRange { start: Bound::Included(0), end: Bound::Unbounded };
        assert!(shift(&unbounded).is_err());
    }
}
