//! Chat bridge: WhatsApp Cloud API, Telegram Bot API, terminal chat, intent parsing.
//!
//! - [`signature`]: webhook authentication (HMAC over raw bodies, Telegram secret token, GET handshake).
//! - [`whatsapp`], [`telegram`]: tolerant payload types, normalisation into [`model::InboundMessage`], outbound
//!   clients with bounded retries that honour rate limits.
//! - [`intent`]: English/Spanish intent parser (exact decimal amounts, E.164 phones via [`crate::domain::PhoneNumber`]).
//! - [`render`]: every text the bridge sends, in both languages.
//! - [`ingest`]: group commit of inbound messages (many webhooks per durable transaction, a bounded queue).

pub mod backend;
pub use crate::config::chat as config;
pub mod conversation;
pub mod engine_adapter;
pub mod http;
pub mod ingest;
pub mod intent;
pub mod model;
pub mod render;
pub mod retry;
pub mod service;
pub mod signature;
pub mod store;
pub mod telegram;
pub mod terminal;
pub mod whatsapp;

use std::sync::Arc;

use axum::Router;

use crate::http::AppState;

/// The chat routes of the node (`/webhooks/whatsapp`, `/webhooks/telegram`, `/v1/dev/chat`), over the node's
/// database and engine. Building the router also starts the chat workers (inbox, outbox, notifier) on the
/// node's shutdown token, so call it once per node (as `app::router` does).
pub fn router(state: AppState) -> Router<AppState> {
    let svc = service(&state);
    if tokio::runtime::Handle::try_current().is_ok() {
        svc.spawn_workers(state.shutdown.child_token());
    }
    http::routes(svc)
}

/// The chat routes' OpenAPI fragment (merged into the node's `/openapi.json` by `app::openapi`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    <http::ChatApiDoc as utoipa::OpenApi>::openapi()
}

/// The chat service of a node.
pub fn service(state: &AppState) -> service::ChatService {
    let store = store::ChatStore::new(state.db.clone());
    let backend = Arc::new(engine_adapter::EngineBackend::new(state.engine.clone()));
    service::ChatService::with_options(
        &state.config.chat,
        store,
        backend,
        state.config.operator_token.clone(),
        service::ServiceOptions {
            worker_id: state.instance.worker_id("chat"),
            dev_chat_wait: service::ServiceOptions::dev_chat_wait_for(state.config.http_timeout_ms),
        },
    )
}
