//! Chat platforms: every saved fixture payload through the normalisers, the signature vectors, and the outbound
//! clients against real local HTTP servers standing in for the Graph API and the Bot API.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use remesa::chat::model::{Button, InboundContent, OutboundMessage, Platform};
use remesa::chat::retry::RetryPolicy;
use remesa::chat::signature::{AuthError, verify_whatsapp_signature, whatsapp_signature};
use remesa::chat::telegram::{self, TelegramClient, TelegramEvent};
use remesa::chat::whatsapp::{self, SendErrorKind, WhatsappClient};
use secrecy::SecretString;

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/chat_fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn whatsapp_fixtures_normalise() {
    type Check = fn(&InboundContent) -> bool;
    let text: Check = |c| matches!(c, InboundContent::Text { .. });
    let button: Check = |c| matches!(c, InboundContent::Button { id, .. } if id == "callback_data");
    let quick: Check = |c| matches!(c, InboundContent::Button { id, title } if id == "SIM" && title.as_deref() == Some("SIM"));
    let unsupported: Check = |c| matches!(c, InboundContent::Unsupported { .. });
    let cases: &[(&str, usize, usize, Option<Check>)] = &[
        ("whatsapp_text.json", 1, 0, Some(text)),
        ("whatsapp_text_v25_bsuid.json", 1, 0, Some(text)),
        ("whatsapp_interactive_button_reply.json", 1, 0, Some(button)),
        ("whatsapp_interactive_list_reply.json", 1, 0, Some(button)),
        ("whatsapp_template_quick_reply_button.json", 1, 0, Some(quick)),
        ("whatsapp_image.json", 1, 0, Some(unsupported)),
        ("whatsapp_location.json", 1, 0, Some(unsupported)),
        ("whatsapp_reaction.json", 1, 0, Some(unsupported)),
        ("whatsapp_reaction_escaped.json", 1, 0, Some(unsupported)),
        ("whatsapp_unsupported.json", 1, 0, Some(unsupported)),
        ("whatsapp_status_sent.json", 0, 1, None),
        ("whatsapp_status_delivered_v25.json", 0, 1, None),
        ("whatsapp_status_read_v25.json", 0, 1, None),
        ("whatsapp_status_read_group.json", 0, 1, None),
        ("whatsapp_status_failed_131047.json", 0, 1, None),
        ("whatsapp_status_failed_130472.json", 0, 1, None),
        ("whatsapp_status_failed_131053_escaped_slashes.json", 0, 1, None),
    ];
    for (name, messages, statuses, check) in cases {
        let events = whatsapp::parse_webhook(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(events.messages.len(), *messages, "{name}");
        assert_eq!(events.statuses.len(), *statuses, "{name}");
        assert_eq!(events.skipped, 0, "{name}");
        if let (Some(check), Some(m)) = (check, events.messages.first()) {
            assert!(check(&m.content), "{name}: {:?}", m.content);
            assert_eq!(m.platform, Platform::Whatsapp);
            assert!(!m.message_id.is_empty());
        }
    }
    let text = whatsapp::parse_webhook(&fixture("whatsapp_text.json")).expect("parse");
    let m = &text.messages[0];
    assert_eq!(m.sender.phone_e164.as_deref(), Some("+1111111111111"));
    assert_eq!(m.sender.display_name.as_deref(), Some("Mauricio Binda"));
    assert_eq!(
        m.content,
        InboundContent::Text {
            text: "hi everyone!".into(),
            truncated: false
        }
    );
    let failed = whatsapp::parse_webhook(&fixture("whatsapp_status_failed_131047.json")).expect("parse");
    assert_eq!(failed.statuses[0].error_code, Some(131047));
    assert_eq!(failed.statuses[0].status, "failed");
}

#[test]
fn whatsapp_username_only_users_are_handled() {
    // The v25 example with `from` and `wa_id` removed: a username-only user known only by BSUID.
    let mut v: serde_json::Value =
        serde_json::from_slice(&fixture("whatsapp_text_v25_bsuid.json")).expect("json");
    let value = &mut v["entry"][0]["changes"][0]["value"];
    value["messages"][0].as_object_mut().expect("obj").remove("from");
    value["contacts"][0].as_object_mut().expect("obj").remove("wa_id");
    let events = whatsapp::parse_webhook(&serde_json::to_vec(&v).expect("json")).expect("parse");
    let m = &events.messages[0];
    assert_eq!(m.sender.user_key, "US.13491208655302741918");
    assert_eq!(m.sender.phone_e164, None);
    let body = whatsapp::send_request_body(&m.sender.address, &OutboundMessage::text("hi"));
    assert_eq!(body["recipient"], "US.13491208655302741918");
    assert!(body.get("to").is_none());
}

#[test]
fn whatsapp_tolerates_odd_payloads() {
    for body in [
        &br#"{}"#[..],
        br#"{"object":"whatsapp_business_account","entry":[]}"#,
        br#"{"entry":[{"changes":[{"field":"account_update","value":{"foo":1}}]}]}"#,
        br#"{"entry":[{"changes":[{"value":{"messages":[{"id":"a","from":"1","type":"text","text":{"body":5}}, 7, {"id":"b","from":"2","type":"sticker"}]}}]}]}"#,
        br#"{"entry":[{"changes":[{"value":{"messages":[{"from":"1","type":"text"}],"statuses":[{"status":"read"}]}}]}]}"#,
        br#"{"entry":[{"changes":[{"value":{"messages":[{"id":"x","type":"newfangled","newfangled":{}}],"contacts":[{"user_id":"BR.1"}]}}]}]}"#,
    ] {
        let events = whatsapp::parse_webhook(body).unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(body)));
        for m in &events.messages {
            assert!(!m.sender.user_key.is_empty());
        }
    }
    let mixed = whatsapp::parse_webhook(
        br#"{"entry":[{"changes":[{"value":{"messages":[{"id":"a","from":"1","type":"text","text":{"body":5}}, 7, {"id":"b","from":"2","type":"sticker"}]}}]}]}"#,
    )
    .expect("parse");
    assert_eq!(mixed.messages.len(), 2);
    assert_eq!(mixed.skipped, 1);
    assert!(whatsapp::parse_webhook(b"[1,2]").is_err());
    assert!(whatsapp::parse_webhook(b"not json").is_err());
}

#[test]
fn computed_signature_vectors_verify_over_raw_bytes() {
    let vectors: serde_json::Value =
        serde_json::from_slice(&fixture("computed_signature_vectors.json")).expect("json");
    let mut checked = 0;
    for (file, v) in vectors.as_object().expect("object") {
        let (Some(secret), Some(sig)) = (v["app_secret"].as_str(), v["X-Hub-Signature-256"].as_str()) else {
            continue;
        };
        let body = fixture(file);
        assert_eq!(whatsapp_signature(secret.as_bytes(), &body), sig, "{file}");
        assert_eq!(
            verify_whatsapp_signature(secret.as_bytes(), &body, Some(sig.as_bytes())),
            Ok(()),
            "{file}"
        );
        let mut tampered = body.clone();
        tampered[10] ^= 1;
        assert_eq!(
            verify_whatsapp_signature(secret.as_bytes(), &tampered, Some(sig.as_bytes())),
            Err(AuthError::Mismatch)
        );
        // Re-serialising the parsed JSON changes the bytes (escapes, spacing) and so the signature.
        let reserialised =
            serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(&body).expect("json"))
                .expect("json");
        assert_eq!(
            verify_whatsapp_signature(secret.as_bytes(), &reserialised, Some(sig.as_bytes())),
            Err(AuthError::Mismatch)
        );
        checked += 1;
    }
    assert_eq!(checked, 3);
}

#[test]
fn telegram_fixtures_normalise() {
    let inbound_text = |name: &str, want: &str| match telegram::parse_update(&fixture(name)).expect("parse") {
        TelegramEvent::Inbound(m) => {
            assert_eq!(m.platform, Platform::Telegram);
            assert_eq!(
                m.content,
                InboundContent::Text {
                    text: want.into(),
                    truncated: false
                },
                "{name}"
            );
            m
        }
        other => panic!("{name}: {other:?}"),
    };
    let m = inbound_text("telegram_doc_message_text.json", "/start");
    assert_eq!(m.message_id, "msg:1111111:1365");
    assert_eq!(m.sender.address, "1111111");
    inbound_text("telegram_doc_message_reply.json", "/start");
    inbound_text("telegram_doc_message_entities.json", "Bold and italics");
    inbound_text("telegram_message_text_link_preview.json", "hello there");
    let m = inbound_text("telegram_message_text_private.json", "4");
    assert_eq!(m.sender.language_code.as_deref(), Some("en"));
    match telegram::parse_update(&fixture("telegram_doc_message_document.json")).expect("parse") {
        TelegramEvent::Inbound(m) => assert_eq!(
            m.content,
            InboundContent::Unsupported {
                kind: "document".into()
            }
        ),
        other => panic!("{other:?}"),
    }
    match telegram::parse_update(&fixture("telegram_doc_callback_query_inline.json")).expect("parse") {
        TelegramEvent::Inbound(m) => {
            assert_eq!(
                m.content,
                InboundContent::Button {
                    id: "Data from button callback".into(),
                    title: None
                }
            );
            assert_eq!(m.callback_query_id.as_deref(), Some("4382bfdwdsb323b2d9"));
            assert_eq!(m.sender.address, "1111111");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        telegram::parse_update(&fixture("telegram_doc_edited_message.json")).expect("parse"),
        TelegramEvent::Edited { chat_id: 1111111, .. }
    ));
    for name in [
        "telegram_message_dice.json",
        "telegram_message_pinned_supergroup.json",
        "telegram_message_supergroup_story.json",
        "telegram_message_supergroup_reply_command.json",
        "telegram_message_reaction.json",
        "telegram_my_chat_member_kicked.json",
        "telegram_unknown_update_kind.json",
        "telegram_callback_query_object_only.json",
    ] {
        assert!(
            matches!(
                telegram::parse_update(&fixture(name)).expect("parse"),
                TelegramEvent::Ignore { .. }
            ),
            "{name}"
        );
    }
    // Each element of a getUpdates result (including malformed and unknown ones) is tolerated.
    let resp: serde_json::Value =
        serde_json::from_slice(&fixture("telegram_response_getupdates_with_unknown.json")).expect("json");
    for u in resp["result"].as_array().expect("array") {
        let e = telegram::parse_update(&serde_json::to_vec(u).expect("json")).expect("parse");
        assert!(matches!(e, TelegramEvent::Ignore { .. }), "{e:?}");
    }
}

// --- outbound clients against local servers ---------------------------------------------------------------------

/// One scripted answer: (HTTP status, headers, body).
type Step = (u16, Vec<(&'static str, String)>, String);

#[derive(Clone, Default)]
struct Fake {
    script: Arc<Mutex<VecDeque<Step>>>,
    seen: Arc<Mutex<Vec<(String, HeaderMap, serde_json::Value)>>>,
}

async fn fake_handler(
    State(fake): State<Fake>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    fake.seen
        .lock()
        .expect("lock")
        .push((uri.path().to_owned(), headers, json));
    let (status, hdrs, body) = fake.script.lock().expect("lock").pop_front().unwrap_or((
        200,
        vec![],
        r#"{"ok":true,"result":{"message_id":1},"messages":[{"id":"wamid.default"}]}"#.into(),
    ));
    let mut resp = (StatusCode::from_u16(status).expect("status"), body).into_response();
    for (k, v) in hdrs {
        resp.headers_mut().insert(k, v.parse().expect("header"));
    }
    resp.headers_mut()
        .insert("content-type", "application/json".parse().expect("ct"));
    resp
}

async fn start_fake(script: Vec<Step>) -> (String, Fake) {
    let fake = Fake {
        script: Arc::new(Mutex::new(script.into())),
        ..Fake::default()
    };
    let app = Router::new().fallback(fake_handler).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (format!("http://{addr}"), fake)
}

fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay_ms: 10,
        max_delay_ms: 50,
        max_server_wait_ms: 2_000,
        request_timeout_ms: 5_000,
    }
}

fn graph_error(code: i64) -> String {
    format!(r#"{{"error":{{"message":"limit","type":"OAuthException","code":{code},"fbtrace_id":"x"}}}}"#)
}

#[tokio::test]
async fn whatsapp_client_sends_and_backs_off_on_rate_limits() {
    let (base, fake) = start_fake(vec![
        (429, vec![("retry-after", "0".into())], graph_error(130429)),
        (400, vec![], graph_error(131056)),
        (
            200,
            vec![],
            String::from_utf8(fixture("whatsapp_send_response.json")).expect("utf8"),
        ),
    ])
    .await;
    let client = WhatsappClient::new(
        reqwest::Client::new(),
        format!("{base}/v21.0"),
        "PNID",
        SecretString::from("tok-123"),
        fast_policy(),
    );
    assert!(!format!("{client:?}").contains("tok-123"));
    let msg = OutboundMessage::with_buttons(
        "Confirm?",
        vec![
            Button::new("confirm:q1", "Confirm"),
            Button::new("cancel:q1", "Cancel"),
        ],
    );
    let id = client.send("+50255550101", &msg).await.expect("sent");
    assert_eq!(id, "wamid.gBGGSFcCNEOPAgkO_KJ55r4w_ww");
    let seen = fake.seen.lock().expect("lock");
    assert_eq!(seen.len(), 3);
    let (path, headers, body) = &seen[2];
    assert_eq!(path, "/v21.0/PNID/messages");
    assert_eq!(headers["authorization"], "Bearer tok-123");
    assert_eq!(body["to"], "50255550101");
    assert_eq!(body["type"], "interactive");
    assert_eq!(body["interactive"]["type"], "button");
    assert_eq!(
        body["interactive"]["action"]["buttons"][1]["reply"]["id"],
        "cancel:q1"
    );
}

#[tokio::test]
async fn whatsapp_client_classifies_failures() {
    // A permanent error (the saved Graph error envelope) is not retried.
    let (base, fake) = start_fake(vec![(
        400,
        vec![],
        String::from_utf8(fixture("whatsapp_graph_error_response.json")).expect("utf8"),
    )])
    .await;
    let client = WhatsappClient::new(
        reqwest::Client::new(),
        &base,
        "PNID",
        SecretString::from("tok-123"),
        fast_policy(),
    );
    let err = client
        .send("15551234567", &OutboundMessage::text("hi"))
        .await
        .expect_err("fails");
    assert_eq!(
        (err.kind, err.attempts, err.code, err.http_status),
        (SendErrorKind::Permanent, 1, Some(136024), Some(400))
    );
    assert_eq!(fake.seen.lock().expect("lock").len(), 1);
    // Rate limited on every attempt: bounded, reported as rate limited.
    let (base, fake) = start_fake((0..10).map(|_| (400, vec![], graph_error(80007))).collect()).await;
    let client = WhatsappClient::new(
        reqwest::Client::new(),
        &base,
        "PNID",
        SecretString::from("tok-123"),
        fast_policy(),
    );
    let err = client
        .send("15551234567", &OutboundMessage::text("hi"))
        .await
        .expect_err("fails");
    assert_eq!((err.kind, err.attempts), (SendErrorKind::RateLimited, 4));
    assert_eq!(fake.seen.lock().expect("lock").len(), 4);
    // Server errors are transient; nobody listening is transient too.
    let (base, _fake) = start_fake((0..10).map(|_| (503, vec![], String::new())).collect()).await;
    let client = WhatsappClient::new(
        reqwest::Client::new(),
        &base,
        "PNID",
        SecretString::from("tok-123"),
        fast_policy(),
    );
    assert_eq!(
        client
            .send("1", &OutboundMessage::text("hi"))
            .await
            .expect_err("fails")
            .kind,
        SendErrorKind::Transient
    );
    let client = WhatsappClient::new(
        reqwest::Client::new(),
        "http://127.0.0.1:9",
        "PNID",
        SecretString::from("tok-123"),
        fast_policy(),
    );
    let err = client
        .send("1", &OutboundMessage::text("hi"))
        .await
        .expect_err("fails");
    assert_eq!(err.kind, SendErrorKind::Transient);
    assert!(!err.message.contains("tok-123"));
}

#[tokio::test]
async fn whatsapp_list_for_many_choices() {
    let msg = OutboundMessage::with_buttons(
        "Pick",
        (0..12)
            .map(|i| Button::new(format!("id{i}"), format!("A very long option title {i}")))
            .collect(),
    );
    let body = whatsapp::send_request_body("15551234567", &msg);
    assert_eq!(body["interactive"]["type"], "list");
    let rows = body["interactive"]["action"]["sections"][0]["rows"]
        .as_array()
        .expect("rows");
    assert_eq!(rows.len(), 10);
    assert!(
        rows.iter()
            .all(|r| r["title"].as_str().expect("title").chars().count() <= 24)
    );
    let text = whatsapp::send_request_body("+15551234567", &OutboundMessage::text("*Hello*"));
    assert_eq!(text["text"]["preview_url"], false);
    assert_eq!(text["to"], "15551234567");
}

#[tokio::test]
async fn telegram_client_honours_retry_after() {
    let (base, fake) = start_fake(vec![
        (429, vec![], r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 1","parameters":{"retry_after":1}}"#.into()),
        (200, vec![], r#"{"ok":true,"result":{"message_id":77,"chat":{"id":5,"type":"private"},"date":1}}"#.into()),
    ])
    .await;
    let client = TelegramClient::new(
        reqwest::Client::new(),
        &base,
        SecretString::from("123:SECRET"),
        fast_policy(),
    );
    assert!(!format!("{client:?}").contains("SECRET"));
    let started = Instant::now();
    let msg = OutboundMessage::with_buttons(
        "Confirm?",
        vec![
            Button::new("confirm:q1", "Confirm"),
            Button::new("cancel:q1", "Cancel"),
        ],
    );
    assert_eq!(client.send_message(5, &msg).await.expect("sent"), 77);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited {:?}",
        started.elapsed()
    );
    let seen = fake.seen.lock().expect("lock");
    assert_eq!(seen[1].0, "/bot123:SECRET/sendMessage");
    assert_eq!(
        seen[1].2["reply_markup"]["inline_keyboard"][0][0]["callback_data"],
        "confirm:q1"
    );
    assert_eq!(seen[1].2["chat_id"], 5);
}

#[tokio::test]
async fn telegram_client_gives_up_properly() {
    // retry_after far beyond what we may wait: give up at once, rate limited.
    let (base, fake) = start_fake(vec![(
        429,
        vec![],
        String::from_utf8(fixture("telegram_response_error_retry_after.json")).expect("utf8"),
    )])
    .await;
    let client = TelegramClient::new(
        reqwest::Client::new(),
        &base,
        SecretString::from("123:SECRET"),
        fast_policy(),
    );
    let err = client
        .send_message(5, &OutboundMessage::text("hi"))
        .await
        .expect_err("fails");
    assert_eq!((err.kind, err.attempts), (SendErrorKind::RateLimited, 1));
    assert_eq!(fake.seen.lock().expect("lock").len(), 1);
    // Blocked by the user: permanent, no retry, no token in the error.
    let (base, fake) = start_fake(vec![(
        403,
        vec![],
        String::from_utf8(fixture("telegram_response_error_bot_blocked.json")).expect("utf8"),
    )])
    .await;
    let client = TelegramClient::new(
        reqwest::Client::new(),
        &base,
        SecretString::from("123:SECRET"),
        fast_policy(),
    );
    let err = client
        .send_message(5, &OutboundMessage::text("hi"))
        .await
        .expect_err("fails");
    assert_eq!((err.kind, err.attempts), (SendErrorKind::Permanent, 1));
    assert!(err.message.contains("blocked"));
    assert_eq!(fake.seen.lock().expect("lock").len(), 1);
    let client = TelegramClient::new(
        reqwest::Client::new(),
        "http://127.0.0.1:9",
        SecretString::from("123:SECRET"),
        fast_policy(),
    );
    let err = client
        .answer_callback_query("cb", Some("ok"))
        .await
        .expect_err("fails");
    assert!(!err.to_string().contains("SECRET"), "{err}");
    // answerCallbackQuery success.
    let (base, fake) = start_fake(vec![(
        200,
        vec![],
        String::from_utf8(fixture("telegram_response_ok_true.json")).expect("utf8"),
    )])
    .await;
    let client = TelegramClient::new(
        reqwest::Client::new(),
        &base,
        SecretString::from("123:SECRET"),
        fast_policy(),
    );
    client.answer_callback_query("cb1", None).await.expect("answered");
    assert_eq!(fake.seen.lock().expect("lock")[0].2["callback_query_id"], "cb1");
}

#[test]
fn whatsapp_template_body() {
    let mut msg = OutboundMessage::text("fallback text");
    msg.template = Some(remesa::chat::model::TemplateMessage {
        name: "remesa_incoming".into(),
        language: "es".into(),
        body_params: vec![
            "Ana".into(),
            "775.00 GTQ".into(),
            "Demo Pagos".into(),
            "ABCD-2345-EFGH".into(),
            "1a2b3c4d".into(),
        ],
    });
    let body = whatsapp::send_request_body("50255550101", &msg);
    assert_eq!(body["type"], "template");
    assert_eq!(body["template"]["name"], "remesa_incoming");
    assert_eq!(body["template"]["language"]["code"], "es");
    assert_eq!(
        body["template"]["components"][0]["parameters"][3]["text"],
        "ABCD-2345-EFGH"
    );
    assert!(body.get("text").is_none());
}

#[test]
fn openapi_fragment_documents_the_chat_routes() {
    let doc = remesa::chat::openapi();
    let json = serde_json::to_value(&doc).expect("json");
    for path in [
        "/webhooks/whatsapp",
        "/webhooks/telegram",
        "/v1/dev/chat",
        "/v1/dev/chat/messages",
    ] {
        assert!(json["paths"].get(path).is_some(), "{path} missing");
    }
    assert!(json["paths"]["/webhooks/whatsapp"].get("get").is_some());
    assert!(json["components"]["schemas"].get("DevChatRequest").is_some());
    assert_eq!(
        json["components"]["schemas"]["DevChatRequest"]["example"]["as"],
        "+15551234567"
    );
}
