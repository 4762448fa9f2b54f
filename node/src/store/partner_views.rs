//! What the partner module reads from the engine's tables (`remittances`, `remittance_transitions`,
//! `settlements`): one partner's payouts and settlements, and the transition feed partner events are made from.
//! Read-only; every payout and settlement query is scoped to one partner.

use sqlx::Executor;

use super::StoreError;

const PAYOUT_COLS: &str = "r.id, r.state, r.country, r.currency, r.payout_method, r.payout_amount_minor, \
    r.recipient_name, r.recipient_phone, r.recipient_account, r.expiry_unix_s, r.payout_reference, r.failure_reason, \
    r.release_tx_hash, r.created_at_unix_ms, r.updated_at_unix_ms";

/// `r` was assigned to a partner at some point (it left the funding states through `payout_assigned`).
const EVER_ASSIGNED: &str = "EXISTS (SELECT 1 FROM remittance_transitions t WHERE t.remittance_id = r.id \
     AND t.to_state = 'payout_assigned')";

/// A remittance as its partner may see it, read by column name (no pickup code).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct PayoutRow {
    pub id: String,
    pub state: String,
    pub country: String,
    pub currency: String,
    pub payout_method: String,
    pub payout_amount_minor: i64,
    pub recipient_name: String,
    pub recipient_phone: String,
    pub recipient_account: Option<String>,
    pub expiry_unix_s: i64,
    pub payout_reference: Option<String>,
    pub failure_reason: Option<String>,
    pub release_tx_hash: Option<String>,
    pub created_at_unix_ms: i64,
    pub updated_at_unix_ms: i64,
}

/// One settlement transfer to a partner, read by column name.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct SettlementRow {
    pub event_id: String,
    pub settlement_address: String,
    pub amount_base_units: i64,
    pub release_count: i64,
    pub tx_hash: String,
    pub block_number: i64,
    pub at_unix_ms: i64,
}

/// A transition of the engine's feed with its remittance's partner, read by column name.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct TransitionRow {
    pub seq: i64,
    pub remittance_id: String,
    pub from_state: Option<String>,
    pub to_state: String,
    pub cause: String,
    /// JSON.
    pub detail: String,
    pub at_unix_ms: i64,
    pub partner_id: i64,
}

/// One partner's ever-assigned payouts in the partner-visible states (optionally one `state`), oldest first, after
/// (`after_created_at_unix_ms`, `after_id`), at most `limit`.
pub async fn payouts_of<'e, E>(
    exec: E,
    partner_id: i64,
    state: Option<&str>,
    after_created_at_unix_ms: i64,
    after_id: &str,
    limit: i64,
) -> Result<Vec<PayoutRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(&format!(
        "SELECT {PAYOUT_COLS} FROM remittances r WHERE r.partner_id = $1 \
         AND r.state IN ('payout_assigned', 'payout_accepted', 'paid', 'settled', 'refund_pending', 'refunded') \
         AND ($2 IS NULL OR r.state = $2) \
         AND (r.created_at_unix_ms > $3 OR (r.created_at_unix_ms = $3 AND r.id > $4)) AND {EVER_ASSIGNED} \
         ORDER BY r.created_at_unix_ms, r.id LIMIT $5"
    ))
    .bind(partner_id)
    .bind(state)
    .bind(after_created_at_unix_ms)
    .bind(after_id)
    .bind(limit)
    .fetch_all(exec)
    .await?)
}

/// Remittance `id` if it was ever assigned to `partner_id`.
pub async fn payout_of<'e, E>(exec: E, partner_id: i64, id: &str) -> Result<Option<PayoutRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(&format!(
        "SELECT {PAYOUT_COLS} FROM remittances r WHERE r.id = $1 AND r.partner_id = $2 AND {EVER_ASSIGNED}"
    ))
    .bind(id)
    .bind(partner_id)
    .fetch_optional(exec)
    .await?)
}

/// The remittance with claim hash `claim_hash` (0x-hex) if it was ever assigned to `partner_id`.
pub async fn payout_by_claim_hash<'e, E>(
    exec: E,
    partner_id: i64,
    claim_hash: &str,
) -> Result<Option<PayoutRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(&format!(
        "SELECT {PAYOUT_COLS} FROM remittances r WHERE r.claim_hash = $1 AND r.partner_id = $2 AND {EVER_ASSIGNED}"
    ))
    .bind(claim_hash)
    .bind(partner_id)
    .fetch_optional(exec)
    .await?)
}

/// One partner's settlements, newest first, before (`before_block`, `before_event_id`; an empty id: the whole
/// block), at most `limit`.
pub async fn settlements_of<'e, E>(
    exec: E,
    partner_id: i64,
    before_block: i64,
    before_event_id: &str,
    limit: i64,
) -> Result<Vec<SettlementRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(
        "SELECT event_id, settlement_address, amount_base_units, release_count, tx_hash, block_number, at_unix_ms \
         FROM settlements WHERE partner_id = $1 \
         AND (block_number < $2 OR (block_number = $2 AND ($3 = '' OR event_id < $3))) \
         ORDER BY block_number DESC, event_id DESC LIMIT $4",
    )
    .bind(partner_id)
    .bind(before_block)
    .bind(before_event_id)
    .bind(limit)
    .fetch_all(exec)
    .await?)
}

/// The engine's transitions after `after_seq`, in `seq` order, at most `limit`.
pub async fn transitions_after<'e, E>(
    exec: E,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<TransitionRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(
        "SELECT t.seq, t.remittance_id, t.from_state, t.to_state, t.cause, t.detail, t.at_unix_ms, r.partner_id \
         FROM remittance_transitions t JOIN remittances r ON r.id = t.remittance_id \
         WHERE t.seq > $1 ORDER BY t.seq LIMIT $2",
    )
    .bind(after_seq)
    .bind(limit)
    .fetch_all(exec)
    .await?)
}
