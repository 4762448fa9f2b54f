//! Platform-neutral chat messages: what every webhook is normalised into, and what the conversation answers.

use serde::{Deserialize, Serialize};

/// Longest text the bridge keeps from an inbound message, in bytes. Longer texts are cut (at a char boundary) and
/// answered as "too long"; WhatsApp itself caps texts at 4096 characters.
pub const INBOUND_TEXT_MAX_BYTES: usize = 4096;

/// Chat platform a message came from or goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    /// WhatsApp Cloud API.
    Whatsapp,
    /// Telegram Bot API.
    Telegram,
    /// The devnet terminal chat (`remesa chat`).
    Terminal,
}

impl Platform {
    /// Stable name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Whatsapp => "whatsapp",
            Self::Telegram => "telegram",
            Self::Terminal => "terminal",
        }
    }

    /// Inverse of [`Platform::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "whatsapp" => Some(Self::Whatsapp),
            "telegram" => Some(Self::Telegram),
            "terminal" => Some(Self::Terminal),
            _ => None,
        }
    }
}

/// Who sent an inbound message, as far as the platform tells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatSender {
    /// Stable per-platform user key: WhatsApp `wa_id`/`from`, or the business-scoped user id (BSUID) for
    /// username-only users; Telegram chat id; terminal phone number.
    pub user_key: String,
    /// Where replies go: WhatsApp `to` (phone digits) or BSUID, Telegram chat id.
    pub address: String,
    /// The sender's phone number in E.164 (`+15551234567`) when the platform reveals it.
    pub phone_e164: Option<String>,
    /// Profile name, if any (display only).
    pub display_name: Option<String>,
    /// Preferred language hint from the platform (Telegram `language_code`).
    pub language_code: Option<String>,
}

/// What the user sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InboundContent {
    /// Free text (already cut to [`INBOUND_TEXT_MAX_BYTES`]).
    Text {
        /// The text.
        text: String,
        /// True when the original was longer than the limit.
        truncated: bool,
    },
    /// A press of one of our buttons (WhatsApp button/list reply, template quick reply, Telegram callback query).
    Button {
        /// The id we gave the button (`payload` for template quick replies, `callback_data` on Telegram).
        id: String,
        /// The label the user saw.
        title: Option<String>,
    },
    /// Anything else (image, location, reaction, sticker, unknown future types): answered with help.
    Unsupported {
        /// The platform's type name, for logs.
        kind: String,
    },
}

/// One inbound chat message, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// Platform it came from.
    pub platform: Platform,
    /// The platform's message id (WhatsApp `wamid…`, Telegram `update_id`/callback id): the dedupe key and the
    /// idempotency key of anything this message creates.
    pub message_id: String,
    /// Sender.
    pub sender: ChatSender,
    /// Content.
    pub content: InboundContent,
    /// Telegram callback query id to acknowledge (`answerCallbackQuery`), if any.
    pub callback_query_id: Option<String>,
}

/// A reply button. Platforms limit these (WhatsApp: 3 buttons with titles up to 20 characters, or a list of up to 10
/// rows; Telegram: `callback_data` 1–64 bytes); the senders enforce the limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Button {
    /// Machine id sent back when pressed.
    pub id: String,
    /// Label.
    pub title: String,
}

impl Button {
    /// A button.
    pub fn new(id: impl Into<String>, title: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            title: title.into(),
        }
    }
}

/// One outbound chat message: text plus optional buttons.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OutboundMessage {
    /// Body text (plain; `*bold*` is WhatsApp's markup and reads fine elsewhere).
    pub text: String,
    /// Buttons, possibly empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<Button>,
    /// On WhatsApp, send this approved template instead of `text` (business-initiated messages outside the
    /// 24-hour customer service window must be templates). Other platforms send `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateMessage>,
    /// The remittance whose pickup code replaces [`PICKUP_CODE_PLACEHOLDER`] in the text and template parameters
    /// when the message is delivered (`ChatService::reveal`): the stored message never holds the code. Never sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub reveal_pickup_code_of: Option<String>,
}

/// Stands for the recipient's pickup code in a stored message; replaced at delivery.
pub const PICKUP_CODE_PLACEHOLDER: &str = "[pickup code]";

/// A WhatsApp message template with positional body parameters (`{{1}}`, `{{2}}`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TemplateMessage {
    /// Template name as approved in WhatsApp Manager.
    pub name: String,
    /// Language code of the template (`es`, `en_US`).
    pub language: String,
    /// Body parameters in order.
    pub body_params: Vec<String>,
}

impl OutboundMessage {
    /// Plain text message.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            buttons: Vec::new(),
            template: None,
            reveal_pickup_code_of: None,
        }
    }

    /// Text with buttons.
    pub fn with_buttons(text: impl Into<String>, buttons: Vec<Button>) -> Self {
        Self {
            text: text.into(),
            buttons,
            template: None,
            reveal_pickup_code_of: None,
        }
    }
}

/// Cuts `s` to at most `max_bytes` bytes at a char boundary; returns the cut string and whether it was cut.
pub fn truncate_utf8(s: &str, max_bytes: usize) -> (String, bool) {
    if s.len() <= max_bytes {
        return (s.to_owned(), false);
    }
    let mut end = max_bytes;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    (s[..end].to_owned(), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_respects_char_boundaries() {
        let s = "ñññ";
        assert_eq!(truncate_utf8(s, 3), ("ñ".to_owned(), true));
        assert_eq!(truncate_utf8(s, 6), ("ñññ".to_owned(), false));
        assert_eq!(truncate_utf8("", 0), (String::new(), false));
    }

    #[test]
    fn platform_names_round_trip() {
        for p in [Platform::Whatsapp, Platform::Telegram, Platform::Terminal] {
            assert_eq!(Platform::parse(p.as_str()), Some(p));
        }
        assert_eq!(Platform::parse("sms"), None);
    }
}
