//! The web consoles' tables (migration `0016_console.sql`): accounts, sessions (by token hash), failure throttles
//! and the audit log. The rules are in `engine::accounts`.

use sqlx::Executor;

use super::StoreError;

const ACCOUNT_COLS: &str = "id, username, role, partner_id, display_name, password_hash, status, \
    created_at_unix_ms, updated_at_unix_ms";

/// A console account, read by column name.
#[derive(Clone, sqlx::FromRow)]
pub struct AccountRow {
    pub id: String,
    pub username: String,
    /// `agent` or `operator`.
    pub role: String,
    /// The partner an agent works for; `None` for operators.
    pub partner_id: Option<i64>,
    pub display_name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// `active` or `disabled`.
    pub status: String,
    pub created_at_unix_ms: i64,
    pub updated_at_unix_ms: i64,
}

impl std::fmt::Debug for AccountRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountRow")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .field("partner_id", &self.partner_id)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// Inserts an account; false when the username is taken.
pub async fn insert_account<'e, E>(exec: E, a: &AccountRow) -> Result<bool, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let done = sqlx::query(
        "INSERT INTO console_accounts (id, username, role, partner_id, display_name, password_hash, status, \
         created_at_unix_ms, updated_at_unix_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (username) DO NOTHING",
    )
    .bind(&a.id)
    .bind(&a.username)
    .bind(&a.role)
    .bind(a.partner_id)
    .bind(&a.display_name)
    .bind(&a.password_hash)
    .bind(&a.status)
    .bind(a.created_at_unix_ms)
    .bind(a.updated_at_unix_ms)
    .execute(exec)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn account_by_username<'e, E>(exec: E, username: &str) -> Result<Option<AccountRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(&format!(
        "SELECT {ACCOUNT_COLS} FROM console_accounts WHERE username = $1"
    ))
    .bind(username)
    .fetch_optional(exec)
    .await?)
}

/// A partner's agents by username, at most `limit`.
pub async fn agents_of<'e, E>(exec: E, partner_id: i64, limit: i64) -> Result<Vec<AccountRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(&format!(
        "SELECT {ACCOUNT_COLS} FROM console_accounts WHERE partner_id = $1 AND role = 'agent' \
         ORDER BY username LIMIT $2"
    ))
    .bind(partner_id)
    .bind(limit)
    .fetch_all(exec)
    .await?)
}

/// Sets an account's status (`active` / `disabled`); false when there is no such account (of that partner, when
/// `partner_id` is given).
pub async fn set_status<'e, E>(
    exec: E,
    username: &str,
    partner_id: Option<i64>,
    status: &str,
    now_ms: i64,
) -> Result<bool, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let q = match partner_id {
        Some(p) => sqlx::query(
            "UPDATE console_accounts SET status = $1, updated_at_unix_ms = $2 WHERE username = $3 AND partner_id = $4",
        )
        .bind(status)
        .bind(now_ms)
        .bind(username)
        .bind(p),
        None => sqlx::query("UPDATE console_accounts SET status = $1, updated_at_unix_ms = $2 WHERE username = $3")
            .bind(status)
            .bind(now_ms)
            .bind(username),
    };
    let done = q.execute(exec).await?;
    Ok(done.rows_affected() == 1)
}

pub async fn insert_session<'e, E>(
    exec: E,
    token_hash: &str,
    account_id: &str,
    now_ms: i64,
    expires_at_unix_ms: i64,
) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO console_sessions (token_hash, account_id, created_at_unix_ms, expires_at_unix_ms) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash)
    .bind(account_id)
    .bind(now_ms)
    .bind(expires_at_unix_ms)
    .execute(exec)
    .await?;
    Ok(())
}

/// The active account behind an unexpired session.
pub async fn session_account<'e, E>(
    exec: E,
    token_hash: &str,
    now_ms: i64,
) -> Result<Option<AccountRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(
        "SELECT a.id, a.username, a.role, a.partner_id, a.display_name, a.password_hash, a.status, \
         a.created_at_unix_ms, a.updated_at_unix_ms \
         FROM console_sessions s JOIN console_accounts a ON a.id = s.account_id \
         WHERE s.token_hash = $1 AND s.expires_at_unix_ms > $2 AND a.status = 'active'",
    )
    .bind(token_hash)
    .bind(now_ms)
    .fetch_optional(exec)
    .await?)
}

pub async fn delete_session<'e, E>(exec: E, token_hash: &str) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1")
        .bind(token_hash)
        .execute(exec)
        .await?;
    Ok(())
}

/// Ends every session of an account (disabled, or its password changed).
pub async fn delete_sessions_of<'e, E>(exec: E, username: &str) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "DELETE FROM console_sessions WHERE account_id IN (SELECT id FROM console_accounts WHERE username = $1)",
    )
    .bind(username)
    .execute(exec)
    .await?;
    Ok(())
}

/// Removes sessions that expired before `now_ms`.
pub async fn delete_expired_sessions<'e, E>(exec: E, now_ms: i64) -> Result<u64, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let done = sqlx::query("DELETE FROM console_sessions WHERE expires_at_unix_ms <= $1")
        .bind(now_ms)
        .execute(exec)
        .await?;
    Ok(done.rows_affected())
}

/// The failures counted in `bucket`'s current window (0 when its window is over or it has none).
pub async fn throttle_failures<'e, E>(
    exec: E,
    bucket: &str,
    window_start_after_ms: i64,
) -> Result<i64, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let n: Option<i64> = sqlx::query_scalar(
        "SELECT failures FROM console_throttle WHERE bucket = $1 AND window_start_unix_ms > $2",
    )
    .bind(bucket)
    .bind(window_start_after_ms)
    .fetch_optional(exec)
    .await?;
    Ok(n.unwrap_or(0))
}

/// Counts one failure in `bucket`: a window older than `window_start_after_ms` starts again at `now_ms` with 1.
/// Returns the failures in the window, this one included.
pub async fn throttle_fail<'e, E>(
    exec: E,
    bucket: &str,
    window_start_after_ms: i64,
    now_ms: i64,
) -> Result<i64, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_scalar(
        "INSERT INTO console_throttle (bucket, window_start_unix_ms, failures) VALUES ($1, $3, 1) \
         ON CONFLICT (bucket) DO UPDATE SET \
           failures = CASE WHEN console_throttle.window_start_unix_ms > $2 \
                           THEN console_throttle.failures + 1 ELSE 1 END, \
           window_start_unix_ms = CASE WHEN console_throttle.window_start_unix_ms > $2 \
                           THEN console_throttle.window_start_unix_ms ELSE $3 END \
         RETURNING failures",
    )
    .bind(bucket)
    .bind(window_start_after_ms)
    .bind(now_ms)
    .fetch_one(exec)
    .await?)
}

/// Clears a bucket (a successful sign-in clears its username's failures).
pub async fn throttle_clear<'e, E>(exec: E, bucket: &str) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query("DELETE FROM console_throttle WHERE bucket = $1")
        .bind(bucket)
        .execute(exec)
        .await?;
    Ok(())
}

/// One audit entry.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AuditRow {
    pub id: String,
    pub account_id: String,
    pub partner_id: Option<i64>,
    pub action: String,
    pub subject: Option<String>,
    pub detail: Option<String>,
    pub created_at_unix_ms: i64,
}

pub async fn insert_audit<'e, E>(exec: E, a: &AuditRow) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO console_audit (id, account_id, partner_id, action, subject, detail, created_at_unix_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&a.id)
    .bind(&a.account_id)
    .bind(a.partner_id)
    .bind(&a.action)
    .bind(&a.subject)
    .bind(&a.detail)
    .bind(a.created_at_unix_ms)
    .execute(exec)
    .await?;
    Ok(())
}

/// An audit entry with the username of its account, as the operator console shows it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AuditEntryRow {
    pub action: String,
    pub username: Option<String>,
    pub partner_id: Option<i64>,
    pub detail: Option<String>,
    pub created_at_unix_ms: i64,
}

/// Audit entries about `subject` (a remittance id), oldest first, at most `limit`.
pub async fn audit_of<'e, E>(exec: E, subject: &str, limit: i64) -> Result<Vec<AuditEntryRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(
        "SELECT c.action, a.username, c.partner_id, c.detail, c.created_at_unix_ms FROM console_audit c \
         LEFT JOIN console_accounts a ON a.id = c.account_id \
         WHERE c.subject = $1 ORDER BY c.created_at_unix_ms, c.id LIMIT $2",
    )
    .bind(subject)
    .bind(limit)
    .fetch_all(exec)
    .await?)
}

/// A partner's audit entries of `action` since `since_ms`, newest first, at most `limit`.
pub async fn audit_of_partner<'e, E>(
    exec: E,
    partner_id: i64,
    action: &str,
    since_ms: i64,
    limit: i64,
) -> Result<Vec<AuditRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(
        "SELECT id, account_id, partner_id, action, subject, detail, created_at_unix_ms FROM console_audit \
         WHERE partner_id = $1 AND action = $2 AND created_at_unix_ms >= $3 \
         ORDER BY created_at_unix_ms DESC, id DESC LIMIT $4",
    )
    .bind(partner_id)
    .bind(action)
    .bind(since_ms)
    .bind(limit)
    .fetch_all(exec)
    .await?)
}
