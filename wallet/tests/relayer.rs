//! Library behaviour against a real anvil: the terms hash equals the contract's, relayer nonces, replacement of a
//! stuck or dropped transaction, confirmation timeout, batches, chain checks.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use alloy::primitives::{Address, B256, TxKind, U256};
use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use alloy::signers::local::PrivateKeySigner;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use remesa_wallet::chain::{Chain, ChainError};
use remesa_wallet::contracts::{EscrowStatus, RemittanceEscrow};
use remesa_wallet::devnet::{self, LocalDevnet, anvil_dev_signer};
use remesa_wallet::eip3009::{self, AuthorizationKind, AuthorizationTerms, PermitTerms, SignedAuthorization};
use remesa_wallet::relayer::RelayerConfig;
use remesa_wallet::terms::{ClaimSecret, RemittanceTerms};

fn quick() -> RelayerConfig {
    RelayerConfig {
        poll_interval: Duration::from_millis(50),
        confirm_timeout: Duration::from_secs(20),
        ..RelayerConfig::default()
    }
}

async fn signed_deposit(
    d: &LocalDevnet,
    sender: &PrivateKeySigner,
    amount: u64,
    expiry_in_s: u64,
) -> (RemittanceTerms, SignedAuthorization, ClaimSecret) {
    let now = d.chain.latest_timestamp().await.unwrap();
    let code = ClaimSecret::generate();
    let terms = RemittanceTerms {
        escrow: d.deployment.escrow,
        sender: sender.address(),
        amount_base_units: U256::from(amount),
        partner_id: devnet::DEMO_PARTNER_ID,
        settlement: devnet::anvil_dev_signer(9).address(),
        partner_signer: devnet::anvil_dev_signer(9).address(),
        expires_at_unix_s: now + expiry_in_s,
        claim_hash: code.claim_hash(),
    };
    let domain = d.chain.token_domain(d.deployment.token).await.unwrap();
    let t = AuthorizationTerms {
        from: sender.address(),
        to: terms.escrow,
        value: terms.amount_base_units,
        valid_after_unix_s: 0,
        valid_before_unix_s: now + 3600,
        nonce: terms.id(),
    };
    let auth = eip3009::sign_authorization(sender, AuthorizationKind::Receive, &domain, &t).unwrap();
    (terms, auth, code)
}

#[tokio::test(flavor = "multi_thread")]
async fn terms_hash_equals_the_contracts() {
    let d = common::devnet().await;
    let escrow = RemittanceEscrow::new(d.deployment.escrow, d.chain.provider());
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(24));
    let strategy = (
        any::<[u8; 20]>(),
        any::<[u8; 32]>(),
        any::<u64>(),
        any::<u64>(),
        any::<([u8; 20], [u8; 20])>(),
        any::<[u8; 32]>(),
    );
    let cases: Vec<_> = (0..24)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect();
    for (sender, amount, partner, expiry, (settlement, partner_signer), claim) in cases {
        let terms = RemittanceTerms {
            escrow: d.deployment.escrow,
            sender: Address::from(sender),
            amount_base_units: U256::from_be_bytes(amount),
            partner_id: partner,
            settlement: Address::from(settlement),
            partner_signer: Address::from(partner_signer),
            expires_at_unix_s: expiry,
            claim_hash: B256::from(claim),
        };
        let on_chain = escrow.remittanceId(terms.to_sol()).call().await.unwrap();
        assert_eq!(on_chain, terms.id());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn nonces_batches_and_restart() {
    let d = common::devnet().await;
    let sender = anvil_dev_signer(1);
    let relayer = d.relayer(6, quick());
    let n0 = relayer.next_nonce().await.unwrap();

    // Two back-to-back sends before either is confirmed: consecutive nonces.
    let (t1, a1, c1) = signed_deposit(&d, &sender, 1_000_000, 3600).await;
    let (t2, a2, c2) = signed_deposit(&d, &sender, 2_000_000, 3600).await;
    let p1 = relayer.deposit(&t1, &a1).await.unwrap();
    let p2 = relayer.deposit(&t2, &a2).await.unwrap();
    assert_eq!((p1.nonce, p2.nonce), (n0, n0 + 1));
    let r1 = relayer.confirm(p1, |_| {}).await.unwrap();
    let r2 = relayer.confirm(p2, |_| {}).await.unwrap();
    assert!(r1.gas_used > 0 && r2.gas_used > 0);

    // A send the chain refuses (estimate reverts: already deposited, the token's authorization is spent) uses no
    // nonce.
    let e = relayer.deposit(&t1, &a1).await.expect_err("already deposited");
    assert!(
        e.is_user_error() && e.to_string().contains("authorization is used"),
        "{e}"
    );
    assert_eq!(relayer.next_nonce().await.unwrap(), n0 + 2);

    // Batched release (sorted by partner) and a batched refund, from a fresh relayer (a restart): it resyncs.
    let restarted = d.relayer(6, quick());
    let from = d.deployment.deploy_block;
    let (p1, p2) = (
        d.chain
            .escrow_placement(t1.escrow, t1.id(), from)
            .await
            .unwrap()
            .expect("t1 deposited"),
        d.chain
            .escrow_placement(t2.escrow, t2.id(), from)
            .await
            .unwrap()
            .expect("t2 deposited"),
    );
    let p = restarted
        .release_batch(
            d.deployment.escrow,
            &[(t1, c1.preimage(), p1), (t2, c2.preimage(), p2)],
        )
        .await
        .unwrap();
    assert_eq!(p.nonce, n0 + 2);
    let r = restarted.confirm(p, |_| {}).await.unwrap();
    assert!(r.gas_used > 0);
    assert_eq!(
        d.chain.escrow_status(t1.escrow, t1.id(), from).await.unwrap(),
        EscrowStatus::Released
    );
    assert_eq!(
        d.chain.escrow_status(t2.escrow, t2.id(), from).await.unwrap(),
        EscrowStatus::Released
    );

    // The devnet escrow's shortest lock is a minute.
    let (t3, a3, _) = signed_deposit(&d, &sender, 3_000_000, devnet::DEVNET_MIN_LOCK_S + 10).await;
    let (t4, a4, _) = signed_deposit(&d, &sender, 4_000_000, devnet::DEVNET_MIN_LOCK_S + 10).await;
    let p = restarted
        .deposit_batch(d.deployment.escrow, &[(t3, a3), (t4, a4)])
        .await
        .unwrap();
    restarted.confirm(p, |_| {}).await.unwrap();
    // One batch of two: both leaves of one root, found from the escrow's Deposited event.
    let (p3, p4) = (
        d.chain
            .escrow_placement(t3.escrow, t3.id(), from)
            .await
            .unwrap()
            .expect("t3 deposited"),
        d.chain
            .escrow_placement(t4.escrow, t4.id(), from)
            .await
            .unwrap()
            .expect("t4 deposited"),
    );
    assert_eq!((p3.index, p4.index, p3.root()), (0, 1, p4.root()));
    devnet::increase_time(&d.chain, devnet::DEVNET_MIN_LOCK_S + 20)
        .await
        .unwrap();
    let before = d.balance_of(sender.address()).await.unwrap();
    let p = restarted
        .refund_batch(d.deployment.escrow, &[(t3, p3), (t4, p4)])
        .await
        .unwrap();
    restarted.confirm(p, |_| {}).await.unwrap();
    assert_eq!(
        d.balance_of(sender.address()).await.unwrap(),
        before + U256::from(7_000_000u64)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broadcast_that_fails_leaves_no_gap() {
    let d = common::devnet().await;
    let key = PrivateKeySigner::random();
    let relayer = remesa_wallet::Relayer::new(d.chain.clone(), key.clone(), quick());
    let (t1, a1, _) = signed_deposit(&d, &anvil_dev_signer(1), 1_000_000, 3600).await;
    // No gas coin: the node refuses the raw transaction; nothing reached the mempool.
    let e = relayer.deposit(&t1, &a1).await.expect_err("unfunded");
    assert!(matches!(e, ChainError::RelayerUnfunded { .. }), "{e:?}");
    assert_eq!(relayer.next_nonce().await.unwrap(), 0);
    d.chain
        .provider()
        .anvil_set_balance(key.address(), U256::from(10u128.pow(18)))
        .await
        .unwrap();
    let p = relayer.deposit(&t1, &a1).await.unwrap();
    assert_eq!(p.nonce, 0, "the failed send did not use up a nonce");
    relayer.confirm(p, |_| {}).await.unwrap();
    assert_eq!(relayer.next_nonce().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn stuck_and_dropped_transactions_are_replaced_with_higher_fees() {
    let d = common::devnet().await;
    let config = RelayerConfig {
        bump_after: Duration::from_millis(300),
        max_bumps: 3,
        ..quick()
    };
    let relayer = d.relayer(0, config);
    let to = PrivateKeySigner::random().address();
    devnet::set_automine(&d.chain, false).await.unwrap();

    // Stuck: stays in the pool unmined; the relayer re-prices it, then a block includes the replacement.
    let p = relayer
        .mint(d.deployment.token, to, U256::from(5u8))
        .await
        .unwrap();
    let first = p.tx_hash();
    let nonce = p.nonce;
    let waiter = {
        let relayer = d.relayer(0, relayer.config().clone());
        tokio::spawn(async move { relayer.confirm(p, |_| {}).await })
    };
    tokio::time::sleep(Duration::from_millis(900)).await;
    devnet::mine(&d.chain).await.unwrap();
    let r = waiter.await.unwrap().unwrap();
    assert_eq!(r.nonce, nonce);
    assert_ne!(r.tx_hash, first, "a replacement was mined");
    assert!(r.replaced.contains(&first));
    let first_tx = d.chain.provider().get_transaction_by_hash(first).await.unwrap();
    assert!(first_tx.is_none(), "the original left the pool");

    // Dropped: the node forgets it; the relayer re-broadcasts with the same nonce.
    let p = relayer
        .mint(d.deployment.token, to, U256::from(7u8))
        .await
        .unwrap();
    assert_eq!(p.nonce, nonce + 1);
    d.chain.provider().anvil_drop_all_transactions().await.unwrap();
    let waiter = {
        let relayer = d.relayer(0, relayer.config().clone());
        tokio::spawn(async move { relayer.confirm(p, |_| {}).await })
    };
    tokio::time::sleep(Duration::from_millis(900)).await;
    devnet::mine(&d.chain).await.unwrap();
    let r = waiter.await.unwrap().unwrap();
    assert_eq!(r.nonce, nonce + 1);
    assert_eq!(d.balance_of(to).await.unwrap(), U256::from(12u8));
    // No gap, no duplicate: the next nonce follows.
    assert_eq!(relayer.next_nonce().await.unwrap(), nonce + 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn confirmation_wait_times_out() {
    let d = common::devnet().await;
    let relayer = d.relayer(
        0,
        RelayerConfig {
            confirm_timeout: Duration::from_secs(1),
            max_bumps: 0,
            ..quick()
        },
    );
    devnet::set_automine(&d.chain, false).await.unwrap();
    let p = relayer
        .mint(d.deployment.token, Address::repeat_byte(1), U256::from(1u8))
        .await
        .unwrap();
    let hash = p.tx_hash();
    let started = std::time::Instant::now();
    let e = relayer.confirm(p, |_| {}).await.expect_err("never mined");
    assert!(started.elapsed() < Duration::from_secs(5));
    match e {
        ChainError::ConfirmationTimeout { tx_hash, .. } => assert_eq!(tx_hash, hash),
        other => panic!("{other:?}"),
    }
    // More confirmations than blocks also time out (mined, but too shallow).
    devnet::set_automine(&d.chain, true).await.unwrap();
    let relayer = d.relayer(
        0,
        RelayerConfig {
            confirmations: 5,
            confirm_timeout: Duration::from_secs(1),
            ..quick()
        },
    );
    let e = relayer
        .send_and_confirm("mint", TxKind::Call(d.deployment.token), mint_calldata(), |_| {})
        .await
        .expect_err("too shallow");
    assert!(
        matches!(e, ChainError::ConfirmationTimeout { confirmations: 5, .. }),
        "{e:?}"
    );
}

fn mint_calldata() -> alloy::primitives::Bytes {
    use alloy::sol_types::SolCall;
    remesa_wallet::contracts::TestStablecoin::mintCall {
        to: Address::repeat_byte(2),
        amount: U256::from(1u8),
    }
    .abi_encode()
    .into()
}

#[tokio::test(flavor = "multi_thread")]
async fn gasless_transfer_permit_and_chain_checks() {
    let d = common::devnet().await;
    let chain = &d.chain;
    // Chain id checks, over HTTP and WebSocket.
    let e = Chain::connect(&d.endpoint(), Some(1), Duration::from_secs(5))
        .await
        .expect_err("mismatch");
    assert!(
        matches!(
            e,
            ChainError::ChainIdMismatch {
                expected: 1,
                actual: 31337,
                ..
            }
        ),
        "{e:?}"
    );
    let ws = Chain::connect(&d.ws_endpoint(), Some(31337), Duration::from_secs(5))
        .await
        .unwrap();
    let info = ws.token_info(d.deployment.token).await.unwrap();
    assert_eq!(
        (info.symbol.as_str(), info.decimals, info.name.as_str()),
        ("USDC", 6, "USD Coin")
    );

    // Gasless P2P.
    let sender = anvil_dev_signer(2);
    let to = PrivateKeySigner::random().address();
    let domain = chain.token_domain(d.deployment.token).await.unwrap();
    let t = AuthorizationTerms {
        from: sender.address(),
        to,
        value: U256::from(1_500_000u64),
        valid_after_unix_s: 0,
        valid_before_unix_s: chain.latest_timestamp().await.unwrap() + 600,
        nonce: eip3009::random_nonce(),
    };
    let auth = eip3009::sign_authorization(&sender, AuthorizationKind::Transfer, &domain, &t).unwrap();
    let relayer = d.relayer(3, quick());
    let p = relayer
        .transfer_with_authorization(d.deployment.token, &t, &auth)
        .await
        .unwrap();
    relayer.confirm(p, |_| {}).await.unwrap();
    assert_eq!(d.balance_of(to).await.unwrap(), U256::from(1_500_000u64));
    assert!(
        chain
            .authorization_used(d.deployment.token, sender.address(), t.nonce)
            .await
            .unwrap()
    );
    // Replaying it is refused before sending.
    let e = relayer
        .transfer_with_authorization(d.deployment.token, &t, &auth)
        .await
        .expect_err("replay");
    assert!(e.is_user_error(), "{e:?}");

    // EIP-2612 permit signed here is accepted by the token.
    let spender = anvil_dev_signer(3).address();
    let permit = PermitTerms {
        owner: sender.address(),
        spender,
        value: U256::from(9u8),
        nonce: chain
            .permit_nonce(d.deployment.token, sender.address())
            .await
            .unwrap(),
        deadline_unix_s: chain.latest_timestamp().await.unwrap() + 600,
    };
    let sig = eip3009::sign_permit(&sender, &domain, &permit).unwrap();
    use alloy::sol_types::SolCall;
    let call = remesa_wallet::contracts::TestStablecoin::permitCall {
        owner: permit.owner,
        spender,
        value: permit.value,
        deadline: U256::from(permit.deadline_unix_s),
        v: sig.v(),
        r: sig.r(),
        s: sig.s(),
    };
    relayer
        .send_and_confirm(
            "permit",
            TxKind::Call(d.deployment.token),
            call.abi_encode().into(),
            |_| {},
        )
        .await
        .unwrap();
    let token = remesa_wallet::contracts::TestStablecoin::new(d.deployment.token, chain.provider());
    assert_eq!(
        token.allowance(permit.owner, spender).call().await.unwrap(),
        U256::from(9u8)
    );
}
