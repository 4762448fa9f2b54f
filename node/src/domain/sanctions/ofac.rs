//! OFAC's SDN list in its CSV files: `SDN.CSV` (ent_num, name, type, program, title, call sign, vessel type,
//! tonnage, GRT, vessel flag, vessel owner, remarks), `ALT.CSV` (ent_num, alt_num, type, alias, remarks) and
//! `ADD.CSV` (ent_num, add_num, address, city/state/postal code, country, remarks). No header row; an empty field is
//! written `-0-`; the files are joined on `ent_num`; a last line holding only the DOS end-of-file byte (0x1A) is
//! ignored. Years of birth come from the remarks (`DOB 04 Apr 1957`, `DOB circa 1960`, `alt. DOB 1961`).

use std::collections::HashMap;

use super::{ENTRIES_MAX, Entry, EntryKind, ListError, ListSource, NAMES_PER_ENTRY_MAX};

const NULL: &str = "-0-";

fn field(s: &str) -> Option<&str> {
    let s = s.trim();
    (s != NULL && !s.is_empty()).then_some(s)
}

/// The rows of one file, each with its 1-based line; refuses a row with another number of fields.
fn rows(file: &str, text: &str, fields: usize) -> Result<Vec<(u64, Vec<String>)>, ListError> {
    // Every line of the real files ends with a line break (and the file with 0x1A): a file cut short does not.
    let body = text.trim_end_matches(['\u{1a}', ' ']);
    if !body.is_empty() && !body.ends_with('\n') {
        let line = 1 + body.bytes().filter(|b| *b == b'\n').count() as u64;
        return Err(ListError::new(
            file,
            line,
            "truncated: the last line does not end",
        ));
    }
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut out = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            ListError::new(file, line, format!("not CSV: {e}"))
        })?;
        let line = rec.position().map_or(0, |p| p.line());
        if rec.len() == 1
            && rec
                .get(0)
                .is_some_and(|f| f.trim_matches(['\u{1a}', ' ']).is_empty())
        {
            continue;
        }
        if rec.len() != fields {
            return Err(ListError::new(
                file,
                line,
                format!(
                    "{} fields, expected {fields} (a truncated or foreign file?)",
                    rec.len()
                ),
            ));
        }
        if out.len() >= ENTRIES_MAX * 4 {
            return Err(ListError::new(file, line, "too many rows"));
        }
        out.push((line, rec.iter().map(str::to_owned).collect()));
    }
    Ok(out)
}

fn ent_num(file: &str, line: u64, s: &str) -> Result<u64, ListError> {
    s.trim()
        .parse()
        .map_err(|_| ListError::new(file, line, format!("ent_num {s:?} is not a number")))
}

/// Years of birth written in OFAC remarks.
fn birth_years(remarks: &str) -> Vec<u16> {
    let mut years = Vec::new();
    for part in remarks.split("DOB").skip(1) {
        let head: String = part.chars().take(40).collect();
        let head = head.split(';').next().unwrap_or_default();
        for w in head.split(|c: char| !c.is_ascii_digit()) {
            if w.len() == 4
                && let Ok(y) = w.parse::<u16>()
                && (1850..=2100).contains(&y)
            {
                years.push(y);
            }
        }
    }
    years.sort_unstable();
    years.dedup();
    years
}

/// Parses the three files (their contents). Refuses them as a whole on the first bad row, naming file and line.
pub fn parse_ofac(sdn: &str, alt: &str, add: &str) -> Result<Vec<Entry>, ListError> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut at: HashMap<u64, usize> = HashMap::new();
    for (line, r) in rows("SDN.CSV", sdn, 12)? {
        let id = ent_num("SDN.CSV", line, &r[0])?;
        let name = field(&r[1]).ok_or_else(|| ListError::new("SDN.CSV", line, "no name"))?;
        let kind = match field(&r[2]).map(str::to_ascii_lowercase).as_deref() {
            None => EntryKind::Entity,
            Some("individual") => EntryKind::Individual,
            Some("vessel") => EntryKind::Vessel,
            Some("aircraft") => EntryKind::Aircraft,
            Some(other) => {
                return Err(ListError::new(
                    "SDN.CSV",
                    line,
                    format!("unknown SDN type {other:?}"),
                ));
            }
        };
        if at.insert(id, entries.len()).is_some() {
            return Err(ListError::new("SDN.CSV", line, format!("ent_num {id} twice")));
        }
        entries.push(Entry {
            source: ListSource::OfacSdn,
            id: id.to_string(),
            kind,
            names: vec![name.to_owned()],
            birth_years: field(&r[11]).map(birth_years).unwrap_or_default(),
            countries: Vec::new(),
            program: field(&r[3]).unwrap_or_default().to_owned(),
        });
    }
    if entries.is_empty() {
        return Err(ListError::new("SDN.CSV", 0, "no entries"));
    }
    for (line, r) in rows("ALT.CSV", alt, 5)? {
        let id = ent_num("ALT.CSV", line, &r[0])?;
        let e = at
            .get(&id)
            .and_then(|i| entries.get_mut(*i))
            .ok_or_else(|| ListError::new("ALT.CSV", line, format!("ent_num {id} is not in SDN.CSV")))?;
        if let Some(name) = field(&r[3])
            && e.names.len() < NAMES_PER_ENTRY_MAX
        {
            e.names.push(name.to_owned());
        }
    }
    for (line, r) in rows("ADD.CSV", add, 6)? {
        let id = ent_num("ADD.CSV", line, &r[0])?;
        let e = at
            .get(&id)
            .and_then(|i| entries.get_mut(*i))
            .ok_or_else(|| ListError::new("ADD.CSV", line, format!("ent_num {id} is not in SDN.CSV")))?;
        if let Some(country) = field(&r[4])
            && !e.countries.iter().any(|c| c == country)
        {
            e.countries.push(country.to_owned());
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDN: &str = "36,\"AEROCARIBBEAN AIRLINES\",-0- ,\"CUBA\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \n\
        7629,\"GUZMAN LOERA, Joaquin\",\"individual\",\"SDNTK\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,\"DOB 04 Apr 1957; alt. DOB 25 Dec 1954; POB Sinaloa, Mexico.\"\n\
        \u{1a}\n";
    const ALT: &str = "7629,5187,\"aka\",\"CHAPO GUZMAN\",-0- \n7629,5188,\"aka\",\"GUZMAN, Joaquin\",-0- \n";
    const ADD: &str = "36,25,\"Ave. Rancho Boyeros\",\"Havana\",\"Cuba\",-0- \n7629,4800,-0- ,\"Culiacan, Sinaloa\",\"Mexico\",-0- \n";

    #[test]
    fn joins_the_three_files_on_ent_num() {
        let e = parse_ofac(SDN, ALT, ADD).expect("parse");
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].id.as_str(), e[0].kind), ("36", EntryKind::Entity));
        assert_eq!(e[0].countries, ["Cuba"]);
        assert_eq!(
            e[1].names,
            ["GUZMAN LOERA, Joaquin", "CHAPO GUZMAN", "GUZMAN, Joaquin"]
        );
        assert_eq!(e[1].birth_years, [1954, 1957]);
        assert_eq!(
            (e[1].kind, e[1].program.as_str()),
            (EntryKind::Individual, "SDNTK")
        );
    }

    #[test]
    fn a_bad_or_truncated_file_is_refused_with_its_line() {
        let truncated = &SDN[..SDN.find("POB").expect("POB")];
        let e = parse_ofac(truncated, ALT, ADD).expect_err("truncated");
        assert_eq!((e.file.as_str(), e.line), ("SDN.CSV", 2), "{e}");
        let e = parse_ofac(SDN, "9999,1,\"aka\",\"NOBODY\",-0- \n", ADD).expect_err("orphan alias");
        assert!(
            e.to_string().contains("ALT.CSV line 1") && e.reason.contains("not in SDN.CSV"),
            "{e}"
        );
        let e = parse_ofac(
            "x,\"A\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- \n",
            "",
            "",
        )
        .expect_err("id");
        assert!(e.reason.contains("not a number"), "{e}");
        assert!(parse_ofac("", "", "").is_err());
        let twice = format!(
            "{}{}",
            &SDN[..SDN.find('\n').expect("nl") + 1],
            &SDN[..SDN.find('\n').expect("nl") + 1]
        );
        assert!(
            parse_ofac(&twice, "", "")
                .expect_err("dup")
                .reason
                .contains("twice")
        );
    }
}
