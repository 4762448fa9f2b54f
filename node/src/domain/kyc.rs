//! Know-your-customer data: the fields a KYC tier asks for, each parsed from what a customer types (in English or
//! Spanish) into its normal form, and the customer statuses of SEP-12.
//!
//! Tier 0 is a phone number only; tier 1 needs the fields the operator configures (default: full name, date of
//! birth, address, ID type and number); tier 2 adds a document reference an operator approves.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A field a tier may require.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum KycField {
    FullName,
    BirthDate,
    Address,
    IdType,
    IdNumber,
    /// A reference to the identity document the operator checks (an upload id, a branch's scan number).
    DocumentRef,
}

impl KycField {
    pub const ALL: [KycField; 6] = [
        KycField::FullName,
        KycField::BirthDate,
        KycField::Address,
        KycField::IdType,
        KycField::IdNumber,
        KycField::DocumentRef,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            KycField::FullName => "full_name",
            KycField::BirthDate => "birth_date",
            KycField::Address => "address",
            KycField::IdType => "id_type",
            KycField::IdNumber => "id_number",
            KycField::DocumentRef => "document_ref",
        }
    }

    pub fn parse(s: &str) -> Option<KycField> {
        KycField::ALL.into_iter().find(|f| f.as_str() == s.trim())
    }

    /// Parses a value of this field into its normal form, or says what is wrong (in English; the chat words its own
    /// question again). `today` bounds a date of birth.
    pub fn normalize(self, value: &str, today: time::Date) -> Result<String, KycError> {
        let v = value.trim();
        if v.chars().any(char::is_control) {
            return Err(KycError::new(self, "control characters"));
        }
        match self {
            KycField::FullName => full_name(v),
            KycField::BirthDate => birth_date(v, today).map(|d| d.to_string()),
            KycField::Address => bounded(self, v, 5, 200),
            KycField::IdType => IdType::from_str(v).map(|t| t.as_str().to_owned()),
            KycField::IdNumber => {
                let n: String = v.chars().filter(|c| !matches!(c, ' ' | '-' | '.')).collect();
                if (3..=40).contains(&n.chars().count()) && n.chars().all(|c| c.is_ascii_alphanumeric()) {
                    Ok(n.to_ascii_uppercase())
                } else {
                    Err(KycError::new(self, "3 to 40 letters and digits"))
                }
            }
            KycField::DocumentRef => bounded(self, v, 1, 200),
        }
    }
}

impl fmt::Display for KycField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct KycError {
    pub field: KycField,
    pub reason: String,
}

impl KycError {
    fn new(field: KycField, reason: &str) -> Self {
        Self {
            field,
            reason: reason.to_owned(),
        }
    }
}

fn bounded(field: KycField, v: &str, min: usize, max: usize) -> Result<String, KycError> {
    let n = v.chars().count();
    if n < min || n > max {
        return Err(KycError::new(field, &format!("{min} to {max} characters")));
    }
    Ok(v.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn full_name(v: &str) -> Result<String, KycError> {
    let words: Vec<&str> = v.split_whitespace().collect();
    let ok_word = |w: &&str| {
        w.chars()
            .all(|c| c.is_alphabetic() || matches!(c, '\'' | '-' | '.'))
    };
    if words.len() < 2 || words.len() > 8 || !words.iter().all(ok_word) || v.chars().count() > 100 {
        return Err(KycError::new(
            KycField::FullName,
            "a given name and a surname, letters only, at most 100 characters",
        ));
    }
    Ok(words.join(" "))
}

/// `YYYY-MM-DD` or `DD/MM/YYYY` (also with `-` or `.`): an adult's, at most 120 years ago.
fn birth_date(v: &str, today: time::Date) -> Result<time::Date, KycError> {
    let bad = || {
        KycError::new(
            KycField::BirthDate,
            "a date like 1990-04-25 or 25/04/1990, of someone 18 or older",
        )
    };
    let parts: Vec<&str> = v.split(['-', '/', '.']).map(str::trim).collect();
    let [a, b, c] = parts.as_slice() else {
        return Err(bad());
    };
    let num = |s: &str| s.parse::<i32>().ok();
    let (y, m, d) = if a.len() == 4 {
        (num(a), num(b), num(c))
    } else {
        (num(c), num(b), num(a))
    };
    let (Some(y), Some(m), Some(d)) = (y, m, d) else {
        return Err(bad());
    };
    let month = u8::try_from(m)
        .ok()
        .and_then(|m| time::Month::try_from(m).ok())
        .ok_or_else(bad)?;
    let date =
        time::Date::from_calendar_date(y, month, u8::try_from(d).map_err(|_| bad())?).map_err(|_| bad())?;
    let years =
        today.year() - date.year() - i32::from((today.month(), today.day()) < (date.month(), date.day()));
    if !(18..=120).contains(&years) {
        return Err(bad());
    }
    Ok(date)
}

/// An identity document's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdType {
    Passport,
    NationalId,
    DriversLicense,
}

impl IdType {
    pub fn as_str(self) -> &'static str {
        match self {
            IdType::Passport => "passport",
            IdType::NationalId => "national_id",
            IdType::DriversLicense => "drivers_license",
        }
    }
}

impl FromStr for IdType {
    type Err = KycError;

    /// The normal names, and what people type: "pasaporte", "DNI", "INE", "cédula", "DPI", "licencia", "1"/"2"/"3".
    fn from_str(s: &str) -> Result<Self, KycError> {
        let t = deunicode::deunicode(s).to_ascii_lowercase();
        let t = t.trim().replace(['\'', '’'], "");
        let has = |w: &[&str]| w.iter().any(|x| t.contains(x));
        if t == "1" || has(&["passport", "pasaporte"]) {
            Ok(IdType::Passport)
        } else if t == "3" || has(&["driver", "licencia", "license", "licence"]) {
            Ok(IdType::DriversLicense)
        } else if t == "2"
            || t == "id"
            || has(&[
                "national",
                "dni",
                "ine",
                "cedula",
                "dpi",
                "curp",
                "identidad",
                "identification",
                "id card",
            ])
        {
            Ok(IdType::NationalId)
        } else {
            Err(KycError::new(
                KycField::IdType,
                "passport, national ID or driver's license",
            ))
        }
    }
}

/// A customer's status (SEP-12).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KycStatus {
    /// The customer's tier is in force (tier 0: a phone number only).
    Accepted,
    /// Waiting for an operator's review.
    Processing,
    /// Fields are missing or must be given again (see the note).
    NeedsInfo,
    /// The operator refused the tier asked for; the tier in force stays.
    Rejected,
}

impl KycStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KycStatus::Accepted => "accepted",
            KycStatus::Processing => "processing",
            KycStatus::NeedsInfo => "needs_info",
            KycStatus::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<KycStatus> {
        [
            KycStatus::Accepted,
            KycStatus::Processing,
            KycStatus::NeedsInfo,
            KycStatus::Rejected,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> time::Date {
        time::Date::from_calendar_date(2026, time::Month::December, 6).expect("date")
    }

    #[test]
    fn fields_parse_what_people_type() {
        let n = |f: KycField, v: &str| f.normalize(v, today());
        assert_eq!(
            n(KycField::FullName, "  María   José López ").as_deref(),
            Ok("María José López")
        );
        assert!(n(KycField::FullName, "Maria").is_err(), "a surname too");
        assert!(n(KycField::FullName, "Maria 42").is_err());
        assert_eq!(n(KycField::BirthDate, "25/04/1990").as_deref(), Ok("1990-04-25"));
        assert_eq!(n(KycField::BirthDate, "1990-04-25").as_deref(), Ok("1990-04-25"));
        assert_eq!(
            n(KycField::BirthDate, "06.12.2008").as_deref(),
            Ok("2008-12-06"),
            "18 today"
        );
        assert!(n(KycField::BirthDate, "07/12/2008").is_err(), "17 until tomorrow");
        assert!(n(KycField::BirthDate, "31/02/1990").is_err());
        assert!(n(KycField::BirthDate, "1890-01-01").is_err());
        assert!(n(KycField::BirthDate, "yesterday").is_err());
        assert_eq!(n(KycField::IdType, "Pasaporte").as_deref(), Ok("passport"));
        assert_eq!(n(KycField::IdType, "INE").as_deref(), Ok("national_id"));
        assert_eq!(n(KycField::IdType, "cédula").as_deref(), Ok("national_id"));
        assert_eq!(
            n(KycField::IdType, "driver's license").as_deref(),
            Ok("drivers_license")
        );
        assert!(n(KycField::IdType, "library card").is_err());
        assert_eq!(n(KycField::IdNumber, "g-123 456.7").as_deref(), Ok("G1234567"));
        assert!(n(KycField::IdNumber, "12").is_err());
        assert!(n(KycField::IdNumber, "12#45").is_err());
        assert_eq!(
            n(KycField::Address, "1 Main St,\n Springfield").ok(),
            None,
            "control characters"
        );
        assert_eq!(
            n(KycField::Address, "1 Main St,  Springfield").as_deref(),
            Ok("1 Main St, Springfield")
        );
        assert!(n(KycField::Address, "x").is_err());
        for f in KycField::ALL {
            assert_eq!(KycField::parse(f.as_str()), Some(f));
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        for s in [
            "",
            "////",
            "9999-99-99",
            "-1/-1/-1",
            "\u{202e}",
            &"é".repeat(5000),
            "2000-02-29",
            "0/0/0",
        ] {
            for f in KycField::ALL {
                let _ = f.normalize(s, today());
            }
        }
    }
}
