//! When a practitioner works, and which start times are free: computed from the weekly pattern,
//! the day's exceptions and the booked appointments, never stored as slot rows.
//!
//! A day's open minutes are its weekly hours, minus its days-off exceptions (the whole day, or
//! some hours of it), plus its extra hours; they are wall-clock times in the practitioner's
//! zone, turned into instants day by day, so a clock change moves them as it moves the clocks.
//! Free start times lie on a grid of [`STEP`] minutes (or the appointment's length, if
//! shorter) from the start of each open stretch.

use time::{Date, Duration, OffsetDateTime};

use kit::zone::Zone;

/// The grid free start times are offered on.
pub const STEP: Duration = Duration::minutes(15);

/// A stretch of time, from its start up to (not including) its end.
pub type Span = (OffsetDateTime, OffsetDateTime);

/// One weekly stretch of working hours: ISO weekday (1 = Monday), minutes after midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shift {
    pub weekday: u8,
    pub start: u16,
    pub end: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExceptionKind {
    /// Not working: the whole day (no minutes given) or the minutes given.
    Off,
    /// Working these minutes besides the weekly hours.
    Extra,
}

/// One day's change to the weekly hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exception {
    pub day: Date,
    pub kind: ExceptionKind,
    pub minutes: Option<(u16, u16)>,
}

/// A practitioner's working time.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub zone: Zone,
    pub week: Vec<Shift>,
    pub exceptions: Vec<Exception>,
}

impl Schedule {
    /// The working stretches that overlap `[from, to)`, cut to it, in order, touching ones
    /// joined.
    pub fn open(&self, from: OffsetDateTime, to: OffsetDateTime) -> Vec<Span> {
        let mut spans: Vec<Span> = Vec::new();
        let mut day = self.zone.date_of(from).previous_day().unwrap_or(Date::MIN);
        let last = self.zone.date_of(to);
        while day <= last {
            for (start, end) in self.open_minutes(day) {
                let span = (self.zone.at(day, start).max(from), self.zone.at(day, end).min(to));
                if span.0 >= span.1 {
                    continue;
                }
                match spans.last_mut() {
                    Some(previous) if previous.1 >= span.0 => previous.1 = previous.1.max(span.1),
                    _ => spans.push(span),
                }
            }
            let Some(next) = day.next_day() else { break };
            day = next;
        }
        spans
    }

    /// Whether `[start, end)` lies wholly within working time.
    pub fn covers(&self, start: OffsetDateTime, end: OffsetDateTime) -> bool {
        self.open(start, end).first().is_some_and(|&(s, e)| s == start && e == end)
    }

    /// The day's open minutes as stretches `[start, end)`, in order.
    fn open_minutes(&self, day: Date) -> Vec<(u16, u16)> {
        let mut open = [false; 1440];
        let mut mark = |(start, end): (u16, u16), value: bool| {
            open[usize::from(start.min(end))..usize::from(end.min(1440))].fill(value);
        };
        let weekday = day.weekday().number_from_monday();
        let exceptions: Vec<&Exception> = self.exceptions.iter().filter(|e| e.day == day).collect();
        let whole_day_off = exceptions.iter().any(|e| e.kind == ExceptionKind::Off && e.minutes.is_none());
        if !whole_day_off {
            self.week.iter().filter(|s| s.weekday == weekday).for_each(|s| mark((s.start, s.end), true));
        }
        for exception in exceptions.iter().filter(|e| e.kind == ExceptionKind::Off) {
            if let Some(minutes) = exception.minutes {
                mark(minutes, false);
            }
        }
        for exception in exceptions.iter().filter(|e| e.kind == ExceptionKind::Extra) {
            if let Some(minutes) = exception.minutes {
                mark(minutes, true);
            }
        }
        runs(&open)
    }
}

/// The stretches of `true` in a day's minutes.
fn runs(open: &[bool; 1440]) -> Vec<(u16, u16)> {
    let mut runs = Vec::new();
    let mut start = None;
    for (minute, &is_open) in open.iter().enumerate() {
        match (is_open, start) {
            (true, None) => start = Some(minute as u16),
            (false, Some(s)) => {
                runs.push((s, minute as u16));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push((s, 1440));
    }
    runs
}

/// The start times, on the grid of each open stretch, of `length`-long appointments that fit
/// in `open`, begin no earlier than `not_before` and overlap nothing in `busy` (sorted by
/// start, not overlapping each other: one practitioner's appointments).
pub fn free_starts(
    open: &[Span],
    busy: &[Span],
    length: Duration,
    not_before: OffsetDateTime,
) -> Vec<OffsetDateTime> {
    // In whole seconds since the epoch: a week offers hundreds of candidate times, each checked
    // against hundreds of booked ones, and integer steps cost a fraction of calendar arithmetic.
    let seconds = |t: OffsetDateTime| t.unix_timestamp();
    let step = STEP.min(length).whole_seconds().max(1);
    let length = length.whole_seconds();
    // The first whole second at or after `not_before`.
    let not_before = seconds(not_before) + i64::from(not_before.nanosecond() > 0);
    let busy: Vec<(i64, i64)> = busy.iter().map(|&(start, end)| (seconds(start), seconds(end))).collect();
    let mut starts = Vec::new();
    for &(open_start, open_end) in open {
        let (mut start, open_end) = (seconds(open_start), seconds(open_end));
        if not_before > start {
            // Jump to the first grid point at or after `not_before`.
            start += (not_before - start + step - 1) / step * step;
        }
        while start + length <= open_end {
            let end = start + length;
            let first_ending_later = busy.partition_point(|&(_, busy_end)| busy_end <= start);
            let taken = busy.get(first_ending_later).is_some_and(|&(busy_start, _)| busy_start < end);
            if !taken && let Ok(free) = OffsetDateTime::from_unix_timestamp(start) {
                starts.push(free);
            }
            start += step;
        }
    }
    starts
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;

    fn weekdays(start: u16, end: u16) -> Vec<Shift> {
        (1..=5).map(|weekday| Shift { weekday, start, end }).collect()
    }

    fn schedule(zone: &str, week: Vec<Shift>, exceptions: Vec<Exception>) -> Schedule {
        Schedule { zone: Zone::parse(zone).expect("zone"), week, exceptions }
    }

    #[test]
    fn weekly_hours_in_the_zone_and_nothing_at_weekends() {
        let s = schedule("Europe/Madrid", weekdays(9 * 60, 13 * 60), vec![]);
        // Friday 2027-01-15 to Monday 2027-01-18 (winter, UTC+1).
        let open = s.open(datetime!(2027-01-15 00:00 UTC), datetime!(2027-01-19 00:00 UTC));
        assert_eq!(
            open,
            vec![
                (datetime!(2027-01-15 08:00 UTC), datetime!(2027-01-15 12:00 UTC)),
                (datetime!(2027-01-18 08:00 UTC), datetime!(2027-01-18 12:00 UTC)),
            ]
        );
    }

    #[test]
    fn a_clock_change_moves_the_hours_with_the_clocks() {
        let every_day = (1..=7).map(|weekday| Shift { weekday, start: 9 * 60, end: 10 * 60 }).collect();
        let s = schedule("Europe/Madrid", every_day, vec![]);
        let open = s.open(datetime!(2027-03-27 00:00 UTC), datetime!(2027-03-29 00:00 UTC));
        assert_eq!(
            open,
            vec![
                (datetime!(2027-03-27 08:00 UTC), datetime!(2027-03-27 09:00 UTC)),
                (datetime!(2027-03-28 07:00 UTC), datetime!(2027-03-28 08:00 UTC)),
            ]
        );
    }

    #[test]
    fn exceptions_take_days_and_hours_off_and_add_hours() {
        let exceptions = vec![
            Exception { day: date!(2027 - 01 - 11), kind: ExceptionKind::Off, minutes: None },
            Exception { day: date!(2027 - 01 - 12), kind: ExceptionKind::Off, minutes: Some((600, 720)) },
            Exception { day: date!(2027 - 01 - 16), kind: ExceptionKind::Extra, minutes: Some((600, 660)) },
        ];
        let s = schedule("UTC", weekdays(9 * 60, 13 * 60), exceptions);
        let open = s.open(datetime!(2027-01-11 00:00 UTC), datetime!(2027-01-17 00:00 UTC));
        assert_eq!(open[0], (datetime!(2027-01-12 09:00 UTC), datetime!(2027-01-12 10:00 UTC)));
        assert_eq!(open[1], (datetime!(2027-01-12 12:00 UTC), datetime!(2027-01-12 13:00 UTC)));
        assert_eq!(open.last(), Some(&(datetime!(2027-01-16 10:00 UTC), datetime!(2027-01-16 11:00 UTC))));
        assert_eq!(open.len(), 6, "Tuesday in two, Wednesday to Friday, Saturday's extra hour");
    }

    #[test]
    fn night_shifts_join_across_midnight_and_covers_needs_the_whole_stretch() {
        let week = vec![
            Shift { weekday: 1, start: 22 * 60, end: 1440 },
            Shift { weekday: 2, start: 0, end: 6 * 60 },
        ];
        let s = schedule("UTC", week, vec![]);
        let open = s.open(datetime!(2027-01-11 00:00 UTC), datetime!(2027-01-13 00:00 UTC));
        assert_eq!(open, vec![(datetime!(2027-01-11 22:00 UTC), datetime!(2027-01-12 06:00 UTC))]);
        assert!(s.covers(datetime!(2027-01-11 23:30 UTC), datetime!(2027-01-12 00:30 UTC)));
        assert!(!s.covers(datetime!(2027-01-12 05:45 UTC), datetime!(2027-01-12 06:15 UTC)));
        assert!(!s.covers(datetime!(2027-01-11 21:45 UTC), datetime!(2027-01-11 22:15 UTC)));
    }

    #[test]
    fn free_starts_skip_taken_times_and_the_past() {
        let open = [(datetime!(2027-01-11 09:00 UTC), datetime!(2027-01-11 11:00 UTC))];
        let busy = [
            (datetime!(2027-01-11 09:30 UTC), datetime!(2027-01-11 10:00 UTC)),
            (datetime!(2027-01-11 10:30 UTC), datetime!(2027-01-11 10:45 UTC)),
        ];
        let starts = free_starts(&open, &busy, Duration::minutes(30), datetime!(2027-01-11 08:00 UTC));
        assert_eq!(starts, vec![datetime!(2027-01-11 09:00 UTC), datetime!(2027-01-11 10:00 UTC)]);
        // Back to back: a 15-minute slot ends exactly when the 10:30 one starts.
        let short = free_starts(&open, &busy, Duration::minutes(15), datetime!(2027-01-11 09:50 UTC));
        assert_eq!(
            short,
            vec![
                datetime!(2027-01-11 10:00 UTC),
                datetime!(2027-01-11 10:15 UTC),
                datetime!(2027-01-11 10:45 UTC)
            ]
        );
        // Half a second past a grid point, that point is past too.
        let late = free_starts(&open, &[], Duration::minutes(15), datetime!(2027-01-11 10:30:00.5 UTC));
        assert_eq!(late.first(), Some(&datetime!(2027-01-11 10:45 UTC)));
        assert_eq!(late.last(), Some(&datetime!(2027-01-11 10:45 UTC)));
    }
}
