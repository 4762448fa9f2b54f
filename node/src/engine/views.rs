//! The engine's row types and shared helpers: the remittance row (`RemRow`, read by column name) and its API
//! view (`to_api`), users, partners and rates from rows, the shared limits and parsers.

use std::str::FromStr;

use alloy::primitives::{Address, B256, U256};
use rust_decimal::Decimal;

use super::claims::ClaimKey;
use super::state::State;
use super::types::*;
use super::{Engine, EngineError, Result, parse_state};
use crate::chain::Terms;
use crate::domain::{ClaimSecret, PayoutMethod, currency_exponent};
use crate::store::partners::{PartnerRow, RateRow};
use crate::store::remittances::{self, RemittanceRow};
use crate::store::users::UserRow;
use crate::store::{Dialect, StoreError, stored_u64};

/// Most rates one call posts, by the operator or the partner: a full card of them fits the request body's default
/// limit (64 KiB) at their longest.
pub(crate) const RATES_PER_CALL_MAX: usize = 200;
/// The fee of a P2P transfer into a Remesa wallet (payout method `remesa_wallet`), in token base units: none. The
/// node's relayer pays the gas; no partner and no FX are involved, so the recipient gets exactly what is sent.
pub const P2P_FEE_BASE_UNITS: i64 = 0;
/// Domain separator of P2P remittance ids (so they can never collide with escrow terms hashes).
pub(super) const P2P_ID_TAG: &[u8] = b"remesa.p2p.v1";
pub(super) const RATE_VALIDITY_S_MAX: u64 = 30 * 24 * 3600;
pub(super) const NAME_LEN_MAX: usize = 100;
/// How long an `Idempotency-Key` (and an unused expired quote) is kept: retries must come within this window.
pub const IDEMPOTENCY_RETENTION_MS: i64 = crate::store::idempotency::RETENTION_MS;

/// A remittance row as stored (no pickup code: see `engine::claims`).
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
    pub created_at_unix_ms: i64,
    pub updated_at_unix_ms: i64,
    /// `remesa_wallet` only: the recipient's custodial address.
    pub recipient_address: Option<String>,
    /// The escrow terms' settlement address and partner signer (`None` for a P2P transfer).
    pub settlement_address: Option<String>,
    pub partner_signer: Option<String>,
}

impl std::fmt::Debug for RemRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemRow")
            .field("id", &self.id)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

pub(super) fn corrupt(what: &str) -> EngineError {
    EngineError::Internal(format!("stored remittance field {what} is corrupt"))
}

impl TryFrom<RemittanceRow> for RemRow {
    type Error = EngineError;

    fn try_from(r: RemittanceRow) -> Result<RemRow> {
        Ok(RemRow {
            state: parse_state(&r.state)?,
            quote_id: r.quote_id,
            sender_user_id: r.sender_user_id,
            sender_address: r.sender_address,
            custodial: r.custodial != 0,
            partner_id: u64::try_from(r.partner_id).map_err(|_| corrupt("partner_id"))?,
            recipient_phone: r.recipient_phone,
            recipient_name: r.recipient_name,
            country: r.country,
            currency: r.currency,
            payout_method: PayoutMethod::parse(&r.payout_method).ok_or_else(|| corrupt("payout_method"))?,
            send_base: r.send_amount_base_units,
            fee_base: r.fee_base_units,
            total_base: r.total_base_units,
            payout_minor: r.payout_amount_minor,
            rate: r.rate,
            expiry_unix_s: u64::try_from(r.expiry_unix_s).map_err(|_| corrupt("expiry"))?,
            claim_hash: r.claim_hash,
            payout_reference: r.payout_reference,
            failure_reason: r.failure_reason,
            lock_tx_hash: r.lock_tx_hash,
            release_tx_hash: r.release_tx_hash,
            refund_tx_hash: r.refund_tx_hash,
            created_at_unix_ms: r.created_at_unix_ms,
            updated_at_unix_ms: r.updated_at_unix_ms,
            recipient_address: r.recipient_address,
            settlement_address: r.settlement_address,
            partner_signer: r.partner_signer,
            id: r.id,
        })
    }
}

impl RemRow {
    /// The escrow terms as the sender signed them. A row without a settlement address or partner signer (a P2P
    /// transfer, or a corrupt row) has none: an error, never a default.
    pub fn terms(&self) -> Result<Terms> {
        let address = |what: &str, v: &Option<String>| -> Result<Address> {
            v.as_deref()
                .and_then(|s| Address::from_str(s).ok())
                .ok_or_else(|| corrupt(what))
        };
        Ok(Terms {
            sender: Address::from_str(&self.sender_address).map_err(|_| corrupt("sender_address"))?,
            amount_base_units: U256::from(u64::try_from(self.total_base).map_err(|_| corrupt("total"))?),
            partner_id: self.partner_id,
            expiry_unix_s: self.expiry_unix_s,
            settlement: address("settlement_address", &self.settlement_address)?,
            partner_signer: address("partner_signer", &self.partner_signer)?,
            claim_hash: B256::from_str(&self.claim_hash).map_err(|_| corrupt("claim_hash"))?,
        })
    }

    pub fn remittance_b256(&self) -> Result<B256> {
        B256::from_str(&self.id).map_err(|_| corrupt("id"))
    }

    /// The claim secret (salt and pickup code) of this remittance under `key`, checked against the stored claim
    /// hash: a node started with another keystore cannot release what this one created, and says so.
    pub fn claim_secret(&self, key: &ClaimKey) -> Result<ClaimSecret> {
        let secret = key.secret(&self.quote_id);
        let stored = B256::from_str(&self.claim_hash).map_err(|_| corrupt("claim_hash"))?;
        if secret.claim_hash() != stored {
            return Err(EngineError::Internal(format!(
                "remittance {}: its claim hash was not made by this node's claim key (another keystore, or a \
                 remittance from before migration 0008)",
                self.id
            )));
        }
        Ok(secret)
    }
}

/// One remittance, parsed.
pub(crate) async fn load(conn: &mut sqlx::AnyConnection, id: &str) -> Result<Option<RemRow>> {
    remittances::get(conn, id)
        .await?
        .map(RemRow::try_from)
        .transpose()
}

/// [`load`], row-locked on PostgreSQL until the transaction ends.
pub(crate) async fn load_for_update(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
    id: &str,
) -> Result<Option<RemRow>> {
    remittances::get_for_update(conn, dialect, id)
        .await?
        .map(RemRow::try_from)
        .transpose()
}

pub(super) fn tokens(base: i64, decimals: u8) -> Decimal {
    Decimal::new(base, u32::from(decimals))
}

pub(super) fn to_base(d: Decimal, decimals: u8) -> Result<i64> {
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

pub(super) fn parse_decimal(what: &str, s: &str) -> Result<Decimal> {
    let s = s.trim();
    if s.is_empty() || s.len() > 40 || s.contains(['e', 'E']) {
        return Err(EngineError::Invalid(format!("{what} must be a decimal number")));
    }
    Decimal::from_str(s).map_err(|_| EngineError::Invalid(format!("{what} must be a decimal number")))
}

/// A quote's send amount: a positive decimal with at most the token's decimals.
pub(super) fn send_amount(s: &str, decimals: u8) -> Result<Decimal> {
    let send = parse_decimal("send_amount", s)?;
    if send <= Decimal::ZERO {
        return Err(EngineError::Invalid("send_amount must be positive".into()));
    }
    if send.normalize().scale() > u32::from(decimals) {
        return Err(EngineError::Invalid(format!(
            "send_amount has at most {decimals} decimal places"
        )));
    }
    Ok(send)
}

pub(super) fn country(s: &str) -> Result<String> {
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

pub(super) fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

pub(super) fn text(what: &str, s: &str, max: usize) -> Result<String> {
    let t = s.trim();
    if t.is_empty() || t.chars().count() > max || t.chars().any(char::is_control) {
        return Err(EngineError::Invalid(format!(
            "{what} must be 1 to {max} printable characters"
        )));
    }
    Ok(t.to_owned())
}

pub(super) fn parse_address(what: &str, s: &str) -> Result<Address> {
    let a =
        Address::from_str(s.trim()).map_err(|_| EngineError::Invalid(format!("{what} is not an address")))?;
    if a.is_zero() {
        return Err(EngineError::Invalid(format!("{what} is the zero address")));
    }
    Ok(a)
}

pub(super) use crate::store::text::addr_text;

impl From<UserRow> for User {
    fn from(r: UserRow) -> User {
        User {
            id: r.id,
            channel: r.channel,
            external_id: r.external_id,
            phone: r.phone,
            display_name: r.display_name,
            lang: r.lang,
            custody: r.custody,
            address: r.address,
            created_at_unix_ms: r.created_at_unix_ms,
        }
    }
}

/// A partner from its row; a list member that is not a payout method is a corrupt row.
pub(super) fn partner_from(r: PartnerRow) -> Result<Partner> {
    let split = |s: &str| -> Vec<String> {
        s.split(',')
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let payout_methods = r
        .payout_methods
        .split(',')
        .filter(|x| !x.is_empty())
        .map(|m| {
            PayoutMethod::parse(m).ok_or_else(|| StoreError::Corrupt(format!("partner payout method {m:?}")))
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Partner {
        id: stored_u64(r.id, "partner id")?,
        name: r.name,
        countries: split(&r.countries),
        currencies: split(&r.currencies),
        payout_methods,
        public_key: r.public_key,
        webhook_url: r.webhook_url,
        signer_address: r.signer_address.unwrap_or_else(|| r.settlement_address.clone()),
        settlement_address: r.settlement_address,
        status: r.status,
        created_at_unix_ms: r.created_at_unix_ms,
    })
}

/// A rate from its row.
pub(super) fn rate_from(r: RateRow) -> Result<Rate> {
    Ok(Rate {
        partner_id: stored_u64(r.partner_id, "rate partner_id")?,
        payout_method: PayoutMethod::parse(&r.payout_method)
            .ok_or_else(|| StoreError::Corrupt(format!("rate payout method {:?}", r.payout_method)))?,
        fee_bps: u32::try_from(r.fee_bps)
            .map_err(|_| StoreError::Corrupt(format!("rate fee_bps = {}", r.fee_bps)))?,
        country: r.country,
        currency: r.currency,
        rate: r.rate,
        fee_fixed: r.fee_fixed,
        send_min: r.send_min,
        send_max: r.send_max,
        valid_until_unix_ms: r.valid_until_unix_ms,
    })
}

impl Engine {
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
