//! Sanctions screening: the lists (OFAC's SDN list in its CSV files, the UN consolidated list in XML) and a fuzzy
//! name matcher that survives accents, case, word order, missing middle names, common transliterations and aliases.
//!
//! Parsing refuses a malformed or truncated file as a whole, with the file, line and reason ([`ListError`]); the
//! caller keeps the old list in force. Screening never panics on any input and reads at most
//! [`normalize::NAME_CHARS_MAX`] characters of a name.
//!
//! Scores are similarities between names (Jaro-Winkler, 0..=1), never money: the one module of the node where
//! floating point is allowed.
#![allow(clippy::float_arithmetic, clippy::cast_precision_loss)]

mod normalize;
mod ofac;
mod un;

use std::collections::HashMap;

pub use normalize::{NAME_WORDS_MAX, Word, fold, skeleton, words};
pub use ofac::parse_ofac;
pub use un::parse_un_xml;

/// Which list an entry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListSource {
    /// OFAC's Specially Designated Nationals list (`SDN.CSV`, `ALT.CSV`, `ADD.CSV`).
    OfacSdn,
    /// The UN Security Council consolidated list (XML).
    UnConsolidated,
}

/// What a listed entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Individual,
    Entity,
    Vessel,
    Aircraft,
}

/// One listed person or organisation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub source: ListSource,
    /// The list's own id (`ent_num`, `DATAID`).
    pub id: String,
    pub kind: EntryKind,
    /// The primary name first, then the aliases.
    pub names: Vec<String>,
    /// Years of birth given by the list (individuals).
    pub birth_years: Vec<u16>,
    /// Countries named by the list (addresses, nationality), as written there.
    pub countries: Vec<String>,
    /// Sanctions programs (OFAC) or the list type (UN).
    pub program: String,
}

/// A list file that was refused, and why. The old list stays in force.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file} line {line}: {reason}")]
pub struct ListError {
    pub file: String,
    /// 1-based; 0 when the whole file is at fault.
    pub line: u64,
    pub reason: String,
}

impl ListError {
    pub(crate) fn new(file: &str, line: u64, reason: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            line,
            reason: reason.into(),
        }
    }
}

/// Most entries a list may hold.
pub const ENTRIES_MAX: usize = 200_000;
/// Most names (primary + aliases) of one entry that are screened.
pub const NAMES_PER_ENTRY_MAX: usize = 64;
/// Most candidates scored when no listed name shares two index keys with the screened one (the rarest key's).
const CANDIDATES_FALLBACK_MAX: usize = 1_000;
/// Default score from which a name is a hit.
pub const DEFAULT_THRESHOLD: f64 = 0.91;

/// A threshold configured in percent (`sanctions.threshold_percent`), as a score.
pub fn threshold_from_percent(percent: u8) -> f64 {
    f64::from(percent.min(100)) / 100.0
}

/// A screening hit: the entry, the listed name that matched and the score (0..=1).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Hit {
    pub source: ListSource,
    pub entry_id: String,
    pub matched_name: String,
    pub score: f64,
}

/// What is screened: a name, with a year of birth and a country (ISO 3166-1 alpha-2, or a name) when known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Subject<'a> {
    pub name: &'a str,
    pub birth_year: Option<u16>,
    pub country: Option<&'a str>,
}

/// A country as compared: letters of its English name, lower case, without a parenthesised part ("Iran (Islamic
/// Republic of)" → "iran"); an ISO 3166-1 alpha-2 code becomes its name first.
fn country_key(c: &str) -> String {
    let c = c.trim();
    let name = match isocountry::CountryCode::for_alpha2_caseless(c) {
        Ok(code) if c.len() == 2 => code.name(),
        _ => c,
    };
    let name = name.split('(').next().unwrap_or_default();
    deunicode::deunicode(name)
        .to_ascii_lowercase()
        .chars()
        .filter(|ch| ch.is_ascii_alphabetic() || *ch == ' ')
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a listed country and a screened one are the same: equal names (spaces aside: "Viet Nam"), one name
/// the start of the other at a word ("United States" of America), or the ISO name's adjective form ("Russian
/// Federation" and "Russia", "Syrian Arab Republic" and "Syria"; "Nigeria" is not "Niger").
pub fn same_country(listed: &str, screened: &str) -> bool {
    let (a, b) = (country_key(listed), country_key(screened));
    if a.is_empty() || b.is_empty() {
        return false;
    }
    let (short, long) = if a.len() <= b.len() { (&a, &b) } else { (&b, &a) };
    if a.replace(' ', "") == b.replace(' ', "") || long.starts_with(&format!("{short} ")) {
        return true;
    }
    let (fs, fl) = (
        short.split(' ').next().unwrap_or_default(),
        long.split(' ').next().unwrap_or_default(),
    );
    fs.len() >= 4 && fl.len() == fs.len() + 1 && fl.starts_with(fs) && fl.ends_with('n')
}

/// A loaded list, indexed for screening.
#[derive(Debug, Clone, Default)]
pub struct SanctionsList {
    entries: Vec<Entry>,
    /// `(entry, name)` → the name's words (ids into `words`), and whether its first word is a surname that must
    /// match ("LAST, First" as OFAC writes individuals).
    names: Vec<(u32, u16, Vec<u32>, bool)>,
    /// Every distinct listed word once: a screen scores each against the query once, however many names use it.
    words: Vec<Word>,
    /// Skeleton prefix → indexes into `names`.
    index: HashMap<String, Vec<u32>>,
}

/// The key a word is indexed under: the first three letters of its skeleton (fewer for short words).
fn key(w: &Word) -> &str {
    let end = w
        .skeleton
        .char_indices()
        .nth(3)
        .map_or(w.skeleton.len(), |(i, _)| i);
    &w.skeleton[..end]
}

impl SanctionsList {
    /// Indexes `entries` (at most [`ENTRIES_MAX`]; names past [`NAMES_PER_ENTRY_MAX`] per entry are ignored).
    pub fn new(mut entries: Vec<Entry>) -> Self {
        entries.truncate(ENTRIES_MAX);
        let mut names = Vec::new();
        let mut index: HashMap<String, Vec<u32>> = HashMap::new();
        let mut words_table: Vec<Word> = Vec::new();
        let mut word_ids: HashMap<String, u32> = HashMap::new();
        for (e, entry) in entries.iter().enumerate() {
            for (n, name) in entry.names.iter().take(NAMES_PER_ENTRY_MAX).enumerate() {
                let w = words(name);
                if w.is_empty() {
                    continue;
                }
                let at = u32::try_from(names.len()).unwrap_or(u32::MAX);
                let mut keys: Vec<&str> = w.iter().map(key).filter(|k| !k.is_empty()).collect();
                keys.sort_unstable();
                keys.dedup();
                for k in keys {
                    index.entry(k.to_owned()).or_default().push(at);
                }
                let ids = w
                    .into_iter()
                    .map(|word| {
                        *word_ids.entry(word.plain.clone()).or_insert_with(|| {
                            words_table.push(word);
                            u32::try_from(words_table.len() - 1).unwrap_or(u32::MAX)
                        })
                    })
                    .collect();
                names.push((
                    u32::try_from(e).unwrap_or(u32::MAX),
                    u16::try_from(n).unwrap_or(u16::MAX),
                    ids,
                    name.contains(','),
                ));
            }
        }
        Self {
            entries,
            names,
            words: words_table,
            index,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entries whose best-scoring name reaches `threshold`, best first (one hit per entry).
    pub fn screen(&self, subject: Subject<'_>, threshold: f64) -> Vec<Hit> {
        let query = words(subject.name);
        if query.is_empty() {
            return Vec::new();
        }
        // Candidates share an index key with the query; with two words or more, two keys (a given name alone is
        // shared by too many), unless no listed name shares two (a typo in the surname).
        let mut keys: Vec<&str> = query.iter().map(key).filter(|k| !k.is_empty()).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut shared = vec![0u8; self.names.len()];
        let mut touched = Vec::new();
        for k in keys {
            for c in self.index.get(k).into_iter().flatten() {
                if let Some(n) = shared.get_mut(*c as usize) {
                    if *n == 0 {
                        touched.push(*c);
                    }
                    *n = n.saturating_add(1);
                }
            }
        }
        let want = if query.len() >= 2 { 2 } else { 1 };
        let mut candidates: Vec<u32> = touched
            .into_iter()
            .filter(|c| {
                shared.get(*c as usize).is_some_and(|n| *n >= want)
                    || self
                        .names
                        .get(*c as usize)
                        .is_some_and(|(_, _, w, _)| w.len() == 1)
            })
            .collect();
        if candidates.is_empty() {
            // The rarest key's names only (a surname's, usually): a typo elsewhere still finds them, cheaply.
            let rarest = query
                .iter()
                .filter_map(|w| self.index.get(key(w)))
                .min_by_key(|postings| postings.len());
            candidates = rarest
                .into_iter()
                .flatten()
                .copied()
                .take(CANDIDATES_FALLBACK_MAX)
                .collect();
        }
        candidates.sort_unstable();
        let mut best: HashMap<u32, (f64, u16)> = HashMap::new();
        // Each listed word's scores against the query's words, computed once per screen.
        let mut memo: HashMap<u32, [f64; NAME_WORDS_MAX]> = HashMap::new();
        for c in candidates {
            let Some((entry, name, listed, surname_first)) = self.names.get(c as usize) else {
                continue;
            };
            let Some(e) = self.entries.get(*entry as usize) else {
                continue;
            };
            let mut s = name_score(query.len(), listed.len(), *surname_first, |qi, li| {
                let Some(id) = listed.get(li).copied() else {
                    return 0.0;
                };
                let row = memo.entry(id).or_insert_with(|| {
                    let mut row = [0.0; NAME_WORDS_MAX];
                    if let Some(lw) = self.words.get(id as usize) {
                        for (q, slot) in query.iter().zip(row.iter_mut()) {
                            *slot = word_score(q, lw);
                        }
                    }
                    row
                });
                row.get(qi).copied().unwrap_or(0.0)
            });
            if let Some(year) = subject.birth_year
                && !e.birth_years.is_empty()
            {
                if e.birth_years.iter().any(|y| y.abs_diff(year) <= 1) {
                    s += 0.03;
                } else {
                    s -= 0.15;
                }
            }
            // A country the list names (address, nationality) that is the screened party's confirms a little.
            if let Some(c) = subject.country
                && e.countries.iter().any(|listed| same_country(listed, c))
            {
                s += 0.02;
            }
            let s = s.clamp(0.0, 1.0);
            if s >= threshold && best.get(entry).is_none_or(|(b, _)| s > *b) {
                best.insert(*entry, (s, *name));
            }
        }
        let mut hits: Vec<Hit> = best
            .into_iter()
            .filter_map(|(entry, (score, name))| {
                let e = self.entries.get(entry as usize)?;
                Some(Hit {
                    source: e.source,
                    entry_id: e.id.clone(),
                    matched_name: e.names.get(usize::from(name))?.clone(),
                    score,
                })
            })
            .collect();
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.entry_id.cmp(&b.entry_id))
        });
        hits
    }
}

/// Jaro-Winkler, less a share for a difference in length: Winkler's prefix bonus makes a word and its extension
/// ("Reza" / "Rezaei") look alike.
fn similar(a: &str, b: &str) -> f64 {
    let (la, lb) = (a.chars().count(), b.chars().count());
    let longest = la.max(lb).max(1) as f64;
    strsim::jaro_winkler(a, b) * (1.0 - 0.5 * la.abs_diff(lb) as f64 / longest)
}

/// How alike two words are (0..=1). Equal words score 1, equal folded forms (a transliteration) 0.96. Short words
/// (three letters or fewer: "Li", "Ma", "Ri") must be equal or fold equal. Otherwise the better of [`similar`] on
/// the plain and on the folded words.
fn word_score(a: &Word, b: &Word) -> f64 {
    if a.plain == b.plain {
        return 1.0;
    }
    if !a.folded.is_empty() && a.folded == b.folded {
        return 0.96;
    }
    if a.plain.len().min(b.plain.len()) <= 3 {
        return 0.0;
    }
    similar(&a.plain, &b.plain).max(similar(&a.folded, &b.folded))
}

/// Least score of the word that must match: a listed surname written first ("LAST, First").
const SURNAME_MATCH_MIN: f64 = 0.85;

/// How alike a screened name is to a listed name (0..=1), in any word order: every word of the shorter name is
/// paired with its best distinct match in the longer one; the score is the mean of the pair scores and the worst
/// one, so one good word cannot carry a poor one. When the listed name is written "LAST, First", its first surname
/// must be matched (a name that shares only first names is someone else). Words the longer name has beyond the
/// pairs (a missing middle name) cost a little; a one-word name against a longer one counts for little.
fn name_score(
    query_len: usize,
    listed_len: usize,
    surname_first: bool,
    mut score: impl FnMut(usize, usize) -> f64,
) -> f64 {
    // `score(query word, listed word)`; the shorter name's words each take their best distinct partner.
    let listed_is_short = listed_len < query_len;
    let (short_len, long_len) = if listed_is_short {
        (listed_len, query_len)
    } else {
        (query_len, listed_len)
    };
    let long_len = long_len.min(NAME_WORDS_MAX);
    if short_len == 0 {
        return 0.0;
    }
    let mut used = [false; NAME_WORDS_MAX];
    let (mut total, mut worst) = (0.0, 1.0_f64);
    let mut surname = 0.0_f64;
    for i in 0..short_len {
        let mut pick: Option<(usize, f64)> = None;
        for (j, taken) in used.iter().enumerate().take(long_len) {
            if *taken {
                continue;
            }
            let s = if listed_is_short { score(j, i) } else { score(i, j) };
            if pick.is_none_or(|(_, b)| s > b) {
                pick = Some((j, s));
            }
        }
        if let Some((j, s)) = pick {
            used[j] = true;
            total += s;
            worst = worst.min(s);
            if (listed_is_short && i == 0) || (!listed_is_short && j == 0) {
                surname = s;
            }
        }
    }
    if surname_first && surname < SURNAME_MATCH_MIN {
        return 0.0;
    }
    let mean = total / short_len as f64;
    let mut score = (mean + worst) / 2.0;
    score -= 0.02 * long_len.saturating_sub(short_len) as f64;
    if short_len == 1 && long_len > 1 {
        score *= 0.7;
    }
    score
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> SanctionsList {
        let person = |id: &str, names: &[&str], year: Option<u16>| Entry {
            source: ListSource::OfacSdn,
            id: id.into(),
            kind: EntryKind::Individual,
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            birth_years: year.into_iter().collect(),
            countries: vec!["Mexico".into()],
            program: "SDNTK".into(),
        };
        SanctionsList::new(vec![
            person(
                "1",
                &["GUZMAN LOERA, Joaquin", "CHAPO GUZMAN", "GUZMAN, Joaquin"],
                Some(1957),
            ),
            person(
                "2",
                &["AL-BAGHDADI, Abu Bakr", "AL-BADRI, Ibrahim Awwad Ibrahim Ali"],
                Some(1971),
            ),
            person("3", &["QADHAFI, Muammar Muhammad Abu Minyar"], Some(1942)),
            person("4", &["BIN LADIN, Usama bin Muhammad bin Awad"], None),
        ])
    }

    fn hit(l: &SanctionsList, name: &str) -> Option<String> {
        l.screen(
            Subject {
                name,
                birth_year: None,
                country: None,
            },
            DEFAULT_THRESHOLD,
        )
        .first()
        .map(|h| h.entry_id.clone())
    }

    #[test]
    fn variants_of_listed_names_are_hits() {
        let l = list();
        for (name, id) in [
            ("Joaquin Guzman Loera", "1"),
            ("joaquín guzmán loera", "1"),
            ("Joaquin Guzman", "1"),
            ("JOAQUIN ARCHIVALDO GUZMAN LOERA", "1"),
            ("Chapo Guzmán", "1"),
            ("Ibrahim Awad Ibrahim al-Badri", "2"),
            ("Abu Bakr Al Baghdadi", "2"),
            ("Moammar Gadhafi", "3"),
            ("Muammar al-Qaddafi", "3"),
            ("Osama bin Laden", "4"),
            ("Усама бен Ладен", "4"),
        ] {
            assert_eq!(hit(&l, name).as_deref(), Some(id), "{name}");
        }
    }

    #[test]
    fn other_names_are_not_hits() {
        let l = list();
        for name in [
            "Maria Lopez",
            "Joaquin Lopez Hernandez",
            "Juan Guerrero",
            "Ibrahim Hassan",
            "Muhammad Ali",
            "Laura Garcia",
            "",
            "🙂",
            "x",
        ] {
            assert_eq!(hit(&l, name), None, "{name}");
        }
    }

    #[test]
    fn countries_compare_by_code_or_name() {
        assert!(same_country("Mexico", "MX"));
        assert!(same_country("Russia", "RU"), "Russian Federation");
        assert!(same_country("Iran", "ir"));
        assert!(same_country("México", "Mexico"));
        assert!(!same_country("Mexico", "GT"));
        assert!(!same_country("", "MX"));
        assert!(!same_country("Niger", "NG"), "Nigeria is not Niger");
        assert!(same_country("Syria", "SY"), "Syrian Arab Republic");
        assert!(same_country("Vietnam", "VN"), "Viet Nam");
        assert!(same_country("United States", "US"), "United States of America");
        let l = list();
        let at = |country| {
            l.screen(
                Subject {
                    // misspelt: below a perfect score
                    name: "Joakin Gusmann Loera",
                    country,
                    ..Subject::default()
                },
                0.0,
            )[0]
            .score
        };
        assert!(at(None) < 0.98, "{}", at(None));
        assert!(at(Some("MX")) > at(None), "the listed address is in Mexico");
        assert!(at(Some("GT")) == at(None), "another country takes nothing away");
    }

    #[test]
    fn a_birth_year_confirms_or_weakens() {
        let l = list();
        let at = |year| {
            l.screen(
                Subject {
                    name: "Joaquin Guzman Loera",
                    birth_year: Some(year),
                    country: None,
                },
                0.0,
            )[0]
            .score
        };
        assert!(at(1957) > at(1990));
    }

    #[test]
    fn screening_never_panics() {
        let l = list();
        for name in [
            "\u{0}",
            "ǅǆ",
            "ﷺ",
            &"é".repeat(10_000),
            "a-b-c-d-e-f-g-h-i-j-k",
            "Ω≈ç√∫",
        ] {
            let _ = l.screen(
                Subject {
                    name,
                    birth_year: Some(0),
                    country: None,
                },
                0.5,
            );
        }
    }
}
