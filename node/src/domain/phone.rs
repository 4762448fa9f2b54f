//! Phone numbers in E.164, parsed (never merely validated) with the `phonenumber` crate.

use std::fmt;
use std::str::FromStr;

use phonenumber::country::Id as CountryId;
use serde::{Deserialize, Serialize};

/// Longest input handed to the `phonenumber` parser, in bytes.
const INPUT_MAX_BYTES: usize = 40;

/// A valid phone number in E.164 form (`+50255550101`). Built only by [`PhoneNumber::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

/// Why a phone number was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// Nothing that looks like a number.
    #[error("not a phone number")]
    NotANumber,
    /// A local number without a country code, and no default region to resolve it.
    #[error("the number needs a country code (e.g. +502)")]
    NeedsCountryCode,
    /// Parsed, but not a valid number for its country.
    #[error("not a valid phone number for its country")]
    Invalid,
}

impl PhoneNumber {
    /// Parses `input` (spaces, dashes, dots and brackets allowed). Local numbers are read in `default_region`
    /// (the sender's country). The result must be a valid number per libphonenumber's metadata.
    pub fn parse(input: &str, default_region: Option<Region>) -> Result<Self, PhoneError> {
        let input = input.trim();
        if input.is_empty()
            || input.len() > INPUT_MAX_BYTES
            || !input.chars().all(|c| c.is_ascii_digit() || " +-.()".contains(c))
            || !input.chars().any(|c| c.is_ascii_digit())
            || input.matches('+').count() > 1
            || (input.contains('+') && !input.starts_with('+'))
        {
            return Err(PhoneError::NotANumber);
        }
        let digits = input.chars().filter(char::is_ascii_digit).count();
        if !(6..=15).contains(&digits) {
            return Err(PhoneError::NotANumber);
        }
        let international = input.starts_with('+') || input.starts_with("00");
        if !international && default_region.is_none() {
            return Err(PhoneError::NeedsCountryCode);
        }
        let parsed =
            phonenumber::parse(default_region.map(|r| r.0), input).map_err(|_| PhoneError::NotANumber)?;
        let e164 = parsed.format().mode(phonenumber::Mode::E164).to_string();
        if !parsed.is_valid() || !Self::stands_alone(&e164) {
            return Err(if international {
                PhoneError::Invalid
            } else {
                PhoneError::NeedsCountryCode
            });
        }
        Ok(Self(e164))
    }

    /// Whether an E.164 string is a valid number that reads back as itself. The `phonenumber` crate may strip a
    /// national or carrier prefix from the digits after a country code, and not always the same way for a typed
    /// number and its E.164 form: `+55 9090021 3021 3` gave `+559002130213`, which reads as another, invalid
    /// number. Every number this type holds must re-parse to itself (the engine re-parses what the chat stored).
    fn stands_alone(e164: &str) -> bool {
        let digits = e164.len().saturating_sub(1);
        (1..=15).contains(&digits)
            && phonenumber::parse(None, e164)
                .is_ok_and(|n| n.is_valid() && n.format().mode(phonenumber::Mode::E164).to_string() == e164)
    }

    /// Accepts a number the platform vouches for (the sender's own WhatsApp number, the terminal `--as`): E.164
    /// shape only (`+` and 8–15 digits), since test and fictional numbers (`+1555…`) are legitimate there.
    pub fn from_platform(e164: &str) -> Result<Self, PhoneError> {
        let digits = e164.strip_prefix('+').ok_or(PhoneError::NotANumber)?;
        if (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
        {
            Ok(Self(e164.to_owned()))
        } else {
            Err(PhoneError::NotANumber)
        }
    }

    /// `+` and digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Digits without `+` (WhatsApp's `to`).
    pub fn digits(&self) -> &str {
        self.0.trim_start_matches('+')
    }

    /// The country of the number (for the default region of numbers this person types).
    pub fn region(&self) -> Option<Region> {
        Region::of_e164(&self.0)
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads back what [`PhoneNumber`] serializes: a platform number ([`PhoneNumber::from_platform`]), or the exact E.164
/// form of a valid number, which may be shorter than a platform number (Niue `+6837012`, Tokelau `+6903101`, Iran
/// `+989601`: 6 or 7 digits). Without the second, a conversation state holding such a number did not load.
impl TryFrom<String> for PhoneNumber {
    type Error = PhoneError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::from_platform(&s).or_else(|e| match Self::parse(&s, None) {
            Ok(p) if p.0 == s => Ok(p),
            _ => Err(e),
        })
    }
}

impl From<PhoneNumber> for String {
    fn from(p: PhoneNumber) -> Self {
        p.0
    }
}

/// A country, used as the default region for local numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region(CountryId);

impl Region {
    /// From an ISO 3166 alpha-2 code (`GT`).
    pub fn from_alpha2(code: &str) -> Option<Self> {
        CountryId::from_str(&code.to_ascii_uppercase()).ok().map(Self)
    }

    /// The main country of an E.164 number's calling code (`+1…` → US), even for numbers that are not valid.
    pub fn of_e164(e164: &str) -> Option<Self> {
        let digits = e164.strip_prefix('+')?;
        if digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if let Ok(n) = phonenumber::parse(None, e164)
            && let Some(id) = n.country().id()
        {
            return Some(Self(id));
        }
        // Calling codes have 1–3 digits; take the main country of the first that exists.
        (1..=3)
            .filter_map(|len| digits.get(..len)?.parse::<u16>().ok())
            .find_map(|code| {
                let metas = phonenumber::metadata::DATABASE.by_code(&code)?;
                let main = metas
                    .iter()
                    .find(|m| m.is_main_country_for_code())
                    .or(metas.first())?;
                Self::from_alpha2(main.id())
            })
    }

    /// ISO alpha-2 code.
    pub fn alpha2(&self) -> &str {
        self.0.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_international_and_local() {
        assert_eq!(
            PhoneNumber::parse("+502 5555 0101", None).map(|p| p.0),
            Ok("+50255550101".to_owned())
        );
        assert_eq!(
            PhoneNumber::parse("+52 (55) 1234-5678", None).map(|p| p.0),
            Ok("+525512345678".to_owned())
        );
        let gt = Region::from_alpha2("gt");
        assert_eq!(
            PhoneNumber::parse("5555 0101", gt).map(|p| p.0),
            Ok("+50255550101".to_owned())
        );
        assert_eq!(
            PhoneNumber::parse("5555 0101", None),
            Err(PhoneError::NeedsCountryCode)
        );
        assert_eq!(
            PhoneNumber::parse("5555 0101", Region::from_alpha2("US")),
            Err(PhoneError::NeedsCountryCode)
        );
        assert_eq!(PhoneNumber::parse("+50212345678", None), Err(PhoneError::Invalid));
        assert_eq!(PhoneNumber::parse("hello", None), Err(PhoneError::NotANumber));
        assert_eq!(PhoneNumber::parse("+1+2", None), Err(PhoneError::NotANumber));
        assert_eq!(PhoneNumber::parse("", None), Err(PhoneError::NotANumber));
    }

    #[test]
    fn regions() {
        assert_eq!(
            Region::of_e164("+15551234567").map(|r| r.alpha2().to_owned()),
            Some("US".to_owned())
        );
        assert_eq!(
            Region::of_e164("+50255550101").map(|r| r.alpha2().to_owned()),
            Some("GT".to_owned())
        );
        assert_eq!(
            Region::of_e164("+447700900123").map(|r| r.alpha2().to_owned()),
            Some("GB".to_owned())
        );
        assert_eq!(Region::of_e164("12345"), None);
    }

    #[test]
    fn platform_numbers() {
        assert!(PhoneNumber::from_platform("+15551234567").is_ok());
        assert!(PhoneNumber::from_platform("15551234567").is_err());
        assert!(PhoneNumber::from_platform("+1555").is_err());
        assert!(PhoneNumber::from_platform("+0555123456").is_err());
    }

    /// The `phone` fuzz target checks that a parsed number survives the JSON round trip (the conversation state's):
    /// valid numbers with fewer than 8 digits in E.164 did not, as deserializing accepted only platform numbers.
    #[test]
    fn short_valid_numbers_survive_json() {
        for (typed, e164) in [
            ("+683 7012", "+6837012"),
            ("+690 3101", "+6903101"),
            ("+98 9601", "+989601"),
        ] {
            let p = PhoneNumber::parse(typed, None).expect(typed);
            assert_eq!(p.as_str(), e164);
            let json = serde_json::to_string(&p).expect("to JSON");
            assert_eq!(serde_json::from_str::<PhoneNumber>(&json).ok(), Some(p));
        }
        // Deserializing stays strict: only E.164 exactly, or a platform number.
        for bad in ["\"+683 7012\"", "\"6837012\"", "\"+6831\"", "\"+0555123456\""] {
            assert!(serde_json::from_str::<PhoneNumber>(bad).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<PhoneNumber>("\"+15551234567\"").is_ok());
    }

    /// Found by the `phone` and `intent` fuzz targets: numbers whose E.164 form did not re-parse to itself (the
    /// crate stripped a prefix from one and not the other) were accepted; the engine's re-parse then dropped them.
    #[test]
    fn e164_form_reads_back_as_itself() {
        for typed in ["+559090021 3021 3", "+78- 5555 01084"] {
            match PhoneNumber::parse(typed, None) {
                Ok(p) => assert_eq!(PhoneNumber::parse(p.as_str(), None), Ok(p.clone()), "{typed}"),
                Err(e) => assert_eq!(e, PhoneError::Invalid, "{typed}"),
            }
        }
        assert_eq!(
            PhoneNumber::parse("+559090021 3021 3", None),
            Err(PhoneError::Invalid)
        );
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,40}", region in proptest::option::of("[A-Z]{2}")) {
            let r = region.as_deref().and_then(Region::from_alpha2);
            let _ = PhoneNumber::parse(&s, r);
            let _ = Region::of_e164(&s);
        }

        #[test]
        fn digit_soup_never_panics(s in "[+0-9 ()\\-.]{0,40}") {
            if let Ok(p) = PhoneNumber::parse(&s, Region::from_alpha2("GT")) {
                proptest::prop_assert!(p.as_str().starts_with('+'));
                proptest::prop_assert_eq!(PhoneNumber::parse(p.as_str(), None), Ok(p.clone()));
            }
        }
    }
}
