//! The transactional outbox: the engine enqueues chain work inside its own transaction; writers claim it.
//!
//! A job is identified by (kind, remittance id): enqueueing the same job twice is a no-op, so retried engine
//! transitions never send twice. Jobs move `pending -> claimed -> in_tx -> done` (or `failed` after
//! `job_attempts_max` attempts); a claim that outlives `claim_timeout_ms` may be taken again.

use alloy::primitives::B256;
use sqlx::Row;

use super::db::{b256_text, now_ms, to_u64};
use super::error::ChainError;
use super::types::{DepositJob, JobKind, JobPayload, RefundJob, ReleaseJob, TransferJob};
use crate::store::Db;

/// The result of an enqueue: the job's id and whether this call created it (false: it already existed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enqueued {
    pub job_id: String,
    pub created: bool,
}

/// Enqueue `depositBatch` work for a remittance, inside the engine's transaction.
pub async fn enqueue_deposit(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    job: DepositJob,
) -> Result<Enqueued, ChainError> {
    enqueue(tx, &JobPayload::Deposit(job)).await
}

/// Enqueue `releaseBatch` work (the preimage is the pickup code), inside the engine's transaction.
pub async fn enqueue_release(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    job: ReleaseJob,
) -> Result<Enqueued, ChainError> {
    enqueue(tx, &JobPayload::Release(job)).await
}

/// Enqueue `refundBatch` work, inside the engine's (or the refund keeper's) transaction.
pub async fn enqueue_refund(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    job: RefundJob,
) -> Result<Enqueued, ChainError> {
    enqueue(tx, &JobPayload::Refund(job)).await
}

/// Enqueue a P2P `transferWithAuthorization` on the token (one transaction of its own), inside the engine's
/// transaction.
pub async fn enqueue_transfer(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    job: TransferJob,
) -> Result<Enqueued, ChainError> {
    enqueue(tx, &JobPayload::Transfer(job)).await
}

async fn enqueue(tx: &mut sqlx::AnyConnection, payload: &JobPayload) -> Result<Enqueued, ChainError> {
    let kind = payload.kind();
    let remittance_id = b256_text(payload.remittance_id());
    let json =
        serde_json::to_string(payload).map_err(|e| ChainError::corrupt(format!("job payload: {e}")))?;
    let id = uuid::Uuid::now_v7().to_string();
    let now = now_ms();
    let done = sqlx::query(
        "INSERT INTO chain_jobs (id, kind, remittance_id, payload, status, attempts, not_before_unix_ms, \
         created_at_unix_ms, updated_at_unix_ms) VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5, $5) \
         ON CONFLICT (kind, remittance_id) DO NOTHING",
    )
    .bind(&id)
    .bind(kind.as_str())
    .bind(&remittance_id)
    .bind(&json)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 1 {
        metrics::counter!("remesa_chain_jobs_enqueued_total", "kind" => kind.as_str()).increment(1);
        tracing::debug!(target: "chain::outbox", %kind, remittance_id, job_id = id, "job enqueued");
        return Ok(Enqueued {
            job_id: id,
            created: true,
        });
    }
    let row = sqlx::query("SELECT id FROM chain_jobs WHERE kind = $1 AND remittance_id = $2")
        .bind(kind.as_str())
        .bind(&remittance_id)
        .fetch_one(&mut *tx)
        .await?;
    Ok(Enqueued {
        job_id: row.try_get(0)?,
        created: false,
    })
}

/// Where a job stands (for the engine, operators and tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobState {
    pub job_id: String,
    pub kind: JobKind,
    pub status: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// The outbox transaction carrying it (while in flight or once done).
    pub tx_id: Option<String>,
    /// The hash of the mined transaction, once mined.
    pub mined_tx_hash: Option<String>,
}

/// The state of the job `(kind, remittance_id)`, if enqueued.
pub async fn job_state(db: &Db, kind: JobKind, remittance_id: B256) -> Result<Option<JobState>, ChainError> {
    let row = sqlx::query(
        "SELECT j.id, j.status, j.attempts, j.last_error, j.tx_id, t.mined_tx_hash FROM chain_jobs j \
         LEFT JOIN chain_txs t ON t.id = j.tx_id WHERE j.kind = $1 AND j.remittance_id = $2",
    )
    .bind(kind.as_str())
    .bind(b256_text(remittance_id))
    .fetch_optional(&db.pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(JobState {
        job_id: row.try_get(0)?,
        kind,
        status: row.try_get(1)?,
        attempts: u32::try_from(row.try_get::<i64, _>(2)?)
            .map_err(|_| ChainError::corrupt("job attempts"))?,
        last_error: row.try_get(3)?,
        tx_id: row.try_get(4)?,
        mined_tx_hash: row.try_get(5)?,
    }))
}

/// Counts of jobs per status (for `/metrics`, the ops page and tests).
pub async fn job_counts(db: &Db) -> Result<Vec<(JobKind, String, u64)>, ChainError> {
    let rows = sqlx::query(
        "SELECT kind, status, COUNT(*) FROM chain_jobs GROUP BY kind, status ORDER BY kind, status",
    )
    .fetch_all(&db.pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let kind: String = row.try_get(0)?;
        let kind = JobKind::parse(&kind).ok_or_else(|| ChainError::corrupt(format!("job kind {kind:?}")))?;
        let count: i64 = row.try_get(2)?;
        out.push((kind, row.try_get(1)?, to_u64(count)?));
    }
    Ok(out)
}

/// A job a writer claimed.
#[derive(Clone, Debug)]
pub struct ClaimedJob {
    pub id: String,
    pub payload: JobPayload,
    pub attempts: i64,
    pub created_at_unix_ms: i64,
}

/// Claimable jobs of one kind: how many, and the enqueue time of the oldest.
#[derive(Clone, Copy, Debug)]
pub struct Backlog {
    pub kind: JobKind,
    pub count: u64,
    pub oldest_unix_ms: i64,
}

const CLAIMABLE: &str = "not_before_unix_ms <= $1 AND (status = 'pending' OR (status = 'claimed' AND \
                         claim_expires_at_unix_ms < $1))";

/// Claimable jobs per kind, oldest first.
pub async fn backlog(db: &Db, now: i64) -> Result<Vec<Backlog>, ChainError> {
    let rows = sqlx::query(&format!(
        "SELECT kind, COUNT(*), MIN(created_at_unix_ms) FROM chain_jobs WHERE {CLAIMABLE} GROUP BY kind"
    ))
    .bind(now)
    .fetch_all(&db.pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let kind: String = row.try_get(0)?;
        let kind = JobKind::parse(&kind).ok_or_else(|| ChainError::corrupt(format!("job kind {kind:?}")))?;
        out.push(Backlog {
            kind,
            count: to_u64(row.try_get::<i64, _>(1)?)?,
            oldest_unix_ms: row.try_get(2)?,
        });
    }
    out.sort_by_key(|b| b.oldest_unix_ms);
    Ok(out)
}

/// Claims up to `limit` jobs of `kind` for `claimer` (a sending address). On PostgreSQL, rows another process is
/// claiming at the same moment are skipped (`FOR UPDATE SKIP LOCKED`), so no job is claimed twice.
pub async fn claim(
    db: &Db,
    kind: JobKind,
    claimer: &str,
    limit: u32,
    claim_timeout_ms: u64,
) -> Result<Vec<ClaimedJob>, ChainError> {
    let now = now_ms();
    let expires = now.saturating_add(i64::try_from(claim_timeout_ms).unwrap_or(i64::MAX / 4));
    let sql = format!(
        "UPDATE chain_jobs SET status = 'claimed', claimed_by = $2, claim_expires_at_unix_ms = $3, \
         updated_at_unix_ms = $1 WHERE id IN (SELECT id FROM chain_jobs WHERE kind = $4 AND {CLAIMABLE} \
         ORDER BY created_at_unix_ms, id LIMIT $5{}) RETURNING id, payload, attempts, created_at_unix_ms",
        db.dialect.skip_locked()
    );
    let rows = sqlx::query(&sql)
        .bind(now)
        .bind(claimer)
        .bind(expires)
        .bind(kind.as_str())
        .bind(i64::from(limit))
        .fetch_all(&db.pool)
        .await?;
    let mut jobs = Vec::with_capacity(rows.len());
    for row in rows {
        let payload: String = row.try_get(1)?;
        let payload: JobPayload =
            serde_json::from_str(&payload).map_err(|e| ChainError::corrupt(format!("job payload: {e}")))?;
        jobs.push(ClaimedJob {
            id: row.try_get(0)?,
            payload,
            attempts: row.try_get(2)?,
            created_at_unix_ms: row.try_get(3)?,
        });
    }
    jobs.sort_by(|a, b| (a.created_at_unix_ms, &a.id).cmp(&(b.created_at_unix_ms, &b.id)));
    Ok(jobs)
}

/// Gives back claims a (restarted) writer still holds from before.
pub(crate) async fn release_claims(db: &Db, claimer: &str) -> Result<u64, ChainError> {
    let done = sqlx::query(
        "UPDATE chain_jobs SET status = 'pending', claimed_by = NULL, claim_expires_at_unix_ms = NULL, \
         updated_at_unix_ms = $2 WHERE status = 'claimed' AND claimed_by = $1",
    )
    .bind(claimer)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected())
}

/// Puts claimed jobs back with a failed attempt recorded (e.g. the batch's gas estimate failed). Returns the jobs
/// that ran out of attempts and are now `failed`.
pub(crate) async fn retry_later(
    tx: &mut sqlx::AnyConnection,
    jobs: &[(String, i64)],
    error: &str,
    attempts_max: u32,
    backoff_ms: u64,
    backoff_ms_max: u64,
) -> Result<Vec<String>, ChainError> {
    let now = now_ms();
    let mut failed = Vec::new();
    for (id, attempts_before) in jobs {
        let attempts = attempts_before.saturating_add(1);
        if attempts >= i64::from(attempts_max) {
            sqlx::query(
                "UPDATE chain_jobs SET status = 'failed', attempts = $2, last_error = $3, tx_id = NULL, \
                 claimed_by = NULL, claim_expires_at_unix_ms = NULL, updated_at_unix_ms = $4 WHERE id = $1",
            )
            .bind(id)
            .bind(attempts)
            .bind(error)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            failed.push(id.clone());
        } else {
            let shift = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
            let delay = backoff_ms
                .saturating_mul(1u64 << shift.saturating_sub(1))
                .min(backoff_ms_max);
            sqlx::query(
                "UPDATE chain_jobs SET status = 'pending', attempts = $2, last_error = $3, tx_id = NULL, \
                 claimed_by = NULL, claim_expires_at_unix_ms = NULL, not_before_unix_ms = $4, \
                 updated_at_unix_ms = $5 WHERE id = $1",
            )
            .bind(id)
            .bind(attempts)
            .bind(error)
            .bind(now.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX / 4)))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
    }
    Ok(failed)
}
