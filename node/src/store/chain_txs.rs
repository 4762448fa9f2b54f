//! The `chain_txs` and `chain_tx_attempts` tables: the nonce ledger of the sending keys. One `chain_txs` row per
//! nonce used (the intent, written before anything is broadcast) and one attempt per signed version of it (the
//! original and each fee bump). Calldata and signed bytes of a release carry its pickup code: the rows here never
//! print them.

use std::fmt;

use alloy::primitives::{Address, B256, Bytes};
use sqlx::Executor;

use super::StoreError;
use super::text::{addr_text, b256_text, bytes_text};

/// A transaction to store (status `signed`, no bumps, no broadcast failures).
pub struct NewChainTxRow<'a> {
    pub id: &'a str,
    pub chain_id: i64,
    pub sender: Address,
    pub nonce: i64,
    pub kind: &'a str,
    pub to_address: Address,
    pub calldata: &'a Bytes,
    pub gas_limit: i64,
    pub job_count: i64,
    pub created_at_unix_ms: i64,
}

impl fmt::Debug for NewChainTxRow<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewChainTxRow")
            .field("id", &self.id)
            .field("chain_id", &self.chain_id)
            .field("sender", &self.sender)
            .field("nonce", &self.nonce)
            .field("kind", &self.kind)
            .field("to_address", &self.to_address)
            .field("calldata", &"<redacted>")
            .field("gas_limit", &self.gas_limit)
            .field("job_count", &self.job_count)
            .field("created_at_unix_ms", &self.created_at_unix_ms)
            .finish()
    }
}

/// A signed version of a stored transaction.
pub struct NewAttemptRow<'a> {
    pub tx_hash: B256,
    pub tx_id: &'a str,
    pub attempt: i64,
    pub raw_tx: &'a Bytes,
    pub max_fee_per_gas_wei: u128,
    pub max_priority_fee_per_gas_wei: u128,
    pub created_at_unix_ms: i64,
}

impl fmt::Debug for NewAttemptRow<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewAttemptRow")
            .field("tx_hash", &self.tx_hash)
            .field("tx_id", &self.tx_id)
            .field("attempt", &self.attempt)
            .field("raw_tx", &"<redacted>")
            .field("max_fee_per_gas_wei", &self.max_fee_per_gas_wei)
            .field("max_priority_fee_per_gas_wei", &self.max_priority_fee_per_gas_wei)
            .field("created_at_unix_ms", &self.created_at_unix_ms)
            .finish()
    }
}

/// A receipt's facts, recorded when a transaction is mined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MinedRow<'a> {
    pub id: &'a str,
    pub mined_tx_hash: B256,
    pub mined_block_number: i64,
    pub mined_block_hash: Option<B256>,
    pub gas_used: i64,
    pub effective_gas_price_wei: u128,
    pub now_ms: i64,
}

/// A stored transaction, read by column name; hashes, addresses and bytes are 0x-hex text.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ChainTxRow {
    pub id: String,
    pub nonce: i64,
    pub kind: String,
    pub status: String,
    pub calldata: String,
    pub gas_limit: i64,
    pub bumps: i64,
    pub broadcast_failures: i64,
    pub mined_tx_hash: Option<String>,
    pub to_address: String,
}

impl fmt::Debug for ChainTxRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainTxRow")
            .field("id", &self.id)
            .field("nonce", &self.nonce)
            .field("kind", &self.kind)
            .field("status", &self.status)
            .field("calldata", &"<redacted>")
            .field("gas_limit", &self.gas_limit)
            .field("bumps", &self.bumps)
            .field("broadcast_failures", &self.broadcast_failures)
            .field("mined_tx_hash", &self.mined_tx_hash)
            .field("to_address", &self.to_address)
            .finish()
    }
}

/// A stored attempt, read by column name; fees are decimal wei text.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AttemptRow {
    pub tx_hash: String,
    pub attempt: i64,
    pub raw_tx: String,
    pub max_fee_per_gas_wei: String,
    pub max_priority_fee_per_gas_wei: String,
    pub broadcast_at_unix_ms: Option<i64>,
    pub created_at_unix_ms: i64,
}

impl fmt::Debug for AttemptRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttemptRow")
            .field("tx_hash", &self.tx_hash)
            .field("attempt", &self.attempt)
            .field("raw_tx", &"<redacted>")
            .field("max_fee_per_gas_wei", &self.max_fee_per_gas_wei)
            .field("max_priority_fee_per_gas_wei", &self.max_priority_fee_per_gas_wei)
            .field("broadcast_at_unix_ms", &self.broadcast_at_unix_ms)
            .field("created_at_unix_ms", &self.created_at_unix_ms)
            .finish()
    }
}

/// One stored transaction with its number of attempts (for operators and tests).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct TxSummaryRow {
    pub id: String,
    pub sender: String,
    pub nonce: i64,
    pub kind: String,
    pub status: String,
    pub job_count: i64,
    pub bumps: i64,
    pub mined_tx_hash: Option<String>,
    pub gas_used: Option<i64>,
    pub attempt_count: i64,
}

/// The statuses of a transaction that still needs the writer: not yet final on chain.
const OPEN: &str = "status IN ('signed', 'broadcast', 'mined')";

pub async fn insert<'e, E>(exec: E, t: &NewChainTxRow<'_>) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO chain_txs (id, chain_id, sender, nonce, kind, to_address, calldata, gas_limit, job_count, \
         status, bumps, broadcast_failures, created_at_unix_ms, updated_at_unix_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'signed', 0, 0, $10, $10)",
    )
    .bind(t.id)
    .bind(t.chain_id)
    .bind(addr_text(t.sender))
    .bind(t.nonce)
    .bind(t.kind)
    .bind(addr_text(t.to_address))
    .bind(bytes_text(t.calldata))
    .bind(t.gas_limit)
    .bind(t.job_count)
    .bind(t.created_at_unix_ms)
    .execute(exec)
    .await?;
    Ok(())
}

pub async fn insert_attempt<'e, E>(exec: E, a: &NewAttemptRow<'_>) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO chain_tx_attempts (tx_hash, tx_id, attempt, raw_tx, max_fee_per_gas_wei, \
         max_priority_fee_per_gas_wei, created_at_unix_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(b256_text(a.tx_hash))
    .bind(a.tx_id)
    .bind(a.attempt)
    .bind(bytes_text(a.raw_tx))
    .bind(a.max_fee_per_gas_wei.to_string())
    .bind(a.max_priority_fee_per_gas_wei.to_string())
    .bind(a.created_at_unix_ms)
    .execute(exec)
    .await?;
    Ok(())
}

pub async fn by_id<'e, E>(exec: E, id: &str) -> Result<Option<ChainTxRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(
        "SELECT id, nonce, kind, status, calldata, gas_limit, bumps, broadcast_failures, mined_tx_hash, \
         to_address FROM chain_txs WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(exec)
    .await?)
}

/// The attempts of a transaction, oldest first.
pub async fn attempts_of<'e, E>(exec: E, tx_id: &str) -> Result<Vec<AttemptRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(
        "SELECT tx_hash, attempt, raw_tx, max_fee_per_gas_wei, max_priority_fee_per_gas_wei, \
         broadcast_at_unix_ms, created_at_unix_ms FROM chain_tx_attempts WHERE tx_id = $1 ORDER BY attempt",
    )
    .bind(tx_id)
    .fetch_all(exec)
    .await?)
}

/// The ids of `sender`'s open transactions (signed, broadcast or mined), by nonce.
pub async fn open_ids<'e, E>(exec: E, sender: Address) -> Result<Vec<String>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_scalar(&format!(
        "SELECT id FROM chain_txs WHERE sender = $1 AND {OPEN} ORDER BY nonce"
    ))
    .bind(addr_text(sender))
    .fetch_all(exec)
    .await?)
}

/// Transactions of `sender` closed here (`confirmed`, `reverted`, or `dropped` as "nonce used by someone else")
/// whose nonce is at or above `chain_nonce`, the account's nonce on chain now. On chain an account's transactions
/// all have lower nonces than the account, so a reorg took these away (deeper than the finality depth
/// `tx_confirmations`, or between reading the nonce and the receipts, which made a transaction of ours look like a
/// stranger's): their nonces are free again and every later transaction waits on them. Lowest nonce first, at
/// most `limit`.
pub async fn final_at_or_above_nonce<'e, E>(
    exec: E,
    sender: Address,
    chain_nonce: i64,
    limit: i64,
) -> Result<Vec<String>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_scalar(
        "SELECT id FROM chain_txs WHERE sender = $1 AND status IN ('confirmed', 'reverted', 'dropped') AND nonce >= $2 \
         ORDER BY nonce LIMIT $3",
    )
    .bind(addr_text(sender))
    .bind(chain_nonce)
    .bind(limit)
    .fetch_all(exec)
    .await?)
}

/// Re-opens a closed transaction a reorg took away: `broadcast` again (its signed bytes are valid again: same
/// nonce), no longer mined. Whether it was closed. (A dropped one's jobs went back to the queue and may be sent
/// in another transaction meanwhile: sent again, its items are refused by the escrow — an authorization is used
/// once, a remittance released once — and skipped; its nonce is what the key needs.)
pub async fn reopen<'e, E>(exec: E, id: &str, now_ms: i64) -> Result<bool, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let done = sqlx::query(
        "UPDATE chain_txs SET status = 'broadcast', mined_tx_hash = NULL, mined_block_number = NULL, \
         mined_block_hash = NULL, gas_used = NULL, effective_gas_price_wei = NULL, updated_at_unix_ms = $2 \
         WHERE id = $1 AND status IN ('confirmed', 'reverted', 'dropped')",
    )
    .bind(id)
    .bind(now_ms)
    .execute(exec)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// How many open transactions (signed, broadcast or mined) `sender` has.
pub async fn count_open<'e, E>(exec: E, sender: Address) -> Result<i64, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM chain_txs WHERE sender = $1 AND {OPEN}"
    ))
    .bind(addr_text(sender))
    .fetch_one(exec)
    .await?)
}

/// The nonces at or above `nonce_min` that `sender`'s transactions use (every status but abandoned), ascending.
pub async fn nonces_in_use_from<'e, E>(
    exec: E,
    sender: Address,
    nonce_min: i64,
) -> Result<Vec<i64>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_scalar(
        "SELECT nonce FROM chain_txs WHERE sender = $1 AND status <> 'abandoned' AND nonce >= $2 ORDER BY nonce",
    )
    .bind(addr_text(sender))
    .bind(nonce_min)
    .fetch_all(exec)
    .await?)
}

/// The kind of the stored transaction one of whose attempts has hash `tx_hash`.
pub async fn kind_by_attempt_hash<'e, E>(exec: E, tx_hash: B256) -> Result<Option<String>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_scalar(
        "SELECT t.kind FROM chain_tx_attempts a JOIN chain_txs t ON t.id = a.tx_id WHERE a.tx_hash = $1",
    )
    .bind(b256_text(tx_hash))
    .fetch_optional(exec)
    .await?)
}

/// Every stored transaction, by sender, nonce and creation.
pub async fn list<'e, E>(exec: E) -> Result<Vec<TxSummaryRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(
        "SELECT t.id, t.sender, t.nonce, t.kind, t.status, t.job_count, t.bumps, t.mined_tx_hash, t.gas_used, \
         (SELECT COUNT(*) FROM chain_tx_attempts a WHERE a.tx_id = t.id) AS attempt_count FROM chain_txs t \
         ORDER BY t.sender, t.nonce, t.created_at_unix_ms",
    )
    .fetch_all(exec)
    .await?)
}

/// Records an attempt as broadcast at `now_ms`.
pub async fn mark_attempt_broadcast<'e, E>(exec: E, tx_hash: B256, now_ms: i64) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query("UPDATE chain_tx_attempts SET broadcast_at_unix_ms = $2 WHERE tx_hash = $1")
        .bind(b256_text(tx_hash))
        .bind(now_ms)
        .execute(exec)
        .await?;
    Ok(())
}

/// Moves a `signed` transaction to `broadcast` (any other status stays).
pub async fn mark_broadcast<'e, E>(exec: E, id: &str, now_ms: i64) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query("UPDATE chain_txs SET status = 'broadcast', updated_at_unix_ms = $2 WHERE id = $1 AND status = 'signed'")
        .bind(id)
        .bind(now_ms)
        .execute(exec)
        .await?;
    Ok(())
}

/// Records that the node refused the transaction (`failures` times so far).
pub async fn record_broadcast_failure<'e, E>(
    exec: E,
    id: &str,
    failures: i64,
    error: &str,
    now_ms: i64,
) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "UPDATE chain_txs SET broadcast_failures = $2, last_error = $3, updated_at_unix_ms = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(failures)
    .bind(error)
    .bind(now_ms)
    .execute(exec)
    .await?;
    Ok(())
}

/// Records a transaction's receipt: status `mined`.
pub async fn mark_mined<'e, E>(exec: E, m: &MinedRow<'_>) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "UPDATE chain_txs SET status = 'mined', mined_tx_hash = $2, mined_block_number = $3, mined_block_hash = $4, \
         gas_used = $5, effective_gas_price_wei = $6, updated_at_unix_ms = $7 WHERE id = $1",
    )
    .bind(m.id)
    .bind(b256_text(m.mined_tx_hash))
    .bind(m.mined_block_number)
    .bind(m.mined_block_hash.map(b256_text))
    .bind(m.gas_used)
    .bind(m.effective_gas_price_wei.to_string())
    .bind(m.now_ms)
    .execute(exec)
    .await?;
    Ok(())
}

/// A reorg took a `mined` transaction's block away: back to `broadcast`, its receipt facts cleared.
pub async fn unmine<'e, E>(exec: E, id: &str, now_ms: i64) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "UPDATE chain_txs SET status = 'broadcast', mined_tx_hash = NULL, mined_block_number = NULL, \
         mined_block_hash = NULL, gas_used = NULL, effective_gas_price_wei = NULL, updated_at_unix_ms = $2 \
         WHERE id = $1 AND status = 'mined'",
    )
    .bind(id)
    .bind(now_ms)
    .execute(exec)
    .await?;
    Ok(())
}

/// Sets a transaction's status (`confirmed`, `reverted`, `dropped`).
pub async fn set_status<'e, E>(exec: E, id: &str, status: &str, now_ms: i64) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query("UPDATE chain_txs SET status = $2, updated_at_unix_ms = $3 WHERE id = $1")
        .bind(id)
        .bind(status)
        .bind(now_ms)
        .execute(exec)
        .await?;
    Ok(())
}

/// Gives the nonce back: status `abandoned`, with the node's last refusal.
pub async fn abandon<'e, E>(exec: E, id: &str, error: &str, now_ms: i64) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "UPDATE chain_txs SET status = 'abandoned', last_error = $2, updated_at_unix_ms = $3 WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .bind(now_ms)
    .execute(exec)
    .await?;
    Ok(())
}

/// Counts one more fee bump.
pub async fn add_bump<'e, E>(exec: E, id: &str, now_ms: i64) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query("UPDATE chain_txs SET bumps = bumps + 1, updated_at_unix_ms = $2 WHERE id = $1")
        .bind(id)
        .bind(now_ms)
        .execute(exec)
        .await?;
    Ok(())
}
