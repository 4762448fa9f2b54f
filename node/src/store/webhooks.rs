//! The `partner_webhook_deliveries` table: the durable queue of outbound webhooks.
//! `pending` → `delivering` (claimed by a worker until its claim runs out) → `delivered` | `failed` (parked, put
//! back by hand). Rows are never deleted.

use serde::Serialize;
use sqlx::Executor;

use super::{Dialect, StoreError};

const DELIVERY_COLS: &str = "id, partner_id, event_id, event_type, url, status, attempts, max_attempts, \
    next_attempt_at_unix_ms, last_status_code, last_error, created_at_unix_ms, updated_at_unix_ms, \
    delivered_at_unix_ms";

/// A delivery to queue (`pending`, due at once).
#[derive(Clone, Debug)]
pub struct NewDeliveryRow<'a> {
    pub id: &'a str,
    pub partner_id: &'a str,
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub url: &'a str,
    /// The body to send (JSON).
    pub payload: &'a str,
    pub max_attempts: i64,
    pub created_at_unix_ms: i64,
}

/// A webhook delivery as the operator sees it.
#[derive(Debug, Clone, Serialize, PartialEq, sqlx::FromRow, utoipa::ToSchema)]
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
#[derive(Debug, Clone, sqlx::FromRow)]
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

pub async fn insert<'e, E>(exec: E, d: &NewDeliveryRow<'_>) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO partner_webhook_deliveries (id, partner_id, event_id, event_type, url, payload, status, \
         attempts, max_attempts, next_attempt_at_unix_ms, created_at_unix_ms, updated_at_unix_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $8, $8, $8)",
    )
    .bind(d.id)
    .bind(d.partner_id)
    .bind(d.event_id)
    .bind(d.event_type)
    .bind(d.url)
    .bind(d.payload)
    .bind(d.max_attempts)
    .bind(d.created_at_unix_ms)
    .execute(exec)
    .await?;
    Ok(())
}

/// Claims up to `limit` deliveries for `worker` until `claim_expires_at_unix_ms`: pending ones that are due, and
/// delivering ones whose claim ran out (skipping rows another worker holds locked, on PostgreSQL).
pub async fn claim_due<'e, E>(
    exec: E,
    dialect: Dialect,
    worker: &str,
    limit: i64,
    claim_expires_at_unix_ms: i64,
    now_ms: i64,
) -> Result<Vec<ClaimedDelivery>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(&format!(
        "UPDATE partner_webhook_deliveries SET status = 'delivering', claimed_by = $1, \
         claim_expires_at_unix_ms = $2, updated_at_unix_ms = $3 \
         WHERE id IN (SELECT id FROM partner_webhook_deliveries \
           WHERE (status = 'pending' AND next_attempt_at_unix_ms <= $3) \
              OR (status = 'delivering' AND claim_expires_at_unix_ms < $3) \
           ORDER BY next_attempt_at_unix_ms LIMIT $4{}) \
         RETURNING id, partner_id, event_id, event_type, url, payload, attempts, max_attempts",
        dialect.skip_locked()
    ))
    .bind(worker)
    .bind(claim_expires_at_unix_ms)
    .bind(now_ms)
    .bind(limit)
    .fetch_all(exec)
    .await?)
}

/// Marks a delivery claimed by `worker` delivered (nothing when the claim is no longer its own).
pub async fn mark_delivered<'e, E>(
    exec: E,
    id: &str,
    worker: &str,
    status_code: i64,
    now_ms: i64,
) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "UPDATE partner_webhook_deliveries SET status = 'delivered', attempts = attempts + 1, \
         last_status_code = $1, last_error = NULL, delivered_at_unix_ms = $2, updated_at_unix_ms = $2, \
         claimed_by = NULL, claim_expires_at_unix_ms = NULL WHERE id = $3 AND claimed_by = $4",
    )
    .bind(status_code)
    .bind(now_ms)
    .bind(id)
    .bind(worker)
    .execute(exec)
    .await?;
    Ok(())
}

/// A failed attempt of a delivery claimed by `worker`: back to `pending` at `next_attempt_at_unix_ms`, or parked
/// as `failed` when `park`.
#[allow(clippy::too_many_arguments)]
pub async fn mark_attempt_failed<'e, E>(
    exec: E,
    id: &str,
    worker: &str,
    status_code: Option<i64>,
    error: &str,
    park: bool,
    next_attempt_at_unix_ms: i64,
    now_ms: i64,
) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "UPDATE partner_webhook_deliveries SET status = $1, attempts = attempts + 1, last_status_code = $2, \
         last_error = $3, next_attempt_at_unix_ms = $4, updated_at_unix_ms = $5, claimed_by = NULL, \
         claim_expires_at_unix_ms = NULL WHERE id = $6 AND claimed_by = $7",
    )
    .bind(if park { "failed" } else { "pending" })
    .bind(status_code)
    .bind(error)
    .bind(next_attempt_at_unix_ms)
    .bind(now_ms)
    .bind(id)
    .bind(worker)
    .execute(exec)
    .await?;
    Ok(())
}

/// Deliveries by status (all when `None`), newest first, ids below `before_id` (cursor), at most `limit`.
pub async fn list<'e, E>(
    exec: E,
    status: Option<&str>,
    before_id: Option<&str>,
    limit: i64,
) -> Result<Vec<WebhookDelivery>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLS} FROM partner_webhook_deliveries \
         WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
    ))
    .bind(status)
    .bind(before_id)
    .bind(limit)
    .fetch_all(exec)
    .await?)
}

/// Puts a parked (`failed`) delivery back in the queue, due now, with a fresh attempt budget; whether it was.
pub async fn requeue_failed<'e, E>(exec: E, id: &str, now_ms: i64) -> Result<bool, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let done = sqlx::query(
        "UPDATE partner_webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at_unix_ms = $1, \
         updated_at_unix_ms = $1 WHERE id = $2 AND status = 'failed'",
    )
    .bind(now_ms)
    .bind(id)
    .execute(exec)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// How many deliveries are in `status`.
pub async fn count_with_status<'e, E>(exec: E, status: &str) -> Result<i64, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM partner_webhook_deliveries WHERE status = $1")
            .bind(status)
            .fetch_one(exec)
            .await?,
    )
}

/// One partner's deliveries, newest first, at most `limit`.
pub async fn list_of_partner<'e, E>(
    exec: E,
    partner_id: &str,
    limit: i64,
) -> Result<Vec<WebhookDelivery>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLS} FROM partner_webhook_deliveries WHERE partner_id = $1 ORDER BY id DESC LIMIT $2"
    ))
    .bind(partner_id)
    .bind(limit)
    .fetch_all(exec)
    .await?)
}

/// Sends a delivered or parked delivery of `partner_id` again: back in the queue, due now, with a fresh attempt
/// budget (the partner asked for it; receivers dedupe by event id). Whether it was.
pub async fn resend<'e, E>(exec: E, id: &str, partner_id: &str, now_ms: i64) -> Result<bool, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let done = sqlx::query(
        "UPDATE partner_webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at_unix_ms = $1, \
         updated_at_unix_ms = $1 WHERE id = $2 AND partner_id = $3 AND status IN ('failed', 'delivered')",
    )
    .bind(now_ms)
    .bind(id)
    .bind(partner_id)
    .execute(exec)
    .await?;
    Ok(done.rows_affected() == 1)
}
