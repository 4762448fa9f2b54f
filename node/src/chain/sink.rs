//! The engine's side of the chain: the indexer delivers events to a [`ChainEventSink`] inside the same database
//! transaction that advances its cursor, so an event is applied exactly once (or rolled back with its block).

use std::collections::HashSet;
use std::future::Future;

use alloy::primitives::Address;

use super::types::{
    CustodialTransfer, Deposited, FailedJob, RefundJob, Refunded, Released, RolledBack, Settled, Skipped,
};

/// A database transaction on the node's `AnyPool` (the store's [`Tx`](crate::store::Tx)).
pub type DbTx = crate::store::Tx;

/// An error of the engine, carried through the chain workers unchanged.
pub type SinkError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Implemented by the engine. Every method runs inside the chain worker's transaction `tx`: whatever the method
/// writes commits together with the indexer's cursor (or the keeper's enqueued refunds), or not at all.
///
/// An `Err` rolls the whole block range back; the indexer retries it later (with backoff), so methods must be
/// deterministic: refuse, don't half-apply. Events arrive in chain order (block, log index).
pub trait ChainEventSink: Send + Sync + 'static {
    /// `Deposited(id, sender, partnerId, amount, expiry, claimHash)`: the funds are locked.
    fn on_deposited(
        &self,
        tx: &mut DbTx,
        ev: &Deposited,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// `Released(id, partnerId, amount, preimage)`: released to the partner (paid out in the following `Settled`).
    fn on_released(&self, tx: &mut DbTx, ev: &Released)
    -> impl Future<Output = Result<(), SinkError>> + Send;

    /// `Settled(partnerId, settlement, amount, count)`: one token transfer for a run of releases.
    fn on_settled(&self, tx: &mut DbTx, ev: &Settled) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// `Refunded(id, sender, amount)`: back to the sender.
    fn on_refunded(&self, tx: &mut DbTx, ev: &Refunded)
    -> impl Future<Output = Result<(), SinkError>> + Send;

    /// `Skipped(id, reason)`: a batch item was not applied (e.g. the authorization failed).
    fn on_skipped(&self, tx: &mut DbTx, ev: &Skipped) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// A token transfer into a custodial address (see [`CustodialTransfer::from_escrow`]).
    fn on_token_transfer_to_custodial(
        &self,
        tx: &mut DbTx,
        ev: &CustodialTransfer,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// A reorg removed blocks whose events were applied: undo them. Replacement events follow in later calls.
    fn on_rolled_back(
        &self,
        tx: &mut DbTx,
        rb: &RolledBack,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// The outbox gave up on a job (called in the writer's transaction that marks it failed).
    fn on_job_failed(
        &self,
        tx: &mut DbTx,
        job: &FailedJob,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Which of `candidates` are custodial addresses (wallets whose keys the node holds).
    fn custodial_among(
        &self,
        tx: &mut DbTx,
        candidates: &[Address],
    ) -> impl Future<Output = Result<HashSet<Address>, SinkError>> + Send;

    /// Locked remittances with `expiry <= now_unix_s` (chain time: the latest block's timestamp) that have no refund
    /// under way yet, at most `limit`. The keeper enqueues a refund for each in the same transaction; the engine
    /// may record the transition (e.g. to refund_pending) here. Returning one already enqueued is harmless.
    fn expired_locked(
        &self,
        tx: &mut DbTx,
        now_unix_s: u64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<RefundJob>, SinkError>> + Send;
}
