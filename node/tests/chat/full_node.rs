//! The whole node, in process, on a real anvil with the committed contracts: a sender chats through
//! WhatsApp-format webhooks from "hola" to cash paid and settled, while a local HTTP server stands in for the
//! Graph API and records what the node sends (to the sender and to the recipient, with the pickup code).
//! The partner's side (accept, pay with the pickup code the recipient received) uses the engine directly, as the
//! partner API does. Sanctions screening is on (required), against the demo list in OFAC's formats: a send to a
//! listed name is held and goes on once the operator releases it; a sender without a name is asked for it.

use std::time::Duration;

use alloy::primitives::{Address, U256};
use anyhow::{Context, Result};
use remesa::domain::{PayoutMethod, PickupCode};
use remesa::engine::{NewPartner, PayoutProof, RateInput};
use remesa_testkit::{LocalDevnet, demo_settlement, mint, node_config, pid, rid, spawn_node};

use crate::harness::*;

const ANA: &str = "15551234567";
const MARIA: &str = "50255550101";
const LUIS: &str = "50255550199";

pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await? {
            return Ok(v);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hola_to_cash_paid_and_settled_on_anvil() -> Result<()> {
    // --- chain: anvil with the committed contracts and partner 1 registered (the wallet's devnet); the node ---
    let devnet = LocalDevnet::start(&[]).await?;
    let settlement = demo_settlement();
    let dir = tempfile::tempdir()?;
    let api = PlatformApi::start().await?;
    let mut config = node_config(&devnet, dir.path(), OPERATOR_TOKEN).await?;
    config.chat = chat_config(&api);
    config.limits = vec![
        remesa::config::LimitRule {
            tier: 0,
            country: "*".into(),
            per_tx_usd: Some("300".into()),
            per_day_usd: Some("1000".into()),
            per_30d_usd: None,
        },
        remesa::config::LimitRule {
            tier: 1,
            country: "*".into(),
            per_tx_usd: Some("1000".into()),
            per_day_usd: Some("3000".into()),
            per_30d_usd: None,
        },
    ];
    config.sanctions = remesa::config::SanctionsConfig {
        ofac_dir: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/demo/sanctions").into()),
        required: true,
        ..Default::default()
    };
    let node = spawn_node(config).await?;
    let (base, engine) = (node.base.clone(), node.state.engine.clone());
    let http = reqwest::Client::new();

    // --- a demo partner paying cash in Guatemala ---
    engine
        .add_partner(NewPartner {
            id: 1,
            name: "Demo Pagos".into(),
            countries: vec!["GT".into()],
            currencies: vec!["GTQ".into()],
            payout_methods: vec![PayoutMethod::CashPickup],
            public_key: "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=".into(),
            webhook_url: None,
            settlement_address: format!("{settlement:#x}"),
            signer_address: None,
        })
        .await?;
    engine
        .set_rates(
            pid(1),
            vec![RateInput {
                country: "GT".into(),
                currency: "GTQ".into(),
                payout_method: PayoutMethod::CashPickup,
                rate: "7.75".into(),
                fee_fixed: "1.99".into(),
                fee_bps: 50,
                send_min: "1".into(),
                send_max: "2500".into(),
                valid_for_s: 86_400,
            }],
        )
        .await?;
    engine.set_mid_market_rate("GTQ", "7.80").await?;

    // --- "hola": the sender is registered and told their wallet address ---
    let say = |id: &'static str, text: &'static str| {
        let (http, base) = (http.clone(), base.clone());
        async move { post_whatsapp(&http, &base, &wa_text(ANA, id, text), Some(APP_SECRET)).await }
    };
    assert_eq!(say("wamid.h1", "hola").await?, 200);
    let welcome = api
        .wait_whatsapp(ANA, "welcome", Duration::from_secs(20), |m| !m.is_empty())
        .await?;
    let wallet: Address = welcome[0]
        .0
        .split_whitespace()
        .find(|w| w.starts_with("0x") && w.len() == 42)
        .context("wallet address in the welcome")?
        .parse()?;
    // Fund the custodial wallet with 500 TUSD; the indexer books it.
    mint(&devnet, wallet, U256::from(500_000_000u64)).await?;
    let address = format!("{wallet:#x}");
    eventually("the deposit to be indexed", Duration::from_secs(30), || {
        let engine = engine.clone();
        let address = address.clone();
        async move { Ok((engine.balance(&address).await?.balance_base_units == "500000000").then_some(())) }
    })
    .await?;
    assert_eq!(say("wamid.h2", "saldo").await?, 200);
    api.wait_whatsapp(ANA, "balance", Duration::from_secs(20), |m| {
        m.iter().any(|x| x.0.contains("500.00 USD"))
    })
    .await?;

    // --- over a sending limit (tier 0: 300 USD per transfer here): refused at the quote, with what is allowed ---
    assert_eq!(
        say("wamid.h2b", "envía 350 a María López +502 5555 0101 en efectivo").await?,
        200
    );
    api.wait_whatsapp(ANA, "limit", Duration::from_secs(20), |m| {
        m.iter().any(|x| {
            x.0.contains("el límite es 300.00 USD por envío")
                && x.0.contains("Envía 300.00 USD o menos")
                && x.0.contains("escribe *verificar*")
        })
    })
    .await?;

    // --- verifying in the chat (KYC tier 1): one question at a time, a bad answer asked again, tier 1 at once ---
    let steps: [(&'static str, &'static str, &'static str); 8] = [
        ("wamid.v1", "verificar", "Tu nombre completo"),
        ("wamid.v2", "Ana María Gómez Pérez", "Tu fecha de nacimiento"),
        ("wamid.v3", "31/02/1990", "No pude leer eso"),
        ("wamid.v4", "25/04/1990", "Tu dirección"),
        (
            "wamid.v5",
            "4a Calle 5-20, Zona 1, Guatemala",
            "Qué identificación",
        ),
        ("wamid.v6", "2", "número de esa identificación"),
        ("wamid.v7", "2456 78901 0101", "verificada (nivel 1)"),
        (
            "wamid.v8",
            "envía 350 a María López +502 5555 0101 en efectivo",
            "Total a pagar",
        ),
    ];
    for (id, text, answer) in steps {
        assert_eq!(say(id, text).await?, 200);
        api.wait_whatsapp(ANA, answer, Duration::from_secs(20), |m| {
            m.iter().any(|x| x.0.contains(answer))
        })
        .await?;
    }
    let ana = engine.find_user_by_chat("whatsapp", ANA).await?.context("Ana")?;
    let customer = engine.customer(&ana.id).await?;
    assert_eq!(customer.tier, 1);
    // Tier 2 is an operator's decision on a document checked at a branch; the customer hears it in the chat.
    let kyc = http
        .post(format!("{base}/v1/admin/customers/{}/kyc", ana.id))
        .bearer_auth(OPERATOR_TOKEN)
        .json(&serde_json::json!({"tier": 2, "fields": {"document_ref": "branch-7/scan-0042"}}))
        .send()
        .await?;
    assert_eq!(kyc.status(), 200);
    let queue: serde_json::Value = http
        .get(format!("{base}/v1/admin/customers/review"))
        .bearer_auth(OPERATOR_TOKEN)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(queue[0]["user_id"], ana.id.as_str(), "{queue}");
    let decided = http
        .post(format!("{base}/v1/admin/customers/{}/decision", ana.id))
        .bearer_auth(OPERATOR_TOKEN)
        .json(&serde_json::json!({"action": "approve", "reviewer": "luis@ops", "reason": "ID checked at branch 7"}))
        .send()
        .await?;
    assert_eq!(decided.status(), 200);
    api.wait_whatsapp(ANA, "tier 2 told", Duration::from_secs(20), |m| {
        m.iter().any(|x| x.0.contains("verificada (nivel 2)"))
    })
    .await?;

    // --- the send request and the firm quote ---
    assert_eq!(
        say("wamid.h3", "envía 100 a María López +502 5555 0101 en efectivo").await?,
        200
    );
    let msgs = api
        .wait_whatsapp(ANA, "quote", Duration::from_secs(20), |m| {
            m.iter().any(|x| {
                !x.1.is_empty() && x.1[0].starts_with("confirm:") && x.0.contains("Envías: 100.00 USD")
            })
        })
        .await?;
    let (quote_text, buttons) = msgs
        .iter()
        .rev()
        .find(|x| !x.1.is_empty() && x.1[0].starts_with("confirm:"))
        .context("quote")?
        .clone();
    for needle in [
        "Envías: 100.00 USD",
        "Comisión: 2.49 USD",
        "Impuestos: 0.00 USD",
        "Total a pagar: *102.49 USD*",
        "1 USD = 7.75 GTQ",
        "recibe: *775.00 GTQ*",
        "Demo Pagos",
        "Costo total",
    ] {
        assert!(quote_text.contains(needle), "{needle:?} not in {quote_text}");
    }

    // --- confirm (delivered twice): one remittance, locked on chain ---
    let confirm = wa_button(ANA, "wamid.h4", &buttons[0], "Confirmar");
    for _ in 0..2 {
        assert_eq!(
            post_whatsapp(&http, &base, &confirm, Some(APP_SECRET)).await?,
            200
        );
    }
    let receipt = api
        .wait_whatsapp(ANA, "confirmation", Duration::from_secs(20), |m| {
            m.iter().any(|x| x.0.contains("¡Listo!"))
        })
        .await?;
    let receipt = &receipt
        .iter()
        .find(|x| x.0.contains("¡Listo!"))
        .context("receipt")?
        .0;
    for needle in [
        "*Recibo*",
        "recibe 775.00 GTQ",
        "Puedes cancelar con reembolso total hasta",
        "180 días",
        "90 días",
    ] {
        assert!(
            receipt.contains(needle),
            "{needle:?} not in the receipt: {receipt}"
        );
    }

    // The recipient is told on WhatsApp, with the pickup code, once the funds are locked.
    let notice = api
        .wait_whatsapp(MARIA, "recipient notice", Duration::from_secs(60), |m| {
            m.iter().any(|x| x.0.contains("Demo Pagos"))
        })
        .await?;
    let text = &notice[0].0;
    assert!(text.contains("775.00 GTQ"), "{text}");
    let code_word = text
        .split_whitespace()
        .find(|w| w.starts_with('*') && w.len() >= 14)
        .context("pickup code")?;
    let code = PickupCode::parse(code_word.trim_matches('*'))?;
    api.wait_whatsapp(ANA, "locked", Duration::from_secs(20), |m| {
        m.iter().any(|x| x.0.contains("asegurado"))
    })
    .await?;

    // Delivered, and stored nowhere: no file of the node (the SQLite database, its WAL, the keystore) holds the
    // code, grouped or not, while it is still a secret (until the partner completes the payout).
    assert_files_do_not_hold(dir.path(), &[code.expose(), &code.display_grouped()])?;

    // Support re-sends a lost code to the recipient's chat (never in the response), operator token required.
    let r = engine
        .find_by_pickup_code(1, &code)
        .await?
        .context("remittance by pickup code")?;
    let resend = format!("{base}/v1/admin/remittances/{}/resend-pickup-code", r.id);
    assert_eq!(http.post(&resend).send().await?.status(), 401);
    let answer = http.post(&resend).bearer_auth(OPERATOR_TOKEN).send().await?;
    assert_eq!(answer.status(), 202);
    assert!(!answer.text().await?.contains(code.expose()));
    api.wait_whatsapp(MARIA, "the code again", Duration::from_secs(20), |m| {
        m.iter().filter(|x| x.0.contains(&code.display_grouped())).count() == 2
    })
    .await?;
    assert_files_do_not_hold(dir.path(), &[code.expose(), &code.display_grouped()])?;

    // --- the partner pays the recipient against the code from the chat message ---
    engine.payout_accepted(&rid(&r.id), pid(1)).await?;
    engine
        .payout_paid(
            &rid(&r.id),
            pid(1),
            PayoutProof::PickupCode {
                code: code.expose().to_owned(),
            },
        )
        .await?;
    api.wait_whatsapp(MARIA, "paid (recipient)", Duration::from_secs(20), |m| {
        m.iter().any(|x| x.0.contains("ya recibiste"))
    })
    .await?;
    api.wait_whatsapp(ANA, "paid (sender)", Duration::from_secs(20), |m| {
        m.iter().any(|x| x.0.contains("ya recibió el dinero"))
    })
    .await?;

    // --- released to the partner on chain: settled ---
    api.wait_whatsapp(ANA, "settled", Duration::from_secs(60), |m| {
        m.iter().any(|x| x.0.contains("liquidado en cadena"))
    })
    .await?;
    assert_eq!(
        devnet.balance_of(settlement).await?,
        U256::from(102_490_000u64),
        "the partner got send amount + fee"
    );
    let list = engine
        .list_remittances(&remesa::engine::RemittanceFilter::default(), None, 10)
        .await?;
    assert_eq!(
        list.items.len(),
        1,
        "one remittance for two deliveries of the confirmation"
    );
    assert_eq!(list.items[0].state.as_str(), "settled");
    // Paid and settled: there is no code to collect, so none is re-sent.
    assert_eq!(
        http.post(&resend)
            .bearer_auth(OPERATOR_TOKEN)
            .send()
            .await?
            .status(),
        409
    );

    // --- sanctions screening: a listed recipient holds the send off chain, in neutral words, until released ---
    assert_eq!(
        say(
            "wamid.s1",
            "envía 20 a Joaquin Guzman Loera +502 5555 0101 en efectivo"
        )
        .await?,
        200
    );
    let is_quote = |x: &(String, Vec<String>)| !x.1.is_empty() && x.1[0].starts_with("confirm:");
    let msgs = api
        .wait_whatsapp(ANA, "second quote", Duration::from_secs(20), |m| {
            m.iter().filter(|x| is_quote(x)).count() == 3
        })
        .await?;
    let buttons = msgs
        .iter()
        .rev()
        .find(|x| is_quote(x))
        .context("quote")?
        .1
        .clone();
    let confirm = wa_button(ANA, "wamid.s2", &buttons[0], "Confirmar");
    assert_eq!(
        post_whatsapp(&http, &base, &confirm, Some(APP_SECRET)).await?,
        200
    );
    let review = api
        .wait_whatsapp(ANA, "under review", Duration::from_secs(20), |m| {
            m.iter().any(|x| x.0.contains("revisión de rutina"))
        })
        .await?;
    let told = &review
        .iter()
        .find(|x| x.0.contains("revisión de rutina"))
        .context("review")?
        .0;
    for never in ["OFAC", "sancion", "Guzm", "lista"] {
        assert!(!told.contains(never), "{never:?} told to the sender: {told}");
    }
    let queue: serde_json::Value = http
        .get(format!("{base}/v1/admin/compliance/holds"))
        .bearer_auth(OPERATOR_TOKEN)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(queue[0]["hits"][0]["entry_id"], "7001", "{queue}");
    let held_id = queue[0]["remittance"]["id"].as_str().context("id")?.to_owned();
    let released = http
        .post(format!("{base}/v1/admin/remittances/{held_id}/hold/release"))
        .bearer_auth(OPERATOR_TOKEN)
        .json(&serde_json::json!({"reviewer": "ana@ops", "reason": "other person: DOB 1992"}))
        .send()
        .await?;
    assert_eq!(released.status(), 200);
    api.wait_whatsapp(ANA, "review done", Duration::from_secs(20), |m| {
        m.iter().any(|x| x.0.contains("Terminó la revisión"))
    })
    .await?;
    api.wait_whatsapp(ANA, "the released send locked", Duration::from_secs(60), |m| {
        m.iter().filter(|x| x.0.contains("asegurado")).count() == 2
    })
    .await?;

    // --- within 30 minutes the sender cancels the locked transfer for a full refund, and reports a problem ---
    assert_eq!(say("wamid.c1", "cancelar").await?, 200);
    api.wait_whatsapp(ANA, "cancelled for a refund", Duration::from_secs(20), |m| {
        m.iter()
            .any(|x| x.0.contains("Todo el monto, comisiones incluidas"))
    })
    .await?;
    let held = engine.remittance(&rid(&held_id)).await?.context("held")?;
    assert_eq!(held.state.as_str(), "refund_pending");
    let reference = remesa_testkit::short_reference(&held_id);
    let report = format!("tengo un problema con el envío {reference}, lo cancelé");
    assert_eq!(
        post_whatsapp(&http, &base, &wa_text(ANA, "wamid.p1", &report), Some(APP_SECRET)).await?,
        200
    );
    api.wait_whatsapp(ANA, "case opened", Duration::from_secs(20), |m| {
        m.iter().any(|x| x.0.contains("Abrí el caso"))
    })
    .await?;
    let cases: serde_json::Value = http
        .get(format!("{base}/v1/admin/cases"))
        .bearer_auth(OPERATOR_TOKEN)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(cases[0]["remittance_id"], held_id.as_str(), "{cases}");

    // --- a sender whose profile has no name is asked for it before the send is screened ---
    let luis = |id: &'static str, text: &'static str| {
        let (http, base) = (http.clone(), base.clone());
        async move { post_whatsapp(&http, &base, &wa_text_unnamed(LUIS, id, text), Some(APP_SECRET)).await }
    };
    assert_eq!(luis("wamid.n0", "hola").await?, 200);
    let welcome = api
        .wait_whatsapp(LUIS, "welcome", Duration::from_secs(20), |m| !m.is_empty())
        .await?;
    let luis_wallet: Address = welcome[0]
        .0
        .split_whitespace()
        .find(|w| w.starts_with("0x") && w.len() == 42)
        .context("wallet address in the welcome")?
        .parse()?;
    mint(&devnet, luis_wallet, U256::from(50_000_000u64)).await?;
    let luis_address = format!("{luis_wallet:#x}");
    eventually("Luis's deposit to be indexed", Duration::from_secs(30), || {
        let engine = engine.clone();
        let address = luis_address.clone();
        async move { Ok((engine.balance(&address).await?.balance_base_units == "50000000").then_some(())) }
    })
    .await?;
    assert_eq!(
        luis("wamid.n1", "envía 10 a María López +502 5555 0101 en efectivo").await?,
        200
    );
    let msgs = api
        .wait_whatsapp(LUIS, "quote", Duration::from_secs(20), |m| {
            m.iter().any(&is_quote)
        })
        .await?;
    let buttons = msgs
        .iter()
        .rev()
        .find(|x| is_quote(x))
        .context("quote")?
        .1
        .clone();
    let confirm = wa_button(LUIS, "wamid.n2", &buttons[0], "Confirmar");
    assert_eq!(
        post_whatsapp(&http, &base, &confirm, Some(APP_SECRET)).await?,
        200
    );
    api.wait_whatsapp(LUIS, "name asked", Duration::from_secs(20), |m| {
        m.iter().any(|x| x.0.contains("tu nombre completo"))
    })
    .await?;
    assert_eq!(luis("wamid.n3", "Luis Alberto Pérez").await?, 200);
    api.wait_whatsapp(LUIS, "name saved", Duration::from_secs(20), |m| {
        m.iter().any(|x| x.0.contains("Gracias, Luis Alberto Pérez"))
    })
    .await?;
    let user = engine
        .find_user_by_chat("whatsapp", LUIS)
        .await?
        .context("Luis is a user")?;
    assert_eq!(user.display_name.as_deref(), Some("Luis Alberto Pérez"));

    // Every outbound message was accepted by the Graph API stand-in, with the bearer token.
    assert!(
        api.sent()
            .iter()
            .all(|s| s.authorization.as_deref() == Some("Bearer graph-token"))
    );
    // /readyz names the chain's state: the indexer close behind the head; with the RPC gone, still ready (work is
    // accepted and kept) but the chain is named unreachable.
    let ready: serde_json::Value = http.get(format!("{base}/readyz")).send().await?.json().await?;
    assert_eq!(ready["chain"]["state"], "ok", "{ready}");
    assert!(
        ready["chain"]["lag_blocks"].as_u64().is_some_and(|lag| lag <= 5),
        "{ready}"
    );
    drop(devnet);
    let answer = http.get(format!("{base}/readyz")).send().await?;
    assert_eq!(answer.status(), 200);
    let ready: serde_json::Value = answer.json().await?;
    assert_eq!(ready["chain"]["state"], "unreachable", "{ready}");
    assert!(ready["chain"]["indexed_block"].as_u64().is_some(), "{ready}");
    node.stop().await;
    Ok(())
}

/// Fails when any file under `dir` contains one of `needles`.
fn assert_files_do_not_hold(dir: &std::path::Path, needles: &[&str]) -> Result<()> {
    let mut stack = vec![dir.to_path_buf()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let bytes = std::fs::read(&path)?;
            files += 1;
            for n in needles {
                anyhow::ensure!(
                    !bytes.windows(n.len()).any(|w| w == n.as_bytes()),
                    "{} holds a pickup code",
                    path.display()
                );
            }
        }
    }
    anyhow::ensure!(files > 0, "no files under {}", dir.display());
    Ok(())
}
