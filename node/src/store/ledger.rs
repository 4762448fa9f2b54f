//! The ledger's tables: `ledger_entries` (one per booked event, keyed by its source so it is booked once) and
//! `ledger_postings` (account, signed amount in base units). The double-entry rules live in `engine::ledger`.

use sqlx::Executor;

use super::StoreError;

/// A booked entry that has not been reversed.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct EntryRow {
    pub id: i64,
    pub remittance_id: Option<String>,
    pub kind: String,
}

/// One posting of an entry.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct PostingRow {
    pub account: String,
    pub amount_base_units: i64,
}

/// Whether an entry was booked from `source`.
pub async fn entry_exists(conn: &mut sqlx::AnyConnection, source: &str) -> Result<bool, StoreError> {
    let id: Option<i64> = sqlx::query_scalar("SELECT id FROM ledger_entries WHERE source = $1")
        .bind(source)
        .fetch_optional(conn)
        .await?;
    Ok(id.is_some())
}

/// An entry to insert with its postings (at most one posting per account).
#[derive(Clone, Debug)]
pub struct NewEntryRow<'a> {
    pub id: i64,
    pub remittance_id: Option<&'a str>,
    pub kind: &'a str,
    pub source: &'a str,
    pub block_number: Option<i64>,
    pub at_unix_ms: i64,
    pub postings: &'a [(String, i64)],
}

pub async fn insert_entry(conn: &mut sqlx::AnyConnection, e: &NewEntryRow<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO ledger_entries (id, remittance_id, kind, source, block_number, at_unix_ms) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(e.id)
    .bind(e.remittance_id)
    .bind(e.kind)
    .bind(e.source)
    .bind(e.block_number)
    .bind(e.at_unix_ms)
    .execute(&mut *conn)
    .await?;
    for (account, amount) in e.postings {
        sqlx::query("INSERT INTO ledger_postings (entry_id, account, amount_base_units) VALUES ($1, $2, $3)")
            .bind(e.id)
            .bind(account)
            .bind(*amount)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// The entry booked from `source` that has not been reversed, optionally only of one `kind`.
pub async fn unreversed_entry(
    conn: &mut sqlx::AnyConnection,
    source: &str,
    kind: Option<&str>,
) -> Result<Option<EntryRow>, StoreError> {
    let mut sql = String::from(
        "SELECT id, remittance_id, kind FROM ledger_entries WHERE source = $1 AND reversed_by IS NULL",
    );
    if kind.is_some() {
        sql.push_str(" AND kind = $2");
    }
    let mut q = sqlx::query_as(&sql).bind(source);
    if let Some(k) = kind {
        q = q.bind(k);
    }
    Ok(q.fetch_optional(conn).await?)
}

pub async fn postings(conn: &mut sqlx::AnyConnection, entry_id: i64) -> Result<Vec<PostingRow>, StoreError> {
    Ok(
        sqlx::query_as("SELECT account, amount_base_units FROM ledger_postings WHERE entry_id = $1")
            .bind(entry_id)
            .fetch_all(conn)
            .await?,
    )
}

/// Marks entry `id` reversed by entry `reversal_id`.
pub async fn mark_reversed(
    conn: &mut sqlx::AnyConnection,
    id: i64,
    reversal_id: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE ledger_entries SET reversed_by = $1 WHERE id = $2")
        .bind(reversal_id)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The balance of one account (base units).
pub async fn balance<'e, E>(exec: E, account: &str) -> Result<i64, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(amount_base_units), 0) AS BIGINT) FROM ledger_postings WHERE account = $1",
    )
    .bind(account)
    .fetch_one(exec)
    .await?)
}

/// Up to five entries whose postings do not sum to zero.
pub async fn unbalanced_entries<'e, E>(exec: E) -> Result<Vec<i64>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_scalar(
        "SELECT entry_id FROM ledger_postings GROUP BY entry_id HAVING SUM(amount_base_units) <> 0 LIMIT 5",
    )
    .fetch_all(exec)
    .await?)
}

pub async fn entry_count<'e, E>(exec: E) -> Result<i64, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(
        sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM ledger_entries")
            .fetch_one(exec)
            .await?,
    )
}

/// Every account with its balance, by account.
pub async fn balances<'e, E>(exec: E) -> Result<Vec<PostingRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(
        "SELECT account, CAST(SUM(amount_base_units) AS BIGINT) AS amount_base_units FROM ledger_postings \
         GROUP BY account ORDER BY account",
    )
    .fetch_all(exec)
    .await?)
}
