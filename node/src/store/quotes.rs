//! The `quotes` table: firm, single-use quotes (the terms a remittance is created from, and the JSON body served).

use sqlx::Executor;

use super::{Dialect, StoreError};

/// A quote to store.
#[derive(Clone, Debug)]
pub struct NewQuoteRow<'a> {
    pub id: &'a str,
    /// 0 for a P2P transfer (no partner).
    pub partner_id: i64,
    pub country: &'a str,
    pub currency: &'a str,
    pub payout_method: &'a str,
    pub send_amount_base_units: i64,
    pub fee_base_units: i64,
    pub total_base_units: i64,
    pub token_decimals: i64,
    pub rate: &'a str,
    pub mid_market_rate: Option<&'a str>,
    pub payout_amount_minor: i64,
    /// The quote as served (JSON).
    pub body: &'a str,
    pub expires_at_unix_ms: i64,
    pub created_at_unix_ms: i64,
    /// P2P quotes are bound to their recipient.
    pub recipient_phone: Option<&'a str>,
}

/// The terms of a stored quote that a remittance is created from, read by column name.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct QuoteTermsRow {
    pub partner_id: i64,
    pub country: String,
    pub currency: String,
    pub payout_method: String,
    pub send_amount_base_units: i64,
    pub fee_base_units: i64,
    pub total_base_units: i64,
    pub rate: String,
    pub payout_amount_minor: i64,
    pub expires_at_unix_ms: i64,
    /// The remittance that used the quote (a quote is single-use).
    pub used_by: Option<String>,
    pub recipient_phone: Option<String>,
}

pub async fn insert<'e, E>(exec: E, q: &NewQuoteRow<'_>) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO quotes (id, partner_id, country, currency, payout_method, send_amount_base_units, \
         fee_base_units, total_base_units, token_decimals, rate, mid_market_rate, payout_amount_minor, body, \
         expires_at_unix_ms, created_at_unix_ms, recipient_phone) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(q.id)
    .bind(q.partner_id)
    .bind(q.country)
    .bind(q.currency)
    .bind(q.payout_method)
    .bind(q.send_amount_base_units)
    .bind(q.fee_base_units)
    .bind(q.total_base_units)
    .bind(q.token_decimals)
    .bind(q.rate)
    .bind(q.mid_market_rate)
    .bind(q.payout_amount_minor)
    .bind(q.body)
    .bind(q.expires_at_unix_ms)
    .bind(q.created_at_unix_ms)
    .bind(q.recipient_phone)
    .execute(exec)
    .await?;
    Ok(())
}

/// The quote's JSON body as served.
pub async fn body<'e, E>(exec: E, id: &str) -> Result<Option<String>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_scalar("SELECT body FROM quotes WHERE id = $1")
        .bind(id)
        .fetch_optional(exec)
        .await?)
}

/// The terms of a quote, row-locked on PostgreSQL (inside the transaction that uses it).
pub async fn terms_for_update<'e, E>(
    exec: E,
    dialect: Dialect,
    id: &str,
) -> Result<Option<QuoteTermsRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(&format!(
        "SELECT partner_id, country, currency, payout_method, send_amount_base_units, fee_base_units, \
         total_base_units, rate, payout_amount_minor, expires_at_unix_ms, used_by, recipient_phone FROM quotes \
         WHERE id = $1{}",
        dialect.for_update()
    ))
    .bind(id)
    .fetch_optional(exec)
    .await?)
}

/// Marks the quote used by `remittance_id`; false when it was already used (or does not exist).
pub async fn mark_used<'e, E>(exec: E, quote_id: &str, remittance_id: &str) -> Result<bool, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let used = sqlx::query("UPDATE quotes SET used_by = $1 WHERE id = $2 AND used_by IS NULL")
        .bind(remittance_id)
        .bind(quote_id)
        .execute(exec)
        .await?;
    Ok(used.rows_affected() == 1)
}

/// Deletes unused quotes that expired before `cutoff_ms`; how many.
pub async fn prune_unused<'e, E>(exec: E, cutoff_ms: i64) -> Result<u64, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(
        sqlx::query("DELETE FROM quotes WHERE used_by IS NULL AND expires_at_unix_ms < $1")
            .bind(cutoff_ms)
            .execute(exec)
            .await?
            .rows_affected(),
    )
}
