//! The engine's public data types (also the HTTP API's JSON bodies).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::state::State;
use crate::domain::{PayoutMethod, PhoneNumber};

/// A sender known to the node: a chat user with a custodial account, or a registered self-custody address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0193f0c1-0000-7000-8000-000000000001", "channel": "whatsapp", "external_id": "14155552671",
    "phone": "+14155552671", "display_name": "Alice", "lang": "es", "custody": "custodial",
    "address": "0x70997970c51812dc3a010c7d01b50e0d17dc79c8", "created_at_unix_ms": 1_789_999_000_000_i64
}))]
pub struct User {
    pub id: String,
    /// `whatsapp`, `telegram`, `terminal`, `api`.
    pub channel: String,
    /// The platform's user id (WhatsApp wa_id or BSUID, Telegram user id, …).
    pub external_id: String,
    /// E.164.
    pub phone: Option<String>,
    pub display_name: Option<String>,
    pub lang: Option<String>,
    /// `custodial` (the node holds the key) or `self`.
    pub custody: String,
    /// The user's account (0x-hex).
    pub address: String,
    pub created_at_unix_ms: i64,
}

/// Registration of a chat user (idempotent on channel + external id).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"channel": "whatsapp", "external_id": "14155552671", "phone": "+14155552671", "display_name": "Alice"}))]
pub struct NewUser {
    /// `whatsapp`, `telegram`, `terminal`, `api`, or another of 1 to 32 of `a-z`, `0-9`, `_`.
    #[schema(pattern = "^[a-z0-9_]{1,32}$")]
    pub channel: String,
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub external_id: String,
    /// E.164 (`+15551234567`); parsed when the request is read, refused (422) when invalid.
    #[schema(value_type = Option<String>)]
    pub phone: Option<PhoneNumber>,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub display_name: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 16,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub lang: Option<String>,
    /// A self-custody address; when absent the node derives a custodial account.
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub self_custody_address: Option<String>,
}

/// A custodial or self-custody balance as the ledger knows it (indexed chain state).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "address": "0x70997970c51812dc3a010c7d01b50e0d17dc79c8", "balance": "1000.000000",
    "balance_base_units": "1000000000", "available": "898.000000", "available_base_units": "898000000",
    "token_decimals": 6
}))]
pub struct Balance {
    pub address: String,
    /// Whole tokens, exact decimal string.
    pub balance: String,
    pub balance_base_units: String,
    /// Balance minus what pending remittances will pull.
    pub available: String,
    pub available_base_units: String,
    pub token_decimals: u8,
}

/// A cash-out partner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Partner {
    pub id: u64,
    pub name: String,
    /// ISO 3166-1 alpha-2 codes.
    pub countries: Vec<String>,
    /// ISO 4217 codes.
    pub currencies: Vec<String>,
    pub payout_methods: Vec<PayoutMethod>,
    /// Ed25519 public key, 32 bytes base64 (standard alphabet).
    pub public_key: String,
    pub webhook_url: Option<String>,
    pub settlement_address: String,
    /// The partner's EVM signer (EOA or ERC-1271 contract): its EIP-712 `Decline(id)` signature lets a sender be
    /// refunded before expiry. Bound in each remittance's terms with the settlement address.
    pub signer_address: String,
    /// `active` or `suspended`.
    pub status: String,
    pub created_at_unix_ms: i64,
}

/// Registration of a partner by the operator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": 1, "name": "Banco Demo", "countries": ["GT"], "currencies": ["GTQ"],
    "payout_methods": ["cash_pickup", "bank_deposit"],
    "public_key": "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
    "webhook_url": "http://127.0.0.1:9100/webhooks/remesa",
    "settlement_address": "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc"
}))]
pub struct NewPartner {
    /// 1 to 2^63 − 1.
    #[schema(minimum = 1, maximum = 9_223_372_036_854_775_807_i64)]
    pub id: u64,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub name: String,
    /// 1 to 100 ISO 3166-1 alpha-2 codes.
    #[schema(value_type = Vec<CountryCode>, min_items = 1, max_items = 100)]
    pub countries: Vec<String>,
    /// 1 to 100 ISO 4217 codes.
    #[schema(value_type = Vec<CurrencyCode>, min_items = 1, max_items = 100)]
    pub currencies: Vec<String>,
    #[schema(min_items = 1)]
    pub payout_methods: Vec<PayoutMethod>,
    /// The partner's Ed25519 public key, 32 bytes in base64.
    #[schema(pattern = "^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$")]
    pub public_key: String,
    /// Where the node POSTs the partner's signed webhooks: an http(s) URL.
    #[schema(max_length = 2048, pattern = "^https?://[!-~]+$")]
    pub webhook_url: Option<String>,
    /// Where releases pay; part of every remittance's terms (the escrow's owner cannot redirect locked money).
    /// Not zero, the escrow or the token.
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub settlement_address: String,
    /// The partner's EVM signer for cooperative cancels (EOA or ERC-1271); default: the settlement address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
    pub signer_address: Option<String>,
}

/// An ISO 3166-1 alpha-2 country code, any case (documentation type of the request schemas).
#[derive(Debug, ToSchema)]
#[schema(pattern = "^[A-Za-z]{2}$", example = "GT")]
pub struct CountryCode(pub String);

/// An ISO 4217 currency code, any case (documentation type of the request schemas).
#[derive(Debug, ToSchema)]
#[schema(pattern = "^[A-Za-z]{3}$", example = "GTQ")]
pub struct CurrencyCode(pub String);

/// One posted rate: per corridor (country + currency) and payout method.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "country": "GT", "currency": "GTQ", "payout_method": "cash_pickup", "rate": "7.6543",
    "fee_fixed": "1.50", "fee_bps": 75, "send_min": "1", "send_max": "2500", "valid_for_s": 86400
}))]
pub struct RateInput {
    #[schema(pattern = "^[A-Za-z]{2}$")]
    pub country: String,
    #[schema(pattern = "^[A-Za-z]{3}$")]
    pub currency: String,
    pub payout_method: PayoutMethod,
    /// Payout currency per 1 token (USD), a positive decimal string.
    #[schema(pattern = "^([1-9][0-9]{0,17}(\\.[0-9]{1,12})?|0?\\.[0-9]{0,11}[1-9])$")]
    pub rate: String,
    /// Fixed fee in tokens, a decimal string (0 or more, at most 6 decimals).
    #[schema(pattern = "^[0-9]{1,18}(\\.[0-9]{1,6})?$")]
    pub fee_fixed: String,
    /// Variable fee in basis points of the send amount, at most 5000.
    #[serde(default)]
    #[schema(maximum = 5000)]
    pub fee_bps: u32,
    /// Smallest send in tokens: positive, at most 6 decimals.
    #[schema(
        pattern = "^([1-9][0-9]{0,17}(\\.[0-9]{1,6})?|0?\\.([1-9][0-9]{0,5}|0[1-9][0-9]{0,4}|00[1-9][0-9]{0,3}|000[1-9][0-9]{0,2}|0000[1-9][0-9]?|00000[1-9]))$"
    )]
    pub send_min: String,
    /// Largest send in tokens, at least `send_min`; at most 6 decimals.
    #[schema(
        pattern = "^([1-9][0-9]{0,17}(\\.[0-9]{1,6})?|0?\\.([1-9][0-9]{0,5}|0[1-9][0-9]{0,4}|00[1-9][0-9]{0,3}|000[1-9][0-9]{0,2}|0000[1-9][0-9]?|00000[1-9]))$"
    )]
    pub send_max: String,
    /// How long the rate stays valid, seconds (at most 30 days).
    #[schema(minimum = 1, maximum = 2_592_000)]
    pub valid_for_s: u64,
}

/// A stored rate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Rate {
    pub partner_id: u64,
    pub country: String,
    pub currency: String,
    pub payout_method: PayoutMethod,
    pub rate: String,
    pub fee_fixed: String,
    pub fee_bps: u32,
    pub send_min: String,
    pub send_max: String,
    pub valid_until_unix_ms: i64,
}

/// Ask for a firm quote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"send_amount": "100", "country": "GT", "currency": "GTQ", "payout_method": "cash_pickup"}))]
pub struct QuoteRequest {
    /// Amount the recipient's side receives the value of, in tokens (USD), decimal string. The fee comes on top.
    #[schema(
        pattern = "^([1-9][0-9]{0,17}(\\.[0-9]{1,6})?|0?\\.([1-9][0-9]{0,5}|0[1-9][0-9]{0,4}|00[1-9][0-9]{0,3}|000[1-9][0-9]{0,2}|0000[1-9][0-9]?|00000[1-9]))$"
    )]
    pub send_amount: String,
    /// Recipient country, ISO 3166-1 alpha-2.
    #[schema(pattern = "^[A-Za-z]{2}$")]
    pub country: String,
    /// Payout currency; may be omitted when the country's partners pay out in one currency.
    #[schema(pattern = "^[A-Za-z]{3}$")]
    pub currency: Option<String>,
    /// `remesa_wallet` sends USD stablecoin straight into the recipient's Remesa wallet: an instant, gasless P2P
    /// transfer with no partner, no FX and no fee; it needs `recipient_phone` of a registered user.
    pub payout_method: PayoutMethod,
    /// Requested validity in seconds, up to 2^32 − 1; the node's `quote_ttl_s_max` caps what it grants.
    #[schema(minimum = 0, maximum = 4_294_967_295_u32)]
    pub ttl_s: Option<u32>,
    /// The recipient's phone (E.164). Required for `remesa_wallet` (the quote is bound to it and refused when the
    /// phone has no Remesa wallet); ignored for the other methods. When given it must be a valid number (422).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub recipient_phone: Option<PhoneNumber>,
}

/// A firm, single-use quote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0193f0c2-5a7e-7cc1-9d0e-4b8f6a1d2e3f", "partner_id": 1, "partner_name": "Banco Demo",
    "country": "GT", "currency": "GTQ", "payout_method": "cash_pickup", "token_decimals": 6,
    "send_amount": "100", "fee": "2.25", "fee_fixed": "1.50", "fee_variable": "0.75", "fee_bps": 75,
    "total": "102.25", "rate": "7.6543", "payout_amount": "765.43", "mid_market_rate": "7.70",
    "all_in_cost": "2.843507", "all_in_cost_percent": "2.78",
    "rounding": "fee rounded up to the token base unit; payout rounded down to the currency minor unit",
    "expires_at_unix_ms": 1_790_000_000_000_i64, "created_at_unix_ms": 1_789_999_700_000_i64
}))]
pub struct Quote {
    pub id: String,
    pub partner_id: u64,
    pub partner_name: String,
    pub country: String,
    pub currency: String,
    pub payout_method: PayoutMethod,
    pub token_decimals: u8,
    /// Tokens converted for the recipient.
    pub send_amount: String,
    /// Total fee (fixed + variable), rounded up to the token's base unit.
    pub fee: String,
    pub fee_fixed: String,
    pub fee_variable: String,
    pub fee_bps: u32,
    /// send_amount + fee: what the sender pays (and the escrow locks).
    pub total: String,
    /// Payout currency per token.
    pub rate: String,
    /// What the recipient gets, rounded down to the currency's minor unit.
    pub payout_amount: String,
    pub mid_market_rate: String,
    /// total − payout at mid-market, in tokens.
    pub all_in_cost: String,
    pub all_in_cost_percent: String,
    pub rounding: String,
    pub expires_at_unix_ms: i64,
    pub created_at_unix_ms: i64,
    /// `remesa_wallet` quotes only: the recipient the quote is bound to (E.164).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_phone: Option<String>,
}

/// Who pays.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SenderRef {
    /// A registered user: custodial users are signed for by the node.
    User { user_id: String },
    /// A self-custody address; authorize afterwards with a signature made by `remesa-wallet`. `name`: the sender's
    /// full name, screened against the sanctions lists (else a registered user's name; required when screening
    /// is).
    Address {
        #[schema(pattern = "^0x[0-9a-fA-F]{40}$")]
        address: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schema(
            min_length = 1,
            max_length = 100,
            pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
        )]
        name: Option<String>,
    },
}

/// Who receives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Recipient {
    /// E.164 (parsed when the request is read: an invalid number is refused with 422 before the engine runs).
    #[schema(value_type = String)]
    pub phone: PhoneNumber,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub name: String,
    /// Bank account / mobile-money number, when the payout method needs one.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub account: Option<String>,
}

/// Create a remittance from a quote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "quote_id": "0193f0c2-5a7e-7cc1-9d0e-4b8f6a1d2e3f",
    "sender": {"kind": "user", "user_id": "0193f0c1-0000-7000-8000-000000000001"},
    "recipient": {"phone": "+50255550101", "name": "Maria Lopez"}
}))]
pub struct CreateRemittance {
    pub quote_id: String,
    pub sender: SenderRef,
    pub recipient: Recipient,
}

/// A self-custody sender's EIP-3009 `ReceiveWithAuthorization` signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "signature": "0x3c1f8a2b9d4e5f60718293a4b5c6d7e83c1f8a2b9d4e5f60718293a4b5c6d7e83c1f8a2b9d4e5f60718293a4b5c6d7e83c1f8a2b9d4e5f60718293a4b5c6d7e81b",
    "valid_after_unix_s": 0, "valid_before_unix_s": 1_790_086_400
}))]
pub struct AuthorizationInput {
    /// 65 bytes r‖s‖v, hex (`v`: 0, 1, 27, 28, or 35 and above).
    #[schema(pattern = "^(0x)?[0-9a-fA-F]{128}(0[01]|1[bBcC]|2[3-9a-fA-F]|[3-9a-fA-F][0-9a-fA-F])$")]
    pub signature: String,
    pub valid_after_unix_s: u64,
    pub valid_before_unix_s: u64,
}

/// What a self-custody sender signs (EIP-3009 ReceiveWithAuthorization on the token's EIP-712 domain).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AuthorizationRequest {
    pub token: String,
    pub chain_id: u64,
    pub domain_name: String,
    pub domain_version: String,
    pub from: String,
    /// The escrow (payee).
    pub to: String,
    pub value_base_units: String,
    pub valid_after_unix_s: u64,
    pub valid_before_unix_s: u64,
    /// The remittance id.
    pub nonce: String,
}

/// A remittance as the API shows it. The pickup code is never part of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": "0x5f0c6b1d8f8f4e1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192",
    "state": "payout_assigned", "quote_id": "0193f0c2-5a7e-7cc1-9d0e-4b8f6a1d2e3f",
    "sender_user_id": "0193f0c1-0000-7000-8000-000000000001",
    "sender_address": "0x70997970c51812dc3a010c7d01b50e0d17dc79c8", "custodial": true, "partner_id": 1,
    "recipient_phone": "+50255550101", "recipient_name": "Maria Lopez", "country": "GT", "currency": "GTQ",
    "payout_method": "cash_pickup", "token_decimals": 6, "send_amount": "100", "fee": "2", "total": "102",
    "total_base_units": "102000000", "payout_amount": "765.43", "rate": "7.6543", "expiry_unix_s": 1_790_086_400,
    "claim_hash": "0x8a35acfbc15ff81a39ae7d344fd709f28e8600b4aa8c65c6b64bfe7fe36bd19b",
    "payout_reference": null, "failure_reason": null,
    "lock_tx_hash": "0x46f91e2faa28e2f21635a2a9d481cd9340a08da4cc7d5d3b958c15149d4ee5bf",
    "release_tx_hash": null, "refund_tx_hash": null, "authorization_request": null,
    "created_at_unix_ms": 1_790_000_000_000_i64, "updated_at_unix_ms": 1_790_000_004_000_i64
}))]
pub struct Remittance {
    /// The escrow terms hash (0x + 64 hex).
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
    pub token_decimals: u8,
    pub send_amount: String,
    pub fee: String,
    pub total: String,
    pub total_base_units: String,
    pub payout_amount: String,
    pub rate: String,
    pub expiry_unix_s: u64,
    pub claim_hash: String,
    pub payout_reference: Option<String>,
    pub failure_reason: Option<String>,
    pub lock_tx_hash: Option<String>,
    /// The transaction that paid out: the escrow release to the partner, or (`remesa_wallet`) the P2P transfer.
    pub release_tx_hash: Option<String>,
    pub refund_tx_hash: Option<String>,
    /// Present while a self-custody sender still has to sign.
    pub authorization_request: Option<AuthorizationRequest>,
    /// `remesa_wallet` only: the recipient's Remesa (custodial) wallet address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_address: Option<String>,
    pub created_at_unix_ms: i64,
    pub updated_at_unix_ms: i64,
}

/// One entry of the transition feed (`GET /v1/events`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "seq": 42, "remittance_id": "0x5f0c…", "from": "payout_accepted", "to": "paid",
    "cause": "partner_completed", "detail": {"reference": "counter 12"}, "at_unix_ms": 1_790_000_000_000_i64,
    "partner_id": 1, "sender_user_id": "0193f0c1-0000-7000-8000-000000000001"
}))]
pub struct TransitionEvent {
    /// Global, strictly increasing; pass the last one seen as `after`.
    pub seq: i64,
    pub remittance_id: String,
    pub from: Option<State>,
    pub to: State,
    /// Why: `created`, `authorized`, `deposited`, `assigned`, `partner_accepted`, `partner_completed`,
    /// `partner_failed`, `partner_declined`, `released`, `expired`, `refunded`, `cancelled`, `deposit_failed`, `reorg`, …
    pub cause: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub at_unix_ms: i64,
    pub partner_id: u64,
    pub sender_user_id: Option<String>,
}

/// Proof a partner paid the recipient. `Debug` hides the pickup code.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[schema(example = json!({"kind": "pickup_code", "code": "7KQ2-M9XD-4HTP"}))]
pub enum PayoutProof {
    /// The recipient's pickup code (cash).
    PickupCode { code: String },
    /// A bank / mobile-money reference.
    Reference { reference: String },
}

impl std::fmt::Debug for PayoutProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PayoutProof::PickupCode { .. } => f.write_str("PickupCode(<redacted>)"),
            PayoutProof::Reference { reference } => {
                f.debug_struct("Reference").field("reference", reference).finish()
            }
        }
    }
}

/// One on-chain settlement to a partner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Settlement {
    pub event_id: String,
    pub partner_id: u64,
    pub settlement_address: String,
    pub amount: String,
    pub amount_base_units: String,
    pub release_count: u64,
    pub tx_hash: String,
    pub block_number: u64,
    pub at_unix_ms: i64,
}

/// Filter of [`super::Engine::list_remittances`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemittanceFilter {
    pub sender_user_id: Option<String>,
    /// E.164.
    pub recipient_phone: Option<String>,
    pub sender_address: Option<String>,
    pub partner_id: Option<u64>,
    pub states: Vec<State>,
}

/// A page of a cursor-paginated list; `next_cursor` is absent on the last page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}
