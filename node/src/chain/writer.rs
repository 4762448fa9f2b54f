//! One writer per sending key: claims queued jobs, batches them, and owns the key's nonces.
//!
//! Every transaction is signed and written to `chain_txs` / `chain_tx_attempts` (intent, nonce, raw bytes, hash,
//! fees) in the same database transaction that moves its jobs to `in_tx`, and only then broadcast. Each tick the
//! writer first reconciles what it stored with the chain (receipts, nonce, mempool): it broadcasts stored
//! transactions the node does not know, records receipts, re-prices stuck ones (same nonce, higher fees, bounded by
//! `bumps_max` and `max_fee_per_gas_wei_ceiling`), puts the jobs of dropped transactions back in the queue, and
//! finishes jobs once their transaction has `tx_confirmations`. Only when that pass succeeded does it send new work,
//! so after a crash nothing new goes out before the chain and the database agree.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy::eips::eip2718::Encodable2718;
use alloy::network::TxSignerSync;
use alloy::primitives::{Address, B256, Bytes, TxKind, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use tokio_util::sync::CancellationToken;

use super::ChainContext;
use super::abi::{RemittanceEscrow, batch_calldata};
use super::config::ChainConfig;
use super::db::{addr_text, now_ms, parse_addr, parse_b256, parse_bytes, parse_wei, to_i64, to_u64};
use super::error::ChainError;
use super::lease::Lease;
use super::outbox::{self, ClaimedJob};
use super::rpc::{self, Broadcast};
use super::sink::{ChainEventSink, DbTx};
use super::types::{FailedJob, JobKind, JobPayload, SkipClass, SkipReason, classify_skip, describe_skip};
use crate::store::chain_txs::{self, MinedRow, NewAttemptRow, NewChainTxRow};
use crate::store::{Db, chain_index, outbox as job_rows, write_tx};
use remesa_wallet::batches::Placement;

/// What one writer tick did (for tests and logs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    pub lease_held: bool,
    /// New transactions signed, stored and broadcast.
    pub sent: u32,
    /// Stored transactions (re-)broadcast because the node did not know them.
    pub rebroadcast: u32,
    pub bumped: u32,
    /// Transactions whose receipt was seen this tick.
    pub mined: u32,
    /// Transactions that reached `tx_confirmations` (jobs done, or retried if reverted).
    pub finalized: u32,
    /// Transactions whose nonce was taken by a transaction that is not ours (jobs back in the queue).
    pub dropped: u32,
}

/// A transaction signed and stored but not yet broadcast.
#[derive(Clone, Debug)]
pub struct PreparedTx {
    pub tx_id: String,
    pub tx_hash: B256,
    pub nonce: u64,
    pub kind: JobKind,
    pub job_count: usize,
}

/// `Debug` leaves out the signed bytes (a release carries the pickup code until it is mined).
#[derive(Clone)]
struct StoredAttempt {
    tx_hash: B256,
    attempt: i64,
    raw: Bytes,
    max_fee_per_gas_wei: u128,
    max_priority_fee_per_gas_wei: u128,
    last_sent_unix_ms: i64,
}

/// `Debug` leaves out the calldata (a release carries the pickup code until it is mined).
#[derive(Clone)]
struct StoredTx {
    id: String,
    nonce: u64,
    kind: JobKind,
    /// The contract called (the escrow, or the token for a P2P transfer); re-priced attempts go to the same one.
    to: Address,
    status: String,
    calldata: Bytes,
    gas_limit: u64,
    bumps: i64,
    broadcast_failures: i64,
    mined_tx_hash: Option<B256>,
    /// Oldest first; never empty.
    attempts: Vec<StoredAttempt>,
}

impl std::fmt::Debug for StoredAttempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredAttempt")
            .field("tx_hash", &self.tx_hash)
            .field("attempt", &self.attempt)
            .field("max_fee_per_gas_wei", &self.max_fee_per_gas_wei)
            .field("max_priority_fee_per_gas_wei", &self.max_priority_fee_per_gas_wei)
            .field("last_sent_unix_ms", &self.last_sent_unix_ms)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for StoredTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredTx")
            .field("id", &self.id)
            .field("nonce", &self.nonce)
            .field("kind", &self.kind)
            .field("to", &self.to)
            .field("status", &self.status)
            .field("gas_limit", &self.gas_limit)
            .field("bumps", &self.bumps)
            .field("broadcast_failures", &self.broadcast_failures)
            .field("mined_tx_hash", &self.mined_tx_hash)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

impl StoredTx {
    fn latest(&self) -> Result<&StoredAttempt, ChainError> {
        self.attempts
            .last()
            .ok_or_else(|| ChainError::corrupt(format!("transaction {} has no attempts", self.id)))
    }
}

/// The writer of one sending key.
/// `EnforcedPause()`: OpenZeppelin `Pausable`'s revert, the escrow's answer to a deposit while paused.
const ESCROW_PAUSED: [u8; 4] = [0xd9, 0x3c, 0x06, 0x65];

#[derive(Debug)]
pub struct Writer<S> {
    db: Db,
    provider: DynProvider,
    signer: PrivateKeySigner,
    sender: Address,
    sender_text: String,
    chain_id: u64,
    escrow: Address,
    token: Address,
    cfg: ChainConfig,
    sink: Arc<S>,
    holder: String,
    lease: Option<Lease>,
    batch_cap: Option<u32>,
}

impl<S: ChainEventSink> Writer<S> {
    /// The writer of `signer`'s key.
    pub fn new(ctx: &ChainContext<S>, signer: PrivateKeySigner) -> Self {
        let sender = signer.address();
        Self {
            db: ctx.db.clone(),
            provider: ctx.provider.clone(),
            signer,
            sender,
            sender_text: addr_text(sender),
            chain_id: ctx.deployment.chain_id,
            escrow: ctx.deployment.escrow,
            token: ctx.deployment.token,
            cfg: ctx.config.clone(),
            sink: ctx.sink.clone(),
            holder: ctx.lease_holder(),
            lease: None,
            batch_cap: None,
        }
    }

    pub fn sender(&self) -> Address {
        self.sender
    }

    /// The contract a job kind calls: the token for P2P transfers, the escrow otherwise.
    fn target(&self, kind: JobKind) -> Address {
        if kind.is_token_call() {
            self.token
        } else {
            self.escrow
        }
    }

    fn lease_name(&self) -> String {
        format!("writer:{}:{}", self.chain_id, self.sender_text)
    }

    /// Runs until `cancel` fires, then gives the lease up.
    pub async fn run(mut self, cancel: CancellationToken) {
        let poll = Duration::from_millis(self.cfg.writer_poll_ms);
        let mut failures: u32 = 0;
        loop {
            let result = tokio::select! {
                () = cancel.cancelled() => break,
                r = self.tick() => r,
            };
            let delay = match result {
                Ok(report) => {
                    failures = 0;
                    if report != TickReport::default()
                        && report
                            != (TickReport {
                                lease_held: true,
                                ..Default::default()
                            })
                    {
                        tracing::debug!(target: "chain::outbox", sender = %self.sender, ?report, "writer tick");
                    }
                    poll
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    metrics::counter!("remesa_chain_writer_errors_total").increment(1);
                    tracing::warn!(target: "chain::outbox", sender = %self.sender, error = %e, "writer tick failed");
                    if matches!(e, ChainError::LeaseLost { .. }) {
                        self.lease = None;
                    }
                    poll.saturating_mul(failures.min(10))
                }
            };
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(delay) => {}
            }
        }
        if let Some(lease) = self.lease.take()
            && let Err(e) = lease.release(&self.db).await
        {
            tracing::warn!(target: "chain::outbox", error = %e, "could not release the writer lease");
        }
    }

    /// Takes (or renews) this key's lease. False while another process holds it.
    pub async fn ensure_lease(&mut self) -> Result<bool, ChainError> {
        if let Some(lease) = &self.lease {
            match lease.renew(&self.db).await {
                Ok(()) => return Ok(true),
                Err(ChainError::LeaseLost { .. }) => {
                    tracing::warn!(target: "chain::outbox", sender = %self.sender, "writer lease lost");
                    self.lease = None;
                }
                Err(e) => return Err(e),
            }
        }
        match Lease::try_acquire(&self.db, &self.lease_name(), &self.holder, self.cfg.lease_ms).await? {
            Some(lease) => {
                tracing::info!(target: "chain::outbox", sender = %self.sender, fencing = lease.fencing(), "writer lease taken");
                // Claims this key made before a crash never reached a transaction: give them back.
                let released = outbox::release_claims(&self.db, &self.sender_text).await?;
                if released > 0 {
                    tracing::info!(target: "chain::outbox", released, "stale claims released");
                }
                self.lease = Some(lease);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn lease(&self) -> Result<&Lease, ChainError> {
        self.lease.as_ref().ok_or_else(|| ChainError::LeaseLost {
            name: self.lease_name(),
        })
    }

    /// One round: lease, reconcile stored transactions with the chain, then send new batches.
    pub async fn tick(&mut self) -> Result<TickReport, ChainError> {
        let mut report = TickReport::default();
        if !self.ensure_lease().await? {
            return Ok(report);
        }
        report.lease_held = true;
        self.reconcile(&mut report).await?;
        self.send_new(&mut report).await?;
        Ok(report)
    }

    async fn batch_cap(&mut self) -> Result<u32, ChainError> {
        if let Some(cap) = self.batch_cap {
            return Ok(cap);
        }
        let req = TransactionRequest::default()
            .to(self.escrow)
            .input(RemittanceEscrow::MAX_BATCHCall {}.abi_encode().into());
        let out = rpc::call(
            "eth_call MAX_BATCH",
            self.cfg.rpc_timeout_ms,
            self.provider.call(req).into_future(),
        )
        .await?;
        let max = RemittanceEscrow::MAX_BATCHCall::abi_decode_returns(&out)
            .map_err(|e| ChainError::rpc("eth_call MAX_BATCH", e))?;
        let max = u32::try_from(max).unwrap_or(u32::MAX).max(1);
        let cap = self.cfg.batch_size_max.min(max);
        self.batch_cap = Some(cap);
        Ok(cap)
    }

    // ---- reconcile -------------------------------------------------------------------------------------------

    async fn reconcile(&mut self, report: &mut TickReport) -> Result<(), ChainError> {
        let timeout = self.cfg.rpc_timeout_ms;
        // Nonce first, receipts after: a receipt found later is never mistaken for a foreign transaction.
        let chain_nonce = rpc::call(
            "eth_getTransactionCount",
            timeout,
            self.provider
                .get_transaction_count(self.sender)
                .latest()
                .into_future(),
        )
        .await?;
        let head = rpc::call(
            "eth_blockNumber",
            timeout,
            self.provider.get_block_number().into_future(),
        )
        .await?;
        self.reopen_reorged(chain_nonce).await?;
        let open = self.load_open().await?;
        for tx in open {
            if tx.status == "mined" {
                self.check_mined(&tx, head, report).await?;
                continue;
            }
            if let Some((hash, receipt)) = self.find_receipt(&tx).await? {
                self.record_mined(&tx, hash, &receipt).await?;
                report.mined += 1;
                let mined = StoredTx {
                    status: "mined".into(),
                    mined_tx_hash: Some(hash),
                    ..tx
                };
                self.check_mined(&mined, head, report).await?;
                continue;
            }
            if tx.nonce < chain_nonce {
                // The nonce is used and none of our attempts has a receipt: someone else used the key.
                self.drop_tx(&tx).await?;
                report.dropped += 1;
                continue;
            }
            let latest = tx.latest()?.clone();
            if tx.status == "signed" {
                self.send_attempt(&tx, &latest, report, true).await?;
                continue;
            }
            let age_ms = now_ms().saturating_sub(latest.last_sent_unix_ms);
            let bump_after = i64::try_from(self.cfg.bump_after_ms).unwrap_or(i64::MAX);
            if age_ms >= bump_after
                && tx.bumps < i64::from(self.cfg.bumps_max)
                && self.bump(&tx, report).await?
            {
                continue;
            }
            let known = rpc::call(
                "eth_getTransactionByHash",
                timeout,
                self.provider
                    .get_transaction_by_hash(latest.tx_hash)
                    .into_future(),
            )
            .await?;
            if known.is_none() {
                self.send_attempt(&tx, &latest, report, true).await?;
            }
        }
        Ok(())
    }

    /// A reorg deeper than `tx_confirmations` can take away transactions already final here. On chain an
    /// account's transactions all have nonces below the account's; a final one at or above it is gone, and every
    /// later transaction of the key would wait on its nonce forever (found by the fault suite's reorg scenario:
    /// the writer re-priced the later ones until it gave up, and the deposits and releases the reorg removed were
    /// never sent again). Re-open them, with the jobs they completed: this pass sends their signed bytes again and
    /// a later one finalizes them anew.
    async fn reopen_reorged(&self, chain_nonce: u64) -> Result<(), ChainError> {
        let nonce = i64::try_from(chain_nonce).unwrap_or(i64::MAX);
        let gone = chain_txs::final_at_or_above_nonce(&self.db.pool, self.sender, nonce, 256).await?;
        for id in gone {
            let mut dbtx: DbTx = self.db.begin().await?;
            self.lease()?.renew_in(&mut dbtx).await?;
            if chain_txs::reopen(&mut *dbtx, &id, now_ms()).await? {
                job_rows::reopen_in_tx(&mut *dbtx, &id, now_ms()).await?;
            }
            dbtx.commit().await?;
            metrics::counter!("remesa_chain_outbox_reorged_total").increment(1);
            tracing::warn!(target: "chain::outbox", tx_id = id, chain_nonce,
                "a final transaction was reorged out (deeper than tx_confirmations); sending it again");
        }
        Ok(())
    }

    async fn find_receipt(&self, tx: &StoredTx) -> Result<Option<(B256, TransactionReceipt)>, ChainError> {
        for attempt in tx.attempts.iter().rev() {
            let receipt = rpc::call(
                "eth_getTransactionReceipt",
                self.cfg.rpc_timeout_ms,
                self.provider
                    .get_transaction_receipt(attempt.tx_hash)
                    .into_future(),
            )
            .await?;
            if let Some(r) = receipt
                && r.block_number.is_some()
            {
                return Ok(Some((attempt.tx_hash, r)));
            }
        }
        Ok(None)
    }

    async fn check_mined(
        &mut self,
        tx: &StoredTx,
        head: u64,
        report: &mut TickReport,
    ) -> Result<(), ChainError> {
        let hash = tx
            .mined_tx_hash
            .ok_or_else(|| ChainError::corrupt(format!("mined tx {} has no hash", tx.id)))?;
        let receipt = rpc::call(
            "eth_getTransactionReceipt",
            self.cfg.rpc_timeout_ms,
            self.provider.get_transaction_receipt(hash).into_future(),
        )
        .await?;
        let Some(receipt) = receipt.filter(|r| r.block_number.is_some()) else {
            // A reorg took the block away: the same signed bytes are valid again; send them again.
            metrics::counter!("remesa_chain_outbox_reorged_total").increment(1);
            tracing::warn!(target: "chain::outbox", tx_id = tx.id, %hash, "mined transaction reorged out; re-broadcasting");
            write_tx!(self.db, |t| chain_txs::unmine(&mut *t, &tx.id, now_ms()))?;
            if let Some(attempt) = tx.attempts.iter().find(|a| a.tx_hash == hash) {
                self.send_attempt(tx, &attempt.clone(), report, true).await?;
            }
            return Ok(());
        };
        let block = receipt.block_number.unwrap_or_default();
        let confirmations = head.saturating_add(1).saturating_sub(block);
        if confirmations < self.cfg.tx_confirmations.max(1) {
            return Ok(());
        }
        self.finalize(tx, &receipt).await?;
        report.finalized += 1;
        Ok(())
    }

    async fn record_mined(
        &self,
        tx: &StoredTx,
        hash: B256,
        r: &TransactionReceipt,
    ) -> Result<(), ChainError> {
        let mined = MinedRow {
            id: &tx.id,
            mined_tx_hash: hash,
            mined_block_number: to_i64(r.block_number.unwrap_or_default())?,
            mined_block_hash: r.block_hash,
            gas_used: to_i64(r.gas_used)?,
            effective_gas_price_wei: r.effective_gas_price,
            now_ms: now_ms(),
        };
        write_tx!(self.db, |t| chain_txs::mark_mined(&mut *t, &mined))?;
        let status = if r.status() { "success" } else { "reverted" };
        metrics::counter!("remesa_chain_txs_mined_total", "kind" => tx.kind.as_str(), "status" => status)
            .increment(1);
        metrics::counter!("remesa_chain_gas_used_total", "kind" => tx.kind.as_str()).increment(r.gas_used);
        tracing::info!(
            target: "chain::outbox", tx_id = tx.id, %hash, nonce = tx.nonce, kind = %tx.kind,
            block = r.block_number, gas_used = r.gas_used, status, "transaction mined"
        );
        Ok(())
    }

    /// The transaction is deep enough: its jobs are done (or, if it reverted, retried later).
    async fn finalize(&self, tx: &StoredTx, receipt: &TransactionReceipt) -> Result<(), ChainError> {
        let mut dbtx: DbTx = self.db.begin().await?;
        self.lease()?.renew_in(&mut dbtx).await?;
        let success = receipt.status();
        let status = if success { "confirmed" } else { "reverted" };
        chain_txs::set_status(&mut *dbtx, &tx.id, status, now_ms()).await?;
        if success {
            self.settle_skipped(&mut dbtx, tx, receipt).await?;
            job_rows::complete_in_tx(&mut *dbtx, &tx.id, now_ms()).await?;
        } else {
            metrics::counter!("remesa_chain_txs_reverted_total", "kind" => tx.kind.as_str()).increment(1);
            self.return_jobs(&mut dbtx, &tx.id, Some("transaction reverted"))
                .await?;
        }
        dbtx.commit().await?;
        Ok(())
    }

    /// The items the escrow skipped in this (successful) transaction, by [`SkipClass`]: a transient refusal (the
    /// token paused, an item out of its gas cap) goes back to the queue as a failed attempt of that job alone; a
    /// blacklisted party fails that job at once (the money stays where it was; an operator sees the failed job and
    /// its reason); the other items are done as the escrow left them (the indexer books refusals). A batch is
    /// never charged for one item.
    async fn settle_skipped(
        &self,
        dbtx: &mut DbTx,
        tx: &StoredTx,
        receipt: &TransactionReceipt,
    ) -> Result<(), ChainError> {
        use alloy::sol_types::SolEvent;
        let rows = job_rows::in_tx(&mut **dbtx, &tx.id).await?;
        for log in receipt.inner.logs() {
            if log.address() != self.escrow {
                continue;
            }
            let Ok(ev) = RemittanceEscrow::Skipped::decode_log(&log.inner) else {
                continue;
            };
            let reason = SkipReason::from_u8(ev.reason);
            let class = classify_skip(reason, &ev.detail);
            if !matches!(class, SkipClass::Transient | SkipClass::Blocked) {
                continue;
            }
            let mut row = None;
            for r in &rows {
                if parse_b256(&r.remittance_id)? == ev.id {
                    row = Some(r);
                    break;
                }
            }
            let Some(row) = row else { continue };
            let why = format!("skipped by the escrow: {}", describe_skip(reason, &ev.detail));
            tracing::warn!(
                target: "chain::outbox", tx_id = tx.id, job_id = row.id, remittance_id = row.remittance_id,
                class = ?class, reason = why, "batch item skipped"
            );
            let failed = if class == SkipClass::Transient {
                outbox::retry_later(
                    &mut *dbtx,
                    &[(row.id.clone(), row.attempts)],
                    &why,
                    self.cfg.job_attempts_max,
                    self.cfg.job_backoff_ms,
                    self.cfg.job_backoff_ms_max,
                )
                .await?
                .contains(&row.id)
            } else {
                job_rows::fail(
                    &mut **dbtx,
                    &row.id,
                    row.attempts.saturating_add(1),
                    &why,
                    now_ms(),
                )
                .await?;
                true
            };
            if failed {
                self.report_failed(dbtx, row, &why).await?;
            }
        }
        Ok(())
    }

    /// Tells the sink a job failed for good.
    async fn report_failed(
        &self,
        dbtx: &mut DbTx,
        row: &job_rows::InTxJobRow,
        error: &str,
    ) -> Result<(), ChainError> {
        let job = FailedJob {
            kind: JobKind::parse(&row.kind)
                .ok_or_else(|| ChainError::corrupt(format!("job kind {}", row.kind)))?,
            remittance_id: parse_b256(&row.remittance_id)?,
            attempts: u32::try_from(row.attempts.saturating_add(1)).unwrap_or(u32::MAX),
            job_id: row.id.clone(),
            error: error.to_owned(),
        };
        metrics::counter!("remesa_chain_jobs_failed_total", "kind" => job.kind.as_str()).increment(1);
        self.sink
            .on_job_failed(dbtx, &job)
            .await
            .map_err(ChainError::Sink)
    }

    /// Puts a transaction's jobs back in the queue. With an error, that counts as a failed attempt.
    async fn return_jobs(&self, dbtx: &mut DbTx, tx_id: &str, error: Option<&str>) -> Result<(), ChainError> {
        let Some(error) = error else {
            job_rows::requeue_in_tx(&mut **dbtx, tx_id, now_ms()).await?;
            return Ok(());
        };
        let rows = job_rows::in_tx(&mut **dbtx, tx_id).await?;
        let pairs: Vec<(String, i64)> = rows.iter().map(|r| (r.id.clone(), r.attempts)).collect();
        let failed = outbox::retry_later(
            &mut *dbtx,
            &pairs,
            error,
            self.cfg.job_attempts_max,
            self.cfg.job_backoff_ms,
            self.cfg.job_backoff_ms_max,
        )
        .await?;
        for row in rows.iter().filter(|r| failed.contains(&r.id)) {
            self.report_failed(dbtx, row, error).await?;
        }
        Ok(())
    }

    async fn drop_tx(&self, tx: &StoredTx) -> Result<(), ChainError> {
        tracing::warn!(
            target: "chain::outbox", tx_id = tx.id, nonce = tx.nonce,
            "nonce used by a transaction that is not ours; jobs go back to the queue"
        );
        let mut dbtx: DbTx = self.db.begin().await?;
        self.lease()?.renew_in(&mut dbtx).await?;
        chain_txs::set_status(&mut *dbtx, &tx.id, "dropped", now_ms()).await?;
        self.return_jobs(&mut dbtx, &tx.id, None).await?;
        dbtx.commit().await?;
        metrics::counter!("remesa_chain_txs_dropped_total").increment(1);
        Ok(())
    }

    /// Broadcasts a stored attempt and records the outcome.
    async fn send_attempt(
        &self,
        tx: &StoredTx,
        attempt: &StoredAttempt,
        report: &mut TickReport,
        is_rebroadcast: bool,
    ) -> Result<(), ChainError> {
        let timeout = self.cfg.rpc_timeout_ms;
        let res = tokio::time::timeout(
            Duration::from_millis(timeout),
            self.provider.send_raw_transaction(&attempt.raw),
        )
        .await;
        let outcome = rpc::classify_broadcast(res, timeout)?;
        let now = now_ms();
        match outcome {
            Broadcast::Accepted
            | Broadcast::AlreadyKnown
            | Broadcast::NonceTooLow
            | Broadcast::Underpriced => {
                // NonceTooLow: mined (ours or not) — the next reconcile pass tells which.
                // Underpriced: a replacement the node refused; the previous attempt stays in its pool.
                let mut t = self.db.begin().await?;
                chain_txs::mark_attempt_broadcast(&mut *t, attempt.tx_hash, now).await?;
                chain_txs::mark_broadcast(&mut *t, &tx.id, now).await?;
                t.commit().await?;
                if outcome == Broadcast::Accepted && is_rebroadcast {
                    report.rebroadcast += 1;
                    metrics::counter!("remesa_chain_txs_rebroadcast_total").increment(1);
                    tracing::info!(target: "chain::outbox", tx_id = tx.id, hash = %attempt.tx_hash, nonce = tx.nonce, "stored transaction broadcast");
                }
            }
            Broadcast::Rejected(message) => {
                let failures = tx.broadcast_failures.saturating_add(1);
                tracing::warn!(
                    target: "chain::outbox", tx_id = tx.id, nonce = tx.nonce, failures, error = message,
                    "node refused the transaction"
                );
                if failures >= i64::from(self.cfg.broadcast_failures_max) {
                    self.abandon(tx, &message).await?;
                } else {
                    write_tx!(self.db, |t| chain_txs::record_broadcast_failure(
                        &mut *t, &tx.id, failures, &message, now
                    ))?;
                }
            }
        }
        Ok(())
    }

    /// The node keeps refusing a transaction whose nonce is unused: give the nonce back and retry its jobs.
    async fn abandon(&self, tx: &StoredTx, error: &str) -> Result<(), ChainError> {
        let mut dbtx: DbTx = self.db.begin().await?;
        self.lease()?.renew_in(&mut dbtx).await?;
        chain_txs::abandon(&mut *dbtx, &tx.id, error, now_ms()).await?;
        self.return_jobs(&mut dbtx, &tx.id, Some(error)).await?;
        dbtx.commit().await?;
        metrics::counter!("remesa_chain_txs_abandoned_total").increment(1);
        Ok(())
    }

    /// Re-prices a stuck transaction: same nonce and calldata, fees raised by `bump_percent` (or to the network's
    /// current suggestion if higher), never above the ceiling. Returns false when the ceiling leaves no room.
    async fn bump(&self, tx: &StoredTx, report: &mut TickReport) -> Result<bool, ChainError> {
        let latest = tx.latest()?;
        let (suggested_max, suggested_tip) = self.suggest_fees().await?;
        let pct = u128::from(100 + self.cfg.bump_percent);
        let min_pct = 110u128; // what nodes require of a replacement
        let raise = |v: u128, p: u128| v.saturating_mul(p) / 100 + 1;
        let ceiling = self.cfg.max_fee_per_gas_wei_ceiling;
        let max_fee = raise(latest.max_fee_per_gas_wei, pct)
            .max(suggested_max)
            .min(ceiling);
        let tip = raise(latest.max_priority_fee_per_gas_wei, pct)
            .max(suggested_tip)
            .min(max_fee);
        if max_fee < raise(latest.max_fee_per_gas_wei, min_pct)
            || tip < raise(latest.max_priority_fee_per_gas_wei, min_pct)
        {
            metrics::counter!("remesa_chain_bumps_at_ceiling_total").increment(1);
            tracing::warn!(target: "chain::outbox", tx_id = tx.id, nonce = tx.nonce, ceiling, "stuck transaction at the fee ceiling");
            return Ok(false);
        }
        let (hash, raw) = self.sign(tx.to, tx.nonce, tx.gas_limit, max_fee, tip, &tx.calldata)?;
        let attempt_no = latest.attempt.saturating_add(1);
        let mut dbtx: DbTx = self.db.begin().await?;
        self.lease()?.renew_in(&mut dbtx).await?;
        insert_attempt(&mut dbtx, &tx.id, attempt_no, hash, &raw, max_fee, tip).await?;
        chain_txs::add_bump(&mut *dbtx, &tx.id, now_ms()).await?;
        dbtx.commit().await?;
        metrics::counter!("remesa_chain_tx_bumps_total", "kind" => tx.kind.as_str()).increment(1);
        tracing::info!(
            target: "chain::outbox", tx_id = tx.id, nonce = tx.nonce, attempt = attempt_no, %hash,
            max_fee_per_gas_wei = max_fee, max_priority_fee_per_gas_wei = tip, "stuck transaction re-priced"
        );
        let attempt = StoredAttempt {
            tx_hash: hash,
            attempt: attempt_no,
            raw,
            max_fee_per_gas_wei: max_fee,
            max_priority_fee_per_gas_wei: tip,
            last_sent_unix_ms: now_ms(),
        };
        self.send_attempt(tx, &attempt, report, false).await?;
        report.bumped += 1;
        Ok(true)
    }

    // ---- new work --------------------------------------------------------------------------------------------

    async fn send_new(&mut self, report: &mut TickReport) -> Result<(), ChainError> {
        for _ in 0..self.cfg.in_flight_txs_max {
            let in_flight = self.count_open().await?;
            if in_flight >= u64::from(self.cfg.in_flight_txs_max) {
                break;
            }
            let Some(prepared) = self.prepare_next_batch().await? else {
                break;
            };
            let tx = self
                .load_tx(&prepared.tx_id)
                .await?
                .ok_or_else(|| ChainError::corrupt(format!("stored tx {} vanished", prepared.tx_id)))?;
            let attempt = tx.latest()?.clone();
            self.send_attempt(&tx, &attempt, report, false).await?;
            metrics::counter!("remesa_chain_txs_sent_total", "kind" => prepared.kind.as_str()).increment(1);
            metrics::histogram!("remesa_chain_batch_size", "kind" => prepared.kind.as_str())
                .record(prepared.job_count as f64);
            report.sent += 1;
        }
        Ok(())
    }

    /// Claims the next ready batch (full, or its oldest job waited `batch_delay_ms_max`), signs it with the next
    /// nonce and stores it — without broadcasting. `None` when nothing is ready.
    pub async fn prepare_next_batch(&mut self) -> Result<Option<PreparedTx>, ChainError> {
        if self.lease.is_none() {
            return Ok(None);
        }
        let cap = self.batch_cap().await?;
        let now = now_ms();
        let delay = i64::try_from(self.cfg.batch_delay_ms_max).unwrap_or(i64::MAX);
        let backlog = outbox::backlog(&self.db, now).await?;
        // A token transfer or an escrow cancel is its own transaction: its "batch" is full with one job.
        let cap_of = |k: JobKind| if k.is_single() { 1 } else { cap };
        let Some(ready) = backlog
            .iter()
            .find(|b| b.count >= u64::from(cap_of(b.kind)) || now.saturating_sub(b.oldest_unix_ms) >= delay)
            .copied()
        else {
            return Ok(None);
        };
        let mut jobs = outbox::claim(
            &self.db,
            ready.kind,
            &self.sender_text,
            cap_of(ready.kind),
            self.cfg.claim_timeout_ms,
        )
        .await?;
        if jobs.is_empty() {
            return Ok(None);
        }
        if ready.kind == JobKind::Deposit {
            // One packed section per run of equal partner terms: keep the runs few.
            jobs.sort_by_key(|j| {
                j.payload
                    .terms()
                    .map(|t| (t.partner_id, t.settlement, t.partner_signer))
            });
        }
        let (jobs, placements) = self.sendable(jobs).await?;
        if jobs.is_empty() {
            return Ok(None);
        }
        match self.sign_and_store(ready.kind, &jobs, &placements).await {
            Ok(p) => Ok(Some(p)),
            Err(e) => {
                // Give the claims back now rather than after claim_timeout_ms.
                if let Err(e2) = outbox::release_claims(&self.db, &self.sender_text).await {
                    tracing::warn!(target: "chain::outbox", error = %e2, "could not release claims");
                }
                Err(e)
            }
        }
    }

    /// The claimed jobs that can go into a transaction now, with the placements (batch leaves and index) of those
    /// that exit the escrow. A job whose deposit is not indexed yet (or was taken away by a reorg) waits, without
    /// an attempt charged; a deposit the escrow's packed layout cannot carry (an amount beyond 96 bits, a time
    /// beyond 40) fails alone. The batch never pays for one item.
    async fn sendable(
        &self,
        jobs: Vec<ClaimedJob>,
    ) -> Result<(Vec<ClaimedJob>, HashMap<B256, Placement>), ChainError> {
        let cursor = super::indexer::cursor_name(self.chain_id, self.escrow);
        let mut placements = HashMap::new();
        let mut leaves_by_root: HashMap<String, Vec<B256>> = HashMap::new();
        let (mut ready, mut waiting, mut unpackable) = (Vec::new(), Vec::new(), Vec::new());
        for job in jobs {
            let id = job.payload.remittance_id();
            match &job.payload {
                JobPayload::Deposit(j) => {
                    let (t, a) = (j.terms.to_sol(), j.authorization.to_sol());
                    match remesa_wallet::batches::check_deposit(self.escrow, &t, &a) {
                        Ok(()) => ready.push(job),
                        Err(e) => unpackable.push((job, e.to_string())),
                    }
                }
                JobPayload::Release(_) | JobPayload::Refund(_) | JobPayload::Cancel(_) => {
                    let Some(root) = chain_index::batch_of(&self.db.pool, &cursor, id).await? else {
                        waiting.push(job);
                        continue;
                    };
                    if !leaves_by_root.contains_key(&root) {
                        let rows = chain_index::leaves_of(&self.db.pool, &cursor, parse_b256(&root)?).await?;
                        let leaves = rows
                            .iter()
                            .map(|r| parse_b256(&r.remittance_id))
                            .collect::<Result<Vec<_>, _>>()?;
                        leaves_by_root.insert(root.clone(), leaves);
                    }
                    let leaves = leaves_by_root.get(&root).cloned().unwrap_or_default();
                    let Some(index) = leaves.iter().position(|l| *l == id) else {
                        waiting.push(job);
                        continue;
                    };
                    let placement = Placement::new(id, leaves, index)
                        .map_err(|e| ChainError::corrupt(format!("escrow_leaves of {root}: {e}")))?;
                    placements.insert(id, placement);
                    ready.push(job);
                }
                JobPayload::Transfer(_) => ready.push(job),
            }
        }
        if !waiting.is_empty() {
            tracing::warn!(target: "chain::outbox", jobs = waiting.len(), "jobs wait for their deposit to be indexed");
            // The indexer catches up within a few blocks: look again soon.
            self.wait_claimed(
                &waiting,
                "its deposit is not indexed yet (its proof is unknown)",
                self.cfg.job_backoff_ms,
            )
            .await?;
        }
        for (job, why) in unpackable {
            self.fail_claimed(
                std::slice::from_ref(&job),
                &format!("the escrow's batch layout cannot carry it: {why}"),
            )
            .await?;
        }
        Ok((ready, placements))
    }

    async fn sign_and_store(
        &mut self,
        kind: JobKind,
        jobs: &[ClaimedJob],
        placements: &HashMap<B256, Placement>,
    ) -> Result<PreparedTx, ChainError> {
        let payloads: Vec<JobPayload> = jobs.iter().map(|j| j.payload.clone()).collect();
        let calldata = batch_calldata(self.escrow, &payloads, placements).map_err(|e| {
            // `sendable` checked every item: a failure here is a bug, not a job's fault.
            ChainError::corrupt(format!("building the batch's calldata: {e}"))
        })?;
        let to = self.target(kind);
        let req = TransactionRequest::default()
            .from(self.sender)
            .to(to)
            .input(calldata.clone().into());
        let estimate = tokio::time::timeout(
            Duration::from_millis(self.cfg.rpc_timeout_ms),
            self.provider.estimate_gas(req).into_future(),
        )
        .await
        .map_err(|_| ChainError::RpcTimeout {
            method: "eth_estimateGas",
            timeout_ms: self.cfg.rpc_timeout_ms,
        })?;
        let gas = match estimate {
            Ok(gas) => gas,
            Err(e) if rpc::reverted_with(&e, ESCROW_PAUSED) && !kind.is_token_call() => {
                // The guardian paused the escrow (new deposits stop; exits never do): nothing is wrong with the
                // jobs, so no attempt is charged; they wait and are tried again.
                tracing::warn!(target: "chain::outbox", %kind, jobs = jobs.len(), "the escrow is paused: jobs wait");
                self.wait_claimed(
                    jobs,
                    "the escrow is paused (deposits wait until it is unpaused)",
                    self.cfg.job_backoff_ms_max,
                )
                .await?;
                return Err(ChainError::rpc("eth_estimateGas", "the escrow is paused"));
            }
            Err(e) if rpc::is_node_error(&e) => {
                // The batch as a whole would revert. With the escrow's per-item skips that is a single-job
                // transaction (a cancel with a bad signature, a P2P transfer) or something systemic: count an
                // attempt against each job.
                let message: String = e.to_string().chars().take(500).collect();
                tracing::warn!(target: "chain::outbox", %kind, jobs = jobs.len(), error = message, "batch gas estimate failed");
                self.fail_claimed(jobs, &format!("gas estimate failed: {message}"))
                    .await?;
                return Err(ChainError::rpc("eth_estimateGas", message));
            }
            Err(e) => return Err(ChainError::rpc("eth_estimateGas", e)),
        };
        let gas_limit = gas.saturating_mul(100 + u64::from(self.cfg.gas_limit_margin_percent)) / 100;
        let (max_fee, tip) = self.suggest_fees().await?;
        let nonce = self.next_nonce().await?;
        let (hash, raw) = self.sign(to, nonce, gas_limit, max_fee, tip, &calldata)?;
        let tx_id = uuid::Uuid::now_v7().to_string();
        let now = now_ms();

        let mut dbtx: DbTx = self.db.begin().await?;
        self.lease()?.renew_in(&mut dbtx).await?;
        let new_tx = NewChainTxRow {
            id: &tx_id,
            chain_id: to_i64(self.chain_id)?,
            sender: self.sender,
            nonce: to_i64(nonce)?,
            kind: kind.as_str(),
            to_address: to,
            calldata: &calldata,
            gas_limit: to_i64(gas_limit)?,
            job_count: i64::try_from(jobs.len()).unwrap_or(i64::MAX),
            created_at_unix_ms: now,
        };
        chain_txs::insert(&mut *dbtx, &new_tx).await?;
        insert_attempt(&mut dbtx, &tx_id, 0, hash, &raw, max_fee, tip).await?;
        for job in jobs {
            if !job_rows::put_in_tx(&mut *dbtx, &job.id, &self.sender_text, &tx_id, now).await? {
                // Our claim expired and someone else took the job: send nothing.
                return Err(ChainError::LeaseLost {
                    name: format!("claim of job {}", job.id),
                });
            }
        }
        dbtx.commit().await?;
        tracing::info!(
            target: "chain::outbox", %tx_id, %hash, nonce, %kind, jobs = jobs.len(), gas_limit,
            max_fee_per_gas_wei = max_fee, "batch signed and stored"
        );
        Ok(PreparedTx {
            tx_id,
            tx_hash: hash,
            nonce,
            kind,
            job_count: jobs.len(),
        })
    }

    /// Puts claimed jobs back without charging an attempt, to be tried again after `wait_ms`.
    async fn wait_claimed(&self, jobs: &[ClaimedJob], why: &str, wait_ms: u64) -> Result<(), ChainError> {
        let mut dbtx: DbTx = self.db.begin().await?;
        let now = now_ms();
        let not_before = now.saturating_add(i64::try_from(wait_ms).unwrap_or(i64::MAX / 4));
        for job in jobs {
            job_rows::retry_at(&mut *dbtx, &job.id, job.attempts, why, not_before, now).await?;
        }
        dbtx.commit().await?;
        Ok(())
    }

    async fn fail_claimed(&self, jobs: &[ClaimedJob], error: &str) -> Result<(), ChainError> {
        let mut dbtx: DbTx = self.db.begin().await?;
        let pairs: Vec<(String, i64)> = jobs.iter().map(|j| (j.id.clone(), j.attempts)).collect();
        let failed = outbox::retry_later(
            &mut dbtx,
            &pairs,
            error,
            self.cfg.job_attempts_max,
            self.cfg.job_backoff_ms,
            self.cfg.job_backoff_ms_max,
        )
        .await?;
        for job in jobs.iter().filter(|j| failed.contains(&j.id)) {
            let f = FailedJob {
                job_id: job.id.clone(),
                kind: job.payload.kind(),
                remittance_id: job.payload.remittance_id(),
                attempts: u32::try_from(job.attempts.saturating_add(1)).unwrap_or(u32::MAX),
                error: error.to_owned(),
            };
            metrics::counter!("remesa_chain_jobs_failed_total", "kind" => f.kind.as_str()).increment(1);
            self.sink
                .on_job_failed(&mut dbtx, &f)
                .await
                .map_err(ChainError::Sink)?;
        }
        dbtx.commit().await?;
        Ok(())
    }

    /// The lowest nonce at or above the chain's count that no live stored transaction uses.
    async fn next_nonce(&self) -> Result<u64, ChainError> {
        let chain_nonce = rpc::call(
            "eth_getTransactionCount",
            self.cfg.rpc_timeout_ms,
            self.provider
                .get_transaction_count(self.sender)
                .latest()
                .into_future(),
        )
        .await?;
        let used_nonces =
            chain_txs::nonces_in_use_from(&self.db.pool, self.sender, to_i64(chain_nonce)?).await?;
        let mut next = chain_nonce;
        for used in used_nonces {
            let used = to_u64(used, "chain_txs.nonce")?;
            if used == next {
                next = next.saturating_add(1);
            } else if used > next {
                break;
            }
        }
        Ok(next)
    }

    /// EIP-1559 fees: the node's suggestion, the tip at least `priority_fee_wei_min`, the cap at most the ceiling.
    async fn suggest_fees(&self) -> Result<(u128, u128), ChainError> {
        let est = rpc::call(
            "eth_feeHistory",
            self.cfg.rpc_timeout_ms,
            self.provider.estimate_eip1559_fees(),
        )
        .await?;
        let tip = est.max_priority_fee_per_gas.max(self.cfg.priority_fee_wei_min);
        let max_fee = est
            .max_fee_per_gas
            .max(tip)
            .min(self.cfg.max_fee_per_gas_wei_ceiling);
        Ok((max_fee, tip.min(max_fee)))
    }

    fn sign(
        &self,
        to: Address,
        nonce: u64,
        gas_limit: u64,
        max_fee: u128,
        tip: u128,
        calldata: &Bytes,
    ) -> Result<(B256, Bytes), ChainError> {
        let mut tx = TxEip1559 {
            chain_id: self.chain_id,
            nonce,
            gas_limit,
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: tip,
            to: TxKind::Call(to),
            value: U256::ZERO,
            access_list: Default::default(),
            input: calldata.clone(),
        };
        let sig = self
            .signer
            .sign_transaction_sync(&mut tx)
            .map_err(|e| ChainError::Signing(e.to_string()))?;
        let signed = tx.into_signed(sig);
        let hash = *signed.hash();
        let raw: Bytes = TxEnvelope::from(signed).encoded_2718().into();
        Ok((hash, raw))
    }

    // ---- storage ---------------------------------------------------------------------------------------------

    async fn count_open(&self) -> Result<u64, ChainError> {
        let open = chain_txs::count_open(&self.db.pool, self.sender).await?;
        to_u64(open, "open transactions")
    }

    async fn load_open(&self) -> Result<Vec<StoredTx>, ChainError> {
        let ids = chain_txs::open_ids(&self.db.pool, self.sender).await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(tx) = self.load_tx(&id).await? {
                out.push(tx);
            }
        }
        Ok(out)
    }

    async fn load_tx(&self, id: &str) -> Result<Option<StoredTx>, ChainError> {
        let Some(row) = chain_txs::by_id(&self.db.pool, id).await? else {
            return Ok(None);
        };
        let to: Address = row
            .to_address
            .parse()
            .map_err(|_| ChainError::corrupt(format!("tx to_address {}", row.to_address)))?;
        let attempts = chain_txs::attempts_of(&self.db.pool, id).await?;
        let mut list = Vec::with_capacity(attempts.len());
        for a in attempts {
            list.push(StoredAttempt {
                tx_hash: parse_b256(&a.tx_hash)?,
                attempt: a.attempt,
                raw: parse_bytes(&a.raw_tx)?,
                max_fee_per_gas_wei: parse_wei(&a.max_fee_per_gas_wei)?,
                max_priority_fee_per_gas_wei: parse_wei(&a.max_priority_fee_per_gas_wei)?,
                last_sent_unix_ms: a.broadcast_at_unix_ms.unwrap_or(a.created_at_unix_ms),
            });
        }
        Ok(Some(StoredTx {
            kind: JobKind::parse(&row.kind)
                .ok_or_else(|| ChainError::corrupt(format!("tx kind {}", row.kind)))?,
            nonce: to_u64(row.nonce, "chain_txs.nonce")?,
            to,
            calldata: parse_bytes(&row.calldata)?,
            gas_limit: to_u64(row.gas_limit, "chain_txs.gas_limit")?,
            bumps: row.bumps,
            broadcast_failures: row.broadcast_failures,
            mined_tx_hash: row.mined_tx_hash.as_deref().map(parse_b256).transpose()?,
            id: row.id,
            status: row.status,
            attempts: list,
        }))
    }
}

async fn insert_attempt(
    dbtx: &mut DbTx,
    tx_id: &str,
    attempt: i64,
    hash: B256,
    raw: &Bytes,
    max_fee: u128,
    tip: u128,
) -> Result<(), ChainError> {
    let new = NewAttemptRow {
        tx_hash: hash,
        tx_id,
        attempt,
        raw_tx: raw,
        max_fee_per_gas_wei: max_fee,
        max_priority_fee_per_gas_wei: tip,
        created_at_unix_ms: now_ms(),
    };
    chain_txs::insert_attempt(&mut **dbtx, &new).await?;
    Ok(())
}

/// A summary of one stored outbox transaction (for operators and tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxSummary {
    pub tx_id: String,
    pub sender: Address,
    pub nonce: u64,
    pub kind: JobKind,
    pub status: String,
    pub job_count: u64,
    pub bumps: u64,
    pub attempts: u64,
    pub mined_tx_hash: Option<B256>,
    pub gas_used: Option<u64>,
}

/// Every stored outbox transaction, by sender and nonce.
pub async fn list_txs(db: &Db) -> Result<Vec<TxSummary>, ChainError> {
    let rows = chain_txs::list(&db.pool).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(TxSummary {
            sender: parse_addr(&row.sender)?,
            nonce: to_u64(row.nonce, "chain_txs.nonce")?,
            kind: JobKind::parse(&row.kind)
                .ok_or_else(|| ChainError::corrupt(format!("tx kind {}", row.kind)))?,
            job_count: to_u64(row.job_count, "chain_txs.job_count")?,
            bumps: to_u64(row.bumps, "chain_txs.bumps")?,
            mined_tx_hash: row.mined_tx_hash.as_deref().map(parse_b256).transpose()?,
            gas_used: row
                .gas_used
                .map(|g| to_u64(g, "chain_txs.gas_used"))
                .transpose()?,
            attempts: to_u64(row.attempt_count, "attempt count")?,
            tx_id: row.id,
            status: row.status,
        });
    }
    Ok(out)
}
