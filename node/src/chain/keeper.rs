//! The refund keeper: every `refund_keeper_interval_ms`, asks the engine for locked remittances past their expiry
//! (by chain time, so devnet time travel works) and enqueues their refunds in the same transaction.

use std::sync::Arc;
use std::time::Duration;

use alloy::eips::BlockNumberOrTag;
use alloy::providers::{DynProvider, Provider};
use tokio_util::sync::CancellationToken;

use super::ChainContext;
use super::config::ChainConfig;
use super::error::ChainError;
use super::lease::Lease;
use super::outbox;
use super::rpc;
use super::sink::{ChainEventSink, DbTx};
use crate::store::Db;

#[derive(Debug)]
pub struct RefundKeeper<S> {
    db: Db,
    provider: DynProvider,
    cfg: ChainConfig,
    sink: Arc<S>,
    lease_name: String,
    holder: String,
    lease: Option<Lease>,
}

impl<S: ChainEventSink> RefundKeeper<S> {
    pub fn new(ctx: &ChainContext<S>) -> Self {
        Self {
            db: ctx.db.clone(),
            provider: ctx.provider.clone(),
            cfg: ctx.config.clone(),
            sink: ctx.sink.clone(),
            lease_name: format!(
                "refund-keeper:{}:{:#x}",
                ctx.deployment.chain_id, ctx.deployment.escrow
            ),
            holder: ctx.lease_holder(),
            lease: None,
        }
    }

    pub async fn run(mut self, cancel: CancellationToken) {
        let interval = Duration::from_millis(self.cfg.refund_keeper_interval_ms);
        loop {
            let result = tokio::select! {
                () = cancel.cancelled() => break,
                r = self.tick() => r,
            };
            match result {
                Ok(n) if n > 0 => tracing::info!(target: "chain::keeper", refunds = n, "refunds enqueued"),
                Ok(_) => {}
                Err(e) => {
                    metrics::counter!("remesa_chain_keeper_errors_total").increment(1);
                    tracing::warn!(target: "chain::keeper", error = %e, "refund keeper round failed");
                    if matches!(e, ChainError::LeaseLost { .. }) {
                        self.lease = None;
                    }
                }
            }
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(interval) => {}
            }
        }
        if let Some(lease) = self.lease.take()
            && let Err(e) = lease.release(&self.db).await
        {
            tracing::warn!(target: "chain::keeper", error = %e, "could not release the keeper lease");
        }
    }

    /// One round; returns how many refunds were newly enqueued.
    pub async fn tick(&mut self) -> Result<u32, ChainError> {
        if let Some(lease) = &self.lease {
            if let Err(e) = lease.renew(&self.db).await {
                self.lease = None;
                return Err(e);
            }
        } else {
            self.lease =
                Lease::try_acquire(&self.db, &self.lease_name, &self.holder, self.cfg.lease_ms).await?;
            if self.lease.is_none() {
                return Ok(0);
            }
        }
        let block = rpc::call(
            "eth_getBlockByNumber",
            self.cfg.rpc_timeout_ms,
            self.provider
                .get_block_by_number(BlockNumberOrTag::Latest)
                .into_future(),
        )
        .await?
        .ok_or_else(|| ChainError::rpc("eth_getBlockByNumber", "no latest block"))?;
        let now_unix_s = block.header.timestamp;
        let mut dbtx: DbTx = self.db.begin().await?;
        // Write first (SQLite takes the write lock at once) and fenced: a keeper that lost its lease commits nothing.
        self.lease
            .as_ref()
            .ok_or_else(|| ChainError::LeaseLost {
                name: self.lease_name.clone(),
            })?
            .renew_in(&mut dbtx)
            .await?;
        let jobs = self
            .sink
            .expired_locked(&mut dbtx, now_unix_s, self.cfg.refund_keeper_batch_max)
            .await
            .map_err(ChainError::Sink)?;
        let mut created = 0u32;
        for job in jobs
            .into_iter()
            .take(usize::try_from(self.cfg.refund_keeper_batch_max).unwrap_or(usize::MAX))
        {
            if outbox::enqueue_refund(&mut dbtx, job).await?.created {
                created = created.saturating_add(1);
            }
        }
        dbtx.commit().await?;
        Ok(created)
    }
}
