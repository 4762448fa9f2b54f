//! The `chain_jobs` table: the transactional outbox of chain work. A job is unique per (kind, remittance id) and
//! moves `pending -> claimed -> in_tx -> done` (or `failed`); its payload is JSON that may hold a pickup code, so
//! the rows here never print it.

use std::fmt;

use alloy::primitives::B256;
use sqlx::Executor;

use super::text::b256_text;
use super::{Dialect, StoreError};

/// A job to enqueue (status `pending`, no attempts, claimable from `now_ms`).
pub struct NewJobRow<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub remittance_id: B256,
    /// JSON; may hold a pickup code.
    pub payload: &'a str,
    pub now_ms: i64,
}

impl fmt::Debug for NewJobRow<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewJobRow")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("remittance_id", &self.remittance_id)
            .field("payload", &"<redacted>")
            .field("now_ms", &self.now_ms)
            .finish()
    }
}

/// Where a job stands, with the hash of its mined transaction, read by column name.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct JobStateRow {
    pub id: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub tx_id: Option<String>,
    pub mined_tx_hash: Option<String>,
}

/// How many jobs of one kind have one status.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct JobCountRow {
    pub kind: String,
    pub status: String,
    pub job_count: i64,
}

/// Claimable jobs of one kind: how many, and the enqueue time of the oldest.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct BacklogRow {
    pub kind: String,
    pub job_count: i64,
    pub oldest_created_at_unix_ms: i64,
}

/// A job just claimed.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ClaimedJobRow {
    pub id: String,
    /// JSON; may hold a pickup code.
    pub payload: String,
    pub attempts: i64,
    pub created_at_unix_ms: i64,
}

impl fmt::Debug for ClaimedJobRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaimedJobRow")
            .field("id", &self.id)
            .field("payload", &"<redacted>")
            .field("attempts", &self.attempts)
            .field("created_at_unix_ms", &self.created_at_unix_ms)
            .finish()
    }
}

/// A job carried by a transaction (status `in_tx`).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct InTxJobRow {
    pub id: String,
    pub attempts: i64,
    pub kind: String,
    pub remittance_id: String,
}

/// Inserts the job unless one of the same kind and remittance exists; true when this call created it.
pub async fn insert<'e, E>(exec: E, job: &NewJobRow<'_>) -> Result<bool, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let done = sqlx::query(
        "INSERT INTO chain_jobs (id, kind, remittance_id, payload, status, attempts, not_before_unix_ms, \
         created_at_unix_ms, updated_at_unix_ms) VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5, $5) \
         ON CONFLICT (kind, remittance_id) DO NOTHING",
    )
    .bind(job.id)
    .bind(job.kind)
    .bind(b256_text(job.remittance_id))
    .bind(job.payload)
    .bind(job.now_ms)
    .execute(exec)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The id of the job `(kind, remittance_id)`; an error when there is none.
pub async fn id_of<'e, E>(exec: E, kind: &str, remittance_id: B256) -> Result<String, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(
        sqlx::query_scalar("SELECT id FROM chain_jobs WHERE kind = $1 AND remittance_id = $2")
            .bind(kind)
            .bind(b256_text(remittance_id))
            .fetch_one(exec)
            .await?,
    )
}

/// The state of the job `(kind, remittance_id)`, if enqueued.
pub async fn state<'e, E>(exec: E, kind: &str, remittance_id: B256) -> Result<Option<JobStateRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(
        "SELECT j.id, j.status, j.attempts, j.last_error, j.tx_id, t.mined_tx_hash FROM chain_jobs j \
         LEFT JOIN chain_txs t ON t.id = j.tx_id WHERE j.kind = $1 AND j.remittance_id = $2",
    )
    .bind(kind)
    .bind(b256_text(remittance_id))
    .fetch_optional(exec)
    .await?)
}

/// Job counts per kind and status, ordered by both.
pub async fn counts<'e, E>(exec: E) -> Result<Vec<JobCountRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(
        "SELECT kind, status, COUNT(*) AS job_count FROM chain_jobs GROUP BY kind, status ORDER BY kind, status",
    )
    .fetch_all(exec)
    .await?)
}

/// Due at `$1` and either pending or claimed with an expired claim.
const CLAIMABLE: &str = "not_before_unix_ms <= $1 AND (status = 'pending' OR (status = 'claimed' AND \
                         claim_expires_at_unix_ms < $1))";

/// Jobs claimable at `now_ms`, per kind (in no particular order).
pub async fn backlog<'e, E>(exec: E, now_ms: i64) -> Result<Vec<BacklogRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(&format!(
        "SELECT kind, COUNT(*) AS job_count, MIN(created_at_unix_ms) AS oldest_created_at_unix_ms FROM chain_jobs \
         WHERE {CLAIMABLE} GROUP BY kind"
    ))
    .bind(now_ms)
    .fetch_all(exec)
    .await?)
}

/// Claims up to `limit` claimable jobs of `kind` for `claimer` until `claim_expires_at_unix_ms`, oldest first
/// (the rows come back in no particular order). On PostgreSQL rows another claimer is locking are skipped.
pub async fn claim<'e, E>(
    exec: E,
    dialect: Dialect,
    kind: &str,
    claimer: &str,
    limit: i64,
    now_ms: i64,
    claim_expires_at_unix_ms: i64,
) -> Result<Vec<ClaimedJobRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let sql = format!(
        "UPDATE chain_jobs SET status = 'claimed', claimed_by = $2, claim_expires_at_unix_ms = $3, \
         updated_at_unix_ms = $1 WHERE id IN (SELECT id FROM chain_jobs WHERE kind = $4 AND {CLAIMABLE} \
         ORDER BY created_at_unix_ms, id LIMIT $5{}) RETURNING id, payload, attempts, created_at_unix_ms",
        dialect.skip_locked()
    );
    Ok(sqlx::query_as(&sql)
        .bind(now_ms)
        .bind(claimer)
        .bind(claim_expires_at_unix_ms)
        .bind(kind)
        .bind(limit)
        .fetch_all(exec)
        .await?)
}

/// Puts every job `claimer` holds claimed back to `pending`; how many.
pub async fn release_claims<'e, E>(exec: E, claimer: &str, now_ms: i64) -> Result<u64, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let done = sqlx::query(
        "UPDATE chain_jobs SET status = 'pending', claimed_by = NULL, claim_expires_at_unix_ms = NULL, \
         updated_at_unix_ms = $2 WHERE status = 'claimed' AND claimed_by = $1",
    )
    .bind(claimer)
    .bind(now_ms)
    .execute(exec)
    .await?;
    Ok(done.rows_affected())
}

/// Moves a job `claimer` holds claimed into the transaction `tx_id`; false when the claim is no longer theirs.
pub async fn put_in_tx<'e, E>(
    exec: E,
    job_id: &str,
    claimer: &str,
    tx_id: &str,
    now_ms: i64,
) -> Result<bool, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let done = sqlx::query(
        "UPDATE chain_jobs SET status = 'in_tx', tx_id = $1, claimed_by = NULL, claim_expires_at_unix_ms = NULL, \
         updated_at_unix_ms = $2 WHERE id = $3 AND status = 'claimed' AND claimed_by = $4",
    )
    .bind(tx_id)
    .bind(now_ms)
    .bind(job_id)
    .bind(claimer)
    .execute(exec)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The jobs the transaction `tx_id` carries.
pub async fn in_tx<'e, E>(exec: E, tx_id: &str) -> Result<Vec<InTxJobRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(
        "SELECT id, attempts, kind, remittance_id FROM chain_jobs WHERE tx_id = $1 AND status = 'in_tx'",
    )
    .bind(tx_id)
    .fetch_all(exec)
    .await?)
}

/// Marks the jobs the transaction `tx_id` carries `done`.
pub async fn complete_in_tx<'e, E>(exec: E, tx_id: &str, now_ms: i64) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "UPDATE chain_jobs SET status = 'done', updated_at_unix_ms = $2 WHERE tx_id = $1 AND status = 'in_tx'",
    )
    .bind(tx_id)
    .bind(now_ms)
    .execute(exec)
    .await?;
    Ok(())
}

/// The jobs a re-opened transaction (`chain_txs::reopen`) had completed are carried by it again.
pub async fn reopen_in_tx<'e, E>(exec: E, tx_id: &str, now_ms: i64) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "UPDATE chain_jobs SET status = 'in_tx', updated_at_unix_ms = $2 WHERE tx_id = $1 AND status = 'done'",
    )
    .bind(tx_id)
    .bind(now_ms)
    .execute(exec)
    .await?;
    Ok(())
}

/// Puts the jobs the transaction `tx_id` carries back to `pending` without counting an attempt.
pub async fn requeue_in_tx<'e, E>(exec: E, tx_id: &str, now_ms: i64) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "UPDATE chain_jobs SET status = 'pending', tx_id = NULL, updated_at_unix_ms = $2 \
         WHERE tx_id = $1 AND status = 'in_tx'",
    )
    .bind(tx_id)
    .bind(now_ms)
    .execute(exec)
    .await?;
    Ok(())
}

/// Records a failed attempt and puts the job back to `pending`, claimable from `not_before_unix_ms`.
pub async fn retry_at<'e, E>(
    exec: E,
    job_id: &str,
    attempts: i64,
    error: &str,
    not_before_unix_ms: i64,
    now_ms: i64,
) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "UPDATE chain_jobs SET status = 'pending', attempts = $2, last_error = $3, tx_id = NULL, \
         claimed_by = NULL, claim_expires_at_unix_ms = NULL, not_before_unix_ms = $4, \
         updated_at_unix_ms = $5 WHERE id = $1",
    )
    .bind(job_id)
    .bind(attempts)
    .bind(error)
    .bind(not_before_unix_ms)
    .bind(now_ms)
    .execute(exec)
    .await?;
    Ok(())
}

/// Records the last failed attempt: the job is `failed`.
pub async fn fail<'e, E>(
    exec: E,
    job_id: &str,
    attempts: i64,
    error: &str,
    now_ms: i64,
) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "UPDATE chain_jobs SET status = 'failed', attempts = $2, last_error = $3, tx_id = NULL, \
         claimed_by = NULL, claim_expires_at_unix_ms = NULL, updated_at_unix_ms = $4 WHERE id = $1",
    )
    .bind(job_id)
    .bind(attempts)
    .bind(error)
    .bind(now_ms)
    .execute(exec)
    .await?;
    Ok(())
}

/// The remittance whose P2P transfer job sent the transaction `tx_hash` (lower-case 0x-hex), if any.
pub async fn remittance_of_transfer_tx(
    conn: &mut sqlx::AnyConnection,
    tx_hash: &str,
) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT j.remittance_id FROM chain_tx_attempts a JOIN chain_jobs j ON j.tx_id = a.tx_id \
         WHERE a.tx_hash = $1 AND j.kind = 'transfer'",
    )
    .bind(tx_hash)
    .fetch_optional(conn)
    .await?)
}

/// A job that failed for good, for the operator: what it was for and why it failed (never its payload).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct FailedJobRow {
    pub id: String,
    pub kind: String,
    pub remittance_id: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub updated_at_unix_ms: i64,
}

/// Failed jobs, newest first; `before_id` pages (ids are UUIDv7, time-ordered).
pub async fn failed<'e, E>(
    exec: E,
    before_id: Option<&str>,
    limit: i64,
) -> Result<Vec<FailedJobRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    const COLS: &str = "id, kind, remittance_id, attempts, last_error, updated_at_unix_ms";
    Ok(match before_id {
        Some(before) => {
            sqlx::query_as(&format!(
                "SELECT {COLS} FROM chain_jobs WHERE status = 'failed' AND id < $1 ORDER BY id DESC LIMIT $2"
            ))
            .bind(before)
            .bind(limit)
            .fetch_all(exec)
            .await?
        }
        None => {
            sqlx::query_as(&format!(
                "SELECT {COLS} FROM chain_jobs WHERE status = 'failed' ORDER BY id DESC LIMIT $1"
            ))
            .bind(limit)
            .fetch_all(exec)
            .await?
        }
    })
}

/// Puts a failed job of one of `kinds` back in the queue with its attempts reset (an operator resolved what made
/// it fail); false when there is no such failed job.
pub async fn retry_failed<'e, E>(exec: E, id: &str, kinds: &[&str], now_ms: i64) -> Result<bool, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    if kinds.is_empty() {
        return Ok(false);
    }
    let placeholders: Vec<String> = (0..kinds.len()).map(|i| format!("${}", i + 3)).collect();
    let sql = format!(
        "UPDATE chain_jobs SET status = 'pending', attempts = 0, not_before_unix_ms = $2, updated_at_unix_ms = $2 \
         WHERE id = $1 AND status = 'failed' AND kind IN ({})",
        placeholders.join(", ")
    );
    let mut q = sqlx::query(&sql).bind(id).bind(now_ms);
    for kind in kinds {
        q = q.bind(*kind);
    }
    Ok(q.execute(exec).await?.rows_affected() == 1)
}
