//! The `customer_kyc` table (a user's latest request for a higher KYC tier) and the tier in force
//! (`users.kyc_tier`).

use sqlx::Executor;

use super::StoreError;

/// A user's KYC request, read by column name. `Debug` shows no field values (personal data).
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct KycRow {
    pub user_id: String,
    pub requested_tier: i64,
    pub status: String,
    /// JSON object: field name → parsed value.
    pub fields: String,
    pub note: Option<String>,
    pub updated_at_unix_ms: i64,
}

impl std::fmt::Debug for KycRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KycRow")
            .field("user_id", &self.user_id)
            .field("requested_tier", &self.requested_tier)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl KycRow {
    /// The fields given, parsed from their stored JSON; unreadable JSON is [`StoreError::Corrupt`].
    pub fn fields(&self) -> Result<std::collections::BTreeMap<crate::domain::KycField, String>, StoreError> {
        serde_json::from_str(&self.fields).map_err(|e| StoreError::Corrupt(format!("kyc fields: {e}")))
    }
}

const COLS: &str = "user_id, requested_tier, status, fields, note, updated_at_unix_ms";

pub async fn get<'e, E>(exec: E, user_id: &str) -> Result<Option<KycRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(
        sqlx::query_as(&format!("SELECT {COLS} FROM customer_kyc WHERE user_id = $1"))
            .bind(user_id)
            .fetch_optional(exec)
            .await?,
    )
}

/// Inserts or replaces the request of `row.user_id`.
pub async fn upsert<'e, E>(exec: E, row: &KycRow) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO customer_kyc (user_id, requested_tier, status, fields, note, updated_at_unix_ms) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (user_id) DO UPDATE SET requested_tier = excluded.requested_tier, status = excluded.status, \
         fields = excluded.fields, note = excluded.note, updated_at_unix_ms = excluded.updated_at_unix_ms",
    )
    .bind(&row.user_id)
    .bind(row.requested_tier)
    .bind(&row.status)
    .bind(&row.fields)
    .bind(row.note.as_deref())
    .bind(row.updated_at_unix_ms)
    .execute(exec)
    .await?;
    Ok(())
}

/// Requests in `status`, oldest first, at most `limit` (the review queue).
pub async fn in_status<'e, E>(exec: E, status: &str, limit: i64) -> Result<Vec<KycRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(&format!(
        "SELECT {COLS} FROM customer_kyc WHERE status = $1 ORDER BY updated_at_unix_ms, user_id LIMIT $2"
    ))
    .bind(status)
    .bind(limit)
    .fetch_all(exec)
    .await?)
}

/// The tier in force of a user; `None` when the user does not exist.
pub async fn tier<'e, E>(exec: E, user_id: &str) -> Result<Option<i64>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_scalar("SELECT kyc_tier FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(exec)
        .await?)
}

pub async fn set_tier<'e, E>(exec: E, user_id: &str, tier: i64) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query("UPDATE users SET kyc_tier = $1 WHERE id = $2")
        .bind(tier)
        .bind(user_id)
        .execute(exec)
        .await?;
    Ok(())
}
