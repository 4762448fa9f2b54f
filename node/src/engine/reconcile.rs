//! Reconciliation: the ledger's `escrow` account must equal the escrow contract's token balance at the block the
//! indexer has applied (its cursor). `remesa reconcile` prints it; `GET /v1/admin/reconcile` serves it.

use alloy::primitives::U256;

use super::{EngineError, ledger};
use crate::chain::ChainRuntime;
use crate::store::Db;

/// Result of one reconciliation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciliation {
    pub block: Option<u64>,
    pub ledger_escrow_base_units: i64,
    pub chain_escrow_base_units: String,
    pub ledger_entries: u64,
    pub matches: bool,
}

/// Why a reconciliation could not be made (a difference is not an error: see [`Reconciliation::matches`]).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("no chain configured (REMESA_RPC_URL and a deployment file)")]
    NoChain,
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Chain(String),
}

/// Reconciles the ledger in `db` against the escrow on `chain`.
pub async fn reconcile(db: &Db, chain: Option<&ChainRuntime>) -> Result<Reconciliation, ReconcileError> {
    let chain = chain.ok_or(ReconcileError::NoChain)?;
    let entries = ledger::check_balanced(&db.pool).await?;
    // read the cursor and the ledger in one transaction so they describe the same block
    let mut tx = db.pool.begin().await?;
    let name = crate::chain::indexer::cursor_name(chain.info.chain_id, chain.info.escrow);
    let cursor = crate::store::chain_index::cursor(&mut *tx, &name)
        .await
        .map_err(EngineError::from)?
        .map(|c| c.block_number);
    let ledger_escrow = ledger::balance(&mut *tx, ledger::ESCROW).await?;
    tx.commit().await?;
    let block = cursor.and_then(|b| u64::try_from(b).ok());
    let on_chain = chain
        .escrow_balance(Some(block.unwrap_or(chain.deployment.deploy_block)))
        .await
        .map_err(ReconcileError::Chain)?;
    let matches = u64::try_from(ledger_escrow).ok().map(U256::from) == Some(on_chain);
    Ok(Reconciliation {
        block,
        ledger_escrow_base_units: ledger_escrow,
        chain_escrow_base_units: on_chain.to_string(),
        ledger_entries: entries,
        matches,
    })
}
