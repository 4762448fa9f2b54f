//! The UN Security Council consolidated list in its XML form: `CONSOLIDATED_LIST` (attribute `dateGenerated`) with
//! `INDIVIDUALS/INDIVIDUAL` (`DATAID`, `FIRST_NAME` … `FOURTH_NAME`, `UN_LIST_TYPE`, `INDIVIDUAL_ALIAS/ALIAS_NAME`,
//! `INDIVIDUAL_DATE_OF_BIRTH/DATE` or `YEAR`, `NATIONALITY/VALUE`, `INDIVIDUAL_ADDRESS/COUNTRY`) and
//! `ENTITIES/ENTITY` (`DATAID`, `FIRST_NAME`, `ENTITY_ALIAS/ALIAS_NAME`, `ENTITY_ADDRESS/COUNTRY`).

use quick_xml::Reader;
use quick_xml::events::Event;

use super::{ENTRIES_MAX, Entry, EntryKind, ListError, ListSource, NAMES_PER_ENTRY_MAX};

const FILE: &str = "UN XML";
/// Deepest element nesting read.
const DEPTH_MAX: usize = 32;

#[derive(Default)]
struct Open {
    kind: Option<EntryKind>,
    id: String,
    name_parts: [String; 4],
    aliases: Vec<String>,
    years: Vec<u16>,
    countries: Vec<String>,
    list_type: String,
}

/// Parses the XML; returns the list's generation date (when given) and its entries. Refuses it as a whole on the
/// first error, naming the line.
pub fn parse_un_xml(xml: &str) -> Result<(Option<String>, Vec<Entry>), ListError> {
    let mut r = Reader::from_str(xml);
    let line_at = |pos: u64| -> u64 {
        let end = usize::try_from(pos).unwrap_or(usize::MAX).min(xml.len());
        1 + xml.as_bytes()[..end].iter().filter(|b| **b == b'\n').count() as u64
    };
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut date = None;
    let mut open: Option<Open> = None;
    let mut entries = Vec::new();
    let mut saw_root = false;
    loop {
        let ev = r
            .read_event()
            .map_err(|e| ListError::new(FILE, line_at(r.error_position()), format!("not XML: {e}")))?;
        let line = || line_at(r.buffer_position());
        match ev {
            Event::Start(s) => {
                let name = String::from_utf8_lossy(s.local_name().as_ref()).into_owned();
                if path.len() >= DEPTH_MAX {
                    return Err(ListError::new(FILE, line(), "nested too deep"));
                }
                if path.is_empty() {
                    if name != "CONSOLIDATED_LIST" {
                        return Err(ListError::new(
                            FILE,
                            line(),
                            format!("root element {name}, expected CONSOLIDATED_LIST"),
                        ));
                    }
                    saw_root = true;
                    for a in s.attributes().flatten() {
                        if a.key.local_name().as_ref() == b"dateGenerated" {
                            date = Some(String::from_utf8_lossy(&a.value).chars().take(40).collect());
                        }
                    }
                }
                match name.as_str() {
                    "INDIVIDUAL" => {
                        open = Some(Open {
                            kind: Some(EntryKind::Individual),
                            ..Open::default()
                        })
                    }
                    "ENTITY" => {
                        open = Some(Open {
                            kind: Some(EntryKind::Entity),
                            ..Open::default()
                        })
                    }
                    _ => {}
                }
                path.push(name);
                text.clear();
            }
            Event::Text(t) => {
                let s = t
                    .decode()
                    .map_err(|e| ListError::new(FILE, line(), format!("text: {e}")))?;
                if text.len() < 4_096 {
                    text.push_str(&s);
                }
            }
            Event::GeneralRef(g) => {
                if let Ok(Some(c)) = g.resolve_char_ref() {
                    text.push(c);
                } else if let Ok(name) = g.decode()
                    && let Some(s) = quick_xml::escape::resolve_predefined_entity(&name)
                {
                    text.push_str(s);
                } else {
                    return Err(ListError::new(FILE, line(), "unknown entity reference"));
                }
            }
            Event::CData(c) => text.push_str(&String::from_utf8_lossy(&c)),
            Event::End(_) => {
                let Some(name) = path.pop() else {
                    return Err(ListError::new(FILE, line(), "closing tag without an opening one"));
                };
                let value = text.trim().to_owned();
                text.clear();
                let parent = path.last().map(String::as_str).unwrap_or_default();
                if let Some(o) = open.as_mut() {
                    match (parent, name.as_str()) {
                        ("INDIVIDUAL" | "ENTITY", "DATAID") => o.id = value,
                        ("INDIVIDUAL" | "ENTITY", "FIRST_NAME") => o.name_parts[0] = value,
                        ("INDIVIDUAL", "SECOND_NAME") => o.name_parts[1] = value,
                        ("INDIVIDUAL", "THIRD_NAME") => o.name_parts[2] = value,
                        ("INDIVIDUAL", "FOURTH_NAME") => o.name_parts[3] = value,
                        ("INDIVIDUAL" | "ENTITY", "UN_LIST_TYPE") => o.list_type = value,
                        ("INDIVIDUAL_ALIAS" | "ENTITY_ALIAS", "ALIAS_NAME") if !value.is_empty() => {
                            o.aliases.push(value)
                        }
                        ("INDIVIDUAL_DATE_OF_BIRTH", "DATE" | "YEAR" | "FROM_YEAR" | "TO_YEAR") => {
                            if let Some(y) = value.get(..4).and_then(|y| y.parse::<u16>().ok()) {
                                o.years.push(y);
                            }
                        }
                        ("NATIONALITY", "VALUE") | ("INDIVIDUAL_ADDRESS" | "ENTITY_ADDRESS", "COUNTRY")
                            if !value.is_empty() && !o.countries.contains(&value) =>
                        {
                            o.countries.push(value)
                        }
                        _ => {}
                    }
                }
                if matches!(name.as_str(), "INDIVIDUAL" | "ENTITY")
                    && let Some(o) = open.take()
                {
                    let primary = o
                        .name_parts
                        .iter()
                        .filter(|p| !p.is_empty())
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(" ");
                    if o.id.is_empty() || primary.is_empty() {
                        return Err(ListError::new(
                            FILE,
                            line(),
                            format!("{name} without DATAID or name"),
                        ));
                    }
                    if entries.len() >= ENTRIES_MAX {
                        return Err(ListError::new(FILE, line(), "too many entries"));
                    }
                    let mut names = vec![primary];
                    names.extend(o.aliases.into_iter().take(NAMES_PER_ENTRY_MAX - 1));
                    let mut years = o.years;
                    years.sort_unstable();
                    years.dedup();
                    entries.push(Entry {
                        source: ListSource::UnConsolidated,
                        id: o.id,
                        kind: o.kind.unwrap_or(EntryKind::Entity),
                        names,
                        birth_years: years,
                        countries: o.countries,
                        program: o.list_type,
                    });
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_root || !path.is_empty() {
        return Err(ListError::new(
            FILE,
            line_at(xml.len() as u64),
            "truncated: the list does not end",
        ));
    }
    if entries.is_empty() {
        return Err(ListError::new(FILE, 0, "no entries"));
    }
    Ok((date, entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<CONSOLIDATED_LIST xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" dateGenerated="2026-11-30T10:00:03.587-05:00">
  <INDIVIDUALS>
    <INDIVIDUAL>
      <DATAID>6908555</DATAID>
      <FIRST_NAME>IBRAHIM</FIRST_NAME>
      <SECOND_NAME>AWWAD</SECOND_NAME>
      <THIRD_NAME>IBRAHIM</THIRD_NAME>
      <FOURTH_NAME>AL-BADRI</FOURTH_NAME>
      <UN_LIST_TYPE>Al-Qaida</UN_LIST_TYPE>
      <INDIVIDUAL_ALIAS><QUALITY>Good</QUALITY><ALIAS_NAME>Abu Bakr al-Baghdadi</ALIAS_NAME></INDIVIDUAL_ALIAS>
      <INDIVIDUAL_ALIAS><QUALITY>Low</QUALITY><ALIAS_NAME>Dr. Ibrahim &amp; Co</ALIAS_NAME></INDIVIDUAL_ALIAS>
      <NATIONALITY><VALUE>Iraq</VALUE></NATIONALITY>
      <INDIVIDUAL_DATE_OF_BIRTH><TYPE_OF_DATE>EXACT</TYPE_OF_DATE><DATE>1971-01-01</DATE></INDIVIDUAL_DATE_OF_BIRTH>
    </INDIVIDUAL>
  </INDIVIDUALS>
  <ENTITIES>
    <ENTITY>
      <DATAID>110404</DATAID>
      <FIRST_NAME>AL-NUSRAH FRONT FOR THE PEOPLE OF THE LEVANT</FIRST_NAME>
      <UN_LIST_TYPE>Al-Qaida</UN_LIST_TYPE>
      <ENTITY_ALIAS><ALIAS_NAME>Jabhat al-Nusra</ALIAS_NAME></ENTITY_ALIAS>
      <ENTITY_ADDRESS><COUNTRY>Syrian Arab Republic</COUNTRY></ENTITY_ADDRESS>
    </ENTITY>
  </ENTITIES>
</CONSOLIDATED_LIST>
"#;

    #[test]
    fn reads_individuals_entities_aliases_and_dates() {
        let (date, e) = parse_un_xml(XML).expect("parse");
        assert_eq!(date.as_deref(), Some("2026-11-30T10:00:03.587-05:00"));
        assert_eq!(e.len(), 2);
        assert_eq!(
            e[0].names,
            [
                "IBRAHIM AWWAD IBRAHIM AL-BADRI",
                "Abu Bakr al-Baghdadi",
                "Dr. Ibrahim & Co"
            ]
        );
        assert_eq!(
            (e[0].kind, e[0].birth_years.as_slice()),
            (EntryKind::Individual, &[1971][..])
        );
        assert_eq!(e[0].countries, ["Iraq"]);
        assert_eq!((e[1].id.as_str(), e[1].kind), ("110404", EntryKind::Entity));
        assert_eq!(e[1].names[1], "Jabhat al-Nusra");
    }

    #[test]
    fn a_truncated_or_foreign_file_is_refused_with_its_line() {
        let cut = &XML[..XML.find("<ENTITIES>").expect("entities")];
        let e = parse_un_xml(cut).expect_err("truncated");
        assert!(e.reason.contains("truncated"), "{e}");
        let e = parse_un_xml("<html><body/></html>").expect_err("foreign");
        assert!(e.reason.contains("expected CONSOLIDATED_LIST"), "{e}");
        let bad = XML.replace("<DATAID>110404</DATAID>", "<DATAID>110404</DATAIDX>");
        let e = parse_un_xml(&bad).expect_err("mismatched");
        assert_eq!(e.line, 19, "{e}");
        assert!(parse_un_xml("").is_err());
        let no_id = XML.replace("<DATAID>6908555</DATAID>", "");
        assert!(
            parse_un_xml(&no_id)
                .expect_err("no id")
                .reason
                .contains("without DATAID")
        );
    }
}
