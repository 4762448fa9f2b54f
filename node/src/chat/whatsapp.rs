//! WhatsApp Cloud API: tolerant webhook payload types, normalisation into [`InboundMessage`]s, and the outbound
//! Graph API client (text, reply buttons, lists) with bounded retries that honour rate limits.
//!
//! Tolerance rules: every `entry`, `change`, `message` and `status` is visited; each message is decoded on its own so
//! one odd element never spoils its neighbours; unknown message types become [`InboundContent::Unsupported`];
//! `from`/`wa_id` are optional (username-only users carry only a business-scoped user id, BSUID).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::model::{
    Button, ChatSender, INBOUND_TEXT_MAX_BYTES, InboundContent, InboundMessage, OutboundMessage, Platform,
    truncate_utf8,
};
use super::retry::RetryPolicy;

/// Top level of a webhook POST body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WebhookPayload {
    /// `whatsapp_business_account`.
    pub object: Option<String>,
    /// Entries (one per business account).
    pub entry: Vec<Entry>,
}

/// One entry of a webhook payload.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Entry {
    /// Business account id.
    pub id: Option<String>,
    /// Changes.
    pub changes: Vec<Change>,
}

/// One change.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Change {
    /// `messages` for everything this bridge handles.
    pub field: Option<String>,
    /// The change value.
    pub value: ChangeValue,
}

/// The value of a `messages` change.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ChangeValue {
    /// `whatsapp`.
    pub messaging_product: Option<String>,
    /// Business number the event belongs to.
    pub metadata: Option<Metadata>,
    /// Profiles of the users in `messages`.
    pub contacts: Vec<Contact>,
    /// Raw messages, decoded one by one with [`WaMessage`].
    pub messages: Vec<Value>,
    /// Raw statuses, decoded one by one with [`WaStatus`].
    pub statuses: Vec<Value>,
}

/// Business phone number metadata.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Metadata {
    /// Display number.
    pub display_phone_number: Option<String>,
    /// Phone number id (the `{phone_number_id}` of the send URL).
    pub phone_number_id: Option<String>,
}

/// A contact (sender profile).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Contact {
    /// Profile.
    pub profile: Option<Profile>,
    /// Phone number digits; absent for username-only users.
    pub wa_id: Option<String>,
    /// Business-scoped user id (BSUID), e.g. `US.13491208655302741918`.
    pub user_id: Option<String>,
}

/// A contact's profile.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Profile {
    /// Display name.
    pub name: Option<String>,
    /// Username (`@name`), newer API versions.
    pub username: Option<String>,
}

/// One inbound message. Every field but `id` is optional; unknown types keep their name in `kind`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WaMessage {
    /// Sender phone digits (absent for username-only users).
    pub from: Option<String>,
    /// Sender BSUID (newer versions).
    pub from_user_id: Option<String>,
    /// `wamid.…`.
    pub id: Option<String>,
    /// Unix seconds as a string.
    pub timestamp: Option<String>,
    /// `text`, `interactive`, `button`, `image`, `location`, `reaction`, `unsupported`, …
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Text body.
    pub text: Option<WaText>,
    /// Interactive reply.
    pub interactive: Option<WaInteractive>,
    /// Template quick reply.
    pub button: Option<WaTemplateButton>,
}

/// `text` of a message.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WaText {
    /// Body.
    pub body: Option<String>,
}

/// `interactive` of a message.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WaInteractive {
    /// `button_reply` or `list_reply` (others exist: `nfm_reply`…).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Reply button pressed.
    pub button_reply: Option<WaReply>,
    /// List row chosen.
    pub list_reply: Option<WaReply>,
}

/// A button or list reply.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WaReply {
    /// Our id.
    pub id: Option<String>,
    /// Label.
    pub title: Option<String>,
}

/// A template quick-reply button press (`type: button`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WaTemplateButton {
    /// Payload configured on the template.
    pub payload: Option<String>,
    /// Label.
    pub text: Option<String>,
}

/// A delivery status of a message we sent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct WaStatus {
    /// Our sent message id.
    pub id: Option<String>,
    /// `sent`, `delivered`, `read`, `failed`, …
    pub status: Option<String>,
    /// Recipient phone digits or group id.
    pub recipient_id: Option<String>,
    /// Errors of a failed delivery.
    pub errors: Vec<WaError>,
}

/// An error object in statuses or messages.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(default)]
pub struct WaError {
    /// Numeric code (e.g. 131047).
    pub code: Option<i64>,
    /// Title.
    pub title: Option<String>,
    /// Message.
    pub message: Option<String>,
}

/// A normalised delivery status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryStatus {
    /// The sent message id.
    pub message_id: String,
    /// Status name.
    pub status: String,
    /// Recipient.
    pub recipient_id: Option<String>,
    /// First error code, for failed deliveries.
    pub error_code: Option<i64>,
    /// First error title.
    pub error_title: Option<String>,
}

/// Everything a webhook payload carried, normalised.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookEvents {
    /// Inbound messages, in payload order.
    pub messages: Vec<InboundMessage>,
    /// Delivery statuses.
    pub statuses: Vec<DeliveryStatus>,
    /// Elements that could not be used at all (no id or no sender), for logs.
    pub skipped: usize,
}

/// Largest number of messages + statuses taken from one payload (Meta batches up to 1000 changes).
pub const EVENTS_PER_PAYLOAD_MAX: usize = 1_000;

/// Parses a webhook body. `Err` only when the body is not a JSON object of the expected shape at the top level.
pub fn parse_webhook(body: &[u8]) -> Result<WebhookEvents, serde_json::Error> {
    let payload: WebhookPayload = serde_json::from_slice(body)?;
    Ok(normalise(&payload))
}

/// Normalises a decoded payload.
pub fn normalise(payload: &WebhookPayload) -> WebhookEvents {
    let mut out = WebhookEvents::default();
    for change in payload.entry.iter().flat_map(|e| e.changes.iter()) {
        let value = &change.value;
        for raw in &value.messages {
            if out.messages.len() + out.statuses.len() >= EVENTS_PER_PAYLOAD_MAX {
                out.skipped += 1;
                continue;
            }
            match normalise_message(raw, &value.contacts) {
                Some(m) => out.messages.push(m),
                None => out.skipped += 1,
            }
        }
        for raw in &value.statuses {
            if out.messages.len() + out.statuses.len() >= EVENTS_PER_PAYLOAD_MAX {
                out.skipped += 1;
                continue;
            }
            let Ok(st) = serde_json::from_value::<WaStatus>(raw.clone()) else {
                out.skipped += 1;
                continue;
            };
            let (Some(message_id), Some(status)) = (st.id, st.status) else {
                out.skipped += 1;
                continue;
            };
            let first = st.errors.first();
            out.statuses.push(DeliveryStatus {
                message_id,
                status,
                recipient_id: st.recipient_id,
                error_code: first.and_then(|e| e.code),
                error_title: first.and_then(|e| e.title.clone().or_else(|| e.message.clone())),
            });
        }
    }
    out
}

fn normalise_message(raw: &Value, contacts: &[Contact]) -> Option<InboundMessage> {
    // A message whose known fields have unexpected types still yields its id, sender and kind.
    let msg: WaMessage = serde_json::from_value(raw.clone()).unwrap_or_else(|_| WaMessage {
        from: raw.get("from").and_then(Value::as_str).map(str::to_owned),
        from_user_id: raw.get("from_user_id").and_then(Value::as_str).map(str::to_owned),
        id: raw.get("id").and_then(Value::as_str).map(str::to_owned),
        kind: Some("malformed".to_owned()),
        ..WaMessage::default()
    });
    let message_id = msg.id.clone().filter(|id| !id.is_empty() && id.len() <= 512)?;
    let contact = contacts.iter().find(|c| {
        (msg.from.is_some() && c.wa_id == msg.from)
            || (msg.from_user_id.is_some() && c.user_id == msg.from_user_id)
    });
    let contact = contact.or(if contacts.len() == 1 {
        contacts.first()
    } else {
        None
    });
    let phone_digits = msg
        .from
        .clone()
        .or_else(|| contact.and_then(|c| c.wa_id.clone()))
        .filter(|d| !d.is_empty() && d.len() <= 20 && d.bytes().all(|b| b.is_ascii_digit()));
    let bsuid = msg
        .from_user_id
        .clone()
        .or_else(|| contact.and_then(|c| c.user_id.clone()));
    let user_key = phone_digits.clone().or(bsuid)?;
    let sender = ChatSender {
        address: user_key.clone(),
        user_key,
        phone_e164: phone_digits.map(|d| format!("+{d}")),
        display_name: contact
            .and_then(|c| c.profile.as_ref())
            .and_then(|p| p.name.clone()),
        language_code: None,
    };
    let kind = msg.kind.clone().unwrap_or_else(|| "unknown".to_owned());
    let content = match kind.as_str() {
        "text" => match msg.text.as_ref().and_then(|t| t.body.as_deref()) {
            Some(body) => {
                let (text, truncated) = truncate_utf8(body, INBOUND_TEXT_MAX_BYTES);
                InboundContent::Text { text, truncated }
            }
            None => InboundContent::Unsupported { kind },
        },
        "interactive" => {
            let reply = msg
                .interactive
                .as_ref()
                .and_then(|i| i.button_reply.as_ref().or(i.list_reply.as_ref()));
            match reply.and_then(|r| r.id.clone().map(|id| (id, r.title.clone()))) {
                Some((id, title)) => InboundContent::Button { id, title },
                None => InboundContent::Unsupported {
                    kind: format!(
                        "interactive/{}",
                        msg.interactive
                            .as_ref()
                            .and_then(|i| i.kind.as_deref())
                            .unwrap_or("unknown")
                    ),
                },
            }
        }
        "button" => match msg
            .button
            .as_ref()
            .and_then(|b| b.payload.clone().or_else(|| b.text.clone()))
        {
            Some(id) => InboundContent::Button {
                id,
                title: msg.button.as_ref().and_then(|b| b.text.clone()),
            },
            None => InboundContent::Unsupported { kind },
        },
        _ => InboundContent::Unsupported { kind },
    };
    Some(InboundMessage {
        platform: Platform::Whatsapp,
        message_id,
        sender,
        content,
        callback_query_id: None,
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Outbound

/// WhatsApp limits on interactive messages.
pub const BUTTONS_MAX: usize = 3;
/// Longest reply button title, in characters.
pub const BUTTON_TITLE_MAX_CHARS: usize = 20;
/// Most rows in a list message.
pub const LIST_ROWS_MAX: usize = 10;
/// Longest list row title, in characters.
pub const ROW_TITLE_MAX_CHARS: usize = 24;
/// Longest interactive body, in characters.
pub const INTERACTIVE_BODY_MAX_CHARS: usize = 1024;
/// Longest text body, in characters.
pub const TEXT_BODY_MAX_CHARS: usize = 4096;
/// Most template body parameters sent.
pub const TEMPLATE_PARAMS_MAX: usize = 10;
/// Longest template parameter, in characters.
pub const TEMPLATE_PARAM_MAX_CHARS: usize = 1024;
/// Longest error response body kept, in bytes.
const ERROR_BODY_MAX_BYTES: usize = 64 * 1024;

fn cut_chars(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Graph API error codes that mean "slow down" (retried with back-off): 4 app call limit, 80007 WABA rate limit,
/// 130429 throughput, 131056 pair rate limit, 131048 spam rate limit.
pub const RATE_LIMIT_CODES: &[i64] = &[4, 80007, 130429, 131056, 131048];
/// Graph API error codes that are transient (retried): 1 unknown, 2 service, 131000 something went wrong,
/// 131016 service unavailable.
pub const TRANSIENT_CODES: &[i64] = &[1, 2, 131000, 131016];

/// The JSON body of a send request for `to` (phone digits or a BSUID).
pub fn send_request_body(to: &str, msg: &OutboundMessage) -> Value {
    let mut body = json!({ "messaging_product": "whatsapp", "recipient_type": "individual" });
    // Username-only users are addressed by their BSUID (`CC.digits`), phone users by their digits.
    let is_bsuid = to.contains('.') && to.bytes().any(|b| b.is_ascii_alphabetic());
    body[if is_bsuid { "recipient" } else { "to" }] = json!(to.trim_start_matches('+'));
    if let Some(t) = &msg.template {
        let params: Vec<Value> = t
            .body_params
            .iter()
            .take(TEMPLATE_PARAMS_MAX)
            .map(|p| json!({ "type": "text", "text": cut_chars(p, TEMPLATE_PARAM_MAX_CHARS) }))
            .collect();
        body["type"] = json!("template");
        body["template"] = json!({
            "name": t.name,
            "language": { "code": t.language },
            "components": [ { "type": "body", "parameters": params } ],
        });
    } else if msg.buttons.is_empty() {
        body["type"] = json!("text");
        body["text"] = json!({ "preview_url": false, "body": cut_chars(&msg.text, TEXT_BODY_MAX_CHARS) });
    } else if msg.buttons.len() <= BUTTONS_MAX {
        let buttons: Vec<Value> = msg
            .buttons
            .iter()
            .map(|b| json!({ "type": "reply", "reply": { "id": cut_chars(&b.id, 256), "title": cut_chars(&b.title, BUTTON_TITLE_MAX_CHARS) } }))
            .collect();
        body["type"] = json!("interactive");
        body["interactive"] = json!({
            "type": "button",
            "body": { "text": cut_chars(&msg.text, INTERACTIVE_BODY_MAX_CHARS) },
            "action": { "buttons": buttons },
        });
    } else {
        let rows: Vec<Value> = msg
            .buttons
            .iter()
            .take(LIST_ROWS_MAX)
            .map(
                |b| json!({ "id": cut_chars(&b.id, 200), "title": cut_chars(&b.title, ROW_TITLE_MAX_CHARS) }),
            )
            .collect();
        body["type"] = json!("interactive");
        body["interactive"] = json!({
            "type": "list",
            "body": { "text": cut_chars(&msg.text, INTERACTIVE_BODY_MAX_CHARS) },
            "action": { "button": "Menu", "sections": [ { "title": "Menu", "rows": rows } ] },
        });
    }
    body
}

/// How a send failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SendErrorKind {
    /// Still rate limited after the allowed attempts (or asked to wait longer than we may): try later.
    RateLimited,
    /// Network or server trouble that outlasted the retries: try later.
    Transient,
    /// Refused for good (bad recipient, outside the 24 h window, bad token…): do not retry.
    Permanent,
}

/// A failed send, safe to store and log (no tokens).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{kind:?} after {attempts} attempt(s): {message}")]
pub struct SendError {
    /// Classification.
    pub kind: SendErrorKind,
    /// Attempts made.
    pub attempts: u32,
    /// Last HTTP status, if a response arrived.
    pub http_status: Option<u16>,
    /// Last platform error code (Graph `error.code`, Telegram `error_code`).
    pub code: Option<i64>,
    /// Human-readable description.
    pub message: String,
}

/// Outcome of one attempt, used by the retry loops of both clients.
#[derive(Debug)]
pub(crate) enum Attempt<T> {
    Done(T),
    Retry {
        err: SendError,
        server_wait: Option<Duration>,
    },
    Fail(SendError),
}

/// Runs `attempt` up to `policy.attempts()` times with back-off.
pub(crate) async fn with_retries<T, F, Fut>(policy: &RetryPolicy, mut attempt: F) -> Result<T, SendError>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = Attempt<T>>,
{
    let max = policy.attempts();
    let mut n = 1;
    loop {
        match attempt(n).await {
            Attempt::Done(v) => return Ok(v),
            Attempt::Fail(mut e) => {
                e.attempts = n;
                return Err(e);
            }
            Attempt::Retry { mut err, server_wait } => {
                err.attempts = n;
                if n >= max {
                    return Err(err);
                }
                let Some(wait) = policy.wait(n, server_wait) else {
                    return Err(err);
                };
                tracing::debug!(target: "chat::outbound", attempt = n, wait_ms = wait.as_millis() as u64, error = %err, "retrying");
                tokio::time::sleep(wait).await;
                n += 1;
            }
        }
    }
}

pub(crate) fn parse_retry_after_header(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Body of a Graph API error response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct GraphErrorEnvelope {
    /// The error.
    pub error: GraphError,
}

/// A Graph API error.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct GraphError {
    /// Message.
    pub message: Option<String>,
    /// `OAuthException`, …
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Code.
    pub code: Option<i64>,
    /// Sub-code.
    pub error_subcode: Option<i64>,
    /// Meta's hint that a retry may work.
    pub is_transient: Option<bool>,
    /// Trace id for Meta support.
    pub fbtrace_id: Option<String>,
}

/// Successful send response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SendResponse {
    /// Sent messages (one).
    pub messages: Vec<SentMessageRef>,
}

/// One sent message in a [`SendResponse`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SentMessageRef {
    /// `wamid.…`.
    pub id: Option<String>,
    /// `accepted` / `held_for_quality_assessment` in newer versions.
    pub message_status: Option<String>,
}

/// Classifies a non-success Graph response.
pub fn classify_graph_error(http_status: u16, body: &[u8]) -> (SendErrorKind, SendError) {
    let env: GraphErrorEnvelope = serde_json::from_slice(body).unwrap_or_default();
    let code = env.error.code;
    let kind = if http_status == 429 || code.is_some_and(|c| RATE_LIMIT_CODES.contains(&c)) {
        SendErrorKind::RateLimited
    } else if http_status >= 500
        || env.error.is_transient == Some(true)
        || code.is_some_and(|c| TRANSIENT_CODES.contains(&c))
    {
        SendErrorKind::Transient
    } else {
        SendErrorKind::Permanent
    };
    let message = env
        .error
        .message
        .map(|m| cut_chars(&m, 300))
        .unwrap_or_else(|| format!("HTTP {http_status}"));
    (
        kind,
        SendError {
            kind,
            attempts: 0,
            http_status: Some(http_status),
            code,
            message,
        },
    )
}

/// Outbound WhatsApp client.
#[derive(Clone)]
pub struct WhatsappClient {
    http: reqwest::Client,
    api_base: String,
    phone_number_id: String,
    access_token: SecretString,
    policy: RetryPolicy,
}

impl std::fmt::Debug for WhatsappClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhatsappClient")
            .field("api_base", &self.api_base)
            .field("phone_number_id", &self.phone_number_id)
            .field("access_token", &"[redacted]")
            .finish()
    }
}

impl WhatsappClient {
    /// A client for `{api_base}/{phone_number_id}/messages`.
    pub fn new(
        http: reqwest::Client,
        api_base: impl Into<String>,
        phone_number_id: impl Into<String>,
        access_token: SecretString,
        policy: RetryPolicy,
    ) -> Self {
        Self {
            http,
            api_base: api_base.into().trim_end_matches('/').to_owned(),
            phone_number_id: phone_number_id.into(),
            access_token,
            policy,
        }
    }

    /// Sends `msg` to `to` (phone digits, `+E.164`, or a BSUID); returns the `wamid` of the sent message.
    #[tracing::instrument(target = "chat::whatsapp", skip(self, msg), fields(to_len = to.len()))]
    pub async fn send(&self, to: &str, msg: &OutboundMessage) -> Result<String, SendError> {
        let url = format!("{}/{}/messages", self.api_base, self.phone_number_id);
        let body = send_request_body(to, msg);
        let timeout = Duration::from_millis(self.policy.request_timeout_ms);
        with_retries(&self.policy, |_| {
            let req = self
                .http
                .post(&url)
                .bearer_auth(self.access_token.expose_secret())
                .timeout(timeout)
                .json(&body);
            async move {
                let resp = match req.send().await {
                    Ok(r) => r,
                    Err(e) => {
                        return Attempt::Retry {
                            err: SendError {
                                kind: SendErrorKind::Transient,
                                attempts: 0,
                                http_status: None,
                                code: None,
                                message: e.without_url().to_string(),
                            },
                            server_wait: None,
                        };
                    }
                };
                let status = resp.status().as_u16();
                let server_wait = parse_retry_after_header(resp.headers());
                let bytes = match read_limited(resp).await {
                    Ok(b) => b,
                    Err(message) => {
                        let err = SendError {
                            kind: SendErrorKind::Transient,
                            attempts: 0,
                            http_status: Some(status),
                            code: None,
                            message,
                        };
                        return Attempt::Retry {
                            err,
                            server_wait: None,
                        };
                    }
                };
                if (200..300).contains(&status) {
                    let parsed: SendResponse = serde_json::from_slice(&bytes).unwrap_or_default();
                    let id = parsed.messages.into_iter().find_map(|m| m.id).unwrap_or_default();
                    return Attempt::Done(id);
                }
                let (kind, err) = classify_graph_error(status, &bytes);
                match kind {
                    SendErrorKind::Permanent => Attempt::Fail(err),
                    _ => Attempt::Retry { err, server_wait },
                }
            }
        })
        .await
    }
}

/// Reads a response body up to [`ERROR_BODY_MAX_BYTES`].
pub(crate) async fn read_limited(mut resp: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if out.len() + chunk.len() > ERROR_BODY_MAX_BYTES {
                    return Err("response body too large".to_owned());
                }
                out.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(out),
            Err(e) => return Err(e.without_url().to_string()),
        }
    }
}

/// A convenience for tests and renderers: the buttons of a message as WhatsApp would show them.
pub fn button_titles(msg: &OutboundMessage) -> Vec<String> {
    msg.buttons
        .iter()
        .map(|b: &Button| cut_chars(&b.title, BUTTON_TITLE_MAX_CHARS))
        .collect()
}
