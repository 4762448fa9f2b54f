//! The `partner_payout_actions` table: what a partner did with a payout through the API (`accept`, `complete`,
//! `fail`), with the reference or reason it gave. Append-only.

use sqlx::Executor;

use super::StoreError;

/// An action to record.
#[derive(Clone, Debug)]
pub struct NewActionRow<'a> {
    pub id: &'a str,
    pub partner_id: &'a str,
    pub payout_id: &'a str,
    /// `accept`, `complete` or `fail`.
    pub action: &'a str,
    pub reference: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub created_at_unix_ms: i64,
}

pub async fn insert<'e, E>(exec: E, a: &NewActionRow<'_>) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO partner_payout_actions (id, partner_id, payout_id, action, reference, reason, created_at_unix_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(a.id)
    .bind(a.partner_id)
    .bind(a.payout_id)
    .bind(a.action)
    .bind(a.reference)
    .bind(a.reason)
    .bind(a.created_at_unix_ms)
    .execute(exec)
    .await?;
    Ok(())
}
