//! What a partner may read: its payouts (remittances assigned to it, from assignment on) and its settlements.
//! Read-only queries on the engine's tables (`store::remittances`, `store::settlements`); every query is scoped to one partner, so
//! another partner's payout is simply not found (404), never forbidden (403), and its existence is not revealed.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::store::{PartnerDb, StoreError};
use crate::store::remittances::{self, PayoutRow};
use crate::store::settlements::{self, SettlementRow};

/// States in which a partner sees a payout (it was assigned to it at some point).
pub const VISIBLE_STATES: [&str; 6] = [
    "payout_assigned",
    "payout_accepted",
    "paid",
    "settled",
    "refund_pending",
    "refunded",
];

/// A payout as its partner sees it. The recipient's pickup code is never part of it: the recipient brings it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0x5f0c8e6c0d7b0f3ad2f0a3d1c0b6e2a9f4e1d8c7b6a5f4e3d2c1b0a9f8e7d6c5",
    "status": "payout_assigned", "country": "GT", "currency": "GTQ", "payout_method": "cash_pickup",
    "payout_amount": "765.43", "payout_amount_minor": 76543,
    "recipient_name": "Maria Lopez", "recipient_phone": "+50255550101", "recipient_account": null,
    "pay_before_unix_s": 1_790_086_400_u64, "payout_reference": null, "failure_reason": null,
    "release_tx_hash": null, "created_at_unix_ms": 1_790_000_000_000_i64, "updated_at_unix_ms": 1_790_000_030_000_i64
}))]
pub struct PartnerPayout {
    /// The remittance id (escrow terms hash).
    pub id: String,
    /// `payout_assigned` (to accept), `payout_accepted` (to pay), `paid` (release queued), `settled` (released to
    /// you on chain), `refund_pending` / `refunded` (withdrawn: do not pay).
    pub status: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// ISO 4217.
    pub currency: String,
    /// `cash_pickup`, `bank_deposit`, `mobile_wallet`.
    pub payout_method: String,
    /// What to pay the recipient, decimal in the currency (rounded down to its minor unit).
    pub payout_amount: String,
    /// The same in minor units.
    pub payout_amount_minor: i64,
    pub recipient_name: String,
    /// E.164.
    pub recipient_phone: String,
    /// Bank account or mobile-money number, for those methods.
    pub recipient_account: Option<String>,
    /// The remittance's expiry: from then on the escrow refunds the sender and no longer releases to you. Complete
    /// the payout at least the node's `payout_cutoff_s` (default 600 s) before it; later completions get 409.
    pub pay_before_unix_s: i64,
    pub payout_reference: Option<String>,
    pub failure_reason: Option<String>,
    pub release_tx_hash: Option<String>,
    pub created_at_unix_ms: i64,
    pub updated_at_unix_ms: i64,
    /// The travel rule's data (FATF R.16), for payouts at or above the node's threshold for the corridor (1,000
    /// USD by default; every payout to an EU country): the originator and the beneficiary in IVMS101 JSON
    /// (`originator.originatorPersons[].naturalPerson` with name, geographic address, national identification and
    /// date of birth, `originator.accountNumber` = the sender's wallet; `beneficiary`; `originatingVASP`). Absent
    /// below the threshold. Keep it with the payout's records; never show it to the recipient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub travel_rule: Option<crate::domain::ivms101::TravelRule>,
}

/// One on-chain settlement: one token transfer to the partner's settlement address for a batch of releases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "event_id": "0xabc…:3", "settlement_address": "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc",
    "amount": "204.50", "amount_base_units": "204500000", "release_count": 2,
    "tx_hash": "0x9d1e…", "block_number": 1234, "at_unix_ms": 1_790_000_100_000_i64
}))]
pub struct PartnerSettlement {
    pub event_id: String,
    pub settlement_address: String,
    /// Whole tokens, exact decimal.
    pub amount: String,
    pub amount_base_units: String,
    pub release_count: i64,
    pub tx_hash: String,
    pub block_number: i64,
    pub at_unix_ms: i64,
}

/// Minor units to a decimal string with the currency's exponent.
pub fn minor_to_decimal(minor: i64, exponent: u32) -> String {
    Decimal::new(minor, exponent.min(28)).to_string()
}

impl From<PayoutRow> for PartnerPayout {
    fn from(r: PayoutRow) -> Self {
        let travel_rule = r.travel_rule.as_deref().and_then(|t| match serde_json::from_str(t) {
            Ok(v) => Some(v),
            Err(e) => {
                // Written by the engine from typed data: unreadable means a corrupt row, said loudly.
                tracing::error!(target: "partner", payout = %r.id, error = %e, "stored travel-rule data unreadable");
                None
            }
        });
        PartnerPayout {
            payout_amount: minor_to_decimal(
                r.payout_amount_minor,
                crate::domain::currency_exponent(&r.currency),
            ),
            id: r.id,
            status: r.state,
            country: r.country,
            currency: r.currency,
            payout_method: r.payout_method,
            payout_amount_minor: r.payout_amount_minor,
            recipient_name: r.recipient_name,
            recipient_phone: r.recipient_phone,
            recipient_account: r.recipient_account,
            pay_before_unix_s: r.expiry_unix_s,
            payout_reference: r.payout_reference,
            failure_reason: r.failure_reason,
            release_tx_hash: r.release_tx_hash,
            created_at_unix_ms: r.created_at_unix_ms,
            updated_at_unix_ms: r.updated_at_unix_ms,
            travel_rule,
        }
    }
}

impl PartnerSettlement {
    fn from_row(r: SettlementRow, token_decimals: u8) -> Self {
        PartnerSettlement {
            event_id: r.event_id,
            settlement_address: r.settlement_address,
            amount: minor_to_decimal(r.amount_base_units, u32::from(token_decimals)),
            amount_base_units: r.amount_base_units.to_string(),
            release_count: r.release_count,
            tx_hash: r.tx_hash,
            block_number: r.block_number,
            at_unix_ms: r.at_unix_ms,
        }
    }
}

/// Cursor of the payout list: `<created_at_unix_ms>:<id>` of the last item.
fn parse_cursor(cursor: Option<&str>) -> Option<(i64, String)> {
    let (ts, id) = cursor?.split_once(':')?;
    Some((ts.parse().ok()?, id.to_owned()))
}

impl PartnerDb {
    /// One partner's payouts, oldest first, optionally in one status, after `cursor`, at most `limit`.
    pub async fn partner_payouts(
        &self,
        partner_id: i64,
        status: Option<&str>,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<(Vec<PartnerPayout>, Option<String>), StoreError> {
        let (after_ts, after_id) = parse_cursor(cursor).unwrap_or((-1, String::new()));
        let limit = limit.clamp(1, super::store::PAGE_LIMIT_MAX);
        let mut items: Vec<PartnerPayout> =
            remittances::payouts_of(&self.pool, partner_id, status, after_ts, &after_id, limit + 1)
                .await?
                .into_iter()
                .map(PartnerPayout::from)
                .collect();
        let next = if items.len() > usize::try_from(limit).unwrap_or(usize::MAX) {
            items.truncate(usize::try_from(limit).unwrap_or(0));
            items.last().map(|p| format!("{}:{}", p.created_at_unix_ms, p.id))
        } else {
            None
        };
        Ok((items, next))
    }

    /// One payout of one partner; `None` when it does not exist or is another partner's.
    pub async fn partner_payout(
        &self,
        partner_id: i64,
        id: &str,
    ) -> Result<Option<PartnerPayout>, StoreError> {
        Ok(
            remittances::payout_of(&self.pool, partner_id, &id.to_ascii_lowercase())
                .await?
                .map(PartnerPayout::from),
        )
    }

    /// The payout of one partner whose pickup code has the lookup hash `pickup_lookup` (0x-hex), for counter agents.
    pub async fn partner_payout_by_pickup_lookup(
        &self,
        partner_id: i64,
        pickup_lookup: &str,
    ) -> Result<Option<PartnerPayout>, StoreError> {
        Ok(
            remittances::payout_by_pickup_lookup(&self.pool, partner_id, pickup_lookup)
                .await?
                .map(PartnerPayout::from),
        )
    }

    /// One partner's settlements, newest first; `before` is the cursor (`<block_number>:<event_id>`).
    pub async fn partner_settlements(
        &self,
        partner_id: i64,
        token_decimals: u8,
        before: Option<&str>,
        limit: i64,
    ) -> Result<(Vec<PartnerSettlement>, Option<String>), StoreError> {
        let (before_block, before_id) = parse_cursor(before).unwrap_or((i64::MAX, String::new()));
        let limit = limit.clamp(1, super::store::PAGE_LIMIT_MAX);
        let mut items: Vec<PartnerSettlement> =
            settlements::of_partner(&self.pool, partner_id, before_block, &before_id, limit + 1)
                .await?
                .into_iter()
                .map(|r| PartnerSettlement::from_row(r, token_decimals))
                .collect();
        let next = if items.len() > usize::try_from(limit).unwrap_or(usize::MAX) {
            items.truncate(usize::try_from(limit).unwrap_or(0));
            items.last().map(|s| format!("{}:{}", s.block_number, s.event_id))
        } else {
            None
        };
        Ok((items, next))
    }

    /// The partner's active Ed25519 key (base64) and webhook URL; `None` when unknown or suspended.
    pub async fn partner_key_and_webhook(
        &self,
        partner_id: i64,
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        crate::store::partners::active_key_and_webhook(&self.pool, partner_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_units_format() {
        assert_eq!(minor_to_decimal(76543, 2), "765.43");
        assert_eq!(minor_to_decimal(5, 2), "0.05");
        assert_eq!(minor_to_decimal(1000, 0), "1000");
        assert_eq!(minor_to_decimal(204_500_000, 6), "204.500000");
    }

    #[test]
    fn cursor_parses_or_is_ignored() {
        assert_eq!(parse_cursor(Some("12:0xab")), Some((12, "0xab".to_owned())));
        assert_eq!(parse_cursor(Some("x:0xab")), None);
        assert_eq!(parse_cursor(Some("nothing")), None);
        assert_eq!(parse_cursor(None), None);
    }
}
