//! The `settlements` table: the escrow's `Settled` events (one batch paid to a partner's settlement address), as
//! indexed from the chain.

use sqlx::Executor;

use super::StoreError;

/// A stored settlement, read by column name.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct SettlementRow {
    pub event_id: String,
    pub partner_id: i64,
    pub settlement_address: String,
    pub amount_base_units: i64,
    pub release_count: i64,
    pub tx_hash: String,
    pub block_number: i64,
    pub at_unix_ms: i64,
}

/// Inserts a settlement unless its event is already stored.
pub async fn insert(conn: &mut sqlx::AnyConnection, s: &SettlementRow) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO settlements (event_id, partner_id, settlement_address, amount_base_units, release_count, \
         tx_hash, block_number, at_unix_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(&s.event_id)
    .bind(s.partner_id)
    .bind(&s.settlement_address)
    .bind(s.amount_base_units)
    .bind(s.release_count)
    .bind(&s.tx_hash)
    .bind(s.block_number)
    .bind(s.at_unix_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes the settlement of an event a reorg took away.
pub async fn delete(conn: &mut sqlx::AnyConnection, event_id: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM settlements WHERE event_id = $1")
        .bind(event_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// One partner's settlements, newest first (`block_number`, then `event_id`, descending), strictly before the
/// cursor `(before_block, before_event_id)` (an empty id: before the whole block; `(i64::MAX, "")`: from the
/// newest), at most `limit`.
pub async fn of_partner<'e, E>(
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
        "SELECT event_id, partner_id, settlement_address, amount_base_units, release_count, tx_hash, block_number, \
         at_unix_ms FROM settlements WHERE partner_id = $1 \
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
