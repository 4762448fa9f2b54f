//! The partner API over real HTTP on a real engine and database: rates and routing, payouts seen only by their
//! partner, pickup-code lookup, accept/complete/fail with Idempotency-Key, the event feed and signed webhooks.
//! Funds are "locked" by handing the engine the `Deposited` event the indexer would deliver (the full on-chain
//! path is the end-to-end test's).

use std::str::FromStr;
use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use remesa::chain::{ChainEventSink, Deposited, EventMeta};
use remesa::domain::{IdempotencyKey, PayoutMethod};
use remesa::engine::{
    ChainInfo, CreateRemittance, Engine, EngineConfig, NewPartner, QuoteRequest, Recipient, SenderRef,
    TokenDomain,
};
use remesa::faults::Faults;
use remesa::partner::client::PartnerClient;
use remesa::partner::config::PartnerConfig;
use remesa::partner::feed::FeedFollower;
use remesa::partner::store::PartnerDb;
use remesa::partner::webhook::{WebhookWorker, load_or_create_node_key};
use remesa::partner::{PartnerApiDoc, PartnerState, partner_router};
use remesa::store::instances::Instance;
use remesa_testkit::{TestDb, rid};
use reqwest::Method;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi as _;

use crate::auth::partner_signer;
use crate::webhooks::start_receiver;

pub struct Node {
    pub engine: Engine,
    pub base: String,
    pub cancel: CancellationToken,
    pub pdb: PartnerDb,
    /// What the router serves (tests start another incarnation from it).
    pub state: PartnerState,
    _dir: tempfile::TempDir,
}

pub fn chain_info() -> ChainInfo {
    let token = Address::from_str("0x5fbdb2315678afecb367f032d93f642f64180aa3").unwrap();
    ChainInfo {
        chain_id: 31337,
        escrow: Address::from_str("0xe7f1725e7734ce288f8367e1bb143e90bb3f0512").unwrap(),
        token,
        token_decimals: 6,
        domain: TokenDomain {
            name: "Test Dollar".into(),
            version: "1".into(),
            chain_id: 31337,
            token,
        },
        lock_min_s: 3600,
    }
}

/// Engine + partner router on port 0 + the feed follower and webhook worker.
pub async fn start_node(t: &TestDb, webhook_url: Option<String>) -> Node {
    start_node_as(t, webhook_url, Instance::new(), Faults::none()).await
}

/// [`start_node`] as the process `instance`, with injected `faults`.
pub async fn start_node_as(
    t: &TestDb,
    webhook_url: Option<String>,
    instance: Instance,
    faults: Faults,
) -> Node {
    // The keystore's claim key makes each remittance's claim secret (salt + pickup code).
    let custody = remesa::engine::Custody::from_mnemonic(secrecy::SecretString::from(
        "test test test test test test test test test test test junk",
    ))
    .unwrap();
    let engine = Engine::new(
        t.db.clone(),
        EngineConfig::default(),
        Some(chain_info()),
        Some(custody),
        6,
    );
    let dir = tempfile::tempdir().unwrap();
    let node_signer = load_or_create_node_key(dir.path()).unwrap();
    let cfg = PartnerConfig {
        partner_webhook_backoff_base_ms: 20,
        partner_webhook_backoff_max_ms: 100,
        partner_webhook_poll_interval_ms: 50,
        ..PartnerConfig::default()
    };
    let pdb = PartnerDb::from(&t.db);
    let state = PartnerState {
        engine: engine.clone(),
        db: pdb.clone(),
        cfg: cfg.clone(),
        node_signer: node_signer.clone(),
        operator_token: Some("op-secret".to_owned().into()),
        instance,
        idempotency_stale_ms: remesa::http::idempotency::stale_ms(15_000),
        faults,
    };
    let base = serve(state.clone()).await;
    let cancel = CancellationToken::new();
    tokio::spawn(FeedFollower::new(pdb.clone(), cfg.clone()).run(cancel.clone()));
    tokio::spawn(
        WebhookWorker::new(pdb.clone(), node_signer, cfg)
            .unwrap()
            .run(cancel.clone()),
    );
    for (id, seed) in [(1u64, 0xA1u8), (2, 0xB2)] {
        use base64::Engine as _;
        let key = partner_signer(&id.to_string(), seed).verifying_key();
        engine
            .add_partner(NewPartner {
                id,
                name: format!("Partner {id}"),
                countries: vec!["GT".into()],
                currencies: vec!["GTQ".into()],
                payout_methods: vec![PayoutMethod::CashPickup, PayoutMethod::BankDeposit],
                public_key: base64::engine::general_purpose::STANDARD.encode(key.as_bytes()),
                webhook_url: if id == 1 { webhook_url.clone() } else { None },
                settlement_address: format!("0x{:040x}", 0x1000 + id),
                signer_address: None,
            })
            .await
            .unwrap();
    }
    engine.set_mid_market_rate("GTQ", "7.70").await.unwrap();
    Node {
        engine,
        base,
        cancel,
        pdb,
        state,
        _dir: dir,
    }
}

/// The partner router for `state` on a new port 0 listener; its base URL.
pub async fn serve(state: PartnerState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = partner_router(state);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

pub fn client(node: &Node, id: u64, seed: u8) -> PartnerClient {
    PartnerClient::new(&node.base, partner_signer(&id.to_string(), seed)).unwrap()
}

pub async fn call(
    c: &PartnerClient,
    m: Method,
    path: &str,
    body: Option<Value>,
    key: Option<&str>,
) -> (u16, Value) {
    let r = c.send_raw(m, path, body.as_ref(), key).await.unwrap();
    let s = r.status().as_u16();
    let v = r.json::<Value>().await.unwrap_or(Value::Null);
    (s, v)
}

/// A remittance routed to whoever quotes best, locked on "chain" (the engine's deposit event), now assigned.
pub async fn locked_remittance(node: &Node, method: PayoutMethod, key: &str) -> (String, u64) {
    let e = &node.engine;
    let q = e
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
    let sender = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8";
    let (r, _) = e
        .create_remittance(
            CreateRemittance {
                quote_id: q.id.clone(),
                sender: SenderRef::Address {
                    address: sender.into(),
                    name: None,
                },
                recipient: Recipient {
                    phone: remesa_testkit::phone("+50255550101"),
                    name: "Maria Lopez".into(),
                    account: (method != PayoutMethod::CashPickup).then(|| "GT00BANK0001".into()),
                },
            },
            &IdempotencyKey::parse(key).unwrap(),
        )
        .await
        .unwrap();
    let mut tx = e.db().begin().await.unwrap();
    let ev = Deposited {
        meta: EventMeta {
            id: format!("{}:0", key),
            block_number: 10,
            block_hash: B256::repeat_byte(1),
            tx_hash: B256::repeat_byte(2),
            log_index: 0,
        },
        remittance_id: B256::from_str(&r.id).unwrap(),
        sender: Address::from_str(sender).unwrap(),
        amount_base_units: U256::from_str(&r.total_base_units).unwrap(),
        batch_root: B256::from_str(&r.id).unwrap(),
        leaf_index: 0,
    };
    e.on_deposited(&mut tx, &ev).await.unwrap();
    tx.commit().await.unwrap();
    (r.id, r.partner_id)
}

pub fn rates(rate: &str, fee: &str) -> Value {
    json!({"rates": [
        {"country": "GT", "currency": "GTQ", "payout_method": "cash_pickup", "rate": rate, "fee_fixed": fee,
         "fee_bps": 0, "send_min": "1", "send_max": "2500", "valid_for_s": 3600},
        {"country": "GT", "currency": "GTQ", "payout_method": "bank_deposit", "rate": rate, "fee_fixed": fee,
         "fee_bps": 0, "send_min": "1", "send_max": "2500", "valid_for_s": 3600}
    ]})
}

async fn api_flow(t: TestDb) {
    let dir_key = load_or_create_node_key(tempfile::tempdir().unwrap().path()).unwrap();
    let _ = dir_key;
    // The webhook receiver verifies with the node's key, which we only know after start: start the node first
    // with the receiver's URL reserved, then read the key from the API.
    let listener_probe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    drop(listener_probe);
    let node0 = start_node(&t, None).await;
    let a = client(&node0, 1, 0xA1);
    let b = client(&node0, 2, 0xB2);
    let key: Value = a.get("/v1/partner/webhook-key").await.unwrap();
    let node_key = {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(key["public_key"].as_str().unwrap())
            .unwrap();
        ed25519_dalek::VerifyingKey::from_bytes(&bytes.try_into().unwrap()).unwrap()
    };
    let rx = start_receiver(node_key, 1).await;
    // Register the webhook of partner 1 now that the receiver runs.
    let mut tx = t.db.begin().await.unwrap();
    sqlx::query("UPDATE partners SET webhook_url = $1 WHERE id = 1")
        .bind(format!("http://{}/hooks/p1", rx.addr))
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let node = node0;

    // Who am I.
    let me: Value = a.get("/v1/partner/me").await.unwrap();
    assert_eq!(me["id"], 1);

    // Rates: partner 2 pays out more for cash, so quotes route cash to it and say so.
    assert_eq!(
        call(
            &a,
            Method::PUT,
            "/v1/partner/rates",
            Some(rates("7.60", "1.50")),
            None
        )
        .await
        .0,
        200
    );
    let (s, v) = call(
        &b,
        Method::PUT,
        "/v1/partner/rates",
        Some(rates("7.65", "1.00")),
        None,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["rates"].as_array().unwrap().len(), 2);
    let q = node
        .engine
        .quote(QuoteRequest {
            send_amount: "100".into(),
            country: "GT".into(),
            currency: Some("GTQ".into()),
            payout_method: PayoutMethod::CashPickup,
            ttl_s: None,
            recipient_phone: None,
        })
        .await
        .unwrap();
    assert_eq!(q.partner_id, 2);
    assert_eq!(q.partner_name, "Partner 2");
    // A rate outside the partner's registration is refused.
    let bad = json!({"rates": [{"country": "MX", "currency": "MXN", "payout_method": "cash_pickup", "rate": "17",
        "fee_fixed": "1", "fee_bps": 0, "send_min": "1", "send_max": "10", "valid_for_s": 60}]});
    assert_eq!(
        call(&a, Method::PUT, "/v1/partner/rates", Some(bad), None)
            .await
            .0,
        422
    );
    // Partner 2 improves partner 1's position: make partner 1 best for bank deposits only.
    let mut r1 = rates("7.69", "0.50");
    r1["rates"].as_array_mut().unwrap().remove(0);
    assert_eq!(
        call(&a, Method::PUT, "/v1/partner/rates", Some(r1), None).await.0,
        200
    );

    // A bank payout routed to partner 1, a cash payout routed to partner 2.
    let (bank_id, p) = locked_remittance(&node, PayoutMethod::BankDeposit, "k-bank").await;
    assert_eq!(p, 1);
    let (cash_id, p) = locked_remittance(&node, PayoutMethod::CashPickup, "k-cash").await;
    assert_eq!(p, 2);

    // Each partner sees its own payouts only; the other's are 404 (read and write).
    let page: Value = a.get("/v1/partner/payouts?status=payout_assigned").await.unwrap();
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [bank_id.as_str()]);
    assert_eq!(page["items"][0]["payout_amount"], "769.00");
    assert_eq!(page["items"][0]["recipient_account"], "GT00BANK0001");
    assert!(page["items"][0].get("pickup_code").is_none());
    assert_eq!(
        call(
            &b,
            Method::GET,
            &format!("/v1/partner/payouts/{bank_id}"),
            None,
            None
        )
        .await
        .0,
        404
    );
    let (s, v) = call(
        &b,
        Method::POST,
        &format!("/v1/partner/payouts/{bank_id}/accept"),
        Some(json!({})),
        None,
    )
    .await;
    assert_eq!((s, v["reason"].as_str()), (404, Some("not_found")));
    assert_eq!(
        call(
            &b,
            Method::POST,
            &format!("/v1/partner/payouts/{bank_id}/complete"),
            Some(json!({"kind": "reference", "reference": "X"})),
            None
        )
        .await
        .0,
        404
    );
    assert_eq!(
        call(
            &a,
            Method::GET,
            &format!("/v1/partner/payouts/{cash_id}"),
            None,
            None
        )
        .await
        .0,
        404
    );
    assert_eq!(
        call(&a, Method::GET, "/v1/partner/payouts?status=bogus", None, None)
            .await
            .0,
        422
    );

    // Accept with an Idempotency-Key: the retry gets the same answer; the key with another request is refused.
    let path = format!("/v1/partner/payouts/{bank_id}/accept");
    let (s1, v1) = call(&a, Method::POST, &path, Some(json!({})), Some("acc-1")).await;
    assert_eq!(s1, 200, "{v1}");
    assert_eq!(v1["status"], "payout_accepted");
    let r = a
        .send_raw(Method::POST, &path, Some(&json!({})), Some("acc-1"))
        .await
        .unwrap();
    assert_eq!(r.headers().get("idempotent-replayed").unwrap(), "true");
    assert_eq!(r.json::<Value>().await.unwrap(), v1);
    let (s, _) = call(
        &a,
        Method::POST,
        &path,
        Some(json!({"other": true})),
        Some("acc-1"),
    )
    .await;
    assert_eq!(s, 422);

    // Complete the bank payout with a reference: paid, release queued for the chain outbox.
    let (s, v) = call(
        &a,
        Method::POST,
        &format!("/v1/partner/payouts/{bank_id}/complete"),
        Some(json!({"kind": "reference", "reference": "BANK-7731"})),
        Some("done-1"),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "paid");
    assert_eq!(v["payout_reference"], "BANK-7731");
    let jobs: i64 = sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM chain_jobs WHERE kind = 'release' AND remittance_id = $1",
    )
    .bind(&bank_id)
    .fetch_one(&t.db.pool)
    .await
    .unwrap();
    assert_eq!(jobs, 1);

    // Cash: the counter agent looks the code up; a reference is refused; a wrong code is refused; the right one pays.
    // The code the chat gives the recipient (this node runs no chat: asked from the engine, as the chat does).
    let code = node.engine.pickup_code(&rid(&cash_id)).await.unwrap().unwrap();
    let grouped = code.display_grouped();
    let (s, v) = call(
        &b,
        Method::GET,
        &format!("/v1/partner/payouts/by-pickup-code/{grouped}"),
        None,
        None,
    )
    .await;
    assert_eq!((s, v["id"].as_str()), (200, Some(cash_id.as_str())));
    assert_eq!(
        call(
            &a,
            Method::GET,
            &format!("/v1/partner/payouts/by-pickup-code/{grouped}"),
            None,
            None
        )
        .await
        .0,
        404
    );
    assert_eq!(
        call(
            &b,
            Method::GET,
            "/v1/partner/payouts/by-pickup-code/NOT-A-CODE",
            None,
            None
        )
        .await
        .0,
        404
    );
    let complete = format!("/v1/partner/payouts/{cash_id}/complete");
    let (s, _) = call(
        &b,
        Method::POST,
        &complete,
        Some(json!({"kind": "reference", "reference": "R"})),
        None,
    )
    .await;
    assert_eq!(s, 422);
    let (s, _) = call(
        &b,
        Method::POST,
        &complete,
        Some(json!({"kind": "pickup_code", "code": "AAAAAAAAAAAA"})),
        None,
    )
    .await;
    assert_eq!(s, 422);
    let (s, v) = call(
        &b,
        Method::POST,
        &complete,
        Some(json!({"kind": "pickup_code", "code": code.expose()})),
        None,
    )
    .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("paid")), "{v}");

    // Fail: another bank payout of partner 1 is withdrawn, refund pending.
    let (fail_id, _) = locked_remittance(&node, PayoutMethod::BankDeposit, "k-fail").await;
    let (s, v) = call(
        &a,
        Method::POST,
        &format!("/v1/partner/payouts/{fail_id}/fail"),
        Some(json!({"reason": "account closed"})),
        None,
    )
    .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("refund_pending")), "{v}");
    assert_eq!(v["failure_reason"], "account closed");
    // Once withdrawn it cannot be completed.
    let (s, _) = call(
        &a,
        Method::POST,
        &format!("/v1/partner/payouts/{fail_id}/complete"),
        Some(json!({"kind": "reference", "reference": "late"})),
        None,
    )
    .await;
    assert_eq!(s, 409);

    // The feed: partner 1's events in order, partner 2 has its own.
    let mut types = Vec::new();
    for _ in 0..100 {
        let page: Value = a.get("/v1/partner/events?after=0").await.unwrap();
        types = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect();
        if types.len() >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        types,
        [
            "payout.created",
            "payout.accepted",
            "payout.paid",
            "payout.created",
            "payout.cancelled"
        ]
    );
    let page: Value = a.get("/v1/partner/events?after=0&limit=2").await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let after = page["next_after"].as_i64().unwrap();
    let rest: Value = a.get(&format!("/v1/partner/events?after={after}")).await.unwrap();
    assert_eq!(rest["items"][0]["type"], "payout.paid");
    assert!(rest["items"][0]["data"]["payout"]["id"].is_string());
    let b_events: Value = b.get("/v1/partner/events").await.unwrap();
    let b_types: Vec<&str> = b_events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(b_types, ["payout.created", "payout.accepted", "payout.paid"]);

    // Webhooks: partner 1's receiver got the same events, signed by the node (the first attempt was refused
    // with a 500 and retried).
    for _ in 0..200 {
        if rx.received.lock().await.len() >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got: Vec<String> = rx
        .received
        .lock()
        .await
        .iter()
        .map(|v| v["type"].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = got.clone();
    sorted.sort();
    let mut want = types.clone();
    want.sort();
    assert_eq!(sorted, want);
    assert!(rx.rejected.lock().await.is_empty());

    // Settlements: none yet (the chain has not released anything in this test).
    let s: Value = a.get("/v1/partner/settlements").await.unwrap();
    assert_eq!(s["items"].as_array().unwrap().len(), 0);

    // Admin: the operator sees deliveries; without the token, 401.
    let http = reqwest::Client::new();
    let r = http
        .get(format!(
            "{}/v1/admin/partner/webhooks?status=delivered",
            node.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let mut r = Value::Null;
    for _ in 0..100 {
        // The receiver may have answered before the worker recorded the delivery.
        r = http
            .get(format!(
                "{}/v1/admin/partner/webhooks?status=delivered",
                node.base
            ))
            .bearer_auth("op-secret")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if r["items"].as_array().is_some_and(|a| a.len() == 5) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(r["items"].as_array().unwrap().len(), 5);
    assert_eq!(r["failed_total"], 0);
    node.cancel.cancel();
    let _ = &node.pdb;
}

#[tokio::test]
async fn partner_api_on_sqlite() {
    api_flow(TestDb::sqlite().await.unwrap()).await;
}

#[tokio::test]
async fn partner_api_on_postgres() {
    if let Some(t) = TestDb::postgres().await {
        api_flow(t).await;
    }
}

#[test]
fn openapi_fragment_has_every_path_and_examples() {
    let doc = serde_json::to_value(PartnerApiDoc::openapi()).unwrap();
    for p in [
        "/v1/partner/rates",
        "/v1/partner/payouts",
        "/v1/partner/payouts/{id}",
        "/v1/partner/payouts/{id}/accept",
        "/v1/partner/payouts/{id}/complete",
        "/v1/partner/payouts/{id}/fail",
        "/v1/partner/payouts/by-pickup-code/{code}",
        "/v1/partner/settlements",
        "/v1/partner/events",
        "/v1/partner/webhook-key",
        "/v1/admin/partner/webhooks",
    ] {
        assert!(doc["paths"].get(p).is_some(), "missing {p}");
    }
    assert!(
        doc["components"]["securitySchemes"]
            .get("http_signature")
            .is_some()
    );
    assert!(
        doc["components"]["schemas"]["PartnerPayout"]
            .get("example")
            .is_some()
    );
    assert!(doc["components"]["schemas"]["PutRates"].get("example").is_some());
}

async fn sim_flow(t: TestDb) {
    let node = start_node(&t, None).await;
    let a = client(&node, 1, 0xA1);
    assert_eq!(
        call(
            &a,
            Method::PUT,
            "/v1/partner/rates",
            Some(rates("7.60", "1.50")),
            None
        )
        .await
        .0,
        200
    );
    let (bank_id, _) = locked_remittance(&node, PayoutMethod::BankDeposit, "s-bank").await;
    let (cash_id, _) = locked_remittance(&node, PayoutMethod::CashPickup, "s-cash").await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("partner1.seed");
    std::fs::write(&key_file, hex::encode([0xA1u8; 32])).unwrap();
    let args = remesa::partner::sim::SimArgs {
        node_url: node.base.clone(),
        partner_id: 1,
        key_file,
        accept_delay_ms: 50,
        complete_delay_ms: 50,
        poll_interval_ms: 100,
        webhook_addr: Some("127.0.0.1:0".parse().unwrap()),
        webhook_url: None,
        fail_every: 0,
        pickup_codes_file: None,
        stop_after: Some(2),
    };
    let engine = node.engine.clone();
    let oracle: remesa::partner::sim::PickupOracle = std::sync::Arc::new(move |id: String| {
        let engine = engine.clone();
        Box::pin(async move {
            engine
                .pickup_code(&rid(&id))
                .await
                .ok()
                .flatten()
                .map(|c| c.expose().to_owned())
        })
    });
    tokio::time::timeout(
        Duration::from_secs(30),
        remesa::partner::sim::run_with(args, node.cancel.clone(), Some(oracle)),
    )
    .await
    .expect("the simulator handles both payouts in time")
    .unwrap();
    for (id, reference) in [(&bank_id, "SIM-"), (&cash_id, "pickup code")] {
        let r = node.engine.remittance(&rid(id)).await.unwrap().unwrap();
        assert_eq!(r.state.as_str(), "paid", "{id}");
        assert!(
            r.payout_reference.as_deref().unwrap().starts_with(reference),
            "{:?}",
            r.payout_reference
        );
    }
    node.cancel.cancel();
}

#[tokio::test]
async fn partner_sim_on_sqlite() {
    sim_flow(TestDb::sqlite().await.unwrap()).await;
}

#[tokio::test]
async fn partner_sim_on_postgres() {
    if let Some(t) = TestDb::postgres().await {
        sim_flow(t).await;
    }
}

/// A partner's key is used from memory for at most `KEY_CACHE_TTL`: once suspended, its signed requests are refused
/// within that time; once active again, at once (an unknown or suspended key is never kept).
async fn suspension_takes_effect_within_the_key_cache_ttl(t: TestDb) {
    let node = start_node(&t, None).await;
    let b = client(&node, 2, 0xB2);
    let (status, _) = call(&b, Method::GET, "/v1/partner/me", None, None).await;
    assert_eq!(status, 200);
    let id = remesa::domain::PartnerId::new(2).unwrap();
    node.engine.set_partner_status(id, "suspended").await.unwrap();
    tokio::time::sleep(remesa::partner::api::KEY_CACHE_TTL + Duration::from_millis(100)).await;
    let (status, body) = call(&b, Method::GET, "/v1/partner/me", None, None).await;
    assert_eq!(status, 401, "{body}");
    node.engine.set_partner_status(id, "active").await.unwrap();
    let (status, body) = call(&b, Method::GET, "/v1/partner/me", None, None).await;
    assert_eq!(status, 200, "{body}");
    node.cancel.cancel();
}

#[tokio::test]
async fn key_cache_on_both_databases() {
    remesa_testkit::both_dbs!(suspension_takes_effect_within_the_key_cache_ttl);
}

/// The payout list's "was it ever assigned" check seeks its remittance's transitions by (remittance, state). With
/// only the node's other transition indexes SQLite's planner scanned every assignment of the node per row: a page of
/// a partner with 10,000 payouts took 2 to 4 s in benchmark 2b, 23 s for a cold page of settled ones.
#[tokio::test]
async fn payout_list_seeks_each_remittances_transitions() {
    let t = TestDb::sqlite().await.unwrap();
    let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(&format!(
        "EXPLAIN QUERY PLAN {}",
        remesa::store::remittances::payouts_of_sql()
    ))
    .fetch_all(&t.db.pool)
    .await
    .unwrap();
    let steps: Vec<&str> = plan.iter().map(|(_, _, _, d)| d.as_str()).collect();
    assert!(
        steps
            .iter()
            .any(|d| d.contains("remittance_transitions_remittance_state (remittance_id=? AND to_state=?)")),
        "{steps:?}"
    );
}
