//! What the chat needs from the remittance engine, as a trait: the conversation and the notifier are written against
//! it, and [`super::engine_adapter`] implements it over the node's engine.

use std::future::Future;
use std::pin::Pin;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::model::Platform;
use super::render::{QuoteView, RemittanceView};
use crate::domain::PayoutMethod;
use crate::domain::PhoneNumber;

/// A boxed future, so the trait can be used as `Arc<dyn ChatBackend>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Engine errors the conversation tells apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The quote expired or was used.
    #[error("quote expired or already used")]
    QuoteExpired,
    /// Not enough funds in the sender's wallet.
    #[error("insufficient funds")]
    InsufficientFunds {
        /// Current balance.
        balance: Decimal,
        /// Needed.
        needed: Decimal,
        /// Currency.
        currency: String,
    },
    /// No partner serves that corridor/method, or the amount is outside limits; the text is user-facing.
    #[error("cannot quote: {0}")]
    NoQuote(String),
    /// No partner serves that corridor and payout method for this amount.
    #[error("no partner serves this corridor and payout method for this amount")]
    NoRoute,
    /// A transfer into a Remesa wallet, but the recipient's phone has none.
    #[error("{phone} has no Remesa wallet")]
    RecipientNotRegistered {
        /// The recipient's phone (E.164).
        phone: String,
    },
    /// The send would pass a sending limit of the sender's KYC tier.
    #[error("over the {window} limit")]
    LimitExceeded {
        /// Which limit.
        window: crate::engine::LimitWindow,
        /// The limit, USD.
        limit: Decimal,
        /// What can still be sent in that window, USD.
        left: Decimal,
        /// The sender's KYC tier (a higher one raises the limits).
        tier: u8,
    },
    /// The amount carries the travel rule's data and the sender has not verified their identity.
    #[error("the sender's verified identity is needed from {threshold} USD")]
    TravelRuleDataRequired {
        /// The corridor's threshold, USD.
        threshold: Decimal,
    },
    /// The corridor needs a verified recipient, and this one is not.
    #[error("{phone} must verify their identity first")]
    RecipientKycRequired {
        /// The recipient's phone (E.164).
        phone: String,
    },
    /// An error reported past the period to report it (180 days).
    #[error("reported too late")]
    ReportTooLate,
    /// A value the user typed does not parse; the text says what is expected (English).
    #[error("invalid: {0}")]
    Invalid(String),
    /// Sanctions screening needs the sender's full name, and the engine has none.
    #[error("the sender's full name is needed")]
    SenderNameRequired,
    /// Unknown remittance.
    #[error("not found")]
    NotFound,
    /// The remittance is past the point where it can be cancelled.
    #[error("cannot cancel in state {state}")]
    NotCancellable {
        /// Current state.
        state: String,
    },
    /// Anything else (database, chain): retried, then the user is told to try later.
    #[error("internal: {0}")]
    Internal(String),
}

/// The engine user behind a chat identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineUser {
    /// Engine user id.
    pub user_id: String,
    /// Custodial wallet address (0x…).
    pub wallet_address: String,
    /// True when this call created the user.
    pub created: bool,
    /// The engine's display name (e.g. demo users seeded by `remesa dev`).
    pub display_name: Option<String>,
}

/// A wallet balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// Amount in major units.
    pub amount: Decimal,
    /// Currency (`USD`).
    pub currency: String,
}

/// A complete send request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteRequest {
    /// Amount to deliver (before fees), in `currency`.
    pub amount: Decimal,
    /// Send currency.
    pub currency: String,
    /// Recipient phone.
    pub recipient_phone: PhoneNumber,
    /// Payout method.
    pub payout_method: PayoutMethod,
    /// Recipient name.
    pub recipient_name: Option<String>,
}

/// One transition of a remittance, from the engine's feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionEvent {
    /// Feed position (strictly increasing).
    pub seq: i64,
    /// Remittance id.
    pub remittance_id: String,
    /// New state.
    pub to_state: String,
    /// Transaction hash of the cause, if on chain.
    pub tx_hash: Option<String>,
    /// The engine's cause of the transition (`held`, `hold_released`, `hold_rejected`, `hold_expired`, …).
    #[serde(default)]
    pub cause: String,
    /// Why it failed, for `failed` (the engine's reason, e.g. a refused authorization or a blacklisted party).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// What notifications need to know about a remittance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationView {
    /// Short reference shown to users.
    pub reference: String,
    /// Engine user id of the sender.
    pub sender_user_id: String,
    /// Sender's display name or phone.
    pub sender_label: String,
    /// Recipient phone.
    pub recipient_phone: String,
    /// Engine state name now (`funds_locked`, `paid`, …).
    pub state: String,
    /// Payout amount.
    pub payout_amount: Decimal,
    /// Payout currency.
    pub payout_currency: String,
    /// Method.
    pub payout_method: PayoutMethod,
    /// Partner name.
    pub partner_name: String,
    /// Where to collect.
    pub where_to_collect: Option<String>,
    /// Cash pickups: [`super::model::PICKUP_CODE_PLACEHOLDER`], which delivery replaces with the code (revealed to
    /// the recipient only, never stored). `None` for other methods.
    pub pickup_code: Option<String>,
    /// Deadline before refund.
    pub expires_at_unix_s: Option<i64>,
}

/// At most this many remittances answer one lost-code request.
pub const COLLECTIBLE_MAX: u32 = 5;

/// A cash pickup the recipient can still collect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collectible {
    /// Full remittance id.
    pub remittance_id: String,
    /// Short reference.
    pub reference: String,
    /// The sender's engine user (none for a self-custody API sender).
    pub sender_user_id: Option<String>,
}

/// A customer's KYC as the chat needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KycView {
    /// The tier in force.
    pub tier: u8,
    /// The status of the latest request.
    pub status: crate::domain::KycStatus,
    /// What the next tier still needs.
    pub missing: Vec<crate::domain::KycField>,
}

/// The engine operations the chat uses.
pub trait ChatBackend: Send + Sync + 'static {
    /// Finds or creates the engine user (custodial wallet) for a chat identity. Idempotent per identity.
    fn ensure_user<'a>(
        &'a self,
        platform: Platform,
        user_key: &'a str,
        phone: Option<&'a PhoneNumber>,
        display_name: Option<&'a str>,
    ) -> BoxFuture<'a, Result<EngineUser, BackendError>>;

    /// Sets the user's full name (asked for when sanctions screening needs it); the engine screens it.
    fn set_sender_name<'a>(
        &'a self,
        user_id: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), BackendError>>;

    /// The user's KYC tier, status and what the next tier needs.
    fn kyc<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<KycView, BackendError>>;

    /// Gives one field for tier 1 (the engine parses and keeps it; complete fields that screen clear grant the tier).
    /// A value that does not parse is [`BackendError::Invalid`].
    fn submit_kyc_field<'a>(
        &'a self,
        user_id: &'a str,
        field: crate::domain::KycField,
        value: &'a str,
    ) -> BoxFuture<'a, Result<KycView, BackendError>>;

    /// Operators' KYC decisions at or after `since_unix_ms`, and where the next read starts.
    fn kyc_notices_since<'a>(
        &'a self,
        since_unix_ms: i64,
        limit: u32,
    ) -> BoxFuture<'a, Result<(Vec<crate::engine::customers::KycNotice>, i64), BackendError>>;

    /// Opens (or finds the open) error-resolution case on one of the user's transfers; returns the case id and when
    /// the answer is due (Unix s).
    fn open_case<'a>(
        &'a self,
        user_id: &'a str,
        remittance_id: &'a str,
        description: &'a str,
    ) -> BoxFuture<'a, Result<(String, i64), BackendError>>;

    /// The user's wallet balance.
    fn balance<'a>(&'a self, user_id: &'a str) -> BoxFuture<'a, Result<Balance, BackendError>>;

    /// A firm quote.
    fn quote<'a>(
        &'a self,
        user_id: &'a str,
        req: &'a QuoteRequest,
    ) -> BoxFuture<'a, Result<QuoteView, BackendError>>;

    /// Accepts a quote for the recipient of `req`: creates the remittance with `idempotency_key` (the chat message
    /// id, namespaced by platform), signs with the custodial key and queues the deposit. Calling again with the same
    /// key returns the same remittance.
    fn confirm<'a>(
        &'a self,
        user_id: &'a str,
        quote_id: &'a str,
        req: &'a QuoteRequest,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<RemittanceView, BackendError>>;

    /// Cancels a remittance (by reference, or the latest) before its funds are locked.
    fn cancel<'a>(
        &'a self,
        user_id: &'a str,
        reference: Option<&'a str>,
    ) -> BoxFuture<'a, Result<RemittanceView, BackendError>>;

    /// One remittance by reference, or the latest.
    fn remittance<'a>(
        &'a self,
        user_id: &'a str,
        reference: Option<&'a str>,
    ) -> BoxFuture<'a, Result<RemittanceView, BackendError>>;

    /// Recent remittances, newest first, at most `limit`.
    fn history<'a>(
        &'a self,
        user_id: &'a str,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<RemittanceView>, BackendError>>;

    /// Transitions after `cursor`, oldest first, at most `limit`.
    fn events_after<'a>(
        &'a self,
        cursor: i64,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<TransitionEvent>, BackendError>>;

    /// Details for notifications about one remittance.
    fn notification_view<'a>(
        &'a self,
        remittance_id: &'a str,
    ) -> BoxFuture<'a, Result<NotificationView, BackendError>>;

    /// Cash pickups waiting for the recipient with this phone (E.164) to collect them (locked, offered or accepted
    /// by the partner), newest first, at most [`COLLECTIBLE_MAX`].
    fn collectible_pickups<'a>(
        &'a self,
        recipient_phone: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Collectible>, BackendError>>;

    /// The recipient's pickup code (grouped, `ABCD-EFGH-JKMN`) of a cash pickup, derived when a message to the
    /// recipient is delivered; `None` for other payout methods. Never log it.
    fn pickup_code<'a>(
        &'a self,
        remittance_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, BackendError>>;
}
