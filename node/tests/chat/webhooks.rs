//! Webhook endpoints over real HTTP: every fixture with valid, invalid and missing signatures; Telegram's secret
//! token; the GET handshake; body limits; durable acknowledgement with dedupe.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use remesa::chat::http::routes;
use remesa::chat::service::ChatService;
use remesa::chat::signature::whatsapp_signature;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::fake_engine::FakeEngine;
use crate::harness::*;

#[allow(dead_code)]
pub struct Node {
    pub base: String,
    pub api: PlatformApi,
    pub db: TestDb,
    pub engine: Arc<FakeEngine>,
    pub service: ChatService,
    pub http: reqwest::Client,
    pub shutdown: CancellationToken,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn start(db: TestDb, workers: bool) -> Result<Node> {
    start_with(db, workers, |_| {}).await
}

pub async fn start_with(
    db: TestDb,
    workers: bool,
    adjust: impl FnOnce(&mut remesa::chat::config::ChatConfig),
) -> Result<Node> {
    let api = PlatformApi::start().await?;
    let engine = Arc::new(FakeEngine::default());
    let mut config = chat_config(&api);
    adjust(&mut config);
    let service = ChatService::new(
        &config,
        db.store.clone(),
        engine.clone(),
        Some(SecretString::from(OPERATOR_TOKEN)),
    );
    let base = serve(routes(service.clone())).await?;
    let shutdown = CancellationToken::new();
    if workers {
        service.spawn_workers(shutdown.clone());
    }
    Ok(Node {
        base,
        api,
        db,
        engine,
        service,
        http: reqwest::Client::new(),
        shutdown,
    })
}

const WHATSAPP_WEBHOOK_FIXTURES: &[&str] = &[
    "whatsapp_text.json",
    "whatsapp_text_v25_bsuid.json",
    "whatsapp_interactive_button_reply.json",
    "whatsapp_interactive_list_reply.json",
    "whatsapp_template_quick_reply_button.json",
    "whatsapp_image.json",
    "whatsapp_location.json",
    "whatsapp_reaction.json",
    "whatsapp_reaction_escaped.json",
    "whatsapp_unsupported.json",
    "whatsapp_status_sent.json",
    "whatsapp_status_delivered_v25.json",
    "whatsapp_status_read_v25.json",
    "whatsapp_status_read_group.json",
    "whatsapp_status_failed_131047.json",
    "whatsapp_status_failed_130472.json",
    "whatsapp_status_failed_131053_escaped_slashes.json",
];

#[tokio::test]
async fn whatsapp_fixtures_signed_unsigned_and_forged() -> Result<()> {
    let node = start(sqlite().await?, false).await?;
    for name in WHATSAPP_WEBHOOK_FIXTURES {
        let body = fixture(name);
        assert_eq!(
            post_whatsapp(&node.http, &node.base, &body, None).await?,
            401,
            "{name} unsigned"
        );
        assert_eq!(
            post_whatsapp(&node.http, &node.base, &body, Some("wrong-secret")).await?,
            403,
            "{name} forged"
        );
        assert_eq!(
            post_whatsapp(&node.http, &node.base, &body, Some(APP_SECRET)).await?,
            200,
            "{name} signed"
        );
        // A signature over different bytes (the parsed and re-serialised JSON) is refused.
        let reser = serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(&body)?)?;
        let resp = node
            .http
            .post(format!("{}/webhooks/whatsapp", node.base))
            .header(
                "X-Hub-Signature-256",
                whatsapp_signature(APP_SECRET.as_bytes(), &reser),
            )
            .body(body.clone())
            .send()
            .await?;
        assert_eq!(resp.status().as_u16(), 403, "{name}");
    }
    // Malformed headers.
    for header in ["sha256=", "sha1=abc", "sha256=zz", "md5 1234"] {
        let resp = node
            .http
            .post(format!("{}/webhooks/whatsapp", node.base))
            .header("X-Hub-Signature-256", header)
            .body("{}")
            .send()
            .await?;
        assert_eq!(resp.status().as_u16(), 403, "{header}");
    }
    // Inbound messages stored once each; statuses recorded, not stored as messages.
    let distinct: std::collections::HashSet<String> = WHATSAPP_WEBHOOK_FIXTURES
        .iter()
        .flat_map(|n| {
            remesa::chat::whatsapp::parse_webhook(&fixture(n))
                .map(|e| e.messages)
                .unwrap_or_default()
        })
        .map(|m| m.message_id)
        .collect();
    assert_eq!(distinct.len(), 6, "the saved fixtures reuse message ids");
    assert_eq!(node.db.count("SELECT COUNT(*) FROM chat_inbox").await?, 6);
    Ok(())
}

#[tokio::test]
async fn computed_vectors_are_accepted_with_their_own_secret() -> Result<()> {
    let api = PlatformApi::start().await?;
    let mut config = chat_config(&api);
    config.whatsapp_app_secret = Some(SecretString::from("YOUR_APP_SECRET"));
    let db = sqlite().await?;
    let service = ChatService::new(&config, db.store.clone(), Arc::new(FakeEngine::default()), None);
    let base = serve(routes(service)).await?;
    let vectors: serde_json::Value = serde_json::from_slice(&fixture("computed_signature_vectors.json"))?;
    let http = reqwest::Client::new();
    let mut n = 0;
    for (file, v) in vectors.as_object().into_iter().flatten() {
        let Some(sig) = v["X-Hub-Signature-256"].as_str() else {
            continue;
        };
        let resp = http
            .post(format!("{base}/webhooks/whatsapp"))
            .header("X-Hub-Signature-256", sig)
            .body(fixture(file))
            .send()
            .await?;
        assert_eq!(resp.status().as_u16(), 200, "{file}");
        n += 1;
    }
    assert_eq!(n, 3);
    Ok(())
}

#[tokio::test]
async fn whatsapp_handshake() -> Result<()> {
    let node = start(sqlite().await?, false).await?;
    let url = format!(
        "{}/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={VERIFY_TOKEN}",
        node.base
    );
    let resp = node.http.get(url).send().await?;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.text().await?, "1158201444");
    let url = format!(
        "{}/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=nope",
        node.base
    );
    assert_eq!(node.http.get(url).send().await?.status().as_u16(), 403);
    assert_eq!(
        node.http
            .get(format!("{}/webhooks/whatsapp", node.base))
            .send()
            .await?
            .status()
            .as_u16(),
        403
    );
    Ok(())
}

#[tokio::test]
async fn telegram_secret_token() -> Result<()> {
    let node = start(sqlite().await?, false).await?;
    let url = format!("{}/webhooks/telegram", node.base);
    let body = fixture("telegram_doc_message_text.json");
    let post = |secret: Option<&str>, body: Vec<u8>| {
        let mut req = node
            .http
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(s) = secret {
            req = req.header("X-Telegram-Bot-Api-Secret-Token", s.to_owned());
        }
        req.send()
    };
    assert_eq!(post(None, body.clone()).await?.status().as_u16(), 401);
    assert_eq!(post(Some("wrong"), body.clone()).await?.status().as_u16(), 401);
    assert_eq!(
        post(Some(&TG_SECRET[..TG_SECRET.len() - 1]), body.clone())
            .await?
            .status()
            .as_u16(),
        401
    );
    assert_eq!(post(Some(TG_SECRET), body.clone()).await?.status().as_u16(), 200);
    for name in [
        "telegram_doc_message_reply.json",
        "telegram_doc_edited_message.json",
        "telegram_doc_message_entities.json",
        "telegram_doc_message_document.json",
        "telegram_doc_callback_query_inline.json",
        "telegram_message_dice.json",
        "telegram_message_pinned_supergroup.json",
        "telegram_message_reaction.json",
        "telegram_message_supergroup_reply_command.json",
        "telegram_message_supergroup_story.json",
        "telegram_message_text_link_preview.json",
        "telegram_message_text_private.json",
        "telegram_my_chat_member_kicked.json",
        "telegram_unknown_update_kind.json",
        "telegram_callback_query_object_only.json",
    ] {
        assert_eq!(
            post(Some(TG_SECRET), fixture(name)).await?.status().as_u16(),
            200,
            "{name}"
        );
    }
    // Garbage with the right secret is acknowledged (Telegram would redeliver it forever otherwise).
    assert_eq!(
        post(Some(TG_SECRET), b"not json".to_vec())
            .await?
            .status()
            .as_u16(),
        200
    );
    // Private messages and the callback are stored; groups, reactions, kicks and unknown kinds are not.
    // (text, reply, entities and document share chat 1111111 message 1365: one row.)
    assert_eq!(
        node.db
            .count("SELECT COUNT(*) FROM chat_inbox WHERE platform = 'telegram'")
            .await?,
        4
    );
    // The edit got a note queued instead of an action.
    assert_eq!(
        node.db
            .count("SELECT COUNT(*) FROM chat_outbox WHERE dedupe_key LIKE 'telegram:edit:%'")
            .await?,
        1
    );
    Ok(())
}

#[tokio::test]
async fn body_limit_and_unconfigured_platforms() -> Result<()> {
    let node = start(sqlite().await?, false).await?;
    let big = vec![b' '; 70 * 1024];
    assert_eq!(
        post_whatsapp(&node.http, &node.base, &big, Some(APP_SECRET)).await?,
        413
    );
    // A node without WhatsApp/Telegram secrets refuses their webhooks.
    let db = sqlite().await?;
    let service = ChatService::new(
        &Default::default(),
        db.store.clone(),
        Arc::new(FakeEngine::default()),
        None,
    );
    let base = serve(routes(service)).await?;
    assert_eq!(
        post_whatsapp(&node.http, &base, b"{}", Some(APP_SECRET)).await?,
        404
    );
    let resp = node
        .http
        .post(format!("{base}/webhooks/telegram"))
        .header("X-Telegram-Bot-Api-Secret-Token", TG_SECRET)
        .body("{}")
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 404);
    assert_eq!(
        node.http
            .post(format!("{base}/v1/dev/chat"))
            .body("{}")
            .send()
            .await?
            .status()
            .as_u16(),
        404
    );
    Ok(())
}

#[tokio::test]
async fn redelivered_webhook_acts_once() -> Result<()> {
    let node = start(sqlite().await?, true).await?;
    let body = wa_text("15551234567", "wamid.dup1", "hola");
    for _ in 0..3 {
        assert_eq!(
            post_whatsapp(&node.http, &node.base, &body, Some(APP_SECRET)).await?,
            200
        );
    }
    node.api
        .wait_whatsapp("15551234567", "welcome", Duration::from_secs(10), |m| {
            !m.is_empty()
        })
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        node.api.whatsapp_to("15551234567").len(),
        1,
        "one welcome for three deliveries"
    );
    assert_eq!(node.db.count("SELECT COUNT(*) FROM chat_inbox").await?, 1);
    Ok(())
}

#[tokio::test]
async fn terminal_endpoint_needs_the_operator_token() -> Result<()> {
    let node = start(sqlite().await?, false).await?;
    let url = format!("{}/v1/dev/chat", node.base);
    let body = serde_json::json!({ "as": "+15551234567", "text": "hola" });
    assert_eq!(
        node.http.post(&url).json(&body).send().await?.status().as_u16(),
        401
    );
    assert_eq!(
        node.http
            .post(&url)
            .bearer_auth("nope")
            .json(&body)
            .send()
            .await?
            .status()
            .as_u16(),
        403
    );
    let resp = node
        .http
        .post(&url)
        .bearer_auth(OPERATOR_TOKEN)
        .json(&body)
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 200);
    let r: remesa::chat::http::DevChatResponse = resp.json().await?;
    assert!(r.replies[0].text.contains("Bienvenido"), "{:?}", r.replies);
    let bad = serde_json::json!({ "as": "5551234567", "text": "hola" });
    assert_eq!(
        node.http
            .post(&url)
            .bearer_auth(OPERATOR_TOKEN)
            .json(&bad)
            .send()
            .await?
            .status()
            .as_u16(),
        400
    );
    Ok(())
}
