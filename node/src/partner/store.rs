//! The partner module's view of the database: the shared replay cache of request signatures, the partner event
//! feed, the durable webhook delivery queue, cursors, and partners' payout actions (migration `0004_partner.sql`).
//! The SQL is in `store::{replay, events, webhooks, partner_cursors, partner_actions}`; this adds ids, clocks,
//! page limits and the webhook body.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use serde::Serialize;
use sha2::{Digest as _, Sha256};
use sqlx::AnyPool;

use crate::store::events::{EventRow, NewEventRow};
use crate::store::group_commit::{BoxFut, GroupCommit, Op};
use crate::store::partner_actions::NewActionRow;
use crate::store::webhooks::NewDeliveryRow;
use crate::store::{Db, events, partner_actions, partner_cursors, replay, webhooks, write_tx};

/// How often (per process) expired replay-cache rows are pruned and the cache size is checked.
const REPLAY_PRUNE_INTERVAL_MS: i64 = 5_000;
/// Most expired replay rows one pruning transaction deletes.
const REPLAY_PRUNE_CHUNK: u64 = 2_000;
/// Largest page of the event feed and of the delivery list.
pub const PAGE_LIMIT_MAX: i64 = 500;

pub use crate::store::webhooks::{ClaimedDelivery, WebhookDelivery};
pub use crate::store::{StoreError, now_ms};

/// The node's pool as the partner module sees it.
#[derive(Clone, Debug)]
pub struct PartnerDb {
    pub pool: AnyPool,
    db: Db,
    replay: Arc<ReplayState>,
}

#[derive(Debug, Default)]
struct ReplayState {
    last_prune_unix_ms: AtomicI64,
    full: AtomicBool,
    /// Records signatures in shared transactions, started on the first request (on the runtime that makes it).
    commit: std::sync::OnceLock<GroupCommit<ReplayOp>>,
}

/// One signature to record in the replay cache until `expires_at_unix_ms`.
#[derive(Debug)]
struct ReplayEntry {
    replay_key: String,
    keyid: String,
    expires_at_unix_ms: i64,
}

/// Records a signature: true when it is fresh (never seen, or only as an expired leftover not pruned yet, which
/// is not a replay inside the window: the caller already refused signatures older than the window).
#[derive(Debug, Default)]
struct ReplayOp;

impl Op for ReplayOp {
    type Item = ReplayEntry;
    type Out = bool;
    const NAME: &'static str = "partner_replay";

    fn apply<'a>(
        &'a self,
        conn: &'a mut sqlx::AnyConnection,
        e: &'a ReplayEntry,
        now_ms: i64,
    ) -> BoxFut<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            if replay::insert_if_absent(&mut *conn, &e.replay_key, &e.keyid, e.expires_at_unix_ms).await? {
                return Ok(true);
            }
            replay::take_over_expired(&mut *conn, &e.replay_key, e.expires_at_unix_ms, now_ms).await
        })
    }

    /// One multi-row insert for the group; a key already stored (or twice in the group) is a replay unless the
    /// stored row has expired (taken over one by one: rare).
    fn apply_group<'a>(
        &'a self,
        conn: &'a mut sqlx::AnyConnection,
        items: Vec<&'a ReplayEntry>,
        now_ms: i64,
    ) -> BoxFut<'a, Result<Vec<bool>, StoreError>> {
        Box::pin(async move {
            let mut seen = std::collections::HashSet::with_capacity(items.len());
            let first: Vec<bool> = items.iter().map(|e| seen.insert(e.replay_key.as_str())).collect();
            let rows: Vec<replay::NewReplayRow<'_>> = items
                .iter()
                .zip(&first)
                .filter(|(_, first)| **first)
                .map(|(e, _)| (e.replay_key.as_str(), e.keyid.as_str(), e.expires_at_unix_ms))
                .collect();
            let stored = replay::insert_many_if_absent(&mut *conn, &rows).await?;
            let mut out = Vec::with_capacity(items.len());
            for (e, first) in items.into_iter().zip(first) {
                out.push(if !first {
                    false
                } else if stored.contains(&e.replay_key) {
                    true
                } else {
                    replay::take_over_expired(&mut *conn, &e.replay_key, e.expires_at_unix_ms, now_ms).await?
                });
            }
            Ok(out)
        })
    }
}

/// Outcome of recording a request signature in the replay cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayOutcome {
    /// First time seen: the request may proceed.
    Fresh,
    /// Seen before within its validity window: refuse.
    Replayed,
    /// The cache is at its bound with unexpired entries: refuse for now (fail closed).
    CacheFull,
}

/// A partner event as stored and as served by the feed.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct PartnerEvent {
    /// Position in the partner's feed; pass it as `after` to continue.
    pub seq: i64,
    /// Unique event id (also sent as the webhook's `Remesa-Event-Id`).
    pub id: String,
    /// e.g. `payout.created`, `payout.accepted`, `payout.paid`, `payout.settled`, `payout.cancelled`.
    #[serde(rename = "type")]
    pub event_type: String,
    pub payout_id: Option<String>,
    pub created_at_unix_ms: i64,
    /// Event-specific data (the payout as it was at the event).
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// One attempt at a claimed webhook delivery, to record.
#[derive(Debug, Clone)]
pub struct DeliveryAttempt {
    pub id: String,
    pub outcome: AttemptOutcome,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone)]
pub enum AttemptOutcome {
    Delivered {
        status_code: u16,
    },
    /// Back to `pending` at `next_attempt_at_unix_ms`, or parked as `failed` when `park`.
    Failed {
        status_code: Option<u16>,
        error: String,
        park: bool,
        next_attempt_at_unix_ms: i64,
    },
}

/// A new event for one partner, optionally with a webhook to deliver.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub partner_id: &'a str,
    pub event_type: &'a str,
    pub payout_id: Option<&'a str>,
    /// Idempotency of the producer: an event with a `source_key` already stored is not added again.
    pub source_key: Option<&'a str>,
    pub data: serde_json::Value,
    /// Where to deliver it (the partner's webhook URL), if anywhere.
    pub webhook_url: Option<&'a str>,
    pub max_attempts: u32,
}

impl From<&crate::store::Db> for PartnerDb {
    fn from(db: &crate::store::Db) -> Self {
        Self::new(db.clone())
    }
}

impl TryFrom<EventRow> for PartnerEvent {
    type Error = StoreError;

    fn try_from(r: EventRow) -> Result<Self, StoreError> {
        Ok(PartnerEvent {
            seq: r.seq,
            id: r.id,
            event_type: r.event_type,
            payout_id: r.payout_id,
            created_at_unix_ms: r.created_at_unix_ms,
            data: serde_json::from_str(&r.payload)
                .map_err(|e| StoreError::Corrupt(format!("event payload: {e}")))?,
        })
    }
}

impl PartnerDb {
    /// The node database underneath.
    pub fn node_db(&self) -> &Db {
        &self.db
    }

    pub fn new(db: Db) -> Self {
        Self {
            pool: db.pool.clone(),
            db,
            replay: Arc::default(),
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.db.is_postgres()
    }

    // ---------------------------------------------------------------- replay cache

    /// Records an accepted signature (`keyid` + signature bytes) until `expires_at_unix_ms`, durably, in a
    /// transaction it may share with other requests' signatures (group commit). Atomic across processes: of two
    /// concurrent requests with the same signature exactly one is `Fresh`. `Err(StoreError::Busy)` when the commit
    /// queue is full (answer 503).
    pub async fn record_signature(
        &self,
        keyid: &str,
        signature: &[u8],
        expires_at_unix_ms: i64,
        max_entries: u64,
    ) -> Result<ReplayOutcome, StoreError> {
        let now = now_ms();
        self.maybe_prune_replay(now, max_entries);
        let mut h = Sha256::new();
        h.update(keyid.as_bytes());
        h.update([0u8]);
        h.update(signature);
        let entry = ReplayEntry {
            replay_key: hex::encode(h.finalize()),
            keyid: keyid.to_owned(),
            expires_at_unix_ms,
        };
        let commit = self
            .replay
            .commit
            .get_or_init(|| GroupCommit::start(self.db.clone(), ReplayOp));
        if !commit.submit(entry).await? {
            return Ok(ReplayOutcome::Replayed);
        }
        if self.replay.full.load(Ordering::Relaxed) {
            // Over the bound: keep the row (so a replay stays refused) but refuse this request.
            return Ok(ReplayOutcome::CacheFull);
        }
        Ok(ReplayOutcome::Fresh)
    }

    /// Transactions the replay cache's group committer has committed (each recorded one group of signatures).
    pub fn replay_commits(&self) -> u64 {
        self.replay.commit.get().map_or(0, GroupCommit::commits)
    }

    /// Every [`REPLAY_PRUNE_INTERVAL_MS`], prunes in a task of its own: no request waits for it.
    fn maybe_prune_replay(&self, now: i64, max_entries: u64) {
        let last = self.replay.last_prune_unix_ms.load(Ordering::Relaxed);
        if now - last < REPLAY_PRUNE_INTERVAL_MS
            || self
                .replay
                .last_prune_unix_ms
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let db = self.clone();
        tokio::spawn(async move {
            if let Err(e) = db.prune_replay(now, max_entries).await {
                tracing::warn!(target: "partner::auth", error = %e, "pruning the replay cache failed; next time");
            }
        });
    }

    /// Deletes expired replay rows, [`REPLAY_PRUNE_CHUNK`] per transaction (the write turn is never held long),
    /// and re-evaluates whether the cache is over its bound.
    pub async fn prune_replay(&self, now: i64, max_entries: u64) -> Result<(), StoreError> {
        loop {
            let deleted = write_tx!(self.db, |tx| replay::delete_expired(
                &mut *tx,
                now,
                REPLAY_PRUNE_CHUNK
            ))?;
            if deleted < REPLAY_PRUNE_CHUNK {
                break;
            }
        }
        let n = replay::count(&self.pool).await?;
        let full = u64::try_from(n).unwrap_or(0) >= max_entries;
        if full {
            tracing::warn!(target: "partner::auth", entries = n, max_entries, "replay cache full; refusing new requests");
        }
        self.replay.full.store(full, Ordering::Relaxed);
        metrics::gauge!("remesa_partner_replay_cache_entries").set(n as f64);
        Ok(())
    }

    // ---------------------------------------------------------------- events and webhook queue

    /// Appends an event to a partner's feed and, when it has a webhook URL, queues its delivery, in one
    /// transaction. Returns the new `seq`, or `None` when `source_key` was already stored.
    pub async fn append_event(&self, ev: NewEvent<'_>) -> Result<Option<i64>, StoreError> {
        let seqs = self.append_events(std::slice::from_ref(&ev), None).await?;
        Ok(seqs.into_iter().next().flatten())
    }

    /// Appends events (and queues their deliveries) in order and, when given, moves a cursor to its new value, all in
    /// one transaction: one durable commit for a whole batch of the engine's feed. Returns each event's new `seq`,
    /// or `None` where its `source_key` was already stored.
    pub async fn append_events(
        &self,
        evs: &[NewEvent<'_>],
        cursor: Option<(&str, &str)>,
    ) -> Result<Vec<Option<i64>>, StoreError> {
        let now = now_ms();
        let mut tx = self.db.begin().await?;
        let mut seqs = Vec::with_capacity(evs.len());
        for ev in evs {
            let id = uuid::Uuid::now_v7().to_string();
            let row = NewEventRow {
                id: &id,
                partner_id: ev.partner_id,
                event_type: ev.event_type,
                payout_id: ev.payout_id,
                source_key: ev.source_key,
                payload: &ev.data.to_string(),
                created_at_unix_ms: now,
            };
            let Some(seq) = events::insert(&mut *tx, &row).await? else {
                seqs.push(None);
                continue;
            };
            seqs.push(Some(seq));
            if let Some(url) = ev.webhook_url {
                let payload = serde_json::json!({
                    "id": id,
                    "seq": seq,
                    "type": ev.event_type,
                    "partner_id": ev.partner_id,
                    "payout_id": ev.payout_id,
                    "created_at_unix_ms": now,
                    "data": ev.data,
                });
                let delivery = NewDeliveryRow {
                    id: &uuid::Uuid::now_v7().to_string(),
                    partner_id: ev.partner_id,
                    event_id: &id,
                    event_type: ev.event_type,
                    url,
                    payload: &payload.to_string(),
                    max_attempts: i64::from(ev.max_attempts.max(1)),
                    created_at_unix_ms: now,
                };
                webhooks::insert(&mut *tx, &delivery).await?;
            }
        }
        if let Some((name, value)) = cursor {
            partner_cursors::set(&mut *tx, name, value, now).await?;
        }
        tx.commit().await?;
        Ok(seqs)
    }

    /// A partner's events after `after_seq`, oldest first, at most `limit` (capped at [`PAGE_LIMIT_MAX`]).
    pub async fn list_events(
        &self,
        partner_id: &str,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<PartnerEvent>, StoreError> {
        events::after(&self.pool, partner_id, after_seq, limit.clamp(1, PAGE_LIMIT_MAX))
            .await?
            .into_iter()
            .map(PartnerEvent::try_from)
            .collect()
    }

    /// Whether the partner already has events about this payout.
    pub async fn has_events_for_payout(&self, partner_id: &str, payout_id: &str) -> Result<bool, StoreError> {
        events::exists_for_payout(&self.pool, partner_id, payout_id).await
    }

    /// Claims up to `limit` due deliveries (pending and due, or claimed by a worker whose claim ran out).
    pub async fn claim_deliveries(
        &self,
        worker: &str,
        limit: i64,
        claim_ms: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let now = now_ms();
        write_tx!(self.db, |tx| webhooks::claim_due(
            &mut *tx,
            self.db.dialect,
            worker,
            limit.clamp(1, PAGE_LIMIT_MAX),
            now + claim_ms,
            now,
        ))
    }

    /// Records the outcome of claimed deliveries' attempts, all in one transaction (one durable commit for a
    /// worker's whole round): delivered, back to `pending` at their next attempt time, or parked as `failed`.
    pub async fn record_attempts(
        &self,
        worker: &str,
        attempts: &[DeliveryAttempt],
    ) -> Result<(), StoreError> {
        if attempts.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let mut tx = self.db.begin().await?;
        for a in attempts {
            match &a.outcome {
                AttemptOutcome::Delivered { status_code } => {
                    webhooks::mark_delivered(&mut *tx, &a.id, worker, i64::from(*status_code), now).await?;
                }
                AttemptOutcome::Failed {
                    status_code,
                    error,
                    park,
                    next_attempt_at_unix_ms,
                } => {
                    let error: String = error.chars().take(500).collect();
                    webhooks::mark_attempt_failed(
                        &mut *tx,
                        &a.id,
                        worker,
                        status_code.map(i64::from),
                        &error,
                        *park,
                        *next_attempt_at_unix_ms,
                        now,
                    )
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deliveries by status (all when `None`), newest first, ids below `before_id` (cursor), at most `limit`.
    pub async fn list_deliveries(
        &self,
        status: Option<&str>,
        before_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        webhooks::list(&self.pool, status, before_id, limit.clamp(1, PAGE_LIMIT_MAX)).await
    }

    /// Puts a parked (`failed`) delivery back in the queue with a fresh attempt budget. Returns whether it was.
    pub async fn requeue_delivery(&self, id: &str) -> Result<bool, StoreError> {
        write_tx!(self.db, |tx| webhooks::requeue_failed(&mut *tx, id, now_ms()))
    }

    /// One partner's deliveries, newest first (at most `PAGE_LIMIT_MAX`).
    pub async fn partner_deliveries(
        &self,
        partner_id: &str,
        limit: i64,
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        webhooks::list_of_partner(&self.pool, partner_id, limit.clamp(1, PAGE_LIMIT_MAX)).await
    }

    /// Sends one of a partner's delivered or parked deliveries again. Returns whether it was.
    pub async fn resend_delivery(&self, id: &str, partner_id: &str) -> Result<bool, StoreError> {
        write_tx!(self.db, |tx| webhooks::resend(&mut *tx, id, partner_id, now_ms()))
    }

    pub async fn count_deliveries(&self, status: &str) -> Result<i64, StoreError> {
        webhooks::count_with_status(&self.pool, status).await
    }

    // ---------------------------------------------------------------- cursors and leases

    pub async fn get_cursor(&self, name: &str) -> Result<Option<String>, StoreError> {
        partner_cursors::get(&self.pool, name).await
    }

    pub async fn set_cursor(&self, name: &str, value: &str) -> Result<(), StoreError> {
        write_tx!(self.db, |tx| partner_cursors::set(
            &mut *tx,
            name,
            value,
            now_ms()
        ))
    }

    /// Takes or renews the lease `name` for `owner` (one follower at a time across processes).
    pub async fn try_lease(&self, name: &str, owner: &str, lease_ms: i64) -> Result<bool, StoreError> {
        write_tx!(self.db, |tx| partner_cursors::try_lease(
            &mut tx,
            name,
            owner,
            lease_ms,
            now_ms()
        ))
    }

    // ---------------------------------------------------------------- payout actions

    pub async fn record_action(
        &self,
        partner_id: &str,
        payout_id: &str,
        action: &str,
        reference: Option<&str>,
        reason: Option<&str>,
    ) -> Result<(), StoreError> {
        let row = NewActionRow {
            id: &uuid::Uuid::now_v7().to_string(),
            partner_id,
            payout_id,
            action,
            reference,
            reason,
            created_at_unix_ms: now_ms(),
        };
        write_tx!(self.db, |tx| partner_actions::insert(&mut *tx, &row))
    }
}
