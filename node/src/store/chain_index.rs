//! The indexer's tables: `chain_cursors` (the last applied block, number and hash, per cursor name),
//! `chain_blocks` (a bounded window of applied block hashes, to find the common ancestor after a reorg),
//! `chain_events` (the events applied, so a reorg can say which ones it removed) and `escrow_leaves` (every leaf
//! of the escrow's deposit batches: where each remittance sits, for its proofs).

use alloy::primitives::B256;
use sqlx::Executor;

use super::StoreError;
use super::text::b256_text;

/// A block number and hash (0x-hex), read by column name: a cursor or a kept block.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct BlockRow {
    pub block_number: i64,
    pub block_hash: String,
}

/// An applied event to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEventRow<'a> {
    pub id: &'a str,
    pub cursor_name: &'a str,
    pub block_number: i64,
    pub block_hash: B256,
    pub tx_hash: B256,
    pub log_index: i64,
    pub kind: &'a str,
    pub remittance_id: Option<B256>,
    /// The event as JSON.
    pub payload: &'a str,
}

/// An applied event, as a rollback reports it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct EventRow {
    pub id: String,
    pub kind: String,
    pub block_number: i64,
    pub remittance_id: Option<String>,
}

/// The cursor `name`, if it has started.
pub async fn cursor<'e, E>(exec: E, name: &str) -> Result<Option<BlockRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(
        sqlx::query_as("SELECT block_number, block_hash FROM chain_cursors WHERE name = $1")
            .bind(name)
            .fetch_optional(exec)
            .await?,
    )
}

/// Starts the cursor `name` at a block, unless it exists.
pub async fn init_cursor<'e, E>(
    exec: E,
    name: &str,
    block_number: i64,
    block_hash: B256,
    now_ms: i64,
) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO chain_cursors (name, block_number, block_hash, updated_at_unix_ms) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(block_number)
    .bind(b256_text(block_hash))
    .bind(now_ms)
    .execute(exec)
    .await?;
    Ok(())
}

/// Moves the cursor `name` from one block to another (compare-and-set); false when it was not at `from`.
pub async fn move_cursor<'e, E>(
    exec: E,
    name: &str,
    from: (i64, B256),
    to: (i64, B256),
    now_ms: i64,
) -> Result<bool, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let moved = sqlx::query(
        "UPDATE chain_cursors SET block_number = $1, block_hash = $2, updated_at_unix_ms = $3 \
         WHERE name = $4 AND block_number = $5 AND block_hash = $6",
    )
    .bind(to.0)
    .bind(b256_text(to.1))
    .bind(now_ms)
    .bind(name)
    .bind(from.0)
    .bind(b256_text(from.1))
    .execute(exec)
    .await?;
    Ok(moved.rows_affected() == 1)
}

/// Keeps a block's hash, unless one is kept at that height.
pub async fn keep_block_if_absent<'e, E>(
    exec: E,
    cursor_name: &str,
    block_number: i64,
    block_hash: B256,
) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO chain_blocks (cursor_name, block_number, block_hash) VALUES ($1, $2, $3) \
         ON CONFLICT (cursor_name, block_number) DO NOTHING",
    )
    .bind(cursor_name)
    .bind(block_number)
    .bind(b256_text(block_hash))
    .execute(exec)
    .await?;
    Ok(())
}

/// Keeps a block's hash, replacing the one kept at that height.
pub async fn keep_block<'e, E>(
    exec: E,
    cursor_name: &str,
    block_number: i64,
    block_hash: B256,
) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO chain_blocks (cursor_name, block_number, block_hash) VALUES ($1, $2, $3) \
         ON CONFLICT (cursor_name, block_number) DO UPDATE SET block_hash = excluded.block_hash",
    )
    .bind(cursor_name)
    .bind(block_number)
    .bind(b256_text(block_hash))
    .execute(exec)
    .await?;
    Ok(())
}

/// Forgets the kept blocks below `block_number`.
pub async fn forget_blocks_below<'e, E>(
    exec: E,
    cursor_name: &str,
    block_number: i64,
) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query("DELETE FROM chain_blocks WHERE cursor_name = $1 AND block_number < $2")
        .bind(cursor_name)
        .bind(block_number)
        .execute(exec)
        .await?;
    Ok(())
}

/// The kept blocks at or below `block_number`, newest first.
pub async fn blocks_down_from<'e, E>(
    exec: E,
    cursor_name: &str,
    block_number: i64,
) -> Result<Vec<BlockRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(
        "SELECT block_number, block_hash FROM chain_blocks WHERE cursor_name = $1 AND block_number <= $2 \
         ORDER BY block_number DESC",
    )
    .bind(cursor_name)
    .bind(block_number)
    .fetch_all(exec)
    .await?)
}

pub async fn insert_event<'e, E>(exec: E, ev: &NewEventRow<'_>) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO chain_events (id, cursor_name, block_number, block_hash, tx_hash, log_index, kind, \
         remittance_id, payload) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(ev.id)
    .bind(ev.cursor_name)
    .bind(ev.block_number)
    .bind(b256_text(ev.block_hash))
    .bind(b256_text(ev.tx_hash))
    .bind(ev.log_index)
    .bind(ev.kind)
    .bind(ev.remittance_id.map(b256_text))
    .bind(ev.payload)
    .execute(exec)
    .await?;
    Ok(())
}

/// The applied events above `block_number`, in chain order.
pub async fn events_above<'e, E>(
    exec: E,
    cursor_name: &str,
    block_number: i64,
) -> Result<Vec<EventRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(
        "SELECT id, kind, block_number, remittance_id FROM chain_events WHERE cursor_name = $1 AND block_number > $2 \
         ORDER BY block_number, log_index",
    )
    .bind(cursor_name)
    .bind(block_number)
    .fetch_all(exec)
    .await?)
}

/// Deletes the applied events and kept blocks above `block_number`.
pub async fn delete_above(
    conn: &mut sqlx::AnyConnection,
    cursor_name: &str,
    block_number: i64,
) -> Result<(), StoreError> {
    for table in ["chain_events", "chain_blocks", "escrow_leaves"] {
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE cursor_name = $1 AND block_number > $2"
        ))
        .bind(cursor_name)
        .bind(block_number)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// One leaf of a deposit batch: a deposited remittance (or the zero id of a skipped item) with its sender and amount.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct LeafRow {
    pub leaf_index: i64,
    pub remittance_id: String,
    pub sender: String,
    /// Decimal base units.
    pub amount_base_units: String,
}

/// Stores a deposit batch's leaves (all n item positions, in order) under its root.
pub async fn insert_leaves(
    conn: &mut sqlx::AnyConnection,
    cursor_name: &str,
    root: B256,
    block_number: i64,
    leaves: &[LeafRow],
) -> Result<(), StoreError> {
    for l in leaves {
        sqlx::query(
            "INSERT INTO escrow_leaves (cursor_name, root, leaf_index, remittance_id, sender, amount_base_units, \
             block_number) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (cursor_name, root, leaf_index) DO NOTHING",
        )
        .bind(cursor_name)
        .bind(b256_text(root))
        .bind(l.leaf_index)
        .bind(&l.remittance_id)
        .bind(&l.sender)
        .bind(&l.amount_base_units)
        .bind(block_number)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The leaves of the deposit batch `root`, in order (empty when the indexer has not seen it).
pub async fn leaves_of<'e, E>(exec: E, cursor_name: &str, root: B256) -> Result<Vec<LeafRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(
        "SELECT leaf_index, remittance_id, sender, amount_base_units FROM escrow_leaves \
         WHERE cursor_name = $1 AND root = $2 ORDER BY leaf_index",
    )
    .bind(cursor_name)
    .bind(b256_text(root))
    .fetch_all(exec)
    .await?)
}

/// The root of the deposit batch that holds remittance `id`, if the indexer has applied its deposit.
pub async fn batch_of<'e, E>(exec: E, cursor_name: &str, id: B256) -> Result<Option<String>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT root FROM escrow_leaves WHERE cursor_name = $1 AND remittance_id = $2 \
         ORDER BY block_number DESC LIMIT 1",
    )
    .bind(cursor_name)
    .bind(b256_text(id))
    .fetch_optional(exec)
    .await?;
    Ok(row.map(|r| r.0))
}
