//! Time zones: a practitioner's hours are wall-clock times where they work, and every instant
//! shown to people is shown in that zone. The zone database is bundled with the binary (jiff's
//! copy of the IANA database), so a container without `/usr/share/zoneinfo` schedules the same.

use time::{Date, OffsetDateTime, UtcOffset};

/// A valid IANA time zone, e.g. `Europe/Madrid`.
#[derive(Clone)]
pub struct Zone {
    name: String,
    tz: jiff::tz::TimeZone,
}

impl std::fmt::Debug for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

impl PartialEq for Zone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Zone {
    /// The zone called `name` (as the IANA database spells it; `UTC` too).
    pub fn parse(name: &str) -> Result<Self, String> {
        let name = name.trim();
        if name.is_empty() || name.len() > 64 {
            return Err("must be an IANA time zone such as Europe/Madrid".into());
        }
        jiff::tz::db()
            .get(name)
            .map(|tz| Self { name: name.to_owned(), tz })
            .map_err(|_| format!("`{name}` is not an IANA time zone (such as Europe/Madrid)"))
    }

    /// Coordinated Universal Time.
    pub fn utc() -> Self {
        Self { name: "UTC".to_owned(), tz: jiff::tz::TimeZone::UTC }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The instant when clocks in this zone show `minute` minutes after midnight of `date`
    /// (1440 is the next midnight). A time skipped by a clock change (02:30 on a spring-forward
    /// night) is taken as the same length after the change; a time that happens twice (an
    /// autumn night) as its first occurrence.
    pub fn at(&self, date: Date, minute: u16) -> OffsetDateTime {
        let (date, minute) =
            if minute >= 1440 { (date.next_day().unwrap_or(date), 0) } else { (date, minute) };
        let civil = jiff::civil::date(date.year() as i16, date.month() as i8, date.day() as i8).at(
            (minute / 60) as i8,
            (minute % 60) as i8,
            0,
            0,
        );
        let seconds = self
            .tz
            .to_ambiguous_timestamp(civil)
            .compatible()
            .map(|timestamp| timestamp.as_second())
            // Only dates outside jiff's range fail; they cannot come from a parsed request.
            .unwrap_or_else(|_| date.midnight().assume_utc().unix_timestamp() + i64::from(minute) * 60);
        OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// `instant` as clocks in this zone show it (same instant, the zone's offset then).
    pub fn local(&self, instant: OffsetDateTime) -> OffsetDateTime {
        let offset = jiff::Timestamp::from_second(instant.unix_timestamp())
            .map(|ts| self.tz.to_offset(ts).seconds())
            .unwrap_or(0);
        instant.to_offset(UtcOffset::from_whole_seconds(offset).unwrap_or(UtcOffset::UTC))
    }

    /// The calendar date in this zone at `instant`.
    pub fn date_of(&self, instant: OffsetDateTime) -> Date {
        self.local(instant).date()
    }
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;

    #[test]
    fn wall_clock_times_become_instants_across_a_clock_change() {
        let madrid = Zone::parse("Europe/Madrid").expect("zone");
        // Sunday 28 March 2027: clocks go from 02:00 to 03:00 (UTC+1 to UTC+2).
        assert_eq!(madrid.at(date!(2027 - 03 - 27), 9 * 60), datetime!(2027-03-27 08:00 UTC));
        assert_eq!(madrid.at(date!(2027 - 03 - 28), 9 * 60), datetime!(2027-03-28 07:00 UTC));
        // 02:30 does not exist that night: it is taken as 03:30 (an hour after 01:30).
        assert_eq!(madrid.at(date!(2027 - 03 - 28), 150), datetime!(2027-03-28 01:30 UTC));
        // Sunday 31 October 2027: 02:30 happens twice; the first is meant.
        assert_eq!(madrid.at(date!(2027 - 10 - 31), 150), datetime!(2027-10-31 00:30 UTC));
        assert_eq!(madrid.at(date!(2027 - 03 - 27), 1440), datetime!(2027-03-27 23:00 UTC));
    }

    #[test]
    fn instants_show_in_the_zone() {
        let new_york = Zone::parse("America/New_York").expect("zone");
        let shown = new_york.local(datetime!(2027-01-15 14:00 UTC));
        assert_eq!(shown, datetime!(2027-01-15 09:00 -5));
        assert_eq!(shown.offset(), UtcOffset::from_hms(-5, 0, 0).expect("offset"));
        assert_eq!(new_york.date_of(datetime!(2027-01-16 03:00 UTC)), date!(2027 - 01 - 15));
    }

    #[test]
    fn only_iana_zones_are_accepted() {
        assert!(Zone::parse("UTC").is_ok());
        assert!(Zone::parse("Mars/Olympus_Mons").is_err());
        assert!(Zone::parse("").is_err());
    }
}
