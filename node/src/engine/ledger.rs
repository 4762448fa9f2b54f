//! Double-entry ledger in token base units. Accounts: `escrow` (what the escrow contract holds for us),
//! `wallet:<address>` (sender accounts), `partner:<id>` (paid to a partner's settlement address), `external`
//! (the rest of the world: mints and transfers in). Every entry's postings sum to zero; an entry is keyed by its
//! source (e.g. `chain:<event id>`) so it is booked once; a reorg books a reversing entry.

use sqlx::Row;

use super::{EngineError, Result};
use crate::store::{next_counter, now_ms};

pub const ESCROW: &str = "escrow";
pub const EXTERNAL: &str = "external";

pub fn wallet(address: &str) -> String {
    format!("wallet:{}", address.to_ascii_lowercase())
}

pub fn partner(id: u64) -> String {
    format!("partner:{id}")
}

/// Books an entry unless one with the same `source` exists. Returns the entry id, or `None` if already booked.
/// Refuses postings that do not balance.
pub async fn post(
    conn: &mut sqlx::AnyConnection,
    remittance_id: Option<&str>,
    kind: &str,
    source: &str,
    block_number: Option<u64>,
    postings: &[(String, i64)],
) -> Result<Option<i64>> {
    let sum = postings
        .iter()
        .try_fold(0i64, |acc, (_, a)| acc.checked_add(*a))
        .ok_or_else(|| EngineError::Internal("ledger amount overflow".into()))?;
    if sum != 0 || postings.len() < 2 {
        return Err(EngineError::Internal(format!(
            "unbalanced ledger entry {kind} ({source}): sum {sum}"
        )));
    }
    let exists = sqlx::query("SELECT id FROM ledger_entries WHERE source = $1")
        .bind(source)
        .fetch_optional(&mut *conn)
        .await?;
    if exists.is_some() {
        return Ok(None);
    }
    let id = next_counter(conn, "ledger_entry").await?;
    let block = block_number.map(|b| i64::try_from(b).unwrap_or(i64::MAX));
    sqlx::query(
        "INSERT INTO ledger_entries (id, remittance_id, kind, source, block_number, at_unix_ms) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(remittance_id)
    .bind(kind)
    .bind(source)
    .bind(block)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    // merge postings to the same account (primary key is entry + account)
    let mut merged: Vec<(String, i64)> = Vec::with_capacity(postings.len());
    for (acc, amt) in postings {
        match merged.iter_mut().find(|(a, _)| a == acc) {
            Some((_, total)) => *total = total.saturating_add(*amt),
            None => merged.push((acc.clone(), *amt)),
        }
    }
    for (account, amount) in merged {
        sqlx::query("INSERT INTO ledger_postings (entry_id, account, amount_base_units) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(account)
            .bind(amount)
            .execute(&mut *conn)
            .await?;
    }
    Ok(Some(id))
}

/// Reverses the (not yet reversed) entry booked from `source`. Returns whether there was one.
pub async fn reverse(conn: &mut sqlx::AnyConnection, source: &str, reason: &str) -> Result<bool> {
    let row = sqlx::query(
        "SELECT id, remittance_id, kind FROM ledger_entries WHERE source = $1 AND reversed_by IS NULL",
    )
    .bind(source)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(false) };
    let id: i64 = row.try_get(0)?;
    let remittance_id: Option<String> = row.try_get(1)?;
    let kind: String = row.try_get(2)?;
    let postings = sqlx::query("SELECT account, amount_base_units FROM ledger_postings WHERE entry_id = $1")
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
    let mut negated = Vec::with_capacity(postings.len());
    for p in postings {
        let account: String = p.try_get(0)?;
        let amount: i64 = p.try_get(1)?;
        negated.push((account, -amount));
    }
    let rev_source = format!("reversal:{id}:{reason}");
    let Some(rev) = post(
        conn,
        remittance_id.as_deref(),
        &format!("reversal:{kind}"),
        &rev_source,
        None,
        &negated,
    )
    .await?
    else {
        return Ok(false);
    };
    sqlx::query("UPDATE ledger_entries SET reversed_by = $1 WHERE id = $2")
        .bind(rev)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(true)
}

/// The balance of one account (base units).
pub async fn balance<'e, E>(exec: E, account: &str) -> Result<i64>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(amount_base_units), 0) AS BIGINT) FROM ledger_postings WHERE account = $1",
    )
    .bind(account)
    .fetch_one(exec)
    .await?;
    Ok(row.try_get(0)?)
}

/// Checks every entry balances and the whole ledger sums to zero; returns the number of entries checked.
pub async fn check_balanced<'e, E>(exec: E) -> Result<u64>
where
    E: sqlx::Executor<'e, Database = sqlx::Any> + Copy,
{
    let bad = sqlx::query(
        "SELECT entry_id FROM ledger_postings GROUP BY entry_id HAVING SUM(amount_base_units) <> 0 LIMIT 5",
    )
    .fetch_all(exec)
    .await?;
    if !bad.is_empty() {
        let ids: Vec<i64> = bad.iter().filter_map(|r| r.try_get(0).ok()).collect();
        return Err(EngineError::Internal(format!(
            "unbalanced ledger entries: {ids:?}"
        )));
    }
    let row = sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) FROM ledger_entries")
        .fetch_one(exec)
        .await?;
    let n: i64 = row.try_get(0)?;
    Ok(crate::store::stored_u64(n, "ledger entry count")?)
}

/// Every account with its balance (for the operator and reconciliation).
pub async fn balances<'e, E>(exec: E) -> Result<Vec<(String, i64)>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let rows = sqlx::query(
        "SELECT account, CAST(SUM(amount_base_units) AS BIGINT) FROM ledger_postings GROUP BY account ORDER BY account",
    )
    .fetch_all(exec)
    .await?;
    rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
}
