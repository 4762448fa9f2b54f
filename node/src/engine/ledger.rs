//! Double-entry ledger in token base units. Accounts: `escrow` (what the escrow contract holds for us),
//! `wallet:<address>` (sender accounts), `partner:<id>` (paid to a partner's settlement address), `external`
//! (the rest of the world: mints and transfers in). Every entry's postings sum to zero; an entry is keyed by its
//! source (e.g. `chain:<event id>`) so it is booked once; a reorg books a reversing entry.

use super::{EngineError, Result};
use crate::store::ledger as store;
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
    if store::entry_exists(conn, source).await? {
        return Ok(None);
    }
    let id = next_counter(conn, "ledger_entry").await?;
    let block = block_number.map(|b| i64::try_from(b).unwrap_or(i64::MAX));
    // merge postings to the same account (primary key is entry + account)
    let mut merged: Vec<(String, i64)> = Vec::with_capacity(postings.len());
    for (acc, amt) in postings {
        match merged.iter_mut().find(|(a, _)| a == acc) {
            Some((_, total)) => *total = total.saturating_add(*amt),
            None => merged.push((acc.clone(), *amt)),
        }
    }
    let entry = store::NewEntryRow {
        id,
        remittance_id,
        kind,
        source,
        block_number: block,
        at_unix_ms: now_ms(),
        postings: &merged,
    };
    store::insert_entry(conn, &entry).await?;
    Ok(Some(id))
}

/// Reverses the (not yet reversed) entry booked from `source`. Returns whether there was one.
pub async fn reverse(conn: &mut sqlx::AnyConnection, source: &str, reason: &str) -> Result<bool> {
    let Some(entry) = store::unreversed_entry(conn, source, None).await? else {
        return Ok(false);
    };
    let negated: Vec<(String, i64)> = store::postings(conn, entry.id)
        .await?
        .into_iter()
        .map(|p| (p.account, -p.amount_base_units))
        .collect();
    let rev_source = format!("reversal:{}:{reason}", entry.id);
    let Some(rev) = post(
        conn,
        entry.remittance_id.as_deref(),
        &format!("reversal:{}", entry.kind),
        &rev_source,
        None,
        &negated,
    )
    .await?
    else {
        return Ok(false);
    };
    store::mark_reversed(conn, entry.id, rev).await?;
    Ok(true)
}

/// The balance of one account (base units).
pub async fn balance<'e, E>(exec: E, account: &str) -> Result<i64>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    Ok(store::balance(exec, account).await?)
}

/// Checks every entry balances and the whole ledger sums to zero; returns the number of entries checked.
pub async fn check_balanced<'e, E>(exec: E) -> Result<u64>
where
    E: sqlx::Executor<'e, Database = sqlx::Any> + Copy,
{
    let bad = store::unbalanced_entries(exec).await?;
    if !bad.is_empty() {
        return Err(EngineError::Internal(format!(
            "unbalanced ledger entries: {bad:?}"
        )));
    }
    let n = store::entry_count(exec).await?;
    Ok(crate::store::stored_u64(n, "ledger entry count")?)
}

/// Every account with its balance (for the operator and reconciliation).
pub async fn balances<'e, E>(exec: E) -> Result<Vec<(String, i64)>>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    Ok(store::balances(exec)
        .await?
        .into_iter()
        .map(|p| (p.account, p.amount_base_units))
        .collect())
}
