//! `remesa reconcile`: prints [`crate::engine::reconcile`]'s comparison and exits non-zero on a difference.

use crate::app;
use crate::config::Config;
pub use crate::engine::reconcile::{Reconciliation, reconcile};

/// The command: prints the comparison, returns whether it matched.
pub async fn run(config: Config) -> anyhow::Result<bool> {
    let st = app::state(config).await?;
    let r = reconcile(&st.db, st.chain.as_ref()).await?;
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
