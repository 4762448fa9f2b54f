//! Phone numbers in E.164, parsed (never merely validated) with the `phonenumber` crate.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, Once};

use phonenumber::Metadata;
use phonenumber::country::Id as CountryId;
use phonenumber::metadata::{DATABASE, Database};
use serde::{Deserialize, Serialize};

/// Longest input handed to the `phonenumber` parser, in bytes.
const INPUT_MAX_BYTES: usize = 40;

/// How many compiled patterns the `phonenumber` crate may keep. Its metadata holds about 2,000 patterns, compiled
/// on first use into a least-recently-used cache of 100. One parse of a `+1` number without a region tries the
/// patterns of the ~25 regions that share the code, so the default cache was emptied by a single such parse and
/// every parse compiled its patterns again (54% of the intent parser's time, measured with `perf`). This bound
/// holds every pattern of the metadata ([`tests::cache_holds_all_metadata`] checks it), so nothing is evicted and
/// each pattern is compiled at most once per process.
const PATTERN_CACHE_CAPACITY: usize = 4_096;

/// The `phonenumber` metadata with its pattern cache enlarged to [`PATTERN_CACHE_CAPACITY`] (once per process).
fn database() -> &'static Database {
    static ENLARGE: Once = Once::new();
    ENLARGE.call_once(|| {
        // A poisoned lock means a pattern panicked while compiling; keep the crate's default size then.
        if let Ok(mut cache) = DATABASE.cache().lock() {
            cache.set_capacity(PATTERN_CACHE_CAPACITY);
        }
    });
    &DATABASE
}

/// The patterns of one region's metadata that parsing and validating use, as the crate's cache keys them (the
/// pattern's source). The national formats' patterns are left out: only the crate's formatter uses them, and
/// Remesa writes E.164 itself ([`parse_e164`]).
fn patterns_of(meta: &Metadata) -> impl Iterator<Item = &str> {
    let d = meta.descriptors();
    let descriptors = [
        Some(d.general()),
        d.fixed_line(),
        d.mobile(),
        d.toll_free(),
        d.premium_rate(),
        d.shared_cost(),
        d.personal_number(),
        d.voip(),
        d.pager(),
        d.uan(),
        d.emergency(),
        d.voicemail(),
        d.short_code(),
        d.standard_rate(),
        d.carrier(),
        d.no_international(),
    ];
    let prefixes = [
        meta.international_prefix(),
        meta.national_prefix_for_parsing(),
        meta.leading_digits(),
    ];
    descriptors
        .into_iter()
        .flatten()
        .map(|x| x.national_number().as_str())
        .chain(prefixes.into_iter().flatten().map(|r| r.as_str()))
}

/// Puts the patterns of every region of these calling codes into the crate's cache, compiled for ASCII: the crate
/// compiles them with Unicode classes, where `\d` alone is hundreds of UTF-8 ranges, and the whole metadata took
/// 169 MB that way against 32 MB for ASCII (measured). Both match the same on the ASCII digits the parser hands
/// them ([`PhoneNumber::parse`] admits no other digits), which [`tests::ascii_patterns_match_as_the_crates`]
/// checks. A calling code is prepared once per process; a pattern of a region not prepared here is still compiled
/// by the crate on first use, so this changes what a pattern costs, never what it matches.
fn prepare(codes: impl IntoIterator<Item = u16>) {
    static PREPARED: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let db = database();
    for code in codes {
        let Ok(mut prepared) = PREPARED.lock() else { return };
        if !prepared.insert(code) {
            continue;
        }
        let Some(metas) = db.by_code(&code) else { continue };
        // Compiled before the cache's lock is taken: the crate takes it for every match.
        let compiled: Vec<regex::Regex> = metas
            .iter()
            .flat_map(|m| patterns_of(m))
            .filter_map(|source| {
                regex::RegexBuilder::new(source)
                    .ignore_whitespace(true)
                    .unicode(false)
                    .build()
                    .ok()
            })
            .collect();
        // `prepared` is held until the patterns are in: a parse that waits for it finds them there.
        if let Ok(mut cache) = db.cache().lock() {
            for re in compiled {
                // Keeps a pattern the crate compiled already (it is the same pattern).
                cache.save(re);
            }
        }
    }
}

/// The calling codes a parse of `input` (ASCII, checked by the caller) may try: the default region's, and the
/// codes of 1 to 3 digits after a `+`, a `00`, or the default region's international prefix (`011` in the US).
fn codes_for(input: &str, region: Option<CountryId>) -> Vec<u16> {
    let db = database();
    let meta = region.and_then(|r| db.by_id(r.as_ref()));
    let mut codes = Vec::with_capacity(4);
    if let Some(meta) = meta {
        codes.push(meta.country_code());
        prepare([meta.country_code()]);
    }
    let digits: String = input.chars().filter(char::is_ascii_digit).collect();
    let after_exit = if input.starts_with('+') {
        Some(digits.as_str())
    } else if let Some(rest) = digits.strip_prefix("00") {
        Some(rest)
    } else {
        meta.and_then(|m| m.international_prefix())
            .and_then(|p| p.find(&digits))
            .filter(|m| m.start() == 0)
            .map(|m| &digits[m.end()..])
    };
    if let Some(rest) = after_exit {
        codes.extend((1..=3).filter_map(|len| rest.get(..len)?.parse::<u16>().ok()));
    }
    codes
}

/// Reads `input` (ASCII, checked by the caller) with the enlarged, prepared cache: the number and its E.164 form.
fn parse_e164(region: Option<CountryId>, input: &str) -> Option<(phonenumber::PhoneNumber, String)> {
    prepare(codes_for(input, region));
    let parsed = phonenumber::parse_with(database(), region, input).ok()?;
    // What the crate's E.164 formatter writes, without the national format lookup it also does (it matched
    // every format pattern of the country and threw the result away: 16% of the parse time).
    let e164 = format!("+{}{}", parsed.country().code(), parsed.national());
    Some((parsed, e164))
}

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
        let (parsed, e164) = parse_e164(default_region.map(|r| r.0), input).ok_or(PhoneError::NotANumber)?;
        if !parsed.is_valid_with(database()) || !Self::stands_alone(&e164) {
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
            && parse_e164(None, e164).is_some_and(|(n, again)| again == e164 && n.is_valid_with(database()))
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
        if let Some((n, _)) = parse_e164(None, e164)
            && let Some(id) = n.country().id()
        {
            return Some(Self(id));
        }
        // Calling codes have 1–3 digits; take the main country of the first that exists.
        (1..=3)
            .filter_map(|len| digits.get(..len)?.parse::<u16>().ok())
            .find_map(|code| {
                let metas = database().by_code(&code)?;
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

    /// Every pattern source in the metadata, as the crate's cache keys them, the formats' included.
    fn metadata_patterns() -> std::collections::HashSet<&'static str> {
        let formats = database()
            .iter()
            .flat_map(|m| m.formats().iter().chain(m.international_formats()));
        let format_patterns = formats.flat_map(|f| {
            std::iter::once(f.pattern())
                .chain(f.leading_digits())
                .map(|r| r.as_str())
        });
        database()
            .iter()
            .flat_map(patterns_of)
            .chain(format_patterns)
            .collect()
    }

    /// The ASCII compilation [`prepare`] puts into the cache finds the same matches as the crate's own (Unicode)
    /// one on ASCII digits: a seventh of the metadata's patterns (another seventh each run, to keep the debug
    /// build's run short) on every example number of the metadata, each of its prefixes, and a few odd strings.
    #[test]
    fn ascii_patterns_match_as_the_crates() {
        let mut haystacks: Vec<String> = database()
            .iter()
            .flat_map(|meta| {
                let d = meta.descriptors();
                [
                    d.general(),
                    d.fixed_line().unwrap_or(d.general()),
                    d.mobile().unwrap_or(d.general()),
                ]
                .into_iter()
                .filter_map(|x| x.example().map(str::to_owned))
                .collect::<Vec<_>>()
            })
            .collect();
        haystacks.sort();
        haystacks.dedup();
        let prefixes: Vec<String> = haystacks
            .iter()
            .flat_map(|h| (1..h.len()).map(|n| h[..n].to_owned()))
            .collect();
        haystacks.extend(prefixes);
        haystacks.extend(["0", "00", "011", "8~10", "+15551234567", "0011", "١٢٣"].map(str::to_owned));
        assert!(haystacks.len() > 2_000, "{} haystacks", haystacks.len());
        let mut patterns: Vec<&str> = metadata_patterns().into_iter().collect();
        patterns.sort_unstable();
        let offset = rand::random::<u8>() as usize % 7;
        let mut compared = 0;
        for source in patterns.iter().skip(offset).step_by(7) {
            let crate_re = regex::RegexBuilder::new(source)
                .ignore_whitespace(true)
                .build()
                .expect(source);
            let ascii = regex::RegexBuilder::new(source)
                .ignore_whitespace(true)
                .unicode(false)
                .build()
                .expect(source);
            for h in haystacks.iter().filter(|h| h.is_ascii()) {
                assert_eq!(
                    crate_re.find(h).map(|m| m.range()),
                    ascii.find(h).map(|m| m.range()),
                    "pattern {source} on {h}"
                );
            }
            compared += 1;
        }
        assert!(compared > 250, "{compared} patterns compared");
    }

    /// The enlarged cache holds every pattern of the metadata (with room for the few the parser adds), so a node
    /// that sees every country still compiles each pattern once. Parsing every region's example numbers twice
    /// compiles nothing the second time.
    #[test]
    fn cache_holds_all_metadata() {
        let patterns = metadata_patterns().len();
        assert!(
            patterns > 1_000,
            "the metadata should hold about 2,000 patterns, counted {patterns}"
        );
        assert!(
            patterns + 64 <= PATTERN_CACHE_CAPACITY,
            "{patterns} patterns do not fit the cache of {PATTERN_CACHE_CAPACITY}"
        );
        let examples: Vec<(String, String)> = database()
            .iter()
            .flat_map(|meta| {
                let d = meta.descriptors();
                [d.fixed_line(), d.mobile(), d.toll_free(), d.voip()]
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.example())
                    .map(|ex| (meta.id().to_owned(), ex.to_owned()))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(examples.len() > 500, "{} example numbers", examples.len());
        let parse_all = || {
            let mut valid = 0;
            for (region, national) in &examples {
                if PhoneNumber::parse(national, Region::from_alpha2(region)).is_ok() {
                    valid += 1;
                }
            }
            valid
        };
        let valid = parse_all();
        assert!(
            valid * 10 >= examples.len() * 9,
            "{valid} of {} examples parsed",
            examples.len()
        );
        let cache = DATABASE.cache();
        let compiled = cache.lock().expect("pattern cache").len();
        assert!(
            compiled < PATTERN_CACHE_CAPACITY,
            "{compiled} compiled patterns filled the cache"
        );
        assert_eq!(parse_all(), valid);
        assert_eq!(
            cache.lock().expect("pattern cache").len(),
            compiled,
            "the second pass compiled again"
        );
        assert_eq!(
            cache.lock().expect("pattern cache").capacity(),
            PATTERN_CACHE_CAPACITY
        );
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
