//! The engine's operations: users, partners and rates, quotes, remittances and payouts.

use std::str::FromStr;

use alloy::primitives::{Address, B256, U256};
use alloy::sol_types::SolValue;
use rust_decimal::Decimal;
use serde_json::json;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::authorization::{self, AuthTerms};
use super::pricing::{self, PostedRate, PricingError};
use super::state::State;
use super::types::*;
use super::{
    Engine, EngineError, Result, insert_transition, ledger, parse_state, transition, transition_direct,
};
use crate::chain::{self, DepositJob, ReleaseJob, Terms, TransferJob};
use crate::domain::{
    IdempotencyKey, PartnerId, PayoutMethod, PhoneNumber, PickupCode, currency_exponent, parse_currency,
};
use crate::store::{next_counter, now_ms};

const RATES_PER_CALL_MAX: usize = 500;
/// The fee of a P2P transfer into a Remesa wallet (payout method `remesa_wallet`), in token base units: none. The
/// node's relayer pays the gas; no partner and no FX are involved, so the recipient gets exactly what is sent.
pub const P2P_FEE_BASE_UNITS: i64 = 0;
/// Domain separator of P2P remittance ids (so they can never collide with escrow terms hashes).
const P2P_ID_TAG: &[u8] = b"remesa.p2p.v1";
const RATE_VALIDITY_S_MAX: u64 = 30 * 24 * 3600;
const NAME_LEN_MAX: usize = 100;
/// How long an `Idempotency-Key` (and an unused expired quote) is kept: retries must come within this window.
pub const IDEMPOTENCY_RETENTION_MS: i64 = crate::store::idempotency::RETENTION_MS;

pub(crate) const R_COLS: &str = "id, state, quote_id, sender_user_id, sender_address, custodial, partner_id, \
    recipient_phone, recipient_name, country, currency, payout_method, send_amount_base_units, fee_base_units, \
    total_base_units, payout_amount_minor, rate, expiry_unix_s, claim_hash, payout_reference, failure_reason, \
    lock_tx_hash, release_tx_hash, refund_tx_hash, auth_valid_after, auth_valid_before, auth_signature, \
    created_at_unix_ms, updated_at_unix_ms, pickup_code, recipient_address";

/// A remittance row as stored (the pickup code included: never print it).
#[derive(Clone)]
pub(crate) struct RemRow {
    pub id: String,
    pub state: State,
    pub quote_id: String,
    pub sender_user_id: Option<String>,
    pub sender_address: String,
    pub custodial: bool,
    pub partner_id: u64,
    pub recipient_phone: String,
    pub recipient_name: String,
    pub country: String,
    pub currency: String,
    pub payout_method: PayoutMethod,
    pub send_base: i64,
    pub fee_base: i64,
    pub total_base: i64,
    pub payout_minor: i64,
    pub rate: String,
    pub expiry_unix_s: u64,
    pub claim_hash: String,
    pub payout_reference: Option<String>,
    pub failure_reason: Option<String>,
    pub lock_tx_hash: Option<String>,
    pub release_tx_hash: Option<String>,
    pub refund_tx_hash: Option<String>,
    #[allow(dead_code)] // read by operators through SQL; kept so the row maps 1:1
    pub auth_valid_after: Option<i64>,
    #[allow(dead_code)]
    pub auth_valid_before: Option<i64>,
    #[allow(dead_code)]
    pub auth_signature: Option<String>,
    pub created_at_unix_ms: i64,
    pub updated_at_unix_ms: i64,
    pub pickup_code: String,
    /// `remesa_wallet` only: the recipient's custodial address.
    pub recipient_address: Option<String>,
}

impl std::fmt::Debug for RemRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemRow")
            .field("id", &self.id)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

fn corrupt(what: &str) -> EngineError {
    EngineError::Internal(format!("stored remittance field {what} is corrupt"))
}

impl RemRow {
    pub fn from_row(r: &AnyRow) -> Result<RemRow> {
        let state: String = r.try_get(1)?;
        let method: String = r.try_get(11)?;
        let partner_id: i64 = r.try_get(6)?;
        let expiry: i64 = r.try_get(17)?;
        Ok(RemRow {
            id: r.try_get(0)?,
            state: parse_state(&state)?,
            quote_id: r.try_get(2)?,
            sender_user_id: r.try_get(3)?,
            sender_address: r.try_get(4)?,
            custodial: r.try_get::<i64, _>(5)? != 0,
            partner_id: u64::try_from(partner_id).map_err(|_| corrupt("partner_id"))?,
            recipient_phone: r.try_get(7)?,
            recipient_name: r.try_get(8)?,
            country: r.try_get(9)?,
            currency: r.try_get(10)?,
            payout_method: PayoutMethod::parse(&method).ok_or_else(|| corrupt("payout_method"))?,
            send_base: r.try_get(12)?,
            fee_base: r.try_get(13)?,
            total_base: r.try_get(14)?,
            payout_minor: r.try_get(15)?,
            rate: r.try_get(16)?,
            expiry_unix_s: u64::try_from(expiry).map_err(|_| corrupt("expiry"))?,
            claim_hash: r.try_get(18)?,
            payout_reference: r.try_get(19)?,
            failure_reason: r.try_get(20)?,
            lock_tx_hash: r.try_get(21)?,
            release_tx_hash: r.try_get(22)?,
            refund_tx_hash: r.try_get(23)?,
            auth_valid_after: r.try_get(24)?,
            auth_valid_before: r.try_get(25)?,
            auth_signature: r.try_get(26)?,
            created_at_unix_ms: r.try_get(27)?,
            updated_at_unix_ms: r.try_get(28)?,
            pickup_code: r.try_get(29)?,
            recipient_address: r.try_get(30)?,
        })
    }

    pub fn terms(&self) -> Result<Terms> {
        Ok(Terms {
            sender: Address::from_str(&self.sender_address).map_err(|_| corrupt("sender_address"))?,
            amount_base_units: U256::from(u64::try_from(self.total_base).map_err(|_| corrupt("total"))?),
            partner_id: self.partner_id,
            expiry_unix_s: self.expiry_unix_s,
            claim_hash: B256::from_str(&self.claim_hash).map_err(|_| corrupt("claim_hash"))?,
        })
    }

    pub fn remittance_b256(&self) -> Result<B256> {
        B256::from_str(&self.id).map_err(|_| corrupt("id"))
    }

    pub fn pickup(&self) -> Result<PickupCode> {
        PickupCode::parse(&self.pickup_code).map_err(|_| corrupt("pickup_code"))
    }
}

pub(crate) async fn load(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    for_update: &str,
) -> Result<Option<RemRow>> {
    let row = sqlx::query(&format!(
        "SELECT {R_COLS} FROM remittances WHERE id = $1{for_update}"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(RemRow::from_row).transpose()
}

fn tokens(base: i64, decimals: u8) -> Decimal {
    Decimal::new(base, u32::from(decimals))
}

fn to_base(d: Decimal, decimals: u8) -> Result<i64> {
    let scaled = d
        .checked_mul(Decimal::from(
            10i64.checked_pow(u32::from(decimals)).unwrap_or(i64::MAX),
        ))
        .ok_or_else(|| EngineError::Invalid("amount too large".into()))?
        .normalize();
    if scaled.scale() != 0 {
        return Err(EngineError::Invalid(format!(
            "amount has more than {decimals} decimal places"
        )));
    }
    i64::try_from(scaled).map_err(|_| EngineError::Invalid("amount too large".into()))
}

fn parse_decimal(what: &str, s: &str) -> Result<Decimal> {
    let s = s.trim();
    if s.is_empty() || s.len() > 40 || s.contains(['e', 'E']) {
        return Err(EngineError::Invalid(format!("{what} must be a decimal number")));
    }
    Decimal::from_str(s).map_err(|_| EngineError::Invalid(format!("{what} must be a decimal number")))
}

fn country(s: &str) -> Result<String> {
    let c = s.trim().to_ascii_uppercase();
    if c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(c)
    } else {
        Err(EngineError::Invalid(format!(
            "country must be an ISO 3166-1 alpha-2 code, got {:?}",
            short(s)
        )))
    }
}

fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

fn text(what: &str, s: &str, max: usize) -> Result<String> {
    let t = s.trim();
    if t.is_empty() || t.chars().count() > max || t.chars().any(char::is_control) {
        return Err(EngineError::Invalid(format!(
            "{what} must be 1 to {max} printable characters"
        )));
    }
    Ok(t.to_owned())
}

fn parse_address(what: &str, s: &str) -> Result<Address> {
    let a =
        Address::from_str(s.trim()).map_err(|_| EngineError::Invalid(format!("{what} is not an address")))?;
    if a.is_zero() {
        return Err(EngineError::Invalid(format!("{what} is the zero address")));
    }
    Ok(a)
}

fn addr_text(a: Address) -> String {
    format!("{a:#x}")
}

fn user_from_row(r: &AnyRow) -> Result<User> {
    Ok(User {
        id: r.try_get(0)?,
        channel: r.try_get(1)?,
        external_id: r.try_get(2)?,
        phone: r.try_get(3)?,
        display_name: r.try_get(4)?,
        lang: r.try_get(5)?,
        custody: r.try_get(6)?,
        address: r.try_get(7)?,
        created_at_unix_ms: r.try_get(8)?,
    })
}

const U_COLS: &str =
    "id, channel, external_id, phone, display_name, lang, custody, address, created_at_unix_ms";
const P_COLS: &str = "id, name, countries, currencies, payout_methods, public_key, webhook_url, settlement_address, \
    status, created_at_unix_ms";

fn partner_from_row(r: &AnyRow) -> Result<Partner> {
    let id: i64 = r.try_get(0)?;
    let split = |s: String| -> Vec<String> {
        s.split(',')
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let methods: String = r.try_get(4)?;
    Ok(Partner {
        id: u64::try_from(id).unwrap_or(0),
        name: r.try_get(1)?,
        countries: split(r.try_get(2)?),
        currencies: split(r.try_get(3)?),
        payout_methods: methods.split(',').filter_map(PayoutMethod::parse).collect(),
        public_key: r.try_get(5)?,
        webhook_url: r.try_get(6)?,
        settlement_address: r.try_get(7)?,
        status: r.try_get(8)?,
        created_at_unix_ms: r.try_get(9)?,
    })
}

fn rate_from_row(r: &AnyRow) -> Result<Rate> {
    let pid: i64 = r.try_get(0)?;
    let method: String = r.try_get(3)?;
    let bps: i64 = r.try_get(6)?;
    Ok(Rate {
        partner_id: u64::try_from(pid).unwrap_or(0),
        country: r.try_get(1)?,
        currency: r.try_get(2)?,
        payout_method: PayoutMethod::parse(&method)
            .ok_or_else(|| EngineError::Internal("stored method".into()))?,
        rate: r.try_get(4)?,
        fee_fixed: r.try_get(5)?,
        fee_bps: u32::try_from(bps).unwrap_or(0),
        send_min: r.try_get(7)?,
        send_max: r.try_get(8)?,
        valid_until_unix_ms: r.try_get(9)?,
    })
}

const RATE_COLS: &str = "partner_id, country, currency, payout_method, rate, fee_fixed, fee_bps, send_min, send_max, valid_until_unix_ms";

impl Engine {
    // ----------------------------------------------------------------------------------------------- users

    /// Registers a chat user (idempotent on channel + external id): a custodial account is derived for them
    /// unless `self_custody_address` is given. Returns the user and whether it was created now.
    #[tracing::instrument(skip_all, fields(channel = %new.channel))]
    pub async fn register_user(&self, new: NewUser) -> Result<(User, bool)> {
        let channel = new.channel.trim().to_ascii_lowercase();
        if channel.is_empty()
            || channel.len() > 32
            || !channel.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(EngineError::Invalid(
                "channel must be 1 to 32 of [a-z0-9_]".into(),
            ));
        }
        let external_id = text("external_id", &new.external_id, 128)?;
        let phone = match new.phone.as_deref().filter(|p| !p.trim().is_empty()) {
            Some(p) => Some(
                PhoneNumber::parse(p, None)
                    .map_err(|e| EngineError::Invalid(format!("phone: {e}")))?
                    .as_str()
                    .to_owned(),
            ),
            None => None,
        };
        let display_name = new
            .display_name
            .as_deref()
            .map(|n| text("display_name", n, NAME_LEN_MAX))
            .transpose()?;
        let lang = new.lang.as_deref().map(|l| text("lang", l, 16)).transpose()?;
        if let Some(u) = self.find_user_by_chat(&channel, &external_id).await? {
            return Ok((u, false));
        }
        let mut tx = self.write_tx().await?;
        let existing = sqlx::query(&format!(
            "SELECT {U_COLS} FROM users WHERE channel = $1 AND external_id = $2"
        ))
        .bind(&channel)
        .bind(&external_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(r) = existing {
            return Ok((user_from_row(&r)?, false));
        }
        let (custody, index, address) = match new.self_custody_address.as_deref() {
            Some(a) => ("self", None, parse_address("self_custody_address", a)?),
            None => {
                let custody = self.custody_required()?;
                let index = next_counter(&mut tx, "derivation_index").await?;
                let idx = u32::try_from(index)
                    .map_err(|_| EngineError::Internal("derivation index overflow".into()))?;
                let address = custody
                    .address(idx)
                    .map_err(|e| EngineError::Internal(e.to_string()))?;
                ("custodial", Some(index), address)
            }
        };
        let taken = sqlx::query("SELECT id FROM users WHERE address = $1")
            .bind(addr_text(address))
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Err(EngineError::Conflict(
                "this address belongs to another user".into(),
            ));
        }
        let user = User {
            id: uuid::Uuid::now_v7().to_string(),
            channel,
            external_id,
            phone,
            display_name,
            lang,
            custody: custody.to_owned(),
            address: addr_text(address),
            created_at_unix_ms: now_ms(),
        };
        sqlx::query(
            "INSERT INTO users (id, channel, external_id, phone, display_name, lang, custody, derivation_index, \
             address, created_at_unix_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&user.id)
        .bind(&user.channel)
        .bind(&user.external_id)
        .bind(&user.phone)
        .bind(&user.display_name)
        .bind(&user.lang)
        .bind(&user.custody)
        .bind(index)
        .bind(&user.address)
        .bind(user.created_at_unix_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        metrics::counter!("remesa_users_registered_total").increment(1);
        Ok((user, true))
    }

    pub async fn find_user_by_chat(&self, channel: &str, external_id: &str) -> Result<Option<User>> {
        let r = sqlx::query(&format!(
            "SELECT {U_COLS} FROM users WHERE channel = $1 AND external_id = $2"
        ))
        .bind(channel.trim().to_ascii_lowercase())
        .bind(external_id.trim())
        .fetch_optional(&self.db().pool)
        .await?;
        r.as_ref().map(user_from_row).transpose()
    }

    /// The first registered user with this E.164 phone.
    pub async fn find_user_by_phone(&self, phone: &PhoneNumber) -> Result<Option<User>> {
        let r = sqlx::query(&format!(
            "SELECT {U_COLS} FROM users WHERE phone = $1 ORDER BY created_at_unix_ms LIMIT 1"
        ))
        .bind(phone.as_str())
        .fetch_optional(&self.db().pool)
        .await?;
        r.as_ref().map(user_from_row).transpose()
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>> {
        let r = sqlx::query(&format!("SELECT {U_COLS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.db().pool)
            .await?;
        r.as_ref().map(user_from_row).transpose()
    }

    pub async fn user_by_address(&self, address: &str) -> Result<Option<User>> {
        let r = sqlx::query(&format!("SELECT {U_COLS} FROM users WHERE address = $1"))
            .bind(address.trim().to_ascii_lowercase())
            .fetch_optional(&self.db().pool)
            .await?;
        r.as_ref().map(user_from_row).transpose()
    }

    /// The custodial signer of a user (for node-side transfers); `None` for self-custody users.
    pub async fn custodial_signer(
        &self,
        user_id: &str,
    ) -> Result<Option<alloy::signers::local::PrivateKeySigner>> {
        let r = sqlx::query("SELECT derivation_index FROM users WHERE id = $1 AND custody = 'custodial'")
            .bind(user_id)
            .fetch_optional(&self.db().pool)
            .await?;
        let Some(r) = r else { return Ok(None) };
        let index: i64 = r.try_get(0)?;
        let idx = u32::try_from(index).map_err(|_| EngineError::Internal("derivation index".into()))?;
        let signer = self
            .custody_required()?
            .signer(idx)
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        Ok(Some(signer))
    }

    /// The ledger balance of an address (as indexed from the chain) and what is still available after pending
    /// remittances.
    pub async fn balance(&self, address: &str) -> Result<Balance> {
        let address = addr_text(parse_address("address", address)?);
        let balance = ledger::balance(&self.db().pool, &ledger::wallet(&address)).await?;
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(total_base_units), 0) AS BIGINT) FROM remittances \
             WHERE sender_address = $1 AND state IN ('quoted', 'pending_funds')",
        )
        .bind(&address)
        .fetch_one(&self.db().pool)
        .await?;
        let pending: i64 = row.try_get(0)?;
        let available = balance.saturating_sub(pending).max(0);
        let d = self.token_decimals();
        Ok(Balance {
            address,
            balance: tokens(balance, d).to_string(),
            balance_base_units: balance.to_string(),
            available: tokens(available, d).to_string(),
            available_base_units: available.to_string(),
            token_decimals: d,
        })
    }

    // -------------------------------------------------------------------------------------------- partners

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
        let mut methods: Vec<&str> = p.payout_methods.iter().map(|m| m.as_str()).collect();
        methods.sort_unstable();
        methods.dedup();
        let now = now_ms();
        let mut tx = self.write_tx().await?;
        let exists = sqlx::query("SELECT id FROM partners WHERE id = $1")
            .bind(id.as_i64())
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_some() {
            return Err(EngineError::Conflict(format!("partner {id} already exists")));
        }
        sqlx::query(
            "INSERT INTO partners (id, name, countries, currencies, payout_methods, public_key, webhook_url, \
             settlement_address, status, created_at_unix_ms, updated_at_unix_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'active', $9, $9)",
        )
        .bind(id.as_i64())
        .bind(&name)
        .bind(countries.join(","))
        .bind(currencies.join(","))
        .bind(methods.join(","))
        .bind(&key)
        .bind(&webhook_url)
        .bind(addr_text(settlement))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.partner(id.get())
            .await?
            .ok_or(EngineError::NotFound("partner"))
    }

    pub async fn partner(&self, id: u64) -> Result<Option<Partner>> {
        let Ok(id) = i64::try_from(id) else {
            return Ok(None);
        };
        let r = sqlx::query(&format!("SELECT {P_COLS} FROM partners WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.db().pool)
            .await?;
        r.as_ref().map(partner_from_row).transpose()
    }

    pub async fn list_partners(&self) -> Result<Vec<Partner>> {
        let rows = sqlx::query(&format!("SELECT {P_COLS} FROM partners ORDER BY id LIMIT 1000"))
            .fetch_all(&self.db().pool)
            .await?;
        rows.iter().map(partner_from_row).collect()
    }

    /// `active` or `suspended` (a suspended partner gets no new quotes).
    pub async fn set_partner_status(&self, id: u64, status: &str) -> Result<Partner> {
        if status != "active" && status != "suspended" {
            return Err(EngineError::Invalid("status must be active or suspended".into()));
        }
        let pid = i64::try_from(id).map_err(|_| EngineError::NotFound("partner"))?;
        let done = sqlx::query("UPDATE partners SET status = $1, updated_at_unix_ms = $2 WHERE id = $3")
            .bind(status)
            .bind(now_ms())
            .bind(pid)
            .execute(&self.db().pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(EngineError::NotFound("partner"));
        }
        self.partner(id).await?.ok_or(EngineError::NotFound("partner"))
    }

    /// Replaces the given corridors' rates of a partner (others stay). Each must be within the partner's countries,
    /// currencies and payout methods.
    pub async fn set_rates(&self, partner_id: u64, rates: Vec<RateInput>) -> Result<Vec<Rate>> {
        if rates.is_empty() || rates.len() > RATES_PER_CALL_MAX {
            return Err(EngineError::Invalid(format!(
                "1 to {RATES_PER_CALL_MAX} rates per call"
            )));
        }
        let partner = self
            .partner(partner_id)
            .await?
            .ok_or(EngineError::NotFound("partner"))?;
        let pid = i64::try_from(partner_id).map_err(|_| EngineError::NotFound("partner"))?;
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
            sqlx::query(
                "INSERT INTO partner_rates (partner_id, country, currency, payout_method, rate, fee_fixed, fee_bps, \
                 send_min, send_max, valid_until_unix_ms, updated_at_unix_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (partner_id, country, currency, payout_method) DO UPDATE SET rate = excluded.rate, \
                 fee_fixed = excluded.fee_fixed, fee_bps = excluded.fee_bps, send_min = excluded.send_min, \
                 send_max = excluded.send_max, valid_until_unix_ms = excluded.valid_until_unix_ms, \
                 updated_at_unix_ms = excluded.updated_at_unix_ms",
            )
            .bind(pid)
            .bind(&c)
            .bind(&cur)
            .bind(r.payout_method.as_str())
            .bind(rate.normalize().to_string())
            .bind(fee_fixed.normalize().to_string())
            .bind(i64::from(r.fee_bps))
            .bind(min.normalize().to_string())
            .bind(max.normalize().to_string())
            .bind(valid_until)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.rates(partner_id).await
    }

    pub async fn rates(&self, partner_id: u64) -> Result<Vec<Rate>> {
        let pid = i64::try_from(partner_id).map_err(|_| EngineError::NotFound("partner"))?;
        let rows = sqlx::query(&format!(
            "SELECT {RATE_COLS} FROM partner_rates WHERE partner_id = $1 ORDER BY country, currency, payout_method"
        ))
        .bind(pid)
        .fetch_all(&self.db().pool)
        .await?;
        rows.iter().map(rate_from_row).collect()
    }

    /// Sets the mid-market reference rate (payout currency per USD) used for the all-in cost.
    pub async fn set_mid_market_rate(&self, currency: &str, rate: &str) -> Result<()> {
        let cur = parse_currency(currency).map_err(|e| EngineError::Invalid(e.to_string()))?;
        let r = parse_decimal("rate", rate)?;
        if r <= Decimal::ZERO {
            return Err(EngineError::Invalid("rate must be positive".into()));
        }
        sqlx::query(
            "INSERT INTO mid_market_rates (currency, rate, updated_at_unix_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (currency) DO UPDATE SET rate = excluded.rate, updated_at_unix_ms = excluded.updated_at_unix_ms",
        )
        .bind(&cur)
        .bind(r.normalize().to_string())
        .bind(now_ms())
        .execute(&self.db().pool)
        .await?;
        Ok(())
    }

    // ---------------------------------------------------------------------------------------------- quotes

    /// A firm quote from the partner with the best net payout among those serving the corridor, method and amount.
    #[tracing::instrument(skip_all, fields(country = %req.country))]
    pub async fn quote(&self, req: QuoteRequest) -> Result<Quote> {
        if req.payout_method == PayoutMethod::RemesaWallet {
            return self.quote_p2p(req).await;
        }
        let decimals = self.token_decimals();
        let send = parse_decimal("send_amount", &req.send_amount)?;
        if send <= Decimal::ZERO {
            return Err(EngineError::Invalid("send_amount must be positive".into()));
        }
        if send.normalize().scale() > u32::from(decimals) {
            return Err(EngineError::Invalid(format!(
                "send_amount has at most {decimals} decimal places"
            )));
        }
        let c = country(&req.country)?;
        let currency = req
            .currency
            .as_deref()
            .map(|x| parse_currency(x).map_err(|e| EngineError::Invalid(e.to_string())))
            .transpose()?;
        let now = now_ms();
        let rows = sqlx::query(&format!(
            "SELECT r.{}, p.name FROM partner_rates r JOIN partners p ON p.id = r.partner_id \
             WHERE r.country = $1 AND r.payout_method = $2 AND r.valid_until_unix_ms > $3 AND p.status = 'active' \
             ORDER BY r.partner_id",
            RATE_COLS.replace(", ", ", r.")
        ))
        .bind(&c)
        .bind(req.payout_method.as_str())
        .bind(now)
        .fetch_all(&self.db().pool)
        .await?;
        let mut candidates = Vec::with_capacity(rows.len());
        for row in &rows {
            let rate = rate_from_row(row)?;
            let name: String = row.try_get(10)?;
            candidates.push((rate, name));
        }
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
        let mid: Option<Decimal> = sqlx::query("SELECT rate FROM mid_market_rates WHERE currency = $1")
            .bind(&currency)
            .fetch_optional(&self.db().pool)
            .await?
            .map(|r| r.try_get::<String, _>(0))
            .transpose()?
            .and_then(|s| Decimal::from_str(&s).ok());
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
            .unwrap_or(cfg.quote_ttl_s_default)
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
        let body = serde_json::to_string(&quote).map_err(|e| EngineError::Internal(e.to_string()))?;
        sqlx::query(
            "INSERT INTO quotes (id, partner_id, country, currency, payout_method, send_amount_base_units, \
             fee_base_units, total_base_units, token_decimals, rate, mid_market_rate, payout_amount_minor, body, \
             expires_at_unix_ms, created_at_unix_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(&quote.id)
        .bind(i64::try_from(quote.partner_id).unwrap_or(i64::MAX))
        .bind(&quote.country)
        .bind(&quote.currency)
        .bind(quote.payout_method.as_str())
        .bind(to_base(p.send_amount, decimals)?)
        .bind(to_base(p.fee, decimals)?)
        .bind(to_base(p.total, decimals)?)
        .bind(i64::from(decimals))
        .bind(&quote.rate)
        .bind(mid.map(|m| m.to_string()))
        .bind(payout_minor)
        .bind(&body)
        .bind(quote.expires_at_unix_ms)
        .bind(quote.created_at_unix_ms)
        .execute(&self.db().pool)
        .await?;
        metrics::counter!("remesa_quotes_total").increment(1);
        Ok(quote)
    }

    pub async fn get_quote(&self, id: &str) -> Result<Option<Quote>> {
        let r = sqlx::query("SELECT body FROM quotes WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.db().pool)
            .await?;
        match r {
            Some(r) => {
                let body: String = r.try_get(0)?;
                Ok(Some(
                    serde_json::from_str(&body).map_err(|e| EngineError::Internal(e.to_string()))?,
                ))
            }
            None => Ok(None),
        }
    }

    // ----------------------------------------------------------------------------------------- remittances

    /// Creates a remittance from a quote (single use). For a custodial sender the node signs the EIP-3009
    /// authorization and queues the deposit in the same transaction (state `pending_funds`); a self-custody sender
    /// gets state `quoted` and an `authorization_request` to sign (then [`Engine::authorize`]).
    ///
    /// Idempotent on `idempotency_key`: the same key and request return the same remittance (`created = false`);
    /// the same key with another quote, sender or recipient is [`EngineError::IdempotencyMismatch`].
    #[tracing::instrument(skip_all, fields(quote_id = %req.quote_id))]
    pub async fn create_remittance(
        &self,
        req: CreateRemittance,
        idempotency_key: &IdempotencyKey,
    ) -> Result<(Remittance, bool)> {
        let chain_info = self.chain_required()?.clone();
        let phone = PhoneNumber::parse(&req.recipient.phone, None)
            .map_err(|e| EngineError::Invalid(format!("recipient phone: {e}")))?;
        let recipient_name = text("recipient name", &req.recipient.name, NAME_LEN_MAX)?;
        let account = req
            .recipient
            .account
            .as_deref()
            .map(|a| text("recipient account", a, 64))
            .transpose()?;

        let mut tx = self.write_tx().await?;
        let existing = sqlx::query(&format!(
            "SELECT {R_COLS} FROM remittances WHERE idempotency_key = $1"
        ))
        .bind(idempotency_key.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(row) = existing {
            let r = RemRow::from_row(&row)?;
            let same_sender = match &req.sender {
                SenderRef::User { user_id } => r.sender_user_id.as_deref() == Some(user_id.as_str()),
                SenderRef::Address { address } => r.sender_address.eq_ignore_ascii_case(address.trim()),
            };
            if r.quote_id == req.quote_id && same_sender && r.recipient_phone == phone.as_str() {
                drop(tx);
                return Ok((self.to_api(&r), false));
            }
            return Err(EngineError::IdempotencyMismatch);
        }
        let q = sqlx::query(&format!(
            "SELECT partner_id, country, currency, payout_method, send_amount_base_units, fee_base_units, \
             total_base_units, rate, payout_amount_minor, expires_at_unix_ms, used_by, recipient_phone FROM quotes \
             WHERE id = $1{}",
            self.db().dialect.for_update()
        ))
        .bind(&req.quote_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(EngineError::NotFound("quote"))?;
        let used_by: Option<String> = q.try_get(10)?;
        if used_by.is_some() {
            return Err(EngineError::QuoteUsed);
        }
        let expires: i64 = q.try_get(9)?;
        let now = now_ms();
        if expires <= now {
            return Err(EngineError::QuoteExpired);
        }
        let partner_id: i64 = q.try_get(0)?;
        let method: String = q.try_get(3)?;
        let payout_method =
            PayoutMethod::parse(&method).ok_or_else(|| EngineError::Internal("quote method".into()))?;
        if payout_method == PayoutMethod::RemesaWallet {
            return self
                .create_p2p(
                    tx,
                    &req,
                    idempotency_key,
                    &phone,
                    &recipient_name,
                    &q,
                    &chain_info,
                )
                .await;
        }
        if matches!(
            payout_method,
            PayoutMethod::BankDeposit | PayoutMethod::MobileWallet
        ) && account.is_none()
        {
            return Err(EngineError::Invalid(
                "recipient account is required for this payout method".into(),
            ));
        }
        let total: i64 = q.try_get(6)?;

        // the sender
        let (sender_user_id, sender_address, signer) = match &req.sender {
            SenderRef::User { user_id } => {
                let u = sqlx::query("SELECT custody, address, derivation_index FROM users WHERE id = $1")
                    .bind(user_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or(EngineError::NotFound("user"))?;
                let custody: String = u.try_get(0)?;
                let address: String = u.try_get(1)?;
                let signer = if custody == "custodial" {
                    let index: i64 = u.try_get(2)?;
                    let idx =
                        u32::try_from(index).map_err(|_| EngineError::Internal("derivation index".into()))?;
                    Some(
                        self.custody_required()?
                            .signer(idx)
                            .map_err(|e| EngineError::Internal(e.to_string()))?,
                    )
                } else {
                    None
                };
                (
                    Some(user_id.clone()),
                    parse_address("sender address", &address)?,
                    signer,
                )
            }
            SenderRef::Address { address } => {
                let a = parse_address("sender address", address)?;
                let custodial =
                    sqlx::query("SELECT id FROM users WHERE address = $1 AND custody = 'custodial'")
                        .bind(addr_text(a))
                        .fetch_optional(&mut *tx)
                        .await?;
                if custodial.is_some() {
                    return Err(EngineError::Invalid(
                        "this address is custodial: send as its user".into(),
                    ));
                }
                (None, a, None)
            }
        };
        if signer.is_some() {
            let balance = ledger::balance(&mut *tx, &ledger::wallet(&addr_text(sender_address))).await?;
            let pending = sqlx::query(
                "SELECT CAST(COALESCE(SUM(total_base_units), 0) AS BIGINT) FROM remittances \
                 WHERE sender_address = $1 AND state IN ('quoted', 'pending_funds')",
            )
            .bind(addr_text(sender_address))
            .fetch_one(&mut *tx)
            .await?
            .try_get::<i64, _>(0)?;
            let available = balance.saturating_sub(pending);
            if available < total {
                let d = self.token_decimals();
                return Err(EngineError::InsufficientFunds {
                    available: tokens(available.max(0), d).normalize().to_string(),
                    required: tokens(total, d).normalize().to_string(),
                });
            }
        }

        let code = PickupCode::generate();
        let expiry_unix_s = u64::try_from(now / 1000)
            .unwrap_or(0)
            .saturating_add(self.config().remittance_expiry_s);
        let terms = Terms {
            sender: sender_address,
            amount_base_units: U256::from(
                u64::try_from(total).map_err(|_| EngineError::Internal("total".into()))?,
            ),
            partner_id: u64::try_from(partner_id).map_err(|_| EngineError::Internal("partner".into()))?,
            expiry_unix_s,
            claim_hash: code.claim_hash(),
        };
        let id_b = terms.remittance_id(chain_info.escrow);
        let id = format!("{id_b:#x}");
        use_quote(&mut tx, &req.quote_id, &id).await?;
        sqlx::query(
            "INSERT INTO remittances (id, quote_id, idempotency_key, sender_user_id, sender_address, custodial, \
             partner_id, recipient_phone, recipient_name, recipient_account, country, currency, payout_method, \
             send_amount_base_units, fee_base_units, total_base_units, payout_amount_minor, rate, expiry_unix_s, \
             claim_hash, pickup_code, state, created_at_unix_ms, updated_at_unix_ms) VALUES ($1, $2, $3, $4, $5, $6, \
             $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, 'quoted', $22, $22)",
        )
        .bind(&id)
        .bind(&req.quote_id)
        .bind(idempotency_key.as_str())
        .bind(&sender_user_id)
        .bind(addr_text(sender_address))
        .bind(i64::from(signer.is_some()))
        .bind(partner_id)
        .bind(phone.as_str())
        .bind(&recipient_name)
        .bind(&account)
        .bind(q.try_get::<String, _>(1)?)
        .bind(q.try_get::<String, _>(2)?)
        .bind(&method)
        .bind(q.try_get::<i64, _>(4)?)
        .bind(q.try_get::<i64, _>(5)?)
        .bind(total)
        .bind(q.try_get::<i64, _>(8)?)
        .bind(q.try_get::<String, _>(7)?)
        .bind(i64::try_from(expiry_unix_s).unwrap_or(i64::MAX))
        .bind(format!("{:#x}", terms.claim_hash))
        .bind(code.expose())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        insert_transition(
            &mut tx,
            &id,
            None,
            State::Quoted,
            "created",
            json!({"quote_id": req.quote_id}),
            now,
        )
        .await?;
        if let Some(signer) = signer {
            let auth_terms = self.auth_terms(&chain_info, &terms, id_b, now);
            let auth = authorization::sign(&signer, &chain_info.domain, &auth_terms)
                .map_err(|e| EngineError::Internal(e.to_string()))?;
            self.store_authorization_and_enqueue(
                &mut tx,
                &id,
                id_b,
                terms,
                auth,
                "authorized",
                json!({"by": "custodial key"}),
            )
            .await?;
        }
        let row = load(&mut tx, &id, "")
            .await?
            .ok_or(EngineError::NotFound("remittance"))?;
        tx.commit().await?;
        metrics::counter!("remesa_remittances_created_total").increment(1);
        Ok((self.to_api(&row), true))
    }

    /// A quote for a P2P transfer into the recipient's Remesa wallet (payout method `remesa_wallet`): USD
    /// stablecoin, no partner (partner id 0), no FX (rate 1) and no fee ([`P2P_FEE_BASE_UNITS`]). Bound to the
    /// recipient's phone, which must belong to a registered user with a custodial (Remesa) wallet.
    async fn quote_p2p(&self, req: QuoteRequest) -> Result<Quote> {
        let decimals = self.token_decimals();
        let send = parse_decimal("send_amount", &req.send_amount)?;
        if send <= Decimal::ZERO {
            return Err(EngineError::Invalid("send_amount must be positive".into()));
        }
        if send.normalize().scale() > u32::from(decimals) {
            return Err(EngineError::Invalid(format!(
                "send_amount has at most {decimals} decimal places"
            )));
        }
        let c = country(&req.country)?;
        if let Some(cur) = req.currency.as_deref() {
            let cur = parse_currency(cur).map_err(|e| EngineError::Invalid(e.to_string()))?;
            if cur != "USD" {
                return Err(EngineError::Invalid(format!(
                    "a Remesa wallet holds USD (stablecoin), not {cur}"
                )));
            }
        }
        let phone_text = req
            .recipient_phone
            .as_deref()
            .filter(|p| !p.trim().is_empty())
            .ok_or_else(|| {
                EngineError::Invalid("recipient_phone is required for payout method remesa_wallet".into())
            })?;
        let phone = PhoneNumber::parse(phone_text, None)
            .map_err(|e| EngineError::Invalid(format!("recipient phone: {e}")))?;
        let mut conn = self.db().pool.acquire().await?;
        p2p_recipient(&mut conn, &phone).await?;
        drop(conn);
        let send_base = to_base(send, decimals)?;
        let fee = tokens(P2P_FEE_BASE_UNITS, decimals);
        let total_base = send_base
            .checked_add(P2P_FEE_BASE_UNITS)
            .ok_or_else(|| EngineError::Invalid("amount too large".into()))?;
        let total = tokens(total_base, decimals);
        let cfg = self.config();
        let ttl_s = req
            .ttl_s
            .unwrap_or(cfg.quote_ttl_s_default)
            .clamp(1, cfg.quote_ttl_s_max);
        let now = now_ms();
        let quote = Quote {
            id: uuid::Uuid::now_v7().to_string(),
            partner_id: 0,
            partner_name: "Remesa".into(),
            country: c,
            currency: "USD".into(),
            payout_method: PayoutMethod::RemesaWallet,
            token_decimals: decimals,
            send_amount: send.normalize().to_string(),
            fee: fee.normalize().to_string(),
            fee_fixed: fee.normalize().to_string(),
            fee_variable: "0".into(),
            fee_bps: 0,
            total: total.normalize().to_string(),
            rate: "1".into(),
            payout_amount: send.normalize().to_string(),
            mid_market_rate: "1".into(),
            all_in_cost: fee.normalize().to_string(),
            all_in_cost_percent: "0".into(),
            rounding:
                "no conversion: the recipient's Remesa wallet receives exactly the amount sent, in USD \
                       stablecoin; no fee, the node pays the gas"
                    .into(),
            expires_at_unix_ms: now.saturating_add(i64::try_from(ttl_s * 1000).unwrap_or(i64::MAX)),
            created_at_unix_ms: now,
            recipient_phone: Some(phone.as_str().to_owned()),
        };
        let body = serde_json::to_string(&quote).map_err(|e| EngineError::Internal(e.to_string()))?;
        sqlx::query(
            "INSERT INTO quotes (id, partner_id, country, currency, payout_method, send_amount_base_units, \
             fee_base_units, total_base_units, token_decimals, rate, mid_market_rate, payout_amount_minor, body, \
             expires_at_unix_ms, created_at_unix_ms, recipient_phone) \
             VALUES ($1, 0, $2, 'USD', $3, $4, $5, $6, $7, '1', '1', $4, $8, $9, $10, $11)",
        )
        .bind(&quote.id)
        .bind(&quote.country)
        .bind(PayoutMethod::RemesaWallet.as_str())
        .bind(send_base)
        .bind(P2P_FEE_BASE_UNITS)
        .bind(total_base)
        .bind(i64::from(decimals))
        .bind(&body)
        .bind(quote.expires_at_unix_ms)
        .bind(quote.created_at_unix_ms)
        .bind(phone.as_str())
        .execute(&self.db().pool)
        .await?;
        metrics::counter!("remesa_quotes_total").increment(1);
        Ok(quote)
    }

    /// Creates a P2P remittance into the recipient's Remesa wallet from a `remesa_wallet` quote: the sender's
    /// custodial key signs an EIP-3009 `TransferWithAuthorization` (nonce = the remittance id) and the transfer is
    /// queued in the chain outbox in the same database transaction (`quoted` → `pending_funds`). It settles when the
    /// indexer sees the token `Transfer` (see the engine's chain sink).
    #[allow(clippy::too_many_arguments)]
    async fn create_p2p(
        &self,
        mut tx: crate::store::Tx,
        req: &CreateRemittance,
        idempotency_key: &IdempotencyKey,
        phone: &PhoneNumber,
        recipient_name: &str,
        q: &AnyRow,
        chain_info: &super::ChainInfo,
    ) -> Result<(Remittance, bool)> {
        let quote_phone: Option<String> = q.try_get(11)?;
        if quote_phone.as_deref() != Some(phone.as_str()) {
            return Err(EngineError::Invalid(
                "this quote was made for another recipient".into(),
            ));
        }
        let self_custody = || {
            EngineError::Invalid(
                "transfers into a Remesa wallet are sent by users whose wallet the node holds; a self-custody \
                 wallet transfers directly with remesa-wallet"
                    .into(),
            )
        };
        let SenderRef::User { user_id } = &req.sender else {
            return Err(self_custody());
        };
        let u = sqlx::query("SELECT custody, address, derivation_index FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(EngineError::NotFound("user"))?;
        let custody: String = u.try_get(0)?;
        if custody != "custodial" {
            return Err(self_custody());
        }
        let sender = parse_address("sender address", &u.try_get::<String, _>(1)?)?;
        let index: i64 = u.try_get(2)?;
        let idx = u32::try_from(index).map_err(|_| EngineError::Internal("derivation index".into()))?;
        let signer = self
            .custody_required()?
            .signer(idx)
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        let recipient = p2p_recipient(&mut tx, phone).await?;
        if recipient == sender {
            return Err(EngineError::Invalid(
                "that is your own Remesa wallet: send to someone else".into(),
            ));
        }
        let total: i64 = q.try_get(6)?;
        self.ensure_available(&mut tx, sender, total).await?;

        let now = now_ms();
        let expiry_unix_s = u64::try_from(now / 1000)
            .unwrap_or(0)
            .saturating_add(self.config().remittance_expiry_s);
        let value = U256::from(u64::try_from(total).map_err(|_| EngineError::Internal("total".into()))?);
        // A random salt makes each id (the EIP-3009 nonce) unique; it is stored as the pickup code column but is no
        // claim and is never shown.
        let salt = PickupCode::generate();
        let id_b = alloy::primitives::keccak256(
            (
                alloy::primitives::keccak256(P2P_ID_TAG),
                chain_info.token,
                sender,
                recipient,
                value,
                expiry_unix_s,
                salt.claim_hash(),
            )
                .abi_encode_params(),
        );
        let id = format!("{id_b:#x}");
        use_quote(&mut tx, &req.quote_id, &id).await?;
        sqlx::query(
            "INSERT INTO remittances (id, quote_id, idempotency_key, sender_user_id, sender_address, custodial, \
             partner_id, recipient_phone, recipient_name, recipient_account, country, currency, payout_method, \
             send_amount_base_units, fee_base_units, total_base_units, payout_amount_minor, rate, expiry_unix_s, \
             claim_hash, pickup_code, state, created_at_unix_ms, updated_at_unix_ms, recipient_address) VALUES \
             ($1, $2, $3, $4, $5, 1, 0, $6, $7, NULL, $8, 'USD', $9, $10, $11, $12, $10, '1', $13, $14, $15, 'quoted', \
             $16, $16, $17)",
        )
        .bind(&id)
        .bind(&req.quote_id)
        .bind(idempotency_key.as_str())
        .bind(user_id)
        .bind(addr_text(sender))
        .bind(phone.as_str())
        .bind(recipient_name)
        .bind(q.try_get::<String, _>(1)?)
        .bind(PayoutMethod::RemesaWallet.as_str())
        .bind(q.try_get::<i64, _>(4)?)
        .bind(q.try_get::<i64, _>(5)?)
        .bind(total)
        .bind(i64::try_from(expiry_unix_s).unwrap_or(i64::MAX))
        .bind(format!("{:#x}", salt.claim_hash()))
        .bind(salt.expose())
        .bind(now)
        .bind(addr_text(recipient))
        .execute(&mut *tx)
        .await?;
        insert_transition(
            &mut tx,
            &id,
            None,
            State::Quoted,
            "created",
            json!({"quote_id": req.quote_id, "payout_method": "remesa_wallet"}),
            now,
        )
        .await?;
        let auth_terms = AuthTerms {
            from: sender,
            escrow: recipient, // the payee of a TransferWithAuthorization
            value,
            valid_after_unix_s: 0,
            valid_before_unix_s: expiry_unix_s,
            nonce: id_b,
        };
        let auth = authorization::sign_transfer(&signer, &chain_info.domain, &auth_terms)
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        sqlx::query("UPDATE remittances SET auth_valid_after = $1, auth_valid_before = $2, auth_signature = $3 WHERE id = $4")
            .bind(0i64)
            .bind(i64::try_from(expiry_unix_s).unwrap_or(i64::MAX))
            .bind(authorization::signature_hex(&auth))
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        transition_direct(
            &mut tx,
            &id,
            State::Quoted,
            State::PendingFunds,
            "authorized",
            json!({"by": "custodial key", "authorization": "transfer_with_authorization"}),
            false,
        )
        .await?;
        chain::enqueue_transfer(
            &mut tx,
            TransferJob {
                remittance_id: id_b,
                from: sender,
                to: recipient,
                value_base_units: value,
                authorization: auth,
            },
        )
        .await?;
        let row = load(&mut tx, &id, "")
            .await?
            .ok_or(EngineError::NotFound("remittance"))?;
        tx.commit().await?;
        metrics::counter!("remesa_remittances_created_total").increment(1);
        Ok((self.to_api(&row), true))
    }

    /// Refuses when the sender's ledger balance minus what its pending remittances will pull is below `total`.
    async fn ensure_available(&self, tx: &mut crate::store::Tx, sender: Address, total: i64) -> Result<()> {
        let balance = ledger::balance(&mut **tx, &ledger::wallet(&addr_text(sender))).await?;
        let pending = sqlx::query(
            "SELECT CAST(COALESCE(SUM(total_base_units), 0) AS BIGINT) FROM remittances \
             WHERE sender_address = $1 AND state IN ('quoted', 'pending_funds')",
        )
        .bind(addr_text(sender))
        .fetch_one(&mut **tx)
        .await?
        .try_get::<i64, _>(0)?;
        let available = balance.saturating_sub(pending);
        if available < total {
            let d = self.token_decimals();
            return Err(EngineError::InsufficientFunds {
                available: tokens(available.max(0), d).normalize().to_string(),
                required: tokens(total, d).normalize().to_string(),
            });
        }
        Ok(())
    }

    fn auth_terms(&self, chain_info: &super::ChainInfo, terms: &Terms, id: B256, now_ms: i64) -> AuthTerms {
        let _ = now_ms;
        AuthTerms {
            from: terms.sender,
            escrow: chain_info.escrow,
            value: terms.amount_base_units,
            valid_after_unix_s: 0,
            valid_before_unix_s: terms.expiry_unix_s,
            nonce: id,
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn store_authorization_and_enqueue(
        &self,
        tx: &mut crate::store::Tx,
        id: &str,
        id_b: B256,
        terms: Terms,
        auth: crate::chain::Authorization,
        cause: &str,
        detail: serde_json::Value,
    ) -> Result<()> {
        let after = u64::try_from(auth.valid_after_unix_s).unwrap_or(u64::MAX);
        let before = u64::try_from(auth.valid_before_unix_s).unwrap_or(u64::MAX);
        sqlx::query("UPDATE remittances SET auth_valid_after = $1, auth_valid_before = $2, auth_signature = $3 WHERE id = $4")
            .bind(i64::try_from(after).unwrap_or(i64::MAX))
            .bind(i64::try_from(before).unwrap_or(i64::MAX))
            .bind(authorization::signature_hex(&auth))
            .bind(id)
            .execute(&mut **tx)
            .await?;
        transition(tx, id, State::Quoted, State::PendingFunds, cause, detail, false).await?;
        chain::enqueue_deposit(
            tx,
            DepositJob {
                remittance_id: id_b,
                terms,
                authorization: auth,
            },
        )
        .await?;
        Ok(())
    }

    /// A self-custody sender's signature (made with `remesa-wallet remit`): verified against the terms, stored, and
    /// the deposit queued (`quoted` → `pending_funds`).
    pub async fn authorize(&self, id: &str, input: AuthorizationInput) -> Result<Remittance> {
        let chain_info = self.chain_required()?.clone();
        let mut tx = self.write_tx().await?;
        let r = load(&mut tx, id, self.db().dialect.for_update())
            .await?
            .ok_or(EngineError::NotFound("remittance"))?;
        if r.state != State::Quoted || r.custodial {
            return Err(EngineError::Conflict(format!(
                "remittance is {}, not awaiting a signature",
                r.state
            )));
        }
        let now_s = u64::try_from(now_ms() / 1000).unwrap_or(0);
        if input.valid_before_unix_s <= now_s + 60 || input.valid_after_unix_s >= input.valid_before_unix_s {
            return Err(EngineError::Invalid(
                "the authorization window must be open for at least another minute".into(),
            ));
        }
        let terms = r.terms()?;
        let id_b = r.remittance_b256()?;
        let t = AuthTerms {
            from: terms.sender,
            escrow: chain_info.escrow,
            value: terms.amount_base_units,
            valid_after_unix_s: input.valid_after_unix_s,
            valid_before_unix_s: input.valid_before_unix_s,
            nonce: id_b,
        };
        let auth = authorization::verify(&chain_info.domain, &t, &input.signature)
            .map_err(|e| EngineError::Invalid(format!("authorization: {e}")))?;
        self.store_authorization_and_enqueue(
            &mut tx,
            id,
            id_b,
            terms,
            auth,
            "authorized",
            json!({"by": "sender signature"}),
        )
        .await?;
        let row = load(&mut tx, id, "")
            .await?
            .ok_or(EngineError::NotFound("remittance"))?;
        tx.commit().await?;
        Ok(self.to_api(&row))
    }

    pub async fn remittance(&self, id: &str) -> Result<Option<Remittance>> {
        let mut conn = self.db().pool.acquire().await?;
        Ok(load(&mut conn, id, "").await?.map(|r| self.to_api(&r)))
    }

    /// The recipient's pickup code (for the chat bridge to tell the recipient). Never put it in logs.
    pub async fn pickup_code(&self, id: &str) -> Result<PickupCode> {
        let mut conn = self.db().pool.acquire().await?;
        load(&mut conn, id, "")
            .await?
            .ok_or(EngineError::NotFound("remittance"))?
            .pickup()
    }

    /// A partner's remittance by the recipient's pickup code (counter agents look codes up).
    pub async fn find_by_pickup_code(
        &self,
        partner_id: u64,
        code: &PickupCode,
    ) -> Result<Option<Remittance>> {
        let r = sqlx::query(&format!(
            "SELECT {R_COLS} FROM remittances WHERE claim_hash = $1 AND partner_id = $2"
        ))
        .bind(format!("{:#x}", code.claim_hash()))
        .bind(i64::try_from(partner_id).unwrap_or(-1))
        .fetch_optional(&self.db().pool)
        .await?;
        Ok(r.as_ref()
            .map(RemRow::from_row)
            .transpose()?
            .map(|r| self.to_api(&r)))
    }

    /// Newest first, cursor-paginated (`next_cursor` of the previous page).
    pub async fn list_remittances(
        &self,
        filter: &RemittanceFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Remittance>> {
        let limit = limit.clamp(1, self.config().page_limit_max);
        let mut sql = format!("SELECT {R_COLS} FROM remittances WHERE 1 = 1");
        let mut binds: Vec<BindVal> = Vec::new();
        let mut n = 0usize;
        let mut next = |v: BindVal, binds: &mut Vec<BindVal>| {
            binds.push(v);
            n += 1;
            format!("${n}")
        };
        if let Some(u) = &filter.sender_user_id {
            let p = next(BindVal::Text(u.clone()), &mut binds);
            sql.push_str(&format!(" AND sender_user_id = {p}"));
        }
        if let Some(a) = &filter.sender_address {
            let p = next(BindVal::Text(a.trim().to_ascii_lowercase()), &mut binds);
            sql.push_str(&format!(" AND sender_address = {p}"));
        }
        if let Some(pid) = filter.partner_id {
            let p = next(BindVal::Int(i64::try_from(pid).unwrap_or(-1)), &mut binds);
            sql.push_str(&format!(" AND partner_id = {p}"));
        }
        if !filter.states.is_empty() {
            let ps: Vec<String> = filter
                .states
                .iter()
                .map(|s| next(BindVal::Text(s.as_str().to_owned()), &mut binds))
                .collect();
            sql.push_str(&format!(" AND state IN ({})", ps.join(", ")));
        }
        if let Some(c) = cursor {
            let (ts, id) = c
                .split_once('_')
                .and_then(|(t, i)| Some((t.parse::<i64>().ok()?, i.to_owned())))
                .ok_or_else(|| EngineError::Invalid("bad cursor".into()))?;
            let p1 = next(BindVal::Int(ts), &mut binds);
            let p2 = next(BindVal::Text(id), &mut binds);
            sql.push_str(&format!(
                " AND (created_at_unix_ms < {p1} OR (created_at_unix_ms = {p1} AND id < {p2}))"
            ));
        }
        let pl = next(BindVal::Int(i64::from(limit) + 1), &mut binds);
        sql.push_str(&format!(" ORDER BY created_at_unix_ms DESC, id DESC LIMIT {pl}"));
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = match b {
                BindVal::Text(t) => q.bind(t),
                BindVal::Int(i) => q.bind(i),
            };
        }
        let rows = q.fetch_all(&self.db().pool).await?;
        let mut items: Vec<RemRow> = rows.iter().map(RemRow::from_row).collect::<Result<_>>()?;
        let more = items.len() > usize::try_from(limit).unwrap_or(usize::MAX);
        items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next_cursor = if more {
            items.last().map(|r| format!("{}_{}", r.created_at_unix_ms, r.id))
        } else {
            None
        };
        Ok(Page {
            items: items.iter().map(|r| self.to_api(r)).collect(),
            next_cursor,
        })
    }

    /// Cancels before the funds are locked. `by_user`: when given, only that sender may cancel. Funds that
    /// arrive anyway (a deposit already in flight) are refunded at expiry.
    pub async fn cancel(&self, id: &str, by_user: Option<&str>) -> Result<Remittance> {
        let mut tx = self.write_tx().await?;
        let r = load(&mut tx, id, self.db().dialect.for_update())
            .await?
            .ok_or(EngineError::NotFound("remittance"))?;
        if let Some(u) = by_user
            && r.sender_user_id.as_deref() != Some(u)
        {
            return Err(EngineError::NotFound("remittance"));
        }
        if r.state == State::Cancelled {
            drop(tx);
            return Ok(self.to_api(&r));
        }
        if r.payout_method == PayoutMethod::RemesaWallet && r.state != State::Quoted {
            return Err(EngineError::Conflict(format!(
                "an instant transfer to a Remesa wallet cannot be cancelled once authorized (it is {})",
                r.state
            )));
        }
        if !matches!(r.state, State::Quoted | State::PendingFunds) {
            return Err(EngineError::Conflict(format!(
                "a remittance that is {} cannot be cancelled",
                r.state
            )));
        }
        transition(
            &mut tx,
            id,
            r.state,
            State::Cancelled,
            "cancelled",
            json!({"by": by_user.unwrap_or("api")}),
            false,
        )
        .await?;
        let row = load(&mut tx, id, "")
            .await?
            .ok_or(EngineError::NotFound("remittance"))?;
        tx.commit().await?;
        Ok(self.to_api(&row))
    }

    // ------------------------------------------------------------------------------------------- payouts

    async fn partner_payout(&self, tx: &mut crate::store::Tx, id: &str, partner_id: u64) -> Result<RemRow> {
        let r = load(tx, id, self.db().dialect.for_update())
            .await?
            .ok_or(EngineError::NotFound("remittance"))?;
        if r.partner_id != partner_id {
            // another partner's payout: indistinguishable from a missing one
            return Err(EngineError::NotFound("remittance"));
        }
        Ok(r)
    }

    /// The partner takes the payout (`payout_assigned` → `payout_accepted`). Repeating it is harmless.
    pub async fn payout_accepted(&self, id: &str, partner_id: u64) -> Result<Remittance> {
        let mut tx = self.write_tx().await?;
        let r = self.partner_payout(&mut tx, id, partner_id).await?;
        match r.state {
            State::PayoutAccepted => {}
            State::PayoutAssigned => {
                transition(
                    &mut tx,
                    id,
                    r.state,
                    State::PayoutAccepted,
                    "partner_accepted",
                    json!({"partner_id": partner_id}),
                    false,
                )
                .await?;
            }
            s => {
                return Err(EngineError::Conflict(format!(
                    "the payout is {s}, it cannot be accepted"
                )));
            }
        }
        let row = load(&mut tx, id, "")
            .await?
            .ok_or(EngineError::NotFound("remittance"))?;
        tx.commit().await?;
        Ok(self.to_api(&row))
    }

    /// The partner paid the recipient: checks the pickup code (cash) or takes the reference, moves to `paid` and
    /// queues the release to the partner in the same transaction. Repeating it is harmless.
    pub async fn payout_paid(&self, id: &str, partner_id: u64, proof: PayoutProof) -> Result<Remittance> {
        let mut tx = self.write_tx().await?;
        let r = self.partner_payout(&mut tx, id, partner_id).await?;
        if matches!(r.state, State::Paid | State::Settled) {
            drop(tx);
            return Ok(self.to_api(&r));
        }
        if !matches!(r.state, State::PayoutAssigned | State::PayoutAccepted) {
            return Err(EngineError::Conflict(format!(
                "the payout is {}, it cannot be completed",
                r.state
            )));
        }
        let code = r.pickup()?;
        let reference = match &proof {
            PayoutProof::PickupCode { code: given } => {
                let given =
                    PickupCode::parse(given).map_err(|_| EngineError::Invalid("wrong pickup code".into()))?;
                use subtle::ConstantTimeEq;
                if !bool::from(given.claim_hash().as_slice().ct_eq(code.claim_hash().as_slice())) {
                    return Err(EngineError::Invalid("wrong pickup code".into()));
                }
                "pickup code".to_owned()
            }
            PayoutProof::Reference { reference } => {
                if r.payout_method == PayoutMethod::CashPickup {
                    return Err(EngineError::Invalid(
                        "cash pickups are completed with the recipient's pickup code".into(),
                    ));
                }
                text("reference", reference, 128)?
            }
        };
        if r.state == State::PayoutAssigned {
            transition(
                &mut tx,
                id,
                State::PayoutAssigned,
                State::PayoutAccepted,
                "partner_accepted",
                json!({"partner_id": partner_id, "implicit": true}),
                false,
            )
            .await?;
        }
        sqlx::query("UPDATE remittances SET payout_reference = $1 WHERE id = $2")
            .bind(&reference)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        transition(
            &mut tx,
            id,
            State::PayoutAccepted,
            State::Paid,
            "partner_completed",
            json!({"reference": reference}),
            false,
        )
        .await?;
        chain::enqueue_release(
            &mut tx,
            ReleaseJob {
                remittance_id: r.remittance_b256()?,
                terms: r.terms()?,
                preimage: code.preimage(),
            },
        )
        .await?;
        let row = load(&mut tx, id, "")
            .await?
            .ok_or(EngineError::NotFound("remittance"))?;
        tx.commit().await?;
        metrics::counter!("remesa_payouts_paid_total").increment(1);
        Ok(self.to_api(&row))
    }

    /// The partner could not pay: the remittance waits for its expiry and is refunded to the sender.
    pub async fn payout_failed(&self, id: &str, partner_id: u64, reason: &str) -> Result<Remittance> {
        let reason = text("reason", reason, 500)?;
        let mut tx = self.write_tx().await?;
        let r = self.partner_payout(&mut tx, id, partner_id).await?;
        if r.state == State::RefundPending || r.state == State::Refunded {
            drop(tx);
            return Ok(self.to_api(&r));
        }
        if !matches!(r.state, State::PayoutAssigned | State::PayoutAccepted) {
            return Err(EngineError::Conflict(format!(
                "the payout is {}, it cannot fail",
                r.state
            )));
        }
        sqlx::query("UPDATE remittances SET failure_reason = $1 WHERE id = $2")
            .bind(&reason)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        transition(
            &mut tx,
            id,
            r.state,
            State::RefundPending,
            "partner_failed",
            json!({"reason": reason}),
            false,
        )
        .await?;
        let row = load(&mut tx, id, "")
            .await?
            .ok_or(EngineError::NotFound("remittance"))?;
        tx.commit().await?;
        Ok(self.to_api(&row))
    }

    /// Settlements to a partner (newest first), from indexed `Settled` events.
    pub async fn settlements(&self, partner_id: u64, limit: u32) -> Result<Vec<Settlement>> {
        let limit = i64::from(limit.clamp(1, self.config().page_limit_max));
        let rows = sqlx::query(
            "SELECT event_id, partner_id, settlement_address, amount_base_units, release_count, tx_hash, block_number, \
             at_unix_ms FROM settlements WHERE partner_id = $1 ORDER BY block_number DESC, event_id DESC LIMIT $2",
        )
        .bind(i64::try_from(partner_id).unwrap_or(-1))
        .bind(limit)
        .fetch_all(&self.db().pool)
        .await?;
        let d = self.token_decimals();
        rows.iter()
            .map(|r| {
                let amount: i64 = r.try_get(3)?;
                let pid: i64 = r.try_get(1)?;
                let count: i64 = r.try_get(4)?;
                let block: i64 = r.try_get(6)?;
                Ok(Settlement {
                    event_id: r.try_get(0)?,
                    partner_id: u64::try_from(pid).unwrap_or(0),
                    settlement_address: r.try_get(2)?,
                    amount: tokens(amount, d).to_string(),
                    amount_base_units: amount.to_string(),
                    release_count: u64::try_from(count).unwrap_or(0),
                    tx_hash: r.try_get(5)?,
                    block_number: u64::try_from(block).unwrap_or(0),
                    at_unix_ms: r.try_get(7)?,
                })
            })
            .collect()
    }

    /// Self-custody remittances never authorized before their expiry become `expired`. Returns how many.
    pub async fn expire_stale(&self, now_unix_s: u64, limit: u32) -> Result<u32> {
        let rows = sqlx::query(
            "SELECT id FROM remittances WHERE state = 'quoted' AND expiry_unix_s <= $1 ORDER BY expiry_unix_s LIMIT $2",
        )
        .bind(i64::try_from(now_unix_s).unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.db().pool)
        .await?;
        let mut n = 0u32;
        for row in rows {
            let id: String = row.try_get(0)?;
            let mut tx = self.write_tx().await?;
            match transition(
                &mut tx,
                &id,
                State::Quoted,
                State::Expired,
                "expired",
                json!({"reason": "never authorized"}),
                false,
            )
            .await
            {
                Ok(_) => {
                    tx.commit().await?;
                    n += 1;
                }
                Err(EngineError::Conflict(_)) => {} // moved on meanwhile (another process, or authorized)
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// Bounds the tables that only grow with traffic: idempotency keys older than
    /// [`IDEMPOTENCY_RETENTION_MS`] and unused quotes expired that long ago are deleted.
    pub async fn prune(&self, now_ms: i64) -> Result<(u64, u64)> {
        let cutoff = now_ms.saturating_sub(IDEMPOTENCY_RETENTION_MS);
        let keys = crate::store::idempotency::prune(&self.db().pool, now_ms).await?;
        let quotes = sqlx::query("DELETE FROM quotes WHERE used_by IS NULL AND expires_at_unix_ms < $1")
            .bind(cutoff)
            .execute(&self.db().pool)
            .await?
            .rows_affected();
        Ok((keys, quotes))
    }

    /// Background housekeeping until `cancel`: expires stale remittances every 10 s.
    pub async fn run_sweeper(self, cancel: tokio_util::sync::CancellationToken) {
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(std::time::Duration::from_secs(10)) => {}
            }
            let now_s = u64::try_from(now_ms() / 1000).unwrap_or(0);
            match self.expire_stale(now_s, 500).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(target: "engine", expired = n, "stale remittances expired"),
                Err(e) => tracing::warn!(target: "engine", error = %e, "sweeper round failed"),
            }
            if let Err(e) = self.prune(now_ms()).await {
                tracing::warn!(target: "engine", error = %e, "pruning failed");
            }
        }
    }

    pub(crate) fn to_api(&self, r: &RemRow) -> Remittance {
        let d = self.token_decimals();
        let exp = currency_exponent(&r.currency);
        let authorization_request = match (&self.inner.chain, r.state, r.custodial) {
            (Some(c), State::Quoted, false) => Some(AuthorizationRequest {
                token: addr_text(c.token),
                chain_id: c.chain_id,
                domain_name: c.domain.name.clone(),
                domain_version: c.domain.version.clone(),
                from: r.sender_address.clone(),
                to: addr_text(c.escrow),
                value_base_units: r.total_base.to_string(),
                valid_after_unix_s: 0,
                valid_before_unix_s: r.expiry_unix_s,
                nonce: r.id.clone(),
            }),
            _ => None,
        };
        Remittance {
            id: r.id.clone(),
            state: r.state,
            quote_id: r.quote_id.clone(),
            sender_user_id: r.sender_user_id.clone(),
            sender_address: r.sender_address.clone(),
            custodial: r.custodial,
            partner_id: r.partner_id,
            recipient_phone: r.recipient_phone.clone(),
            recipient_name: r.recipient_name.clone(),
            country: r.country.clone(),
            currency: r.currency.clone(),
            payout_method: r.payout_method,
            token_decimals: d,
            send_amount: tokens(r.send_base, d).normalize().to_string(),
            fee: tokens(r.fee_base, d).normalize().to_string(),
            total: tokens(r.total_base, d).normalize().to_string(),
            total_base_units: r.total_base.to_string(),
            // remesa_wallet: no conversion, the recipient gets exactly the tokens sent
            payout_amount: if r.payout_method == PayoutMethod::RemesaWallet {
                tokens(r.send_base, d).normalize().to_string()
            } else {
                Decimal::new(r.payout_minor, exp).to_string()
            },
            rate: r.rate.clone(),
            expiry_unix_s: r.expiry_unix_s,
            claim_hash: r.claim_hash.clone(),
            payout_reference: r.payout_reference.clone(),
            failure_reason: r.failure_reason.clone(),
            lock_tx_hash: r.lock_tx_hash.clone(),
            release_tx_hash: r.release_tx_hash.clone(),
            refund_tx_hash: r.refund_tx_hash.clone(),
            authorization_request,
            recipient_address: r.recipient_address.clone(),
            created_at_unix_ms: r.created_at_unix_ms,
            updated_at_unix_ms: r.updated_at_unix_ms,
        }
    }
}

/// The Remesa (custodial) wallet of the first registered user with this phone, or
/// [`EngineError::RecipientNotRegistered`].
async fn p2p_recipient(conn: &mut sqlx::AnyConnection, phone: &PhoneNumber) -> Result<Address> {
    let row = sqlx::query(
        "SELECT address FROM users WHERE phone = $1 AND custody = 'custodial' ORDER BY created_at_unix_ms LIMIT 1",
    )
    .bind(phone.as_str())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| EngineError::RecipientNotRegistered {
        phone: phone.as_str().to_owned(),
    })?;
    let a: String = row.try_get(0)?;
    parse_address("recipient address", &a)
}

enum BindVal {
    Text(String),
    Int(i64),
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

/// Marks quote `quote_id` as used by remittance `remittance_id`; a quote is single-use, so a second use is
/// [`EngineError::QuoteUsed`].
async fn use_quote(conn: &mut sqlx::AnyConnection, quote_id: &str, remittance_id: &str) -> Result<()> {
    let used = sqlx::query("UPDATE quotes SET used_by = $1 WHERE id = $2 AND used_by IS NULL")
        .bind(remittance_id)
        .bind(quote_id)
        .execute(&mut *conn)
        .await?;
    if used.rows_affected() != 1 {
        return Err(EngineError::QuoteUsed);
    }
    Ok(())
}
