//! The engine as the chain workers' [`ChainEventSink`]: indexed escrow events move remittances and book the
//! ledger, inside the indexer's transaction (so they are applied exactly once, or rolled back with their block).

use std::collections::HashSet;
use std::str::FromStr;

use alloy::primitives::{Address, U256};
use serde_json::json;
use sqlx::Row;

use super::state::State;
use super::views::{R_COLS, RemRow, load};
use super::{Engine, EngineError, ledger, lock_feed, transition, transition_direct};
use crate::chain::{
    ChainEventSink, CustodialTransfer, DbTx, Deposited, FailedJob, JobKind, RefundJob, Refunded, Released,
    RolledBack, Settled, SinkError, SkipReason, Skipped,
};
use crate::domain::PayoutMethod;
use crate::store::now_ms;

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
        let Some(r) = load(tx, &id, self.db().dialect.for_update()).await? else {
            tracing::warn!(target: "engine", remittance_id = id, "deposit of an unknown remittance: booked, no state");
            return Ok(());
        };
        let tx_hash = format!("{:#x}", ev.meta.tx_hash);
        sqlx::query("UPDATE remittances SET lock_tx_hash = $1 WHERE id = $2")
            .bind(&tx_hash)
            .bind(&id)
            .execute(&mut **tx)
            .await?;
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
        let Some(r) = load(tx, &id, self.db().dialect.for_update()).await? else {
            return Ok(());
        };
        let tx_hash = format!("{:#x}", ev.meta.tx_hash);
        sqlx::query("UPDATE remittances SET release_tx_hash = $1 WHERE id = $2")
            .bind(&tx_hash)
            .bind(&id)
            .execute(&mut **tx)
            .await?;
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
        let Some(r) = load(tx, &id, self.db().dialect.for_update()).await? else {
            return Ok(());
        };
        let tx_hash = format!("{:#x}", ev.meta.tx_hash);
        sqlx::query("UPDATE remittances SET refund_tx_hash = $1 WHERE id = $2")
            .bind(&tx_hash)
            .bind(&id)
            .execute(&mut **tx)
            .await?;
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
        let Some(r) = load(tx, &id, self.db().dialect.for_update()).await? else {
            return Ok(());
        };
        let reason = format!("{:?}", ev.reason);
        tracing::warn!(target: "engine", remittance_id = id, reason, batch = ?ev.batch, "escrow skipped an item");
        let is_deposit = ev.batch.is_none_or(|b| b == JobKind::Deposit);
        if is_deposit
            && ev.reason != SkipReason::WrongState
            && matches!(r.state, State::Quoted | State::PendingFunds)
        {
            sqlx::query("UPDATE remittances SET failure_reason = $1 WHERE id = $2")
                .bind(format!("deposit refused on chain: {reason}"))
                .bind(&id)
                .execute(&mut **tx)
                .await?;
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
                sqlx::query(
                    "SELECT remittance_id FROM ledger_entries WHERE source = $1 AND reversed_by IS NULL \
                     AND kind = 'p2p_transfer'",
                )
                .bind(source(&ev.id))
                .fetch_optional(&mut **tx)
                .await?
                .map(|r| r.try_get::<Option<String>, _>(0))
                .transpose()?
                .flatten()
            } else {
                None
            };
            ledger::reverse(tx, &source(&ev.id), "reorg").await?;
            if let Some(id) = p2p {
                if let Some(r) = load(tx, &id, self.db().dialect.for_update()).await?
                    && r.state == State::Settled
                {
                    sqlx::query("UPDATE remittances SET release_tx_hash = NULL WHERE id = $1")
                        .bind(&id)
                        .execute(&mut **tx)
                        .await?;
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
                sqlx::query("DELETE FROM settlements WHERE event_id = $1")
                    .bind(&ev.id)
                    .execute(&mut **tx)
                    .await?;
                continue;
            }
            let Some(rid) = ev.remittance_id else { continue };
            let id = format!("{rid:#x}");
            let Some(r) = load(tx, &id, self.db().dialect.for_update()).await? else {
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
        let job = sqlx::query(
            "SELECT j.remittance_id FROM chain_tx_attempts a JOIN chain_jobs j ON j.tx_id = a.tx_id \
             WHERE a.tx_hash = $1 AND j.kind = 'transfer'",
        )
        .bind(&tx_hash)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(row) = job {
            lock_feed(tx).await?;
            let id: String = row.try_get(0)?;
            if let Some(r) = load(tx, &id, self.db().dialect.for_update()).await? {
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
                        sqlx::query("UPDATE remittances SET release_tx_hash = $1 WHERE id = $2")
                            .bind(&tx_hash)
                            .bind(&id)
                            .execute(&mut **tx)
                            .await?;
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
        let Some(r) = load(tx, &id, self.db().dialect.for_update()).await? else {
            return Ok(());
        };
        metrics::counter!("remesa_chain_jobs_failed_total", "kind" => job.kind.as_str()).increment(1);
        match (job.kind, r.state) {
            (kind @ (JobKind::Deposit | JobKind::Transfer), State::PendingFunds) => {
                let what = kind.as_str();
                sqlx::query("UPDATE remittances SET failure_reason = $1 WHERE id = $2")
                    .bind(format!("{what} failed after {} attempts", job.attempts))
                    .bind(&id)
                    .execute(&mut **tx)
                    .await?;
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
        let cols = R_COLS
            .split(", ")
            .map(|c| format!("r.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(&format!(
            "SELECT {cols} FROM remittances r LEFT JOIN chain_jobs j ON j.kind = 'refund' AND j.remittance_id = r.id \
             WHERE r.state IN ('funds_locked', 'payout_assigned', 'payout_accepted', 'refund_pending') \
             AND r.expiry_unix_s <= $1 AND j.id IS NULL ORDER BY r.expiry_unix_s LIMIT $2"
        ))
        .bind(i64::try_from(now_unix_s).unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&mut **tx)
        .await?;
        let mut jobs = Vec::with_capacity(rows.len());
        for row in &rows {
            let r = RemRow::from_row(row)?;
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
        sqlx::query(
            "INSERT INTO settlements (event_id, partner_id, settlement_address, amount_base_units, release_count, \
             tx_hash, block_number, at_unix_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(&ev.meta.id)
        .bind(i64::try_from(ev.partner_id).unwrap_or(i64::MAX))
        .bind(format!("{:#x}", ev.settlement))
        .bind(amount)
        .bind(count)
        .bind(format!("{:#x}", ev.meta.tx_hash))
        .bind(i64::try_from(ev.meta.block_number).unwrap_or(i64::MAX))
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
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
