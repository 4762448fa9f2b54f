//! The `partner_cursors` table: named cursors of the partner module's background followers, each with a lease
//! (one holder at a time across processes).

use sqlx::Executor;

use super::StoreError;

/// The stored value of cursor `name`.
pub async fn get<'e, E>(exec: E, name: &str) -> Result<Option<String>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(
        sqlx::query_scalar("SELECT cursor_value FROM partner_cursors WHERE name = $1")
            .bind(name)
            .fetch_optional(exec)
            .await?,
    )
}

/// Sets cursor `name` (its lease untouched).
pub async fn set<'e, E>(exec: E, name: &str, value: &str, now_ms: i64) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO partner_cursors (name, cursor_value, updated_at_unix_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET cursor_value = $2, updated_at_unix_ms = $3",
    )
    .bind(name)
    .bind(value)
    .bind(now_ms)
    .execute(exec)
    .await?;
    Ok(())
}

/// Takes or renews the lease of cursor `name` for `owner` until `now_ms + lease_ms` (creating the cursor, empty,
/// if needed); false while another owner's lease runs.
pub async fn try_lease(
    conn: &mut sqlx::AnyConnection,
    name: &str,
    owner: &str,
    lease_ms: i64,
    now_ms: i64,
) -> Result<bool, StoreError> {
    sqlx::query(
        "INSERT INTO partner_cursors (name, cursor_value, updated_at_unix_ms) VALUES ($1, '', $2) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    let done = sqlx::query(
        "UPDATE partner_cursors SET lease_owner = $1, lease_expires_at_unix_ms = $2 WHERE name = $3 \
         AND (lease_owner IS NULL OR lease_owner = $1 OR lease_expires_at_unix_ms < $4)",
    )
    .bind(owner)
    .bind(now_ms + lease_ms)
    .bind(name)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
