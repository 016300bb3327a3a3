//! The words of each message kind: an email (subject, text and HTML) and an SMS, rendered with
//! the patient's given name, the practitioner, the time in the practitioner's zone (named), and
//! the location. Values are escaped in HTML; messages never carry the reason for a visit.

use kit::zone::Zone;
use time::{OffsetDateTime, format_description::BorrowedFormatItem, macros::format_description};

use crate::sender::Email;

/// What a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Welcome,
    Confirmation,
    Rescheduled,
    Cancellation,
    Reminder,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Welcome => "welcome",
            Kind::Confirmation => "confirmation",
            Kind::Rescheduled => "rescheduled",
            Kind::Cancellation => "cancellation",
            Kind::Reminder => "reminder",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Kind::Welcome, Kind::Confirmation, Kind::Rescheduled, Kind::Cancellation, Kind::Reminder]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// The appointment a message is about, as the messages show it.
#[derive(Debug, Clone)]
pub struct Visit {
    pub practitioner: String,
    pub zone: Zone,
    pub start: OffsetDateTime,
    pub location: Option<String>,
}

/// Everything a message is rendered from.
#[derive(Debug, Clone)]
pub struct Context {
    pub clinic: String,
    pub given_name: String,
    pub visit: Option<Visit>,
}

const WHEN: &[BorrowedFormatItem<'static>] =
    format_description!("[weekday] [day padding:none] [month repr:long] [year] at [hour]:[minute]");

impl Visit {
    /// "Monday 11 January 2027 at 09:30 (Europe/Madrid)".
    pub fn when(&self) -> String {
        let local = self.zone.local(self.start);
        format!("{} ({})", local.format(WHEN).unwrap_or_default(), self.zone.name())
    }

    fn place(&self) -> String {
        self.location.as_deref().map(|l| format!(", {l}")).unwrap_or_default()
    }
}

/// The message of `kind` for `ctx`, as an email to `to` and as an SMS text. `None` when the
/// kind needs a visit and there is none.
pub fn render(kind: Kind, ctx: &Context, to: &str) -> Option<(Email, String)> {
    let name = &ctx.given_name;
    let clinic = &ctx.clinic;
    let (subject, lines, sms): (String, Vec<String>, String) = match (kind, &ctx.visit) {
        (Kind::Welcome, _) => (
            format!("Welcome to {clinic}"),
            vec![
                format!("Dear {name},"),
                format!(
                    "you are now registered with {clinic}. We will write to you about your appointments."
                ),
            ],
            format!("{clinic}: welcome, {name}. You are registered with us."),
        ),
        (Kind::Confirmation, Some(v)) => (
            format!("Your appointment on {}", v.when()),
            vec![
                format!("Dear {name},"),
                format!("your appointment with {} is booked for {}{}.", v.practitioner, v.when(), v.place()),
                "If you cannot come, please let us know.".to_owned(),
            ],
            format!("{clinic}: appointment with {} on {}{}.", v.practitioner, v.when(), v.place()),
        ),
        (Kind::Rescheduled, Some(v)) => (
            format!("Your appointment has moved to {}", v.when()),
            vec![
                format!("Dear {name},"),
                format!("your appointment with {} is now on {}{}.", v.practitioner, v.when(), v.place()),
            ],
            format!("{clinic}: your appointment with {} moved to {}{}.", v.practitioner, v.when(), v.place()),
        ),
        (Kind::Cancellation, Some(v)) => (
            format!("Your appointment on {} is cancelled", v.when()),
            vec![
                format!("Dear {name},"),
                format!("your appointment with {} on {} is cancelled.", v.practitioner, v.when()),
                "Please contact us to book another time.".to_owned(),
            ],
            format!("{clinic}: your appointment with {} on {} is cancelled.", v.practitioner, v.when()),
        ),
        (Kind::Reminder, Some(v)) => (
            format!("Reminder: your appointment on {}", v.when()),
            vec![
                format!("Dear {name},"),
                format!(
                    "this is a reminder of your appointment with {} on {}{}.",
                    v.practitioner,
                    v.when(),
                    v.place()
                ),
            ],
            format!("{clinic} reminder: {} on {}{}.", v.practitioner, v.when(), v.place()),
        ),
        (_, None) => return None,
    };
    let text = format!("{}\n\n{clinic}\n", lines.join("\n\n"));
    let html = format!(
        "<!DOCTYPE html><html><body>{}<p>{}</p></body></html>",
        lines.iter().map(|l| format!("<p>{}</p>", escape(l))).collect::<String>(),
        escape(clinic)
    );
    Some((Email { to: to.to_owned(), subject, text, html }, sms))
}

/// `text` safe inside HTML elements and attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn visit() -> Visit {
        Visit {
            practitioner: "Dr Ana Ruiz".into(),
            zone: Zone::parse("Europe/Madrid").expect("zone"),
            start: datetime!(2027-01-11 08:30 UTC),
            location: Some("Room 3".into()),
        }
    }

    #[test]
    fn a_confirmation_names_the_practitioner_the_local_time_and_the_place() {
        let ctx =
            Context { clinic: "Clínica Sol".into(), given_name: "José <b>".into(), visit: Some(visit()) };
        let (email, sms) = render(Kind::Confirmation, &ctx, "jose@example.org").expect("rendered");
        assert_eq!(email.subject, "Your appointment on Monday 11 January 2027 at 09:30 (Europe/Madrid)");
        assert!(email.text.contains(
            "with Dr Ana Ruiz is booked for Monday 11 January 2027 at 09:30 (Europe/Madrid), Room 3."
        ));
        assert!(email.html.contains("Dear José &lt;b&gt;,"), "{}", email.html);
        assert!(!email.html.contains("<b>"));
        assert_eq!(
            sms,
            "Clínica Sol: appointment with Dr Ana Ruiz on Monday 11 January 2027 at 09:30 (Europe/Madrid), Room 3."
        );
    }

    #[test]
    fn appointment_messages_need_their_appointment() {
        let ctx = Context { clinic: "c".into(), given_name: "A".into(), visit: None };
        assert!(render(Kind::Reminder, &ctx, "a@example.org").is_none());
        assert!(render(Kind::Welcome, &ctx, "a@example.org").is_some());
        assert_eq!(Kind::parse("cancellation"), Some(Kind::Cancellation));
    }
}
