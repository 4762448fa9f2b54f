//! Partners, their posted rates, and mid-market FX rates.

use rust_decimal::Decimal;

use super::types::*;
use super::views::*;
use super::{Engine, EngineError, Result};
use crate::domain::{PartnerId, parse_currency};
use crate::store::now_ms;
use crate::store::partners::{self, PartnerRow, RateRow};

/// Most partners `list_partners` returns.
const PARTNERS_LIST_MAX: i64 = 1000;

impl Engine {
    /// Registers a partner (operator). The settlement address must also be set in the escrow's registry
    /// (`setPartner`) by the escrow owner; `remesa partner add` and `remesa dev` do that when they hold the key.
    pub async fn add_partner(&self, p: NewPartner) -> Result<Partner> {
        let id = PartnerId::new(p.id).map_err(|e| EngineError::Invalid(e.to_string()))?;
        let name = text("name", &p.name, NAME_LEN_MAX)?;
        if p.countries.is_empty() || p.countries.len() > 100 {
            return Err(EngineError::Invalid("countries: 1 to 100 codes".into()));
        }
        let countries = p
            .countries
            .iter()
            .map(|c| country(c))
            .collect::<Result<Vec<_>>>()?;
        if p.currencies.is_empty() || p.currencies.len() > 100 {
            return Err(EngineError::Invalid("currencies: 1 to 100 codes".into()));
        }
        let currencies = p
            .currencies
            .iter()
            .map(|c| parse_currency(c).map_err(|e| EngineError::Invalid(e.to_string())))
            .collect::<Result<Vec<_>>>()?;
        if p.payout_methods.is_empty() {
            return Err(EngineError::Invalid("payout_methods: at least one".into()));
        }
        let key = parse_public_key(&p.public_key)?;
        let webhook_url = match p.webhook_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(u) => {
                if u.len() > 2048
                    || !(u.starts_with("http://") || u.starts_with("https://"))
                    || reqwest::Url::parse(u).is_err()
                {
                    return Err(EngineError::Invalid("webhook_url must be an http(s) URL".into()));
                }
                Some(u.to_owned())
            }
            None => None,
        };
        let settlement = parse_address("settlement_address", &p.settlement_address)?;
        if let Some(chain) = self.chain()
            && (settlement == chain.escrow || settlement == chain.token)
        {
            return Err(EngineError::Invalid(
                "settlement_address may not be the escrow or the token (the money would be stuck)".into(),
            ));
        }
        if settlement.is_zero() {
            return Err(EngineError::Invalid(
                "settlement_address may not be the zero address".into(),
            ));
        }
        let signer = match p.signer_address.as_deref() {
            Some(s) => {
                let a = parse_address("signer_address", s)?;
                if a.is_zero() {
                    return Err(EngineError::Invalid(
                        "signer_address may not be the zero address".into(),
                    ));
                }
                Some(addr_text(a))
            }
            None => None,
        };
        let mut methods: Vec<&str> = p.payout_methods.iter().map(|m| m.as_str()).collect();
        methods.sort_unstable();
        methods.dedup();
        let now = now_ms();
        let mut tx = self.write_tx().await?;
        if partners::exists(&mut *tx, id.as_i64()).await? {
            return Err(EngineError::Conflict(format!("partner {id} already exists")));
        }
        let row = PartnerRow {
            id: id.as_i64(),
            name,
            countries: countries.join(","),
            currencies: currencies.join(","),
            payout_methods: methods.join(","),
            public_key: key,
            webhook_url,
            settlement_address: addr_text(settlement),
            signer_address: signer,
            status: "active".into(),
            created_at_unix_ms: now,
        };
        partners::insert(&mut *tx, &row).await?;
        tx.commit().await?;
        self.partner(id).await?.ok_or(EngineError::NotFound("partner"))
    }

    pub async fn partner(&self, id: PartnerId) -> Result<Option<Partner>> {
        partners::by_id(&self.db().pool, id.as_i64())
            .await?
            .map(partner_from)
            .transpose()
    }

    pub async fn list_partners(&self) -> Result<Vec<Partner>> {
        partners::list(&self.db().pool, PARTNERS_LIST_MAX)
            .await?
            .into_iter()
            .map(partner_from)
            .collect()
    }

    /// `active` or `suspended` (a suspended partner gets no new quotes).
    pub async fn set_partner_status(&self, id: PartnerId, status: &str) -> Result<Partner> {
        if status != "active" && status != "suspended" {
            return Err(EngineError::Invalid("status must be active or suspended".into()));
        }
        let mut tx = self.db().begin().await?;
        let found = partners::set_status(&mut *tx, id.as_i64(), status, now_ms()).await?;
        tx.commit().await?;
        if !found {
            return Err(EngineError::NotFound("partner"));
        }
        self.partner(id).await?.ok_or(EngineError::NotFound("partner"))
    }

    /// Replaces the given corridors' rates of a partner (others stay). Each must be within the partner's countries,
    /// currencies and payout methods.
    pub async fn set_rates(&self, partner_id: PartnerId, rates: Vec<RateInput>) -> Result<Vec<Rate>> {
        if rates.is_empty() || rates.len() > RATES_PER_CALL_MAX {
            return Err(EngineError::Invalid(format!(
                "1 to {RATES_PER_CALL_MAX} rates per call"
            )));
        }
        let partner = self
            .partner(partner_id)
            .await?
            .ok_or(EngineError::NotFound("partner"))?;
        let pid = partner_id.as_i64();
        let now = now_ms();
        let decimals = u32::from(self.token_decimals());
        let mut tx = self.write_tx().await?;
        for r in &rates {
            let c = country(&r.country)?;
            let cur = parse_currency(&r.currency).map_err(|e| EngineError::Invalid(e.to_string()))?;
            if !partner.countries.contains(&c)
                || !partner.currencies.contains(&cur)
                || !partner.payout_methods.contains(&r.payout_method)
            {
                return Err(EngineError::Invalid(format!(
                    "{c}/{cur}/{} is not among the partner's registered countries, currencies and methods",
                    r.payout_method.as_str()
                )));
            }
            let rate = parse_decimal("rate", &r.rate)?;
            let fee_fixed = parse_decimal("fee_fixed", &r.fee_fixed)?;
            let min = parse_decimal("send_min", &r.send_min)?;
            let max = parse_decimal("send_max", &r.send_max)?;
            if rate <= Decimal::ZERO || fee_fixed < Decimal::ZERO || min <= Decimal::ZERO || max < min {
                return Err(EngineError::Invalid(
                    "rate and send_min must be positive, fee_fixed not negative, send_max ≥ send_min".into(),
                ));
            }
            if fee_fixed.normalize().scale() > decimals
                || min.normalize().scale() > decimals
                || max.normalize().scale() > decimals
            {
                return Err(EngineError::Invalid(format!(
                    "fees and limits have at most {decimals} decimal places"
                )));
            }
            if r.fee_bps > 5_000 {
                return Err(EngineError::Invalid("fee_bps at most 5000".into()));
            }
            if r.valid_for_s == 0 || r.valid_for_s > RATE_VALIDITY_S_MAX {
                return Err(EngineError::Invalid(format!(
                    "valid_for_s: 1 to {RATE_VALIDITY_S_MAX}"
                )));
            }
            let valid_until =
                now.saturating_add(i64::try_from(r.valid_for_s.saturating_mul(1000)).unwrap_or(i64::MAX));
            let row = RateRow {
                partner_id: pid,
                country: c,
                currency: cur,
                payout_method: r.payout_method.as_str().to_owned(),
                rate: rate.normalize().to_string(),
                fee_fixed: fee_fixed.normalize().to_string(),
                fee_bps: i64::from(r.fee_bps),
                send_min: min.normalize().to_string(),
                send_max: max.normalize().to_string(),
                valid_until_unix_ms: valid_until,
            };
            partners::upsert_rate(&mut *tx, &row, now).await?;
        }
        tx.commit().await?;
        self.rates(partner_id).await
    }

    pub async fn rates(&self, partner_id: PartnerId) -> Result<Vec<Rate>> {
        partners::rates_of(&self.db().pool, partner_id.as_i64())
            .await?
            .into_iter()
            .map(rate_from)
            .collect()
    }

    /// Sets the mid-market reference rate (payout currency per USD) used for the all-in cost.
    pub async fn set_mid_market_rate(&self, currency: &str, rate: &str) -> Result<()> {
        let cur = parse_currency(currency).map_err(|e| EngineError::Invalid(e.to_string()))?;
        let r = parse_decimal("rate", rate)?;
        if r <= Decimal::ZERO {
            return Err(EngineError::Invalid("rate must be positive".into()));
        }
        let mut tx = self.db().begin().await?;
        partners::set_mid_market_rate(&mut *tx, &cur, &r.normalize().to_string(), now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }
}

fn parse_public_key(s: &str) -> Result<String> {
    use base64::Engine as _;
    let t = s.trim();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(t)
        .or_else(|_| hex::decode(t.trim_start_matches("0x")))
        .map_err(|_| {
            EngineError::Invalid("public_key must be a 32-byte Ed25519 key in base64 or hex".into())
        })?;
    let arr: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| EngineError::Invalid("public_key must be 32 bytes".into()))?;
    ed25519_dalek::VerifyingKey::from_bytes(&arr)
        .map_err(|_| EngineError::Invalid("public_key is not a valid Ed25519 key".into()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(arr))
}
