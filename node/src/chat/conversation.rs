//! The conversation: one inbound message in, replies and the new conversation state out.
//!
//! State per chat user: the send request being collected (asking for what is missing) and the pending firm quote
//! awaiting Confirm/Cancel. The chat message id of the confirmation is the remittance's idempotency key, so a
//! message processed twice (crash between the engine call and the commit) creates one remittance.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::backend::{BackendError, ChatBackend, QuoteRequest};
use super::intent::{self, Amount, Intent, Lang, ParseContext, SendDraft};
use super::model::{InboundContent, InboundMessage, OutboundMessage};
use super::render::{
    self, BTN_CANCEL, BTN_CONFIRM, BTN_MENU_BALANCE, BTN_MENU_HISTORY, BTN_MENU_SEND, BTN_METHOD, Missing,
};
use super::store::{ChatStore, Identity, NewOutbound, StoreError};
use crate::domain::{KycField, PayoutMethod};
use crate::domain::{PhoneNumber, Region};

/// Transfers shown by `history`.
pub const HISTORY_LIMIT: u32 = 5;

/// A send request being collected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    /// Amount (major units).
    pub amount: Option<Decimal>,
    /// Currency code.
    pub currency: Option<String>,
    /// Recipient phone.
    pub phone: Option<PhoneNumber>,
    /// Method.
    pub method: Option<PayoutMethod>,
    /// Recipient name.
    pub name: Option<String>,
    /// The last question asked.
    pub asked: Option<Missing>,
}

/// A quote awaiting Confirm/Cancel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingQuote {
    /// Quote id.
    pub quote_id: String,
    /// Expiry.
    pub expires_at_unix_s: i64,
    /// The draft it was made from (to re-quote on changes).
    pub draft: Draft,
}

/// Conversation state, stored as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationState {
    /// Request being collected.
    pub draft: Option<Draft>,
    /// Quote awaiting confirmation.
    pub pending: Option<PendingQuote>,
    /// A confirmed quote waiting for the sender's full name (sanctions screening needs it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub naming: Option<PendingQuote>,
    /// Identity verification: the KYC field asked for (each answer goes to the engine at once; nothing personal is
    /// kept here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kyc_asking: Option<KycField>,
}

/// Why a message could not be processed now (retried by the inbox worker).
#[derive(Debug, thiserror::Error)]
pub enum ConversationError {
    /// Storage.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Engine trouble that may pass.
    #[error("engine: {0}")]
    Backend(String),
}

/// The outcome of one message.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// New state as JSON.
    pub state_json: String,
    /// Replies.
    pub replies: Vec<OutboundMessage>,
    /// The identity, refreshed.
    pub identity: Identity,
    /// Messages to other chat users, stored with the replies (a lost-code request asks the senders to confirm).
    pub others: Vec<NewOutbound>,
    /// The sender confirmed that the pickup code of this remittance (id, reference) goes to the recipient's chat
    /// again: the service does it and answers, before the replies are stored.
    pub resend: Option<(String, String)>,
}

/// A recipient's lost-code request asks each sender at most once per this many milliseconds.
const CODE_ASK_WINDOW_MS: i64 = 3_600_000;

fn unix_s() -> i64 {
    super::store::now_ms() / 1000
}

/// Handles one inbound message.
pub async fn handle(
    store: &ChatStore,
    backend: &dyn ChatBackend,
    msg: &InboundMessage,
) -> Result<Outcome, ConversationError> {
    let sender = &msg.sender;
    let platform_phone = sender
        .phone_e164
        .as_deref()
        .and_then(|p| PhoneNumber::from_platform(p).ok());
    let existing = store.identity(msg.platform, &sender.user_key).await?;
    let initial_lang = existing
        .as_ref()
        .map(|i| i.lang)
        .or_else(|| sender.language_code.as_deref().and_then(Lang::from_tag))
        .unwrap_or_default();
    let mut identity = store
        .upsert_identity(
            msg.platform,
            &sender.user_key,
            &sender.address,
            platform_phone.as_ref().map(PhoneNumber::as_str),
            sender.display_name.as_deref(),
            initial_lang,
        )
        .await?;
    let region = identity.phone_e164.as_deref().and_then(Region::of_e164);
    let ctx = ParseContext {
        default_region: region,
    };

    // Work out the intent before registering, so the first message's language is used for the welcome.
    let parsed = match &msg.content {
        InboundContent::Text { text, .. } => Some(intent::parse(text, &ctx)),
        _ => None,
    };
    if let Some(lang) = parsed.as_ref().and_then(|p| p.lang)
        && lang != identity.lang
    {
        store.set_lang(msg.platform, &sender.user_key, lang).await?;
        identity.lang = lang;
    }
    let lang = identity.lang;
    let mut replies = Vec::new();

    // Registration: the first message creates the custodial wallet and is answered with it.
    let (user_id, wallet) = match (&identity.engine_user_id, &identity.wallet_address) {
        (Some(u), Some(w)) => (u.clone(), w.clone()),
        _ => {
            let user = backend
                .ensure_user(
                    msg.platform,
                    &sender.user_key,
                    platform_phone.as_ref(),
                    sender.display_name.as_deref(),
                )
                .await
                .map_err(|e| ConversationError::Backend(e.to_string()))?;
            store
                .set_engine_user(
                    msg.platform,
                    &sender.user_key,
                    &user.user_id,
                    &user.wallet_address,
                    user.display_name.as_deref(),
                )
                .await?;
            identity.engine_user_id = Some(user.user_id.clone());
            identity.wallet_address = Some(user.wallet_address.clone());
            if identity.display_name.is_none() {
                identity.display_name = user.display_name.clone();
            }
            replies.push(render::welcome(
                lang,
                identity.display_name.as_deref(),
                &user.wallet_address,
            ));
            if matches!(
                parsed.as_ref().map(|p| &p.intent),
                Some(Intent::Greeting | Intent::Help)
            ) {
                let state = store
                    .conversation(msg.platform, &sender.user_key)
                    .await?
                    .unwrap_or_default();
                return Ok(Outcome {
                    state_json: state_or_default(&state),
                    replies,
                    identity,
                    others: Vec::new(),
                    resend: None,
                });
            }
            (user.user_id, user.wallet_address)
        }
    };

    let mut state: ConversationState = store
        .conversation(msg.platform, &sender.user_key)
        .await?
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();

    let intent = match (&msg.content, parsed) {
        (_, Some(p)) => p.intent,
        (InboundContent::Button { id, title }, None) => button_intent(id, title.as_deref(), &state, &ctx),
        (InboundContent::Unsupported { .. }, None) => {
            replies.push(render::unsupported_content(lang));
            return finish(state, replies, identity);
        }
        (InboundContent::Text { .. }, None) => Intent::Unknown {
            reason: intent::UnknownReason::Empty,
        },
    };

    // The chat message id, namespaced by platform, is the remittance's idempotency key.
    let idempotency_key = format!("{}:{}", msg.platform.as_str(), msg.message_id);
    let cx = Cx {
        backend,
        user_id: &user_id,
        wallet: &wallet,
        lang,
        idempotency_key: &idempotency_key,
    };
    // An answer to a verification question is free text (a date, an address, a number): it goes to the engine
    // unless the user asks for something else.
    if let (Some(field), InboundContent::Text { text, .. }) = (state.kyc_asking, &msg.content)
        && !matches!(
            intent,
            Intent::Cancel
                | Intent::Decline
                | Intent::Help
                | Intent::Greeting
                | Intent::Send(_)
                | Intent::Verify
        )
    {
        match backend.submit_kyc_field(&user_id, field, text).await {
            Ok(view) => {
                state.kyc_asking = next_kyc_question(&view);
                match state.kyc_asking {
                    Some(next) => replies.push(render::kyc_ask(lang, next)),
                    None => replies.push(render::kyc_outcome(lang, view.tier, view.status)),
                }
            }
            Err(BackendError::Invalid(_)) => replies.push(render::kyc_invalid(lang, field)),
            Err(e) => return Err(backend_err(e)),
        }
        return finish(state, replies, identity);
    }
    match intent {
        Intent::Verify => {
            let view = backend.kyc(&user_id).await.map_err(backend_err)?;
            state = ConversationState::default();
            state.kyc_asking = next_kyc_question(&view);
            match state.kyc_asking {
                Some(first) => {
                    replies.push(render::kyc_intro(lang, view.missing.len()));
                    replies.push(render::kyc_ask(lang, first));
                }
                None => replies.push(render::kyc_outcome(lang, view.tier, view.status)),
            }
        }
        Intent::Problem { reference } => match &reference {
            None => replies.push(render::which_transfer(lang)),
            Some(r) => match backend.remittance(&user_id, Some(r)).await {
                Ok(view) => {
                    let text = match &msg.content {
                        InboundContent::Text { text, .. } => text.trim(),
                        _ => "",
                    };
                    match backend.open_case(&user_id, &view.remittance_id, text).await {
                        Ok((case_id, due)) => {
                            replies.push(render::case_opened(lang, &view.reference, &case_id, due))
                        }
                        Err(BackendError::ReportTooLate) => {
                            replies.push(render::case_too_late(lang, &view.reference))
                        }
                        Err(e) => return Err(backend_err(e)),
                    }
                }
                Err(BackendError::NotFound) => replies.push(render::which_transfer(lang)),
                Err(e) => return Err(backend_err(e)),
            },
        },
        Intent::Greeting => replies.push(render::greeting(lang, identity.display_name.as_deref())),
        Intent::Help => replies.push(render::help(lang)),
        Intent::Balance => match backend.balance(&user_id).await {
            Ok(b) => replies.push(render::balance(lang, b.amount, &b.currency, &wallet)),
            Err(e) => return Err(backend_err(e)),
        },
        Intent::History => match backend.history(&user_id, HISTORY_LIMIT).await {
            Ok(items) => replies.push(render::history(lang, &items)),
            Err(e) => return Err(backend_err(e)),
        },
        Intent::Status { reference } => match backend.remittance(&user_id, reference.as_deref()).await {
            Ok(r) => replies.push(render::status(lang, &r)),
            Err(BackendError::NotFound) => replies.push(render::no_transfers(lang)),
            Err(e) => return Err(backend_err(e)),
        },
        Intent::Cancel => {
            if state.pending.is_some() || state.draft.is_some() || state.kyc_asking.is_some() {
                state = ConversationState::default();
                replies.push(render::cancelled(lang));
            } else {
                match backend.cancel(&user_id, None).await {
                    Ok(r) if r.state == "refund_pending" => {
                        replies.push(render::cancelled_for_refund(lang, &r.reference))
                    }
                    Ok(r) => replies.push(render::remittance_cancelled(lang, &r.reference)),
                    Err(BackendError::NotCancellable { state: s }) => {
                        let r = backend.remittance(&user_id, None).await.map_err(backend_err)?;
                        replies.push(render::cannot_cancel(lang, &r.reference, &s));
                    }
                    Err(BackendError::NotFound) => replies.push(render::nothing_pending(lang)),
                    Err(e) => return Err(backend_err(e)),
                }
            }
        }
        Intent::LostCode => {
            let (reply, asks) = lost_code(store, backend, &identity, lang).await?;
            replies.push(reply);
            let mut out = finish(state, replies, identity)?;
            out.others = asks;
            return Ok(out);
        }
        Intent::Resend { reference } => match backend.remittance(&user_id, reference.as_deref()).await {
            Ok(r) => {
                let mut out = finish(state, replies, identity)?;
                out.resend = Some((r.remittance_id, r.reference));
                return Ok(out);
            }
            Err(BackendError::NotFound) => replies.push(render::no_transfers(lang)),
            Err(e) => return Err(backend_err(e)),
        },
        Intent::Decline => {
            if state.pending.is_some() || state.draft.is_some() || state.kyc_asking.is_some() {
                state = ConversationState::default();
                replies.push(render::cancelled(lang));
            } else {
                replies.push(render::nothing_pending(lang));
            }
        }
        Intent::Confirm => match state.pending.take() {
            Some(p) if p.expires_at_unix_s < unix_s() => {
                state.draft = None;
                replies.push(render::quote_expired(lang));
            }
            Some(p) => {
                state.draft = None;
                if confirm(&cx, &p, &mut replies).await? {
                    state.naming = Some(p);
                }
            }
            None => replies.push(render::nothing_pending(lang)),
        },
        Intent::Send(d) => {
            let mut draft = Draft::default();
            merge(&mut draft, &d);
            state = ConversationState::default();
            advance(&cx, &mut state, draft, &d, &mut replies).await?;
        }
        Intent::Details(d) => {
            let mut draft = state
                .pending
                .take()
                .map(|p| p.draft)
                .or(state.draft.take())
                .unwrap_or_default();
            merge(&mut draft, &d);
            advance(&cx, &mut state, draft, &d, &mut replies).await?;
        }
        Intent::Unknown { reason } => {
            // An answer to "what is the recipient's name?" is free text.
            let text = match &msg.content {
                InboundContent::Text { text, .. } => text.trim(),
                _ => "",
            };
            let awaiting_name = state
                .draft
                .as_ref()
                .is_some_and(|d| d.asked == Some(Missing::Name));
            if let Some(p) = state.naming.take() {
                // The answer to "what is your full name?": saved (and screened), then the quote is confirmed.
                let name: String = text.chars().take(intent::NAME_MAX_CHARS).collect();
                if !looks_like_name(text) {
                    replies.push(render::ask_sender_name(lang));
                    state.naming = Some(p);
                } else {
                    match backend.set_sender_name(&user_id, &name).await {
                        Ok(()) => {
                            replies.push(render::sender_name_saved(lang, &name));
                            if p.expires_at_unix_s < unix_s() {
                                replies.push(render::quote_expired(lang));
                            } else if confirm(&cx, &p, &mut replies).await? {
                                state.naming = Some(p);
                            }
                        }
                        Err(BackendError::NoQuote(_)) => {
                            replies.push(render::ask_sender_name(lang));
                            state.naming = Some(p);
                        }
                        Err(e) => return Err(backend_err(e)),
                    }
                }
            } else if awaiting_name && looks_like_name(text) {
                let mut draft = state.draft.take().unwrap_or_default();
                draft.name = Some(text.chars().take(intent::NAME_MAX_CHARS).collect());
                advance(&cx, &mut state, draft, &SendDraft::default(), &mut replies).await?;
            } else {
                replies.push(render::unknown(lang, reason));
                if let Some(asked) = state.draft.as_ref().and_then(|d| d.asked) {
                    replies.push(render::ask(lang, asked));
                }
            }
        }
    }
    finish(state, replies, identity)
}

struct Cx<'a> {
    backend: &'a dyn ChatBackend,
    user_id: &'a str,
    wallet: &'a str,
    lang: Lang,
    idempotency_key: &'a str,
}

fn state_or_default(s: &str) -> String {
    if s.is_empty() {
        "{}".to_owned()
    } else {
        s.to_owned()
    }
}

fn finish(
    state: ConversationState,
    replies: Vec<OutboundMessage>,
    identity: Identity,
) -> Result<Outcome, ConversationError> {
    let state_json = serde_json::to_string(&state).map_err(|e| ConversationError::Backend(e.to_string()))?;
    Ok(Outcome {
        state_json,
        replies,
        identity,
        others: Vec::new(),
        resend: None,
    })
}

/// A recipient lost a pickup code: each sender of a cash pickup waiting for this phone is asked to confirm a
/// re-send (`resend <ref>`); the code never goes to the sender, and never to anyone but the recipient's chat.
async fn lost_code(
    store: &ChatStore,
    backend: &dyn ChatBackend,
    identity: &Identity,
    lang: Lang,
) -> Result<(OutboundMessage, Vec<NewOutbound>), ConversationError> {
    let Some(phone) = identity.phone_e164.as_deref() else {
        return Ok((render::code_request_sent(lang, 0), Vec::new()));
    };
    let pickups = backend.collectible_pickups(phone).await.map_err(backend_err)?;
    let recipient = match &identity.display_name {
        Some(n) => format!("{n} ({phone})"),
        None => phone.to_owned(),
    };
    let window = super::store::now_ms() / CODE_ASK_WINDOW_MS;
    let mut asks = Vec::new();
    for p in &pickups {
        let Some(sender) = &p.sender_user_id else { continue };
        let Some(who) = store.identities_of_user(sender).await?.into_iter().next() else {
            continue;
        };
        asks.push(NewOutbound {
            dedupe_key: format!("codeask:{}:{window}", p.remittance_id),
            platform: who.platform,
            address: who.address,
            message: render::code_request_to_sender(who.lang, &recipient, &p.reference),
            callback_query_id: None,
        });
    }
    Ok((render::code_request_sent(lang, asks.len()), asks))
}

/// The next field to ask: only while the customer is tier 0 and no operator is reviewing them (the chat collects
/// tier 1; tier 2 takes a document an agent checks).
fn next_kyc_question(view: &super::backend::KycView) -> Option<KycField> {
    use crate::domain::KycStatus;
    if view.tier > 0 || matches!(view.status, KycStatus::Processing | KycStatus::Rejected) {
        return None;
    }
    view.missing.first().copied()
}

fn backend_err(e: BackendError) -> ConversationError {
    ConversationError::Backend(e.to_string())
}

fn looks_like_name(text: &str) -> bool {
    let letters = text.chars().filter(|c| c.is_alphabetic()).count();
    letters >= 2
        && text.chars().count() <= intent::NAME_MAX_CHARS
        && text
            .chars()
            .all(|c| c.is_alphabetic() || c == ' ' || c == '\'' || c == '-' || c == '.')
}

fn button_intent(id: &str, title: Option<&str>, state: &ConversationState, ctx: &ParseContext) -> Intent {
    if let Some(q) = id.strip_prefix(BTN_CONFIRM) {
        return match &state.pending {
            Some(p) if p.quote_id == q => Intent::Confirm,
            // A button of an older quote: say it expired rather than confirming something else.
            _ => Intent::Unknown {
                reason: intent::UnknownReason::NotUnderstood,
            },
        };
    }
    if id.starts_with(BTN_CANCEL) {
        return Intent::Decline;
    }
    if let Some(m) = id.strip_prefix(BTN_METHOD).and_then(PayoutMethod::parse) {
        return Intent::Details(SendDraft {
            payout_method: Some(m),
            ..SendDraft::default()
        });
    }
    match id {
        BTN_MENU_SEND => Intent::Send(SendDraft::default()),
        BTN_MENU_BALANCE => Intent::Balance,
        BTN_MENU_HISTORY => Intent::History,
        // Template quick replies and foreign buttons: read the label (or payload) as text.
        other => intent::parse(title.unwrap_or(other), ctx).intent,
    }
}

fn merge(draft: &mut Draft, d: &SendDraft) {
    if let Some(a) = d.amount {
        draft.amount = Some(a.value());
    }
    if let Some(c) = d.currency {
        draft.currency = Some(c.code().to_owned());
    }
    if let Some(p) = &d.recipient_phone {
        draft.phone = Some(p.clone());
    }
    if let Some(m) = d.payout_method {
        draft.method = Some(m);
    }
    if let Some(n) = &d.recipient_name {
        draft.name = Some(n.clone());
    }
}

fn missing(draft: &Draft) -> Option<Missing> {
    if draft.amount.is_none() {
        Some(Missing::Amount)
    } else if draft.phone.is_none() {
        Some(Missing::Phone)
    } else if draft.method.is_none() {
        Some(Missing::Method)
    } else if draft.method == Some(PayoutMethod::CashPickup) && draft.name.is_none() {
        Some(Missing::Name)
    } else {
        None
    }
}

async fn advance(
    cx: &Cx<'_>,
    state: &mut ConversationState,
    mut draft: Draft,
    parsed: &SendDraft,
    replies: &mut Vec<OutboundMessage>,
) -> Result<(), ConversationError> {
    let lang = cx.lang;
    state.pending = None;
    if let Some(e) = parsed.amount_error {
        replies.push(render::amount_problem(lang, e));
    }
    if let Some(e) = parsed.phone_error {
        replies.push(render::phone_problem(lang, e));
    }
    if let Some(c) = draft.currency.as_deref().filter(|c| *c != "USD") {
        replies.push(render::unsupported_currency(lang, c));
        draft.currency = None;
        draft.amount = None;
    }
    if let Some(m) = missing(&draft) {
        draft.asked = Some(m);
        replies.push(render::ask(lang, m));
        state.draft = Some(draft);
        return Ok(());
    }
    let (Some(amount), Some(phone), Some(method)) = (draft.amount, draft.phone.clone(), draft.method) else {
        state.draft = Some(draft);
        return Ok(());
    };
    // Amount::new re-checks limits of amounts restored from state.
    if let Err(e) = Amount::new(amount) {
        replies.push(render::amount_problem(lang, e));
        draft.amount = None;
        draft.asked = Some(Missing::Amount);
        replies.push(render::ask(lang, Missing::Amount));
        state.draft = Some(draft);
        return Ok(());
    }
    let req = QuoteRequest {
        amount,
        currency: draft.currency.clone().unwrap_or_else(|| "USD".to_owned()),
        recipient_phone: phone,
        payout_method: method,
        recipient_name: draft.name.clone(),
    };
    match cx.backend.quote(cx.user_id, &req).await {
        Ok(q) => {
            draft.asked = None;
            state.pending = Some(PendingQuote {
                quote_id: q.quote_id.clone(),
                expires_at_unix_s: q.expires_at_unix_s,
                draft,
            });
            state.draft = None;
            replies.push(render::quote(lang, &q));
        }
        Err(BackendError::NoQuote(reason)) => {
            replies.push(render::no_quote(lang, &reason));
            state.draft = None;
        }
        Err(BackendError::NoRoute) => {
            replies.push(render::no_route(lang));
            state.draft = None;
        }
        Err(BackendError::RecipientNotRegistered { phone }) => {
            replies.push(render::recipient_not_registered(lang, &phone));
            state.draft = None;
        }
        Err(BackendError::InsufficientFunds {
            balance,
            needed,
            currency,
        }) => {
            replies.push(render::insufficient_funds(
                lang, balance, needed, &currency, cx.wallet,
            ));
            state.draft = None;
        }
        Err(BackendError::LimitExceeded {
            window,
            limit,
            left,
            tier,
        }) => {
            replies.push(render::limit_exceeded(lang, window, limit, left, tier));
            state.draft = None;
        }
        Err(e) => return Err(backend_err(e)),
    }
    Ok(())
}

/// Confirms a quote; returns `true` when the sender's name must be asked first (the reply asks it).
async fn confirm(
    cx: &Cx<'_>,
    pending: &PendingQuote,
    replies: &mut Vec<OutboundMessage>,
) -> Result<bool, ConversationError> {
    let lang = cx.lang;
    let Some(req) = quote_request(&pending.draft) else {
        replies.push(render::quote_expired(lang));
        return Ok(false);
    };
    match cx
        .backend
        .confirm(cx.user_id, &pending.quote_id, &req, cx.idempotency_key)
        .await
    {
        Ok(r) if r.state == "on_hold" => replies.push(render::under_review(lang, &r.reference)),
        Ok(r) => replies.push(render::confirmed(lang, &r)),
        Err(BackendError::SenderNameRequired) => {
            replies.push(render::ask_sender_name(lang));
            return Ok(true);
        }
        Err(BackendError::RecipientKycRequired { phone }) => {
            replies.push(render::recipient_kyc_required(lang, &phone))
        }
        Err(BackendError::TravelRuleDataRequired { threshold }) => {
            replies.push(render::travel_rule_needs_kyc(lang, threshold))
        }
        Err(BackendError::QuoteExpired) => replies.push(render::quote_expired(lang)),
        Err(BackendError::InsufficientFunds {
            balance,
            needed,
            currency,
        }) => {
            replies.push(render::insufficient_funds(
                lang, balance, needed, &currency, cx.wallet,
            ));
        }
        Err(BackendError::LimitExceeded {
            window,
            limit,
            left,
            tier,
        }) => replies.push(render::limit_exceeded(lang, window, limit, left, tier)),
        Err(BackendError::NoQuote(reason)) => replies.push(render::no_quote(lang, &reason)),
        Err(BackendError::NoRoute) => replies.push(render::no_route(lang)),
        Err(BackendError::RecipientNotRegistered { phone }) => {
            replies.push(render::recipient_not_registered(lang, &phone))
        }
        Err(e) => return Err(backend_err(e)),
    }
    Ok(false)
}

/// The quote request a complete draft stands for.
fn quote_request(draft: &Draft) -> Option<QuoteRequest> {
    Some(QuoteRequest {
        amount: draft.amount?,
        currency: draft.currency.clone().unwrap_or_else(|| "USD".to_owned()),
        recipient_phone: draft.phone.clone()?,
        payout_method: draft.method?,
        recipient_name: draft.name.clone(),
    })
}

/// Outbox rows for the replies to one inbox item: `reply:{inbox_id}:{n}`, the first answering the Telegram callback.
pub fn reply_rows(inbox_id: &str, msg: &InboundMessage, replies: &[OutboundMessage]) -> Vec<NewOutbound> {
    replies
        .iter()
        .enumerate()
        .map(|(n, m)| NewOutbound {
            dedupe_key: format!("reply:{inbox_id}:{n}"),
            platform: msg.platform,
            address: msg.sender.address.clone(),
            message: m.clone(),
            callback_query_id: if n == 0 {
                msg.callback_query_id.clone()
            } else {
                None
            },
        })
        .collect()
}
