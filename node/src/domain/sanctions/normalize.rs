//! Names as the matcher compares them: transliterated to ASCII (accents, Cyrillic, Arabic and Greek script),
//! lower case, split into words, particles dropped, and each word also reduced to a phonetic skeleton that
//! survives common transliteration differences (Mohammed / Muhammad / Mohamed, Osama / Usama, Qaddafi / Kadhafi).

/// Words a name is not told apart by.
const PARTICLES: &[&str] = &[
    "de", "del", "la", "las", "los", "y", "e", "da", "das", "do", "dos", "di", "van", "von", "der", "den",
    "al", "el", "bin", "ibn", "bint", "abu", "ben", "mr", "mrs", "ms", "dr", "sr", "jr",
];
/// Longest name the matcher reads (characters after transliteration); the rest is ignored.
pub const NAME_CHARS_MAX: usize = 200;
/// Most words of a name the matcher reads.
pub const NAME_WORDS_MAX: usize = 8;

/// One word of a name: its plain ASCII form, its transliteration-folded form and its phonetic skeleton.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub plain: String,
    /// Digraphs and swapped consonants folded, vowels folded to three classes (`a`, `i` for e/i/y, `u` for o/u),
    /// runs collapsed: Mohammed and Mohamed → `muhamid`, Qaddafi and Kadhafi → `kadafi`.
    pub folded: String,
    /// `folded` without vowels after the first letter: the index key's source (coarse on purpose).
    pub skeleton: String,
}

/// The words of a name (at most [`NAME_WORDS_MAX`]); empty when nothing is left.
pub fn words(name: &str) -> Vec<Word> {
    // Letters and digits only: deunicode would spell out emoji and symbols as English words.
    let letters: String = name
        .chars()
        .take(NAME_CHARS_MAX)
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    let ascii = deunicode::deunicode(&letters);
    let mut out = Vec::new();
    for raw in ascii
        .chars()
        .take(NAME_CHARS_MAX)
        .collect::<String>()
        .to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
    {
        if raw.is_empty() || PARTICLES.contains(&raw) {
            continue;
        }
        let plain = raw.to_owned();
        out.push(Word {
            folded: fold(&plain),
            skeleton: skeleton(&plain),
            plain,
        });
        if out.len() == NAME_WORDS_MAX {
            break;
        }
    }
    out
}

/// Digraphs and consonants that transliterations swap, folded (shared by [`fold`] and [`skeleton`]).
fn fold_consonants(word: &str) -> String {
    let mut s = word.to_owned();
    for (from, to) in [
        ("sch", "s"),
        ("tch", "c"),
        ("ph", "f"),
        ("kh", "h"),
        ("gh", "g"),
        ("dh", "d"),
        ("th", "t"),
        ("sh", "s"),
        ("ch", "c"),
        ("ck", "k"),
        ("ou", "u"),
        ("q", "k"),
        ("z", "s"),
        ("x", "ks"),
        ("w", "v"),
        ("y", "i"),
        ("j", "i"),
        ("g", "k"),
        ("c", "k"),
    ] {
        s = s.replace(from, to);
    }
    s
}

/// The transliteration-folded form of one lower-case ASCII word (see [`Word::folded`]).
pub fn fold(word: &str) -> String {
    let s = fold_consonants(&word.replace("ee", "i").replace("ou", "u").replace("oo", "u"));
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        let c = match c {
            'e' | 'i' => 'i',
            'o' | 'u' => 'u',
            'h' if i > 0 => continue,
            c => c,
        };
        if !out.ends_with(c) {
            out.push(c);
        }
    }
    out
}

/// The phonetic skeleton of one lower-case ASCII word: digraphs folded, consonants that transliterations swap
/// merged, vowels dropped after the first letter (a first vowel becomes `a`), doubled letters collapsed.
pub fn skeleton(word: &str) -> String {
    let s = fold_consonants(word);
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        let vowel = matches!(c, 'a' | 'e' | 'i' | 'o' | 'u');
        let c = match (i, vowel) {
            (0, true) => 'a',
            (_, true) => continue,
            (_, false) if c == 'h' && i > 0 => continue,
            _ => c,
        };
        if !out.ends_with(c) {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(name: &str) -> Vec<String> {
        words(name).into_iter().map(|w| w.plain).collect()
    }

    #[test]
    fn accents_case_punctuation_and_particles_go() {
        assert_eq!(plain("GUZMÁN LOERA, Joaquín"), ["guzman", "loera", "joaquin"]);
        assert_eq!(plain("José de la Cruz"), ["jose", "cruz"]);
        assert_eq!(plain("Abu Bakr al-Baghdadi"), ["bakr", "baghdadi"]);
        assert_eq!(plain("Владимир Путин"), ["vladimir", "putin"]);
        assert!(words("💸💸 !!").is_empty());
        assert!(words(&"a b ".repeat(1_000)).len() <= NAME_WORDS_MAX);
    }

    #[test]
    fn transliterations_share_a_skeleton() {
        for group in [
            &["mohammed", "muhammad", "mohamed", "mohammad"][..],
            &["osama", "usama"],
            &["qaddafi", "kadhafi", "gaddafi", "qadhafi"],
            &["yusuf", "yousef", "jusuf"],
            &["guzman", "gusman"],
            &["hussein", "husain", "hussain"],
        ] {
            let s: Vec<String> = group.iter().map(|w| skeleton(w)).collect();
            assert!(s.windows(2).all(|p| p[0] == p[1]), "{group:?} → {s:?}");
        }
        assert_ne!(skeleton("maria"), skeleton("mario_x"));
    }
}
