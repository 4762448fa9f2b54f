//! `Idempotency-Key` records, shared by every POST of the node (the generic middleware and the partner API).
//!
//! A request with a key first [`begin`]s: it inserts an unfinished row (no status yet) owned by this process's
//! start id, runs, and then [`finish`]es (stores the response) or [`forget`]s (deletes the row, so the client may
//! retry). A request that finds the row finished gets the stored response; one that finds it unfinished gets
//! "in progress" — unless the row is abandoned, which it is when
//!
//! - its process is gone: the node restarted under the same name ([`super::instances::register`] clears the
//!   owner), or
//! - it is older than the stale limit: no handler runs longer than the HTTP timeout (the timeout layer drops it),
//!   so a row older than that plus a margin has nobody working on it (a crashed process that never came back, or a
//!   handler dropped by the timeout).
//!
//! An abandoned row is taken over by exactly one retry (a compare-and-set on the row), which runs the work again.
//! The work behind every key is itself idempotent on the state it finds (the engine's transitions accept a repeat),
//! so a crash between the work and [`finish`] followed by a retry does the work once and answers like the first
//! run would have.

use sqlx::Row as _;

use super::{StoreError, now_ms};

/// How long a finished response is replayed (a retry after that is a new request); the sweeper deletes older rows.
pub const RETENTION_MS: i64 = 24 * 3600 * 1000;

/// The claim of a running request: who runs it and since when (finish/forget only touch their own claim).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub scope: String,
    pub key: String,
    owner: String,
    claimed_at_unix_ms: i64,
}

/// What to do with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Begin {
    /// Run it (a new key, or an abandoned one taken over), then [`finish`] or [`forget`].
    Run(Claim),
    /// The stored response of the first request with this key.
    Replay { status: u16, body: String },
    /// The same key is running right now.
    InProgress,
    /// The key was used with another request.
    Mismatch,
}

/// How a request with this key goes on. `owner` is the start id of this process; `stale_ms` the age from which
/// an unfinished row is abandoned.
pub async fn begin(
    conn: &mut sqlx::AnyConnection,
    scope: &str,
    key: &str,
    request_hash: &str,
    owner: &str,
    stale_ms: i64,
) -> Result<Begin, StoreError> {
    // A few rounds: a row may be deleted (forgotten) or taken over between our statements.
    for _ in 0..4 {
        let now = now_ms();
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (scope, idem_key, request_hash, created_at_unix_ms, owner) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (scope, idem_key) DO NOTHING",
        )
        .bind(scope)
        .bind(key)
        .bind(request_hash)
        .bind(now)
        .bind(owner)
        .execute(&mut *conn)
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(Begin::Run(claim(scope, key, owner, now)));
        }
        let Some(row) = sqlx::query(
            "SELECT request_hash, status_code, response_body, created_at_unix_ms, owner FROM idempotency_keys \
             WHERE scope = $1 AND idem_key = $2",
        )
        .bind(scope)
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?
        else {
            continue;
        };
        let stored_hash: String = row.try_get("request_hash")?;
        let status: Option<i64> = row.try_get("status_code")?;
        let body: Option<String> = row.try_get("response_body")?;
        let created: i64 = row.try_get("created_at_unix_ms")?;
        let stored_owner: Option<String> = row.try_get("owner")?;
        if created < now.saturating_sub(RETENTION_MS) {
            // Forgotten: a retry after the retention period is a new request.
            sqlx::query(
                "DELETE FROM idempotency_keys WHERE scope = $1 AND idem_key = $2 AND created_at_unix_ms = $3",
            )
            .bind(scope)
            .bind(key)
            .bind(created)
            .execute(&mut *conn)
            .await?;
            continue;
        }
        if stored_hash != request_hash {
            return Ok(Begin::Mismatch);
        }
        match (status, body) {
            (Some(status), Some(body)) => {
                let status = u16::try_from(status)
                    .ok()
                    .filter(|s| (100..=599).contains(s))
                    .ok_or_else(|| StoreError::Corrupt(format!("idempotency status {status}")))?;
                return Ok(Begin::Replay { status, body });
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(StoreError::Corrupt(
                    "idempotency row with a status but no body (or the reverse)".into(),
                ));
            }
            (None, None) => {}
        }
        let abandoned = stored_owner.is_none() || created < now.saturating_sub(stale_ms);
        if !abandoned {
            return Ok(Begin::InProgress);
        }
        // Take it over: exactly one retry wins the compare-and-set.
        let taken = sqlx::query(
            "UPDATE idempotency_keys SET owner = $1, created_at_unix_ms = $2 \
             WHERE scope = $3 AND idem_key = $4 AND status_code IS NULL AND created_at_unix_ms = $5 \
             AND (owner = $6 OR (owner IS NULL AND $6 = ''))",
        )
        .bind(owner)
        .bind(now)
        .bind(scope)
        .bind(key)
        .bind(created)
        .bind(stored_owner.as_deref().unwrap_or(""))
        .execute(&mut *conn)
        .await?;
        if taken.rows_affected() == 1 {
            tracing::info!(target: "store::idempotency", scope, previous_owner = ?stored_owner,
                "an abandoned request is run again");
            return Ok(Begin::Run(claim(scope, key, owner, now)));
        }
    }
    Ok(Begin::InProgress)
}

fn claim(scope: &str, key: &str, owner: &str, at: i64) -> Claim {
    Claim {
        scope: scope.to_owned(),
        key: key.to_owned(),
        owner: owner.to_owned(),
        claimed_at_unix_ms: at,
    }
}

/// Stores the response of a claimed request. `false` when the claim was lost (taken over as abandoned).
pub async fn finish(
    conn: &mut sqlx::AnyConnection,
    claim: &Claim,
    status: u16,
    body: &str,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE idempotency_keys SET status_code = $1, response_body = $2 \
         WHERE scope = $3 AND idem_key = $4 AND owner = $5 AND created_at_unix_ms = $6 AND status_code IS NULL",
    )
    .bind(i64::from(status))
    .bind(body)
    .bind(&claim.scope)
    .bind(&claim.key)
    .bind(&claim.owner)
    .bind(claim.claimed_at_unix_ms)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes a claimed, unfinished row (the request failed in a way the client may retry with the same key).
pub async fn forget(conn: &mut sqlx::AnyConnection, claim: &Claim) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE scope = $1 AND idem_key = $2 AND owner = $3 \
         AND created_at_unix_ms = $4 AND status_code IS NULL",
    )
    .bind(&claim.scope)
    .bind(&claim.key)
    .bind(&claim.owner)
    .bind(claim.claimed_at_unix_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Deletes rows older than the retention period; returns how many.
pub async fn prune(conn: &mut sqlx::AnyConnection, now_ms: i64) -> Result<u64, StoreError> {
    Ok(
        sqlx::query("DELETE FROM idempotency_keys WHERE created_at_unix_ms < $1")
            .bind(now_ms.saturating_sub(RETENTION_MS))
            .execute(&mut *conn)
            .await?
            .rows_affected(),
    )
}
