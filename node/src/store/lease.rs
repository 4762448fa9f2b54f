//! The `chain_leases` table: at most one holder per name, with a fencing number that grows on every takeover.

use sqlx::Executor;

use super::StoreError;

/// Takes the lease `name` for `holder` until `expires_at_unix_ms` if it is free, expired at `now_ms`, or already
/// `holder`'s. Returns the fencing number, or `None` when another holder has it.
pub async fn try_acquire<'e, E>(
    exec: E,
    name: &str,
    holder: &str,
    expires_at_unix_ms: i64,
    now_ms: i64,
) -> Result<Option<i64>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_scalar(
        "INSERT INTO chain_leases (name, holder, fencing, expires_at_unix_ms) VALUES ($1, $2, 1, $3) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, fencing = chain_leases.fencing + 1, \
         expires_at_unix_ms = excluded.expires_at_unix_ms \
         WHERE chain_leases.expires_at_unix_ms < $4 OR chain_leases.holder = excluded.holder \
         RETURNING fencing",
    )
    .bind(name)
    .bind(holder)
    .bind(expires_at_unix_ms)
    .bind(now_ms)
    .fetch_optional(exec)
    .await?)
}

/// Extends the lease to `expires_at_unix_ms`; false when `holder` with `fencing` no longer has it.
pub async fn renew<'e, E>(
    exec: E,
    name: &str,
    holder: &str,
    fencing: i64,
    expires_at_unix_ms: i64,
) -> Result<bool, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let done = sqlx::query(
        "UPDATE chain_leases SET expires_at_unix_ms = $1 WHERE name = $2 AND holder = $3 AND fencing = $4",
    )
    .bind(expires_at_unix_ms)
    .bind(name)
    .bind(holder)
    .bind(fencing)
    .execute(exec)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes the lease if `holder` with `fencing` still has it.
pub async fn release<'e, E>(exec: E, name: &str, holder: &str, fencing: i64) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query("DELETE FROM chain_leases WHERE name = $1 AND holder = $2 AND fencing = $3")
        .bind(name)
        .bind(holder)
        .bind(fencing)
        .execute(exec)
        .await?;
    Ok(())
}
