//! The partner module's tables (migration `0004_partner.sql`): the shared replay cache of request signatures,
//! the partner event feed, the durable webhook delivery queue, cursors, and partners' payout actions.
//! Runtime queries with `$n` placeholders on `sqlx::AnyPool`; the same SQL on SQLite and PostgreSQL except for
//! `FOR UPDATE SKIP LOCKED` (PostgreSQL only).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use serde::Serialize;
use sha2::{Digest as _, Sha256};
use sqlx::{AnyPool, Row as _};

use crate::store::Db;

/// How often (per process) expired replay-cache rows are pruned and the cache size is checked.
const REPLAY_PRUNE_INTERVAL_MS: i64 = 5_000;
/// Largest page of the event feed and of the delivery list.
pub const PAGE_LIMIT_MAX: i64 = 500;

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

/// A webhook delivery as the operator sees it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct WebhookDelivery {
    pub id: String,
    pub partner_id: String,
    pub event_id: String,
    pub event_type: String,
    pub url: String,
    /// `pending`, `delivering`, `delivered` or `failed` (parked after `max_attempts`).
    pub status: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub next_attempt_at_unix_ms: i64,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub created_at_unix_ms: i64,
    pub updated_at_unix_ms: i64,
    pub delivered_at_unix_ms: Option<i64>,
}

/// A delivery claimed by a worker, with what it needs to send it.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: String,
    pub partner_id: String,
    pub event_id: String,
    pub event_type: String,
    pub url: String,
    pub payload: String,
    pub attempts: i64,
    pub max_attempts: i64,
}

const DELIVERY_COLUMNS: &str = "id, partner_id, event_id, event_type, url, status, attempts, max_attempts, \
     next_attempt_at_unix_ms, last_status_code, last_error, created_at_unix_ms, updated_at_unix_ms, delivered_at_unix_ms";

fn delivery_from_row(r: &sqlx::any::AnyRow) -> Result<WebhookDelivery, sqlx::Error> {
    Ok(WebhookDelivery {
        id: r.try_get("id")?,
        partner_id: r.try_get("partner_id")?,
        event_id: r.try_get("event_id")?,
        event_type: r.try_get("event_type")?,
        url: r.try_get("url")?,
        status: r.try_get("status")?,
        attempts: r.try_get("attempts")?,
        max_attempts: r.try_get("max_attempts")?,
        next_attempt_at_unix_ms: r.try_get("next_attempt_at_unix_ms")?,
        last_status_code: r.try_get("last_status_code")?,
        last_error: r.try_get("last_error")?,
        created_at_unix_ms: r.try_get("created_at_unix_ms")?,
        updated_at_unix_ms: r.try_get("updated_at_unix_ms")?,
        delivered_at_unix_ms: r.try_get("delivered_at_unix_ms")?,
    })
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

impl PartnerDb {
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

    fn skip_locked(&self) -> &'static str {
        self.db.dialect.skip_locked()
    }

    // ---------------------------------------------------------------- replay cache

    /// Records an accepted signature (`keyid` + signature bytes) until `expires_at_unix_ms`. Atomic across
    /// processes: of two concurrent requests with the same signature exactly one is `Fresh`.
    pub async fn record_signature(
        &self,
        keyid: &str,
        signature: &[u8],
        expires_at_unix_ms: i64,
        max_entries: u64,
    ) -> Result<ReplayOutcome, StoreError> {
        let now = now_ms();
        self.maybe_prune_replay(now, max_entries).await?;
        let mut h = Sha256::new();
        h.update(keyid.as_bytes());
        h.update([0u8]);
        h.update(signature);
        let replay_key = hex::encode(h.finalize());
        let done = sqlx::query(
            "INSERT INTO partner_signature_replay (replay_key, keyid, expires_at_unix_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (replay_key) DO NOTHING",
        )
        .bind(&replay_key)
        .bind(keyid)
        .bind(expires_at_unix_ms)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            if self.replay.full.load(Ordering::Relaxed) {
                // Over the bound: keep the row (so a replay stays refused) but refuse this request.
                return Ok(ReplayOutcome::CacheFull);
            }
            return Ok(ReplayOutcome::Fresh);
        }
        // The row may be an expired leftover not pruned yet: then this is not a replay inside the window (the
        // caller already refused signatures older than the window), so take it over.
        let taken = sqlx::query(
            "UPDATE partner_signature_replay SET expires_at_unix_ms = $1 WHERE replay_key = $2 AND expires_at_unix_ms < $3",
        )
        .bind(expires_at_unix_ms)
        .bind(&replay_key)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(if taken.rows_affected() == 1 {
            ReplayOutcome::Fresh
        } else {
            ReplayOutcome::Replayed
        })
    }

    async fn maybe_prune_replay(&self, now: i64, max_entries: u64) -> Result<(), StoreError> {
        let last = self.replay.last_prune_unix_ms.load(Ordering::Relaxed);
        if now - last < REPLAY_PRUNE_INTERVAL_MS
            || self
                .replay
                .last_prune_unix_ms
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return Ok(());
        }
        self.prune_replay(now, max_entries).await
    }

    /// Deletes expired replay rows and re-evaluates whether the cache is over its bound.
    pub async fn prune_replay(&self, now: i64, max_entries: u64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM partner_signature_replay WHERE expires_at_unix_ms < $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM partner_signature_replay")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
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
        let now = now_ms();
        let id = uuid::Uuid::now_v7().to_string();
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "INSERT INTO partner_events (id, partner_id, event_type, payout_id, source_key, payload, created_at_unix_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING seq",
        )
        .bind(&id)
        .bind(ev.partner_id)
        .bind(ev.event_type)
        .bind(ev.payout_id)
        .bind(ev.source_key)
        .bind(ev.data.to_string())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(None);
        };
        let seq: i64 = row.try_get("seq")?;
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
            sqlx::query(
                "INSERT INTO partner_webhook_deliveries (id, partner_id, event_id, event_type, url, payload, status, \
                 attempts, max_attempts, next_attempt_at_unix_ms, created_at_unix_ms, updated_at_unix_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $8, $8, $8)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(ev.partner_id)
            .bind(&id)
            .bind(ev.event_type)
            .bind(url)
            .bind(payload.to_string())
            .bind(i64::from(ev.max_attempts.max(1)))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Some(seq))
    }

    /// A partner's events after `after_seq`, oldest first, at most `limit` (capped at [`PAGE_LIMIT_MAX`]).
    pub async fn list_events(
        &self,
        partner_id: &str,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<PartnerEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, id, event_type, payout_id, payload, created_at_unix_ms FROM partner_events \
             WHERE partner_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(partner_id)
        .bind(after_seq)
        .bind(limit.clamp(1, PAGE_LIMIT_MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let payload: String = r.try_get("payload")?;
                Ok(PartnerEvent {
                    seq: r.try_get("seq")?,
                    id: r.try_get("id")?,
                    event_type: r.try_get("event_type")?,
                    payout_id: r.try_get("payout_id")?,
                    created_at_unix_ms: r.try_get("created_at_unix_ms")?,
                    data: serde_json::from_str(&payload)
                        .map_err(|e| StoreError::Corrupt(format!("event payload: {e}")))?,
                })
            })
            .collect()
    }

    /// Claims up to `limit` due deliveries (pending and due, or claimed by a worker whose claim ran out).
    pub async fn claim_deliveries(
        &self,
        worker: &str,
        limit: i64,
        claim_ms: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let now = now_ms();
        let sql = format!(
            "UPDATE partner_webhook_deliveries SET status = 'delivering', claimed_by = $1, \
             claim_expires_at_unix_ms = $2, updated_at_unix_ms = $3 \
             WHERE id IN (SELECT id FROM partner_webhook_deliveries \
               WHERE (status = 'pending' AND next_attempt_at_unix_ms <= $3) \
                  OR (status = 'delivering' AND claim_expires_at_unix_ms < $3) \
               ORDER BY next_attempt_at_unix_ms LIMIT $4{}) \
             RETURNING id, partner_id, event_id, event_type, url, payload, attempts, max_attempts",
            self.skip_locked()
        );
        let rows = sqlx::query(&sql)
            .bind(worker)
            .bind(now + claim_ms)
            .bind(now)
            .bind(limit.clamp(1, PAGE_LIMIT_MAX))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ClaimedDelivery {
                    id: r.try_get("id")?,
                    partner_id: r.try_get("partner_id")?,
                    event_id: r.try_get("event_id")?,
                    event_type: r.try_get("event_type")?,
                    url: r.try_get("url")?,
                    payload: r.try_get("payload")?,
                    attempts: r.try_get("attempts")?,
                    max_attempts: r.try_get("max_attempts")?,
                })
            })
            .collect()
    }

    pub async fn mark_delivered(&self, id: &str, worker: &str, status_code: u16) -> Result<(), StoreError> {
        let now = now_ms();
        sqlx::query(
            "UPDATE partner_webhook_deliveries SET status = 'delivered', attempts = attempts + 1, \
             last_status_code = $1, last_error = NULL, delivered_at_unix_ms = $2, updated_at_unix_ms = $2, \
             claimed_by = NULL, claim_expires_at_unix_ms = NULL WHERE id = $3 AND claimed_by = $4",
        )
        .bind(i64::from(status_code))
        .bind(now)
        .bind(id)
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a failed attempt: back to `pending` at `next_attempt_at_unix_ms`, or parked as `failed`.
    pub async fn mark_attempt_failed(
        &self,
        id: &str,
        worker: &str,
        status_code: Option<u16>,
        error: &str,
        park: bool,
        next_attempt_at_unix_ms: i64,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let error: String = error.chars().take(500).collect();
        sqlx::query(
            "UPDATE partner_webhook_deliveries SET status = $1, attempts = attempts + 1, last_status_code = $2, \
             last_error = $3, next_attempt_at_unix_ms = $4, updated_at_unix_ms = $5, claimed_by = NULL, \
             claim_expires_at_unix_ms = NULL WHERE id = $6 AND claimed_by = $7",
        )
        .bind(if park { "failed" } else { "pending" })
        .bind(status_code.map(i64::from))
        .bind(error)
        .bind(next_attempt_at_unix_ms)
        .bind(now)
        .bind(id)
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deliveries by status (all when `None`), newest first, ids below `before_id` (cursor), at most `limit`.
    pub async fn list_deliveries(
        &self,
        status: Option<&str>,
        before_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM partner_webhook_deliveries \
             WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(status)
            .bind(before_id)
            .bind(limit.clamp(1, PAGE_LIMIT_MAX))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(delivery_from_row).collect::<Result<_, _>>()?)
    }

    /// Puts a parked (`failed`) delivery back in the queue with a fresh attempt budget. Returns whether it was.
    pub async fn requeue_delivery(&self, id: &str) -> Result<bool, StoreError> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE partner_webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at_unix_ms = $1, \
             updated_at_unix_ms = $1 WHERE id = $2 AND status = 'failed'",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn count_deliveries(&self, status: &str) -> Result<i64, StoreError> {
        Ok(
            sqlx::query("SELECT COUNT(*) AS n FROM partner_webhook_deliveries WHERE status = $1")
                .bind(status)
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?,
        )
    }

    // ---------------------------------------------------------------- cursors and leases

    pub async fn get_cursor(&self, name: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT cursor_value FROM partner_cursors WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("cursor_value")).transpose()?)
    }

    pub async fn set_cursor(&self, name: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO partner_cursors (name, cursor_value, updated_at_unix_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET cursor_value = $2, updated_at_unix_ms = $3",
        )
        .bind(name)
        .bind(value)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes or renews the lease `name` for `owner` (one follower at a time across processes).
    pub async fn try_lease(&self, name: &str, owner: &str, lease_ms: i64) -> Result<bool, StoreError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO partner_cursors (name, cursor_value, updated_at_unix_ms) VALUES ($1, '', $2) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(now)
        .execute(&self.pool)
        .await?;
        let done = sqlx::query(
            "UPDATE partner_cursors SET lease_owner = $1, lease_expires_at_unix_ms = $2 WHERE name = $3 \
             AND (lease_owner IS NULL OR lease_owner = $1 OR lease_expires_at_unix_ms < $4)",
        )
        .bind(owner)
        .bind(now + lease_ms)
        .bind(name)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
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
        sqlx::query(
            "INSERT INTO partner_payout_actions (id, partner_id, payout_id, action, reference, reason, created_at_unix_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(partner_id)
        .bind(payout_id)
        .bind(action)
        .bind(reference)
        .bind(reason)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
