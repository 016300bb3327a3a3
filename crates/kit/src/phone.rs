//! A phone number that can only hold a valid one (E.164), as patients and practitioners give
//! them and SMS delivery needs them.

/// A phone number in international E.164 form: `+` and 7 to 15 digits, no leading zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    /// Accepts spaces, dashes, dots and parentheses between the digits, and drops them.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let compact: String = raw.chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')')).collect();
        let digits =
            compact.strip_prefix('+').ok_or("must be in international E.164 form, starting with +")?;
        let valid = (7..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if valid {
            Ok(Self(compact))
        } else {
            Err("must be + followed by 7 to 15 digits (E.164), the first not 0")
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}
