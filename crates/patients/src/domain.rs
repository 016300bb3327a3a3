//! Patient records as clients send and receive them, and the validated form in between.
//!
//! [`PatientInput`] is what a client may send (unknown fields are refused); [`PatientDraft`]
//! can only hold valid values, so nothing downstream re-checks. Validation reports every
//! invalid field at once, each by JSON pointer.

use std::str::FromStr;

use kit::{FieldError, email::Email};
pub use kit::{
    date::{format_date, parse_date},
    phone::Phone,
};
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};
use utoipa::ToSchema;
use uuid::Uuid;

const MAX_NAME_CHARS: usize = 100;
const MAX_ADDRESS_LINES: usize = 4;
const MAX_ADDRESS_LINE_CHARS: usize = 200;
const MAX_PLACE_CHARS: usize = 100;
const MAX_POSTAL_CODE_CHARS: usize = 20;

/// Administrative sex, as in HL7 FHIR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Sex {
    Female,
    Male,
    Other,
    Unknown,
}

impl Sex {
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Female => "female",
            Sex::Male => "male",
            Sex::Other => "other",
            Sex::Unknown => "unknown",
        }
    }
}

impl FromStr for Sex {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "female" => Ok(Sex::Female),
            "male" => Ok(Sex::Male),
            "other" => Ok(Sex::Other),
            "unknown" => Ok(Sex::Unknown),
            _ => Err(()),
        }
    }
}

/// A postal address. Every member is optional, but an address must say something.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Address {
    /// Street, house number, apartment: up to 4 lines of up to 200 characters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 4)]
    pub line: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 100)]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 100)]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 20)]
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2 country code, e.g. `DE` (any case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "DE", pattern = "^[A-Za-z]{2}$")]
    pub country: Option<String>,
}

/// What a client sends to register or update a patient.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PatientInput {
    /// 1 to 100 characters with a letter, no control characters.
    #[schema(
        example = "Anna",
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub given_name: String,
    /// 1 to 100 characters with a letter, no control characters.
    #[schema(
        example = "Müller",
        max_length = 100,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub family_name: String,
    /// `YYYY-MM-DD`, not in the future, not before 1900.
    #[schema(value_type = String, format = Date, example = "1984-03-17")]
    pub birth_date: String,
    #[schema(value_type = Sex)]
    pub sex: String,
    /// Unique among active patients (ignoring case).
    #[serde(default)]
    #[schema(example = "anna.mueller@example.org")]
    pub email: Option<String>,
    /// E.164: `+` and 7 to 15 digits, the first not 0; spaces, dashes, dots and parentheses
    /// between them are accepted and removed.
    #[serde(default)]
    #[schema(
        example = "+4930123456",
        pattern = r"^\s*[ ().-]*\+[ ().-]*[1-9]([ ().-]*[0-9]){6,14}[ ().-]*\s*$"
    )]
    pub phone: Option<String>,
    #[serde(default)]
    pub address: Option<Address>,
}

/// A patient's id (a UUIDv7, so ids sort by registration time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct PatientId(Uuid);

impl PatientId {
    /// A new id for a registration.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for PatientId {
    fn default() -> Self {
        Self::new()
    }
}

impl From<Uuid> for PatientId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

impl std::fmt::Display for PatientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A validated patient, ready to store: every field can only hold a valid value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientDraft {
    pub given_name: PersonName,
    pub family_name: PersonName,
    pub birth_date: Date,
    pub sex: Sex,
    pub email: Option<Email>,
    pub phone: Option<Phone>,
    pub address: Option<Address>,
}

/// A given or family name: white space collapsed, 1 to 100 characters, at least one letter,
/// no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = collapse_whitespace(raw);
        if name.is_empty() {
            Err("must not be empty".to_owned())
        } else if raw.chars().count() > MAX_NAME_CHARS {
            Err(format!("must be at most {MAX_NAME_CHARS} characters"))
        } else if name.chars().any(char::is_control) {
            Err("must not contain control characters".to_owned())
        } else if !name.chars().any(char::is_alphabetic) {
            Err("must contain a letter".to_owned())
        } else {
            Ok(Self(name))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl PatientDraft {
    /// Validates `input`; `today` bounds the birth date.
    pub fn parse(input: PatientInput, today: Date) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut name = |raw: &str, pointer: &str| {
            PersonName::parse(raw).map_err(|detail| errors.push(FieldError::body(pointer, detail))).ok()
        };
        let given_name = name(&input.given_name, "/givenName");
        let family_name = name(&input.family_name, "/familyName");
        let birth_date = match parse_birth_date(&input.birth_date, today) {
            Ok(date) => Some(date),
            Err(detail) => {
                errors.push(FieldError::body("/birthDate", detail));
                None
            }
        };
        let sex = input.sex.parse::<Sex>().ok();
        if sex.is_none() {
            errors.push(FieldError::body("/sex", "must be one of female, male, other, unknown"));
        }
        let email = input.email.as_deref().map(str::trim).filter(|e| !e.is_empty()).and_then(|e| {
            Email::parse(e).map_err(|detail| errors.push(FieldError::body("/email", detail))).ok()
        });
        let phone = input.phone.as_deref().map(str::trim).filter(|p| !p.is_empty()).and_then(|p| {
            Phone::parse(p).map_err(|detail| errors.push(FieldError::body("/phone", detail))).ok()
        });
        let address = input.address.and_then(|a| parse_address(a, &mut errors));
        match (given_name, family_name, birth_date, sex) {
            (Some(given_name), Some(family_name), Some(birth_date), Some(sex)) if errors.is_empty() => {
                Ok(Self { given_name, family_name, birth_date, sex, email, phone, address })
            }
            _ => Err(errors),
        }
    }
}

fn collapse_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Parses a `YYYY-MM-DD` birth date between 1900-01-01 and `today`.
pub fn parse_birth_date(raw: &str, today: Date) -> Result<Date, String> {
    let date = parse_date(raw)?;
    if date > today {
        return Err("must not be in the future".to_owned());
    }
    if date.year() < 1900 {
        return Err("must not be before 1900-01-01".to_owned());
    }
    Ok(date)
}

fn optional_text(
    value: Option<String>,
    pointer: &str,
    max: usize,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    let text = collapse_whitespace(&value?);
    if text.is_empty() {
        return None;
    }
    if text.chars().count() > max {
        errors.push(FieldError::body(pointer, format!("must be at most {max} characters")));
        return None;
    }
    if text.chars().any(char::is_control) {
        errors.push(FieldError::body(pointer, "must not contain control characters"));
        return None;
    }
    Some(text)
}

fn parse_address(input: Address, errors: &mut Vec<FieldError>) -> Option<Address> {
    if input.line.len() > MAX_ADDRESS_LINES {
        errors
            .push(FieldError::body("/address/line", format!("must have at most {MAX_ADDRESS_LINES} lines")));
    }
    let line: Vec<String> = input
        .line
        .into_iter()
        .take(MAX_ADDRESS_LINES)
        .enumerate()
        .filter_map(|(i, l)| {
            optional_text(Some(l), &format!("/address/line/{i}"), MAX_ADDRESS_LINE_CHARS, errors)
        })
        .collect();
    let city = optional_text(input.city, "/address/city", MAX_PLACE_CHARS, errors);
    let state = optional_text(input.state, "/address/state", MAX_PLACE_CHARS, errors);
    let postal_code = optional_text(input.postal_code, "/address/postalCode", MAX_POSTAL_CODE_CHARS, errors);
    let country = input.country.map(|c| c.trim().to_ascii_uppercase()).filter(|c| !c.is_empty());
    if let Some(code) = &country
        && (code.len() != 2 || !code.bytes().all(|b| b.is_ascii_uppercase()))
    {
        errors.push(FieldError::body(
            "/address/country",
            "must be an ISO 3166-1 alpha-2 code such as DE or US",
        ));
    }
    let address = Address { line, city, state, postal_code, country };
    (address != Address::default()).then_some(address)
}

/// A patient record as the API returns it (and as each version is kept in the history).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Patient {
    #[schema(value_type = Uuid)]
    pub id: PatientId,
    /// Medical record number: 9 digits, the last a check digit.
    #[schema(example = "100000011")]
    pub mrn: String,
    pub given_name: String,
    pub family_name: String,
    #[schema(value_type = String, format = Date, example = "1984-03-17")]
    pub birth_date: String,
    pub sex: Sex,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    /// False once the record is deactivated.
    pub active: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub registered_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// Increases by one with every change; sent as the `ETag`.
    pub version: i32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const TODAY: Date = date!(2026 - 11 - 25);

    fn input() -> PatientInput {
        PatientInput {
            given_name: " Anna  Maria ".into(),
            family_name: "Müller".into(),
            birth_date: "1984-03-17".into(),
            sex: "female".into(),
            email: Some(" anna@example.org ".into()),
            phone: Some("+49 (30) 123-456".into()),
            address: Some(Address {
                country: Some("de".into()),
                city: Some("Berlin".into()),
                ..Default::default()
            }),
        }
    }

    fn pointers(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().filter_map(|e| e.pointer.as_deref()).collect()
    }

    #[test]
    fn a_valid_input_is_normalised() {
        let draft = PatientDraft::parse(input(), TODAY).expect("valid");
        assert_eq!(draft.given_name.as_str(), "Anna Maria");
        assert_eq!(draft.email.as_ref().map(Email::as_str), Some("anna@example.org"));
        assert_eq!(draft.phone.as_ref().map(Phone::as_str), Some("+4930123456"));
        assert_eq!(draft.address.and_then(|a| a.country).as_deref(), Some("DE"));
    }

    #[test]
    fn every_invalid_field_is_reported_at_once() {
        let mut bad = input();
        bad.given_name = "  ".into();
        bad.birth_date = "1984-02-30".into();
        bad.sex = "f".into();
        bad.email = Some("anna@".into());
        bad.phone = Some("030 123456".into());
        bad.address = Some(Address { country: Some("Germany".into()), ..Default::default() });
        let errors = PatientDraft::parse(bad, TODAY).expect_err("invalid");
        assert_eq!(
            pointers(&errors),
            ["/givenName", "/birthDate", "/sex", "/email", "/phone", "/address/country"]
        );
    }

    #[test]
    fn birth_dates_must_be_real_past_and_after_1900() {
        assert!(parse_birth_date("2026-11-25", TODAY).is_ok());
        assert!(parse_birth_date("2026-11-26", TODAY).is_err());
        assert!(parse_birth_date("1900-01-01", TODAY).is_ok());
        assert!(parse_birth_date("1899-12-31", TODAY).is_err());
        assert!(parse_birth_date("17/03/1984", TODAY).is_err());
        assert!(parse_birth_date("2023-02-29", TODAY).is_err());
    }

    #[test]
    fn phone_numbers_must_be_e164() {
        assert_eq!(Phone::parse("+1 (555) 010-9999").map(Phone::into_string), Ok("+15550109999".into()));
        assert!(Phone::parse("+0123456789").is_err());
        assert!(Phone::parse("+12345").is_err());
        assert!(Phone::parse("+1234567890123456").is_err());
        assert!(Phone::parse("+1555abc9999").is_err());
    }

    #[test]
    fn names_need_a_letter_and_a_sane_length() {
        assert!(PersonName::parse("1234").is_err());
        assert!(PersonName::parse(&"a".repeat(101)).is_err());
        assert!(PersonName::parse(" \t ").is_err());
        assert_eq!(PersonName::parse(" Zoë  Ann ").map(PersonName::into_string), Ok("Zoë Ann".into()));
    }

    #[test]
    fn an_empty_address_is_no_address() {
        let mut errors = Vec::new();
        assert_eq!(
            parse_address(Address { line: vec![" ".into()], ..Default::default() }, &mut errors),
            None
        );
        assert!(errors.is_empty());
    }
}
