//! Issue 2's end-to-end contract test: anvil, both contracts deployed from the committed artifacts, a partner,
//! a signed receive authorization, deposit, release with the preimage, and a refund after time travel.
#![allow(clippy::unwrap_used)]

mod common;

use alloy::primitives::U256;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolEvent;
use remesa_wallet::batches::Placement;
use remesa_wallet::contracts::{EscrowStatus, RemittanceEscrow};
use remesa_wallet::devnet;
use remesa_wallet::eip3009::{self, AuthorizationKind, AuthorizationTerms};
use remesa_wallet::relayer::{ReceiptSummary, RelayerConfig};
use remesa_wallet::terms::{ClaimSecret, RemittanceTerms};

fn events<E: SolEvent>(r: &ReceiptSummary) -> Vec<E> {
    r.receipt
        .inner
        .logs()
        .iter()
        .filter_map(|l| E::decode_log(&l.inner).ok().map(|d| d.data))
        .collect()
}

/// On the devnet's token, real USDC (FiatTokenV2_2 behind its proxy): its EIP-712 domain comes from `name()` and
/// `version()` (it has no `eip712Domain()`) and matches its `DOMAIN_SEPARATOR()`.
#[tokio::test(flavor = "multi_thread")]
async fn deposit_release_refund_against_the_deployed_contracts() {
    let d = common::devnet().await;
    deposit_release_refund(d, ("USD Coin", "2")).await;
}

/// The same on TestStablecoin, whose domain comes from `eip712Domain()`.
#[tokio::test(flavor = "multi_thread")]
async fn deposit_release_refund_on_the_test_stablecoin() {
    let d = devnet::LocalDevnet::start_with(&[], devnet::DevnetToken::TestStablecoin)
        .await
        .unwrap();
    deposit_release_refund(d, ("Test Dollar", "1")).await;
}

async fn deposit_release_refund(d: devnet::LocalDevnet, expected_domain: (&str, &str)) {
    let chain = &d.chain;
    let (token, escrow) = (d.deployment.token, d.deployment.escrow);
    // Register a second partner with a fresh settlement address and signer.
    let owner = d.relayer(0, RelayerConfig::default());
    let settlement = PrivateKeySigner::random().address();
    let partner_key = PrivateKeySigner::random();
    let partner_signer = partner_key.address();
    use alloy::sol_types::SolCall;
    let set_partner = |settlement, signer| {
        let call = RemittanceEscrow::setPartnerCall {
            partnerId: 42,
            settlement,
            signer,
        };
        owner.send_and_confirm(
            "setPartner",
            alloy::primitives::TxKind::Call(escrow),
            call.abi_encode().into(),
            |_| {},
        )
    };
    set_partner(settlement, partner_signer).await.unwrap();
    let from_block = d.deployment.deploy_block;
    assert_eq!(
        chain.partner_registration(escrow, 42, from_block).await.unwrap(),
        Some((settlement, partner_signer))
    );
    assert_eq!(
        chain.partner_registration(escrow, 43, from_block).await.unwrap(),
        None
    );

    // A sender with a local key, funded by the minter.
    let sender = PrivateKeySigner::random();
    let amount = U256::from(250_000_000u64); // 250 tokens
    owner
        .send_and_confirm(
            "mint",
            alloy::primitives::TxKind::Call(token),
            remesa_wallet::contracts::TestStablecoin::mintCall {
                to: sender.address(),
                amount: amount * U256::from(2u8),
            }
            .abi_encode()
            .into(),
            |_| {},
        )
        .await
        .unwrap();

    let domain = chain.token_domain(token).await.unwrap();
    assert_eq!((domain.name.as_str(), domain.version.as_str()), expected_domain);
    let now = chain.latest_timestamp().await.unwrap();
    let sign = |terms: &RemittanceTerms| {
        let t = AuthorizationTerms {
            from: sender.address(),
            to: escrow,
            value: terms.amount_base_units,
            valid_after_unix_s: 0,
            valid_before_unix_s: now + 3600,
            nonce: terms.id(),
        };
        eip3009::sign_authorization(&sender, AuthorizationKind::Receive, &domain, &t).unwrap()
    };
    // The relayer pays the gas (the sender has none).
    let relayer = d.relayer(4, RelayerConfig::default());

    // 1. Deposit, then release with the claim preimage (salt ‖ pickup code).
    let code = ClaimSecret::generate();
    let terms = RemittanceTerms {
        escrow,
        sender: sender.address(),
        amount_base_units: amount,
        partner_id: 42,
        settlement,
        partner_signer,
        expires_at_unix_s: now + 86_400,
        claim_hash: code.claim_hash(),
    };
    let p = relayer.deposit(&terms, &sign(&terms)).await.unwrap();
    let r = relayer.confirm(p, |_| {}).await.unwrap();
    let deposited = events::<RemittanceEscrow::Deposited>(&r);
    assert_eq!(deposited.len(), 1);
    // Deposited alone: a batch of one, whose root is the id (our terms hash); the event names its sender and amount.
    assert_eq!(
        deposited[0].root,
        terms.id(),
        "the event's root is our terms hash"
    );
    assert_eq!(deposited[0].leaves, vec![terms.id()]);
    let batch = remesa_wallet::batches::DepositedBatch::from_event(
        deposited[0].root,
        deposited[0].leaves.clone(),
        &deposited[0].senderAmounts,
    );
    assert_eq!((batch.senders[0], batch.amounts[0]), (sender.address(), amount));
    let placement = chain
        .escrow_placement(escrow, terms.id(), from_block)
        .await
        .unwrap()
        .expect("found among the escrow's deposits");
    assert_eq!(placement, Placement::single(terms.id()));
    assert_eq!(
        chain.escrow_status(escrow, terms.id(), from_block).await.unwrap(),
        EscrowStatus::Locked
    );
    assert_eq!(d.balance_of(escrow).await.unwrap(), amount);

    // The owner points partner 42 at another address: new deposits must name it, but the locked remittance still
    // pays the settlement address its sender signed.
    let redirected = PrivateKeySigner::random().address();
    set_partner(redirected, partner_signer).await.unwrap();
    assert_eq!(
        chain.partner_registration(escrow, 42, from_block).await.unwrap(),
        Some((redirected, partner_signer))
    );

    let p = relayer
        .release(&terms, code.preimage(), &placement)
        .await
        .unwrap();
    let r = relayer.confirm(p, |_| {}).await.unwrap();
    let released = events::<RemittanceEscrow::Released>(&r);
    let settled = events::<RemittanceEscrow::Settled>(&r);
    assert_eq!(released.len(), 1);
    assert_eq!(
        (released[0].root, released[0].partnerId, released[0].bits),
        (terms.id(), 42, U256::from(1u8))
    );
    assert_eq!(settled.len(), 1);
    assert_eq!(
        (settled[0].partnerId, settled[0].settlement, settled[0].amount),
        (42, settlement, amount)
    );
    assert_eq!(d.balance_of(settlement).await.unwrap(), amount);
    assert_eq!(d.balance_of(redirected).await.unwrap(), U256::ZERO);
    assert_eq!(
        chain.escrow_status(escrow, terms.id(), from_block).await.unwrap(),
        EscrowStatus::Released
    );

    // 2. Another with a short expiry (the devnet escrow's shortest lock, a minute): time travel, refund by anyone
    // (the relayer). New deposits name the partner's current settlement address.
    let code2 = ClaimSecret::generate();
    let terms2 = RemittanceTerms {
        settlement: redirected,
        expires_at_unix_s: now + devnet::DEVNET_MIN_LOCK_S + 30,
        claim_hash: code2.claim_hash(),
        ..terms
    };
    let p = relayer.deposit(&terms2, &sign(&terms2)).await.unwrap();
    relayer.confirm(p, |_| {}).await.unwrap();
    assert_eq!(d.balance_of(sender.address()).await.unwrap(), U256::ZERO);
    // Too early: refused by the contract before anything is sent.
    let placement2 = Placement::single(terms2.id());
    let early = relayer
        .refund(&terms2, &placement2)
        .await
        .expect_err("not expired");
    assert!(
        early.is_user_error() && early.to_string().contains("NotExpired"),
        "{early}"
    );
    devnet::increase_time(chain, 120).await.unwrap();
    // At or after expiry the partner can no longer be released (the sender may refund): no race.
    let late = relayer
        .release(&terms2, code2.preimage(), &placement2)
        .await
        .expect_err("expired");
    assert!(
        late.is_user_error() && late.to_string().contains("Expired"),
        "{late}"
    );
    let p = relayer.refund(&terms2, &placement2).await.unwrap();
    let r = relayer.confirm(p, |_| {}).await.unwrap();
    let refunded = events::<RemittanceEscrow::Refunded>(&r);
    assert_eq!(refunded.len(), 1);
    assert_eq!(
        (refunded[0].id, refunded[0].sender, refunded[0].amount),
        (terms2.id(), sender.address(), amount)
    );
    assert_eq!(d.balance_of(sender.address()).await.unwrap(), amount);
    assert_eq!(d.balance_of(escrow).await.unwrap(), U256::ZERO);
    assert_eq!(
        chain
            .escrow_status(escrow, terms2.id(), from_block)
            .await
            .unwrap(),
        EscrowStatus::Refunded
    );

    // 3. Cooperative cancel: before expiry, the partner signer's EIP-712 Decline(id) refunds the sender.
    let now = chain.latest_timestamp().await.unwrap();
    let terms3 = RemittanceTerms {
        settlement: redirected,
        expires_at_unix_s: now + 86_400,
        claim_hash: ClaimSecret::generate().claim_hash(),
        ..terms
    };
    let id3 = terms3.id();
    let p = relayer.deposit(&terms3, &sign(&terms3)).await.unwrap();
    relayer.confirm(p, |_| {}).await.unwrap();
    let e = RemittanceEscrow::new(escrow, chain.provider());
    assert_eq!(
        e.declineDigest(id3).call().await.unwrap(),
        remesa_wallet::terms::decline_digest(chain.chain_id(), escrow, id3),
        "the wallet's Decline digest is the escrow's"
    );
    let stranger = PrivateKeySigner::random();
    let forged = remesa_wallet::terms::sign_decline(&stranger, chain.chain_id(), escrow, id3).unwrap();
    let refused = relayer
        .cancel(&terms3, &Placement::single(id3), &forged)
        .await
        .expect_err("a stranger's decline");
    assert!(
        refused.is_user_error() && refused.to_string().contains("BadDeclineSignature"),
        "{refused}"
    );
    let decline = remesa_wallet::terms::sign_decline(&partner_key, chain.chain_id(), escrow, id3).unwrap();
    let p = relayer
        .cancel(&terms3, &Placement::single(id3), &decline)
        .await
        .unwrap();
    let r = relayer.confirm(p, |_| {}).await.unwrap();
    assert_eq!(events::<RemittanceEscrow::Canceled>(&r).len(), 1);
    assert_eq!(events::<RemittanceEscrow::Refunded>(&r).len(), 1);
    assert_eq!(d.balance_of(sender.address()).await.unwrap(), amount);
    assert_eq!(
        chain.escrow_status(escrow, id3, from_block).await.unwrap(),
        EscrowStatus::Refunded
    );
}
