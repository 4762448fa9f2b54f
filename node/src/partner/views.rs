//! What a partner may read: its payouts (remittances assigned to it, from assignment on) and its settlements.
//! Read-only queries on the engine's tables; every query is scoped to one partner, so another partner's payout is
//! simply not found (404), never forbidden (403), and its existence is not revealed.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::Row as _;
use utoipa::ToSchema;

use super::store::{PartnerDb, StoreError};

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
    /// After this the escrow refunds the sender: pay (and complete) before it.
    pub pay_before_unix_s: i64,
    pub payout_reference: Option<String>,
    pub failure_reason: Option<String>,
    pub release_tx_hash: Option<String>,
    pub created_at_unix_ms: i64,
    pub updated_at_unix_ms: i64,
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

const PAYOUT_COLUMNS: &str = "r.id, r.state, r.country, r.currency, r.payout_method, r.payout_amount_minor, \
    r.recipient_name, r.recipient_phone, r.recipient_account, r.expiry_unix_s, r.payout_reference, r.failure_reason, \
    r.release_tx_hash, r.created_at_unix_ms, r.updated_at_unix_ms";

/// Minor units to a decimal string with the currency's exponent.
pub fn minor_to_decimal(minor: i64, exponent: u32) -> String {
    Decimal::new(minor, exponent.min(28)).to_string()
}

fn payout_from_row(r: &sqlx::any::AnyRow) -> Result<PartnerPayout, StoreError> {
    let currency: String = r.try_get("currency")?;
    let minor: i64 = r.try_get("payout_amount_minor")?;
    Ok(PartnerPayout {
        id: r.try_get("id")?,
        status: r.try_get("state")?,
        country: r.try_get("country")?,
        payout_amount: minor_to_decimal(minor, crate::domain::currency_exponent(&currency)),
        currency,
        payout_method: r.try_get("payout_method")?,
        payout_amount_minor: minor,
        recipient_name: r.try_get("recipient_name")?,
        recipient_phone: r.try_get("recipient_phone")?,
        recipient_account: r.try_get("recipient_account")?,
        pay_before_unix_s: r.try_get("expiry_unix_s")?,
        payout_reference: r.try_get("payout_reference")?,
        failure_reason: r.try_get("failure_reason")?,
        release_tx_hash: r.try_get("release_tx_hash")?,
        created_at_unix_ms: r.try_get("created_at_unix_ms")?,
        updated_at_unix_ms: r.try_get("updated_at_unix_ms")?,
    })
}

/// `r` was assigned to a partner at some point (it left the funding states through `payout_assigned`).
const EVER_ASSIGNED: &str = "EXISTS (SELECT 1 FROM remittance_transitions t WHERE t.remittance_id = r.id \
     AND t.to_state = 'payout_assigned')";

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
        let sql = format!(
            "SELECT {PAYOUT_COLUMNS} FROM remittances r WHERE r.partner_id = $1 \
             AND r.state IN ('payout_assigned', 'payout_accepted', 'paid', 'settled', 'refund_pending', 'refunded') \
             AND ($2 IS NULL OR r.state = $2) \
             AND (r.created_at_unix_ms > $3 OR (r.created_at_unix_ms = $3 AND r.id > $4)) AND {EVER_ASSIGNED} \
             ORDER BY r.created_at_unix_ms, r.id LIMIT $5"
        );
        let rows = sqlx::query(&sql)
            .bind(partner_id)
            .bind(status)
            .bind(after_ts)
            .bind(after_id)
            .bind(limit + 1)
            .fetch_all(&self.pool)
            .await?;
        let mut items = rows.iter().map(payout_from_row).collect::<Result<Vec<_>, _>>()?;
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
        let sql = format!(
            "SELECT {PAYOUT_COLUMNS} FROM remittances r WHERE r.id = $1 AND r.partner_id = $2 AND {EVER_ASSIGNED}"
        );
        let row = sqlx::query(&sql)
            .bind(id.to_ascii_lowercase())
            .bind(partner_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(payout_from_row).transpose()
    }

    /// The payout of one partner whose claim hash is `claim_hash` (0x-hex), for counter agents.
    pub async fn partner_payout_by_claim_hash(
        &self,
        partner_id: i64,
        claim_hash: &str,
    ) -> Result<Option<PartnerPayout>, StoreError> {
        let sql = format!(
            "SELECT {PAYOUT_COLUMNS} FROM remittances r WHERE r.claim_hash = $1 AND r.partner_id = $2 AND {EVER_ASSIGNED}"
        );
        let row = sqlx::query(&sql)
            .bind(claim_hash)
            .bind(partner_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(payout_from_row).transpose()
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
        let rows = sqlx::query(
            "SELECT event_id, settlement_address, amount_base_units, release_count, tx_hash, block_number, at_unix_ms \
             FROM settlements WHERE partner_id = $1 \
             AND (block_number < $2 OR (block_number = $2 AND ($3 = '' OR event_id < $3))) \
             ORDER BY block_number DESC, event_id DESC LIMIT $4",
        )
        .bind(partner_id)
        .bind(before_block)
        .bind(before_id)
        .bind(limit + 1)
        .fetch_all(&self.pool)
        .await?;
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            let base: i64 = r.try_get("amount_base_units")?;
            items.push(PartnerSettlement {
                event_id: r.try_get("event_id")?,
                settlement_address: r.try_get("settlement_address")?,
                amount: minor_to_decimal(base, u32::from(token_decimals)),
                amount_base_units: base.to_string(),
                release_count: r.try_get("release_count")?,
                tx_hash: r.try_get("tx_hash")?,
                block_number: r.try_get("block_number")?,
                at_unix_ms: r.try_get("at_unix_ms")?,
            });
        }
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
