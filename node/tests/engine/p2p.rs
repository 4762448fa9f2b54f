//! P2P transfers straight into a Remesa wallet (payout method `remesa_wallet`), on a real anvil with the committed
//! contracts and the whole node in process (writer, indexer, HTTP API), on SQLite and on PostgreSQL: the quote over
//! HTTP (no partner, no FX, no fee), the custodial EIP-3009 `TransferWithAuthorization` sent by the outbox to the
//! token, settlement from the indexed `Transfer`, balances on chain and in the ledger, and the refusals.

use std::time::Duration;

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolCall;
use anyhow::{Context, Result};
use remesa::domain::{IdempotencyKey, PayoutMethod};
use remesa::engine::{
    CreateRemittance, Engine, EngineError, NewUser, QuoteRequest, Recipient, SenderRef, State,
};
use remesa_testkit::{LocalDevnet, TestDb, mint, node_config, pid, rid, spawn_node};
use sqlx::Row;

alloy::sol! {
    interface IToken {
        function balanceOf(address who) external view returns (uint256);
    }
}

const OPERATOR_TOKEN: &str = "operator-token-p2p";
const ANA_PHONE: &str = "+14155552671";
const MARIA_PHONE: &str = "+50255550101";

async fn token_balance(p: &DynProvider, token: Address, who: Address) -> Result<U256> {
    let out = p
        .call(
            TransactionRequest::default()
                .with_to(token)
                .with_input(IToken::balanceOfCall { who }.abi_encode()),
        )
        .await?;
    Ok(U256::from_be_slice(&out))
}

async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> Result<T>
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

async fn register(engine: &Engine, id: &str, phone: &str, name: &str) -> Result<remesa::engine::User> {
    Ok(engine
        .register_user(NewUser {
            channel: "whatsapp".into(),
            external_id: id.into(),
            phone: Some(remesa_testkit::phone(phone)),
            display_name: Some(name.into()),
            ..NewUser::default()
        })
        .await?
        .0)
}

fn p2p_quote(amount: &str, phone: &str) -> QuoteRequest {
    QuoteRequest {
        send_amount: amount.into(),
        country: "GT".into(),
        currency: None,
        payout_method: PayoutMethod::RemesaWallet,
        ttl_s: None,
        recipient_phone: Some(remesa_testkit::phone(phone)),
    }
}

async fn send(
    engine: &Engine,
    quote_id: &str,
    sender_id: &str,
    phone: &str,
    key: &str,
) -> Result<remesa::engine::Remittance, EngineError> {
    engine
        .create_remittance(
            CreateRemittance {
                quote_id: quote_id.into(),
                sender: SenderRef::User {
                    user_id: sender_id.into(),
                },
                recipient: Recipient {
                    phone: remesa_testkit::phone(phone),
                    name: "Maria".into(),
                    account: None,
                },
            },
            &IdempotencyKey::parse(key).expect("key"),
        )
        .await
        .map(|(r, _)| r)
}

/// The whole P2P path against a node whose database is `database_url` (None: SQLite in the data dir).
async fn p2p_on_anvil(database_url: Option<String>) -> Result<()> {
    // --- chain: anvil with the committed contracts (the wallet's devnet), the node in process ---
    let devnet = LocalDevnet::start(&[]).await?;
    let p = devnet.chain.provider().clone();
    let (token, escrow) = (devnet.deployment.token, devnet.deployment.escrow);
    let dir = tempfile::tempdir()?;
    let mut config = node_config(&devnet, dir.path(), OPERATOR_TOKEN).await?;
    config.database_url = database_url;
    let node = spawn_node(config).await?;
    let (base, engine) = (node.base.clone(), node.state.engine.clone());
    let relayer = engine.custody().context("custody")?.relayer()?.address();
    let http = reqwest::Client::new();

    // --- two Remesa users; Ana has 50 USD on chain, indexed into the ledger ---
    let ana = register(&engine, "ana", ANA_PHONE, "Ana").await?;
    let maria = register(&engine, "maria", MARIA_PHONE, "Maria").await?;
    let (ana_addr, maria_addr): (Address, Address) = (ana.address.parse()?, maria.address.parse()?);
    mint(&devnet, ana_addr, U256::from(50_000_000u64)).await?;
    eventually("the mint to be indexed", Duration::from_secs(30), || {
        let engine = engine.clone();
        let a = ana.address.clone();
        async move { Ok((engine.balance(&a).await?.balance_base_units == "50000000").then_some(())) }
    })
    .await?;

    // --- the quote over HTTP: USD, no partner, no FX, no fee ---
    let res = http
        .post(format!("{base}/v1/quotes"))
        .json(&serde_json::json!({
            "send_amount": "10", "country": "GT", "payout_method": "remesa_wallet", "recipient_phone": MARIA_PHONE
        }))
        .send()
        .await?;
    assert_eq!(res.status().as_u16(), 201);
    let q: serde_json::Value = res.json().await?;
    assert_eq!(q["partner_id"], 0);
    assert_eq!(q["currency"], "USD");
    assert_eq!(q["payout_method"], "remesa_wallet");
    assert_eq!(q["fee"], "0");
    assert_eq!(q["total"], "10");
    assert_eq!(q["payout_amount"], "10");
    assert_eq!(q["rate"], "1");
    assert_eq!(q["recipient_phone"], MARIA_PHONE);
    let quote_id = q["id"].as_str().context("quote id")?.to_owned();

    // --- the recipient must be a Remesa user: clear refusals over HTTP and from the engine ---
    let res = http
        .post(format!("{base}/v1/quotes"))
        .json(&serde_json::json!({
            "send_amount": "10", "country": "GT", "payout_method": "remesa_wallet", "recipient_phone": "+50255550199"
        }))
        .send()
        .await?;
    assert_eq!(res.status().as_u16(), 422);
    let problem: serde_json::Value = res.json().await?;
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("+50255550199 is not a Remesa user") && detail.contains("cash pickup"),
        "{problem}"
    );
    assert!(matches!(
        engine.quote(p2p_quote("10", "+50255550199")).await,
        Err(EngineError::RecipientNotRegistered { .. })
    ));
    assert!(matches!(
        engine
            .quote(QuoteRequest {
                recipient_phone: None,
                ..p2p_quote("10", MARIA_PHONE)
            })
            .await,
        Err(EngineError::Invalid(_))
    ));
    // the quote is bound to its recipient
    let other = engine.quote(p2p_quote("1", MARIA_PHONE)).await?;
    assert!(matches!(
        send(&engine, &other.id, &ana.id, "+50255550199", "p2p.other").await,
        Err(EngineError::Invalid(_))
    ));

    // --- confirm: signed by Ana's custodial key, queued as a token transfer ---
    let r = send(&engine, &quote_id, &ana.id, MARIA_PHONE, "p2p.1").await?;
    assert_eq!(r.state, State::PendingFunds);
    assert_eq!(r.partner_id, 0);
    assert_eq!(r.total_base_units, "10000000");
    assert_eq!(r.payout_amount, "10");
    assert_eq!(r.recipient_address.as_deref(), Some(maria.address.as_str()));
    // while it is in flight, Ana's available balance already excludes it
    let b = engine.balance(&ana.address).await?;
    assert_eq!(b.available_base_units, "40000000");
    // the same key again: the same remittance, no second transfer
    let again = send(&engine, &quote_id, &ana.id, MARIA_PHONE, "p2p.1").await?;
    assert_eq!(again.id, r.id);
    let jobs: i64 = sqlx::query(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM chain_jobs WHERE kind = 'transfer' AND remittance_id = $1",
    )
    .bind(&r.id)
    .fetch_one(&engine.db().pool)
    .await?
    .try_get(0)?;
    assert_eq!(jobs, 1);

    // --- settled once the indexer sees the token Transfer ---
    let settled = eventually("the P2P transfer to settle", Duration::from_secs(60), || {
        let engine = engine.clone();
        let id = r.id.clone();
        async move {
            let got = engine.remittance(&rid(&id)).await?.context("remittance")?;
            Ok((got.state == State::Settled).then_some(got))
        }
    })
    .await?;
    let tx_hash = settled.release_tx_hash.clone().context("transfer tx hash")?;
    assert_eq!(
        token_balance(&p, token, ana_addr).await?,
        U256::from(40_000_000u64)
    );
    assert_eq!(
        token_balance(&p, token, maria_addr).await?,
        U256::from(10_000_000u64)
    );
    // the escrow was never touched: the ledger's escrow account equals its (zero) balance on chain
    assert_eq!(token_balance(&p, token, escrow).await?, U256::ZERO);
    remesa::engine::ledger::check_balanced(&engine.db().pool).await?;
    assert_eq!(
        remesa::engine::ledger::balance(&engine.db().pool, remesa::engine::ledger::ESCROW).await?,
        0
    );
    assert_eq!(engine.balance(&ana.address).await?.balance_base_units, "40000000");
    assert_eq!(
        engine.balance(&maria.address).await?.balance_base_units,
        "10000000"
    );
    // every transition recorded with its cause, on the direct path
    let history = engine.history(&rid(&r.id)).await?;
    let path: Vec<(String, String)> = history
        .iter()
        .map(|e| (e.to.to_string(), e.cause.clone()))
        .collect();
    assert_eq!(
        path,
        [
            ("quoted".to_owned(), "created".to_owned()),
            ("pending_funds".to_owned(), "authorized".to_owned()),
            ("settled".to_owned(), "transferred".to_owned()),
        ]
    );
    assert_eq!(history[2].detail["tx_hash"], tx_hash.as_str());
    // the transaction went to the token, from the node's relayer, gasless for Ana
    // (looked up by attempt hash: the indexer may settle before the writer has recorded the receipt)
    let row = sqlx::query(
        "SELECT t.to_address, t.sender, t.kind FROM chain_tx_attempts a JOIN chain_txs t ON t.id = a.tx_id \
         WHERE a.tx_hash = $1",
    )
    .bind(&tx_hash)
    .fetch_one(&engine.db().pool)
    .await?;
    assert_eq!(row.try_get::<String, _>(0)?, format!("{token:#x}"));
    assert_eq!(row.try_get::<String, _>(1)?, format!("{relayer:#x}"));
    assert_eq!(row.try_get::<String, _>(2)?, "transfer");
    assert_eq!(p.get_balance(ana_addr).await?, U256::ZERO, "Ana holds no gas");

    // --- illegal moves are refused: a settled transfer cannot be cancelled or paid out by a partner ---
    assert!(matches!(
        engine.cancel(&rid(&r.id), None).await,
        Err(EngineError::Conflict(_))
    ));
    assert!(engine.payout_accepted(&rid(&r.id), pid(1)).await.is_err());

    // --- insufficient balance: a clear error, nothing queued ---
    let big = engine.quote(p2p_quote("40.000001", MARIA_PHONE)).await?;
    match send(&engine, &big.id, &ana.id, MARIA_PHONE, "p2p.big").await {
        Err(EngineError::InsufficientFunds { available, required }) => {
            assert_eq!(available, "40");
            assert_eq!(required, "40.000001");
        }
        other => panic!("expected insufficient funds, got {other:?}"),
    }
    // sending to yourself is refused too
    let own = engine.quote(p2p_quote("1", ANA_PHONE)).await?;
    assert!(matches!(
        send(&engine, &own.id, &ana.id, ANA_PHONE, "p2p.own").await,
        Err(EngineError::Invalid(_))
    ));

    node.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2p_transfer_on_anvil_sqlite() -> Result<()> {
    p2p_on_anvil(None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p2p_transfer_on_anvil_postgres() -> Result<()> {
    let Some(db) = TestDb::postgres().await else {
        return Ok(());
    };
    let url = db.url.clone();
    let res = p2p_on_anvil(Some(url)).await;
    drop(db);
    res
}
