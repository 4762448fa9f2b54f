//! The engine as the chain workers' [`ChainEventSink`]: indexed escrow events move remittances and book the
//! ledger, inside the indexer's transaction (so they are applied exactly once, or rolled back with their block).

use std::collections::HashSet;
use std::str::FromStr;

use alloy::primitives::{Address, U256};
use serde_json::json;

use super::state::State;
use super::views::{RemRow, load_for_update};
use super::{Engine, EngineError, ledger, lock_feed, transition, transition_direct};
use crate::chain::{
    ChainEventSink, CustodialTransfer, DbTx, Deposited, FailedJob, JobKind, RefundJob, Refunded, Released,
    RolledBack, Settled, SinkError, SkipClass, Skipped,
};
use crate::domain::PayoutMethod;
use crate::store::ledger as ledger_store;
use crate::store::now_ms;
use crate::store::remittances::{self, TxHashColumn};
use crate::store::settlements::{self, SettlementRow};

fn amount_i64(a: U256) -> Result<i64, EngineError> {
    u64::try_from(a)
        .ok()
        .and_then(|v| i64::try_from(v).ok())
        .ok_or_else(|| EngineError::Internal(format!("amount {a} does not fit the ledger")))
}

fn source(event_id: &str) -> String {
    format!("chain:{event_id}")
}

fn sink_err(e: EngineError) -> SinkError {
    Box::new(e)
}

impl Engine {
    async fn deposited(&self, tx: &mut DbTx, ev: &Deposited) -> Result<(), EngineError> {
        lock_feed(tx).await?;
        let id = format!("{:#x}", ev.remittance_id);
        let amount = amount_i64(ev.amount_base_units)?;
        let sender = format!("{:#x}", ev.sender);
        let block = Some(ev.meta.block_number);
        ledger::post(
            tx,
            Some(&id),
            "deposit",
            &source(&ev.meta.id),
            block,
            &[
                (ledger::ESCROW.to_owned(), amount),
                (ledger::wallet(&sender), -amount),
            ],
        )
        .await?;
        let Some(r) = load_for_update(tx, self.db().dialect, &id).await? else {
            tracing::warn!(target: "engine", remittance_id = id, "deposit of an unknown remittance: booked, no state");
            return Ok(());
        };
        let tx_hash = format!("{:#x}", ev.meta.tx_hash);
        remittances::set_tx_hash(tx, &id, TxHashColumn::Lock, Some(&tx_hash)).await?;
        let detail = json!({"tx_hash": tx_hash, "block_number": ev.meta.block_number});
        match r.state {
            State::Quoted | State::PendingFunds => {
                if r.state == State::Quoted {
                    transition(
                        tx,
                        &id,
                        State::Quoted,
                        State::PendingFunds,
                        "authorized",
                        json!({"by": "deposit seen on chain"}),
                        false,
                    )
                    .await?;
                }
                transition(
                    tx,
                    &id,
                    State::PendingFunds,
                    State::FundsLocked,
                    "deposited",
                    detail,
                    false,
                )
                .await?;
                transition(
                    tx,
                    &id,
                    State::FundsLocked,
                    State::PayoutAssigned,
                    "assigned",
                    json!({"partner_id": r.partner_id}),
                    false,
                )
                .await?;
            }
            State::Cancelled | State::Failed | State::Expired => {
                transition(
                    tx,
                    &id,
                    r.state,
                    State::RefundPending,
                    "late_deposit",
                    detail,
                    false,
                )
                .await?;
            }
            s => {
                tracing::warn!(target: "engine", remittance_id = id, state = %s, "deposit for a remittance already funded")
            }
        }
        Ok(())
    }

    async fn released(&self, tx: &mut DbTx, ev: &Released) -> Result<(), EngineError> {
        lock_feed(tx).await?;
        let id = format!("{:#x}", ev.remittance_id);
        let amount = amount_i64(ev.amount_base_units)?;
        ledger::post(
            tx,
            Some(&id),
            "release",
            &source(&ev.meta.id),
            Some(ev.meta.block_number),
            &[
                (ledger::ESCROW.to_owned(), -amount),
                (ledger::partner(ev.partner_id), amount),
            ],
        )
        .await?;
        let Some(r) = load_for_update(tx, self.db().dialect, &id).await? else {
            return Ok(());
        };
        let tx_hash = format!("{:#x}", ev.meta.tx_hash);
        remittances::set_tx_hash(tx, &id, TxHashColumn::Release, Some(&tx_hash)).await?;
        let detail = json!({"tx_hash": tx_hash, "block_number": ev.meta.block_number});
        let mut state = r.state;
        if state == State::PayoutAssigned {
            transition(
                tx,
                &id,
                state,
                State::PayoutAccepted,
                "released_on_chain",
                detail.clone(),
                false,
            )
            .await?;
            state = State::PayoutAccepted;
        }
        if state == State::PayoutAccepted {
            transition(
                tx,
                &id,
                state,
                State::Paid,
                "released_on_chain",
                detail.clone(),
                false,
            )
            .await?;
            state = State::Paid;
        }
        if matches!(state, State::Paid | State::RefundPending) {
            transition(tx, &id, state, State::Settled, "released", detail, false).await?;
        } else {
            tracing::warn!(target: "engine", remittance_id = id, state = %state, "release for a remittance in an unexpected state");
        }
        Ok(())
    }

    async fn refunded(&self, tx: &mut DbTx, ev: &Refunded) -> Result<(), EngineError> {
        lock_feed(tx).await?;
        let id = format!("{:#x}", ev.remittance_id);
        let amount = amount_i64(ev.amount_base_units)?;
        let sender = format!("{:#x}", ev.sender);
        ledger::post(
            tx,
            Some(&id),
            "refund",
            &source(&ev.meta.id),
            Some(ev.meta.block_number),
            &[
                (ledger::ESCROW.to_owned(), -amount),
                (ledger::wallet(&sender), amount),
            ],
        )
        .await?;
        let Some(r) = load_for_update(tx, self.db().dialect, &id).await? else {
            return Ok(());
        };
        let tx_hash = format!("{:#x}", ev.meta.tx_hash);
        remittances::set_tx_hash(tx, &id, TxHashColumn::Refund, Some(&tx_hash)).await?;
        let detail = json!({"tx_hash": tx_hash, "block_number": ev.meta.block_number});
        let mut state = r.state;
        if matches!(
            state,
            State::FundsLocked | State::PayoutAssigned | State::PayoutAccepted | State::Paid
        ) {
            transition(
                tx,
                &id,
                state,
                State::RefundPending,
                "expired",
                detail.clone(),
                false,
            )
            .await?;
            state = State::RefundPending;
        }
        if state == State::RefundPending {
            transition(tx, &id, state, State::Refunded, "refunded", detail, false).await?;
        } else {
            tracing::warn!(target: "engine", remittance_id = id, state = %state, "refund for a remittance in an unexpected state");
        }
        Ok(())
    }

    async fn skipped(&self, tx: &mut DbTx, ev: &Skipped) -> Result<(), EngineError> {
        lock_feed(tx).await?;
        let id = format!("{:#x}", ev.remittance_id);
        let Some(r) = load_for_update(tx, self.db().dialect, &id).await? else {
            return Ok(());
        };
        let reason = ev.describe();
        let class = ev.class();
        tracing::warn!(target: "engine", remittance_id = id, reason, class = ?class, batch = ?ev.batch, "escrow skipped an item");
        // Only a refusal for good ends a deposit here. A transient one (the token paused, out of the item's gas
        // cap) is retried by the outbox writer; a blacklisted sender fails the job there (`job_failed`).
        let is_deposit = ev.batch.is_none_or(|b| b == JobKind::Deposit);
        if is_deposit && class == SkipClass::Refused && matches!(r.state, State::Quoted | State::PendingFunds)
        {
            remittances::set_failure_reason(tx, &id, &format!("deposit refused on chain: {reason}")).await?;
            transition(
                tx,
                &id,
                r.state,
                State::Failed,
                "deposit_failed",
                json!({"reason": reason, "tx_hash": format!("{:#x}", ev.meta.tx_hash)}),
                false,
            )
            .await?;
        }
        Ok(())
    }

    async fn rolled_back(&self, tx: &mut DbTx, rb: &RolledBack) -> Result<(), EngineError> {
        lock_feed(tx).await?;
        // newest first, so a remittance walks back through its states in reverse
        let mut events = rb.events.clone();
        events.sort_by(|a, b| b.block_number.cmp(&a.block_number).then_with(|| b.id.cmp(&a.id)));
        for ev in &events {
            // a P2P transfer's settlement is booked against its remittance; find it before reversing
            let p2p: Option<String> = if ev.kind == "custodial_transfer" {
                ledger_store::unreversed_entry(tx, &source(&ev.id), Some("p2p_transfer"))
                    .await?
                    .and_then(|e| e.remittance_id)
            } else {
                None
            };
            ledger::reverse(tx, &source(&ev.id), "reorg").await?;
            if let Some(id) = p2p {
                if let Some(r) = load_for_update(tx, self.db().dialect, &id).await?
                    && r.state == State::Settled
                {
                    remittances::set_tx_hash(tx, &id, TxHashColumn::Release, None).await?;
                    let detail =
                        json!({"event_id": ev.id, "from_block": rb.from_block, "to_block": rb.to_block});
                    transition_direct(
                        tx,
                        &id,
                        State::Settled,
                        State::PendingFunds,
                        "reorg",
                        detail,
                        true,
                    )
                    .await?;
                }
                continue;
            }
            if ev.kind == "settled" {
                settlements::delete(tx, &ev.id).await?;
                continue;
            }
            let Some(rid) = ev.remittance_id else { continue };
            let id = format!("{rid:#x}");
            let Some(r) = load_for_update(tx, self.db().dialect, &id).await? else {
                continue;
            };
            let back = match (ev.kind.as_str(), r.state) {
                ("deposited", s) if s.can_roll_back_to(State::PendingFunds) => Some(State::PendingFunds),
                ("released", State::Settled) => Some(State::Paid),
                ("refunded", State::Refunded) => Some(State::RefundPending),
                _ => None,
            };
            let detail = json!({"event_id": ev.id, "from_block": rb.from_block, "to_block": rb.to_block});
            match back {
                Some(to) => {
                    transition(tx, &id, r.state, to, "reorg", detail, true).await?;
                }
                None => {
                    tracing::warn!(target: "engine", remittance_id = id, state = %r.state, kind = ev.kind, "reorg removed an event; state kept")
                }
            }
        }
        Ok(())
    }

    /// A token `Transfer` into a custodial address. When it was mined by one of the outbox's P2P transfer jobs it
    /// settles that remittance (wallet:from → wallet:to, `pending_funds` → `settled`); otherwise it is money coming
    /// in: from another custodial wallet (wallet → wallet) or from the outside world (external → wallet).
    async fn transfer_in(&self, tx: &mut DbTx, ev: &CustodialTransfer) -> Result<(), EngineError> {
        if ev.from_escrow {
            return Ok(()); // booked from Refunded
        }
        let amount = amount_i64(ev.amount_base_units)?;
        let from = format!("{:#x}", ev.from);
        let to = format!("{:#x}", ev.to);
        let tx_hash = format!("{:#x}", ev.meta.tx_hash);
        let job = crate::store::outbox::remittance_of_transfer_tx(tx, &tx_hash).await?;
        if let Some(id) = job {
            lock_feed(tx).await?;
            if let Some(r) = load_for_update(tx, self.db().dialect, &id).await? {
                if r.payout_method == PayoutMethod::RemesaWallet
                    && r.sender_address == from
                    && r.recipient_address.as_deref() == Some(to.as_str())
                    && r.total_base == amount
                {
                    ledger::post(
                        tx,
                        Some(&id),
                        "p2p_transfer",
                        &source(&ev.meta.id),
                        Some(ev.meta.block_number),
                        &[(ledger::wallet(&from), -amount), (ledger::wallet(&to), amount)],
                    )
                    .await?;
                    if r.state == State::PendingFunds {
                        remittances::set_tx_hash(tx, &id, TxHashColumn::Release, Some(&tx_hash)).await?;
                        transition_direct(
                            tx,
                            &id,
                            State::PendingFunds,
                            State::Settled,
                            "transferred",
                            json!({"tx_hash": tx_hash, "event_id": ev.meta.id, "block_number": ev.meta.block_number}),
                            false,
                        )
                        .await?;
                    } else if r.state != State::Settled {
                        tracing::error!(target: "engine", remittance_id = id, state = %r.state, "P2P transfer mined for a remittance that is not pending: operator attention needed");
                    }
                    return Ok(());
                }
                tracing::error!(target: "engine", remittance_id = id, "transfer job's token Transfer does not match its remittance: booked as a plain transfer");
            }
        }
        let from_custodial = crate::store::users::is_custodial_address(&mut **tx, &from).await?;
        let counterpart = if from_custodial {
            ledger::wallet(&from)
        } else {
            ledger::EXTERNAL.to_owned()
        };
        ledger::post(
            tx,
            None,
            "transfer_in",
            &source(&ev.meta.id),
            Some(ev.meta.block_number),
            &[(ledger::wallet(&to), amount), (counterpart, -amount)],
        )
        .await?;
        Ok(())
    }

    async fn job_failed(&self, tx: &mut DbTx, job: &FailedJob) -> Result<(), EngineError> {
        lock_feed(tx).await?;
        let id = format!("{:#x}", job.remittance_id);
        let Some(r) = load_for_update(tx, self.db().dialect, &id).await? else {
            return Ok(());
        };
        metrics::counter!("remesa_chain_jobs_failed_total", "kind" => job.kind.as_str()).increment(1);
        match (job.kind, r.state) {
            (kind @ (JobKind::Deposit | JobKind::Transfer), State::PendingFunds) => {
                let what = kind.as_str();
                let reason = format!("{what} failed after {} attempts", job.attempts);
                remittances::set_failure_reason(tx, &id, &reason).await?;
                let cause = format!("{what}_failed");
                let detail = json!({"attempts": job.attempts, "error": job.error});
                // A transfer into a Remesa wallet follows the direct machine; a deposit the escrow's.
                if kind == JobKind::Transfer {
                    transition_direct(tx, &id, r.state, State::Failed, &cause, detail, false).await?;
                } else {
                    transition(tx, &id, r.state, State::Failed, &cause, detail, false).await?;
                }
            }
            (kind, state) => {
                // A release or refund the token refuses (a blacklisted payee): the coins stay locked in the escrow
                // and the remittance keeps its state; the reason is on the remittance and the failed job.
                remittances::set_failure_reason(tx, &id, &format!("{kind} failed: {}", job.error)).await?;
                tracing::error!(target: "engine", remittance_id = id, %kind, %state, error = job.error, "chain job failed: operator attention needed");
            }
        }
        Ok(())
    }

    async fn expired(
        &self,
        tx: &mut DbTx,
        now_unix_s: u64,
        limit: u32,
    ) -> Result<Vec<RefundJob>, EngineError> {
        lock_feed(tx).await?;
        let rows = remittances::expired_locked_without_refund(
            tx,
            i64::try_from(now_unix_s).unwrap_or(i64::MAX),
            i64::from(limit),
        )
        .await?;
        let mut jobs = Vec::with_capacity(rows.len());
        for row in rows {
            let r = RemRow::try_from(row)?;
            if r.state != State::RefundPending {
                transition(
                    tx,
                    &r.id,
                    r.state,
                    State::RefundPending,
                    "expired",
                    json!({"chain_time_unix_s": now_unix_s}),
                    false,
                )
                .await?;
            }
            jobs.push(RefundJob {
                remittance_id: r.remittance_b256()?,
                terms: r.terms()?,
            });
        }
        Ok(jobs)
    }
}

impl ChainEventSink for Engine {
    async fn on_deposited(&self, tx: &mut DbTx, ev: &Deposited) -> Result<(), SinkError> {
        self.deposited(tx, ev).await.map_err(sink_err)
    }

    async fn on_released(&self, tx: &mut DbTx, ev: &Released) -> Result<(), SinkError> {
        self.released(tx, ev).await.map_err(sink_err)
    }

    async fn on_settled(&self, tx: &mut DbTx, ev: &Settled) -> Result<(), SinkError> {
        let amount = amount_i64(ev.amount_base_units).map_err(sink_err)?;
        let count = i64::try_from(u64::try_from(ev.count).unwrap_or(u64::MAX)).unwrap_or(i64::MAX);
        let row = SettlementRow {
            event_id: ev.meta.id.clone(),
            partner_id: i64::try_from(ev.partner_id).unwrap_or(i64::MAX),
            settlement_address: format!("{:#x}", ev.settlement),
            amount_base_units: amount,
            release_count: count,
            tx_hash: format!("{:#x}", ev.meta.tx_hash),
            block_number: i64::try_from(ev.meta.block_number).unwrap_or(i64::MAX),
            at_unix_ms: now_ms(),
        };
        settlements::insert(tx, &row)
            .await
            .map_err(EngineError::from)
            .map_err(sink_err)?;
        Ok(())
    }

    async fn on_refunded(&self, tx: &mut DbTx, ev: &Refunded) -> Result<(), SinkError> {
        self.refunded(tx, ev).await.map_err(sink_err)
    }

    async fn on_skipped(&self, tx: &mut DbTx, ev: &Skipped) -> Result<(), SinkError> {
        self.skipped(tx, ev).await.map_err(sink_err)
    }

    async fn on_token_transfer_to_custodial(
        &self,
        tx: &mut DbTx,
        ev: &CustodialTransfer,
    ) -> Result<(), SinkError> {
        self.transfer_in(tx, ev).await.map_err(sink_err)
    }

    async fn on_rolled_back(&self, tx: &mut DbTx, rb: &RolledBack) -> Result<(), SinkError> {
        self.rolled_back(tx, rb).await.map_err(sink_err)
    }

    async fn on_job_failed(&self, tx: &mut DbTx, job: &FailedJob) -> Result<(), SinkError> {
        self.job_failed(tx, job).await.map_err(sink_err)
    }

    async fn custodial_among(
        &self,
        tx: &mut DbTx,
        candidates: &[Address],
    ) -> Result<HashSet<Address>, SinkError> {
        let mut out = HashSet::new();
        for chunk in candidates.chunks(crate::store::users::ADDRESSES_PER_QUERY_MAX) {
            let texts: Vec<String> = chunk.iter().map(|a| format!("{a:#x}")).collect();
            for a in crate::store::users::custodial_among(&mut **tx, &texts).await? {
                if let Ok(addr) = Address::from_str(&a) {
                    out.insert(addr);
                }
            }
        }
        Ok(out)
    }

    async fn expired_locked(
        &self,
        tx: &mut DbTx,
        now_unix_s: u64,
        limit: u32,
    ) -> Result<Vec<RefundJob>, SinkError> {
        self.expired(tx, now_unix_s, limit).await.map_err(sink_err)
    }
}
