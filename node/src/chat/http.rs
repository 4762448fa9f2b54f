//! Webhook endpoints (`/webhooks/whatsapp`, `/webhooks/telegram`) and the terminal-chat endpoint
//! (`/v1/dev/chat`, operator token). Webhooks verify the platform's authentication over the raw body, store every
//! inbound message (durable acknowledgement, dedupe by message id) and answer 200 at once; the inbox worker does
//! the rest.

use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::model::{
    ChatSender, INBOUND_TEXT_MAX_BYTES, InboundContent, InboundMessage, OutboundMessage, Platform,
    truncate_utf8,
};
use super::render;
use super::service::{Admission, ChatService, ResendError};
use super::signature::{self, AuthError, Handshake, TELEGRAM_SECRET_HEADER, WHATSAPP_SIGNATURE_HEADER};
use super::store::NewOutbound;
use super::telegram::{self, TelegramEvent};
use super::whatsapp;
use crate::domain::PhoneNumber;
use crate::http::problem::Problem;

/// The chat routes' OpenAPI fragment; the node merges it into `/openapi.json`.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(whatsapp_verify, whatsapp_webhook, telegram_webhook, dev_chat, dev_chat_poll, resend_pickup_code),
    components(schemas(DevChatRequest, DevChatResponse, ResendResponse, OutboundMessage, super::model::Button, super::model::TemplateMessage)),
    tags((name = "chat", description = "Chat platforms' webhooks (WhatsApp Cloud API, Telegram Bot API) and the devnet terminal chat."))
)]
#[derive(Debug)]
pub struct ChatApiDoc;

/// The chat routes over a [`ChatService`].
pub fn routes<S: Clone + Send + Sync + 'static>(service: ChatService) -> Router<S> {
    let limit = service.body_limit_bytes();
    Router::new()
        .route("/webhooks/whatsapp", get(whatsapp_verify).post(whatsapp_webhook))
        .route("/webhooks/telegram", post(telegram_webhook))
        .route("/v1/dev/chat", post(dev_chat))
        .route("/v1/dev/chat/messages", get(dev_chat_poll))
        .route(
            "/v1/admin/remittances/{id}/resend-pickup-code",
            post(resend_pickup_code),
        )
        .layer(DefaultBodyLimit::max(limit))
        .with_state(service)
}

/// A problem response; a 503 (nothing stored) carries `Retry-After`, after which the platform or client sends again.
fn problem(status: StatusCode, detail: &str) -> Response {
    Problem::of_status(status, detail).into_response()
}

/// 503 when the inbox holds `chat_inbox_pending_max` messages (or cannot be counted): nothing is stored, the
/// platform redelivers after `Retry-After`.
async fn refuse_when_full(svc: &ChatService) -> Option<Response> {
    match svc.admission().await {
        Ok(Admission::Open) => None,
        Ok(Admission::Full { pending }) => {
            tracing::warn!(target: "chat::inbox", pending, "inbox full: webhook refused, the platform redelivers");
            Some(problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "the inbox is full; try again",
            ))
        }
        Err(e) => {
            tracing::error!(target: "chat::inbox", error = %e, "inbox depth unreadable");
            Some(problem(StatusCode::SERVICE_UNAVAILABLE, "try again"))
        }
    }
}

fn auth_problem(e: AuthError) -> Response {
    match e {
        AuthError::Missing => problem(StatusCode::UNAUTHORIZED, "missing signature"),
        AuthError::Malformed | AuthError::Mismatch => problem(StatusCode::FORBIDDEN, "invalid signature"),
        AuthError::NotConfigured => problem(StatusCode::NOT_FOUND, "platform not enabled"),
    }
}

/// WhatsApp verification handshake.
#[utoipa::path(get, path = "/webhooks/whatsapp", tag = "chat",
    params(
        ("hub.mode" = String, Query, description = "Always `subscribe`", example = "subscribe"),
        ("hub.verify_token" = String, Query, description = "Must equal REMESA_WHATSAPP_VERIFY_TOKEN"),
        ("hub.challenge" = String, Query, description = "Echoed back on success", example = "1158201444"),
    ),
    responses(
        (status = 200, description = "The challenge, as plain text", body = String, content_type = "text/plain", example = "1158201444"),
        (status = 403, description = "Wrong mode or token", content_type = "application/problem+json"),
    ))]
async fn whatsapp_verify(
    State(svc): State<ChatService>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    match signature::whatsapp_handshake(
        svc.whatsapp_verify_token(),
        params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ) {
        Handshake::Accept(challenge) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], challenge).into_response()
        }
        Handshake::Refuse => problem(StatusCode::FORBIDDEN, "verification refused"),
    }
}

/// WhatsApp Cloud API webhook (messages and statuses). Authenticated by `X-Hub-Signature-256` over the raw body.
#[utoipa::path(post, path = "/webhooks/whatsapp", tag = "chat",
    params(("X-Hub-Signature-256" = String, Header, description = "`sha256=` + hex HMAC-SHA256 of the raw body with the app secret")),
    request_body(content = serde_json::Value, content_type = "application/json",
        description = "A Meta webhook payload (`object: whatsapp_business_account`, entries, changes, messages, statuses)"),
    responses(
        (status = 200, description = "Stored (or a duplicate, or nothing to do); processing continues asynchronously"),
        (status = 401, description = "Signature missing", content_type = "application/problem+json"),
        (status = 403, description = "Signature wrong or malformed", content_type = "application/problem+json"),
        (status = 404, description = "WhatsApp is not configured on this node (answered only to a request that carries the signature header; without it: 401)", content_type = "application/problem+json"),
        (status = 413, description = "Body too large", content_type = "application/problem+json"),
        (status = 503, description = "Not stored (the inbox is full, or storage trouble); Meta redelivers after `Retry-After`", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(target = "chat::whatsapp", skip_all, fields(body_len = body.len()))]
async fn whatsapp_webhook(State(svc): State<ChatService>, headers: HeaderMap, body: Bytes) -> Response {
    // Unauthenticated requests are refused the same way whether or not the platform is enabled (401 first).
    let header = headers.get(WHATSAPP_SIGNATURE_HEADER).map(|v| v.as_bytes());
    if header.is_none() {
        return auth_problem(AuthError::Missing);
    }
    let Some(secret) = svc.whatsapp_app_secret() else {
        return auth_problem(AuthError::NotConfigured);
    };
    if let Err(e) = signature::verify_whatsapp_signature(secret, &body, header) {
        tracing::warn!(target: "chat::whatsapp", error = %e, "webhook refused");
        return auth_problem(e);
    }
    let events = match whatsapp::parse_webhook(&body) {
        Ok(ev) => ev,
        Err(e) => {
            // Signed by Meta but not a shape we know: acknowledge (a retry would not change it).
            tracing::warn!(target: "chat::whatsapp", error = %e, "unreadable webhook body acknowledged");
            return StatusCode::OK.into_response();
        }
    };
    if !events.messages.is_empty()
        && let Some(refused) = refuse_when_full(&svc).await
    {
        return refused;
    }
    let store = svc.store();
    let mut stored = 0usize;
    for m in &events.messages {
        match store.insert_inbox(m).await {
            Ok(Some(_)) => stored += 1,
            Ok(None) => {
                tracing::debug!(target: "chat::whatsapp", message_id = %m.message_id, "duplicate delivery ignored")
            }
            // Not stored: let Meta redeliver.
            Err(e) => {
                tracing::error!(target: "chat::whatsapp", error = %e, "inbox insert failed");
                return problem(StatusCode::SERVICE_UNAVAILABLE, "try again");
            }
        }
    }
    for s in &events.statuses {
        if let Err(e) = store
            .record_delivery_status(&s.message_id, &s.status, s.error_code, s.error_title.as_deref())
            .await
        {
            tracing::warn!(target: "chat::whatsapp", error = %e, "delivery status not recorded");
        }
        if s.status == "failed" {
            tracing::warn!(target: "chat::whatsapp", code = ?s.error_code, title = ?s.error_title, "message delivery failed");
        }
    }
    if stored > 0 {
        svc.wake_inbox();
    }
    StatusCode::OK.into_response()
}

/// Telegram Bot API webhook (one `Update`). Authenticated by `X-Telegram-Bot-Api-Secret-Token`.
#[utoipa::path(post, path = "/webhooks/telegram", tag = "chat",
    params(("X-Telegram-Bot-Api-Secret-Token" = String, Header, description = "The secret_token given to setWebhook")),
    request_body(content = serde_json::Value, content_type = "application/json", description = "A Telegram `Update`"),
    responses(
        (status = 200, description = "Stored, ignored (other update kinds, groups) or a duplicate"),
        (status = 401, description = "Secret token missing or wrong", content_type = "application/problem+json"),
        (status = 404, description = "Telegram is not configured on this node (answered only to a request that carries the secret-token header; without it: 401)", content_type = "application/problem+json"),
        (status = 503, description = "Not stored (the inbox is full, or storage trouble); Telegram redelivers after `Retry-After`", content_type = "application/problem+json"),
    ))]
#[tracing::instrument(target = "chat::telegram", skip_all, fields(body_len = body.len()))]
async fn telegram_webhook(State(svc): State<ChatService>, headers: HeaderMap, body: Bytes) -> Response {
    // Unauthenticated requests are refused the same way whether or not the platform is enabled (401 first).
    let header = headers.get(TELEGRAM_SECRET_HEADER).map(|v| v.as_bytes());
    if header.is_none() {
        return problem(StatusCode::UNAUTHORIZED, "missing secret token");
    }
    let Some(secret) = svc.telegram_secret_token() else {
        return auth_problem(AuthError::NotConfigured);
    };
    match signature::verify_telegram_secret(secret, header) {
        Ok(()) => {}
        Err(AuthError::NotConfigured) => return auth_problem(AuthError::NotConfigured),
        Err(_) => return problem(StatusCode::UNAUTHORIZED, "invalid secret token"),
    }
    let event = match telegram::parse_update(&body) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(target: "chat::telegram", error = %e, "unreadable update acknowledged");
            return StatusCode::OK.into_response();
        }
    };
    if matches!(event, TelegramEvent::Inbound(_))
        && let Some(refused) = refuse_when_full(&svc).await
    {
        return refused;
    }
    let store = svc.store();
    let result = match event {
        TelegramEvent::Inbound(m) => store.insert_inbox(&m).await.map(|stored| {
            if stored.is_some() {
                svc.wake_inbox();
            }
        }),
        TelegramEvent::Edited { chat_id, message_id } => {
            let lang = store
                .identity(Platform::Telegram, &chat_id.to_string())
                .await
                .ok()
                .flatten()
                .map(|i| i.lang)
                .unwrap_or_default();
            store
                .enqueue(&NewOutbound {
                    dedupe_key: format!("telegram:{message_id}"),
                    platform: Platform::Telegram,
                    address: chat_id.to_string(),
                    message: render::edited_ignored(lang),
                    callback_query_id: None,
                })
                .await
                .map(|_| ())
        }
        TelegramEvent::Ignore { reason } => {
            tracing::debug!(target: "chat::telegram", reason, "update ignored");
            Ok(())
        }
    };
    match result {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => {
            tracing::error!(target: "chat::telegram", error = %e, "inbox insert failed");
            problem(StatusCode::SERVICE_UNAVAILABLE, "try again")
        }
    }
}

// --- terminal chat -----------------------------------------------------------------------------------------

/// Body of `POST /v1/dev/chat`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"as": "+15551234567", "text": "send 100 to Maria +502 5555 0101 cash pickup"}))]
pub struct DevChatRequest {
    /// The chat user's phone (E.164; a number that does not exist is 400).
    #[serde(rename = "as")]
    #[schema(pattern = "^\\+[1-9][0-9]{7,13}$")]
    pub as_phone: String,
    /// Text typed. A message with neither `text` nor `button` is answered with help, like an image would be.
    #[serde(default)]
    pub text: Option<String>,
    /// Button chosen (its id); wins over `text`.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 64)]
    pub button: Option<String>,
    /// Client message id (dedupe); generated when absent.
    #[serde(default)]
    pub message_id: Option<String>,
}

/// Response of `POST /v1/dev/chat` and `GET /v1/dev/chat/messages`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DevChatResponse {
    /// Replies to this message.
    pub replies: Vec<OutboundMessage>,
    /// Notifications that arrived meanwhile (money on its way, paid…).
    pub notifications: Vec<OutboundMessage>,
}

/// Query of `GET /v1/dev/chat/messages`.
#[derive(Debug, Clone, Deserialize)]
pub struct DevChatPoll {
    /// The chat user's phone.
    #[serde(rename = "as")]
    pub as_phone: String,
}

fn operator_ok(svc: &ChatService, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let Some(expected) = svc.operator_token() else {
        return Err(Box::new(problem(
            StatusCode::NOT_FOUND,
            "operator endpoints are not enabled (no operator token is configured)",
        )));
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::as_bytes);
    match presented {
        Some(p) if bool::from(p.ct_eq(expected)) => Ok(()),
        Some(_) => Err(Box::new(problem(StatusCode::FORBIDDEN, "invalid operator token"))),
        None => Err(Box::new(problem(
            StatusCode::UNAUTHORIZED,
            "operator token required",
        ))),
    }
}

/// Terminal chat (devnet): send a message as a chat user and get the replies.
#[utoipa::path(post, path = "/v1/dev/chat", tag = "chat", request_body = DevChatRequest,
    responses(
        (status = 200, body = DevChatResponse),
        (status = 400, description = "Bad request", content_type = "application/problem+json"),
        (status = 401, description = "Operator token missing", content_type = "application/problem+json"),
        (status = 403, description = "Operator token wrong", content_type = "application/problem+json"),
        (status = 404, description = "No operator token is configured on this node: the terminal chat is off", content_type = "application/problem+json"),
        (status = 504, description = "No reply in time: the wait is the HTTP handler timeout less a second (at most 20 s), so this is answered before the generic 503 timeout", content_type = "application/problem+json"),
    ),
    security(("operator" = [])))]
async fn dev_chat(State(svc): State<ChatService>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = operator_ok(&svc, &headers) {
        return *r;
    }
    let Ok(req) = serde_json::from_slice::<DevChatRequest>(&body) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "expected {\"as\": \"+1555…\", \"text\": \"…\"}",
        );
    };
    let Ok(phone) = PhoneNumber::from_platform(req.as_phone.trim()) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "`as` must be a phone number in E.164 (+15551234567)",
        );
    };
    if req
        .button
        .as_ref()
        .is_some_and(|b| b.is_empty() || b.chars().count() > 64)
    {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "`button` must be 1 to 64 characters",
        );
    }
    let content = match (&req.text, &req.button) {
        (_, Some(b)) => InboundContent::Button {
            id: b.clone(),
            title: None,
        },
        (Some(t), _) => {
            let (text, truncated) = truncate_utf8(t, INBOUND_TEXT_MAX_BYTES);
            InboundContent::Text { text, truncated }
        }
        // Neither: a message with nothing we read (as an image would be on WhatsApp), answered with help.
        (None, None) => InboundContent::Unsupported {
            kind: "empty".to_owned(),
        },
    };
    let message_id = req
        .message_id
        .filter(|m| !m.is_empty() && m.len() <= 128)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let msg = InboundMessage {
        platform: Platform::Terminal,
        message_id: format!("{}:{message_id}", phone.as_str()),
        sender: ChatSender {
            user_key: phone.as_str().to_owned(),
            address: phone.as_str().to_owned(),
            phone_e164: Some(phone.as_str().to_owned()),
            display_name: None,
            language_code: None,
        },
        content,
        callback_query_id: None,
    };
    if let Some(refused) = refuse_when_full(&svc).await {
        return refused;
    }
    let store = svc.store();
    let inbox_id = match store.insert_inbox(&msg).await {
        Ok(Some(id)) => id,
        Ok(None) => match store.inbox_status(Platform::Terminal, &msg.message_id).await {
            Ok(Some((id, _))) => id,
            _ => return problem(StatusCode::SERVICE_UNAVAILABLE, "try again"),
        },
        Err(_) => return problem(StatusCode::SERVICE_UNAVAILABLE, "try again"),
    };
    // Process it here (the background worker may also pick it up; either way we wait until it is done).
    let started = Instant::now();
    loop {
        if let Err(e) = svc.process_next_inbox(Some(&inbox_id)).await {
            tracing::warn!(target: "chat::terminal", error = %e, "processing");
        }
        match store.inbox_status(Platform::Terminal, &msg.message_id).await {
            Ok(Some((_, status))) if status == "done" || status == "failed" => break,
            _ if started.elapsed() > svc.dev_chat_wait() => {
                return problem(StatusCode::GATEWAY_TIMEOUT, "no reply yet");
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let replies = store.replies_of(&inbox_id).await.unwrap_or_default();
    let _ = store.mark_inbox_replies_sent(&inbox_id).await;
    let notifications = store
        .take_terminal(phone.as_str(), Some(&inbox_id))
        .await
        .unwrap_or_default();
    // This response is the terminal's delivery: pickup-code placeholders are filled in here, never stored.
    match (svc.reveal_all(replies).await, svc.reveal_all(notifications).await) {
        (Ok(replies), Ok(notifications)) => Json(DevChatResponse {
            replies,
            notifications,
        })
        .into_response(),
        _ => problem(StatusCode::SERVICE_UNAVAILABLE, "try again"),
    }
}

/// Terminal chat (devnet): notifications waiting for a chat user.
#[utoipa::path(get, path = "/v1/dev/chat/messages", tag = "chat",
    params(("as" = String, Query, description = "The chat user's phone (E.164)", example = "+50255550101",
        pattern = "^\\+[1-9][0-9]{7,13}$")),
    responses((status = 200, body = DevChatResponse),
        (status = 400, description = "`as` is not a phone number in E.164", content_type = "application/problem+json"),
        (status = 401, description = "Operator token missing", content_type = "application/problem+json"),
        (status = 403, description = "Operator token wrong", content_type = "application/problem+json"),
        (status = 404, description = "No operator token is configured on this node: the terminal chat is off", content_type = "application/problem+json")),
    security(("operator" = [])))]
async fn dev_chat_poll(
    State(svc): State<ChatService>,
    headers: HeaderMap,
    q: Result<Query<DevChatPoll>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Err(r) = operator_ok(&svc, &headers) {
        return *r;
    }
    let Ok(Query(q)) = q else {
        return problem(
            StatusCode::BAD_REQUEST,
            "`as` (the chat user's phone) is required",
        );
    };
    let Ok(phone) = PhoneNumber::from_platform(q.as_phone.trim()) else {
        return problem(StatusCode::BAD_REQUEST, "`as` must be a phone number in E.164");
    };
    let Ok(notifications) = svc.store().take_terminal(phone.as_str(), None).await else {
        return problem(StatusCode::SERVICE_UNAVAILABLE, "try again");
    };
    match svc.reveal_all(notifications).await {
        Ok(notifications) => Json(DevChatResponse {
            replies: Vec::new(),
            notifications,
        })
        .into_response(),
        Err(_) => problem(StatusCode::SERVICE_UNAVAILABLE, "try again"),
    }
}

/// Response of `POST /v1/admin/remittances/{id}/resend-pickup-code`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"resent": true}))]
pub struct ResendResponse {
    /// The recipient's message with the pickup code was queued to the recipient's chat again.
    pub resent: bool,
}

/// Operator: send the recipient's message with the pickup code again, to the recipient's chat only (a recipient
/// lost the code and support checked who is asking). The code is never part of the response; the request is
/// logged under the `audit` target and kept as the outbox row. At most 5 re-sends per remittance.
#[utoipa::path(post, path = "/v1/admin/remittances/{id}/resend-pickup-code", tag = "admin",
    params(("id" = String, Path, description = "Remittance id (0x…)")),
    responses(
        (status = 202, description = "Queued to the recipient's chat", body = ResendResponse),
        (status = 401, description = "Operator token missing", content_type = "application/problem+json"),
        (status = 403, description = "Operator token wrong", content_type = "application/problem+json"),
        (status = 404, description = "No such remittance", content_type = "application/problem+json"),
        (status = 409, description = "Not a cash pickup waiting to be collected", content_type = "application/problem+json"),
        (status = 429, description = "Re-sent too often already", content_type = "application/problem+json"),
        (status = 503, description = "Storage trouble: try again", content_type = "application/problem+json"),
    ),
    security(("operator" = [])))]
async fn resend_pickup_code(
    State(svc): State<ChatService>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    if let Err(r) = operator_ok(&svc, &headers) {
        return *r;
    }
    let Ok(id) = crate::domain::RemittanceId::parse(&id) else {
        return problem(StatusCode::NOT_FOUND, "no such remittance");
    };
    let id = id.to_string();
    let request = crate::store::now_ms().to_string();
    match svc.resend_pickup_code(&id, "operator", &request).await {
        Ok(()) => (StatusCode::ACCEPTED, Json(ResendResponse { resent: true })).into_response(),
        Err(ResendError::NotFound) => problem(StatusCode::NOT_FOUND, "no such remittance"),
        Err(ResendError::NotCollectible) => problem(
            StatusCode::CONFLICT,
            "not a cash pickup waiting to be collected: there is no code to send",
        ),
        Err(e @ ResendError::TooOften) => problem(StatusCode::TOO_MANY_REQUESTS, &e.to_string()),
        Err(e) => {
            tracing::warn!(target: "chat::resend", error = %e, "resend failed");
            problem(StatusCode::SERVICE_UNAVAILABLE, "try again")
        }
    }
}
