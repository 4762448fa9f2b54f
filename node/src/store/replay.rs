//! The `partner_signature_replay` table: request signatures already accepted (keyed by a hash of the key id and
//! the signature), each kept until it would be too old anyway. Shared by every node process on the database.

use sqlx::Executor;

use super::{MULTI_ROW_MAX, StoreError, values_placeholders};

/// One key to store: (replay key, key id, expiry).
pub type NewReplayRow<'a> = (&'a str, &'a str, i64);

/// Stores a key unless it is already there; whether it was stored (of two concurrent inserts, exactly one is).
pub async fn insert_if_absent<'e, E>(
    exec: E,
    replay_key: &str,
    keyid: &str,
    expires_at_unix_ms: i64,
) -> Result<bool, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let done = sqlx::query(
        "INSERT INTO partner_signature_replay (replay_key, keyid, expires_at_unix_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (replay_key) DO NOTHING",
    )
    .bind(replay_key)
    .bind(keyid)
    .bind(expires_at_unix_ms)
    .execute(exec)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Stores many keys in a few statements (one per [`MULTI_ROW_MAX`] rows); the keys that were stored, i.e. not
/// there before. The keys must be distinct.
pub async fn insert_many_if_absent(
    conn: &mut sqlx::AnyConnection,
    rows: &[NewReplayRow<'_>],
) -> Result<std::collections::HashSet<String>, StoreError> {
    let mut stored = std::collections::HashSet::with_capacity(rows.len());
    for chunk in rows.chunks(MULTI_ROW_MAX) {
        let sql = format!(
            "INSERT INTO partner_signature_replay (replay_key, keyid, expires_at_unix_ms) VALUES {} \
             ON CONFLICT (replay_key) DO NOTHING RETURNING replay_key",
            values_placeholders(chunk.len(), 3)
        );
        let mut q = sqlx::query_scalar::<_, String>(&sql);
        for (key, keyid, expires) in chunk {
            q = q.bind(*key).bind(*keyid).bind(*expires);
        }
        stored.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(stored)
}

/// Gives a stored key that expired before `now_ms` the new expiry; whether it had expired (and is now taken).
pub async fn take_over_expired<'e, E>(
    exec: E,
    replay_key: &str,
    expires_at_unix_ms: i64,
    now_ms: i64,
) -> Result<bool, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let taken = sqlx::query(
        "UPDATE partner_signature_replay SET expires_at_unix_ms = $1 WHERE replay_key = $2 AND expires_at_unix_ms < $3",
    )
    .bind(expires_at_unix_ms)
    .bind(replay_key)
    .bind(now_ms)
    .execute(exec)
    .await?;
    Ok(taken.rows_affected() == 1)
}

/// Deletes at most `limit` keys that expired before `now_ms`; how many.
pub async fn delete_expired<'e, E>(exec: E, now_ms: i64, limit: u64) -> Result<u64, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query(
        "DELETE FROM partner_signature_replay WHERE replay_key IN \
         (SELECT replay_key FROM partner_signature_replay WHERE expires_at_unix_ms < $1 LIMIT $2)",
    )
    .bind(now_ms)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .execute(exec)
    .await?
    .rows_affected())
}

/// How many keys are stored (expired ones not yet deleted included).
pub async fn count<'e, E>(exec: E) -> Result<i64, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM partner_signature_replay")
            .fetch_one(exec)
            .await?,
    )
}
