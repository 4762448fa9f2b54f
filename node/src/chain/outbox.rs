//! The transactional outbox: the engine enqueues chain work inside its own transaction; writers claim it.
//!
//! A job is identified by (kind, remittance id): enqueueing the same job twice is a no-op, so retried engine
//! transitions never send twice. Jobs move `pending -> claimed -> in_tx -> done` (or `failed` after
//! `job_attempts_max` attempts); a claim that outlives `claim_timeout_ms` may be taken again.

use alloy::primitives::B256;

use super::db::{b256_text, now_ms, to_u64};
use super::error::ChainError;
use super::types::{CancelJob, DepositJob, JobKind, JobPayload, RefundJob, ReleaseJob, TransferJob};
use crate::store::{Db, outbox as job_rows, write_tx};

/// The result of an enqueue: the job's id and whether this call created it (false: it already existed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Enqueued {
    pub job_id: String,
    pub created: bool,
}

/// Enqueue `depositBatch` work for a remittance, inside the engine's transaction.
pub async fn enqueue_deposit(tx: &mut crate::store::Tx, job: DepositJob) -> Result<Enqueued, ChainError> {
    enqueue(tx, &JobPayload::Deposit(job)).await
}

/// Enqueue `releaseBatch` work (the preimage is the pickup code), inside the engine's transaction.
pub async fn enqueue_release(tx: &mut crate::store::Tx, job: ReleaseJob) -> Result<Enqueued, ChainError> {
    enqueue(tx, &JobPayload::Release(job)).await
}

/// Enqueue `refundBatch` work, inside the engine's (or the refund keeper's) transaction.
pub async fn enqueue_refund(tx: &mut crate::store::Tx, job: RefundJob) -> Result<Enqueued, ChainError> {
    enqueue(tx, &JobPayload::Refund(job)).await
}

/// Enqueue a P2P `transferWithAuthorization` on the token (one transaction of its own), inside the engine's
/// transaction.
pub async fn enqueue_transfer(tx: &mut crate::store::Tx, job: TransferJob) -> Result<Enqueued, ChainError> {
    enqueue(tx, &JobPayload::Transfer(job)).await
}

/// Enqueue an escrow `cancel` (a refund before expiry with the partner's Decline signature; one transaction of
/// its own), inside the engine's transaction.
pub async fn enqueue_cancel(tx: &mut crate::store::Tx, job: CancelJob) -> Result<Enqueued, ChainError> {
    enqueue(tx, &JobPayload::Cancel(job)).await
}

async fn enqueue(tx: &mut sqlx::AnyConnection, payload: &JobPayload) -> Result<Enqueued, ChainError> {
    let kind = payload.kind();
    let json =
        serde_json::to_string(payload).map_err(|e| ChainError::corrupt(format!("job payload: {e}")))?;
    let id = uuid::Uuid::now_v7().to_string();
    let new = job_rows::NewJobRow {
        id: &id,
        kind: kind.as_str(),
        remittance_id: payload.remittance_id(),
        payload: &json,
        now_ms: now_ms(),
    };
    if job_rows::insert(&mut *tx, &new).await? {
        metrics::counter!("remesa_chain_jobs_enqueued_total", "kind" => kind.as_str()).increment(1);
        let remittance_id = b256_text(new.remittance_id);
        tracing::debug!(target: "chain::outbox", %kind, remittance_id, job_id = id, "job enqueued");
        return Ok(Enqueued {
            job_id: id,
            created: true,
        });
    }
    Ok(Enqueued {
        job_id: job_rows::id_of(&mut *tx, kind.as_str(), new.remittance_id).await?,
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
    let Some(row) = job_rows::state(&db.pool, kind.as_str(), remittance_id).await? else {
        return Ok(None);
    };
    Ok(Some(JobState {
        job_id: row.id,
        kind,
        status: row.status,
        attempts: u32::try_from(row.attempts).map_err(|_| ChainError::corrupt("job attempts"))?,
        last_error: row.last_error,
        tx_id: row.tx_id,
        mined_tx_hash: row.mined_tx_hash,
    }))
}

/// A job that failed for good, as the operator sees it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct FailedJobView {
    pub job_id: String,
    /// `deposit`, `release`, `refund`, `transfer` or `cancel`.
    pub kind: String,
    pub remittance_id: String,
    pub attempts: u32,
    /// Why it failed, e.g. `skipped by the escrow: TransferFailed: Blacklistable: account is blacklisted`.
    pub error: Option<String>,
    pub failed_at_unix_ms: i64,
}

/// Failed jobs, newest first (`before`: the last `job_id` of the previous page).
pub async fn failed_jobs(
    db: &Db,
    before: Option<&str>,
    limit: u32,
) -> Result<Vec<FailedJobView>, ChainError> {
    let rows = job_rows::failed(&db.pool, before, i64::from(limit.clamp(1, 500))).await?;
    rows.into_iter()
        .map(|r| {
            Ok(FailedJobView {
                attempts: u32::try_from(r.attempts).map_err(|_| ChainError::corrupt("job attempts"))?,
                job_id: r.id,
                kind: job_kind(&r.kind)?.as_str().to_owned(),
                remittance_id: r.remittance_id,
                error: r.last_error,
                failed_at_unix_ms: r.updated_at_unix_ms,
            })
        })
        .collect()
}

/// The kinds an operator may send again: their remittance keeps its state when they fail (the coins stay in the
/// escrow). A failed deposit or P2P transfer has already failed its remittance; the sender sends again.
pub const RETRYABLE_KINDS: [JobKind; 3] = [JobKind::Release, JobKind::Refund, JobKind::Cancel];

/// Puts a failed release, refund or cancel back in the queue, attempts reset (e.g. after the token's issuer lifted a
/// blacklist). False when `job_id` is not such a failed job.
pub async fn retry_failed_job(db: &Db, job_id: &str) -> Result<bool, ChainError> {
    let kinds: Vec<&str> = RETRYABLE_KINDS.iter().map(|k| k.as_str()).collect();
    let retried = write_tx!(db, |tx| job_rows::retry_failed(
        &mut *tx,
        job_id,
        &kinds,
        now_ms()
    ))?;
    if retried {
        tracing::info!(target: "chain::outbox", job_id, "failed job sent again by an operator");
    }
    Ok(retried)
}

fn job_kind(kind: &str) -> Result<JobKind, ChainError> {
    JobKind::parse(kind).ok_or_else(|| ChainError::corrupt(format!("job kind {kind:?}")))
}

/// Counts of jobs per status (for `/metrics`, the ops page and tests).
pub async fn job_counts(db: &Db) -> Result<Vec<(JobKind, String, u64)>, ChainError> {
    let rows = job_rows::counts(&db.pool).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push((
            job_kind(&row.kind)?,
            row.status,
            to_u64(row.job_count, "job count")?,
        ));
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

/// Claimable jobs per kind, oldest first.
pub async fn backlog(db: &Db, now: i64) -> Result<Vec<Backlog>, ChainError> {
    let rows = job_rows::backlog(&db.pool, now).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(Backlog {
            kind: job_kind(&row.kind)?,
            count: to_u64(row.job_count, "backlog count")?,
            oldest_unix_ms: row.oldest_created_at_unix_ms,
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
    let rows = write_tx!(db, |tx| job_rows::claim(
        &mut *tx,
        db.dialect,
        kind.as_str(),
        claimer,
        i64::from(limit),
        now,
        expires,
    ))?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in rows {
        let payload: JobPayload = serde_json::from_str(&row.payload)
            .map_err(|e| ChainError::corrupt(format!("job payload: {e}")))?;
        claimed.push(ClaimedJob {
            id: row.id,
            payload,
            attempts: row.attempts,
            created_at_unix_ms: row.created_at_unix_ms,
        });
    }
    claimed.sort_by(|a, b| (a.created_at_unix_ms, &a.id).cmp(&(b.created_at_unix_ms, &b.id)));
    Ok(claimed)
}

/// Gives back claims a (restarted) writer still holds from before.
pub(crate) async fn release_claims(db: &Db, claimer: &str) -> Result<u64, ChainError> {
    Ok(write_tx!(db, |tx| job_rows::release_claims(
        &mut *tx,
        claimer,
        now_ms()
    ))?)
}

/// Puts claimed jobs back with a failed attempt recorded (e.g. the batch's gas estimate failed). Returns the jobs
/// that ran out of attempts and are now `failed`.
pub(crate) async fn retry_later(
    tx: &mut sqlx::AnyConnection,
    claimed: &[(String, i64)],
    error: &str,
    attempts_max: u32,
    backoff_ms: u64,
    backoff_ms_max: u64,
) -> Result<Vec<String>, ChainError> {
    let now = now_ms();
    let mut failed = Vec::new();
    for (id, attempts_before) in claimed {
        let attempts = attempts_before.saturating_add(1);
        if attempts >= i64::from(attempts_max) {
            job_rows::fail(&mut *tx, id, attempts, error, now).await?;
            failed.push(id.clone());
        } else {
            let shift = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
            let delay = backoff_ms
                .saturating_mul(1u64 << shift.saturating_sub(1))
                .min(backoff_ms_max);
            let not_before = now.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX / 4));
            job_rows::retry_at(&mut *tx, id, attempts, error, not_before, now).await?;
        }
    }
    Ok(failed)
}
