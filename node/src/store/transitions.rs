//! The `remittance_transitions` table: every state change of every remittance, in commit order (`seq`). It is the
//! engine's event feed (`GET /v1/events`, chat notifications, partner webhooks).

use sqlx::Executor;

use super::{StoreError, next_counter};

/// The columns every transition read returns (the remittance's partner and sender joined in).
const COLS: &str = "t.seq, t.remittance_id, t.from_state, t.to_state, t.cause, t.detail, t.at_unix_ms, \
    r.partner_id, r.sender_user_id";

/// A stored transition, read by column name.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct TransitionRow {
    pub seq: i64,
    pub remittance_id: String,
    pub from_state: Option<String>,
    pub to_state: String,
    pub cause: String,
    /// JSON.
    pub detail: String,
    pub at_unix_ms: i64,
    pub partner_id: i64,
    pub sender_user_id: Option<String>,
}

/// Takes the feed's lock (a no-op update of its counter row) for the rest of the transaction: every engine write
/// starts with it, so transitions commit in `seq` order. On SQLite it is a no-op: every write transaction of the
/// process already runs alone on the one write connection, in turn, and groups commit in that order
/// (`write_group`), so the statement would only cost a round trip to the connection's thread.
pub async fn lock_feed(conn: &mut sqlx::AnyConnection) -> Result<(), StoreError> {
    if conn.backend_name() == "SQLite" {
        return Ok(());
    }
    sqlx::query("UPDATE counters SET value = value WHERE name = 'transition_seq'")
        .execute(conn)
        .await?;
    Ok(())
}

/// Records a transition with the next `seq`; returns that seq.
pub async fn insert(
    conn: &mut sqlx::AnyConnection,
    remittance_id: &str,
    from_state: Option<&str>,
    to_state: &str,
    cause: &str,
    detail_json: &str,
    at_unix_ms: i64,
) -> Result<i64, StoreError> {
    let seq = next_counter(conn, "transition_seq").await?;
    sqlx::query(
        "INSERT INTO remittance_transitions (seq, remittance_id, from_state, to_state, cause, detail, at_unix_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(seq)
    .bind(remittance_id)
    .bind(from_state)
    .bind(to_state)
    .bind(cause)
    .bind(detail_json)
    .bind(at_unix_ms)
    .execute(conn)
    .await?;
    Ok(seq)
}

/// Transitions after `cursor` (exclusive), oldest first, at most `limit`; optionally one partner's.
pub async fn after<'e, E>(
    exec: E,
    cursor: i64,
    limit: i64,
    partner_id: Option<i64>,
) -> Result<Vec<TransitionRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let mut sql = format!(
        "SELECT {COLS} FROM remittance_transitions t JOIN remittances r ON r.id = t.remittance_id WHERE t.seq > $1"
    );
    if partner_id.is_some() {
        sql.push_str(" AND r.partner_id = $3");
    }
    sql.push_str(" ORDER BY t.seq LIMIT $2");
    let mut q = sqlx::query_as(&sql).bind(cursor).bind(limit);
    if let Some(p) = partner_id {
        q = q.bind(p);
    }
    Ok(q.fetch_all(exec).await?)
}

/// Every transition of one remittance, oldest first.
pub async fn of_remittance<'e, E>(exec: E, remittance_id: &str) -> Result<Vec<TransitionRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(&format!(
        "SELECT {COLS} FROM remittance_transitions t JOIN remittances r ON r.id = t.remittance_id \
         WHERE t.remittance_id = $1 ORDER BY t.seq"
    ))
    .bind(remittance_id)
    .fetch_all(exec)
    .await?)
}

/// The newest transition's seq (0 when there is none).
pub async fn latest_seq<'e, E>(exec: E) -> Result<i64, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(
        sqlx::query_scalar("SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM remittance_transitions")
            .fetch_one(exec)
            .await?,
    )
}

/// Transitions into `to_state` since `since_unix_ms`, counted per hour: `(hour = unix ms / 3,600,000, count)`.
pub async fn count_per_hour<'e, E>(
    exec: E,
    to_state: &str,
    since_unix_ms: i64,
) -> Result<Vec<(i64, i64)>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(
        "SELECT CAST(at_unix_ms / 3600000 AS BIGINT) AS hour, CAST(COUNT(*) AS BIGINT) AS n \
         FROM remittance_transitions WHERE to_state = $1 AND at_unix_ms >= $2 GROUP BY hour ORDER BY hour",
    )
    .bind(to_state)
    .bind(since_unix_ms)
    .fetch_all(exec)
    .await?)
}
