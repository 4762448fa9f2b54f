//! What every handler holds: the database, the engine, the configuration, the chain connection, the shutdown
//! token, this process's identity and its injected faults.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::chain::ChainRuntime;
use crate::config::Config;
use crate::engine::Engine;
use crate::faults::Faults;
use crate::store::Db;
use crate::store::instances::Instance;

/// Everything a handler needs. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub db: Db,
    pub engine: Engine,
    pub config: Arc<Config>,
    pub chain: Option<ChainRuntime>,
    /// Fires on shutdown; background tasks of every module watch it.
    pub shutdown: CancellationToken,
    /// This process (its start id marks the work it claims).
    pub instance: Instance,
    /// Injected faults (crash tests only; empty otherwise).
    pub faults: Faults,
}

/// Gauges computed on scrape.
pub async fn record_gauges(state: &AppState) {
    if let Ok(rows) = crate::store::remittances::count_by_state(&state.db.pool).await {
        for (s, n) in rows {
            #[allow(clippy::cast_precision_loss)]
            let v = n as f64;
            metrics::gauge!("remesa_remittances", "state" => s).set(v);
        }
    }
    if let Ok(counts) = crate::chain::outbox::job_counts(&state.db).await {
        for (kind, status, n) in counts {
            #[allow(clippy::cast_precision_loss)]
            let v = n as f64;
            metrics::gauge!("remesa_chain_jobs", "kind" => kind.as_str(), "status" => status).set(v);
        }
    }
    if let Some(chain) = &state.chain {
        let name = crate::chain::indexer::cursor_name(chain.info.chain_id, chain.info.escrow);
        if let Ok(Some((block, _))) = crate::chain::indexer::cursor(&state.db, &name).await {
            #[allow(clippy::cast_precision_loss)]
            let v = block as f64;
            metrics::gauge!("remesa_indexer_block").set(v);
        }
    }
    if let Ok(escrow) = crate::engine::ledger::balance(&state.db.pool, crate::engine::ledger::ESCROW).await {
        #[allow(clippy::cast_precision_loss)]
        let v = escrow as f64;
        metrics::gauge!("remesa_ledger_escrow_base_units").set(v);
    }
}
