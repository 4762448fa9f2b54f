//! The `sanctions_lists` table: one row per list source, replaced whole by a load.

use sqlx::Executor;

use super::StoreError;

/// What a stored list is, without its entries.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ListMetaRow {
    pub source: String,
    pub list_date: Option<String>,
    pub entry_count: i64,
    pub sha256: String,
    pub loaded_at_unix_ms: i64,
    pub loaded_by: String,
}

/// A list to store.
#[derive(Debug, Clone)]
pub struct NewListRow<'a> {
    pub meta: &'a ListMetaRow,
    pub entries_json: &'a str,
}

/// Inserts or replaces the list of `row.meta.source`.
pub async fn upsert<'e, E>(exec: E, row: &NewListRow<'_>) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let m = row.meta;
    sqlx::query(
        "INSERT INTO sanctions_lists \
         (source, list_date, entry_count, sha256, entries_json, loaded_at_unix_ms, loaded_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (source) DO UPDATE SET list_date = excluded.list_date, entry_count = excluded.entry_count, \
         sha256 = excluded.sha256, entries_json = excluded.entries_json, \
         loaded_at_unix_ms = excluded.loaded_at_unix_ms, loaded_by = excluded.loaded_by",
    )
    .bind(&m.source)
    .bind(m.list_date.as_deref())
    .bind(m.entry_count)
    .bind(&m.sha256)
    .bind(row.entries_json)
    .bind(m.loaded_at_unix_ms)
    .bind(&m.loaded_by)
    .execute(exec)
    .await?;
    Ok(())
}

/// Every stored list's description (cheap: no entries), by source.
pub async fn metas<'e, E>(exec: E) -> Result<Vec<ListMetaRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(
        "SELECT source, list_date, entry_count, sha256, loaded_at_unix_ms, loaded_by FROM sanctions_lists \
         ORDER BY source",
    )
    .fetch_all(exec)
    .await?)
}

/// One list's entries (JSON) and the digest they were stored with.
pub async fn entries_json<'e, E>(exec: E, source: &str) -> Result<Option<(String, String)>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(
        sqlx::query_as("SELECT sha256, entries_json FROM sanctions_lists WHERE source = $1")
            .bind(source)
            .fetch_optional(exec)
            .await?,
    )
}
