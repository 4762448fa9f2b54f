//! The node's side of the chain: the transactional outbox and its writers (one per sending key), the indexer of
//! escrow and token events, and the refund keeper.
//!
//! - The engine enqueues work inside its own database transaction with [`outbox::enqueue_deposit`],
//!   [`outbox::enqueue_release`], [`outbox::enqueue_refund`] and (P2P transfers on the token)
//!   [`outbox::enqueue_transfer`].
//! - The engine implements [`ChainEventSink`]; the indexer calls it inside the transaction that advances its
//!   cursor, so event application and cursor move commit together.
//! - [`spawn_workers`] starts one [`writer::Writer`] per sending key, the [`indexer::Indexer`] and the
//!   [`keeper::RefundKeeper`]; they stop on the cancellation token.
//!
//! Architecture invariant: every transaction is in the database (intent, nonce, raw bytes, hash, fees) before it
//! is broadcast, and a key's nonces are used only by the holder of that key's lease.
//!
//! Tables (migrations `0002_chain.sql`), whose queries live in the store: `chain_jobs` (`store::outbox`),
//! `chain_txs` and `chain_tx_attempts` (`store::chain_txs`), `chain_leases` (`store::lease`), `chain_cursors`,
//! `chain_blocks` and `chain_events` (`store::chain_index`).

pub mod abi;
pub use crate::config::chain as config;
pub mod db;
pub mod error;
pub mod indexer;
pub mod keeper;
pub mod lease;
pub mod outbox;
mod rpc;
pub mod runtime;
pub mod sink;
pub mod types;
pub mod writer;

use std::sync::Arc;

use alloy::primitives::Address;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::store::Db;

pub use config::ChainConfig;
pub use error::ChainError;
pub use outbox::{
    Enqueued, enqueue_cancel, enqueue_deposit, enqueue_refund, enqueue_release, enqueue_transfer,
};
pub use runtime::{ChainInfo, ChainRuntime, Deployment, ExpectedToken, RuntimeError};
pub use sink::{ChainEventSink, DbTx, SinkError};
pub use types::*;

/// Where the escrow lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EscrowDeployment {
    pub chain_id: u64,
    pub escrow: Address,
    pub token: Address,
    /// The escrow's deployment block: the indexer starts there.
    pub start_block: u64,
}

/// Everything the chain workers share.
#[derive(Debug)]
pub struct ChainContext<S> {
    pub db: Db,
    pub provider: DynProvider,
    pub deployment: EscrowDeployment,
    pub config: ChainConfig,
    pub sink: Arc<S>,
    /// The lease holder name of these workers (`chain@<start id>`, so a restart of the same node takes its leases
    /// over at once, see `store::instances::register`); `None`: a fresh random name per worker.
    pub holder: Option<String>,
}

impl<S> Clone for ChainContext<S> {
    fn clone(&self) -> Self {
        Self {
            db: self.db.clone(),
            provider: self.provider.clone(),
            deployment: self.deployment.clone(),
            config: self.config.clone(),
            sink: self.sink.clone(),
            holder: self.holder.clone(),
        }
    }
}

/// An HTTP JSON-RPC provider for the chain workers (they sign themselves: no wallet filler).
pub fn connect_http(rpc_url: &str) -> Result<DynProvider, ChainError> {
    let url = rpc_url
        .parse()
        .map_err(|e| ChainError::Config(format!("rpc url {rpc_url:?}: {e}")))?;
    Ok(ProviderBuilder::new()
        .disable_recommended_fillers()
        .connect_http(url)
        .erased())
}

impl<S> ChainContext<S> {
    /// The lease holder name for one worker: the context's, or a fresh random one.
    pub fn lease_holder(&self) -> String {
        self.holder
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
    }
}

/// Starts a writer per sending key, the indexer and the refund keeper. Each stops when `cancel` fires (a writer
/// finishes its current step first; a step cut short is reconciled on the next start).
pub fn spawn_workers<S: ChainEventSink>(
    ctx: ChainContext<S>,
    sending_keys: Vec<PrivateKeySigner>,
    cancel: CancellationToken,
) -> Result<Vec<JoinHandle<()>>, ChainError> {
    ctx.config.validate().map_err(ChainError::Config)?;
    let mut handles = Vec::with_capacity(sending_keys.len() + 2);
    for key in sending_keys {
        let w = writer::Writer::new(&ctx, key);
        handles.push(tokio::spawn(w.run(cancel.child_token())));
    }
    handles.push(tokio::spawn(
        indexer::Indexer::new(&ctx).run(cancel.child_token()),
    ));
    handles.push(tokio::spawn(
        keeper::RefundKeeper::new(&ctx).run(cancel.child_token()),
    ));
    Ok(handles)
}
