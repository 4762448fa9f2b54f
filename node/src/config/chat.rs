//! Chat configuration. Flattened into the node's `Config`, so each field is read from `REMESA_<FIELD>` (upper case),
//! e.g. `REMESA_WHATSAPP_APP_SECRET`.

use secrecy::SecretString;
use serde::Deserialize;

/// Settings of the chat bridge. Every platform is optional: a platform without its secrets is disabled.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ChatConfig {
    /// App secret used to verify `X-Hub-Signature-256` on WhatsApp webhooks.
    pub whatsapp_app_secret: Option<SecretString>,
    /// Token Meta sends in the GET verification handshake (`hub.verify_token`).
    pub whatsapp_verify_token: Option<SecretString>,
    /// Graph API bearer token for outbound messages.
    pub whatsapp_access_token: Option<SecretString>,
    /// Business phone number id used in `/{phone_number_id}/messages`.
    pub whatsapp_phone_number_id: Option<String>,
    /// Graph API base URL, e.g. `https://graph.facebook.com/v21.0`; tests point it at a local server.
    pub whatsapp_api_base: Option<String>,
    /// Secret expected in `X-Telegram-Bot-Api-Secret-Token`.
    pub telegram_secret_token: Option<SecretString>,
    /// Bot token for outbound Bot API calls.
    pub telegram_bot_token: Option<SecretString>,
    /// Bot API base URL, e.g. `https://api.telegram.org`; tests point it at a local server.
    pub telegram_api_base: Option<String>,
    /// Approved WhatsApp template for the recipient's first notice (money on its way), sent outside the 24-hour
    /// window. Body parameters: {{1}} sender, {{2}} amount and currency, {{3}} partner, {{4}} pickup code (or
    /// `-`), {{5}} reference. Without it the notice is plain text (delivered only inside the window).
    pub whatsapp_recipient_template: Option<String>,
    /// How often the chat workers poll their queues when idle, in ms.
    pub chat_poll_interval_ms: u64,
    /// Largest accepted webhook body, in bytes.
    pub chat_body_limit_bytes: usize,
    /// Inbox workers per node: messages of different conversations are handled in parallel, each conversation's
    /// in the order received (a claim takes a user's oldest message only when none of theirs is in hand). Unset:
    /// 4. (On SQLite their writes take turns on the write connection; measured on 2 cores, 4 workers handled the
    /// settlement benchmark's 2,000 messages in 12.7 s against 15.5 s for one, without slowing webhook ingest.)
    pub chat_inbox_workers: Option<usize>,
    /// Outbox workers per node: deliveries to different users go out in parallel (the platform calls overlap),
    /// each user's messages one at a time in order.
    pub chat_outbox_workers: usize,
    /// Inbound messages stored but not yet handled (all nodes together) above which a webhook answers 503 with
    /// `Retry-After` instead of storing more: the platforms redeliver, so nothing is lost and the queue stays bounded.
    pub chat_inbox_pending_max: u64,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            whatsapp_app_secret: None,
            whatsapp_verify_token: None,
            whatsapp_access_token: None,
            whatsapp_phone_number_id: None,
            whatsapp_api_base: None,
            telegram_secret_token: None,
            telegram_bot_token: None,
            telegram_api_base: None,
            whatsapp_recipient_template: None,
            chat_poll_interval_ms: 200,
            chat_body_limit_bytes: 256 * 1024,
            chat_inbox_workers: None,
            chat_outbox_workers: 4,
            chat_inbox_pending_max: 10_000,
        }
    }
}
