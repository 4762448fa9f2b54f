//! The indexer: follows the escrow's events and the token's transfers into custodial addresses, `confirmations`
//! blocks behind the head, in `eth_getLogs` ranges of at most `logs_block_range_max` blocks.
//!
//! Its cursor is a block number and hash. Each range is applied in one database transaction that also delivers the
//! events to the engine ([`ChainEventSink`]) and moves the cursor with a compare-and-set, so an event is applied
//! exactly once. A range is applied only if the first block's parent is the cursor's hash; otherwise (a reorg) the
//! indexer walks back through the block hashes it kept (`reorg_depth_max` of them) to the common ancestor, removes
//! the events above it, tells the engine (`on_rolled_back`) and follows the new chain from there.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{Filter, Log};
use alloy::sol_types::SolEvent;
use tokio_util::sync::CancellationToken;

use super::ChainContext;
use super::abi::{RemittanceEscrow, TestStablecoin};
use super::config::ChainConfig;
use super::db::{now_ms, parse_b256, to_i64, to_u64};
use super::error::ChainError;
use super::lease::Lease;
use super::rpc;
use super::sink::{ChainEventSink, DbTx};
use super::types::{
    ChainEvent, CustodialTransfer, Deposited, EventMeta, JobKind, Refunded, Released, RemovedEvent,
    RolledBack, Settled, SkipReason, Skipped,
};
use crate::store::chain_index::{self, LeafRow, NewEventRow};
use crate::store::{Db, chain_txs};
use alloy::primitives::U256;
use remesa_wallet::batches::{DepositedBatch, MAX_BATCH};

/// What one indexer tick did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexerTick {
    pub lease_held: bool,
    /// The cursor after the tick.
    pub cursor: Option<u64>,
    /// Events delivered to the engine.
    pub events: u32,
    /// The reorg handled in this tick, if any.
    pub rolled_back: Option<RolledBack>,
}

/// The indexer of one escrow deployment.
#[derive(Debug)]
pub struct Indexer<S> {
    db: Db,
    provider: DynProvider,
    escrow: Address,
    token: Address,
    start_block: u64,
    cfg: ChainConfig,
    sink: Arc<S>,
    name: String,
    holder: String,
    lease: Option<Lease>,
}

#[derive(Clone, Copy, Debug)]
struct Header {
    hash: B256,
    parent: B256,
}

impl<S: ChainEventSink> Indexer<S> {
    /// Follows `ctx.deployment` from its `start_block` (nothing before it is read).
    pub fn new(ctx: &ChainContext<S>) -> Self {
        let d = &ctx.deployment;
        Self {
            db: ctx.db.clone(),
            provider: ctx.provider.clone(),
            escrow: d.escrow,
            token: d.token,
            start_block: d.start_block.max(1),
            cfg: ctx.config.clone(),
            sink: ctx.sink.clone(),
            name: cursor_name(d.chain_id, d.escrow),
            holder: ctx.lease_holder(),
            lease: None,
        }
    }

    /// The name of this indexer's cursor.
    pub fn cursor_name(&self) -> &str {
        &self.name
    }

    /// Runs until `cancel` fires. A reorg deeper than `reorg_depth_max` stops it (with an error log and metric):
    /// that needs an operator.
    pub async fn run(mut self, cancel: CancellationToken) {
        let poll = Duration::from_millis(self.cfg.indexer_poll_ms);
        let mut failures: u32 = 0;
        loop {
            let result = tokio::select! {
                () = cancel.cancelled() => break,
                r = self.tick() => r,
            };
            let delay = match result {
                // Behind the head: go on at once.
                Ok(t) if t.events > 0 || t.rolled_back.is_some() => {
                    failures = 0;
                    Duration::ZERO
                }
                Ok(_) => {
                    failures = 0;
                    poll
                }
                Err(e @ ChainError::ReorgTooDeep { .. }) => {
                    metrics::counter!("remesa_chain_indexer_halted_total").increment(1);
                    tracing::error!(target: "chain::indexer", error = %e, "indexer stopped");
                    break;
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    metrics::counter!("remesa_chain_indexer_errors_total").increment(1);
                    tracing::warn!(target: "chain::indexer", error = %e, "indexer tick failed");
                    if matches!(e, ChainError::LeaseLost { .. }) {
                        self.lease = None;
                    }
                    poll.saturating_mul(failures.min(10))
                }
            };
            if delay.is_zero() {
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(delay) => {}
            }
        }
        if let Some(lease) = self.lease.take()
            && let Err(e) = lease.release(&self.db).await
        {
            tracing::warn!(target: "chain::indexer", error = %e, "could not release the indexer lease");
        }
    }

    async fn ensure_lease(&mut self) -> Result<bool, ChainError> {
        if let Some(lease) = &self.lease {
            match lease.renew(&self.db).await {
                Ok(()) => return Ok(true),
                Err(ChainError::LeaseLost { .. }) => self.lease = None,
                Err(e) => return Err(e),
            }
        }
        let name = format!("indexer:{}", self.name);
        self.lease = Lease::try_acquire(&self.db, &name, &self.holder, self.cfg.lease_ms).await?;
        Ok(self.lease.is_some())
    }

    /// One step: apply the next range of confirmed blocks, or handle a reorg.
    pub async fn tick(&mut self) -> Result<IndexerTick, ChainError> {
        let mut out = IndexerTick::default();
        if !self.ensure_lease().await? {
            return Ok(out);
        }
        out.lease_held = true;
        let timeout = self.cfg.rpc_timeout_ms;
        let head = rpc::call(
            "eth_blockNumber",
            timeout,
            self.provider.get_block_number().into_future(),
        )
        .await?;
        let (cursor_number, cursor_hash) = self.cursor_or_init().await?;
        out.cursor = Some(cursor_number);
        metrics::gauge!("remesa_chain_indexer_lag_blocks").set(head.saturating_sub(cursor_number) as f64);
        metrics::gauge!("remesa_chain_indexer_block").set(cursor_number as f64);

        let Some(target) = head.checked_sub(self.cfg.confirmations) else {
            return Ok(out);
        };
        if cursor_number >= target {
            // Nothing new to apply; still notice a reorg of what we applied.
            let canonical = self.header(cursor_number).await?;
            if canonical.map(|h| h.hash) != Some(cursor_hash) {
                out.rolled_back = Some(self.roll_back(cursor_number, cursor_hash).await?);
                out.cursor = Some(self.cursor_or_init().await?.0);
            }
            return Ok(out);
        }
        let from = cursor_number.saturating_add(1);
        let to = target.min(
            from.saturating_add(self.cfg.logs_block_range_max)
                .saturating_sub(1),
        );

        let filter = Filter::new()
            .from_block(from)
            .to_block(to)
            .address(vec![self.escrow, self.token])
            .event_signature(vec![
                RemittanceEscrow::Deposited::SIGNATURE_HASH,
                RemittanceEscrow::Released::SIGNATURE_HASH,
                RemittanceEscrow::Settled::SIGNATURE_HASH,
                RemittanceEscrow::Refunded::SIGNATURE_HASH,
                RemittanceEscrow::Skipped::SIGNATURE_HASH,
                TestStablecoin::Transfer::SIGNATURE_HASH,
            ]);
        let mut logs = rpc::call("eth_getLogs", timeout, self.provider.get_logs(&filter)).await?;
        logs.retain(|l| !l.removed);
        logs.sort_by_key(|l| (l.block_number, l.log_index));

        // Headers fetched after the logs: each log must belong to the canonical block at its height, and the first
        // block must sit on the cursor.
        let mut numbers: Vec<u64> = logs.iter().filter_map(|l| l.block_number).collect();
        numbers.extend([from, to]);
        numbers.sort_unstable();
        numbers.dedup();
        let mut headers = BTreeMap::new();
        for n in numbers {
            let Some(h) = self.header(n).await? else {
                // The node is behind the head it reported (or mid-reorg): try again later.
                return Ok(out);
            };
            headers.insert(n, h);
        }
        let first = headers
            .get(&from)
            .copied()
            .ok_or_else(|| ChainError::corrupt("missing first header"))?;
        if first.parent != cursor_hash {
            out.rolled_back = Some(self.roll_back(cursor_number, cursor_hash).await?);
            out.cursor = Some(self.cursor_or_init().await?.0);
            return Ok(out);
        }
        for l in &logs {
            let known = l.block_number.and_then(|n| headers.get(&n)).map(|h| h.hash);
            if known.is_none() || known != l.block_hash {
                tracing::info!(target: "chain::indexer", block = l.block_number, "log from a block that is no longer canonical; retrying");
                return Ok(out);
            }
        }
        let last = headers
            .get(&to)
            .copied()
            .ok_or_else(|| ChainError::corrupt("missing last header"))?;
        out.events = self
            .apply(cursor_number, cursor_hash, to, last.hash, &logs, &headers)
            .await?;
        out.cursor = Some(to);
        Ok(out)
    }

    async fn header(&self, number: u64) -> Result<Option<Header>, ChainError> {
        let block = rpc::call(
            "eth_getBlockByNumber",
            self.cfg.rpc_timeout_ms,
            self.provider
                .get_block_by_number(BlockNumberOrTag::Number(number))
                .into_future(),
        )
        .await?;
        Ok(block.map(|b| Header {
            hash: b.header.hash,
            parent: b.header.parent_hash,
        }))
    }

    /// The stored cursor; the first time, the block before `start_block`.
    async fn cursor_or_init(&self) -> Result<(u64, B256), ChainError> {
        if let Some(c) = cursor(&self.db, &self.name).await? {
            return Ok(c);
        }
        let number = self.start_block.saturating_sub(1);
        let header = self
            .header(number)
            .await?
            .ok_or_else(|| ChainError::rpc("eth_getBlockByNumber", format!("block {number} not found")))?;
        let mut dbtx: DbTx = self.db.begin().await?;
        chain_index::init_cursor(&mut *dbtx, &self.name, to_i64(number)?, header.hash, now_ms()).await?;
        chain_index::keep_block_if_absent(&mut *dbtx, &self.name, to_i64(number)?, header.hash).await?;
        dbtx.commit().await?;
        cursor(&self.db, &self.name)
            .await?
            .ok_or_else(|| ChainError::corrupt("cursor not stored"))
    }

    /// Applies `logs` of blocks `cursor+1..=to` and moves the cursor to `to`, atomically.
    async fn apply(
        &self,
        cursor_number: u64,
        cursor_hash: B256,
        to: u64,
        to_hash: B256,
        logs: &[Log],
        headers: &BTreeMap<u64, Header>,
    ) -> Result<u32, ChainError> {
        let mut dbtx: DbTx = self.db.begin().await?;
        let from = (to_i64(cursor_number)?, cursor_hash);
        if !chain_index::move_cursor(&mut *dbtx, &self.name, from, (to_i64(to)?, to_hash), now_ms()).await? {
            return Err(ChainError::LeaseLost {
                name: format!("cursor {}", self.name),
            });
        }
        for (n, h) in headers {
            chain_index::keep_block(&mut *dbtx, &self.name, to_i64(*n)?, h.hash).await?;
        }
        let keep_from = to_i64(to.saturating_sub(self.cfg.reorg_depth_max))?;
        chain_index::forget_blocks_below(&mut *dbtx, &self.name, keep_from).await?;

        // Which transfer recipients are custodial, asked once per range.
        let recipients: Vec<Address> = {
            let mut set = HashSet::new();
            for l in logs {
                if l.address() == self.token
                    && let Ok(t) = TestStablecoin::Transfer::decode_log_data(l.data())
                {
                    set.insert(t.to);
                }
            }
            set.into_iter().collect()
        };
        let custodial = if recipients.is_empty() {
            HashSet::new()
        } else {
            self.sink
                .custodial_among(&mut dbtx, &recipients)
                .await
                .map_err(ChainError::Sink)?
        };

        let mut delivered = 0u32;
        for l in logs {
            for event in self.decode(&mut dbtx, l, &custodial).await? {
                delivered = delivered.saturating_add(self.deliver(&mut dbtx, &event).await?);
            }
        }
        dbtx.commit().await?;
        if delivered > 0 {
            tracing::debug!(target: "chain::indexer", from = cursor_number + 1, to, events = delivered, "range applied");
        }
        Ok(delivered)
    }

    /// Records one event and hands it to the engine, in the range's transaction.
    async fn deliver(&self, dbtx: &mut DbTx, event: &ChainEvent) -> Result<u32, ChainError> {
        {
            let meta = event.meta();
            let payload =
                serde_json::to_string(&event).map_err(|e| ChainError::corrupt(format!("event json: {e}")))?;
            let row = NewEventRow {
                id: &meta.id,
                cursor_name: &self.name,
                block_number: to_i64(meta.block_number)?,
                block_hash: meta.block_hash,
                tx_hash: meta.tx_hash,
                log_index: to_i64(meta.log_index)?,
                kind: event.kind(),
                remittance_id: event.remittance_id(),
                payload: &payload,
            };
            chain_index::insert_event(&mut **dbtx, &row).await?;
            let res = match event {
                ChainEvent::Deposited(e) => self.sink.on_deposited(dbtx, e).await,
                ChainEvent::Released(e) => self.sink.on_released(dbtx, e).await,
                ChainEvent::Settled(e) => self.sink.on_settled(dbtx, e).await,
                ChainEvent::Refunded(e) => self.sink.on_refunded(dbtx, e).await,
                ChainEvent::Skipped(e) => self.sink.on_skipped(dbtx, e).await,
                ChainEvent::CustodialTransfer(e) => self.sink.on_token_transfer_to_custodial(dbtx, e).await,
            };
            res.map_err(ChainError::Sink)?;
            metrics::counter!("remesa_chain_events_total", "kind" => event.kind()).increment(1);
        }
        Ok(1)
    }

    /// The events one log carries: none, one, or (a deposit batch, a release of several leaves) one per remittance.
    async fn decode(
        &self,
        dbtx: &mut DbTx,
        l: &Log,
        custodial: &HashSet<Address>,
    ) -> Result<Vec<ChainEvent>, ChainError> {
        let (Some(block_number), Some(block_hash), Some(tx_hash), Some(log_index)) =
            (l.block_number, l.block_hash, l.transaction_hash, l.log_index)
        else {
            return Err(ChainError::rpc("eth_getLogs", "log without position"));
        };
        let meta = EventMeta {
            id: format!("{block_hash:#x}:{log_index}"),
            block_number,
            block_hash,
            tx_hash,
            log_index,
        };
        let Some(topic0) = l.topic0().copied() else {
            return Ok(Vec::new());
        };
        let bad =
            |e: alloy::sol_types::Error| ChainError::rpc("eth_getLogs", format!("undecodable log: {e}"));
        if l.address() == self.token {
            if topic0 != TestStablecoin::Transfer::SIGNATURE_HASH {
                return Ok(Vec::new());
            }
            let t = TestStablecoin::Transfer::decode_log_data(l.data()).map_err(bad)?;
            if !custodial.contains(&t.to) {
                return Ok(Vec::new());
            }
            return Ok(vec![ChainEvent::CustodialTransfer(CustodialTransfer {
                meta,
                token: self.token,
                from: t.from,
                to: t.to,
                amount_base_units: t.value,
                from_escrow: t.from == self.escrow,
            })]);
        }
        if l.address() != self.escrow {
            return Ok(Vec::new());
        }
        let data = l.data();
        if topic0 == RemittanceEscrow::Deposited::SIGNATURE_HASH {
            let e = RemittanceEscrow::Deposited::decode_log_data(data).map_err(bad)?;
            return self.deposited_batch(dbtx, &meta, e).await;
        }
        if topic0 == RemittanceEscrow::Released::SIGNATURE_HASH {
            let e = RemittanceEscrow::Released::decode_log_data(data).map_err(bad)?;
            return self.released_leaves(dbtx, &meta, e).await;
        }
        let ev = if topic0 == RemittanceEscrow::Settled::SIGNATURE_HASH {
            let e = RemittanceEscrow::Settled::decode_log_data(data).map_err(bad)?;
            ChainEvent::Settled(Settled {
                meta,
                partner_id: e.partnerId,
                settlement: e.settlement,
                amount_base_units: e.amount,
                count: e.count,
            })
        } else if topic0 == RemittanceEscrow::Refunded::SIGNATURE_HASH {
            let e = RemittanceEscrow::Refunded::decode_log_data(data).map_err(bad)?;
            ChainEvent::Refunded(Refunded {
                meta,
                remittance_id: e.id,
                sender: e.sender,
                amount_base_units: e.amount,
            })
        } else if topic0 == RemittanceEscrow::Skipped::SIGNATURE_HASH {
            let e = RemittanceEscrow::Skipped::decode_log_data(data).map_err(bad)?;
            let batch = chain_txs::kind_by_attempt_hash(&mut **dbtx, tx_hash)
                .await?
                .and_then(|k| JobKind::parse(&k));
            ChainEvent::Skipped(Skipped {
                meta,
                remittance_id: e.id,
                reason: SkipReason::from_u8(e.reason),
                detail: e.detail,
                batch,
            })
        } else {
            return Ok(Vec::new());
        };
        Ok(vec![ev])
    }

    /// A deposit batch: its leaves are kept (for proofs and releases) and each deposited one is delivered.
    async fn deposited_batch(
        &self,
        dbtx: &mut DbTx,
        meta: &EventMeta,
        e: RemittanceEscrow::Deposited,
    ) -> Result<Vec<ChainEvent>, ChainError> {
        if e.leaves.len() != e.senderAmounts.len() || e.leaves.is_empty() || e.leaves.len() > MAX_BATCH {
            return Err(ChainError::rpc(
                "eth_getLogs",
                format!(
                    "a Deposited event with {} leaves and {} amounts",
                    e.leaves.len(),
                    e.senderAmounts.len()
                ),
            ));
        }
        let batch = DepositedBatch::from_event(e.root, e.leaves, &e.senderAmounts);
        let rows: Vec<LeafRow> = (0..batch.leaves.len())
            .map(|i| LeafRow {
                leaf_index: i64::try_from(i).unwrap_or(i64::MAX),
                remittance_id: format!("{:#x}", batch.leaves[i]),
                sender: format!("{:#x}", batch.senders[i]),
                amount_base_units: batch.amounts[i].to_string(),
            })
            .collect();
        chain_index::insert_leaves(dbtx, &self.name, batch.root, to_i64(meta.block_number)?, &rows).await?;
        let mut out = Vec::new();
        for (i, id) in batch.leaves.iter().enumerate() {
            if *id == B256::ZERO {
                continue;
            }
            out.push(ChainEvent::Deposited(Deposited {
                meta: leaf_meta(meta, i),
                remittance_id: *id,
                sender: batch.senders[i],
                amount_base_units: batch.amounts[i],
                batch_root: batch.root,
                leaf_index: i as u64,
            }));
        }
        Ok(out)
    }

    /// A release of leaves of one deposit batch: one event per released remittance, with its deposited amount.
    async fn released_leaves(
        &self,
        dbtx: &mut DbTx,
        meta: &EventMeta,
        e: RemittanceEscrow::Released,
    ) -> Result<Vec<ChainEvent>, ChainError> {
        let leaves = chain_index::leaves_of(&mut **dbtx, &self.name, e.root).await?;
        let mut out = Vec::new();
        for i in 0..MAX_BATCH {
            if !e.bits.bit(i) {
                continue;
            }
            let Some(leaf) = leaves.iter().find(|l| l.leaf_index == i as i64) else {
                // Its deposit is older than the indexer's start block: nothing of it is booked here either.
                tracing::warn!(target: "chain::indexer", root = %e.root, leaf = i, "release of a leaf whose deposit was never indexed");
                continue;
            };
            let amount = leaf
                .amount_base_units
                .parse::<U256>()
                .map_err(|err| ChainError::corrupt(format!("escrow_leaves.amount_base_units: {err}")))?;
            out.push(ChainEvent::Released(Released {
                meta: leaf_meta(meta, i),
                remittance_id: parse_b256(&leaf.remittance_id)?,
                partner_id: e.partnerId,
                amount_base_units: amount,
                batch_root: e.root,
                leaf_index: i as u64,
            }));
        }
        Ok(out)
    }

    /// Finds the newest kept block that is still canonical and rolls everything above it back.
    async fn roll_back(&self, cursor_number: u64, cursor_hash: B256) -> Result<RolledBack, ChainError> {
        let kept = chain_index::blocks_down_from(&self.db.pool, &self.name, to_i64(cursor_number)?).await?;
        let mut ancestor = None;
        for row in kept {
            let number = to_u64(row.block_number, "chain_blocks.block_number")?;
            if cursor_number.saturating_sub(number) > self.cfg.reorg_depth_max {
                break;
            }
            let hash = parse_b256(&row.block_hash)?;
            if self.header(number).await?.map(|h| h.hash) == Some(hash) {
                ancestor = Some((number, hash));
                break;
            }
        }
        let Some((ancestor_number, ancestor_hash)) = ancestor else {
            return Err(ChainError::ReorgTooDeep {
                cursor: cursor_number,
                depth_max: self.cfg.reorg_depth_max,
            });
        };

        let mut dbtx: DbTx = self.db.begin().await?;
        let ancestor_at = to_i64(ancestor_number)?;
        let from = (to_i64(cursor_number)?, cursor_hash);
        if !chain_index::move_cursor(
            &mut *dbtx,
            &self.name,
            from,
            (ancestor_at, ancestor_hash),
            now_ms(),
        )
        .await?
        {
            return Err(ChainError::LeaseLost {
                name: format!("cursor {}", self.name),
            });
        }
        let removed = chain_index::events_above(&mut *dbtx, &self.name, ancestor_at).await?;
        let mut events = Vec::with_capacity(removed.len());
        for row in removed {
            events.push(RemovedEvent {
                block_number: to_u64(row.block_number, "chain_events.block_number")?,
                remittance_id: row.remittance_id.as_deref().map(parse_b256).transpose()?,
                id: row.id,
                kind: row.kind,
            });
        }
        chain_index::delete_above(&mut dbtx, &self.name, ancestor_at).await?;
        let rb = RolledBack {
            from_block: ancestor_number.saturating_add(1),
            to_block: cursor_number,
            events,
        };
        self.sink
            .on_rolled_back(&mut dbtx, &rb)
            .await
            .map_err(ChainError::Sink)?;
        dbtx.commit().await?;
        metrics::counter!("remesa_chain_reorgs_total").increment(1);
        metrics::gauge!("remesa_chain_reorg_depth_blocks")
            .set(cursor_number.saturating_sub(ancestor_number) as f64);
        tracing::warn!(
            target: "chain::indexer", from_block = rb.from_block, to_block = rb.to_block,
            events = rb.events.len(), "reorg: rolled back"
        );
        Ok(rb)
    }
}

/// Where a batch event's leaf `i` sits: the log's position, its id suffixed with the leaf (unique per remittance).
fn leaf_meta(meta: &EventMeta, i: usize) -> EventMeta {
    EventMeta {
        id: format!("{}:{i}", meta.id),
        ..meta.clone()
    }
}

/// The cursor name of an escrow deployment.
pub fn cursor_name(chain_id: u64, escrow: Address) -> String {
    format!("escrow:{chain_id}:{escrow:#x}")
}

/// The indexer's cursor (last applied block number and hash), if it has started.
pub async fn cursor(db: &Db, name: &str) -> Result<Option<(u64, B256)>, ChainError> {
    match chain_index::cursor(&db.pool, name).await? {
        None => Ok(None),
        Some(row) => Ok(Some((
            to_u64(row.block_number, "chain_cursors.block_number")?,
            parse_b256(&row.block_hash)?,
        ))),
    }
}
