//! The conversation through WhatsApp-format webhooks, with the engine stand-in: onboarding, asking for what is
//! missing, the quote, confirm by button (idempotent on redelivery), status/history/balance, cancel, garbage, and
//! the notifications to sender and recipient.

use std::time::Duration;

use anyhow::Result;

use crate::fake_engine::FAKE_PICKUP_CODE;
use crate::harness::*;
use crate::webhooks::start;

const ANA: &str = "15551234567";
const MARIA: &str = "50255550101";
const T: Duration = Duration::from_secs(10);

async fn say(node: &crate::webhooks::Node, id: &str, text: &str) -> Result<()> {
    assert_eq!(
        post_whatsapp(&node.http, &node.base, &wa_text(ANA, id, text), Some(APP_SECRET)).await?,
        200
    );
    Ok(())
}

async fn replies_after(
    node: &crate::webhooks::Node,
    before: usize,
    what: &str,
) -> Result<Vec<(String, Vec<String>)>> {
    node.api.wait_whatsapp(ANA, what, T, |m| m.len() > before).await?;
    // Give the outbox a moment to deliver any further replies of the same message.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let all = node.api.whatsapp_to(ANA);
    Ok(all.into_iter().skip(before).collect())
}

#[tokio::test]
async fn full_conversation_with_notifications() -> Result<()> {
    for db in all_dbs().await? {
        let label = db.label;
        full_conversation(db).await.map_err(|e| e.context(label))?;
    }
    Ok(())
}

async fn full_conversation(db: TestDb) -> Result<()> {
    let node = start(db, true).await?;

    say(&node, "wamid.1", "hola").await?;
    let r = replies_after(&node, 0, "welcome").await?;
    assert!(
        r[0].0.contains("Bienvenido") && r[0].0.contains("0x0000000000000000000000000000000000000001"),
        "{r:?}"
    );
    assert_eq!(r[0].1, vec!["menu:send", "menu:balance", "menu:history"]);

    // Missing pieces are asked for one by one.
    say(&node, "wamid.2", "envía 100").await?;
    let r = replies_after(&node, 1, "ask phone").await?;
    assert!(r[0].0.contains("teléfono"), "{r:?}");
    say(&node, "wamid.3", "+502 5555 0101").await?;
    let r = replies_after(&node, 2, "ask method").await?;
    assert_eq!(
        r[0].1,
        vec![
            "method:cash_pickup",
            "method:bank_deposit",
            "method:mobile_wallet",
            "method:remesa_wallet"
        ],
        "{r:?}"
    );
    assert_eq!(
        post_whatsapp(
            &node.http,
            &node.base,
            &wa_list(ANA, "wamid.4", "method:cash_pickup"),
            Some(APP_SECRET)
        )
        .await?,
        200
    );
    let r = replies_after(&node, 3, "ask name").await?;
    assert!(r[0].0.contains("nombre"), "{r:?}");
    say(&node, "wamid.5", "María López").await?;
    let r = replies_after(&node, 4, "quote").await?;
    let (quote_text, buttons) = &r[0];
    for needle in [
        "Envías: 100.00 USD",
        "Comisión: 2.49 USD",
        "Total a pagar: *102.49 USD*",
        "1 USD = 7.75 GTQ",
        "María López (+50255550101) recibe: *775.00 GTQ*",
        "Costo total",
        "Válida por 5 min",
    ] {
        assert!(quote_text.contains(needle), "{needle:?} not in {quote_text}");
    }
    assert_eq!(buttons, &vec!["confirm:q1".to_owned(), "cancel:q1".to_owned()]);

    // Confirm with the button, delivered three times: one remittance, keyed by the message id.
    let confirm = wa_button(ANA, "wamid.6", "confirm:q1", "Confirmar");
    for _ in 0..3 {
        assert_eq!(
            post_whatsapp(&node.http, &node.base, &confirm, Some(APP_SECRET)).await?,
            200
        );
    }
    let r = replies_after(&node, 5, "confirmed").await?;
    assert!(r[0].0.contains("R1"), "{r:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        node.engine.state.lock().expect("lock").confirms,
        vec!["whatsapp:wamid.6".to_owned()]
    );
    assert_eq!(node.api.whatsapp_to(ANA).len(), 6);

    // "yes" now has nothing pending.
    say(&node, "wamid.7", "sí").await?;
    let r = replies_after(&node, 6, "nothing pending").await?;
    assert!(r[0].0.contains("No hay nada"), "{r:?}");

    say(&node, "wamid.8", "estado").await?;
    let r = replies_after(&node, 7, "status").await?;
    assert!(
        r[0].0.contains("R1") && r[0].0.contains("esperando fondos"),
        "{r:?}"
    );

    // The engine moves the remittance; sender and recipient are told at each step.
    node.engine.transition("R1", "funds_locked");
    let m = node
        .api
        .wait_whatsapp(MARIA, "recipient notice", T, |m| !m.is_empty())
        .await?;
    assert!(
        m[0].0.contains("ABCD-2345-EFGH") && m[0].0.contains("775.00 GTQ") && m[0].0.contains("Demo Pagos"),
        "{m:?}"
    );
    node.api
        .wait_whatsapp(ANA, "locked", T, |m| m.iter().any(|x| x.0.contains("asegurado")))
        .await?;
    // Cancelling after the lock is refused with an explanation.
    say(&node, "wamid.9", "cancelar").await?;
    node.api
        .wait_whatsapp(ANA, "cannot cancel", T, |m| {
            m.iter().any(|x| x.0.contains("ya no se puede cancelar"))
        })
        .await?;

    // The recipient lost the code: the node asks the sender, and only on the sender's "reenviar" does the code go
    // to the recipient's chat again (never to the sender).
    assert_eq!(
        post_whatsapp(
            &node.http,
            &node.base,
            &wa_text(MARIA, "wamid.m1", "perdí mi código"),
            Some(APP_SECRET)
        )
        .await?,
        200
    );
    node.api
        .wait_whatsapp(MARIA, "lost-code reply", T, |m| {
            m.iter()
                .any(|x| x.0.contains("solo si quien te lo envió lo confirma"))
        })
        .await?;
    node.api
        .wait_whatsapp(ANA, "asked to confirm", T, |m| {
            m.iter()
                .any(|x| x.0.contains("pide de nuevo el código") && x.0.contains("*reenviar R1*"))
        })
        .await?;
    say(&node, "wamid.r1", "reenviar R1").await?;
    node.api
        .wait_whatsapp(ANA, "resent", T, |m| {
            m.iter().any(|x| x.0.contains("Listo: le reenvié"))
        })
        .await?;
    node.api
        .wait_whatsapp(MARIA, "the code again", T, |m| {
            m.iter().filter(|x| x.0.contains(FAKE_PICKUP_CODE)).count() == 2
        })
        .await?;
    assert!(
        !node
            .api
            .whatsapp_to(ANA)
            .iter()
            .any(|x| x.0.contains(FAKE_PICKUP_CODE))
    );
    // At most five re-sends per remittance: four more pass, the sixth is refused with a way out.
    for n in 2..=5 {
        say(&node, &format!("wamid.r{n}"), "reenviar R1").await?;
        node.api
            .wait_whatsapp(MARIA, "the code again", T, |m| {
                m.iter().filter(|x| x.0.contains(FAKE_PICKUP_CODE)).count() == n + 1
            })
            .await?;
    }
    say(&node, "wamid.r6", "reenviar R1").await?;
    node.api
        .wait_whatsapp(ANA, "too often", T, |m| {
            m.iter().any(|x| x.0.contains("ya se reenvió varias veces"))
        })
        .await?;
    // Stored messages hold a placeholder, never the code.
    assert_eq!(
        node.db
            .count(&format!(
                "SELECT COUNT(*) FROM chat_outbox WHERE payload LIKE '%{FAKE_PICKUP_CODE}%'"
            ))
            .await?,
        0
    );
    assert!(
        node.db
            .count("SELECT COUNT(*) FROM chat_outbox WHERE payload LIKE '%[pickup code]%'")
            .await?
            >= 2
    );
    node.engine.transition("R1", "payout_assigned");
    node.engine.transition("R1", "paid");
    node.api
        .wait_whatsapp(MARIA, "paid", T, |m| {
            m.iter().any(|x| x.0.contains("ya recibiste"))
        })
        .await?;
    node.engine.transition("R1", "settled");
    node.api
        .wait_whatsapp(ANA, "settled", T, |m| m.iter().any(|x| x.0.contains("liquidado")))
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The recipient got the code once per notice (funds_locked and payout_assigned both map to one notice) and once
    // more for each of the five sender-confirmed re-sends.
    assert_eq!(
        node.api
            .whatsapp_to(MARIA)
            .iter()
            .filter(|m| m.0.contains(FAKE_PICKUP_CODE))
            .count(),
        6
    );
    let deadline = tokio::time::Instant::now() + T;
    while node
        .db
        .count("SELECT COUNT(*) FROM chat_outbox WHERE status <> 'sent'")
        .await?
        != 0
    {
        assert!(tokio::time::Instant::now() < deadline, "outbox not drained");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        node.db
            .count("SELECT position FROM chat_cursors WHERE name = 'engine_events'")
            .await?,
        4
    );

    say(&node, "wamid.10", "historial").await?;
    node.api
        .wait_whatsapp(ANA, "history", T, |m| {
            m.iter()
                .any(|x| x.0.contains("Tus envíos recientes") && x.0.contains("liquidado"))
        })
        .await?;
    // A transfer whose deposit the chain refused for good (here a blacklisted party): the sender hears why, and
    // that no money moved.
    node.engine.transition("R1", "failed");
    node.api
        .wait_whatsapp(ANA, "failed", T, |m| {
            m.iter()
                .any(|x| x.0.contains("bloquea") && x.0.contains("No salió dinero"))
        })
        .await?;
    Ok(())
}

#[tokio::test]
async fn english_one_shot_decline_and_errors() -> Result<()> {
    let node = start(sqlite().await?, true).await?;
    say(&node, "w1", "hi").await?;
    let r = replies_after(&node, 0, "welcome").await?;
    assert!(r[0].0.contains("Welcome"), "{r:?}");
    say(&node, "w2", "send $50 to Maria +502 5555 0101 cash pickup").await?;
    let r = replies_after(&node, 1, "quote").await?;
    assert!(
        r[0].0.contains("Maria (+50255550101) gets: *387.50 GTQ*"),
        "{r:?}"
    );
    assert_eq!(
        post_whatsapp(
            &node.http,
            &node.base,
            &wa_button(ANA, "w3", "cancel:q1", "Cancel"),
            Some(APP_SECRET)
        )
        .await?,
        200
    );
    let r = replies_after(&node, 2, "cancelled").await?;
    assert!(r[0].0.contains("Cancelled"), "{r:?}");
    // The old quote's confirm button no longer confirms anything.
    assert_eq!(
        post_whatsapp(
            &node.http,
            &node.base,
            &wa_button(ANA, "w4", "confirm:q1", "Confirm"),
            Some(APP_SECRET)
        )
        .await?,
        200
    );
    let r = replies_after(&node, 3, "stale button").await?;
    assert!(r[0].0.contains("didn't understand"), "{r:?}");
    assert!(node.engine.state.lock().expect("lock").confirms.is_empty());
    // No partner for the corridor.
    say(&node, "w5", "send 20 to +52 55 1234 5678 bank").await?;
    let r = replies_after(&node, 4, "no quote").await?;
    assert!(r[0].0.contains("no partner"), "{r:?}");
    // Garbage of every kind gets a helpful answer.
    let mut n = 5;
    for (i, text) in [
        "🎉🎉🎉",
        "",
        "asdf qwer",
        &"x".repeat(5000),
        "send 1.000 to +502 5555 0101 cash",
        "send 10 EUR to +502 5555 0101",
    ]
    .iter()
    .enumerate()
    {
        say(&node, &format!("g{i}"), text).await?;
        let r = replies_after(&node, n, "helpful reply").await?;
        assert!(!r.is_empty());
        n += r.len();
    }
    let all = node.api.whatsapp_to(ANA);
    assert!(
        all.iter().any(|m| m.0.contains("one thousand or one")),
        "{all:#?}"
    );
    assert!(
        all.iter().any(|m| m.0.contains("only send US dollars")),
        "{all:#?}"
    );
    // Images and reactions are answered, not acted on.
    let before = node.api.whatsapp_to("1111111111111").len();
    assert_eq!(
        post_whatsapp(
            &node.http,
            &node.base,
            &fixture("whatsapp_image.json"),
            Some(APP_SECRET)
        )
        .await?,
        200
    );
    node.api
        .wait_whatsapp("1111111111111", "unsupported", T, |m| m.len() > before + 1)
        .await?;
    let m = node.api.whatsapp_to("1111111111111");
    assert!(m.iter().any(|x| x.0.contains("only read text")), "{m:?}");
    Ok(())
}

#[tokio::test]
async fn engine_failures_are_retried_then_answered() -> Result<()> {
    let node = start(sqlite().await?, true).await?;
    say(&node, "e1", "hi").await?;
    replies_after(&node, 0, "welcome").await?;
    node.engine.state.lock().expect("lock").fail_next_quote = true;
    say(&node, "e2", "send 50 to +502 5555 0101 bank").await?;
    // The first attempt fails inside the engine; the inbox worker retries and the user gets the quote.
    let r = replies_after(&node, 1, "quote after retry").await?;
    assert!(r[0].0.contains("Your quote"), "{r:?}");
    assert_eq!(
        node.db
            .count("SELECT attempts FROM chat_inbox WHERE message_id = 'e2'")
            .await?,
        2
    );
    Ok(())
}

#[tokio::test]
async fn rate_limited_graph_api_is_retried_and_errors_recorded() -> Result<()> {
    let node = start(sqlite().await?, true).await?;
    node.api.failures.lock().expect("lock").insert(
        "/PNID/messages".into(),
        vec![
            (429, r#"{"error":{"message":"rate","code":130429}}"#.into()),
            (
                400,
                r#"{"error":{"message":"pair rate limit","code":131056}}"#.into(),
            ),
        ],
    );
    say(&node, "r1", "hi").await?;
    node.api
        .wait_whatsapp(ANA, "welcome after rate limits", T, |m| m.len() >= 3)
        .await?;
    // The row is marked sent just after the third request returns.
    let deadline = tokio::time::Instant::now() + T;
    while node
        .db
        .count("SELECT COUNT(*) FROM chat_outbox WHERE status = 'sent'")
        .await?
        != 1
    {
        assert!(tokio::time::Instant::now() < deadline, "not marked sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        node.api.whatsapp_to(ANA).len(),
        3,
        "two refused attempts, then one delivery"
    );
    // A permanent refusal is recorded on the row and not retried.
    node.api.failures.lock().expect("lock").insert(
        "/PNID/messages".into(),
        vec![(
            400,
            String::from_utf8(fixture("whatsapp_graph_error_response.json"))?,
        )],
    );
    say(&node, "r2", "help").await?;
    let deadline = tokio::time::Instant::now() + T;
    while node
        .db
        .count("SELECT COUNT(*) FROM chat_outbox WHERE status = 'failed' AND last_error_code = 136024")
        .await?
        != 1
    {
        assert!(tokio::time::Instant::now() < deadline, "failure not recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test]
async fn terminal_chat_round_trip() -> Result<()> {
    let node = start(sqlite().await?, true).await?;
    let url = format!("{}/v1/dev/chat", node.base);
    let send = |body: serde_json::Value| {
        let http = node.http.clone();
        let url = url.clone();
        async move {
            let r: remesa::chat::http::DevChatResponse = http
                .post(&url)
                .bearer_auth(OPERATOR_TOKEN)
                .json(&body)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            anyhow::Ok(r)
        }
    };
    let r = send(serde_json::json!({ "as": "+15551234567", "text": "hi" })).await?;
    assert!(r.replies[0].text.contains("Welcome"));
    let r =
        send(serde_json::json!({ "as": "+15551234567", "text": "send 100 to Maria +502 5555 0101 cash" }))
            .await?;
    assert_eq!(r.replies[0].buttons[0].id, "confirm:q1");
    // The recipient opens the terminal chat too (so notices go there).
    send(serde_json::json!({ "as": "+50255550101", "text": "hola" })).await?;
    let r = send(serde_json::json!({ "as": "+15551234567", "button": "confirm:q1", "message_id": "m-1" }))
        .await?;
    assert!(r.replies[0].text.contains("R1"), "{r:?}");
    // Same client message id again: same replies, nothing done twice.
    let again =
        send(serde_json::json!({ "as": "+15551234567", "button": "confirm:q1", "message_id": "m-1" }))
            .await?;
    assert_eq!(again.replies, r.replies);
    assert_eq!(node.engine.state.lock().expect("lock").confirms.len(), 1);
    node.engine.transition("R1", "funds_locked");
    let deadline = tokio::time::Instant::now() + T;
    let notices = loop {
        let p: remesa::chat::http::DevChatResponse = node
            .http
            .get(format!("{}/v1/dev/chat/messages?as=%2B50255550101", node.base))
            .bearer_auth(OPERATOR_TOKEN)
            .send()
            .await?
            .json()
            .await?;
        if !p.notifications.is_empty() {
            break p.notifications;
        }
        assert!(tokio::time::Instant::now() < deadline, "no terminal notice");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(notices[0].text.contains("ABCD-2345-EFGH"), "{notices:?}");
    Ok(())
}

#[tokio::test]
async fn telegram_conversation_with_inline_keyboard() -> Result<()> {
    let node = start(sqlite().await?, true).await?;
    let url = format!("{}/webhooks/telegram", node.base);
    let mut update_id = 100;
    let mut post = |body: serde_json::Value| {
        update_id += 1;
        let mut body = body;
        body["update_id"] = update_id.into();
        node.http
            .post(&url)
            .header("X-Telegram-Bot-Api-Secret-Token", TG_SECRET)
            .json(&body)
            .send()
    };
    let msg = |id: i64, text: &str| {
        serde_json::json!({ "message": {
            "message_id": id, "date": 1, "text": text,
            "chat": { "id": 4242, "type": "private", "first_name": "Ana" },
            "from": { "id": 4242, "is_bot": false, "first_name": "Ana", "language_code": "es" }
        }})
    };
    assert_eq!(post(msg(1, "/start")).await?.status().as_u16(), 200);
    assert_eq!(
        post(msg(2, "envía 100 a +502 5555 0101 banco"))
            .await?
            .status()
            .as_u16(),
        200
    );
    let sends = |api: &PlatformApi| -> Vec<serde_json::Value> {
        api.sent()
            .into_iter()
            .filter(|s| s.path == "/bot123:BOT/sendMessage")
            .map(|s| s.body)
            .collect()
    };
    let deadline = tokio::time::Instant::now() + T;
    while sends(&node.api).len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "{:#?}", node.api.sent());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let quote = &sends(&node.api)[1];
    assert_eq!(quote["chat_id"], 4242);
    assert!(
        quote["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Tu cotización"),
        "{quote}"
    );
    let data = quote["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(data, "confirm:q1");
    // The button press: a callback query, answered (spinner stops) and acted on once even if redelivered.
    let cb = serde_json::json!({ "callback_query": {
        "id": "cb-777", "chat_instance": "1", "data": data,
        "from": { "id": 4242, "is_bot": false, "first_name": "Ana" },
        "message": { "message_id": 3, "date": 1, "chat": { "id": 4242, "type": "private" } }
    }});
    assert_eq!(post(cb.clone()).await?.status().as_u16(), 200);
    assert_eq!(post(cb).await?.status().as_u16(), 200);
    let deadline = tokio::time::Instant::now() + T;
    while sends(&node.api).len() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "{:#?}", node.api.sent());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        sends(&node.api)[2]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("¡Listo!")
    );
    let answered: Vec<_> = node
        .api
        .sent()
        .into_iter()
        .filter(|s| s.path.ends_with("/answerCallbackQuery"))
        .collect();
    assert_eq!(answered.len(), 1);
    assert_eq!(answered[0].body["callback_query_id"], "cb-777");
    assert_eq!(
        node.engine.state.lock().expect("lock").confirms,
        vec!["telegram:cbq:cb-777".to_owned()]
    );
    Ok(())
}

#[tokio::test]
async fn recipient_notice_uses_the_approved_template() -> Result<()> {
    let node = crate::webhooks::start_with(sqlite().await?, true, |c| {
        c.whatsapp_recipient_template = Some("remesa_incoming".into());
    })
    .await?;
    say(&node, "t1", "hi").await?;
    replies_after(&node, 0, "welcome").await?;
    say(&node, "t2", "send 100 to Maria +502 5555 0101 cash pickup").await?;
    replies_after(&node, 1, "quote").await?;
    say(&node, "t3", "yes").await?;
    replies_after(&node, 2, "confirmed").await?;
    node.engine.transition("R1", "funds_locked");
    let deadline = tokio::time::Instant::now() + T;
    let template = loop {
        if let Some(s) = node
            .api
            .sent()
            .into_iter()
            .find(|s| s.body["to"] == MARIA && s.body["type"] == "template")
        {
            break s.body;
        }
        assert!(tokio::time::Instant::now() < deadline, "{:#?}", node.api.sent());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(template["template"]["name"], "remesa_incoming");
    assert_eq!(
        template["template"]["language"]["code"], "es",
        "a Guatemalan number gets Spanish"
    );
    let params: Vec<&str> = template["template"]["components"][0]["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["text"].as_str())
        .collect();
    assert_eq!(
        params,
        vec!["Ana", "775.00 GTQ", "Demo Pagos", "ABCD-2345-EFGH", "R1"]
    );
    Ok(())
}

/// Verifying identity in English: a question per field, a wrong answer asked again, "cancel" stops and keeps what
/// was given, "verify" goes on from there, and the last answer gives the outcome.
#[tokio::test]
async fn verification_asks_one_field_at_a_time_and_can_be_stopped() -> Result<()> {
    let node = start(sqlite().await?, true).await?;
    say(&node, "k0", "hi").await?;
    replies_after(&node, 0, "welcome").await?;
    for (id, text, want) in [
        // the intro and the first question come together
        ("k1", "verify", "Your full name"),
        ("k2", "Ana Gomez", "date of birth"),
        ("k3", "cancel", "Cancelled"),
        ("k4", "verify", "date of birth"),
        ("k5", "1990-04-25", "home address"),
        ("k6", "1 Main St, Springfield", "Which ID"),
        ("k7", "library card", "I could not read that"),
        ("k8", "passport", "number of that ID"),
        ("k9", "X1234567", "verified (level 1)"),
    ] {
        let before = node.api.whatsapp_to(ANA).len();
        say(&node, id, text).await?;
        let r = replies_after(&node, before, want).await?;
        let last = r.last().map(|m| m.0.clone()).unwrap_or_default();
        anyhow::ensure!(last.contains(want), "{text:?} → {r:?}, wanted {want:?}");
    }
    Ok(())
}
