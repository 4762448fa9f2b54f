//! The remittance engine: users, partners and rates, firm quotes, the remittance state machine with its
//! append-only transition feed, the double-entry ledger, custodial signing, and the chain event sink.
//!
//! Everything here is async and transactional. Chat (`crate::chat`) and the partner API (`crate::partner`) call
//! the public methods of [`Engine`]; the chain workers call its [`crate::chain::ChainEventSink`] implementation.
//!
//! Architecture invariant: a remittance changes state only through [`transition`] in the same database transaction
//! that writes its ledger entries and enqueues its chain work; every change is one row of
//! `remittance_transitions` (the feed read by chat notifications and partner webhooks).

pub mod accounts;
pub mod authorization;
pub mod cases;
pub mod claims;
pub mod custody;
pub mod customers;
pub mod ledger;
pub mod limits;
mod p2p;
mod partners;
mod payouts;
pub mod pricing;
mod quotes;
pub mod reconcile;
mod remittances;
pub mod screening;
mod sink;
pub mod state;
mod sweeper;
mod travel_rule;
pub mod types;
mod users;
mod views;
pub(crate) use views::RATES_PER_CALL_MAX;

use std::sync::Arc;

pub use crate::chain::ChainInfo;
pub use authorization::TokenDomain;
pub use claims::ClaimKey;
pub use custody::Custody;
pub use limits::{Headroom, LimitWindow};
pub use state::State;
pub use types::*;

use crate::chain::ChainError;
use crate::domain::RemittanceId;
use crate::store::{Db, StoreError, now_ms, transitions};

/// Engine limits and timings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    pub quote_ttl_s_max: u64,
    pub quote_ttl_s_default: u64,
    pub remittance_expiry_s: u64,
    /// A payout can be completed only until this long before the remittance's expiry, so its release is mined
    /// before the escrow lets the sender refund (the contract releases only before expiry).
    pub payout_cutoff_s: u64,
    /// A sender may cancel a locked remittance for a full refund this long after creating it, until the partner
    /// paid (Regulation E's 30 minutes).
    pub cancel_window_s: u64,
    pub page_limit_max: u32,
    /// Sending limits per KYC tier and corridor (checked rules; none: not limited).
    pub limits: Vec<crate::config::compliance::Limits>,
    /// Refuse sends while no sanctions list is loaded or the sender's name is unknown.
    pub sanctions_required: bool,
    /// Score from which a screened name is a hit, percent.
    pub sanctions_threshold_percent: u8,
    /// The fields KYC tier 1 needs (tier 2: these and a document reference, with an operator's approval).
    pub kyc_tier1_fields: Vec<crate::domain::KycField>,
    /// Corridors where the recipient must be a verified customer (tier 1 or more).
    pub kyc_recipient_countries: Vec<String>,
    /// From which amount (per corridor) a send carries the IVMS101 travel-rule data to its partner.
    pub travel_rule: crate::config::compliance::TravelRule,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            quote_ttl_s_max: 300,
            quote_ttl_s_default: 300,
            remittance_expiry_s: 24 * 3600,
            payout_cutoff_s: 600,
            cancel_window_s: 1800,
            page_limit_max: 200,
            limits: Vec::new(),
            sanctions_required: false,
            sanctions_threshold_percent: crate::config::compliance::SANCTIONS_THRESHOLD_PERCENT_DEFAULT,
            kyc_tier1_fields: crate::config::KycConfig::default().tier1().unwrap_or_default(),
            kyc_recipient_countries: Vec::new(),
            travel_rule: default_travel_rule(),
        }
    }
}

impl EngineConfig {
    pub fn from_config(c: &crate::config::Config) -> Self {
        Self {
            quote_ttl_s_max: c.quote_ttl_s_max,
            quote_ttl_s_default: c.quote_ttl_s_default.min(c.quote_ttl_s_max),
            remittance_expiry_s: c.remittance_expiry_s,
            payout_cutoff_s: c.payout_cutoff_s,
            cancel_window_s: c.cancel_window_s,
            page_limit_max: c.page_limit_max,
            // `Config::validate` checked them: a node never starts on rules that do not parse.
            limits: crate::config::compliance::parse_limits(&c.limits).unwrap_or_default(),
            sanctions_required: c.sanctions.required,
            sanctions_threshold_percent: c.sanctions.threshold_percent,
            // `Config::validate` checked them.
            kyc_tier1_fields: c.kyc.tier1().unwrap_or_default(),
            kyc_recipient_countries: c.kyc.recipient_countries().unwrap_or_default(),
            travel_rule: c.travel_rule.parse().unwrap_or_else(|_| default_travel_rule()),
        }
    }
}

fn default_travel_rule() -> crate::config::compliance::TravelRule {
    crate::config::TravelRuleConfig::default()
        .parse()
        .unwrap_or(crate::config::compliance::TravelRule {
            threshold_usd: rust_decimal::Decimal::from(1000),
            zero_threshold_countries: Vec::new(),
            vasp_name: "Remesa".into(),
        })
}

/// Errors of the engine. `Display` texts are safe to show to API clients (no secrets, no SQL).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the quote has expired")]
    QuoteExpired,
    #[error("the quote was already used")]
    QuoteUsed,
    #[error("no partner serves this corridor and payout method for this amount")]
    NoRoute,
    /// A P2P transfer (payout method `remesa_wallet`) to a phone that has no Remesa wallet.
    #[error(
        "{phone} is not a Remesa user, so there is no Remesa wallet to send to: choose cash pickup, bank deposit \
         or mobile wallet instead"
    )]
    RecipientNotRegistered { phone: String },
    #[error("insufficient funds: {available} available, {required} required")]
    InsufficientFunds { available: String, required: String },
    /// A sending limit of the sender's KYC tier in this corridor (`config::compliance`).
    #[error("over the {window} limit of {limit_usd} USD for this sender: {left_usd} USD can be sent now")]
    LimitExceeded {
        window: LimitWindow,
        limit_usd: rust_decimal::Decimal,
        left_usd: rust_decimal::Decimal,
        tier: u8,
        /// The sender's address.
        subject: String,
        send_usd: rust_decimal::Decimal,
        country: String,
    },
    /// A send at or above the travel-rule threshold whose sender has no verified identity (KYC tier 1 fields).
    #[error(
        "sends of {threshold_usd} USD or more to this corridor carry the sender's verified identity (travel rule): \
         verify it first (KYC tier 1)"
    )]
    TravelRuleDataRequired { threshold_usd: rust_decimal::Decimal },
    /// The corridor needs the recipient to be a verified customer, and the recipient's phone has none.
    #[error(
        "payouts to {country} go only to recipients who verified their identity with Remesa (KYC tier 1): ask \
         {phone} to write \"verify\" to Remesa's chat first"
    )]
    RecipientKycRequired { phone: String, country: String },
    /// Screening is required and the sender's name is not known (a chat profile without a name, an API sender
    /// without `sender.name`).
    #[error("the sender's full name is needed for sanctions screening")]
    SenderNameRequired,
    #[error("this idempotency key was used with a different request")]
    IdempotencyMismatch,
    #[error("not available: {0}")]
    Unavailable(String),
    #[error("storage error")]
    Store(#[from] StoreError),
    #[error("chain outbox error")]
    Chain(#[from] ChainError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl EngineError {
    /// A storage error that can pass (the database out of reach, out of space, restarting): the HTTP layers answer
    /// 503 with `Retry-After` instead of 500 (see [`StoreError::is_transient`]).
    pub fn is_transient(&self) -> bool {
        match self {
            EngineError::Store(e) => e.is_transient(),
            EngineError::Chain(e) => e.is_transient(),
            _ => false,
        }
    }
}

impl From<sqlx::Error> for EngineError {
    fn from(e: sqlx::Error) -> Self {
        EngineError::Store(StoreError::Sqlx(e))
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// The engine. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Db,
    cfg: EngineConfig,
    chain: Option<ChainInfo>,
    custody: Option<Custody>,
    /// Derived from `custody`: the claim secrets and code lookup hashes (`None` without custody).
    claim_key: Option<ClaimKey>,
    token_decimals_default: u8,
    /// The sanctions lists in memory (see `screening`).
    screening: screening::Screening,
}

impl Engine {
    /// An engine over `db`. Without `chain`, remittances cannot be created (quotes, users, partners work); without
    /// `custody`, custodial users cannot be registered or signed for, and no remittance to a partner can be created
    /// (its claim secret comes from the keystore's claim key).
    pub fn new(
        db: Db,
        cfg: EngineConfig,
        chain: Option<ChainInfo>,
        custody: Option<Custody>,
        token_decimals_default: u8,
    ) -> Engine {
        // A keystore whose seed cannot key an HMAC does not exist (from_mnemonic checked it derives).
        let claim_key = custody.as_ref().and_then(|c| ClaimKey::from_custody(c).ok());
        Engine {
            inner: Arc::new(Inner {
                db,
                cfg,
                chain,
                custody,
                claim_key,
                token_decimals_default,
                screening: screening::Screening::default(),
            }),
        }
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.cfg
    }

    pub fn chain(&self) -> Option<&ChainInfo> {
        self.inner.chain.as_ref()
    }

    pub fn custody(&self) -> Option<&Custody> {
        self.inner.custody.as_ref()
    }

    /// Decimals of the token (from the chain when connected).
    pub fn token_decimals(&self) -> u8 {
        self.inner
            .chain
            .as_ref()
            .map_or(self.inner.token_decimals_default, |c| c.token_decimals)
    }

    fn chain_required(&self) -> Result<&ChainInfo> {
        self.inner.chain.as_ref().ok_or_else(|| {
            EngineError::Unavailable("no chain is configured (REMESA_RPC_URL, deployment)".into())
        })
    }

    fn custody_required(&self) -> Result<&Custody> {
        self.inner
            .custody
            .as_ref()
            .ok_or_else(|| EngineError::Unavailable("the node keystore is not loaded".into()))
    }

    fn claim_key_required(&self) -> Result<&ClaimKey> {
        self.inner.claim_key.as_ref().ok_or_else(|| {
            EngineError::Unavailable(
                "the node keystore is not loaded: pickup codes come from its claim key".into(),
            )
        })
    }

    /// Starts a write transaction: takes the feed lock first (see the module's invariant).
    pub(crate) async fn write_tx(&self) -> Result<crate::store::Tx> {
        let mut tx = self.inner.db.begin().await?;
        lock_feed(&mut tx).await?;
        Ok(tx)
    }

    /// Transitions after `cursor` (exclusive), oldest first, at most `limit` (capped). Optionally one partner's.
    pub async fn events_after(
        &self,
        cursor: i64,
        limit: u32,
        partner_id: Option<u64>,
    ) -> Result<Vec<TransitionEvent>> {
        let limit = i64::from(limit.clamp(1, self.inner.cfg.page_limit_max));
        let partner_id = partner_id
            .map(|p| i64::try_from(p).map_err(|_| EngineError::Invalid("partner id".into())))
            .transpose()?;
        let rows = transitions::after(&self.inner.db.pool, cursor, limit, partner_id).await?;
        rows.into_iter().map(event_from_row).collect()
    }

    /// Every transition of one remittance, oldest first.
    pub async fn history(&self, remittance_id: &RemittanceId) -> Result<Vec<TransitionEvent>> {
        let rows = transitions::of_remittance(&self.inner.db.pool, &remittance_id.to_string()).await?;
        rows.into_iter().map(event_from_row).collect()
    }

    /// The newest transition's seq (0 when empty): where a new feed consumer may start.
    pub async fn latest_event_seq(&self) -> Result<i64> {
        Ok(transitions::latest_seq(&self.inner.db.pool).await?)
    }
}

fn event_from_row(row: transitions::TransitionRow) -> Result<TransitionEvent> {
    Ok(TransitionEvent {
        seq: row.seq,
        remittance_id: row.remittance_id,
        from: row.from_state.as_deref().map(parse_state).transpose()?,
        to: parse_state(&row.to_state)?,
        cause: row.cause,
        detail: serde_json::from_str(&row.detail)
            .map_err(|e| StoreError::Corrupt(format!("transition detail: {e}")))?,
        at_unix_ms: row.at_unix_ms,
        partner_id: crate::store::stored_u64(row.partner_id, "transition partner_id")?,
        sender_user_id: row.sender_user_id,
    })
}

pub(crate) fn parse_state(s: &str) -> Result<State> {
    State::parse(s).ok_or_else(|| EngineError::Internal(format!("unknown stored state {s:?}")))
}

/// Takes the transition feed's lock (a no-op update of its counter row) for the rest of the transaction.
pub(crate) async fn lock_feed(conn: &mut sqlx::AnyConnection) -> Result<()> {
    Ok(transitions::lock_feed(conn).await?)
}

/// Moves remittance `id` from `from` to `to` (refused unless the machine allows it, or `rollback` and a reorg
/// allows it), records the transition with its cause and detail, and returns its seq.
pub(crate) async fn transition(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    from: State,
    to: State,
    cause: &str,
    detail: serde_json::Value,
    rollback: bool,
) -> Result<i64> {
    let allowed = if rollback {
        from.can_roll_back_to(to)
    } else {
        from.can_go_to(to)
    };
    apply_transition(conn, id, from, to, cause, detail, allowed).await
}

/// [`transition`] for a direct P2P transfer into a Remesa wallet: checked against the direct machine
/// ([`State::can_go_to_direct`], [`State::can_roll_back_direct_to`]).
pub(crate) async fn transition_direct(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    from: State,
    to: State,
    cause: &str,
    detail: serde_json::Value,
    rollback: bool,
) -> Result<i64> {
    let allowed = if rollback {
        from.can_roll_back_direct_to(to)
    } else {
        from.can_go_to_direct(to)
    };
    apply_transition(conn, id, from, to, cause, detail, allowed).await
}

async fn apply_transition(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    from: State,
    to: State,
    cause: &str,
    detail: serde_json::Value,
    allowed: bool,
) -> Result<i64> {
    if !allowed {
        return Err(EngineError::Conflict(format!(
            "remittance {id} cannot go from {from} to {to}"
        )));
    }
    let now = now_ms();
    if !crate::store::remittances::set_state(conn, id, from.as_str(), to.as_str(), now).await? {
        return Err(EngineError::Conflict(format!(
            "remittance {id} is no longer {from}"
        )));
    }
    insert_transition(conn, id, Some(from), to, cause, detail, now).await
}

pub(crate) async fn insert_transition(
    conn: &mut sqlx::AnyConnection,
    id: &str,
    from: Option<State>,
    to: State,
    cause: &str,
    detail: serde_json::Value,
    now: i64,
) -> Result<i64> {
    let seq = transitions::insert(
        conn,
        id,
        from.map(|s| s.as_str()),
        to.as_str(),
        cause,
        &detail.to_string(),
        now,
    )
    .await?;
    metrics::counter!("remesa_remittance_transitions_total", "to" => to.as_str()).increment(1);
    tracing::info!(target: "engine", remittance_id = id, from = from.map(|s| s.as_str()), to = to.as_str(), cause, "transition");
    Ok(seq)
}
