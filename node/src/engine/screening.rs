//! Sanctions screening in the engine: the loaded lists, the screen of every remittance's sender and recipient
//! before its authorization is used, and the operator's decisions on the remittances a hit holds.
//!
//! - **Lists** are parsed from OFAC's CSV files or the UN's XML ([`ListUpload::parse`], refused whole with file,
//!   line and reason), stored in `sanctions_lists` (one row per source, replaced whole) and indexed in memory. Every
//!   node serving the database screens against the stored lists: [`Engine::refresh_sanctions`] runs at start and
//!   every sweeper round, and rebuilds the index only when a list's digest changed.
//! - **Screening** ([`Engine::screen_send`]) runs before the write transaction that uses the quote. A hit puts the
//!   new remittance `on_hold` in that transaction instead of signing or enqueueing anything: no money is locked,
//!   so no refund after expiry can reach a held transfer. Every result, clear or hit, is a compliance event
//!   (`screened`, and `held` with the matched entries and scores), in the same transaction.
//! - **Decisions**: [`Engine::release_hold`] (back to `quoted`, then a fresh authorization: the node signs again
//!   for a custodial sender; a self-custody sender signs) and [`Engine::reject_hold`] (`cancelled`, cause
//!   `hold_rejected`), each an audited event naming the reviewer and the reason.

use std::path::Path;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::authorization;
use super::state::State;
use super::types::Remittance;
use super::views::*;
use super::{Engine, EngineError, Result, transition, transition_direct};
use crate::domain::sanctions::{self, Entry, Hit, ListError, ListSource, SanctionsList, Subject};
use crate::domain::{PayoutMethod, RemittanceId};
use crate::store::compliance::{self as events, NewComplianceEvent};
use crate::store::{now_ms, remittances, sanctions as lists, users};

/// Largest list file read from disk (the real SDN.CSV is about 4 MB, the UN XML about 2 MB).
pub const LIST_FILE_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Longest a reviewer's name or reason may be.
pub const DECISION_TEXT_MAX: usize = 500;
/// A held remittance is released only while this much of its lifetime is left beyond the escrow's shortest lock:
/// its deposit must still be accepted when mined.
pub const RELEASE_MARGIN_S: u64 = 600;

/// A list's files as read (the CLI) or uploaded (the operator API).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "format", rename_all = "kebab-case")]
pub enum ListUpload {
    /// OFAC's SDN list: the three CSV files' contents (no header row, null written `-0-`, joined on `ent_num`).
    OfacCsv {
        sdn_csv: String,
        alt_csv: String,
        add_csv: String,
        /// The list's publication date (YYYY-MM-DD); OFAC's CSV files carry none.
        #[serde(default)]
        list_date: Option<String>,
    },
    /// The UN Security Council consolidated list, XML (its `dateGenerated` is the list's date).
    UnXml { xml: String },
}

impl std::fmt::Debug for ListUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListUpload::OfacCsv {
                sdn_csv, list_date, ..
            } => f
                .debug_struct("OfacCsv")
                .field("sdn_csv_bytes", &sdn_csv.len())
                .field("list_date", list_date)
                .finish_non_exhaustive(),
            ListUpload::UnXml { xml } => f.debug_struct("UnXml").field("xml_bytes", &xml.len()).finish(),
        }
    }
}

/// A parsed list, ready to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedList {
    pub source: ListSource,
    pub list_date: Option<String>,
    pub entries: Vec<Entry>,
}

/// A list file that cannot be read from disk, or does not parse.
#[derive(Debug, thiserror::Error)]
pub enum ListFileError {
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is larger than {LIST_FILE_BYTES_MAX} bytes")]
    TooLarge { path: String },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    List(#[from] ListError),
}

/// The formats `remesa sanctions load --format` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    /// A directory with `SDN.CSV`, `ALT.CSV` and `ADD.CSV`.
    OfacCsv,
    /// One XML file.
    UnXml,
}

fn read_text(path: &Path) -> Result<String, ListFileError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| ListFileError::Io {
        path: shown.clone(),
        source,
    })?;
    if meta.len() > LIST_FILE_BYTES_MAX {
        return Err(ListFileError::TooLarge { path: shown });
    }
    let bytes = std::fs::read(path).map_err(|source| ListFileError::Io {
        path: shown.clone(),
        source,
    })?;
    // OFAC's files have been published in Windows-1252 as well as UTF-8: a byte that is not UTF-8 is read as
    // Latin-1 rather than refusing the list.
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => e.into_bytes().iter().map(|b| char::from(*b)).collect(),
    })
}

/// The file's modification date (UTC, YYYY-MM-DD).
fn modified_date(path: &Path) -> Option<String> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    let t = time::OffsetDateTime::from(modified);
    Some(format!(
        "{:04}-{:02}-{:02}",
        t.year(),
        u8::from(t.month()),
        t.day()
    ))
}

impl ListUpload {
    /// Reads a list from disk: `path` is OFAC's directory (files found whatever their case) or the UN's XML file.
    /// OFAC's list date is `list_date`, else the modification date of `SDN.CSV`.
    pub fn read(
        format: ListFormat,
        path: &Path,
        list_date: Option<String>,
    ) -> Result<ListUpload, ListFileError> {
        match format {
            ListFormat::OfacCsv => {
                if !path.is_dir() {
                    return Err(ListFileError::Invalid(format!(
                        "{} is not a directory holding SDN.CSV, ALT.CSV and ADD.CSV",
                        path.display()
                    )));
                }
                let find = |name: &str| -> Result<std::path::PathBuf, ListFileError> {
                    let exact = path.join(name);
                    if exact.is_file() {
                        return Ok(exact);
                    }
                    let lower = path.join(name.to_ascii_lowercase());
                    if lower.is_file() {
                        return Ok(lower);
                    }
                    Err(ListFileError::Invalid(format!(
                        "{} has no {name}",
                        path.display()
                    )))
                };
                let sdn = find("SDN.CSV")?;
                let (alt, add) = (find("ALT.CSV")?, find("ADD.CSV")?);
                Ok(ListUpload::OfacCsv {
                    list_date: list_date.or_else(|| modified_date(&sdn)),
                    sdn_csv: read_text(&sdn)?,
                    alt_csv: read_text(&alt)?,
                    add_csv: read_text(&add)?,
                })
            }
            ListFormat::UnXml => Ok(ListUpload::UnXml {
                xml: read_text(path)?,
            }),
        }
    }

    /// Parses the files: refused as a whole on the first bad row, with file, line and reason.
    pub fn parse(&self) -> Result<ParsedList, ListError> {
        match self {
            ListUpload::OfacCsv {
                sdn_csv,
                alt_csv,
                add_csv,
                list_date,
            } => {
                if let Some(d) = list_date {
                    check_date(d)?;
                }
                Ok(ParsedList {
                    source: ListSource::OfacSdn,
                    list_date: list_date.clone(),
                    entries: sanctions::parse_ofac(sdn_csv, alt_csv, add_csv)?,
                })
            }
            ListUpload::UnXml { xml } => {
                let (date, entries) = sanctions::parse_un_xml(xml)?;
                Ok(ParsedList {
                    source: ListSource::UnConsolidated,
                    // `dateGenerated` is a timestamp; its day is the list's date.
                    list_date: date.map(|d| d.chars().take(10).collect()),
                    entries,
                })
            }
        }
    }
}

/// `YYYY-MM-DD` → Unix seconds at its start (UTC).
fn date_unix_s(d: &str) -> Option<i64> {
    let format = time::format_description::parse_borrowed::<2>("[year]-[month]-[day]").ok()?;
    let date = time::Date::parse(d, &format).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp())
}

fn check_date(d: &str) -> Result<(), ListError> {
    date_unix_s(d).map(|_| ()).ok_or_else(|| ListError {
        file: "list_date".into(),
        line: 0,
        reason: format!("{d:?} is not a date (YYYY-MM-DD)"),
    })
}

pub fn source_name(s: ListSource) -> &'static str {
    match s {
        ListSource::OfacSdn => "ofac_sdn",
        ListSource::UnConsolidated => "un_consolidated",
    }
}

fn parse_source(s: &str) -> Option<ListSource> {
    [ListSource::OfacSdn, ListSource::UnConsolidated]
        .into_iter()
        .find(|l| source_name(*l) == s)
}

/// A loaded list, as `/readyz`, the metrics and the operator API show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ListMeta {
    /// `ofac_sdn` or `un_consolidated`.
    pub source: String,
    /// The list's own date (YYYY-MM-DD), when known.
    pub list_date: Option<String>,
    pub entries: u64,
    /// SHA-256 of the stored entries.
    pub sha256: String,
    pub loaded_at_unix_ms: i64,
    pub loaded_by: String,
}

impl From<lists::ListMetaRow> for ListMeta {
    fn from(r: lists::ListMetaRow) -> Self {
        Self {
            source: r.source,
            list_date: r.list_date,
            entries: u64::try_from(r.entry_count).unwrap_or(0),
            sha256: r.sha256,
            loaded_at_unix_ms: r.loaded_at_unix_ms,
            loaded_by: r.loaded_by,
        }
    }
}

/// The screening's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SanctionsStatus {
    /// `loaded`, `not_loaded` (sends are not screened) or `required_not_loaded` (sends are refused).
    pub state: String,
    /// Sends are refused while no list is loaded or the sender's name is unknown.
    pub required: bool,
    pub threshold_percent: u8,
    pub lists: Vec<ListMeta>,
}

/// Who a screened name belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    Sender,
    Recipient,
}

/// One hit of a screen: whose name, the listed entry and the score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PartyHit {
    pub party: Party,
    /// The name screened.
    pub name: String,
    /// `ofac_sdn` or `un_consolidated`.
    pub source: String,
    /// The list's id of the entry (`ent_num`, `DATAID`).
    pub entry_id: String,
    /// The listed name (primary or alias) that matched.
    pub matched_name: String,
    /// Similarity, 0 to 1.
    pub score: f64,
}

/// Who a sender is screened as.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SenderIdentity {
    pub name: Option<String>,
    /// From the customer's KYC date of birth.
    pub birth_year: Option<u16>,
    /// The country of the customer's phone (ISO 3166-1 alpha-2).
    pub country: Option<String>,
}

impl PartyHit {
    fn of(party: Party, name: &str, h: Hit) -> Self {
        Self {
            party,
            name: name.to_owned(),
            source: source_name(h.source).to_owned(),
            entry_id: h.entry_id,
            matched_name: h.matched_name,
            score: h.score,
        }
    }
}

/// The result of screening one send.
#[derive(Debug, Clone, PartialEq)]
pub struct Screened {
    pub hits: Vec<PartyHit>,
    /// Which lists were screened against (source and digest), for the record.
    pub lists: Vec<(String, String)>,
}

impl Screened {
    fn detail(&self) -> serde_json::Value {
        json!({
            "hits": self.hits,
            "lists": self.lists.iter().map(|(s, d)| json!({"source": s, "sha256": d})).collect::<Vec<_>>(),
        })
    }
}

#[derive(Debug, Default)]
struct Loaded {
    metas: Vec<ListMeta>,
    list: SanctionsList,
}

/// The lists in memory (shared by every clone of the engine).
#[derive(Debug, Default)]
pub(crate) struct Screening {
    loaded: RwLock<Arc<Loaded>>,
}

impl Screening {
    fn current(&self) -> Arc<Loaded> {
        // A poisoned lock only means a panic elsewhere while swapping an Arc: the Arc inside is whole.
        match self.loaded.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    fn swap(&self, new: Loaded) {
        let new = Arc::new(new);
        match self.loaded.write() {
            Ok(mut g) => *g = new,
            Err(p) => *p.into_inner() = new,
        }
    }
}

/// One held remittance in the operator's review queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HeldRemittance {
    pub remittance: Remittance,
    pub held_at_unix_ms: i64,
    /// The matched entries and scores.
    pub hits: Vec<PartyHit>,
}

/// An operator's decision on a held remittance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HoldDecision {
    /// Who decided (recorded in the compliance events).
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub reviewer: String,
    /// Why (recorded in the compliance events).
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub reason: String,
}

fn decision_text(what: &str, v: &str) -> Result<String> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > DECISION_TEXT_MAX || v.chars().any(char::is_control) {
        return Err(EngineError::Invalid(format!(
            "{what} must be 1 to {DECISION_TEXT_MAX} characters without control characters"
        )));
    }
    Ok(v.to_owned())
}

impl Engine {
    /// Stores a parsed list (replacing the source's previous one), records who loaded it, and screens with it from
    /// now on. The list's entries are stored as JSON, so a restart and every other node serving the database use
    /// the same list. The same entries and date as the list in force change nothing (no event).
    pub async fn load_sanctions_list(&self, list: ParsedList, loaded_by: &str) -> Result<ListMeta> {
        if list.entries.is_empty() {
            return Err(EngineError::Invalid("the list has no entries".into()));
        }
        if list.entries.len() > sanctions::ENTRIES_MAX {
            return Err(EngineError::Invalid(format!(
                "the list has {} entries; at most {} are loaded",
                list.entries.len(),
                sanctions::ENTRIES_MAX
            )));
        }
        let loaded_by = decision_text("loaded_by", loaded_by)?;
        let entries_json =
            serde_json::to_string(&list.entries).map_err(|e| EngineError::Internal(e.to_string()))?;
        let sha256 = hex::encode(Sha256::digest(entries_json.as_bytes()));
        let source = source_name(list.source);
        if let Some(same) = self
            .inner
            .screening
            .current()
            .metas
            .iter()
            .find(|m| m.source == source && m.sha256 == sha256 && m.list_date == list.list_date)
        {
            return Ok(same.clone());
        }
        let meta = lists::ListMetaRow {
            source: source.to_owned(),
            list_date: list.list_date.clone(),
            entry_count: i64::try_from(list.entries.len()).unwrap_or(i64::MAX),
            sha256,
            loaded_at_unix_ms: now_ms(),
            loaded_by,
        };
        let mut tx = self.db().begin().await?;
        lists::upsert(
            &mut *tx,
            &lists::NewListRow {
                meta: &meta,
                entries_json: &entries_json,
            },
        )
        .await?;
        events::insert(
            &mut *tx,
            &NewComplianceEvent {
                kind: "sanctions_list_loaded",
                subject: &meta.source,
                actor: &meta.loaded_by,
                reason: "list loaded",
                detail:
                    &json!({"list_date": meta.list_date, "entries": meta.entry_count, "sha256": meta.sha256})
                        .to_string(),
                at_unix_ms: meta.loaded_at_unix_ms,
            },
        )
        .await?;
        tx.commit().await?;
        tracing::info!(target: "compliance", source = %meta.source, entries = meta.entry_count,
            list_date = ?meta.list_date, "sanctions list loaded");
        self.refresh_sanctions().await?;
        Ok(meta.into())
    }

    /// Brings the in-memory lists up to the stored ones; rebuilds the index only when a digest changed. Returns
    /// whether it did.
    pub async fn refresh_sanctions(&self) -> Result<bool> {
        let stored: Vec<ListMeta> = lists::metas(&self.db().pool)
            .await?
            .into_iter()
            .map(ListMeta::from)
            .collect();
        let current = self.inner.screening.current();
        let digests = |m: &[ListMeta]| -> Vec<(String, String)> {
            m.iter().map(|l| (l.source.clone(), l.sha256.clone())).collect()
        };
        if digests(&stored) == digests(&current.metas) {
            return Ok(false);
        }
        let mut entries = Vec::new();
        let mut metas = Vec::new();
        for m in stored {
            let Some((sha, text)) = lists::entries_json(&self.db().pool, &m.source).await? else {
                continue; // replaced meanwhile: the next round reads it
            };
            let parsed: Vec<Entry> = serde_json::from_str(&text).map_err(|e| {
                crate::store::StoreError::Corrupt(format!("sanctions list {}: {e}", m.source))
            })?;
            if parse_source(&m.source).is_none() {
                return Err(crate::store::StoreError::Corrupt(format!(
                    "sanctions list source {:?}",
                    m.source
                ))
                .into());
            }
            entries.extend(parsed);
            metas.push(ListMeta { sha256: sha, ..m });
        }
        // Indexing 20,000 entries takes tens of milliseconds of CPU: off the async workers.
        let list = tokio::task::spawn_blocking(move || SanctionsList::new(entries))
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        for m in &metas {
            metrics::gauge!("remesa_sanctions_list_entries", "source" => m.source.clone())
                .set(u32::try_from(m.entries).unwrap_or(u32::MAX));
            // The list's own date as Unix seconds (an alert can watch its age).
            if let Some(day) = m.list_date.as_deref().and_then(date_unix_s) {
                metrics::gauge!("remesa_sanctions_list_date_seconds", "source" => m.source.clone())
                    .set(u32::try_from(day).unwrap_or(0));
            }
        }
        self.inner.screening.swap(Loaded { metas, list });
        Ok(true)
    }

    /// What is loaded, for `/readyz` and the operator.
    pub fn sanctions_status(&self) -> SanctionsStatus {
        let current = self.inner.screening.current();
        let required = self.config().sanctions_required;
        let state = match (current.metas.is_empty(), required) {
            (false, _) => "loaded",
            (true, false) => "not_loaded",
            (true, true) => "required_not_loaded",
        };
        SanctionsStatus {
            state: state.into(),
            required,
            threshold_percent: self.config().sanctions_threshold_percent,
            lists: current.metas.clone(),
        }
    }

    fn threshold(&self) -> f64 {
        sanctions::threshold_from_percent(self.config().sanctions_threshold_percent)
    }

    /// Screens one name (the operator's look-up; a KYC submission): the entries at or above the threshold, best
    /// first. `country`: ISO 3166-1 alpha-2 or a name.
    pub fn screen_name(&self, name: &str, birth_year: Option<u16>, country: Option<&str>) -> Vec<Hit> {
        self.inner.screening.current().list.screen(
            Subject {
                name,
                birth_year,
                country,
            },
            self.threshold(),
        )
    }

    /// Screens a send's sender and recipient. Refused ([`EngineError::Unavailable`]) while screening is required
    /// and no list is loaded; refused ([`EngineError::SenderNameRequired`]) when it is required and the sender's
    /// name is unknown.
    /// `recipient_country`: the recipient's (their phone's) ISO 3166-1 alpha-2 code, when known.
    pub fn screen_send(
        &self,
        sender: &SenderIdentity,
        recipient_name: &str,
        recipient_country: Option<&str>,
    ) -> Result<Screened> {
        let sender_name = sender.name.as_deref();
        let current = self.inner.screening.current();
        let required = self.config().sanctions_required;
        if required && current.metas.is_empty() {
            return Err(EngineError::Unavailable(
                "no sanctions list is loaded, and screening is required: sends wait until the operator loads one"
                    .into(),
            ));
        }
        let sender_name = sender_name.map(str::trim).filter(|n| !n.is_empty());
        if required && sender_name.is_none() {
            return Err(EngineError::SenderNameRequired);
        }
        let started = std::time::Instant::now();
        let threshold = self.threshold();
        let mut hits = Vec::new();
        for (party, name, birth_year, country) in [
            (
                Party::Sender,
                sender_name,
                sender.birth_year,
                sender.country.as_deref(),
            ),
            (Party::Recipient, Some(recipient_name), None, recipient_country),
        ] {
            let Some(name) = name.filter(|n| !n.trim().is_empty()) else {
                continue;
            };
            for h in current.list.screen(
                Subject {
                    name,
                    birth_year,
                    country,
                },
                threshold,
            ) {
                hits.push(PartyHit::of(party, name, h));
            }
        }
        metrics::histogram!("remesa_screening_seconds").record(started.elapsed());
        metrics::counter!("remesa_screenings_total", "result" => if hits.is_empty() { "clear" } else { "hit" })
            .increment(1);
        Ok(Screened {
            hits,
            lists: current
                .metas
                .iter()
                .map(|m| (m.source.clone(), m.sha256.clone()))
                .collect(),
        })
    }

    /// Who a sender is screened as: the request's name, else the full name (and year of birth) the customer gave for
    /// KYC, else the registered user's name (the chat profile's, or the one the chat asked for).
    pub(super) async fn sender_identity(&self, sender: &super::types::SenderRef) -> Result<SenderIdentity> {
        use crate::domain::KycField;
        let user = match sender {
            super::types::SenderRef::User { user_id } => users::by_id(&self.db().pool, user_id).await?,
            super::types::SenderRef::Address { name: Some(n), .. } => {
                return Ok(SenderIdentity {
                    name: Some(text("sender name", n, NAME_LEN_MAX)?),
                    ..SenderIdentity::default()
                });
            }
            super::types::SenderRef::Address { address, name: None } => {
                users::by_address(&self.db().pool, &address.trim().to_ascii_lowercase()).await?
            }
        };
        let Some(user) = user else {
            return Ok(SenderIdentity::default());
        };
        // An unreadable stored row is an error, never an unscreened name.
        let kyc = match crate::store::customers::get(&self.db().pool, &user.id).await? {
            Some(r) => r.fields()?,
            None => std::collections::BTreeMap::new(),
        };
        Ok(SenderIdentity {
            country: user
                .phone
                .as_deref()
                .and_then(crate::domain::Region::of_e164)
                .map(|r| r.alpha2().to_owned()),
            name: kyc.get(&KycField::FullName).cloned().or(user.display_name),
            birth_year: kyc
                .get(&KycField::BirthDate)
                .and_then(|d| d.get(..4))
                .and_then(|y| y.parse().ok()),
        })
    }

    /// Screens a customer's name at registration (or when it is set) and records the result (`screened`, subject
    /// the user id). A hit flags the customer for the review queue's attention in the record; each send is
    /// screened again, so a listed sender's sends are held.
    pub(super) async fn screen_customer(
        &self,
        tx: &mut crate::store::Tx,
        user_id: &str,
        name: &str,
    ) -> Result<()> {
        let current = self.inner.screening.current();
        if current.metas.is_empty() {
            return Ok(());
        }
        let hits: Vec<PartyHit> = current
            .list
            .screen(
                Subject {
                    name,
                    ..Subject::default()
                },
                self.threshold(),
            )
            .into_iter()
            .map(|h| PartyHit::of(Party::Sender, name, h))
            .collect();
        let screened = Screened {
            lists: current
                .metas
                .iter()
                .map(|m| (m.source.clone(), m.sha256.clone()))
                .collect(),
            hits,
        };
        events::insert(
            &mut **tx,
            &NewComplianceEvent {
                kind: "customer_screened",
                subject: user_id,
                actor: "engine",
                reason: if screened.hits.is_empty() { "clear" } else { "hit" },
                detail: &screened.detail().to_string(),
                at_unix_ms: now_ms(),
            },
        )
        .await?;
        if !screened.hits.is_empty() {
            tracing::warn!(target: "compliance", user = user_id, hits = screened.hits.len(),
                "a customer's name matches a sanctions list: their sends will be held");
        }
        Ok(())
    }

    /// Records a send's screen in its creation transaction; on a hit, moves it `quoted` → `on_hold` (nothing
    /// signed, nothing queued). Returns whether it is held.
    pub(super) async fn apply_screen(
        &self,
        tx: &mut crate::store::Tx,
        id: &str,
        screened: &Screened,
        direct: bool,
    ) -> Result<bool> {
        if screened.lists.is_empty() {
            // Nothing to screen against (screening not required: `/readyz` and the start-up log say so).
            return Ok(false);
        }
        let now = now_ms();
        let held = !screened.hits.is_empty();
        let detail = screened.detail().to_string();
        events::insert(
            &mut **tx,
            &NewComplianceEvent {
                kind: "screened",
                subject: id,
                actor: "engine",
                reason: if held { "hit" } else { "clear" },
                detail: &detail,
                at_unix_ms: now,
            },
        )
        .await?;
        if !held {
            return Ok(false);
        }
        events::insert(
            &mut **tx,
            &NewComplianceEvent {
                kind: "held",
                subject: id,
                actor: "engine",
                reason: "sanctions screening hit",
                detail: &detail,
                at_unix_ms: now,
            },
        )
        .await?;
        // The transition (read by chat and the event feed) says only that it is under review.
        let cause_detail = json!({"reason": "compliance review"});
        transition_on(tx, id, direct, State::Quoted, State::OnHold, "held", cause_detail).await?;
        tracing::info!(target: "compliance", remittance = id, hits = screened.hits.len(), "remittance held for review");
        metrics::counter!("remesa_remittances_held_total").increment(1);
        Ok(true)
    }

    /// The review queue: held remittances, oldest first, with their hits.
    pub async fn held_remittances(&self, limit: u32) -> Result<Vec<HeldRemittance>> {
        let limit = limit.clamp(1, self.config().page_limit_max);
        let rows =
            remittances::in_state_oldest_first(&self.db().pool, State::OnHold.as_str(), i64::from(limit))
                .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let r = RemRow::try_from(row)?;
            let held = events::latest(&self.db().pool, &r.id, "held").await?;
            let (held_at_unix_ms, hits) = match held {
                Some(e) => {
                    let v: serde_json::Value = serde_json::from_str(&e.detail).unwrap_or_default();
                    let hits = serde_json::from_value(v["hits"].clone()).unwrap_or_default();
                    (e.at_unix_ms, hits)
                }
                None => (r.created_at_unix_ms, Vec::new()),
            };
            out.push(HeldRemittance {
                remittance: self.to_api(&r),
                held_at_unix_ms,
                hits,
            });
        }
        Ok(out)
    }

    /// The operator releases a held remittance: `on_hold` → `quoted`, and for a custodial sender the node signs a
    /// fresh authorization and queues the deposit (or P2P transfer) at once. Refused when too little of its
    /// lifetime is left for the escrow to accept the deposit ([`RELEASE_MARGIN_S`]); reject it then.
    pub async fn release_hold(&self, id: &RemittanceId, d: &HoldDecision) -> Result<Remittance> {
        let (mut tx, r, reviewer, reason) = self.open_hold(id, d).await?;
        let chain_info = self.chain_required()?.clone();
        let now_s = u64::try_from(now_ms() / 1000).unwrap_or(0);
        let direct = r.payout_method == PayoutMethod::RemesaWallet;
        let needed = now_s + RELEASE_MARGIN_S + if direct { 0 } else { chain_info.lock_min_s };
        if r.expiry_unix_s < needed {
            return Err(EngineError::Conflict(
                "too little of this remittance's lifetime is left to lock its funds: reject it, and the sender can \
                 send again"
                    .into(),
            ));
        }
        move_held(&mut tx, &r, State::Quoted, "hold_released", &reviewer).await?;
        record_decision(&mut tx, &r.id, "hold_released", &reviewer, &reason).await?;
        if r.custodial {
            let user_id = r
                .sender_user_id
                .as_deref()
                .ok_or_else(|| EngineError::Internal("custodial remittance without a user".into()))?;
            let u = users::custody(&mut *tx, user_id)
                .await?
                .ok_or(EngineError::NotFound("user"))?;
            let signer = self
                .signer_of(&u)?
                .ok_or_else(|| EngineError::Internal("custodial remittance of a self-custody user".into()))?;
            let from = parse_address("sender address", &r.sender_address)?;
            // The sender's balance is checked again: what it held for this remittance may have been spent.
            self.ensure_available(&mut tx, from, 0).await?;
            let id_b = r.remittance_b256()?;
            if direct {
                let to = parse_address(
                    "recipient address",
                    r.recipient_address.as_deref().unwrap_or_default(),
                )?;
                let value = alloy::primitives::U256::from(
                    u64::try_from(r.total_base).map_err(|_| EngineError::Internal("total".into()))?,
                );
                let a = super::p2p::P2pAuthorization {
                    id: &r.id,
                    id_b,
                    signer: &signer,
                    from,
                    to,
                    value,
                    expiry_unix_s: r.expiry_unix_s,
                };
                self.authorize_p2p(&mut tx, &a, &chain_info).await?;
            } else {
                let terms = r.terms()?;
                let auth_terms = self.auth_terms(&chain_info, &terms, id_b, now_ms());
                let auth = authorization::sign(&signer, &chain_info.domain, &auth_terms)
                    .map_err(|e| EngineError::Internal(e.to_string()))?;
                self.store_authorization_and_enqueue(
                    &mut tx,
                    &r.id,
                    id_b,
                    terms,
                    auth,
                    "authorized",
                    json!({"by": "custodial key"}),
                )
                .await?;
            }
        }
        self.close_hold(tx, &r.id, &reviewer, "hold released").await
    }

    /// The operator rejects a held remittance: `on_hold` → `cancelled` (cause `hold_rejected`). Nothing was
    /// locked, so nothing is refunded; the sender is told in neutral words.
    pub async fn reject_hold(&self, id: &RemittanceId, d: &HoldDecision) -> Result<Remittance> {
        let (mut tx, r, reviewer, reason) = self.open_hold(id, d).await?;
        move_held(&mut tx, &r, State::Cancelled, "hold_rejected", &reviewer).await?;
        record_decision(&mut tx, &r.id, "hold_rejected", &reviewer, &reason).await?;
        self.close_hold(tx, &r.id, &reviewer, "hold rejected").await
    }

    /// A decision's checked texts, its write transaction and the held remittance (row-locked).
    async fn open_hold(
        &self,
        id: &RemittanceId,
        d: &HoldDecision,
    ) -> Result<(crate::store::Tx, RemRow, String, String)> {
        let (reviewer, reason) = (
            decision_text("reviewer", &d.reviewer)?,
            decision_text("reason", &d.reason)?,
        );
        let mut tx = self.write_tx().await?;
        let r = load_for_update(&mut tx, self.db().dialect, &id.to_string())
            .await?
            .ok_or(EngineError::NotFound("remittance"))?;
        if r.state != State::OnHold {
            return Err(EngineError::Conflict(format!(
                "remittance is {}, not on hold",
                r.state
            )));
        }
        Ok((tx, r, reviewer, reason))
    }

    async fn close_hold(
        &self,
        mut tx: crate::store::Tx,
        id: &str,
        reviewer: &str,
        what: &str,
    ) -> Result<Remittance> {
        let row = load(&mut tx, id)
            .await?
            .ok_or(EngineError::NotFound("remittance"))?;
        tx.commit().await?;
        tracing::info!(target: "audit", remittance = %id, reviewer = %reviewer, "{what}");
        Ok(self.to_api(&row))
    }
}

/// A held remittance leaves `on_hold` along its own machine.
async fn move_held(
    tx: &mut crate::store::Tx,
    r: &RemRow,
    to: State,
    cause: &str,
    reviewer: &str,
) -> Result<()> {
    let direct = r.payout_method == PayoutMethod::RemesaWallet;
    transition_on(
        tx,
        &r.id,
        direct,
        State::OnHold,
        to,
        cause,
        json!({"by": reviewer}),
    )
    .await
}

/// A transition on the escrow's machine, or on a P2P transfer's (`direct`).
async fn transition_on(
    tx: &mut crate::store::Tx,
    id: &str,
    direct: bool,
    from: State,
    to: State,
    cause: &str,
    detail: serde_json::Value,
) -> Result<()> {
    if direct {
        transition_direct(tx, id, from, to, cause, detail, false).await?;
    } else {
        transition(tx, id, from, to, cause, detail, false).await?;
    }
    Ok(())
}

async fn record_decision(
    tx: &mut crate::store::Tx,
    id: &str,
    kind: &str,
    reviewer: &str,
    reason: &str,
) -> Result<()> {
    events::insert(
        &mut **tx,
        &NewComplianceEvent {
            kind,
            subject: id,
            actor: reviewer,
            reason,
            detail: "{}",
            at_unix_ms: now_ms(),
        },
    )
    .await?;
    Ok(())
}
