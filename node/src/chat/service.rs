//! The running chat bridge: shared state for the webhook handlers and the three workers — the inbox worker
//! (processes stored inbound messages), the outbox worker (delivers replies and notifications through the
//! platform clients) and the notifier (follows the engine's transition feed).

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

use super::backend::{BackendError, ChatBackend, NotificationView, TransitionEvent};
use super::config::ChatConfig;
use super::conversation;
use super::intent::Lang;
use super::intent::format_money;
use super::model::{OutboundMessage, PICKUP_CODE_PLACEHOLDER, Platform, TemplateMessage};
use super::render::{self, IncomingView, ResendRefusal};
use super::retry::RetryPolicy;
use super::store::{ChatStore, InboxItem, NewOutbound, OutboxItem, StoreError};
use super::telegram::TelegramClient;
use super::whatsapp::{SendError, SendErrorKind, WhatsappClient};
use crate::domain::PayoutMethod;

/// Default Graph API base.
pub const WHATSAPP_API_BASE_DEFAULT: &str = "https://graph.facebook.com/v21.0";
/// Default Bot API base.
pub const TELEGRAM_API_BASE_DEFAULT: &str = "https://api.telegram.org";
/// Inbox/outbox claim lease.
const LEASE_MS: i64 = 60_000;
/// Outbound messages one outbox worker claims and sends at once (each to a different user).
pub const OUTBOX_CLAIM_MAX: i64 = 32;
/// Notifier page size.
const EVENTS_PAGE: u32 = 100;
/// Name of the notifier's cursor in `chat_cursors`.
pub const NOTIFY_CURSOR: &str = "engine_events";
/// The notifier's position in the operators' KYC decisions (a time, Unix ms).
pub const KYC_CURSOR: &str = "kyc_notices";

/// At most this many re-sends of one remittance's pickup code (sender-confirmed and operator together).
pub const RESENDS_MAX: i64 = 5;

/// Why a pickup code was not sent again.
#[derive(Debug, thiserror::Error)]
pub enum ResendError {
    #[error("no such remittance")]
    NotFound,
    #[error("not a cash pickup waiting to be collected")]
    NotCollectible,
    #[error("the pickup code was already sent again {RESENDS_MAX} times")]
    TooOften,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("engine: {0}")]
    Backend(String),
}

/// Shared chat state.
#[derive(Clone)]
pub struct ChatService {
    inner: Arc<Inner>,
}

struct Inner {
    store: ChatStore,
    backend: Arc<dyn ChatBackend>,
    whatsapp: Option<WhatsappClient>,
    telegram: Option<TelegramClient>,
    whatsapp_app_secret: Option<SecretString>,
    whatsapp_verify_token: Option<SecretString>,
    telegram_secret_token: Option<SecretString>,
    operator_token: Option<SecretString>,
    recipient_template: Option<String>,
    worker_id: String,
    dev_chat_wait: Duration,
    poll_interval: Duration,
    body_limit_bytes: usize,
    wake_inbox: tokio::sync::Notify,
    wake_outbox: tokio::sync::Notify,
    inbox_workers: usize,
    outbox_workers: usize,
    inbox_pending_max: u64,
    /// The inbox depth last counted and when: webhooks read it instead of counting each time.
    inbox_depth: std::sync::Mutex<Option<(std::time::Instant, u64)>>,
}

/// How long a counted inbox depth stands for the webhooks' admission check.
const INBOX_DEPTH_FRESH: Duration = Duration::from_millis(100);

/// Whether a webhook may store more inbound messages now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Open,
    /// The inbox holds `pending` messages, at or above its limit.
    Full {
        pending: u64,
    },
}

impl std::fmt::Debug for ChatService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatService")
            .field("whatsapp", &self.inner.whatsapp)
            .field("telegram", &self.inner.telegram)
            .field("worker_id", &self.inner.worker_id)
            .finish_non_exhaustive()
    }
}

/// Longest wait of `/v1/dev/chat` for the replies of a message.
pub const DEV_CHAT_WAIT_MAX: Duration = Duration::from_secs(20);

/// What the node tells the service about the process it runs in.
#[derive(Clone, Debug)]
pub struct ServiceOptions {
    /// The claim holder of this process's chat workers (`store::instances::Instance::worker_id("chat")`), so a
    /// restart of the node takes its dead claims over at once.
    pub worker_id: String,
    /// How long `/v1/dev/chat` waits for replies before answering 504: shorter than the HTTP handler timeout.
    pub dev_chat_wait: Duration,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            worker_id: format!("chat@{}", uuid::Uuid::new_v4()),
            dev_chat_wait: DEV_CHAT_WAIT_MAX,
        }
    }
}

impl ServiceOptions {
    /// The wait of `/v1/dev/chat` under an HTTP handler timeout: a second (or a quarter) less, at most 20 s.
    pub fn dev_chat_wait_for(http_timeout_ms: u64) -> Duration {
        let margin_ms = (http_timeout_ms / 4).min(1_000);
        Duration::from_millis(http_timeout_ms.saturating_sub(margin_ms)).min(DEV_CHAT_WAIT_MAX)
    }
}

impl ChatService {
    /// Builds the service from configuration. `operator_token` enables the terminal endpoint (`/v1/dev/chat`).
    pub fn new(
        config: &ChatConfig,
        store: ChatStore,
        backend: Arc<dyn ChatBackend>,
        operator_token: Option<SecretString>,
    ) -> Self {
        Self::with_options(config, store, backend, operator_token, ServiceOptions::default())
    }

    /// [`ChatService::new`] inside a node process.
    pub fn with_options(
        config: &ChatConfig,
        store: ChatStore,
        backend: Arc<dyn ChatBackend>,
        operator_token: Option<SecretString>,
        options: ServiceOptions,
    ) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        let policy = RetryPolicy::default();
        let whatsapp = match (&config.whatsapp_access_token, &config.whatsapp_phone_number_id) {
            (Some(token), Some(id)) => Some(WhatsappClient::new(
                http.clone(),
                config
                    .whatsapp_api_base
                    .clone()
                    .unwrap_or_else(|| WHATSAPP_API_BASE_DEFAULT.to_owned()),
                id.clone(),
                token.clone(),
                policy,
            )),
            _ => None,
        };
        let telegram = config.telegram_bot_token.as_ref().map(|token| {
            TelegramClient::new(
                http.clone(),
                config
                    .telegram_api_base
                    .clone()
                    .unwrap_or_else(|| TELEGRAM_API_BASE_DEFAULT.to_owned()),
                token.clone(),
                policy,
            )
        });
        let inbox_workers = config.chat_inbox_workers.unwrap_or(4).clamp(1, 64);
        Self {
            inner: Arc::new(Inner {
                store,
                backend,
                whatsapp,
                telegram,
                whatsapp_app_secret: config.whatsapp_app_secret.clone(),
                whatsapp_verify_token: config.whatsapp_verify_token.clone(),
                telegram_secret_token: config.telegram_secret_token.clone(),
                operator_token,
                recipient_template: config
                    .whatsapp_recipient_template
                    .clone()
                    .filter(|t| !t.is_empty()),
                worker_id: options.worker_id,
                dev_chat_wait: options.dev_chat_wait,
                poll_interval: Duration::from_millis(config.chat_poll_interval_ms.max(10)),
                body_limit_bytes: config.chat_body_limit_bytes.clamp(1024, 4 * 1024 * 1024),
                wake_inbox: tokio::sync::Notify::new(),
                wake_outbox: tokio::sync::Notify::new(),
                inbox_workers,
                outbox_workers: config.chat_outbox_workers.clamp(1, 64),
                inbox_pending_max: config.chat_inbox_pending_max.max(1),
                inbox_depth: std::sync::Mutex::new(None),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &ChatStore {
        &self.inner.store
    }

    pub(crate) fn whatsapp_app_secret(&self) -> Option<&[u8]> {
        self.inner
            .whatsapp_app_secret
            .as_ref()
            .map(|s| s.expose_secret().as_bytes())
    }

    pub(crate) fn whatsapp_verify_token(&self) -> Option<&[u8]> {
        self.inner
            .whatsapp_verify_token
            .as_ref()
            .map(|s| s.expose_secret().as_bytes())
    }

    pub(crate) fn telegram_secret_token(&self) -> Option<&[u8]> {
        self.inner
            .telegram_secret_token
            .as_ref()
            .map(|s| s.expose_secret().as_bytes())
    }

    pub(crate) fn operator_token(&self) -> Option<&[u8]> {
        self.inner
            .operator_token
            .as_ref()
            .map(|s| s.expose_secret().as_bytes())
    }

    pub(crate) fn dev_chat_wait(&self) -> Duration {
        self.inner.dev_chat_wait
    }

    pub(crate) fn body_limit_bytes(&self) -> usize {
        self.inner.body_limit_bytes
    }

    /// Wakes the outbox workers (after something was queued).
    /// Wakes one outbox worker: it claims a whole batch, and wakes the next only when its batch was full (waking
    /// every worker for each new message made them race for it, each claim a write).
    fn wake_outbox(&self) {
        self.inner.wake_outbox.notify_one();
    }

    /// Wakes the inbox workers (after a webhook stored something).
    pub fn wake_inbox(&self) {
        self.inner.wake_inbox.notify_waiters();
        self.inner.wake_inbox.notify_one();
    }

    /// Whether the inbox takes more messages: its depth (pending and in-hand messages of every node), counted at
    /// most every 100 ms, against `chat_inbox_pending_max`. Also published as `remesa_chat_inbox_pending`.
    pub async fn admission(&self) -> Result<Admission, StoreError> {
        let cached = self
            .inner
            .inbox_depth
            .lock()
            .ok()
            .and_then(|g| *g)
            .filter(|(at, _)| at.elapsed() < INBOX_DEPTH_FRESH)
            .map(|(_, n)| n);
        let pending = match cached {
            Some(n) => n,
            None => {
                let n = self.inner.store.inbox_pending().await?;
                if let Ok(mut g) = self.inner.inbox_depth.lock() {
                    *g = Some((std::time::Instant::now(), n));
                }
                metrics::gauge!("remesa_chat_inbox_pending").set(n as f64);
                n
            }
        };
        if pending >= self.inner.inbox_pending_max {
            metrics::counter!("remesa_chat_inbox_rejected_total").increment(1);
            return Ok(Admission::Full { pending });
        }
        Ok(Admission::Open)
    }

    /// Starts the workers (`chat_inbox_workers` inbox workers, `chat_outbox_workers` outbox workers, the
    /// notifier); they stop when `shutdown` is cancelled.
    pub fn spawn_workers(&self, shutdown: CancellationToken) -> Vec<tokio::task::JoinHandle<()>> {
        let mut handles = Vec::with_capacity(self.inner.inbox_workers + self.inner.outbox_workers + 1);
        for _ in 0..self.inner.inbox_workers {
            let a = self.clone();
            let s = shutdown.clone();
            handles.push(tokio::spawn(async move { a.run_inbox(s).await }));
        }
        for _ in 0..self.inner.outbox_workers {
            let b = self.clone();
            let s = shutdown.clone();
            handles.push(tokio::spawn(async move { b.run_outbox(s).await }));
        }
        let c = self.clone();
        handles.push(tokio::spawn(async move { c.run_notifier(shutdown).await }));
        handles
    }

    async fn idle(&self, shutdown: &CancellationToken, notify: &tokio::sync::Notify) -> bool {
        tokio::select! {
            () = shutdown.cancelled() => false,
            () = notify.notified() => true,
            () = tokio::time::sleep(self.inner.poll_interval) => true,
        }
    }

    async fn run_inbox(&self, shutdown: CancellationToken) {
        // The next message, claimed in the transaction that completed the previous one.
        let mut next: Option<InboxItem> = None;
        while !shutdown.is_cancelled() {
            let item = match next.take() {
                Some(item) => Some(item),
                None => match self
                    .inner
                    .store
                    .claim_inbox(&self.inner.worker_id, LEASE_MS, None)
                    .await
                {
                    Ok(item) => item,
                    Err(e) => {
                        tracing::warn!(target: "chat::inbox", error = %e, "inbox worker");
                        None
                    }
                },
            };
            match item {
                Some(item) => match self.process_inbox_item(item, true).await {
                    Ok(claimed) => next = claimed,
                    Err(e) => tracing::warn!(target: "chat::inbox", error = %e, "inbox worker"),
                },
                None => {
                    if !self.idle(&shutdown, &self.inner.wake_inbox).await {
                        break;
                    }
                }
            }
        }
        // A message claimed but not started keeps its place: its claim runs out (or this node's restart frees it).
    }

    /// Processes one stored inbound message (or the given one); returns its inbox id when one was processed.
    pub async fn process_next_inbox(&self, only_id: Option<&str>) -> Result<Option<String>, StoreError> {
        let Some(item) = self
            .inner
            .store
            .claim_inbox(&self.inner.worker_id, LEASE_MS, only_id)
            .await?
        else {
            return Ok(None);
        };
        let id = item.id.clone();
        self.process_inbox_item(item, false).await?;
        Ok(Some(id))
    }

    /// Handles one claimed message and completes it; with `claim_next`, the completing transaction also claims the
    /// next message (returned).
    async fn process_inbox_item(
        &self,
        item: InboxItem,
        claim_next: bool,
    ) -> Result<Option<InboxItem>, StoreError> {
        let store = &self.inner.store;
        let started = std::time::Instant::now();
        let handled = match conversation::handle(store, self.inner.backend.as_ref(), &item.message).await {
            Ok(outcome) => self.apply_resend(outcome, &item.id).await,
            Err(e) => Err(e),
        };
        let handled_at = started.elapsed();
        match handled {
            Ok(mut outcome) => {
                let mut rows = conversation::reply_rows(&item.id, &item.message, &outcome.replies);
                rows.append(&mut outcome.others);
                let next_for = claim_next.then_some((self.inner.worker_id.as_str(), LEASE_MS));
                let (completed, next) = store
                    .complete_inbox_and_claim(&item, Some(&outcome.state_json), &rows, next_for)
                    .await?;
                if !completed {
                    tracing::warn!(target: "chat::inbox", inbox_id = %item.id, "claim lost before completion; another worker owns it");
                }
                tracing::debug!(
                    target: "chat::inbox", inbox_id = %item.id,
                    handle_us = handled_at.as_micros() as u64,
                    complete_us = (started.elapsed() - handled_at).as_micros() as u64,
                    next_claimed = next.is_some(),
                    "message handled"
                );
                self.wake_outbox();
                Ok(next)
            }
            Err(e) => {
                tracing::warn!(target: "chat::inbox", inbox_id = %item.id, attempts = item.attempts, error = %e, "processing failed");
                let retry_in = RetryPolicy::default().backoff(u32::try_from(item.attempts).unwrap_or(1));
                let retry_in_ms = i64::try_from(retry_in.as_millis()).unwrap_or(1_000);
                if store.fail_inbox(&item, &e.to_string(), retry_in_ms).await? {
                    // Parked: tell the user rather than stay silent.
                    let lang = store
                        .identity(item.message.platform, &item.message.sender.user_key)
                        .await?
                        .map(|i| i.lang)
                        .unwrap_or_default();
                    let rows = conversation::reply_rows(&item.id, &item.message, &[render::try_later(lang)]);
                    for r in &rows {
                        store.enqueue(r).await?;
                    }
                }
                Ok(None)
            }
        }
    }

    /// Carries out a sender's confirmed re-send of a pickup code (idempotent on the inbox item `inbox_id`: processing
    /// it again after a crash queues nothing new) and answers the sender.
    async fn apply_resend(
        &self,
        mut outcome: conversation::Outcome,
        inbox_id: &str,
    ) -> Result<conversation::Outcome, conversation::ConversationError> {
        let Some((id, reference)) = outcome.resend.take() else {
            return Ok(outcome);
        };
        let lang = outcome.identity.lang;
        let reply = match self.resend_pickup_code(&id, "sender", inbox_id).await {
            Ok(()) => render::code_resent(lang, &reference),
            Err(ResendError::NotFound | ResendError::NotCollectible) => {
                render::cannot_resend(lang, &reference, ResendRefusal::NotCollectible)
            }
            Err(ResendError::TooOften) => render::cannot_resend(lang, &reference, ResendRefusal::TooOften),
            Err(ResendError::Store(e)) => return Err(e.into()),
            Err(ResendError::Backend(e)) => return Err(conversation::ConversationError::Backend(e)),
        };
        outcome.replies.push(reply);
        Ok(outcome)
    }

    async fn run_outbox(&self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            match self.deliver_next().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => tracing::warn!(target: "chat::outbox", error = %e, "outbox worker"),
            }
            if !self.idle(&shutdown, &self.inner.wake_outbox).await {
                break;
            }
        }
    }

    /// Delivers the next pending outbound messages (up to [`OUTBOX_CLAIM_MAX`], one per user, sent at once; the
    /// sent ones recorded in one transaction); true when any was attempted.
    pub async fn deliver_next(&self) -> Result<bool, StoreError> {
        let store = &self.inner.store;
        let items = store
            .claim_outbox_batch(&self.inner.worker_id, LEASE_MS, OUTBOX_CLAIM_MAX)
            .await?;
        if items.is_empty() {
            return Ok(false);
        }
        if i64::try_from(items.len()).unwrap_or(i64::MAX) >= OUTBOX_CLAIM_MAX {
            // There may be more: another worker sends the next batch while this one sends its own.
            self.wake_outbox();
        }
        let results = futures::future::join_all(items.iter().map(|item| self.send(item))).await;
        let mut sent = Vec::with_capacity(items.len());
        let mut failed = Vec::new();
        for (item, result) in items.iter().zip(results) {
            match result {
                Ok(provider_id) => sent.push((item.id.clone(), provider_id)),
                Err(e) => failed.push((item, e)),
            }
        }
        // What was sent is recorded first: a message must not go out twice because a failure's record failed.
        store.mark_sent_all(&sent).await?;
        for (item, e) in failed {
            self.record_failed(item, &e).await?;
        }
        Ok(true)
    }

    async fn record_failed(&self, item: &OutboxItem, e: &SendError) -> Result<(), StoreError> {
        let permanent = e.kind == SendErrorKind::Permanent;
        let retry_in_ms = RetryPolicy::default()
            .backoff(u32::try_from(item.attempts).unwrap_or(1))
            .as_millis();
        let parked = self
            .inner
            .store
            .mark_failed(
                item,
                &e.message,
                e.code,
                permanent,
                i64::try_from(retry_in_ms).unwrap_or(1_000) * 4,
            )
            .await?;
        tracing::warn!(target: "chat::outbox", id = %item.id, platform = item.platform.as_str(), kind = ?e.kind, code = ?e.code, parked, "delivery failed: {}", e.message);
        Ok(())
    }

    async fn send(&self, item: &OutboxItem) -> Result<Option<String>, SendError> {
        let not_configured = |p: &str| SendError {
            kind: SendErrorKind::Permanent,
            attempts: 0,
            http_status: None,
            code: None,
            message: format!("{p} is not configured on this node"),
        };
        // The stored message holds a placeholder where the pickup code goes: the code exists only in what is sent.
        let message = self.reveal(item.message.clone()).await.map_err(|e| SendError {
            kind: SendErrorKind::Transient,
            attempts: 0,
            http_status: None,
            code: None,
            message: format!("the pickup code could not be derived: {e}"),
        })?;
        match item.platform {
            Platform::Whatsapp => {
                let client = self
                    .inner
                    .whatsapp
                    .as_ref()
                    .ok_or_else(|| not_configured("whatsapp"))?;
                client.send(&item.address, &message).await.map(Some)
            }
            Platform::Telegram => {
                let client = self
                    .inner
                    .telegram
                    .as_ref()
                    .ok_or_else(|| not_configured("telegram"))?;
                if let Some(cb) = &item.callback_query_id {
                    // Stops the button spinner; failures here do not block the reply.
                    if let Err(e) = client.answer_callback_query(cb, None).await {
                        tracing::debug!(target: "chat::telegram", error = %e, "answerCallbackQuery failed");
                    }
                }
                let chat_id: i64 = item.address.parse().map_err(|_| SendError {
                    kind: SendErrorKind::Permanent,
                    attempts: 0,
                    http_status: None,
                    code: None,
                    message: "telegram address is not a chat id".to_owned(),
                })?;
                client
                    .send_message(chat_id, &message)
                    .await
                    .map(|id| Some(id.to_string()))
            }
            // Terminal messages are fetched by the terminal client, never claimed here.
            Platform::Terminal => Ok(None),
        }
    }

    /// The message as it is delivered: a pickup-code placeholder replaced by the code, derived now (the stored
    /// message never holds it). A remittance that is not (or no longer) a cash pickup gets "-".
    pub async fn reveal(&self, mut message: OutboundMessage) -> Result<OutboundMessage, BackendError> {
        let Some(id) = message.reveal_pickup_code_of.take() else {
            return Ok(message);
        };
        let code = match self.inner.backend.pickup_code(&id).await {
            Ok(c) => c,
            Err(BackendError::NotFound) => None,
            Err(e) => return Err(e),
        };
        let code = code.unwrap_or_else(|| "-".to_owned());
        message.text = message.text.replace(PICKUP_CODE_PLACEHOLDER, &code);
        if let Some(t) = message.template.as_mut() {
            for p in &mut t.body_params {
                *p = p.replace(PICKUP_CODE_PLACEHOLDER, &code);
            }
        }
        Ok(message)
    }

    /// [`Self::reveal`] over messages fetched by the terminal client (it is their delivery).
    pub async fn reveal_all(
        &self,
        messages: Vec<OutboundMessage>,
    ) -> Result<Vec<OutboundMessage>, BackendError> {
        let mut out = Vec::with_capacity(messages.len());
        for m in messages {
            out.push(self.reveal(m).await?);
        }
        Ok(out)
    }

    /// The pickup code in the recipient's message about remittance `remittance_id`, as the recipient reads it:
    /// `None` until that message is queued. The devnet's partner simulator stands in for the recipient at the
    /// counter with it (`partner::spawn_dev_sim`); it reads the queued message without taking it from the chat.
    pub async fn recipient_pickup_code(&self, remittance_id: &str) -> Result<Option<String>, BackendError> {
        let key = format!("notify:{remittance_id}:incoming:recipient");
        let Some(message) = self
            .inner
            .store
            .outbox_message(&key)
            .await
            .map_err(|e| BackendError::Internal(e.to_string()))?
        else {
            return Ok(None);
        };
        if message.reveal_pickup_code_of.as_deref() != Some(remittance_id) {
            return Ok(None);
        }
        self.inner.backend.pickup_code(remittance_id).await
    }

    async fn run_notifier(&self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            match self.notify_once().await {
                Ok(n) if n > 0 => {
                    self.wake_outbox();
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(target: "chat::notify", error = %e, "notifier"),
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(self.inner.poll_interval) => {}
            }
        }
    }

    /// Reads one page of the engine's transition feed and enqueues the notifications; returns events read.
    pub async fn notify_once(&self) -> Result<usize, NotifyError> {
        let store = &self.inner.store;
        let cursor = store.cursor(NOTIFY_CURSOR).await?;
        let events = self
            .inner
            .backend
            .events_after(cursor, EVENTS_PAGE)
            .await
            .map_err(|e| NotifyError::Backend(e.to_string()))?;
        // The whole page is one transaction: its messages in event order, and the cursor past it.
        let mut messages = Vec::new();
        for ev in &events {
            self.notify_event(ev, &mut messages).await?;
        }
        if let Some(last) = events.last() {
            store
                .enqueue_all(&messages, Some((NOTIFY_CURSOR, last.seq)))
                .await?;
        }
        Ok(events.len() + self.notify_kyc_once().await?)
    }

    /// Tells customers about operators' KYC decisions (approved, refused, details needed again), once each.
    async fn notify_kyc_once(&self) -> Result<usize, NotifyError> {
        let store = &self.inner.store;
        let since = store.cursor(KYC_CURSOR).await?;
        let (notices, next) = self
            .inner
            .backend
            .kyc_notices_since(since, EVENTS_PAGE)
            .await
            .map_err(|e| NotifyError::Backend(e.to_string()))?;
        for n in &notices {
            let Some(who) = store.identities_of_user(&n.user_id).await?.into_iter().next() else {
                continue;
            };
            store
                .enqueue(&NewOutbound {
                    dedupe_key: format!("kyc:{}", n.event_id),
                    platform: who.platform,
                    address: who.address,
                    message: render::kyc_outcome(who.lang, n.tier, n.status),
                    callback_query_id: None,
                })
                .await?;
        }
        if next > since {
            store.advance_cursor(KYC_CURSOR, next).await?;
        }
        Ok(notices.len())
    }

    /// The messages `ev` asks for, appended to `out` (queued by the caller).
    async fn notify_event(
        &self,
        ev: &TransitionEvent,
        out: &mut Vec<NewOutbound>,
    ) -> Result<(), NotifyError> {
        enum Who {
            Sender,
            Recipient,
        }
        let mut plan: Vec<(Who, &str)> = match ev.to_state.as_str() {
            "funds_locked" => vec![(Who::Sender, "locked"), (Who::Recipient, "incoming")],
            // If the engine's feed skipped funds_locked for us (cursor set late), these still deliver the code once.
            "payout_assigned" | "payout_accepted" => vec![(Who::Recipient, "incoming")],
            "paid" => vec![(Who::Sender, "paid"), (Who::Recipient, "paid")],
            "settled" => vec![(Who::Sender, "settled")],
            "refunded" => vec![(Who::Sender, "refunded"), (Who::Recipient, "refunded")],
            // The deposit (or P2P transfer) was refused for good: nothing left the sender's wallet.
            "failed" => vec![(Who::Sender, "failed")],
            // A compliance review ended (the sender heard "under review" when confirming).
            "quoted" if ev.cause == "hold_released" => vec![(Who::Sender, "review_released")],
            "cancelled" | "expired" if matches!(ev.cause.as_str(), "hold_rejected" | "hold_expired") => {
                vec![(Who::Sender, "review_closed")]
            }
            _ => return Ok(()),
        };
        let store = &self.inner.store;
        let view = match self.inner.backend.notification_view(&ev.remittance_id).await {
            Ok(v) => v,
            Err(super::backend::BackendError::NotFound) => return Ok(()),
            Err(e) => return Err(NotifyError::Backend(e.to_string())),
        };
        // A P2P transfer into a Remesa wallet has no escrow or partner steps: settled is when both sides hear.
        if view.payout_method == PayoutMethod::RemesaWallet {
            plan.retain(|(_, what)| matches!(*what, "failed" | "review_released" | "review_closed"));
            if ev.to_state == "settled" {
                plan = vec![(Who::Sender, "p2p_sent"), (Who::Recipient, "p2p_received")];
            }
            if plan.is_empty() {
                return Ok(());
            }
        }
        for (who, what) in plan {
            let (platform, address, lang) = match who {
                Who::Sender => match store
                    .identities_of_user(&view.sender_user_id)
                    .await?
                    .into_iter()
                    .next()
                {
                    Some(i) => (i.platform, i.address, i.lang),
                    None => continue,
                },
                Who::Recipient => self.recipient_route(&view.recipient_phone).await?,
            };
            let to_sender = matches!(who, Who::Sender);
            let message: OutboundMessage = match what {
                "locked" => render::sender_locked(lang, &view.reference, ev.tx_hash.as_deref()),
                "incoming" => self.incoming_message(&view, &ev.remittance_id, platform, lang),
                "paid" => render::paid(lang, &view.reference, to_sender),
                "settled" => render::settled(lang, &view.reference, ev.tx_hash.as_deref()),
                "p2p_sent" => render::p2p_sent(
                    lang,
                    &view.reference,
                    view.payout_amount,
                    &view.payout_currency,
                    ev.tx_hash.as_deref(),
                ),
                "p2p_received" => render::p2p_received(
                    lang,
                    &view.sender_label,
                    view.payout_amount,
                    &view.payout_currency,
                    &view.reference,
                ),
                "failed" => render::failed(lang, &view.reference, ev.failure.as_deref()),
                "review_released" => render::review_released(lang, &view.reference),
                "review_closed" => render::review_closed(lang, &view.reference),
                _ => render::refunded(lang, &view.reference, to_sender),
            };
            let role = if to_sender { "sender" } else { "recipient" };
            out.push(NewOutbound {
                dedupe_key: format!("notify:{}:{what}:{role}", ev.remittance_id),
                platform,
                address,
                message,
                callback_query_id: None,
            });
        }
        Ok(())
    }

    /// The recipient's "money on its way" message; for a cash pickup its code is a placeholder filled in at delivery.
    fn incoming_message(
        &self,
        view: &NotificationView,
        remittance_id: &str,
        platform: Platform,
        lang: Lang,
    ) -> OutboundMessage {
        let mut m = render::recipient_incoming(
            lang,
            &IncomingView {
                sender: view.sender_label.clone(),
                payout_amount: view.payout_amount,
                payout_currency: view.payout_currency.clone(),
                payout_method: view.payout_method,
                partner_name: view.partner_name.clone(),
                where_to_collect: view.where_to_collect.clone(),
                pickup_code: view.pickup_code.clone(),
                reference: view.reference.clone(),
                expires_at_unix_s: view.expires_at_unix_s,
            },
        );
        if view.pickup_code.is_some() {
            m.reveal_pickup_code_of = Some(remittance_id.to_owned());
        }
        // The recipient may never have written to us: outside the 24-hour window WhatsApp only delivers approved
        // templates.
        if let (Platform::Whatsapp, Some(name)) = (platform, &self.inner.recipient_template) {
            m.template = Some(TemplateMessage {
                name: name.clone(),
                language: if lang == Lang::Es {
                    "es".to_owned()
                } else {
                    "en_US".to_owned()
                },
                body_params: vec![
                    view.sender_label.clone(),
                    format!("{} {}", format_money(view.payout_amount), view.payout_currency),
                    view.partner_name.clone(),
                    view.pickup_code.clone().unwrap_or_else(|| "-".to_owned()),
                    view.reference.clone(),
                ],
            });
        }
        m
    }

    /// Sends the recipient's message with the pickup code of `remittance_id` again, to the recipient's chat only
    /// (a lost code). `by` says who asked (`sender` after the sender's confirmation in chat, `operator`);
    /// `request` makes it idempotent (the same request queues one message). At most [`RESENDS_MAX`] per
    /// remittance. Logged under the `audit` target; the outbox row (dedupe key `resend:<id>:<by>:<request>`) is the
    /// durable record.
    pub async fn resend_pickup_code(
        &self,
        remittance_id: &str,
        by: &str,
        request: &str,
    ) -> Result<(), ResendError> {
        let view = match self.inner.backend.notification_view(remittance_id).await {
            Ok(v) => v,
            Err(BackendError::NotFound) => return Err(ResendError::NotFound),
            Err(e) => return Err(ResendError::Backend(e.to_string())),
        };
        let collectible = matches!(
            view.state.as_str(),
            "funds_locked" | "payout_assigned" | "payout_accepted"
        );
        if view.pickup_code.is_none() || !collectible {
            return Err(ResendError::NotCollectible);
        }
        let store = &self.inner.store;
        let prefix = format!("resend:{remittance_id}:");
        let dedupe_key = format!("{prefix}{by}:{request}");
        if store.outbox_message(&dedupe_key).await?.is_some() {
            return Ok(());
        }
        if store.count_outbox_prefix(&prefix).await? >= RESENDS_MAX {
            return Err(ResendError::TooOften);
        }
        let (platform, address, lang) = self.recipient_route(&view.recipient_phone).await?;
        let message = self.incoming_message(&view, remittance_id, platform, lang);
        store
            .enqueue(&NewOutbound {
                dedupe_key,
                platform,
                address,
                message,
                callback_query_id: None,
            })
            .await?;
        tracing::info!(target: "audit", remittance_id, by, platform = platform.as_str(), "pickup code sent to the recipient's chat again");
        self.wake_outbox();
        Ok(())
    }

    /// Where the recipient is told: a chat identity with that phone (any platform) if one exists, else WhatsApp by
    /// phone number when WhatsApp is configured, else the terminal (devnet).
    async fn recipient_route(&self, phone_e164: &str) -> Result<(Platform, String, Lang), StoreError> {
        if let Some(i) = self.inner.store.identity_by_phone(phone_e164).await? {
            return Ok((i.platform, i.address, i.lang));
        }
        // Spanish for Latin American numbers, English otherwise.
        let lang = if [
            "+502", "+52", "+503", "+504", "+505", "+506", "+507", "+57", "+51", "+593", "+591", "+1809",
            "+1829", "+1849", "+54", "+56", "+58", "+34",
        ]
        .iter()
        .any(|p| phone_e164.starts_with(p))
        {
            Lang::Es
        } else {
            Lang::En
        };
        if self.inner.whatsapp.is_some() {
            Ok((
                Platform::Whatsapp,
                phone_e164.trim_start_matches('+').to_owned(),
                lang,
            ))
        } else {
            Ok((Platform::Terminal, phone_e164.to_owned(), lang))
        }
    }
}

/// Notifier errors.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Storage.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Engine.
    #[error("engine: {0}")]
    Backend(String),
}
