//! Minimal HTTP servers the figures need besides the node:
//! - the floor server (`remesa-bench floor-server`): tokio + axum answering a constant JSON page, run as its own
//!   process. It is figure 4's latency floor (the load generator, loopback and the HTTP stack with nothing behind)
//!   and figure 5's memory floor (what any tokio + axum process needs).
//! - the Graph API sink: stands in for WhatsApp's Graph API so the node's replies go somewhere local and succeed.

use std::net::SocketAddr;

use anyhow::Context as _;
use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};

const PAGE: &str = r#"{"items":[],"next_cursor":null}"#;

async fn page() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], PAGE)
}

/// Serves the floor until the process is stopped.
pub async fn serve_floor(addr: SocketAddr) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/readyz", get(|| async { "ok" }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/partner/payouts", get(page));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    axum::serve(listener, app).await?;
    Ok(())
}

/// A WhatsApp send response like the Graph API's (`whatsapp_send_response.json` in the chat fixtures).
const GRAPH_SEND_RESPONSE: &str = r#"{"messaging_product":"whatsapp","contacts":[{"input":"15551234567","wa_id":"15551234567"}],"messages":[{"id":"wamid.HBgLMTU1NTEyMzQ1NjcVAgARGBI1QjJGRjI1RjY0RTI2QkI2RTgA"}]}"#;

/// The last messages the node sent to the Graph API stand-in (for error messages).
static LAST_GRAPH_MESSAGES: std::sync::Mutex<std::collections::VecDeque<String>> =
    std::sync::Mutex::new(std::collections::VecDeque::new());

/// Up to `n` of the last messages the node sent through the Graph API stand-in, newest last.
pub fn last_graph_messages(n: usize) -> Vec<String> {
    let q = LAST_GRAPH_MESSAGES.lock().map(|q| q.clone()).unwrap_or_default();
    q.iter().rev().take(n).rev().cloned().collect()
}

/// Pickup codes the recipients were sent (short reference → code), read by [`recipient_code`]. Bounded.
static RECIPIENT_CODES: std::sync::Mutex<Option<std::collections::HashMap<String, String>>> =
    std::sync::Mutex::new(None);
const RECIPIENT_CODES_MAX: usize = 100_000;

/// The pickup code the node sent to the recipient of `remittance_id` over WhatsApp, if it has by now: the partner
/// simulator stands in for the recipient at the counter with it.
pub fn recipient_code(remittance_id: &str) -> Option<String> {
    let reference = remesa_testkit::short_reference(remittance_id);
    RECIPIENT_CODES.lock().ok()?.as_ref()?.get(&reference).cloned()
}

fn texts_of(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| texts_of(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| texts_of(x, out)),
        _ => {}
    }
}

async fn graph_send(body: String) -> impl IntoResponse {
    if body.contains("Ref: ")
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(&body)
    {
        let mut texts = Vec::new();
        texts_of(&v, &mut texts);
        let found = remesa_testkit::codes_in(texts.iter().map(String::as_str));
        if !found.is_empty()
            && let Ok(mut m) = RECIPIENT_CODES.lock()
        {
            let m = m.get_or_insert_with(Default::default);
            if m.len() + found.len() <= RECIPIENT_CODES_MAX {
                m.extend(found);
            }
        }
    }
    if let Ok(mut q) = LAST_GRAPH_MESSAGES.lock() {
        q.push_back(body.chars().take(600).collect());
        while q.len() > 16 {
            q.pop_front();
        }
    }
    ([(header::CONTENT_TYPE, "application/json")], GRAPH_SEND_RESPONSE)
}

/// Starts the Graph API sink on a free loopback port in this process; returns its base URL.
pub async fn spawn_graph_sink() -> anyhow::Result<String> {
    let app = Router::new().fallback(post(graph_send));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}/v21.0"))
}
