//! Harness for the chat tests: real SQLite files / PostgreSQL schemas with the 0003 migration, a local HTTP
//! server standing in for the Graph API and the Bot API that records what the node sends, the chat router served
//! on port 0, and signed WhatsApp-format webhook bodies.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use remesa::chat::config::ChatConfig;
use remesa::chat::signature::whatsapp_signature;
use remesa::chat::store::ChatStore;
use remesa_testkit as testing;
use secrecy::SecretString;
use serde_json::{Value, json};

pub const APP_SECRET: &str = "test-app-secret";
pub const VERIFY_TOKEN: &str = "meatyhamhock";
pub const TG_SECRET: &str = "tg_secret-123";
pub const OPERATOR_TOKEN: &str = "operator-token-xyz";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/chat_fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fresh migrated database from `remesa_testkit` (a SQLite file in a temporary directory, or a fresh
/// PostgreSQL database), seen through the chat store.
pub struct TestDb {
    pub store: ChatStore,
    pub url: String,
    pub label: &'static str,
    _db: testing::TestDb,
}

fn chat_db(t: testing::TestDb, label: &'static str) -> TestDb {
    TestDb {
        store: ChatStore::new(t.db.clone()),
        url: t.url.clone(),
        label,
        _db: t,
    }
}

pub async fn sqlite() -> Result<TestDb> {
    Ok(chat_db(testing::TestDb::sqlite_with(4).await?, "sqlite"))
}

/// A fresh database on the test PostgreSQL server, or `None` (with the reason printed) when it is unreachable.
/// With `REMESA_REQUIRE_POSTGRES=1` an unreachable server is a failure instead.
pub async fn postgres() -> Result<Option<TestDb>> {
    Ok(testing::TestDb::postgres_part(8)
        .await
        .map_err(anyhow::Error::msg)?
        .map(|t| chat_db(t, "postgres")))
}

/// SQLite always, PostgreSQL when reachable.
pub async fn all_dbs() -> Result<Vec<TestDb>> {
    let mut out = vec![sqlite().await?];
    if let Some(pg) = postgres().await? {
        out.push(pg);
    }
    Ok(out)
}

impl TestDb {
    pub async fn count(&self, sql: &str) -> Result<i64> {
        use sqlx::Row;
        Ok(sqlx::query(sql)
            .fetch_one(self.store.pool())
            .await?
            .try_get::<i64, _>(0)?)
    }
}

// ---- the platform stand-in --------------------------------------------------------------------------------

/// Scripted answers per path suffix: (HTTP status, body), consumed in order.
pub type Scripted = HashMap<String, Vec<(u16, String)>>;

/// One request the node made to a platform API.
#[derive(Debug, Clone)]
pub struct Sent {
    pub path: String,
    pub authorization: Option<String>,
    pub body: Value,
}

/// A local HTTP server answering like the Graph API (`/{version}/{phone_number_id}/messages`) and the Bot API
/// (`/bot{token}/{method}`), recording every request.
#[derive(Clone, Default)]
pub struct PlatformApi {
    pub base: String,
    pub sent: Arc<Mutex<Vec<Sent>>>,
    /// HTTP status to answer for the next N requests to a path suffix (e.g. rate limits), then 200.
    pub failures: Arc<Mutex<Scripted>>,
    /// How long to hold every answer, in ms (0: at once), so requests overlap.
    pub delay_ms: Arc<std::sync::atomic::AtomicU64>,
    /// Requests in progress per WhatsApp recipient, and the most ever in progress for any one recipient.
    pub in_progress: Arc<Mutex<HashMap<String, u32>>>,
    pub max_in_progress_per_recipient: Arc<std::sync::atomic::AtomicU32>,
}

async fn platform_handler(
    State(api): State<PlatformApi>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path = uri.path().to_owned();
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let recipient = body["to"].as_str().map(str::to_owned);
    api.sent.lock().expect("lock").push(Sent {
        path: path.clone(),
        authorization,
        body,
    });
    let delay = api.delay_ms.load(std::sync::atomic::Ordering::Relaxed);
    if delay > 0 {
        if let Some(to) = &recipient {
            let now = {
                let mut m = api.in_progress.lock().expect("lock");
                let n = m.entry(to.clone()).or_default();
                *n += 1;
                *n
            };
            api.max_in_progress_per_recipient
                .fetch_max(now, std::sync::atomic::Ordering::Relaxed);
        }
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        if let Some(to) = &recipient
            && let Some(n) = api.in_progress.lock().expect("lock").get_mut(to)
        {
            *n -= 1;
        }
    }
    let scripted = {
        let mut f = api.failures.lock().expect("lock");
        f.iter_mut()
            .find(|(suffix, _)| path.ends_with(suffix.as_str()))
            .and_then(|(_, v)| if v.is_empty() { None } else { Some(v.remove(0)) })
    };
    if let Some((status, body)) = scripted {
        return (
            axum::http::StatusCode::from_u16(status).expect("status"),
            [("content-type", "application/json")],
            body,
        )
            .into_response();
    }
    let n = api.sent.lock().expect("lock").len();
    let ok = if path.contains("/bot") {
        json!({ "ok": true, "result": { "message_id": n, "date": 0, "chat": { "id": 1, "type": "private" } } })
    } else {
        json!({ "messaging_product": "whatsapp", "contacts": [], "messages": [ { "id": format!("wamid.sent{n}") } ] })
    };
    ([("content-type", "application/json")], ok.to_string()).into_response()
}

impl PlatformApi {
    pub async fn start() -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let api = PlatformApi {
            base: format!("http://{addr}"),
            ..PlatformApi::default()
        };
        let app = Router::new().fallback(platform_handler).with_state(api.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(api)
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.sent.lock().expect("lock").clone()
    }

    /// WhatsApp messages sent to `to` (digits), as (text, button ids).
    pub fn whatsapp_to(&self, to: &str) -> Vec<(String, Vec<String>)> {
        self.sent()
            .into_iter()
            .filter(|s| s.path.ends_with("/messages") && s.body["to"] == to)
            .map(|s| {
                let b = &s.body;
                let text = b["text"]["body"]
                    .as_str()
                    .or(b["interactive"]["body"]["text"].as_str())
                    .unwrap_or_default()
                    .to_owned();
                let mut ids: Vec<String> = b["interactive"]["action"]["buttons"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x["reply"]["id"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                if let Some(rows) = b["interactive"]["action"]["sections"][0]["rows"].as_array() {
                    ids.extend(rows.iter().filter_map(|r| r["id"].as_str().map(str::to_owned)));
                }
                (text, ids)
            })
            .collect()
    }

    /// Waits until `pred` holds for the WhatsApp messages to `to`.
    pub async fn wait_whatsapp(
        &self,
        to: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&[(String, Vec<String>)]) -> bool,
    ) -> Result<Vec<(String, Vec<String>)>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let msgs = self.whatsapp_to(to);
            if pred(&msgs) {
                return Ok(msgs);
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("timed out waiting for {what}; messages to {to}: {msgs:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub fn chat_config(api: &PlatformApi) -> ChatConfig {
    ChatConfig {
        whatsapp_app_secret: Some(SecretString::from(APP_SECRET)),
        whatsapp_verify_token: Some(SecretString::from(VERIFY_TOKEN)),
        whatsapp_access_token: Some(SecretString::from("graph-token")),
        whatsapp_phone_number_id: Some("PNID".to_owned()),
        whatsapp_api_base: Some(format!("{}/v21.0", api.base)),
        telegram_secret_token: Some(SecretString::from(TG_SECRET)),
        telegram_bot_token: Some(SecretString::from("123:BOT")),
        telegram_api_base: Some(api.base.clone()),
        whatsapp_recipient_template: None,
        chat_poll_interval_ms: 20,
        chat_body_limit_bytes: 64 * 1024,
        ..ChatConfig::default()
    }
}

/// Serves a router on port 0; returns its base URL.
pub async fn serve(router: Router) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(format!("http://{addr}"))
}

// ---- WhatsApp-format webhooks -----------------------------------------------------------------------------

fn envelope(from: &str, name: &str, message: Value) -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "WABA", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "15550000000", "phone_number_id": "PNID" },
            "contacts": [{ "profile": { "name": name }, "wa_id": from }],
            "messages": [message]
        }}]}]
    })
}

pub fn wa_text(from: &str, id: &str, text: &str) -> Vec<u8> {
    let m = json!({ "from": from, "id": id, "timestamp": "1700000000", "type": "text", "text": { "body": text } });
    serde_json::to_vec(&envelope(from, "Ana", m)).expect("json")
}

/// A text message from a WhatsApp user whose profile carries no name (no `contacts` entry).
pub fn wa_text_unnamed(from: &str, id: &str, text: &str) -> Vec<u8> {
    let m = json!({ "from": from, "id": id, "timestamp": "1700000000", "type": "text", "text": { "body": text } });
    let mut e = envelope(from, "", m);
    e["entry"][0]["changes"][0]["value"]["contacts"] = json!([]);
    serde_json::to_vec(&e).expect("json")
}

pub fn wa_button(from: &str, id: &str, button_id: &str, title: &str) -> Vec<u8> {
    let m = json!({ "from": from, "id": id, "timestamp": "1700000000", "type": "interactive",
        "interactive": { "type": "button_reply", "button_reply": { "id": button_id, "title": title } } });
    serde_json::to_vec(&envelope(from, "Ana", m)).expect("json")
}

pub fn wa_list(from: &str, id: &str, row_id: &str) -> Vec<u8> {
    let m = json!({ "from": from, "id": id, "timestamp": "1700000000", "type": "interactive",
        "interactive": { "type": "list_reply", "list_reply": { "id": row_id, "title": "x" } } });
    serde_json::to_vec(&envelope(from, "Ana", m)).expect("json")
}

/// POSTs a WhatsApp webhook body signed with `secret` (or unsigned); returns the status.
pub async fn post_whatsapp(
    http: &reqwest::Client,
    base: &str,
    body: &[u8],
    secret: Option<&str>,
) -> Result<u16> {
    let mut req = http
        .post(format!("{base}/webhooks/whatsapp"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(s) = secret {
        req = req.header("X-Hub-Signature-256", whatsapp_signature(s.as_bytes(), body));
    }
    Ok(req.send().await?.status().as_u16())
}
