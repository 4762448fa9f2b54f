//! A P2P transfer into a Remesa wallet through WhatsApp-format webhooks, on a real anvil with the committed
//! contracts: Ana and Maria both chat with the node (so both have custodial wallets), Ana sends 10 USD "to her
//! Remesa wallet", confirms, and both are told once the token transfer is indexed; balances shown in chat follow.
//! A recipient without a Remesa wallet gets a clear answer suggesting another payout method.

use std::time::Duration;

use alloy::primitives::{Address, U256};
use anyhow::{Context, Result};
use remesa_testkit::{LocalDevnet, mint, node_config, spawn_node};

use crate::full_node::eventually;
use crate::harness::*;

const ANA: &str = "15551234567";
const MARIA: &str = "50255550101";

fn wallet_in(text: &str) -> Result<Address> {
    Ok(text
        .split_whitespace()
        .find(|w| w.starts_with("0x") && w.len() == 42)
        .context("wallet address in the welcome")?
        .parse()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ana_sends_to_marias_remesa_wallet_on_anvil() -> Result<()> {
    let devnet = LocalDevnet::start(&[]).await?;
    let dir = tempfile::tempdir()?;
    let api = PlatformApi::start().await?;
    let mut config = node_config(&devnet, dir.path(), OPERATOR_TOKEN).await?;
    config.chat = chat_config(&api);
    let node = spawn_node(config).await?;
    let (base, engine) = (node.base.clone(), node.state.engine.clone());
    let http = reqwest::Client::new();
    let say = |from: &'static str, id: &'static str, text: &'static str| {
        let (http, base) = (http.clone(), base.clone());
        async move { post_whatsapp(&http, &base, &wa_text(from, id, text), Some(APP_SECRET)).await }
    };

    // --- both register by chatting ---
    assert_eq!(say(ANA, "wamid.p1", "hola").await?, 200);
    let welcome = api
        .wait_whatsapp(ANA, "Ana's welcome", Duration::from_secs(20), |m| !m.is_empty())
        .await?;
    let ana_wallet = wallet_in(&welcome[0].0)?;
    assert_eq!(say(MARIA, "wamid.m1", "hola").await?, 200);
    let welcome = api
        .wait_whatsapp(MARIA, "Maria's welcome", Duration::from_secs(20), |m| {
            !m.is_empty()
        })
        .await?;
    let maria_wallet = wallet_in(&welcome[0].0)?;

    // --- Ana's wallet is funded with 50 USD ---
    mint(&devnet, ana_wallet, U256::from(50_000_000u64)).await?;
    let address = format!("{ana_wallet:#x}");
    eventually("the mint to be indexed", Duration::from_secs(30), || {
        let engine = engine.clone();
        let address = address.clone();
        async move { Ok((engine.balance(&address).await?.balance_base_units == "50000000").then_some(())) }
    })
    .await?;

    // --- a recipient without a Remesa wallet: a clear answer, another method suggested ---
    assert_eq!(
        say(
            ANA,
            "wamid.p2",
            "send 5 usd to Pedro +502 5555 0199 to his remesa wallet"
        )
        .await?,
        200
    );
    api.wait_whatsapp(ANA, "not a Remesa user", Duration::from_secs(20), |m| {
        m.iter()
            .any(|x| x.0.contains("is not a Remesa user") && x.0.contains("cash pickup"))
    })
    .await?;

    // --- the P2P send and its quote: no partner, no FX, no fee ---
    assert_eq!(
        say(
            ANA,
            "wamid.p3",
            "send 10 usd to Maria +502 5555 0101 to her remesa wallet"
        )
        .await?,
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
        "You send: 10.00 USD",
        "Fee: 0.00 USD (free",
        "Total to pay: *10.00 USD*",
        "gets: *10.00 USD* in their Remesa wallet",
    ] {
        assert!(quote_text.contains(needle), "{needle:?} not in {quote_text}");
    }
    assert!(!quote_text.contains("Rate:"), "{quote_text}");

    // --- confirm (delivered twice): one transfer ---
    let confirm = wa_button(ANA, "wamid.p4", &buttons[0], "Confirm");
    for _ in 0..2 {
        assert_eq!(
            post_whatsapp(&http, &base, &confirm, Some(APP_SECRET)).await?,
            200
        );
    }
    api.wait_whatsapp(ANA, "confirmation", Duration::from_secs(20), |m| {
        m.iter().any(|x| x.0.contains("Done!"))
    })
    .await?;

    // --- both sides are told, each in their language ---
    let received = api
        .wait_whatsapp(MARIA, "money received", Duration::from_secs(60), |m| {
            m.iter().any(|x| x.0.contains("te envió"))
        })
        .await?;
    let text = &received
        .iter()
        .find(|x| x.0.contains("te envió"))
        .context("notice")?
        .0;
    assert!(
        text.contains("Ana") && text.contains("te envió 10.00 USD, ya está en tu billetera Remesa"),
        "{text}"
    );
    api.wait_whatsapp(ANA, "sent", Duration::from_secs(20), |m| {
        m.iter().any(|x| {
            x.0.contains("sent. 10.00 USD is in the recipient's Remesa wallet")
        })
    })
    .await?;

    // --- on chain and in the chat balances ---
    let bal = |who: Address| devnet.balance_of(who);
    assert_eq!(bal(ana_wallet).await?, U256::from(40_000_000u64));
    assert_eq!(bal(maria_wallet).await?, U256::from(10_000_000u64));
    assert_eq!(bal(devnet.deployment.escrow).await?, U256::ZERO);
    assert_eq!(say(MARIA, "wamid.m2", "saldo").await?, 200);
    api.wait_whatsapp(MARIA, "Maria's balance", Duration::from_secs(20), |m| {
        m.iter().any(|x| x.0.contains("10.00 USD") && x.0.contains("0x"))
    })
    .await?;
    assert_eq!(say(ANA, "wamid.p5", "balance").await?, 200);
    api.wait_whatsapp(ANA, "Ana's balance", Duration::from_secs(20), |m| {
        m.iter().any(|x| x.0.contains("40.00 USD"))
    })
    .await?;
    let list = engine
        .list_remittances(&remesa::engine::RemittanceFilter::default(), None, 10)
        .await?;
    assert_eq!(list.items.len(), 1, "one remittance for two confirmations");
    assert_eq!(list.items[0].state.as_str(), "settled");
    remesa::engine::ledger::check_balanced(&engine.db().pool).await?;

    node.stop().await;
    Ok(())
}
