//! The `partners`, `partner_rates` and `mid_market_rates` tables: cash-out partners, the rates they post per
//! corridor, and the reference FX rates quotes are compared against.

use sqlx::Executor;

use super::StoreError;

const PARTNER_COLS: &str = "id, name, countries, currencies, payout_methods, public_key, webhook_url, \
    settlement_address, signer_address, status, created_at_unix_ms";
const RATE_COLS: &str = "partner_id, country, currency, payout_method, rate, fee_fixed, fee_bps, send_min, send_max, \
    valid_until_unix_ms";

/// A stored partner, read by column name. Lists are comma-separated.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct PartnerRow {
    pub id: i64,
    pub name: String,
    pub countries: String,
    pub currencies: String,
    pub payout_methods: String,
    /// Ed25519, base64.
    pub public_key: String,
    pub webhook_url: Option<String>,
    pub settlement_address: String,
    /// The EVM signer of cooperative cancels; `None`: the settlement address.
    pub signer_address: Option<String>,
    pub status: String,
    pub created_at_unix_ms: i64,
}

/// A stored rate of one corridor (partner, country, currency, payout method); decimals as text.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct RateRow {
    pub partner_id: i64,
    pub country: String,
    pub currency: String,
    pub payout_method: String,
    pub rate: String,
    pub fee_fixed: String,
    pub fee_bps: i64,
    pub send_min: String,
    pub send_max: String,
    pub valid_until_unix_ms: i64,
}

/// A rate and its partner's name: a quote's candidate.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct CandidateRow {
    #[sqlx(flatten)]
    pub rate: RateRow,
    pub partner_name: String,
}

pub async fn exists<'e, E>(exec: E, id: i64) -> Result<bool, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let found: Option<i64> = sqlx::query_scalar("SELECT id FROM partners WHERE id = $1")
        .bind(id)
        .fetch_optional(exec)
        .await?;
    Ok(found.is_some())
}

/// Inserts an `active` partner.
pub async fn insert<'e, E>(exec: E, p: &PartnerRow) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO partners (id, name, countries, currencies, payout_methods, public_key, webhook_url, \
         settlement_address, signer_address, status, created_at_unix_ms, updated_at_unix_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
    )
    .bind(p.id)
    .bind(&p.name)
    .bind(&p.countries)
    .bind(&p.currencies)
    .bind(&p.payout_methods)
    .bind(&p.public_key)
    .bind(&p.webhook_url)
    .bind(&p.settlement_address)
    .bind(&p.signer_address)
    .bind(&p.status)
    .bind(p.created_at_unix_ms)
    .execute(exec)
    .await?;
    Ok(())
}

pub async fn by_id<'e, E>(exec: E, id: i64) -> Result<Option<PartnerRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(
        sqlx::query_as(&format!("SELECT {PARTNER_COLS} FROM partners WHERE id = $1"))
            .bind(id)
            .fetch_optional(exec)
            .await?,
    )
}

/// The first `limit` partners by id.
pub async fn list<'e, E>(exec: E, limit: i64) -> Result<Vec<PartnerRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(&format!(
        "SELECT {PARTNER_COLS} FROM partners ORDER BY id LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(exec)
    .await?)
}

/// Sets a partner's status; false when there is no such partner.
pub async fn set_status<'e, E>(exec: E, id: i64, status: &str, now_ms: i64) -> Result<bool, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let done = sqlx::query("UPDATE partners SET status = $1, updated_at_unix_ms = $2 WHERE id = $3")
        .bind(status)
        .bind(now_ms)
        .bind(id)
        .execute(exec)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// An active partner's key (base64) and webhook URL; `None` when unknown or suspended.
pub async fn active_key_and_webhook<'e, E>(
    exec: E,
    id: i64,
) -> Result<Option<(String, Option<String>)>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(
        sqlx::query_as("SELECT public_key, webhook_url FROM partners WHERE id = $1 AND status = 'active'")
            .bind(id)
            .fetch_optional(exec)
            .await?,
    )
}

/// Inserts or replaces the rate of one corridor.
pub async fn upsert_rate<'e, E>(exec: E, r: &RateRow, now_ms: i64) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO partner_rates (partner_id, country, currency, payout_method, rate, fee_fixed, fee_bps, \
         send_min, send_max, valid_until_unix_ms, updated_at_unix_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (partner_id, country, currency, payout_method) DO UPDATE SET rate = excluded.rate, \
         fee_fixed = excluded.fee_fixed, fee_bps = excluded.fee_bps, send_min = excluded.send_min, \
         send_max = excluded.send_max, valid_until_unix_ms = excluded.valid_until_unix_ms, \
         updated_at_unix_ms = excluded.updated_at_unix_ms",
    )
    .bind(r.partner_id)
    .bind(&r.country)
    .bind(&r.currency)
    .bind(&r.payout_method)
    .bind(&r.rate)
    .bind(&r.fee_fixed)
    .bind(r.fee_bps)
    .bind(&r.send_min)
    .bind(&r.send_max)
    .bind(r.valid_until_unix_ms)
    .bind(now_ms)
    .execute(exec)
    .await?;
    Ok(())
}

/// Every rate of one partner, by corridor.
pub async fn rates_of<'e, E>(exec: E, partner_id: i64) -> Result<Vec<RateRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(&format!(
        "SELECT {RATE_COLS} FROM partner_rates WHERE partner_id = $1 ORDER BY country, currency, payout_method"
    ))
    .bind(partner_id)
    .fetch_all(exec)
    .await?)
}

/// The unexpired rates of active partners for a country and payout method, by partner id.
pub async fn candidates<'e, E>(
    exec: E,
    country: &str,
    payout_method: &str,
    now_ms: i64,
) -> Result<Vec<CandidateRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let cols = RATE_COLS
        .split(',')
        .map(|c| format!("r.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(sqlx::query_as(&format!(
        "SELECT {cols}, p.name AS partner_name FROM partner_rates r JOIN partners p ON p.id = r.partner_id \
         WHERE r.country = $1 AND r.payout_method = $2 AND r.valid_until_unix_ms > $3 AND p.status = 'active' \
         ORDER BY r.partner_id"
    ))
    .bind(country)
    .bind(payout_method)
    .bind(now_ms)
    .fetch_all(exec)
    .await?)
}

/// Sets the mid-market rate of a payout currency (per USD, decimal text).
pub async fn set_mid_market_rate<'e, E>(
    exec: E,
    currency: &str,
    rate: &str,
    now_ms: i64,
) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO mid_market_rates (currency, rate, updated_at_unix_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (currency) DO UPDATE SET rate = excluded.rate, updated_at_unix_ms = excluded.updated_at_unix_ms",
    )
    .bind(currency)
    .bind(rate)
    .bind(now_ms)
    .execute(exec)
    .await?;
    Ok(())
}

/// The mid-market rate of a payout currency (decimal text), if one is set.
pub async fn mid_market_rate<'e, E>(exec: E, currency: &str) -> Result<Option<String>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(
        sqlx::query_scalar("SELECT rate FROM mid_market_rates WHERE currency = $1")
            .bind(currency)
            .fetch_optional(exec)
            .await?,
    )
}
