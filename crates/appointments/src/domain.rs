//! Practitioners, their hours, appointment types and appointments as clients send and receive
//! them, and the validated forms in between. Inputs refuse unknown fields; a draft can only
//! hold valid values; validation names every invalid field at once, by JSON pointer.

use kit::{FieldError, date::parse_date, email::Email, phone::Phone};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime, format_description::well_known::Rfc3339};
use utoipa::ToSchema;
use uuid::Uuid;

use kit::zone::Zone;

use crate::schedule::{Exception, ExceptionKind, Shift};

/// An appointment is at most this long.
pub const MAX_LENGTH: Duration = Duration::hours(8);
/// Appointments are booked at most this far ahead.
pub const MAX_AHEAD: Duration = Duration::days(730);

/// What an admin sends to add or replace a practitioner.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PractitionerInput {
    /// As it should appear to patients, e.g. "Dr Ana Ruiz"; 1 to 200 characters.
    #[schema(
        example = "Dr Ana Ruiz",
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    /// 1 to 100 characters, e.g. "General practice".
    #[schema(
        example = "General practice",
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub specialty: String,
    #[serde(default)]
    #[schema(example = "ana.ruiz@clinic.example.org")]
    pub email: Option<String>,
    /// E.164, as for patients.
    #[serde(default)]
    #[schema(
        example = "+34600111222",
        pattern = r"^\s*[ ().-]*\+[ ().-]*[1-9]([ ().-]*[0-9]){6,14}[ ().-]*\s*$"
    )]
    pub phone: Option<String>,
    /// Where patients go, e.g. "Room 3, first floor"; up to 200 characters.
    #[serde(default)]
    #[schema(
        example = "Room 3, first floor",
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub location: Option<String>,
    /// IANA time zone of the practitioner's working hours, e.g. "Europe/Madrid".
    #[schema(example = "Europe/Madrid", max_length = 64)]
    pub time_zone: String,
    /// Whether appointments may be booked with them (default true).
    #[serde(default)]
    pub active: Option<bool>,
}

/// A validated practitioner.
#[derive(Debug, Clone)]
pub struct PractitionerDraft {
    pub name: String,
    pub specialty: String,
    pub email: Option<Email>,
    pub phone: Option<Phone>,
    pub location: Option<String>,
    pub zone: Zone,
    pub active: bool,
}

impl PractitionerDraft {
    pub fn parse(input: PractitionerInput) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let name = text(&input.name, "/name", 200, &mut errors);
        let specialty = text(&input.specialty, "/specialty", 100, &mut errors);
        let email = input
            .email
            .as_deref()
            .and_then(|e| Email::parse(e).map_err(|d| errors.push(FieldError::body("/email", d))).ok());
        let phone = input
            .phone
            .as_deref()
            .and_then(|p| Phone::parse(p).map_err(|d| errors.push(FieldError::body("/phone", d))).ok());
        let location = input.location.as_deref().map(|l| text(l, "/location", 200, &mut errors));
        let zone =
            Zone::parse(&input.time_zone).map_err(|d| errors.push(FieldError::body("/timeZone", d))).ok();
        match zone {
            Some(zone) if errors.is_empty() => Ok(Self {
                name,
                specialty,
                email,
                phone,
                location,
                zone,
                active: input.active.unwrap_or(true),
            }),
            _ => Err(errors),
        }
    }
}

/// White space collapsed; an error unless 1 to `max` characters with no control characters.
fn text(raw: &str, pointer: &str, max: usize, errors: &mut Vec<FieldError>) -> String {
    let collapsed = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() {
        errors.push(FieldError::body(pointer, "must not be empty"));
    } else if raw.chars().count() > max {
        errors.push(FieldError::body(pointer, format!("must be at most {max} characters")));
    } else if raw.chars().any(char::is_control) {
        errors.push(FieldError::body(pointer, "must not contain control characters"));
    }
    collapsed
}

/// A practitioner, as the API answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Practitioner {
    pub id: Uuid,
    pub name: String,
    pub specialty: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    pub time_zone: String,
    pub active: bool,
    pub version: i32,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// One weekly stretch of working hours, in the practitioner's time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ShiftInput {
    /// ISO weekday: 1 = Monday ... 7 = Sunday.
    #[schema(minimum = 1, maximum = 7)]
    #[serde(deserialize_with = "kit::json::whole_number")]
    pub weekday: u8,
    /// `HH:MM`, local time.
    #[schema(example = "09:00", pattern = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")]
    pub start: String,
    /// `HH:MM`, after `start`; `24:00` is midnight at the end of the day.
    #[schema(example = "13:00", pattern = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")]
    pub end: String,
}

/// A practitioner's weekly working hours: every stretch of every weekday (the whole week is
/// replaced at once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkingHours {
    #[schema(max_items = 70)]
    pub hours: Vec<ShiftInput>,
}

impl WorkingHours {
    /// The stretches, validated: real times, end after start, no two overlapping on a day.
    pub fn parse(&self) -> Result<Vec<Shift>, Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.hours.len() > 70 {
            return Err(vec![FieldError::body("/hours", "must have at most 70 stretches")]);
        }
        let mut shifts = Vec::new();
        for (i, shift) in self.hours.iter().enumerate() {
            let at = |member: &str| format!("/hours/{i}/{member}");
            if !(1..=7).contains(&shift.weekday) {
                errors.push(FieldError::body(at("weekday"), "must be 1 (Monday) to 7 (Sunday)"));
            }
            let start = clock(&shift.start).map_err(|d| errors.push(FieldError::body(at("start"), d))).ok();
            let end = clock(&shift.end).map_err(|d| errors.push(FieldError::body(at("end"), d))).ok();
            if let (Some(start), Some(end)) = (start, end) {
                if end <= start {
                    errors.push(FieldError::body(at("end"), "must be after start"));
                } else if shifts
                    .iter()
                    .any(|s: &Shift| s.weekday == shift.weekday && s.start < end && start < s.end)
                {
                    errors
                        .push(FieldError::body(at("start"), "overlaps another stretch of the same weekday"));
                } else {
                    shifts.push(Shift { weekday: shift.weekday, start: start.min(1439), end });
                }
            }
        }
        if errors.is_empty() { Ok(shifts) } else { Err(errors) }
    }

    pub fn from_shifts(shifts: &[Shift]) -> Self {
        Self {
            hours: shifts
                .iter()
                .map(|s| ShiftInput {
                    weekday: s.weekday,
                    start: format_clock(s.start),
                    end: format_clock(s.end),
                })
                .collect(),
        }
    }
}

/// Minutes after midnight of `HH:MM` (00:00 to 24:00).
pub fn clock(raw: &str) -> Result<u16, String> {
    let invalid = || "must be a time written HH:MM, from 00:00 to 24:00".to_owned();
    let (h, m) = raw.trim().split_once(':').ok_or_else(invalid)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(invalid());
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| invalid())?, m.parse().map_err(|_| invalid())?);
    let minutes = h * 60 + m;
    if m >= 60 || minutes > 1440 { Err(invalid()) } else { Ok(minutes) }
}

pub fn format_clock(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// What an admin sends to change one day's hours.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExceptionInput {
    /// `YYYY-MM-DD`, in the practitioner's time zone.
    #[schema(value_type = String, format = Date, example = "2027-04-02")]
    pub date: String,
    /// `off`: not working (the whole day, or from `start` to `end`); `extra`: working from
    /// `start` to `end` besides the weekly hours.
    #[schema(value_type = ExceptionKindName)]
    pub kind: String,
    #[serde(default)]
    #[schema(example = "10:00", pattern = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")]
    pub start: Option<String>,
    #[serde(default)]
    #[schema(example = "12:00", pattern = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")]
    pub end: Option<String>,
    /// Why, for the staff (up to 500 characters; never shown to patients).
    #[serde(default)]
    #[schema(
        max_length = 500,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExceptionKindName {
    Off,
    Extra,
}

impl ExceptionInput {
    pub fn parse(&self) -> Result<(Exception, Option<String>), Vec<FieldError>> {
        let mut errors = Vec::new();
        let day = parse_date(&self.date).map_err(|d| errors.push(FieldError::body("/date", d))).ok();
        let kind = match self.kind.as_str() {
            "off" => Some(ExceptionKind::Off),
            "extra" => Some(ExceptionKind::Extra),
            _ => {
                errors.push(FieldError::body("/kind", "must be `off` or `extra`"));
                None
            }
        };
        let mut minute = |raw: &Option<String>, pointer: &str| {
            raw.as_deref().and_then(|r| clock(r).map_err(|d| errors.push(FieldError::body(pointer, d))).ok())
        };
        let (start, end) = (minute(&self.start, "/start"), minute(&self.end, "/end"));
        let minutes = match (start, end) {
            (Some(s), Some(e)) if e > s => Some((s, e)),
            (Some(_), Some(_)) => {
                errors.push(FieldError::body("/end", "must be after start"));
                None
            }
            (None, None) if self.start.is_none() && self.end.is_none() => None,
            _ if self.start.is_none() || self.end.is_none() => {
                errors.push(FieldError::body(
                    if self.start.is_none() { "/start" } else { "/end" },
                    "give both start and end, or neither (a whole day off)",
                ));
                None
            }
            _ => None,
        };
        if kind == Some(ExceptionKind::Extra)
            && minutes.is_none()
            && self.start.is_none()
            && self.end.is_none()
        {
            errors.push(FieldError::body("/start", "extra hours need a start and an end"));
        }
        let mut reason_errors = Vec::new();
        let reason = self.reason.as_deref().map(|r| text(r, "/reason", 500, &mut reason_errors));
        errors.extend(reason_errors);
        match (day, kind) {
            (Some(day), Some(kind)) if errors.is_empty() => Ok((Exception { day, kind, minutes }, reason)),
            _ => Err(errors),
        }
    }
}

/// One day's change to a practitioner's hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleException {
    pub id: Uuid,
    #[schema(value_type = String, format = Date)]
    pub date: String,
    pub kind: ExceptionKindName,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A kind of appointment and how long it takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct AppointmentType {
    /// e.g. `consultation`.
    pub code: String,
    pub name: String,
    pub minutes: i32,
}

/// What an admin sends to add or change an appointment type.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AppointmentTypeInput {
    #[schema(
        example = "Vaccination",
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    /// 5 to 480.
    #[schema(minimum = 5, maximum = 480)]
    #[serde(deserialize_with = "kit::json::whole_number")]
    pub minutes: i32,
}

impl AppointmentTypeInput {
    pub fn parse(&self) -> Result<(String, i32), Vec<FieldError>> {
        let mut errors = Vec::new();
        let name = text(&self.name, "/name", 100, &mut errors);
        if !(5..=480).contains(&self.minutes) {
            errors.push(FieldError::body("/minutes", "must be 5 to 480"));
        }
        if errors.is_empty() { Ok((name, self.minutes)) } else { Err(errors) }
    }
}

/// Whether `code` may name an appointment type (lower-case letters, digits, dashes).
pub fn valid_type_code(code: &str) -> bool {
    let mut chars = code.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && code.len() <= 40
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Where an appointment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Booked,
    CheckedIn,
    Completed,
    Cancelled,
    NoShow,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Booked => "booked",
            Status::CheckedIn => "checked_in",
            Status::Completed => "completed",
            Status::Cancelled => "cancelled",
            Status::NoShow => "no_show",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Status::Booked, Status::CheckedIn, Status::Completed, Status::Cancelled, Status::NoShow]
            .into_iter()
            .find(|s| s.as_str() == text)
    }

    /// The statuses an appointment may move to from this one: booked → checked in →
    /// completed; a booked one may instead be cancelled or marked no-show (or rescheduled,
    /// staying booked); the others are final.
    pub fn may_become(self, next: Status) -> bool {
        matches!(
            (self, next),
            (Status::Booked, Status::CheckedIn | Status::Cancelled | Status::NoShow | Status::Booked)
                | (Status::CheckedIn, Status::Completed)
        )
    }
}

/// What the front desk sends to book.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BookingInput {
    pub patient_id: Uuid,
    pub practitioner_id: Uuid,
    /// RFC 3339 instant on a whole minute, in the future, e.g. "2027-01-11T09:30:00+01:00".
    #[schema(format = DateTime, example = "2027-01-11T09:30:00+01:00")]
    pub start: String,
    /// An appointment type code (its length sets the end unless `end` is given). One of
    /// `type` and `end` is required.
    #[serde(default, rename = "type")]
    #[schema(example = "consultation", pattern = "^[a-z][a-z0-9-]{0,39}$")]
    pub kind: Option<String>,
    /// RFC 3339 instant on a whole minute, after `start`, at most 8 hours later.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub end: Option<String>,
    /// Why the patient comes, for the practitioner (up to 500 characters).
    #[serde(default)]
    #[schema(
        max_length = 500,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub reason: Option<String>,
}

/// What the front desk sends to move an appointment.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RescheduleInput {
    /// The new start (RFC 3339, whole minute, future).
    #[schema(format = DateTime, example = "2027-01-12T10:00:00+01:00")]
    pub start: String,
    /// The new end; default: the same length as before.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub end: Option<String>,
}

/// Why an appointment is cancelled.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CancelInput {
    /// 1 to 500 characters.
    #[schema(
        example = "Patient called to cancel",
        max_length = 500,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub reason: String,
}

impl CancelInput {
    pub fn parse(&self) -> Result<String, Vec<FieldError>> {
        let mut errors = Vec::new();
        let reason = text(&self.reason, "/reason", 500, &mut errors);
        if errors.is_empty() { Ok(reason) } else { Err(errors) }
    }
}

/// A booking request, validated as far as it can be without the database.
#[derive(Debug, Clone)]
pub struct BookingDraft {
    pub patient_id: Uuid,
    pub practitioner_id: Uuid,
    pub start: OffsetDateTime,
    pub kind: Option<String>,
    pub end: Option<OffsetDateTime>,
    pub reason: Option<String>,
}

impl BookingDraft {
    pub fn parse(input: BookingInput, now: OffsetDateTime) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let start = instant(&input.start, "/start", now, &mut errors);
        let end = input.end.as_deref().and_then(|e| instant(e, "/end", now, &mut errors));
        if let (Some(start), Some(end)) = (start, end) {
            check_length(start, end, &mut errors);
        }
        if let Some(kind) = input.kind.as_deref().filter(|k| !valid_type_code(k)) {
            let _ = kind;
            errors.push(FieldError::body("/type", "must be an appointment type code such as consultation"));
        }
        if input.kind.is_none() && input.end.is_none() {
            errors.push(FieldError::body("/type", "give the appointment type, or an end"));
        }
        let reason = input.reason.as_deref().map(|r| text(r, "/reason", 500, &mut errors));
        match start {
            Some(start) if errors.is_empty() => Ok(Self {
                patient_id: input.patient_id,
                practitioner_id: input.practitioner_id,
                start,
                kind: input.kind,
                end,
                reason,
            }),
            _ => Err(errors),
        }
    }
}

impl RescheduleInput {
    pub fn parse(
        &self,
        now: OffsetDateTime,
    ) -> Result<(OffsetDateTime, Option<OffsetDateTime>), Vec<FieldError>> {
        let mut errors = Vec::new();
        let start = instant(&self.start, "/start", now, &mut errors);
        let end = self.end.as_deref().and_then(|e| instant(e, "/end", now, &mut errors));
        if let (Some(start), Some(end)) = (start, end) {
            check_length(start, end, &mut errors);
        }
        match start {
            Some(start) if errors.is_empty() => Ok((start, end)),
            _ => Err(errors),
        }
    }
}

/// An RFC 3339 instant on a whole minute, after `now` and at most [`MAX_AHEAD`] later.
fn instant(
    raw: &str,
    pointer: &str,
    now: OffsetDateTime,
    errors: &mut Vec<FieldError>,
) -> Option<OffsetDateTime> {
    let Ok(at) = OffsetDateTime::parse(raw.trim(), &Rfc3339) else {
        errors
            .push(FieldError::body(pointer, "must be an RFC 3339 instant such as 2027-01-11T09:30:00+01:00"));
        return None;
    };
    if at.second() != 0 || at.nanosecond() != 0 {
        errors.push(FieldError::body(pointer, "must be on a whole minute"));
    } else if at <= now {
        errors.push(FieldError::body(pointer, "must be in the future"));
    } else if at > now + MAX_AHEAD {
        errors.push(FieldError::body(pointer, "must be within two years from now"));
    } else {
        return Some(at);
    }
    None
}

fn check_length(start: OffsetDateTime, end: OffsetDateTime, errors: &mut Vec<FieldError>) {
    if end <= start {
        errors.push(FieldError::body("/end", "must be after start"));
    } else if end - start > MAX_LENGTH {
        errors.push(FieldError::body("/end", "must be at most 8 hours after start"));
    }
}

/// An appointment, as the API answers: times in the practitioner's time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Appointment {
    pub id: Uuid,
    pub patient_id: Uuid,
    pub practitioner_id: Uuid,
    /// The appointment type code, if booked by type.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// In the practitioner's time zone (its offset on that day).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub start: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub end: OffsetDateTime,
    /// The practitioner's IANA time zone, which `start` and `end` are shown in.
    pub time_zone: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    pub version: i32,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub booked_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn lifecycle_moves_only_forward() {
        use Status::*;
        assert!(Booked.may_become(CheckedIn) && CheckedIn.may_become(Completed));
        assert!(Booked.may_become(Cancelled) && Booked.may_become(NoShow));
        assert!(!CheckedIn.may_become(Cancelled), "a patient in the waiting room is not cancelled");
        for done in [Completed, Cancelled, NoShow] {
            for next in [Booked, CheckedIn, Completed, Cancelled, NoShow] {
                assert!(!done.may_become(next), "{done:?} -> {next:?}");
            }
        }
        assert_eq!(Status::parse("no_show"), Some(NoShow));
        assert_eq!(Status::parse("gone"), None);
    }

    #[test]
    fn working_hours_are_checked_stretch_by_stretch() {
        let hours = |list: &[(u8, &str, &str)]| WorkingHours {
            hours: list
                .iter()
                .map(|&(weekday, s, e)| ShiftInput { weekday, start: s.into(), end: e.into() })
                .collect(),
        };
        let ok = hours(&[(1, "09:00", "13:00"), (1, "14:00", "18:00"), (2, "22:00", "24:00")]).parse();
        assert_eq!(ok.expect("valid").len(), 3);
        let bad = hours(&[
            (0, "09:00", "10:00"),
            (1, "10:00", "09:00"),
            (2, "9:00", "25:00"),
            (3, "09:00", "12:00"),
            (3, "11:00", "13:00"),
        ])
        .parse()
        .expect_err("invalid");
        let pointers: Vec<_> = bad.iter().map(|e| e.pointer.clone().unwrap_or_default()).collect();
        assert_eq!(
            pointers,
            ["/hours/0/weekday", "/hours/1/end", "/hours/2/start", "/hours/2/end", "/hours/4/start"]
        );
    }

    #[test]
    fn bookings_need_a_future_whole_minute_and_a_type_or_end() {
        let now = datetime!(2027-01-10 12:00 UTC);
        let input = |start: &str, kind: Option<&str>, end: Option<&str>| BookingInput {
            patient_id: Uuid::nil(),
            practitioner_id: Uuid::nil(),
            start: start.into(),
            kind: kind.map(Into::into),
            end: end.map(Into::into),
            reason: None,
        };
        assert!(
            BookingDraft::parse(input("2027-01-11T09:30:00+01:00", Some("consultation"), None), now).is_ok()
        );
        let errors = |i| {
            BookingDraft::parse(i, now)
                .expect_err("invalid")
                .into_iter()
                .map(|e| e.pointer.unwrap_or_default())
                .collect::<Vec<_>>()
        };
        assert_eq!(errors(input("2027-01-09T09:30:00Z", Some("consultation"), None)), ["/start"]);
        assert_eq!(errors(input("2027-01-11T09:30:30Z", Some("consultation"), None)), ["/start"]);
        assert_eq!(errors(input("2027-01-11T09:30:00Z", None, None)), ["/type"]);
        assert_eq!(errors(input("2027-01-11T09:30:00Z", Some("Bad Type"), None)), ["/type"]);
        assert_eq!(errors(input("2027-01-11T09:30:00Z", None, Some("2027-01-11T09:00:00Z"))), ["/end"]);
        assert_eq!(errors(input("2027-01-11T09:30:00Z", None, Some("2027-01-11T18:00:00Z"))), ["/end"]);
    }
}
