//! `remesa reconcile`: the ledger's `escrow` account must equal the escrow contract's token balance at the block
//! the indexer has applied (its cursor). Prints both and exits non-zero on a difference.

use anyhow::Context;

use crate::app;
use crate::config::Config;
use crate::engine::ledger;

/// Result of one reconciliation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciliation {
    pub block: Option<u64>,
    pub ledger_escrow_base_units: i64,
    pub chain_escrow_base_units: String,
    pub ledger_entries: u64,
    pub matches: bool,
}

/// Reconciles the state's ledger against its chain.
pub async fn reconcile(st: &app::AppState) -> anyhow::Result<Reconciliation> {
    let chain = st
        .chain
        .as_ref()
        .context("no chain configured (REMESA_RPC_URL and a deployment file)")?;
    let entries = ledger::check_balanced(&st.db.pool).await?;
    // read the cursor and the ledger in one transaction so they describe the same block
    let mut tx = st.db.begin().await?;
    let name = crate::chain::indexer::cursor_name(chain.info.chain_id, chain.info.escrow);
    let cursor: Option<i64> = sqlx::query_scalar("SELECT block_number FROM chain_cursors WHERE name = $1")
        .bind(&name)
        .fetch_optional(&mut *tx)
        .await?;
    let ledger_escrow = ledger::balance(&mut *tx, ledger::ESCROW).await?;
    tx.commit().await?;
    let block = cursor.and_then(|b| u64::try_from(b).ok());
    let on_chain = match block {
        Some(b) => chain.escrow_balance(Some(b)).await.map_err(anyhow::Error::msg)?,
        None => chain
            .escrow_balance(Some(chain.deployment.deploy_block))
            .await
            .map_err(anyhow::Error::msg)?,
    };
    let matches = u64::try_from(ledger_escrow)
        .ok()
        .map(alloy::primitives::U256::from)
        == Some(on_chain);
    Ok(Reconciliation {
        block,
        ledger_escrow_base_units: ledger_escrow,
        chain_escrow_base_units: on_chain.to_string(),
        ledger_entries: entries,
        matches,
    })
}

/// The command: prints the comparison, returns whether it matched.
pub async fn run(config: Config) -> anyhow::Result<bool> {
    let st = app::state(config).await?;
    let r = reconcile(&st).await?;
    println!(
        "block {}: ledger escrow {} base units, escrow contract {} base units, {} ledger entries (all balanced): {}",
        r.block.map_or("-".to_owned(), |b| b.to_string()),
        r.ledger_escrow_base_units,
        r.chain_escrow_base_units,
        r.ledger_entries,
        if r.matches { "OK" } else { "MISMATCH" }
    );
    Ok(r.matches)
}
