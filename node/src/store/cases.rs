//! The `error_cases` table: senders' reports of a problem with a transfer and the operator's answers.

use sqlx::Executor;

use super::StoreError;

const COLS: &str = "id, remittance_id, user_id, description, status, opened_at_unix_ms, answer_due_unix_ms, \
    resolution, resolved_by, resolved_at_unix_ms";

/// A case, read by column name.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CaseRow {
    pub id: String,
    pub remittance_id: String,
    pub user_id: String,
    pub description: String,
    /// `open` or `resolved`.
    pub status: String,
    pub opened_at_unix_ms: i64,
    pub answer_due_unix_ms: i64,
    pub resolution: Option<String>,
    pub resolved_by: Option<String>,
    pub resolved_at_unix_ms: Option<i64>,
}

pub async fn insert<'e, E>(exec: E, c: &CaseRow) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO error_cases (id, remittance_id, user_id, description, status, opened_at_unix_ms, \
         answer_due_unix_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&c.id)
    .bind(&c.remittance_id)
    .bind(&c.user_id)
    .bind(&c.description)
    .bind(&c.status)
    .bind(c.opened_at_unix_ms)
    .bind(c.answer_due_unix_ms)
    .execute(exec)
    .await?;
    Ok(())
}

/// The open case of a remittance, if any.
pub async fn open_of<'e, E>(exec: E, remittance_id: &str) -> Result<Option<CaseRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(&format!(
        "SELECT {COLS} FROM error_cases WHERE remittance_id = $1 AND status = 'open'"
    ))
    .bind(remittance_id)
    .fetch_optional(exec)
    .await?)
}

pub async fn get<'e, E>(exec: E, id: &str) -> Result<Option<CaseRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(
        sqlx::query_as(&format!("SELECT {COLS} FROM error_cases WHERE id = $1"))
            .bind(id)
            .fetch_optional(exec)
            .await?,
    )
}

/// Cases in `status`, oldest first, at most `limit`.
pub async fn in_status<'e, E>(exec: E, status: &str, limit: i64) -> Result<Vec<CaseRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(&format!(
        "SELECT {COLS} FROM error_cases WHERE status = $1 ORDER BY opened_at_unix_ms, id LIMIT $2"
    ))
    .bind(status)
    .bind(limit)
    .fetch_all(exec)
    .await?)
}

/// Resolves an open case; returns whether it was open.
pub async fn resolve<'e, E>(
    exec: E,
    id: &str,
    resolution: &str,
    by: &str,
    at_unix_ms: i64,
) -> Result<bool, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let r = sqlx::query(
        "UPDATE error_cases SET status = 'resolved', resolution = $1, resolved_by = $2, resolved_at_unix_ms = $3 \
         WHERE id = $4 AND status = 'open'",
    )
    .bind(resolution)
    .bind(by)
    .bind(at_unix_ms)
    .bind(id)
    .execute(exec)
    .await?;
    Ok(r.rows_affected() == 1)
}
