//! The whole node, in process, on a real anvil with the committed contracts: a sender chats through
//! WhatsApp-format webhooks from "hola" to cash paid and settled, while a local HTTP server stands in for the
//! Graph API and records what the node sends (to the sender and to the recipient, with the pickup code).
//! The partner's side (accept, pay with the pickup code the recipient received) uses the engine directly, as the
//! partner API does.

use std::time::Duration;

use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::node_bindings::Anvil;
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use anyhow::{Context, Result};
use remesa::config::Config;
use remesa::domain::{PayoutMethod, PickupCode};
use remesa::engine::{NewPartner, PayoutProof, RateInput};
use secrecy::SecretString;

use crate::harness::*;

alloy::sol! {
    interface IToken {
        function mint(address to, uint256 amount) external;
        function balanceOf(address who) external view returns (uint256);
    }
    interface IEscrow {
        function setPartner(uint64 partnerId, address settlement) external;
    }
}

const ANA: &str = "15551234567";
const MARIA: &str = "50255550101";
const SETTLEMENT: Address = Address::repeat_byte(0x5e);

pub fn artifact(name: &str) -> Result<Vec<u8>> {
    let path = repo_root().join(format!("contracts/artifacts/{name}.json"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).with_context(|| path.display().to_string())?)?;
    let code: Bytes = json["bytecode"]["object"].as_str().context("bytecode")?.parse()?;
    Ok(code.to_vec())
}

pub async fn deploy(p: &DynProvider, code: Vec<u8>) -> Result<Address> {
    let receipt = p
        .send_transaction(TransactionRequest::default().with_deploy_code(code))
        .await?
        .get_receipt()
        .await?;
    anyhow::ensure!(receipt.status(), "deployment reverted");
    receipt.contract_address.context("no contract address")
}

pub async fn call(p: &DynProvider, to: Address, data: Vec<u8>) -> Result<()> {
    let receipt = p
        .send_transaction(TransactionRequest::default().with_to(to).with_input(data))
        .await?
        .get_receipt()
        .await?;
    anyhow::ensure!(receipt.status(), "transaction reverted");
    Ok(())
}

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
    // --- chain: anvil + the committed contracts ---
    let anvil = Anvil::at(repo_root().join("contracts/node_modules/.bin/anvil"))
        .arg("--accounts")
        .arg("3")
        .try_spawn()
        .context("start anvil")?;
    let deployer = PrivateKeySigner::from(anvil.keys()[0].clone());
    let p = ProviderBuilder::new()
        .wallet(EthereumWallet::from(deployer.clone()))
        .connect_http(anvil.endpoint().parse()?)
        .erased();
    let token = deploy(&p, artifact("TestStablecoin")?).await?;
    let mut escrow_code = artifact("RemittanceEscrow")?;
    escrow_code.extend(
        alloy::dyn_abi::DynSolValue::Tuple(vec![
            token.into(),
            deployer.address().into(),
            deployer.address().into(),
        ])
        .abi_encode_params(),
    );
    let escrow = deploy(&p, escrow_code).await?;
    call(
        &p,
        escrow,
        IEscrow::setPartnerCall {
            partnerId: 1,
            settlement: SETTLEMENT,
        }
        .abi_encode(),
    )
    .await?;
    let deploy_block = p.get_block_number().await?;

    // --- node: data dir, keystore, deployment, config ---
    let dir = tempfile::tempdir()?;
    let pass = SecretString::from("correct horse battery staple");
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    let custody = remesa::engine::Custody::create_keystore(&remesa::app::keystore_path(&config), &pass)?;
    let relayer = custody.relayer()?.address();
    p.send_transaction(
        TransactionRequest::default()
            .with_to(relayer)
            .with_value(U256::from(10u128.pow(19))),
    )
    .await?
    .get_receipt()
    .await?;
    let deployment = serde_json::json!({
        "chain_id": p.get_chain_id().await?, "rpc_url": anvil.endpoint(), "token": token, "escrow": escrow,
        "deployer": deployer.address(), "deploy_block": deploy_block,
    });
    std::fs::write(dir.path().join("deployment.json"), deployment.to_string())?;
    let api = PlatformApi::start().await?;
    config.http_addr = "127.0.0.1:0".parse()?;
    config.rpc_url = Some(anvil.endpoint());
    config.deployment = Some(dir.path().join("deployment.json"));
    config.keystore_passphrase = Some(pass);
    config.operator_token = Some(SecretString::from(OPERATOR_TOKEN));
    config.chain.confirmations = 0;
    config.chain.batch_delay_ms_max = 100;
    config.chain.writer_poll_ms = 100;
    config.chain.indexer_poll_ms = 100;
    config.chat = chat_config(&api);
    let app = remesa::app::build(config).await.context("build node")?;
    let port = app.port();
    let engine = app.state().engine.clone();
    let shutdown = app.state().shutdown.clone();
    let server = tokio::spawn(app.run_until_stopped());
    let base = format!("http://127.0.0.1:{port}");
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
            settlement_address: format!("{SETTLEMENT:#x}"),
        })
        .await?;
    engine
        .set_rates(
            1,
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
    call(
        &p,
        token,
        IToken::mintCall {
            to: wallet,
            amount: U256::from(500_000_000u64),
        }
        .abi_encode(),
    )
    .await?;
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

    // --- the send request and the firm quote ---
    assert_eq!(
        say("wamid.h3", "envía 100 a María López +502 5555 0101 en efectivo").await?,
        200
    );
    let msgs = api
        .wait_whatsapp(ANA, "quote", Duration::from_secs(20), |m| {
            m.iter()
                .any(|x| !x.1.is_empty() && x.1[0].starts_with("confirm:"))
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
    api.wait_whatsapp(ANA, "confirmation", Duration::from_secs(20), |m| {
        m.iter().any(|x| x.0.contains("¡Listo!"))
    })
    .await?;

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

    // --- the partner pays the recipient against the code from the chat message ---
    let r = engine
        .find_by_pickup_code(1, &code)
        .await?
        .context("remittance by pickup code")?;
    engine.payout_accepted(&r.id, 1).await?;
    engine
        .payout_paid(
            &r.id,
            1,
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
    let balance = IToken::balanceOfCall { who: SETTLEMENT }.abi_encode();
    let out = p
        .call(TransactionRequest::default().with_to(token).with_input(balance))
        .await?;
    assert_eq!(
        U256::from_be_slice(&out),
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

    // Every outbound message was accepted by the Graph API stand-in, with the bearer token.
    assert!(
        api.sent()
            .iter()
            .all(|s| s.authorization.as_deref() == Some("Bearer graph-token"))
    );
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), server).await;
    Ok(())
}
