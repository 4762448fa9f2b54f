//! The `remittances` table: one row per remittance (its terms, state, the keyed lookup hash of its pickup code and
//! transaction hashes). No pickup code or claim salt is ever stored (see `engine::claims`).
//!
//! State changes go through [`set_state`] together with a row of [`super::transitions`] in the same transaction;
//! the engine (`engine::transition`) is the only caller.

use sqlx::Executor;

use super::{Dialect, StoreError};

/// The columns every remittance read returns.
const COLS: &str = "id, state, quote_id, sender_user_id, sender_address, custodial, partner_id, recipient_phone, \
    recipient_name, country, currency, payout_method, send_amount_base_units, fee_base_units, total_base_units, \
    payout_amount_minor, rate, expiry_unix_s, claim_hash, payout_reference, failure_reason, lock_tx_hash, \
    release_tx_hash, refund_tx_hash, created_at_unix_ms, updated_at_unix_ms, pickup_lookup, recipient_address, \
    settlement_address, partner_signer";

/// A stored remittance, read by column name. Its `Debug` shows only id and state.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RemittanceRow {
    pub id: String,
    pub state: String,
    pub quote_id: String,
    pub sender_user_id: Option<String>,
    pub sender_address: String,
    /// 1 when the node signs for the sender.
    pub custodial: i64,
    /// 0 for a P2P transfer.
    pub partner_id: i64,
    pub recipient_phone: String,
    pub recipient_name: String,
    pub country: String,
    pub currency: String,
    pub payout_method: String,
    pub send_amount_base_units: i64,
    pub fee_base_units: i64,
    pub total_base_units: i64,
    pub payout_amount_minor: i64,
    pub rate: String,
    pub expiry_unix_s: i64,
    pub claim_hash: String,
    pub payout_reference: Option<String>,
    pub failure_reason: Option<String>,
    pub lock_tx_hash: Option<String>,
    pub release_tx_hash: Option<String>,
    pub refund_tx_hash: Option<String>,
    pub created_at_unix_ms: i64,
    pub updated_at_unix_ms: i64,
    pub pickup_lookup: Option<String>,
    /// `remesa_wallet` only: the recipient's custodial address.
    pub recipient_address: Option<String>,
    /// The partner's settlement address and signer in the escrow terms (`None` for a P2P transfer).
    pub settlement_address: Option<String>,
    pub partner_signer: Option<String>,
}

impl std::fmt::Debug for RemittanceRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemittanceRow")
            .field("id", &self.id)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// A remittance to insert (state `quoted`). Its `Debug` shows only the id.
pub struct NewRemittanceRow<'a> {
    pub id: &'a str,
    pub quote_id: &'a str,
    pub idempotency_key: &'a str,
    pub sender_user_id: Option<&'a str>,
    pub sender_address: &'a str,
    pub custodial: bool,
    pub partner_id: i64,
    pub recipient_phone: &'a str,
    pub recipient_name: &'a str,
    pub recipient_account: Option<&'a str>,
    pub recipient_address: Option<&'a str>,
    pub country: &'a str,
    pub currency: &'a str,
    pub payout_method: &'a str,
    pub send_amount_base_units: i64,
    pub fee_base_units: i64,
    pub total_base_units: i64,
    pub payout_amount_minor: i64,
    pub rate: &'a str,
    pub expiry_unix_s: i64,
    pub claim_hash: &'a str,
    /// HMAC of the pickup code under the claim key (0x-hex), for cash pickups.
    pub pickup_lookup: Option<&'a str>,
    /// The partner's settlement address and signer in the escrow terms (`None` for a P2P transfer).
    pub settlement_address: Option<&'a str>,
    pub partner_signer: Option<&'a str>,
    /// The IVMS101 travel-rule payload (JSON), at or above the corridor's threshold.
    pub travel_rule: Option<&'a str>,
    pub created_at_unix_ms: i64,
}

impl std::fmt::Debug for NewRemittanceRow<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewRemittanceRow")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

pub async fn insert(conn: &mut sqlx::AnyConnection, r: &NewRemittanceRow<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO remittances (id, quote_id, idempotency_key, sender_user_id, sender_address, custodial, \
         partner_id, recipient_phone, recipient_name, recipient_account, recipient_address, country, currency, \
         payout_method, send_amount_base_units, fee_base_units, total_base_units, payout_amount_minor, rate, \
         expiry_unix_s, claim_hash, pickup_lookup, settlement_address, partner_signer, state, created_at_unix_ms, \
         updated_at_unix_ms, travel_rule) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
         $16, $17, $18, $19, $20, $21, $22, $23, $24, 'quoted', $25, $25, $26)",
    )
    .bind(r.id)
    .bind(r.quote_id)
    .bind(r.idempotency_key)
    .bind(r.sender_user_id)
    .bind(r.sender_address)
    .bind(i64::from(r.custodial))
    .bind(r.partner_id)
    .bind(r.recipient_phone)
    .bind(r.recipient_name)
    .bind(r.recipient_account)
    .bind(r.recipient_address)
    .bind(r.country)
    .bind(r.currency)
    .bind(r.payout_method)
    .bind(r.send_amount_base_units)
    .bind(r.fee_base_units)
    .bind(r.total_base_units)
    .bind(r.payout_amount_minor)
    .bind(r.rate)
    .bind(r.expiry_unix_s)
    .bind(r.claim_hash)
    .bind(r.pickup_lookup)
    .bind(r.settlement_address)
    .bind(r.partner_signer)
    .bind(r.created_at_unix_ms)
    .bind(r.travel_rule)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get(conn: &mut sqlx::AnyConnection, id: &str) -> Result<Option<RemittanceRow>, StoreError> {
    Ok(
        sqlx::query_as(&format!("SELECT {COLS} FROM remittances WHERE id = $1"))
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

/// [`get`], row-locked on PostgreSQL until the transaction ends.
pub async fn get_for_update(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
    id: &str,
) -> Result<Option<RemittanceRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLS} FROM remittances WHERE id = $1{}",
        dialect.for_update()
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

pub async fn by_idempotency_key(
    conn: &mut sqlx::AnyConnection,
    key: &str,
) -> Result<Option<RemittanceRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLS} FROM remittances WHERE idempotency_key = $1"
    ))
    .bind(key)
    .fetch_optional(conn)
    .await?)
}

/// The remittance of one partner whose pickup code has this lookup hash (`engine::claims`, 0x-hex).
pub async fn by_pickup_lookup<'e, E>(
    exec: E,
    pickup_lookup: &str,
    partner_id: i64,
) -> Result<Option<RemittanceRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(&format!(
        "SELECT {COLS} FROM remittances WHERE pickup_lookup = $1 AND partner_id = $2"
    ))
    .bind(pickup_lookup)
    .bind(partner_id)
    .fetch_optional(exec)
    .await?)
}

/// What [`list`] selects; every field given narrows the list.
#[derive(Clone, Debug, Default)]
pub struct ListFilter<'a> {
    pub sender_user_id: Option<&'a str>,
    /// E.164.
    pub recipient_phone: Option<&'a str>,
    /// Lower-case 0x-hex.
    pub sender_address: Option<&'a str>,
    pub partner_id: Option<i64>,
    /// Any of these states (none: every state).
    pub states: Vec<&'a str>,
    /// Only rows strictly before this `(created_at_unix_ms, id)` in the newest-first order (a page cursor).
    pub before: Option<(i64, &'a str)>,
}

/// Newest first (`created_at_unix_ms`, then `id`, descending), at most `limit` rows.
pub async fn list<'e, E>(
    exec: E,
    filter: &ListFilter<'_>,
    limit: i64,
) -> Result<Vec<RemittanceRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    enum Bind<'a> {
        Text(&'a str),
        Int(i64),
    }
    let mut sql = format!("SELECT {COLS} FROM remittances WHERE 1 = 1");
    fn param<'a>(b: Bind<'a>, binds: &mut Vec<Bind<'a>>) -> String {
        binds.push(b);
        format!("${}", binds.len())
    }
    let mut binds: Vec<Bind<'_>> = Vec::new();
    if let Some(u) = filter.sender_user_id {
        let p = param(Bind::Text(u), &mut binds);
        sql.push_str(&format!(" AND sender_user_id = {p}"));
    }
    if let Some(phone) = filter.recipient_phone {
        let p = param(Bind::Text(phone), &mut binds);
        sql.push_str(&format!(" AND recipient_phone = {p}"));
    }
    if let Some(a) = filter.sender_address {
        let p = param(Bind::Text(a), &mut binds);
        sql.push_str(&format!(" AND sender_address = {p}"));
    }
    if let Some(pid) = filter.partner_id {
        let p = param(Bind::Int(pid), &mut binds);
        sql.push_str(&format!(" AND partner_id = {p}"));
    }
    if !filter.states.is_empty() {
        let ps: Vec<String> = filter
            .states
            .iter()
            .map(|s| param(Bind::Text(s), &mut binds))
            .collect();
        sql.push_str(&format!(" AND state IN ({})", ps.join(", ")));
    }
    if let Some((created, id)) = filter.before {
        let p1 = param(Bind::Int(created), &mut binds);
        let p2 = param(Bind::Text(id), &mut binds);
        sql.push_str(&format!(
            " AND (created_at_unix_ms < {p1} OR (created_at_unix_ms = {p1} AND id < {p2}))"
        ));
    }
    let pl = param(Bind::Int(limit), &mut binds);
    sql.push_str(&format!(" ORDER BY created_at_unix_ms DESC, id DESC LIMIT {pl}"));
    let mut q = sqlx::query_as(&sql);
    for b in binds {
        q = match b {
            Bind::Text(t) => q.bind(t),
            Bind::Int(i) => q.bind(i),
        };
    }
    Ok(q.fetch_all(exec).await?)
}

/// Moves the row from state `from` to `to`; false when it is no longer in `from` (or does not exist).
pub async fn set_state(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    from: &str,
    to: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE remittances SET state = $1, updated_at_unix_ms = $2 WHERE id = $3 AND state = $4",
    )
    .bind(to)
    .bind(now_ms)
    .bind(id)
    .bind(from)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// What the sender's remittances that are not locked yet (`quoted`, `pending_funds`) will pull, in base units.
pub async fn pending_total<'e, E>(exec: E, sender_address: &str) -> Result<i64, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(total_base_units), 0) AS BIGINT) FROM remittances \
         WHERE sender_address = $1 AND state IN ('quoted', 'on_hold', 'pending_funds')",
    )
    .bind(sender_address)
    .fetch_one(exec)
    .await?)
}

/// Stores the EIP-3009 authorization the deposit (or P2P transfer) will use.
pub async fn set_authorization(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    valid_after: i64,
    valid_before: i64,
    signature_hex: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE remittances SET auth_valid_after = $1, auth_valid_before = $2, auth_signature = $3 WHERE id = $4")
        .bind(valid_after)
        .bind(valid_before)
        .bind(signature_hex)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The transaction hash columns of a remittance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxHashColumn {
    /// The deposit that locked the money.
    Lock,
    /// The release to the partner (or the P2P transfer).
    Release,
    /// The refund to the sender.
    Refund,
}

/// Sets (or, with `None`, clears) one transaction hash (lower-case 0x-hex).
pub async fn set_tx_hash(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    column: TxHashColumn,
    tx_hash: Option<&str>,
) -> Result<(), StoreError> {
    let sql = match column {
        TxHashColumn::Lock => "UPDATE remittances SET lock_tx_hash = $1 WHERE id = $2",
        TxHashColumn::Release => "UPDATE remittances SET release_tx_hash = $1 WHERE id = $2",
        TxHashColumn::Refund => "UPDATE remittances SET refund_tx_hash = $1 WHERE id = $2",
    };
    sqlx::query(sql).bind(tx_hash).bind(id).execute(conn).await?;
    Ok(())
}

pub async fn set_failure_reason(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    reason: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE remittances SET failure_reason = $1 WHERE id = $2")
        .bind(reason)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The partner's reference for a completed payout.
pub async fn set_payout_reference(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    reference: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE remittances SET payout_reference = $1 WHERE id = $2")
        .bind(reference)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Ids of `quoted` remittances whose expiry has passed (never authorized), soonest first.
pub async fn expired_in_state<'e, E>(
    exec: E,
    state: &str,
    now_unix_s: i64,
    limit: i64,
) -> Result<Vec<String>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_scalar(
        "SELECT id FROM remittances WHERE state = $1 AND expiry_unix_s <= $2 ORDER BY expiry_unix_s LIMIT $3",
    )
    .bind(state)
    .bind(now_unix_s)
    .bind(limit)
    .fetch_all(exec)
    .await?)
}

/// Remittances in `state`, oldest first, at most `limit` (the compliance review queue).
pub async fn in_state_oldest_first<'e, E>(
    exec: E,
    state: &str,
    limit: i64,
) -> Result<Vec<RemittanceRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(&format!(
        "SELECT {COLS} FROM remittances WHERE state = $1 ORDER BY created_at_unix_ms, id LIMIT $2"
    ))
    .bind(state)
    .bind(limit)
    .fetch_all(exec)
    .await?)
}

/// Locked remittances (funds locked, payout assigned or accepted, refund pending) past their expiry that have no
/// refund job yet, soonest first.
pub async fn expired_locked_without_refund(
    conn: &mut sqlx::AnyConnection,
    now_unix_s: i64,
    limit: i64,
) -> Result<Vec<RemittanceRow>, StoreError> {
    let cols = COLS
        .split(", ")
        .map(|c| format!("r.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(sqlx::query_as(&format!(
        "SELECT {cols} FROM remittances r LEFT JOIN chain_jobs j ON j.kind = 'refund' AND j.remittance_id = r.id \
         WHERE r.state IN ('funds_locked', 'payout_assigned', 'payout_accepted', 'refund_pending') \
         AND r.expiry_unix_s <= $1 AND j.id IS NULL ORDER BY r.expiry_unix_s LIMIT $2"
    ))
    .bind(now_unix_s)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// How many remittances are in each state.
pub async fn count_by_state<'e, E>(exec: E) -> Result<Vec<(String, i64)>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(
        sqlx::query_as("SELECT state, CAST(COUNT(*) AS BIGINT) AS n FROM remittances GROUP BY state")
            .fetch_all(exec)
            .await?,
    )
}

// The partner's view: what a partner may read of its own remittances (no pickup code), each query scoped to one
// partner and to remittances that were assigned to it at some point.

const PAYOUT_COLS: &str = "r.id, r.state, r.country, r.currency, r.payout_method, r.payout_amount_minor, \
    r.recipient_name, r.recipient_phone, r.recipient_account, r.expiry_unix_s, r.payout_reference, r.failure_reason, \
    r.release_tx_hash, r.created_at_unix_ms, r.updated_at_unix_ms, r.travel_rule";

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
    /// IVMS101 JSON, at or above the travel-rule threshold.
    pub travel_rule: Option<String>,
}

/// The statement of [`payouts_of`] (`$1` partner, `$2` state or NULL, `$3`/`$4` the cursor, `$5` the limit); public
/// so a test can check its query plan.
pub fn payouts_of_sql() -> String {
    format!(
        "SELECT {PAYOUT_COLS} FROM remittances r WHERE r.partner_id = $1 \
         AND r.state IN ('payout_assigned', 'payout_accepted', 'paid', 'settled', 'refund_pending', 'refunded') \
         AND ($2 IS NULL OR r.state = $2) \
         AND (r.created_at_unix_ms > $3 OR (r.created_at_unix_ms = $3 AND r.id > $4)) AND {EVER_ASSIGNED} \
         ORDER BY r.created_at_unix_ms, r.id LIMIT $5"
    )
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
    Ok(sqlx::query_as(&payouts_of_sql())
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

/// The remittance whose pickup code has lookup hash `pickup_lookup` (0x-hex) if it was ever assigned to
/// `partner_id`.
pub async fn payout_by_pickup_lookup<'e, E>(
    exec: E,
    partner_id: i64,
    pickup_lookup: &str,
) -> Result<Option<PayoutRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(&format!(
        "SELECT {PAYOUT_COLS} FROM remittances r WHERE r.pickup_lookup = $1 AND r.partner_id = $2 AND {EVER_ASSIGNED}"
    ))
    .bind(pickup_lookup)
    .bind(partner_id)
    .fetch_optional(exec)
    .await?)
}

/// The remittances that name `tx_hash` (lower-case 0x-hex) as their lock, release or refund transaction, at most
/// `limit` (the operator console's search).
pub async fn by_tx_hash<'e, E>(exec: E, tx_hash: &str, limit: i64) -> Result<Vec<RemittanceRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(&format!(
        "SELECT {COLS} FROM remittances WHERE lock_tx_hash = $1 OR release_tx_hash = $1 OR refund_tx_hash = $1 \
         ORDER BY created_at_unix_ms DESC LIMIT $2"
    ))
    .bind(tx_hash)
    .bind(limit)
    .fetch_all(exec)
    .await?)
}

/// The remittance in one of `states` that changed least recently: `(id, state, updated_at_unix_ms)`.
pub async fn oldest_in_states<'e, E>(
    exec: E,
    states: &[&str],
) -> Result<Option<(String, String, i64)>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    if states.is_empty() {
        return Ok(None);
    }
    let params: Vec<String> = (1..=states.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT id, state, updated_at_unix_ms FROM remittances WHERE state IN ({}) \
         ORDER BY updated_at_unix_ms, id LIMIT 1",
        params.join(", ")
    );
    let mut q = sqlx::query_as(&sql);
    for s in states {
        q = q.bind(*s);
    }
    Ok(q.fetch_optional(exec).await?)
}
