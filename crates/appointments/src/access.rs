//! Every use of schedules and appointments, checked against the [`policy`](crate::policy) and
//! audited: the layer between the HTTP handlers and the SQL of [`Practitioners`] and
//! [`Appointments`]. Booking rules live here: the practitioner must be active and working
//! then, the time must be free (looked up first, so most conflicts answer 409 without asking
//! the patients service; PostgreSQL's constraints decide, atomically), and the patient must
//! exist and be active (asked over gRPC).

use kit::{
    RequestContext,
    auth::Action as _,
    trail::{self, Entry},
};
use serde_json::json;
use time::{Date, Duration, OffsetDateTime};
use uuid::Uuid;

use crate::{
    domain::{Appointment, AppointmentType, BookingDraft, MAX_LENGTH, Practitioner},
    error::{Error, Result},
    patient_check::PatientCheck,
    policy::Action,
    practitioners::{BusyWindow, Practitioners},
    schedule::{self, Schedule, Span},
    store::{Appointments, Booking, ListFilter, NewAppointment, Position},
};

/// The type whose length availability assumes when none is asked for.
pub const DEFAULT_TYPE: &str = "consultation";

#[derive(Clone)]
pub struct Scheduling {
    pub practitioners: Practitioners,
    pub appointments: Appointments,
    patients: PatientCheck,
}

/// Free start times of one practitioner for one appointment type.
#[derive(Debug, Clone)]
pub struct Availability {
    pub practitioner: Practitioner,
    pub kind: AppointmentType,
    pub slots: Vec<Span>,
}

impl Scheduling {
    pub fn new(practitioners: Practitioners, appointments: Appointments, patients: PatientCheck) -> Self {
        Self { practitioners, appointments, patients }
    }

    /// 403 unless the caller may do `action`; the refusal is audited first.
    pub async fn authorize(
        &self,
        ctx: &RequestContext,
        action: Action,
        appointment_id: Option<Uuid>,
    ) -> Result<()> {
        Ok(trail::authorize(self.appointments.pool(), ctx, action, appointment_id, None).await?)
    }

    /// The practitioner `id`, or 404.
    pub async fn practitioner(&self, id: Uuid) -> Result<Practitioner> {
        self.practitioners.get(id).await?.ok_or(Error::NotFound("no practitioner has this id"))
    }

    /// The practitioner's free start times from `from` to `to` for appointments of `kind`,
    /// from one read (practitioner, type, schedule and booked times together).
    pub async fn availability(
        &self,
        practitioner_id: Uuid,
        from: OffsetDateTime,
        to: OffsetDateTime,
        kind: &str,
    ) -> Result<Availability> {
        let from = from.max(OffsetDateTime::now_utc());
        let (first, last) = local_dates_around(from, to);
        let planning = self
            .practitioners
            .planning(
                practitioner_id,
                Some(kind),
                first,
                last,
                Some(BusyWindow { window: (from, to), patient: None }),
            )
            .await?
            .ok_or(Error::NotFound("no practitioner has this id"))?;
        let (practitioner, schedule, busy) = (planning.practitioner, planning.schedule, planning.busy);
        let kind = planning.kind.ok_or_else(|| {
            Error::Invalid(vec![kit::FieldError::parameter("type", "is not an appointment type")])
        })?;
        let length = Duration::minutes(i64::from(kind.minutes));
        if !practitioner.active {
            return Ok(Availability { practitioner, kind, slots: Vec::new() });
        }
        // Open time from the start of the day before, so that free times keep the grid of the
        // working hours (09:00, 09:15, …) and not of `from` (now: 09:07, 09:22, …);
        // `free_starts` skips what lies before `from`.
        let day_before = schedule.zone.date_of(from).previous_day().unwrap_or(Date::MIN);
        let open = schedule.open(schedule.zone.at(day_before, 0).min(from), to);
        let slots = schedule::free_starts(&open, &busy, length, from)
            .into_iter()
            .map(|start| (schedule.zone.local(start), schedule.zone.local(start + length)))
            .collect();
        Ok(Availability { practitioner, kind, slots })
    }

    /// Whether the practitioner works all of `[start, end)`, else a 422 naming `/start`.
    async fn ensure_working(
        &self,
        practitioner: &Practitioner,
        start: OffsetDateTime,
        end: OffsetDateTime,
    ) -> Result<()> {
        let (first, last) = local_dates_around(start, end);
        let schedule = self.practitioners.schedule(practitioner, first, last).await?;
        working(&schedule, start, end)
    }

    /// Books `draft` for `ctx` (whose access token `token` asks the patients service).
    /// Everything but the patient is checked from one read (practitioner, type, schedule, and
    /// the practitioner's and the patient's booked times around the start), so a refused
    /// booking costs one round trip to PostgreSQL; an accepted one then asks the patients
    /// service and commits in one statement ([`Appointments::book`]).
    pub async fn book(&self, ctx: &RequestContext, token: &str, draft: BookingDraft) -> Result<Booking> {
        // Appointments last at most 8 hours: the window to that reach covers any type's end.
        let reach = draft.end.unwrap_or(draft.start + MAX_LENGTH).max(draft.start);
        let (first, last) = local_dates_around(draft.start, reach);
        let busy = BusyWindow { window: (draft.start, reach), patient: Some(draft.patient_id) };
        let planning = self
            .practitioners
            .planning(draft.practitioner_id, draft.kind.as_deref(), first, last, Some(busy))
            .await?;
        let planning = match planning {
            Some(p) if p.practitioner.active => p,
            Some(_) => {
                return Err(Error::field("/practitionerId", "the practitioner is not taking appointments"));
            }
            None => return Err(Error::field("/practitionerId", "no practitioner has this id")),
        };
        let end = match (&draft.kind, draft.end, &planning.kind) {
            (None, None, _) => return Err(Error::field("/type", "give the appointment type, or an end")),
            (Some(_), _, None) => {
                return Err(Error::field("/type", "is not an appointment type (see /api/appointment-types)"));
            }
            (_, Some(end), _) => end,
            (Some(_), None, Some(kind)) => draft.start + Duration::minutes(i64::from(kind.minutes)),
        };
        working(&planning.schedule, draft.start, end)?;
        // The cheap answer to most conflicts, before the patients service is asked; the
        // constraints still decide for bookings committed after this read.
        if overlaps(&planning.busy, draft.start, end) {
            return Err(Error::PractitionerTaken);
        }
        if overlaps(&planning.patient_busy, draft.start, end) {
            return Err(Error::PatientTaken);
        }
        self.patients.ensure_active(ctx, token, draft.patient_id).await?;
        let new = NewAppointment {
            patient_id: draft.patient_id,
            practitioner_id: planning.practitioner.id,
            kind: draft.kind,
            start: draft.start,
            end,
            reason: draft.reason,
        };
        self.appointments.book(ctx, &new, &planning.practitioner).await
    }

    /// Moves appointment `id` to start at `start` (ending at `end`, else keeping its length).
    pub async fn reschedule(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        expected_version: i32,
        start: OffsetDateTime,
        end: Option<OffsetDateTime>,
    ) -> Result<Booking> {
        let current =
            self.appointments.get(id).await?.ok_or(Error::NotFound("no appointment has this id"))?;
        let a = &current.appointment;
        let end = end.unwrap_or(start + (a.end - a.start));
        let practitioner = self.practitioner(a.practitioner_id).await?;
        self.ensure_working(&practitioner, start, end).await?;
        self.appointments.reschedule(ctx, id, expected_version, start, end).await
    }

    /// Reads an appointment; audited whatever the outcome, before it is answered.
    pub async fn read(&self, ctx: &RequestContext, id: Uuid) -> Result<Appointment> {
        let found = self.appointments.get(id).await?;
        let (outcome, patient) = match &found {
            Some(b) => ("ok", Some(b.appointment.patient_id)),
            None => ("not_found", None),
        };
        trail::record(
            self.appointments.pool(),
            ctx,
            &[Entry::new(Action::Read.as_str(), Some(id), patient, outcome)],
        )
        .await?;
        found.map(|b| b.appointment).ok_or(Error::NotFound("no appointment has this id"))
    }

    /// Every version of an appointment, newest first; audited.
    pub async fn history(
        &self,
        ctx: &RequestContext,
        id: Uuid,
    ) -> Result<Vec<(i32, OffsetDateTime, Appointment)>> {
        let versions = self.appointments.history(id).await?;
        let patient = versions.first().map(|v| v.2.patient_id);
        let outcome = if versions.is_empty() { "not_found" } else { "ok" };
        trail::record(
            self.appointments.pool(),
            ctx,
            &[Entry::new(Action::Read.as_str(), Some(id), patient, outcome)],
        )
        .await?;
        if versions.is_empty() { Err(Error::NotFound("no appointment has this id")) } else { Ok(versions) }
    }

    /// One page of appointments; the audit row keeps which filters were used and which
    /// appointments were shown.
    pub async fn list(
        &self,
        ctx: &RequestContext,
        filter: &ListFilter,
        limit: u32,
        after: Option<&Position>,
    ) -> Result<(Vec<Appointment>, Option<Position>)> {
        let mut page: Vec<Appointment> =
            self.appointments.list(filter, limit, after).await?.into_iter().map(|b| b.appointment).collect();
        let next = kit::json::next_page(&mut page, limit, |a| (a.start, a.id));
        let shown: Vec<Uuid> = page.iter().map(|a| a.id).collect();
        let entry = Entry::new(Action::List.as_str(), None, filter.patient_id, "ok").with_details(
            json!({ "filters": filter.used(), "results": shown.len(), "appointmentIds": shown }),
        );
        trail::record(self.appointments.pool(), ctx, &[entry]).await?;
        Ok((page, next))
    }
}

/// The local dates whose hours can matter for `[from, to)`: a day either side of the UTC dates
/// covers every offset.
fn local_dates_around(from: OffsetDateTime, to: OffsetDateTime) -> (Date, Date) {
    (from.date() - Duration::days(1), to.date() + Duration::days(1))
}

/// Whether any of the booked `spans` overlaps `[start, end)` (touching ends do not).
fn overlaps(spans: &[Span], start: OffsetDateTime, end: OffsetDateTime) -> bool {
    spans.iter().any(|&(busy_start, busy_end)| busy_start < end && start < busy_end)
}

/// Whether `schedule` has all of `[start, end)` as working time, else a 422 naming `/start`.
fn working(schedule: &Schedule, start: OffsetDateTime, end: OffsetDateTime) -> Result<()> {
    if schedule.covers(start, end) {
        Ok(())
    } else {
        Err(Error::field("/start", "is outside the practitioner's working hours (see their availability)"))
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn a_booked_time_conflicts_only_when_it_overlaps_and_back_to_back_times_do_not() {
        let busy = [(datetime!(2030-01-07 09:00 UTC), datetime!(2030-01-07 09:30 UTC))];
        let at = |h, m| datetime!(2030-01-07 00:00 UTC) + Duration::hours(h) + Duration::minutes(m);
        assert!(overlaps(&busy, at(9, 15), at(9, 45)), "starts inside");
        assert!(overlaps(&busy, at(8, 45), at(9, 15)), "ends inside");
        assert!(overlaps(&busy, at(8, 0), at(10, 0)), "covers it");
        assert!(overlaps(&busy, at(9, 0), at(9, 30)), "the same time");
        assert!(!overlaps(&busy, at(9, 30), at(10, 0)), "starts as it ends");
        assert!(!overlaps(&busy, at(8, 30), at(9, 0)), "ends as it starts");
        assert!(!overlaps(&[], at(9, 0), at(9, 30)), "nothing booked");
    }
}
