//! Calendar dates as the APIs write them: `YYYY-MM-DD`.

use time::{Date, format_description::BorrowedFormatItem, macros::format_description};

const DATE_FORMAT: &[BorrowedFormatItem<'static>] = format_description!("[year]-[month]-[day]");

/// Parses a calendar date written `YYYY-MM-DD`.
pub fn parse_date(raw: &str) -> Result<Date, String> {
    Date::parse(raw.trim(), DATE_FORMAT).map_err(|_| "must be a real date written YYYY-MM-DD".to_owned())
}

pub fn format_date(date: Date) -> String {
    date.format(DATE_FORMAT).unwrap_or_default()
}
