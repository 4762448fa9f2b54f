//! The `partner_events` table: each partner's event feed, in `seq` order (the source of
//! `GET /v1/partner/events?after=` and of webhooks).

use sqlx::Executor;

use super::StoreError;

/// An event to append. `source_key` makes the producer idempotent: a key already stored adds nothing.
#[derive(Clone, Debug)]
pub struct NewEventRow<'a> {
    pub id: &'a str,
    pub partner_id: &'a str,
    pub event_type: &'a str,
    pub payout_id: Option<&'a str>,
    pub source_key: Option<&'a str>,
    /// The event's data (JSON).
    pub payload: &'a str,
    pub created_at_unix_ms: i64,
}

/// A stored event, read by column name.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct EventRow {
    pub seq: i64,
    pub id: String,
    pub event_type: String,
    pub payout_id: Option<String>,
    /// The event's data (JSON).
    pub payload: String,
    pub created_at_unix_ms: i64,
}

/// Appends an event; its `seq`, or `None` when its id or `source_key` is already stored.
pub async fn insert<'e, E>(exec: E, ev: &NewEventRow<'_>) -> Result<Option<i64>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_scalar(
        "INSERT INTO partner_events (id, partner_id, event_type, payout_id, source_key, payload, created_at_unix_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING seq",
    )
    .bind(ev.id)
    .bind(ev.partner_id)
    .bind(ev.event_type)
    .bind(ev.payout_id)
    .bind(ev.source_key)
    .bind(ev.payload)
    .bind(ev.created_at_unix_ms)
    .fetch_optional(exec)
    .await?)
}

/// A partner's events after `after_seq`, oldest first, at most `limit`.
pub async fn after<'e, E>(
    exec: E,
    partner_id: &str,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<EventRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(
        "SELECT seq, id, event_type, payout_id, payload, created_at_unix_ms FROM partner_events \
         WHERE partner_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    )
    .bind(partner_id)
    .bind(after_seq)
    .bind(limit)
    .fetch_all(exec)
    .await?)
}

/// Whether the partner has any event about this payout.
pub async fn exists_for_payout<'e, E>(exec: E, partner_id: &str, payout_id: &str) -> Result<bool, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let found: Option<i64> =
        sqlx::query_scalar("SELECT seq FROM partner_events WHERE partner_id = $1 AND payout_id = $2 LIMIT 1")
            .bind(partner_id)
            .bind(payout_id)
            .fetch_optional(exec)
            .await?;
    Ok(found.is_some())
}
