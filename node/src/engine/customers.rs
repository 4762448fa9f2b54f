//! Customers and KYC tiers (SEP-12 statuses). Tier 0 is a phone number only (every user starts there); tier 1 needs
//! the fields the operator configures (`EngineConfig::kyc_tier1_fields`) and is granted at once when they are
//! complete and the full name, with the year of birth, screens clear (a hit goes to an operator); tier 2 needs a
//! document reference as well, and always an operator's approval. The tier in force is `users.kyc_tier`, which the
//! sending limits read in the transaction that uses a quote. Every submission and decision is a compliance event
//! (`kyc_submitted`, `kyc_accepted`, `kyc_rejected`, `kyc_needs_info`, `tier_changed`) naming who and why.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{Engine, EngineError, Result};
use crate::config::compliance::KYC_TIER_MAX;
use crate::domain::{KycField, KycStatus};
use crate::store::compliance::{self as events, NewComplianceEvent};
use crate::store::customers::{self, KycRow};
use crate::store::now_ms;

/// A customer as the operator (and the customer's own chat) sees them. `Debug` shows no personal data.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Customer {
    pub user_id: String,
    /// The tier in force (0 to 2).
    pub tier: u8,
    /// The status of the latest request for a higher tier (`accepted` when there is none).
    pub status: KycStatus,
    /// The tier asked for, while a request is open or after it was decided.
    pub requested_tier: Option<u8>,
    /// The fields given, parsed (personal data: the operator API only).
    pub fields: BTreeMap<KycField, String>,
    /// What the requested tier (else the next one) still needs.
    pub missing: Vec<KycField>,
    /// The operator's reason, or what is missing.
    pub note: Option<String>,
    pub updated_at_unix_ms: Option<i64>,
}

impl std::fmt::Debug for Customer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Customer")
            .field("user_id", &self.user_id)
            .field("tier", &self.tier)
            .field("status", &self.status)
            .field("requested_tier", &self.requested_tier)
            .field("missing", &self.missing)
            .finish_non_exhaustive()
    }
}

/// Fields given for a tier (values as typed; each is parsed).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"tier": 1, "fields": {"full_name": "Maria Lopez", "birth_date": "1990-04-25",
    "address": "4a Calle 5-20, Zona 1, Guatemala", "id_type": "national_id", "id_number": "2456 78901 0101"}}))]
pub struct KycSubmission {
    /// The tier asked for: 1 or 2.
    #[schema(minimum = 1, maximum = 2)]
    pub tier: u8,
    pub fields: BTreeMap<KycField, String>,
}

impl std::fmt::Debug for KycSubmission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KycSubmission")
            .field("tier", &self.tier)
            .field("fields", &self.fields.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// What the operator decides on a request under review.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KycAction {
    /// Grant the tier asked for.
    Approve,
    /// Refuse it (the tier in force stays).
    Reject,
    /// Ask for `fields` again (they are cleared).
    RequestInfo,
}

/// An operator's decision, with who and why (recorded).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KycDecision {
    pub action: KycAction,
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub reviewer: String,
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub reason: String,
    /// For `request_info`: the fields to give again.
    #[serde(default)]
    pub fields: Vec<KycField>,
}

const NOTE_MAX: usize = 500;

fn checked_text(what: &str, v: &str) -> Result<String> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > NOTE_MAX || v.chars().any(char::is_control) {
        return Err(EngineError::Invalid(format!(
            "{what} must be 1 to {NOTE_MAX} characters without control characters"
        )));
    }
    Ok(v.to_owned())
}

fn today() -> time::Date {
    time::OffsetDateTime::from_unix_timestamp(now_ms() / 1000)
        .map(|t| t.date())
        .unwrap_or(time::Date::MIN)
}

impl Engine {
    /// The fields `tier` needs: none for 0; the configured ones for 1; those and a document reference for 2.
    pub fn kyc_required(&self, tier: u8) -> Vec<KycField> {
        let mut f = Vec::new();
        if tier >= 1 {
            f.extend(self.config().kyc_tier1_fields.iter().copied());
        }
        if tier >= 2 && !f.contains(&KycField::DocumentRef) {
            f.push(KycField::DocumentRef);
        }
        f
    }

    fn customer_view(&self, user_id: &str, tier: u8, row: Option<KycRow>) -> Result<Customer> {
        let Some(row) = row else {
            return Ok(Customer {
                user_id: user_id.to_owned(),
                tier,
                status: KycStatus::Accepted,
                requested_tier: None,
                fields: BTreeMap::new(),
                missing: self.kyc_required(tier.saturating_add(1).min(KYC_TIER_MAX)),
                note: None,
                updated_at_unix_ms: None,
            });
        };
        let status = KycStatus::parse(&row.status)
            .ok_or_else(|| crate::store::StoreError::Corrupt(format!("kyc status {:?}", row.status)))?;
        let fields = row.fields()?;
        let requested = u8::try_from(row.requested_tier).unwrap_or(KYC_TIER_MAX);
        let target = if requested > tier {
            requested
        } else {
            tier.saturating_add(1).min(KYC_TIER_MAX)
        };
        let missing = self
            .kyc_required(target)
            .into_iter()
            .filter(|f| !fields.contains_key(f))
            .collect();
        Ok(Customer {
            user_id: user_id.to_owned(),
            tier,
            status,
            requested_tier: Some(requested),
            fields,
            missing,
            note: row.note,
            updated_at_unix_ms: Some(row.updated_at_unix_ms),
        })
    }

    /// A customer's tier, status and fields.
    pub async fn customer(&self, user_id: &str) -> Result<Customer> {
        let tier = customers::tier(&self.db().pool, user_id)
            .await?
            .ok_or(EngineError::NotFound("user"))?;
        let row = customers::get(&self.db().pool, user_id).await?;
        self.customer_view(user_id, u8::try_from(tier).unwrap_or(0), row)
    }

    /// Gives fields for a higher tier (the chat collects them step by step; the operator may enter them). Each is
    /// parsed (a bad one is refused, naming it). Complete tier-1 fields whose name screens clear grant tier 1 at
    /// once; a screening hit, and every tier-2 request, wait for an operator (`processing`); incomplete ones are
    /// `needs_info` with what is missing.
    pub async fn submit_kyc(&self, user_id: &str, sub: KycSubmission, actor: &str) -> Result<Customer> {
        let actor = checked_text("actor", actor)?;
        if sub.tier == 0 || sub.tier > KYC_TIER_MAX {
            return Err(EngineError::Invalid(format!("tier must be 1 to {KYC_TIER_MAX}")));
        }
        let today = today();
        let mut parsed = BTreeMap::new();
        for (field, value) in &sub.fields {
            let v = field
                .normalize(value, today)
                .map_err(|e| EngineError::Invalid(e.to_string()))?;
            parsed.insert(*field, v);
        }
        let mut tx = self.write_tx().await?;
        let tier = customers::tier(&mut *tx, user_id)
            .await?
            .ok_or(EngineError::NotFound("user"))?;
        let tier = u8::try_from(tier).unwrap_or(0);
        if sub.tier <= tier {
            return Err(EngineError::Conflict(format!(
                "the customer is already tier {tier}"
            )));
        }
        let existing = customers::get(&mut *tx, user_id).await?;
        if let Some(r) = &existing
            && r.status == KycStatus::Processing.as_str()
        {
            return Err(EngineError::Conflict(
                "the customer's details are being reviewed".into(),
            ));
        }
        let mut fields = match &existing {
            Some(r) => r.fields()?,
            None => BTreeMap::new(),
        };
        fields.extend(parsed);
        let missing: Vec<KycField> = self
            .kyc_required(sub.tier)
            .into_iter()
            .filter(|f| !fields.contains_key(f))
            .collect();
        let now = now_ms();
        let (status, note, reason, detail) = if !missing.is_empty() {
            let names: Vec<&str> = missing.iter().map(|f| f.as_str()).collect();
            (
                KycStatus::NeedsInfo,
                Some(format!("missing: {}", names.join(", "))),
                "incomplete",
                json!({"tier": sub.tier, "missing": names}),
            )
        } else if sub.tier == 1 {
            let name = fields.get(&KycField::FullName).cloned().unwrap_or_default();
            let birth_year = fields
                .get(&KycField::BirthDate)
                .and_then(|d| d.get(..4))
                .and_then(|y| y.parse::<u16>().ok());
            let country = crate::store::users::by_id(&mut *tx, user_id)
                .await?
                .and_then(|u| u.phone)
                .as_deref()
                .and_then(crate::domain::Region::of_e164)
                .map(|r| r.alpha2().to_owned());
            let hits = self.screen_name(&name, birth_year, country.as_deref());
            if hits.is_empty() {
                (
                    KycStatus::Accepted,
                    None,
                    "tier 1 fields complete; the name screens clear",
                    json!({"tier": 1}),
                )
            } else {
                let hits: Vec<_> = hits
                    .iter()
                    .map(|h| {
                        json!({"source": super::screening::source_name(h.source), "entry_id": h.entry_id,
                        "matched_name": h.matched_name, "score": h.score})
                    })
                    .collect();
                (
                    KycStatus::Processing,
                    None,
                    "the name matches a sanctions list: an operator reviews it",
                    json!({"tier": 1, "hits": hits}),
                )
            }
        } else {
            (
                KycStatus::Processing,
                None,
                "tier 2 waits for an operator's approval of the document",
                json!({"tier": sub.tier}),
            )
        };
        let fields_json = serde_json::to_string(&fields).map_err(|e| EngineError::Internal(e.to_string()))?;
        customers::upsert(
            &mut *tx,
            &KycRow {
                user_id: user_id.to_owned(),
                requested_tier: i64::from(sub.tier),
                status: status.as_str().to_owned(),
                fields: fields_json,
                note,
                updated_at_unix_ms: now,
            },
        )
        .await?;
        let kind = if status == KycStatus::Accepted {
            "kyc_accepted"
        } else {
            "kyc_submitted"
        };
        record(&mut tx, kind, user_id, &actor, reason, &detail, now).await?;
        if status == KycStatus::Accepted {
            customers::set_tier(&mut *tx, user_id, i64::from(sub.tier)).await?;
            record(
                &mut tx,
                "tier_changed",
                user_id,
                "engine",
                reason,
                &json!({"from": tier, "to": sub.tier}),
                now,
            )
            .await?;
        }
        let row = customers::get(&mut *tx, user_id).await?;
        let new_tier = if status == KycStatus::Accepted {
            sub.tier
        } else {
            tier
        };
        let view = self.customer_view(user_id, new_tier, row)?;
        tx.commit().await?;
        tracing::info!(target: "compliance", user = user_id, tier = sub.tier, status = status.as_str(), "kyc submitted");
        Ok(view)
    }

    /// The KYC review queue: requests waiting for an operator (`processing`), oldest first.
    pub async fn kyc_review_queue(&self, limit: u32) -> Result<Vec<Customer>> {
        let limit = limit.clamp(1, self.config().page_limit_max);
        let rows =
            customers::in_status(&self.db().pool, KycStatus::Processing.as_str(), i64::from(limit)).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let tier = customers::tier(&self.db().pool, &row.user_id).await?.unwrap_or(0);
            let user_id = row.user_id.clone();
            out.push(self.customer_view(&user_id, u8::try_from(tier).unwrap_or(0), Some(row))?);
        }
        Ok(out)
    }

    /// The operator's decision on a request under review (`processing`; a rejection also from `needs_info`).
    pub async fn decide_kyc(&self, user_id: &str, d: &KycDecision) -> Result<Customer> {
        let (reviewer, reason) = (
            checked_text("reviewer", &d.reviewer)?,
            checked_text("reason", &d.reason)?,
        );
        let mut tx = self.write_tx().await?;
        let tier = customers::tier(&mut *tx, user_id)
            .await?
            .ok_or(EngineError::NotFound("user"))?;
        let mut row = customers::get(&mut *tx, user_id)
            .await?
            .ok_or(EngineError::NotFound("KYC request"))?;
        let open = match d.action {
            KycAction::Reject => ["processing", "needs_info"].contains(&row.status.as_str()),
            KycAction::Approve | KycAction::RequestInfo => row.status == "processing",
        };
        if !open {
            return Err(EngineError::Conflict(format!(
                "the request is {}, not waiting for a decision",
                row.status
            )));
        }
        let now = now_ms();
        let mut fields = row.fields()?;
        let mut new_tier = tier;
        let kind = match d.action {
            KycAction::Approve => {
                let requested = u8::try_from(row.requested_tier).unwrap_or(0);
                if let Some(f) = self
                    .kyc_required(requested)
                    .into_iter()
                    .find(|f| !fields.contains_key(f))
                {
                    return Err(EngineError::Conflict(format!("the request has no {f}")));
                }
                new_tier = row.requested_tier;
                row.status = KycStatus::Accepted.as_str().to_owned();
                row.note = Some(reason.clone());
                "kyc_accepted"
            }
            KycAction::Reject => {
                row.status = KycStatus::Rejected.as_str().to_owned();
                row.note = Some(reason.clone());
                "kyc_rejected"
            }
            KycAction::RequestInfo => {
                if d.fields.is_empty() {
                    return Err(EngineError::Invalid(
                        "request_info needs the fields to ask for".into(),
                    ));
                }
                for f in &d.fields {
                    fields.remove(f);
                }
                row.status = KycStatus::NeedsInfo.as_str().to_owned();
                row.note = Some(reason.clone());
                "kyc_needs_info"
            }
        };
        row.fields = serde_json::to_string(&fields).map_err(|e| EngineError::Internal(e.to_string()))?;
        row.updated_at_unix_ms = now;
        customers::upsert(&mut *tx, &row).await?;
        let names: Vec<&str> = d.fields.iter().map(|f| f.as_str()).collect();
        record(
            &mut tx,
            kind,
            user_id,
            &reviewer,
            &reason,
            &json!({"tier": row.requested_tier, "fields": names, "by": "operator"}),
            now,
        )
        .await?;
        if new_tier != tier {
            customers::set_tier(&mut *tx, user_id, new_tier).await?;
            record(
                &mut tx,
                "tier_changed",
                user_id,
                &reviewer,
                &reason,
                &json!({"from": tier, "to": new_tier}),
                now,
            )
            .await?;
        }
        let view = self.customer_view(user_id, u8::try_from(new_tier).unwrap_or(0), Some(row))?;
        tx.commit().await?;
        tracing::info!(target: "audit", user = user_id, reviewer = %reviewer, action = ?d.action, "kyc decision");
        Ok(view)
    }
}

/// An operator's KYC decision the customer is to be told about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KycNotice {
    /// The compliance event's id (a notification's dedupe key).
    pub event_id: String,
    pub at_unix_ms: i64,
    pub user_id: String,
    /// `accepted`, `rejected` or `needs_info`.
    pub status: KycStatus,
    /// The tier asked for (granted when accepted).
    pub tier: u8,
    /// For `needs_info`: what to give again.
    pub fields: Vec<KycField>,
}

impl Engine {
    /// Operators' KYC decisions at or after `since_unix_ms`, oldest first, from at most `limit` events read (the
    /// chat tells the customers; a customer's own submissions are answered in the conversation), and where the next
    /// read starts: past the last event read, or at its millisecond when the page was full (events of one
    /// millisecond may continue; the chat's dedupe keys make a second read harmless).
    pub async fn kyc_notices_since(&self, since_unix_ms: i64, limit: u32) -> Result<(Vec<KycNotice>, i64)> {
        let limit = limit.clamp(1, 1_000);
        let rows = events::of_kinds_since(
            &self.db().pool,
            &["kyc_accepted", "kyc_rejected", "kyc_needs_info"],
            since_unix_ms,
            i64::from(limit),
        )
        .await?;
        let next = match rows.last() {
            Some(last) if rows.len() == usize::try_from(limit).unwrap_or(usize::MAX) => last.at_unix_ms,
            Some(last) => last.at_unix_ms.saturating_add(1),
            None => since_unix_ms,
        };
        let mut out = Vec::new();
        for r in rows {
            let detail: serde_json::Value = serde_json::from_str(&r.detail).unwrap_or_default();
            if detail["by"] != "operator" {
                continue;
            }
            let status = match r.kind.as_str() {
                "kyc_accepted" => KycStatus::Accepted,
                "kyc_rejected" => KycStatus::Rejected,
                _ => KycStatus::NeedsInfo,
            };
            let fields = detail["fields"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|f| f.as_str().and_then(KycField::parse))
                        .collect()
                })
                .unwrap_or_default();
            out.push(KycNotice {
                event_id: r.id,
                at_unix_ms: r.at_unix_ms,
                user_id: r.subject,
                status,
                tier: detail["tier"]
                    .as_u64()
                    .and_then(|t| u8::try_from(t).ok())
                    .unwrap_or(0),
                fields,
            });
        }
        Ok((out, next))
    }
}

async fn record(
    tx: &mut crate::store::Tx,
    kind: &str,
    subject: &str,
    actor: &str,
    reason: &str,
    detail: &serde_json::Value,
    at_unix_ms: i64,
) -> Result<()> {
    events::insert(
        &mut **tx,
        &NewComplianceEvent {
            kind,
            subject,
            actor,
            reason,
            detail: &detail.to_string(),
            at_unix_ms,
        },
    )
    .await?;
    Ok(())
}
