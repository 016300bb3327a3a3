//! An email address that can only hold a valid one, with its search key computed once.

use std::{fmt, str::FromStr};

/// A valid email address (RFC 5322 addr-spec with a dotted domain, as mail delivery needs),
/// trimmed, as the person wrote it; [`Email::key`] is its lower-cased form, on which
/// uniqueness and look-ups ignore case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    text: String,
    key: String,
}

/// What is wrong with an email address, in words a person can act on.
pub const INVALID_EMAIL: &str = "must be a valid email address such as name@example.org";
/// Longest address accepted (RFC 5321 path limit).
pub const MAX_EMAIL_CHARS: usize = 254;

impl Email {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let text = raw.trim();
        if text.chars().count() > MAX_EMAIL_CHARS {
            return Err("must be at most 254 characters");
        }
        let parsed = email_address::EmailAddress::from_str(text).map_err(|_| INVALID_EMAIL)?;
        let domain = parsed.domain();
        if !domain.contains('.') || domain.starts_with('[') || domain.ends_with('.') {
            return Err(INVALID_EMAIL);
        }
        Ok(Self { text: text.to_owned(), key: Self::key_of(text) })
    }

    /// The search key of any text that may be an email (look-ups by what a client typed).
    pub fn key_of(text: &str) -> String {
        text.trim().to_lowercase()
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Lower-cased: what uniqueness and look-ups compare.
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn into_string(self) -> String {
        self.text
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        let email = Email::parse(" Anna.B+c@Example.co.uk ").expect("valid");
        assert_eq!(email.as_str(), "Anna.B+c@Example.co.uk");
        assert_eq!(email.key(), "anna.b+c@example.co.uk");
        for bad in ["plainaddress", "@example.org", "a@localhost", "a@@example.org", "a b@example.org"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert!(Email::parse(&format!("{}@example.org", "a".repeat(250))).is_err());
    }
}
