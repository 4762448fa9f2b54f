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
    // Without the platform's authentication header the answer is 401 whether or not the platform is enabled: the
    // required header is checked first (enabled: `node.base`, disabled: `base`).
    for base in [&node.base, &base] {
        assert_eq!(post_whatsapp(&node.http, base, b"{}", None).await?, 401);
        let resp = node
            .http
            .post(format!("{base}/webhooks/telegram"))
            .body("{}")
            .send()
            .await?;
        assert_eq!(resp.status().as_u16(), 401);
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
    }
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

/// A WhatsApp webhook's status and `Retry-After` header.
async fn post_whatsapp_full(node: &Node, body: &[u8]) -> Result<(u16, Option<String>)> {
    let resp = node
        .http
        .post(format!("{}/webhooks/whatsapp", node.base))
        .header("content-type", "application/json")
        .header(
            "X-Hub-Signature-256",
            whatsapp_signature(APP_SECRET.as_bytes(), body),
        )
        .body(body.to_vec())
        .send()
        .await?;
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((resp.status().as_u16(), retry_after))
}

/// The inbox is bounded: at `chat_inbox_pending_max` unhandled messages a webhook answers 503 with `Retry-After`
/// and stores nothing (the platform redelivers); once the workers catch up, the same delivery is taken.
#[tokio::test]
async fn a_full_inbox_answers_503_with_retry_after() -> Result<()> {
    for db in all_dbs().await? {
        let node = start_with(db, false, |c| c.chat_inbox_pending_max = 2).await?;
        for i in 0..2 {
            let body = wa_text(&format!("1555000000{i}"), &format!("wamid.full{i}"), "hola");
            assert_eq!(
                post_whatsapp_full(&node, &body).await?.0,
                200,
                "{}",
                node.db.label
            );
        }
        // The depth is counted at most every 100 ms.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let third = wa_text("15550000009", "wamid.full9", "hola");
        let (status, retry_after) = post_whatsapp_full(&node, &third).await?;
        assert_eq!(status, 503, "{}", node.db.label);
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert_eq!(
            node.db.count("SELECT COUNT(*) FROM chat_inbox").await?,
            2,
            "nothing stored"
        );
        // Telegram and the terminal endpoint are refused the same way.
        let tg = node
            .http
            .post(format!("{}/webhooks/telegram", node.base))
            .header("X-Telegram-Bot-Api-Secret-Token", TG_SECRET)
            .header("content-type", "application/json")
            .body(
                serde_json::json!({"update_id": 7, "message": {"message_id": 7, "date": 1, "text": "hola",
                    "chat": {"id": 99, "type": "private"}, "from": {"id": 99, "is_bot": false, "first_name": "T"}}})
                .to_string(),
            )
            .send()
            .await?;
        assert_eq!(tg.status().as_u16(), 503);
        // The workers catch up; the redelivery is stored.
        while node.service.process_next_inbox(None).await?.is_some() {}
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(post_whatsapp_full(&node, &third).await?.0, 200);
        assert_eq!(node.db.count("SELECT COUNT(*) FROM chat_inbox").await?, 3);
    }
    Ok(())
}

/// With several inbox workers, conversations are handled in parallel but each in the order its messages arrived:
/// a user's message is claimed only when none of theirs before it is pending or in hand.
#[tokio::test]
async fn parallel_inbox_workers_keep_each_conversation_in_order() -> Result<()> {
    for db in all_dbs().await? {
        let node = start_with(db, false, |c| c.chat_inbox_workers = Some(4)).await?;
        let users = ["15551110001", "15551110002", "15551110003"];
        for k in 0..8 {
            for u in users {
                let text = if k % 2 == 0 { "help" } else { "balance" };
                let body = wa_text(u, &format!("wamid.{u}.{k}"), text);
                assert_eq!(
                    post_whatsapp(&node.http, &node.base, &body, Some(APP_SECRET)).await?,
                    200
                );
            }
        }
        node.service.spawn_workers(node.shutdown.clone());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while node
            .db
            .count("SELECT COUNT(*) FROM chat_inbox WHERE status = 'done'")
            .await?
            < 24
        {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "{}: inbox not worked off",
                node.db.label
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for u in users {
            let rows: Vec<(String, i64)> = sqlx::query_as(
                "SELECT message_id, processed_at_unix_ms FROM chat_inbox WHERE user_key = $1 \
                 ORDER BY received_at_unix_ms, id",
            )
            .bind(u)
            .fetch_all(node.db.store.pool())
            .await?;
            assert_eq!(rows.len(), 8);
            for w in rows.windows(2) {
                assert!(
                    w[0].1 <= w[1].1,
                    "{}: {} handled after {} although it came first",
                    node.db.label,
                    w[0].0,
                    w[1].0
                );
            }
        }
    }
    Ok(())
}

/// Several outbox workers deliver to different users at once, but each user's messages one at a time and in the
/// order they were queued.
#[tokio::test]
async fn parallel_outbox_workers_keep_each_users_messages_in_order() -> Result<()> {
    for db in all_dbs().await? {
        let node = start_with(db, false, |c| c.chat_outbox_workers = 4).await?;
        // Every platform call takes 30 ms, so deliveries overlap: the stand-in counts how many are in progress
        // for each recipient at once.
        node.api.delay_ms.store(30, std::sync::atomic::Ordering::Relaxed);
        let users = ["15552220001", "15552220002", "15552220003"];
        for k in 0..8 {
            for u in users {
                node.service
                    .store()
                    .enqueue(&remesa::chat::store::NewOutbound {
                        dedupe_key: format!("order-{u}-{k}"),
                        platform: remesa::chat::model::Platform::Whatsapp,
                        address: u.to_owned(),
                        message: remesa::chat::model::OutboundMessage::text(format!("message {k}")),
                        callback_query_id: None,
                    })
                    .await?;
            }
        }
        node.service.spawn_workers(node.shutdown.clone());
        for u in users {
            let got = node
                .api
                .wait_whatsapp(u, "message 7", Duration::from_secs(30), |m| m.len() >= 8)
                .await?;
            let texts: Vec<String> = got.into_iter().map(|(t, _)| t).collect();
            let want: Vec<String> = (0..8).map(|k| format!("message {k}")).collect();
            assert_eq!(texts, want, "{}: {u}", node.db.label);
        }
        assert_eq!(
            node.api
                .max_in_progress_per_recipient
                .load(std::sync::atomic::Ordering::Relaxed),
            1,
            "{}: two messages to one user were in flight at once",
            node.db.label
        );
    }
    Ok(())
}
