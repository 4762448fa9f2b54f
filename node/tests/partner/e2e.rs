//! End to end on a real anvil with the real contracts: a custodial sender funded on chain, quotes routed to the
//! partner, remittances locked by the node's relayer, the partner accepting and completing them through the signed
//! API, the releases batched into one on-chain settlement to the partner's settlement address, and every webhook
//! received by a local server that verifies the node's signatures.

use std::time::Duration;

use alloy::primitives::U256;
use alloy::providers::ext::AnvilApi as _;
use axum::Router;
use remesa::app;
use remesa::config::Config;
use remesa::domain::{IdempotencyKey, PayoutMethod};
use remesa::engine::{CreateRemittance, Custody, NewUser, QuoteRequest, Recipient, SenderRef};
use remesa::partner::client::PartnerClient;
use remesa::partner::config::PartnerConfig;
use remesa::partner::wiring::{PartnerAddArgs, node_signer};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::auth::partner_signer;
use crate::harness::{self, Chain};
use crate::webhooks::start_receiver;

async fn eventually<F, Fut>(what: &str, secs: u64, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn e2e(database_url: String) {
    // As `app::build` does: the metrics recorder before anything counts.
    let _ = remesa::http::metrics_handle();
    let chain = Chain::start().await.expect("anvil and the contracts");
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_path_buf();
    let deployment = data_dir.join("deployment.json");
    std::fs::write(
        &deployment,
        json!({"chain_id": chain.chain_id, "rpc_url": chain.url, "token": format!("{:#x}", chain.token),
            "escrow": format!("{:#x}", chain.escrow), "deployer": format!("{:#x}", chain.deployer.address()),
            "deploy_block": chain.deploy_block})
        .to_string(),
    )
    .unwrap();
    let pass = SecretString::from("e2e-passphrase");
    let mut config = Config {
        http_addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.clone(),
        database_url: Some(database_url),
        rpc_url: Some(chain.url.clone()),
        deployment: Some(deployment),
        operator_token: Some(SecretString::from("op-token")),
        keystore_passphrase: Some(pass.clone()),
        escrow_owner_key: Some(SecretString::from(hex::encode(chain.deployer.to_bytes()))),
        chain: harness::fast_config(),
        partner: PartnerConfig {
            partner_webhook_backoff_base_ms: 50,
            partner_webhook_backoff_max_ms: 500,
            partner_webhook_poll_interval_ms: 50,
            ..PartnerConfig::default()
        },
        ..Config::default()
    };
    // Releases wait for company: both completions below land in one batch.
    config.chain.batch_delay_ms_max = 3_000;
    let custody = Custody::create_keystore(&app::keystore_path(&config), &pass).unwrap();
    chain
        .provider
        .anvil_set_balance(custody.relayer().unwrap().address(), U256::from(10u128.pow(20)))
        .await
        .unwrap();

    let state = app::state(config).await.expect("node state");
    // The node core serves the partner routes and runs the partner workers itself once it has wired them
    // (`app::router`, `app::spawn_workers`); until then this test adds them.
    let wired = serde_json::to_value(app::openapi()).unwrap()["paths"]
        .get("/v1/partner/payouts")
        .is_some();
    let mut workers = app::spawn_workers(&state).unwrap();
    let mut router: Router = app::router(state.clone());
    if !wired {
        workers.extend(remesa::partner::spawn_workers(&state).unwrap());
        router = router.merge(remesa::partner::router(state.clone()).with_state(state.clone()));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    // The partner's webhook receiver verifies with the node's published key.
    let node_key = node_signer(&state).unwrap().verifying_key();
    let rx = start_receiver(node_key, 0).await;
    let partner_key = partner_signer("1", 0xA1);
    let added = remesa::partner::add_partner(
        &state,
        PartnerAddArgs {
            id: 1,
            name: "Banco Demo".into(),
            countries: vec!["GT".into()],
            currencies: vec!["GTQ".into()],
            methods: vec!["cash_pickup".into(), "bank_deposit".into()],
            public_key: {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.encode(partner_key.verifying_key().as_bytes())
            },
            webhook_url: Some(format!("http://{}/hooks/banco-demo", rx.addr)),
            settlement_address: format!("{:#x}", chain.settlement),
            signer_address: None,
        },
    )
    .await
    .unwrap();
    assert!(added.registered_on_chain, "{:?}", added.chain_note);
    let partner = PartnerClient::new(&base, partner_key).unwrap();
    let key: Value = partner.get("/v1/partner/webhook-key").await.unwrap();
    assert_eq!(key["keyid"], added.node_webhook_keyid);

    // Rates through the signed API; the mid-market rate by the operator.
    let rates = json!({"rates": [
        {"country": "GT", "currency": "GTQ", "payout_method": "cash_pickup", "rate": "7.60", "fee_fixed": "1.50",
         "fee_bps": 50, "send_min": "1", "send_max": "2500", "valid_for_s": 3600},
        {"country": "GT", "currency": "GTQ", "payout_method": "bank_deposit", "rate": "7.62", "fee_fixed": "1.00",
         "fee_bps": 0, "send_min": "1", "send_max": "2500", "valid_for_s": 3600}]});
    let r: Value = partner.put("/v1/partner/rates", &rates).await.unwrap();
    assert_eq!(r["rates"].as_array().unwrap().len(), 2);
    state.engine.set_mid_market_rate("GTQ", "7.70").await.unwrap();

    // A custodial sender funded on chain (the indexer notices the transfer).
    let (user, _) = state
        .engine
        .register_user(NewUser {
            channel: "api".into(),
            external_id: "alice".into(),
            phone: Some(remesa_testkit::phone("+14155552671")),
            ..NewUser::default()
        })
        .await
        .unwrap();
    let sender: alloy::primitives::Address = user.address.parse().unwrap();
    chain.mint(sender, U256::from(1_000_000_000u64)).await.unwrap();
    eventually("the funding to be indexed", 30, || async {
        state
            .engine
            .balance(&user.address)
            .await
            .map(|b| b.available_base_units != "0")
            .unwrap_or(false)
    })
    .await;

    // Two remittances from quotes: cash and bank.
    let mut ids = Vec::new();
    for (method, n) in [(PayoutMethod::CashPickup, 1), (PayoutMethod::BankDeposit, 2)] {
        let q = state
            .engine
            .quote(QuoteRequest {
                send_amount: "100".into(),
                country: "GT".into(),
                currency: Some("GTQ".into()),
                payout_method: method,
                ttl_s: None,
                recipient_phone: None,
            })
            .await
            .unwrap();
        assert_eq!(q.partner_id, 1);
        let (r, _) = state
            .engine
            .create_remittance(
                CreateRemittance {
                    quote_id: q.id,
                    sender: SenderRef::User {
                        user_id: user.id.clone(),
                    },
                    recipient: Recipient {
                        phone: remesa_testkit::phone("+50255550101"),
                        name: "Maria Lopez".into(),
                        account: (method == PayoutMethod::BankDeposit).then(|| "GT00BANK0001".into()),
                    },
                },
                &IdempotencyKey::parse(&format!("e2e-{n}")).unwrap(),
            )
            .await
            .unwrap();
        ids.push(r.id);
    }

    // Locked on chain → offered to the partner.
    eventually("both payouts to be assigned", 60, || async {
        let page: Value = partner
            .get("/v1/partner/payouts?status=payout_assigned")
            .await
            .unwrap_or(Value::Null);
        page["items"].as_array().is_some_and(|a| a.len() == 2)
    })
    .await;

    // The partner pays: cash with the recipient's code (looked up at the counter), bank with a reference.
    // The recipient learns the code from their chat message (the node's terminal chat here) and brings it.
    let code = remesa_testkit::RecipientChats::new(&base, "op-token")
        .code("+50255550101", &ids[0], Duration::from_secs(30))
        .await
        .unwrap();
    let code = remesa::domain::PickupCode::parse(&code).unwrap();
    let found: Value = partner
        .post(
            "/v1/partner/payouts/lookup",
            &json!({"pickup_code": code.display_grouped()}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(found["id"], ids[0]);
    // The deprecated look-up with the code in the path still answers the same.
    let by_path: Value = partner
        .get(&format!(
            "/v1/partner/payouts/by-pickup-code/{}",
            code.display_grouped()
        ))
        .await
        .unwrap();
    assert_eq!(by_path["id"], ids[0]);
    // A wrong or malformed code finds nothing.
    for wrong in ["ZZZZ-ZZZZ-ZZZZ", "not a code"] {
        let e = partner
            .post::<Value, _>("/v1/partner/payouts/lookup", &json!({"pickup_code": wrong}), None)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("404"), "{wrong}: {e}");
    }
    for (id, proof) in [
        (&ids[0], json!({"kind": "pickup_code", "code": code.expose()})),
        (&ids[1], json!({"kind": "reference", "reference": "BANK-7731"})),
    ] {
        let v: Value = partner
            .post(
                &format!("/v1/partner/payouts/{id}/accept"),
                &json!({}),
                Some(&format!("a-{id}")),
            )
            .await
            .unwrap();
        assert_eq!(v["status"], "payout_accepted");
        let v: Value = partner
            .post(
                &format!("/v1/partner/payouts/{id}/complete"),
                &proof,
                Some(&format!("c-{id}")),
            )
            .await
            .unwrap();
        assert_eq!(v["status"], "paid");
    }

    // Released in one batch, settled to the partner's address in one token transfer.
    eventually("both payouts to be settled", 90, || async {
        let mut all = true;
        for id in &ids {
            let p: Value = partner
                .get(&format!("/v1/partner/payouts/{id}"))
                .await
                .unwrap_or(Value::Null);
            all &= p["status"] == "settled";
        }
        all
    })
    .await;
    let s: Value = partner.get("/v1/partner/settlements").await.unwrap();
    let items = s["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "one settlement for the batch: {s}");
    assert_eq!(items[0]["release_count"], 2);
    let settled: u64 = items[0]["amount_base_units"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        chain.balance(chain.settlement).await.unwrap(),
        U256::from(settled)
    );
    let p0: Value = partner
        .get(&format!("/v1/partner/payouts/{}", ids[0]))
        .await
        .unwrap();
    let p1: Value = partner
        .get(&format!("/v1/partner/payouts/{}", ids[1]))
        .await
        .unwrap();
    assert_eq!(p0["release_tx_hash"], p1["release_tx_hash"]);
    assert_eq!(p0["release_tx_hash"], items[0]["tx_hash"]);

    // Every webhook arrived, signed by the node, and the feed replays the same.
    let want = [
        "payout.created",
        "payout.accepted",
        "payout.paid",
        "payout.settled",
    ];
    eventually("all webhooks", 30, || async {
        rx.received.lock().await.len() >= 8
    })
    .await;
    assert!(
        rx.rejected.lock().await.is_empty(),
        "{:?}",
        rx.rejected.lock().await
    );
    let got = rx.received.lock().await.clone();
    for id in &ids {
        let mut types: Vec<&str> = got
            .iter()
            .filter(|e| e["payout_id"] == id.as_str())
            .map(|e| e["type"].as_str().unwrap())
            .collect();
        types.sort_by_key(|t| want.iter().position(|w| w == t));
        assert_eq!(types, want, "{id}");
    }
    let feed: Value = partner.get("/v1/partner/events?after=0&limit=100").await.unwrap();
    assert_eq!(feed["items"].as_array().unwrap().len(), 8);
    let r = partner
        .send_raw(Method::GET, "/v1/partner/events", None, None)
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The operator sees the deliveries (none parked) and the counters in /metrics.
    let http = reqwest::Client::new();
    let d: Value = http
        .get(format!(
            "{base}/v1/admin/partner/webhooks?status=delivered&limit=100"
        ))
        .bearer_auth("op-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["items"].as_array().unwrap().len(), 8);
    assert_eq!(d["failed_total"], 0);
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("remesa_partner_webhook_deliveries_total"),
        "{metrics}"
    );
    assert!(metrics.contains("remesa_partner_webhook_failed"));
    let doc: Value = http
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    if wired {
        assert!(doc["paths"].get("/v1/partner/payouts/{id}/complete").is_some());
    }

    // Cooperative cancel (escrow v2): the partner declines a third payout with its signer's EIP-712 Decline, and
    // the sender is refunded at once instead of at expiry. A signature by anyone else is refused.
    let me: Value = partner.get("/v1/partner/me").await.unwrap();
    assert_eq!(
        me["signer_address"],
        format!("{:#x}", chain.settlement),
        "the settlement address signs"
    );
    let escrow: alloy::primitives::Address = me["escrow_address"].as_str().unwrap().parse().unwrap();
    let chain_id = me["chain_id"].as_u64().unwrap();
    let before = state.engine.balance(&user.address).await.unwrap();
    let r3 = cash_payout(&state, &user.id, "40", "e2e-3").await;
    let path = format!("/v1/partner/payouts/{}", r3.id);
    eventually("the third payout to be assigned", 60, || async {
        let p: Value = partner.get(&path).await.unwrap_or(Value::Null);
        p["status"] == "payout_assigned"
    })
    .await;
    let id3: alloy::primitives::B256 = r3.id.parse().unwrap();
    let stranger = alloy::signers::local::PrivateKeySigner::random();
    let forged = remesa_wallet::terms::sign_decline(&stranger, chain_id, escrow, id3).unwrap();
    let refused = partner
        .post::<Value, _>(
            &format!("{path}/fail"),
            &json!({"reason": "closed", "decline_signature": forged.to_hex()}),
            Some("f-forged"),
        )
        .await
        .expect_err("a stranger's decline");
    assert_eq!(refused.status().map(|s| s.as_u16()), Some(422), "{refused}");
    let signer = remesa_wallet::devnet::anvil_dev_signer(9);
    assert_eq!(signer.address(), chain.settlement);
    let decline = remesa_wallet::terms::sign_decline(&signer, chain_id, escrow, id3).unwrap();
    let v: Value = partner
        .post(
            &format!("{path}/fail"),
            &json!({"reason": "closed", "decline_signature": decline.to_hex()}),
            Some("f-declined"),
        )
        .await
        .unwrap();
    assert_eq!(v["status"], "refund_pending");
    eventually("the declined payout to be refunded before expiry", 60, || async {
        let p: Value = partner.get(&path).await.unwrap_or(Value::Null);
        p["status"] == "refunded"
    })
    .await;
    let after = state.engine.balance(&user.address).await.unwrap();
    assert_eq!(
        after.balance_base_units, before.balance_base_units,
        "the whole total came back"
    );
    assert_eq!(after.available_base_units, after.balance_base_units);

    // The sender cancels a locked payout within the cancellation window (Regulation E's 30 minutes): the partner is
    // told `payout.cancelled`, cannot pay it any more, and its decline refunds the sender at once.
    let r4 = cash_payout(&state, &user.id, "30", "e2e-4").await;
    let path = format!("/v1/partner/payouts/{}", r4.id);
    eventually("the fourth payout to be assigned", 60, || async {
        let p: Value = partner.get(&path).await.unwrap_or(Value::Null);
        p["status"] == "payout_assigned"
    })
    .await;
    let cancelled = state
        .engine
        .cancel(&remesa_testkit::rid(&r4.id), Some(&user.id))
        .await
        .unwrap();
    assert_eq!(cancelled.state.as_str(), "refund_pending");
    eventually("the partner to be told payout.cancelled", 30, || async {
        let feed: Value = partner
            .get("/v1/partner/events?limit=200")
            .await
            .unwrap_or(Value::Null);
        feed["items"].as_array().is_some_and(|items| {
            items
                .iter()
                .any(|e| e["type"] == "payout.cancelled" && e["payout_id"] == r4.id.as_str())
        })
    })
    .await;
    let late = partner
        .post::<Value, _>(&format!("{path}/accept"), &json!({}), Some("a-late"))
        .await;
    assert!(late.is_err(), "a cancelled payout cannot be taken: {late:?}");
    let id4: alloy::primitives::B256 = r4.id.parse().unwrap();
    let decline = remesa_wallet::terms::sign_decline(&signer, chain_id, escrow, id4).unwrap();
    partner
        .post::<Value, _>(
            &format!("{path}/fail"),
            &json!({"reason": "sender cancelled", "decline_signature": decline.to_hex()}),
            Some("f-cancelled"),
        )
        .await
        .unwrap();
    eventually(
        "the cancelled payout to be refunded before expiry",
        60,
        || async {
            let p: Value = partner.get(&path).await.unwrap_or(Value::Null);
            p["status"] == "refunded"
        },
    )
    .await;
    let back = state.engine.balance(&user.address).await.unwrap();
    assert_eq!(
        back.balance_base_units, after.balance_base_units,
        "the whole total came back"
    );

    state.shutdown.cancel();
    for w in workers {
        let _ = tokio::time::timeout(Duration::from_secs(10), w).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quote_to_settlement_on_anvil_postgres() {
    if let Some(url) = remesa_testkit::postgres_url_or_skip().await {
        e2e(url).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quote_to_settlement_on_anvil_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    e2e(format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("e2e.sqlite").display()
    ))
    .await;
}

/// A cash pickup of `amount` USD from `user_id` to Ana Perez in Guatemala, created from a fresh quote.
async fn cash_payout(
    state: &app::AppState,
    user_id: &str,
    amount: &str,
    key: &str,
) -> remesa::engine::Remittance {
    let q = state
        .engine
        .quote(QuoteRequest {
            send_amount: amount.into(),
            country: "GT".into(),
            currency: Some("GTQ".into()),
            payout_method: PayoutMethod::CashPickup,
            ttl_s: None,
            recipient_phone: None,
        })
        .await
        .unwrap();
    state
        .engine
        .create_remittance(
            CreateRemittance {
                quote_id: q.id,
                sender: SenderRef::User {
                    user_id: user_id.to_owned(),
                },
                recipient: Recipient {
                    phone: remesa_testkit::phone("+50255550102"),
                    name: "Ana Perez".into(),
                    account: None,
                },
            },
            &IdempotencyKey::parse(key).unwrap(),
        )
        .await
        .unwrap()
        .0
}
