//! The `partner_signature_replay` table: request signatures already accepted (keyed by a hash of the key id and
//! the signature), each kept until it would be too old anyway. Shared by every node process on the database.

use sqlx::Executor;

use super::StoreError;

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

/// Deletes the keys that expired before `now_ms`; how many.
pub async fn delete_expired<'e, E>(exec: E, now_ms: i64) -> Result<u64, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(
        sqlx::query("DELETE FROM partner_signature_replay WHERE expires_at_unix_ms < $1")
            .bind(now_ms)
            .execute(exec)
            .await?
            .rows_affected(),
    )
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
