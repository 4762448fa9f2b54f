//! Quotes: best partner by net payout, firm and single-use ([`use_quote`] is the one claim).

use std::str::FromStr;

use rust_decimal::Decimal;

use super::pricing::{self, PostedRate, PricingError};
use super::types::*;
use super::views::*;
use super::{Engine, EngineError, Result};
use crate::domain::{PayoutMethod, currency_exponent, parse_currency};
use crate::store::partners;
use crate::store::quotes::{self, NewQuoteRow};
use crate::store::{StoreError, now_ms};

impl Engine {
    /// A firm quote from the partner with the best net payout among those serving the corridor, method and amount.
    #[tracing::instrument(skip_all, fields(country = %req.country))]
    pub async fn quote(&self, req: QuoteRequest) -> Result<Quote> {
        if req.payout_method == PayoutMethod::RemesaWallet {
            return self.quote_p2p(req).await;
        }
        let decimals = self.token_decimals();
        let send = send_amount(&req.send_amount, decimals)?;
        let c = country(&req.country)?;
        let currency = req
            .currency
            .as_deref()
            .map(|x| parse_currency(x).map_err(|e| EngineError::Invalid(e.to_string())))
            .transpose()?;
        let now = now_ms();
        let candidates = partners::candidates(&self.db().pool, &c, req.payout_method.as_str(), now)
            .await?
            .into_iter()
            .map(|r| Ok((rate_from(r.rate)?, r.partner_name)))
            .collect::<Result<Vec<_>>>()?;
        let currency = match currency {
            Some(cur) => cur,
            None => {
                let mut curs: Vec<&str> = candidates.iter().map(|(r, _)| r.currency.as_str()).collect();
                curs.sort_unstable();
                curs.dedup();
                match curs.as_slice() {
                    [] => return Err(EngineError::NoRoute),
                    [one] => (*one).to_owned(),
                    _ => {
                        return Err(EngineError::Invalid(format!(
                            "currency is required for {c} (one of {})",
                            curs.join(", ")
                        )));
                    }
                }
            }
        };
        let mid: Option<Decimal> = partners::mid_market_rate(&self.db().pool, &currency)
            .await?
            .map(|s| {
                Decimal::from_str(&s)
                    .map_err(|_| StoreError::Corrupt(format!("mid-market rate {s:?} of {currency}")))
            })
            .transpose()?;
        let exponent = currency_exponent(&currency);
        let mut best: Option<(pricing::Priced, Rate, String)> = None;
        let mut limits_error = None;
        for (rate, name) in candidates.into_iter().filter(|(r, _)| r.currency == currency) {
            let posted = PostedRate {
                rate: parse_decimal("stored rate", &rate.rate)?,
                fee_fixed: parse_decimal("stored fee", &rate.fee_fixed)?,
                fee_bps: rate.fee_bps,
                send_min: parse_decimal("stored min", &rate.send_min)?,
                send_max: parse_decimal("stored max", &rate.send_max)?,
            };
            match pricing::price(send, u32::from(decimals), exponent, &posted, mid) {
                Ok(p) => {
                    let better = match &best {
                        None => true,
                        Some((b, br, _)) => {
                            (
                                p.payout_amount,
                                std::cmp::Reverse(p.total),
                                std::cmp::Reverse(rate.partner_id),
                            ) > (
                                b.payout_amount,
                                std::cmp::Reverse(b.total),
                                std::cmp::Reverse(br.partner_id),
                            )
                        }
                    };
                    if better {
                        best = Some((p, rate, name));
                    }
                }
                Err(e @ PricingError::OutOfLimits { .. }) => limits_error = Some(e),
                Err(e) => return Err(EngineError::Invalid(e.to_string())),
            }
        }
        let Some((p, rate, partner_name)) = best else {
            return Err(match limits_error {
                Some(e) => EngineError::Invalid(e.to_string()),
                None => EngineError::NoRoute,
            });
        };
        let cfg = self.config();
        let ttl_s = req
            .ttl_s
            .map_or(cfg.quote_ttl_s_default, u64::from)
            .clamp(1, cfg.quote_ttl_s_max);
        let fee_fixed = parse_decimal("stored fee", &rate.fee_fixed)?;
        let quote = Quote {
            id: uuid::Uuid::now_v7().to_string(),
            partner_id: rate.partner_id,
            partner_name,
            country: c,
            currency: currency.clone(),
            payout_method: req.payout_method,
            token_decimals: decimals,
            send_amount: p.send_amount.normalize().to_string(),
            fee: p.fee.normalize().to_string(),
            fee_fixed: fee_fixed.normalize().to_string(),
            fee_variable: (p.fee - fee_fixed).max(Decimal::ZERO).normalize().to_string(),
            fee_bps: rate.fee_bps,
            total: p.total.normalize().to_string(),
            rate: rate.rate.clone(),
            payout_amount: Decimal::new(
                to_base(p.payout_amount, u8::try_from(exponent).unwrap_or(2))?,
                exponent,
            )
            .to_string(),
            mid_market_rate: p.mid_market_rate.normalize().to_string(),
            all_in_cost: p.all_in_cost.normalize().to_string(),
            all_in_cost_percent: p.all_in_cost_percent.to_string(),
            rounding: "fee rounded up to the token base unit; payout rounded down to the currency minor unit"
                .into(),
            expires_at_unix_ms: now.saturating_add(i64::try_from(ttl_s * 1000).unwrap_or(i64::MAX)),
            created_at_unix_ms: now,
            recipient_phone: None,
        };
        let payout_minor = to_base(p.payout_amount, u8::try_from(exponent).unwrap_or(2))?;
        self.insert_quote(
            &quote,
            QuoteUnits {
                send_base: to_base(p.send_amount, decimals)?,
                fee_base: to_base(p.fee, decimals)?,
                total_base: to_base(p.total, decimals)?,
                decimals,
                payout_minor,
                mid_market_rate: mid.map(|m| m.to_string()),
            },
        )
        .await?;
        Ok(quote)
    }

    pub async fn get_quote(&self, id: &str) -> Result<Option<Quote>> {
        quotes::body(&self.db().pool, id)
            .await?
            .map(|body| {
                serde_json::from_str(&body)
                    .map_err(|e| StoreError::Corrupt(format!("quote body: {e}")).into())
            })
            .transpose()
    }
}

/// Marks quote `quote_id` as used by remittance `remittance_id`; a quote is single-use, so a second use is
/// [`EngineError::QuoteUsed`].
pub(super) async fn use_quote(
    conn: &mut sqlx::AnyConnection,
    quote_id: &str,
    remittance_id: &str,
) -> Result<()> {
    if !quotes::mark_used(&mut *conn, quote_id, remittance_id).await? {
        return Err(EngineError::QuoteUsed);
    }
    Ok(())
}

/// The base units a `quotes` row stores beside the quote's JSON body.
pub(super) struct QuoteUnits {
    pub send_base: i64,
    pub fee_base: i64,
    pub total_base: i64,
    pub decimals: u8,
    /// In the payout currency's minor unit.
    pub payout_minor: i64,
    pub mid_market_rate: Option<String>,
}

impl Engine {
    /// Stores a firm quote (both kinds: partner payouts and P2P transfers); the one insert into `quotes`.
    pub(super) async fn insert_quote(&self, quote: &Quote, units: QuoteUnits) -> Result<()> {
        let body = serde_json::to_string(quote).map_err(|e| EngineError::Internal(e.to_string()))?;
        let partner_id =
            i64::try_from(quote.partner_id).map_err(|_| EngineError::Internal("partner id".into()))?;
        let mut tx = self.db().begin().await?;
        quotes::insert(
            &mut *tx,
            &NewQuoteRow {
                id: &quote.id,
                partner_id,
                country: &quote.country,
                currency: &quote.currency,
                payout_method: quote.payout_method.as_str(),
                send_amount_base_units: units.send_base,
                fee_base_units: units.fee_base,
                total_base_units: units.total_base,
                token_decimals: i64::from(units.decimals),
                rate: &quote.rate,
                mid_market_rate: units.mid_market_rate.as_deref(),
                payout_amount_minor: units.payout_minor,
                body: &body,
                expires_at_unix_ms: quote.expires_at_unix_ms,
                created_at_unix_ms: quote.created_at_unix_ms,
                recipient_phone: quote.recipient_phone.as_deref(),
            },
        )
        .await?;
        tx.commit().await?;
        metrics::counter!("remesa_quotes_total").increment(1);
        Ok(())
    }
}
