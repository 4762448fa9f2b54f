//! Telegram Bot API: tolerant `Update` types, normalisation into [`InboundMessage`]s, and the outbound client
//! (`sendMessage` with inline keyboards, `answerCallbackQuery`) honouring `parameters.retry_after`.
//!
//! Only private chats are acted on: a payment bot answers no one in groups and channels. Edited messages are
//! answered with a note instead of being acted on (an edit must never replay a command).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use super::model::{
    ChatSender, INBOUND_TEXT_MAX_BYTES, InboundContent, InboundMessage, OutboundMessage, Platform,
    truncate_utf8,
};
use super::retry::RetryPolicy;
use super::whatsapp::{Attempt, SendError, SendErrorKind, read_limited, with_retries};

/// One webhook delivery. Exactly one of the optional fields is normally set; every other kind (and kinds invented
/// after this was written) lands in nothing and is acknowledged.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Update {
    /// Update id.
    pub update_id: Option<i64>,
    /// New message (decoded leniently with [`TgMessage`]).
    pub message: Option<Value>,
    /// Edited message.
    pub edited_message: Option<Value>,
    /// Inline keyboard press.
    pub callback_query: Option<Value>,
}

/// A message.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TgMessage {
    /// Id within the chat.
    pub message_id: Option<i64>,
    /// Sender.
    pub from: Option<TgUser>,
    /// Chat.
    pub chat: Option<TgChat>,
    /// Text.
    pub text: Option<String>,
}

/// A user.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TgUser {
    /// Id.
    pub id: Option<i64>,
    /// Bot flag.
    pub is_bot: Option<bool>,
    /// First name.
    pub first_name: Option<String>,
    /// Username.
    pub username: Option<String>,
    /// IETF language tag of the user's client.
    pub language_code: Option<String>,
}

/// A chat.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TgChat {
    /// Id.
    pub id: Option<i64>,
    /// `private`, `group`, `supergroup`, `channel`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

/// A callback query.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TgCallbackQuery {
    /// Id to answer.
    pub id: Option<String>,
    /// Who pressed.
    pub from: Option<TgUser>,
    /// The message with the keyboard (absent for inline-mode messages).
    pub message: Option<TgMessage>,
    /// `callback_data`.
    pub data: Option<String>,
}

/// What to do with one update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TelegramEvent {
    /// A message or button press to process.
    Inbound(InboundMessage),
    /// An edit of an earlier message: reply with a note to `chat_id`, act on nothing.
    Edited {
        /// Chat to note.
        chat_id: i64,
        /// Dedupe key.
        message_id: String,
    },
    /// Nothing to do (other kinds, groups, bots, malformed).
    Ignore {
        /// Why, for logs.
        reason: &'static str,
    },
}

/// Parses one webhook body. `Err` only when it is not a JSON object.
pub fn parse_update(body: &[u8]) -> Result<TelegramEvent, serde_json::Error> {
    let update: Update = serde_json::from_slice(body)?;
    Ok(normalise(&update))
}

fn sender_of(user: &TgUser, chat_id: i64) -> Option<ChatSender> {
    let user_id = user.id?;
    Some(ChatSender {
        user_key: user_id.to_string(),
        address: chat_id.to_string(),
        phone_e164: None,
        display_name: user.first_name.clone(),
        language_code: user.language_code.clone(),
    })
}

/// Normalises an update.
pub fn normalise(update: &Update) -> TelegramEvent {
    if let Some(raw) = &update.message {
        let Ok(msg) = serde_json::from_value::<TgMessage>(raw.clone()) else {
            return TelegramEvent::Ignore {
                reason: "malformed message",
            };
        };
        let (Some(chat), Some(from), Some(message_id)) = (&msg.chat, &msg.from, msg.message_id) else {
            return TelegramEvent::Ignore {
                reason: "message without chat, sender or id",
            };
        };
        let Some(chat_id) = chat.id else {
            return TelegramEvent::Ignore {
                reason: "chat without id",
            };
        };
        if chat.kind.as_deref().is_some_and(|k| k != "private") {
            return TelegramEvent::Ignore {
                reason: "not a private chat",
            };
        }
        if from.is_bot == Some(true) {
            return TelegramEvent::Ignore { reason: "from a bot" };
        }
        let Some(sender) = sender_of(from, chat_id) else {
            return TelegramEvent::Ignore {
                reason: "sender without id",
            };
        };
        let content = match &msg.text {
            Some(t) => {
                let (text, truncated) = truncate_utf8(t, INBOUND_TEXT_MAX_BYTES);
                InboundContent::Text { text, truncated }
            }
            None => InboundContent::Unsupported { kind: first_key(raw) },
        };
        return TelegramEvent::Inbound(InboundMessage {
            platform: Platform::Telegram,
            message_id: format!("msg:{chat_id}:{message_id}"),
            sender,
            content,
            callback_query_id: None,
        });
    }
    if let Some(raw) = &update.edited_message {
        let msg: TgMessage = serde_json::from_value(raw.clone()).unwrap_or_default();
        return match (
            msg.chat.as_ref().and_then(|c| c.id),
            msg.message_id,
            msg.chat.as_ref().and_then(|c| c.kind.as_deref()),
        ) {
            (Some(chat_id), Some(id), Some("private") | None) => TelegramEvent::Edited {
                chat_id,
                message_id: format!("edit:{chat_id}:{id}:{}", update.update_id.unwrap_or(0)),
            },
            _ => TelegramEvent::Ignore {
                reason: "edited message outside a private chat",
            },
        };
    }
    if let Some(raw) = &update.callback_query {
        let Ok(cq) = serde_json::from_value::<TgCallbackQuery>(raw.clone()) else {
            return TelegramEvent::Ignore {
                reason: "malformed callback query",
            };
        };
        let (Some(id), Some(from)) = (cq.id.clone(), cq.from.as_ref()) else {
            return TelegramEvent::Ignore {
                reason: "callback query without id or sender",
            };
        };
        let chat = cq.message.as_ref().and_then(|m| m.chat.as_ref());
        if chat
            .and_then(|c| c.kind.as_deref())
            .is_some_and(|k| k != "private")
        {
            return TelegramEvent::Ignore {
                reason: "callback outside a private chat",
            };
        }
        // Inline-mode callbacks carry no chat: the user's private chat id equals the user id.
        let Some(chat_id) = chat.and_then(|c| c.id).or(from.id) else {
            return TelegramEvent::Ignore {
                reason: "callback without chat",
            };
        };
        let Some(sender) = sender_of(from, chat_id) else {
            return TelegramEvent::Ignore {
                reason: "sender without id",
            };
        };
        let content = match cq.data {
            Some(data) if !data.is_empty() => InboundContent::Button {
                id: data,
                title: None,
            },
            _ => InboundContent::Unsupported {
                kind: "callback_query/game".to_owned(),
            },
        };
        return TelegramEvent::Inbound(InboundMessage {
            platform: Platform::Telegram,
            message_id: format!("cbq:{id}"),
            sender,
            content,
            callback_query_id: Some(id),
        });
    }
    TelegramEvent::Ignore {
        reason: "update kind not handled",
    }
}

/// The content kind of a non-text message (`document`, `dice`, `story`, …) for logs.
fn first_key(raw: &Value) -> String {
    const META: &[&str] = &[
        "message_id",
        "from",
        "chat",
        "date",
        "message_thread_id",
        "reply_to_message",
        "entities",
        "sender_chat",
        "edit_date",
        "link_preview_options",
    ];
    raw.as_object()
        .and_then(|o| o.keys().find(|k| !META.contains(&k.as_str())).cloned())
        .unwrap_or_else(|| "unknown".to_owned())
}

// ---------------------------------------------------------------------------------------------------------------
// Outbound

/// Longest `sendMessage` text, in characters.
pub const TEXT_MAX_CHARS: usize = 4096;
/// Longest `callback_data`, in bytes.
pub const CALLBACK_DATA_MAX_BYTES: usize = 64;

/// A Bot API response envelope.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ApiResponse {
    /// Success flag.
    pub ok: bool,
    /// Result on success.
    pub result: Option<Value>,
    /// Error code (HTTP-like).
    pub error_code: Option<i64>,
    /// Error description.
    pub description: Option<String>,
    /// Extra error parameters.
    pub parameters: Option<ResponseParameters>,
}

/// `parameters` of an error response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ResponseParameters {
    /// Seconds to wait before retrying (flood control).
    pub retry_after: Option<u64>,
    /// The group moved to a supergroup with this id.
    pub migrate_to_chat_id: Option<i64>,
}

/// Body of `sendMessage` for `chat_id`: one button per keyboard row; `callback_data` cut to 64 bytes.
pub fn send_message_body(chat_id: i64, msg: &OutboundMessage) -> Value {
    let text: String = msg.text.chars().take(TEXT_MAX_CHARS).collect();
    let mut body = json!({ "chat_id": chat_id, "text": text });
    if !msg.buttons.is_empty() {
        let rows: Vec<Value> = msg
            .buttons
            .iter()
            .map(|b| json!([{ "text": b.title, "callback_data": cut_bytes(&b.id, CALLBACK_DATA_MAX_BYTES) }]))
            .collect();
        body["reply_markup"] = json!({ "inline_keyboard": rows });
    }
    body
}

fn cut_bytes(s: &str, max: usize) -> String {
    super::model::truncate_utf8(s, max).0
}

/// Classifies a Bot API error response.
pub fn classify_error(http_status: u16, resp: &ApiResponse) -> (SendError, Option<Duration>) {
    let retry_after = resp
        .parameters
        .as_ref()
        .and_then(|p| p.retry_after)
        .map(Duration::from_secs);
    let code = resp.error_code.or(Some(i64::from(http_status)));
    let kind = if http_status == 429 || code == Some(429) || retry_after.is_some() {
        SendErrorKind::RateLimited
    } else if http_status >= 500 {
        SendErrorKind::Transient
    } else {
        SendErrorKind::Permanent
    };
    let message: String = resp
        .description
        .clone()
        .unwrap_or_else(|| format!("HTTP {http_status}"))
        .chars()
        .take(300)
        .collect();
    (
        SendError {
            kind,
            attempts: 0,
            http_status: Some(http_status),
            code,
            message,
        },
        retry_after,
    )
}

/// Outbound Telegram client. The bot token is part of every URL, so URLs never reach errors or logs.
#[derive(Clone)]
pub struct TelegramClient {
    http: reqwest::Client,
    api_base: String,
    bot_token: SecretString,
    policy: RetryPolicy,
}

impl std::fmt::Debug for TelegramClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramClient")
            .field("api_base", &self.api_base)
            .field("bot_token", &"[redacted]")
            .finish()
    }
}

impl TelegramClient {
    /// A client for `{api_base}/bot{token}/{method}`.
    pub fn new(
        http: reqwest::Client,
        api_base: impl Into<String>,
        bot_token: SecretString,
        policy: RetryPolicy,
    ) -> Self {
        Self {
            http,
            api_base: api_base.into().trim_end_matches('/').to_owned(),
            bot_token,
            policy,
        }
    }

    /// `sendMessage`; returns the sent message id.
    pub async fn send_message(&self, chat_id: i64, msg: &OutboundMessage) -> Result<i64, SendError> {
        let result = self.call("sendMessage", &send_message_body(chat_id, msg)).await?;
        Ok(result
            .get("message_id")
            .and_then(Value::as_i64)
            .unwrap_or_default())
    }

    /// `answerCallbackQuery` (stops the button's loading spinner).
    pub async fn answer_callback_query(
        &self,
        callback_query_id: &str,
        text: Option<&str>,
    ) -> Result<(), SendError> {
        let mut body = json!({ "callback_query_id": callback_query_id });
        if let Some(t) = text {
            body["text"] = json!(t.chars().take(200).collect::<String>());
        }
        self.call("answerCallbackQuery", &body).await.map(|_| ())
    }

    /// Calls a Bot API method with retries.
    #[tracing::instrument(target = "chat::telegram", skip(self, body))]
    pub async fn call(&self, method: &str, body: &Value) -> Result<Value, SendError> {
        let url = format!(
            "{}/bot{}/{}",
            self.api_base,
            self.bot_token.expose_secret(),
            method
        );
        let timeout = Duration::from_millis(self.policy.request_timeout_ms);
        with_retries(&self.policy, |_| {
            let req = self.http.post(&url).timeout(timeout).json(body);
            async move {
                let resp = match req.send().await {
                    Ok(r) => r,
                    Err(e) => {
                        let err = SendError {
                            kind: SendErrorKind::Transient,
                            attempts: 0,
                            http_status: None,
                            code: None,
                            message: e.without_url().to_string(),
                        };
                        return Attempt::Retry {
                            err,
                            server_wait: None,
                        };
                    }
                };
                let status = resp.status().as_u16();
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
                let parsed: ApiResponse = serde_json::from_slice(&bytes).unwrap_or_default();
                if (200..300).contains(&status) && parsed.ok {
                    return Attempt::Done(parsed.result.unwrap_or(Value::Null));
                }
                let (err, server_wait) = classify_error(status, &parsed);
                match err.kind {
                    SendErrorKind::Permanent => Attempt::Fail(err),
                    _ => Attempt::Retry { err, server_wait },
                }
            }
        })
        .await
    }
}
