//! The `compliance_events` table (append-only: inserted, read, never updated or deleted) and the figures the
//! sending limits are checked against.

use sqlx::Executor;

use super::StoreError;

/// A compliance decision to record.
#[derive(Debug, Clone)]
pub struct NewComplianceEvent<'a> {
    pub kind: &'a str,
    pub subject: &'a str,
    pub actor: &'a str,
    pub reason: &'a str,
    /// JSON.
    pub detail: &'a str,
    pub at_unix_ms: i64,
}

/// A recorded compliance decision.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ComplianceEventRow {
    pub id: String,
    pub at_unix_ms: i64,
    pub kind: String,
    pub subject: String,
    pub actor: String,
    pub reason: String,
    pub detail: String,
}

pub async fn insert<'e, E>(exec: E, e: &NewComplianceEvent<'_>) -> Result<String, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let id = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO compliance_events (id, at_unix_ms, kind, subject, actor, reason, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(e.at_unix_ms)
    .bind(e.kind)
    .bind(e.subject)
    .bind(e.actor)
    .bind(e.reason)
    .bind(e.detail)
    .execute(exec)
    .await?;
    Ok(id)
}

/// Events after `(at_unix_ms, id)` (exclusive) in time order, at most `limit`.
pub async fn page<'e, E>(
    exec: E,
    after: Option<(i64, &str)>,
    limit: i64,
) -> Result<Vec<ComplianceEventRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let (at, id) = after.unwrap_or((i64::MIN, ""));
    Ok(sqlx::query_as(
        "SELECT id, at_unix_ms, kind, subject, actor, reason, detail FROM compliance_events \
         WHERE at_unix_ms > $1 OR (at_unix_ms = $1 AND id > $2) ORDER BY at_unix_ms, id LIMIT $3",
    )
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(exec)
    .await?)
}

/// Events of `kinds` at or after `since_unix_ms`, in time order, at most `limit` (the chat's KYC notices).
pub async fn of_kinds_since<'e, E>(
    exec: E,
    kinds: &[&str],
    since_unix_ms: i64,
    limit: i64,
) -> Result<Vec<ComplianceEventRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let mut q = sqlx::QueryBuilder::new(
        "SELECT id, at_unix_ms, kind, subject, actor, reason, detail FROM compliance_events WHERE at_unix_ms >= ",
    );
    q.push_bind(since_unix_ms).push(" AND kind IN (");
    let mut list = q.separated(", ");
    for k in kinds {
        list.push_bind(*k);
    }
    q.push(") ORDER BY at_unix_ms, id LIMIT ").push_bind(limit);
    Ok(q.build_query_as().fetch_all(exec).await?)
}

/// The latest event of `kind` about `subject`.
pub async fn latest<'e, E>(
    exec: E,
    subject: &str,
    kind: &str,
) -> Result<Option<ComplianceEventRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(
        "SELECT id, at_unix_ms, kind, subject, actor, reason, detail FROM compliance_events \
         WHERE subject = $1 AND kind = $2 ORDER BY at_unix_ms DESC, id DESC LIMIT 1",
    )
    .bind(subject)
    .bind(kind)
    .fetch_optional(exec)
    .await?)
}

/// The KYC tier of the user with this wallet address (lower-case 0x-hex); `None` when no user has it.
pub async fn kyc_tier_of_address<'e, E>(exec: E, address: &str) -> Result<Option<i64>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(
        sqlx::query_scalar("SELECT kyc_tier FROM users WHERE address = $1")
            .bind(address)
            .fetch_optional(exec)
            .await?,
    )
}

/// What `sender_address` has sent since `since_unix_ms` (send amounts, base units): every remittance that is not
/// failed, cancelled, expired or refunded (those moved no money to anyone) counts, including ones still waiting.
pub async fn sent_since<'e, E>(exec: E, sender_address: &str, since_unix_ms: i64) -> Result<i64, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(send_amount_base_units), 0) AS BIGINT) FROM remittances \
         WHERE sender_address = $1 AND created_at_unix_ms >= $2 \
         AND state NOT IN ('failed', 'cancelled', 'expired', 'refunded')",
    )
    .bind(sender_address)
    .bind(since_unix_ms)
    .fetch_one(exec)
    .await?)
}
