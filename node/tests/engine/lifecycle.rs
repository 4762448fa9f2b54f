use std::str::FromStr;

use alloy::primitives::B256;
use remesa::chain::{ChainEventSink, RemovedEvent, RolledBack};
use remesa::domain::{IdempotencyKey, PickupCode};
use remesa::engine::{CreateRemittance, EngineError, PayoutProof, Recipient, SenderRef, State};

use crate::helpers::TestEnv;
use remesa_testkit::{both_dbs, pid, rid};

async fn setup(t: &TestEnv) -> (remesa::engine::Remittance, String) {
    t.partner(1, "7.65", "1", 0).await;
    let u = t.user("sender").await;
    t.fund(&u.address, 50_000_000).await;
    let q = t.engine.quote(TestEnv::quote_req("10")).await.expect("quote");
    let (r, _) = t
        .engine
        .create_remittance(
            CreateRemittance {
                quote_id: q.id,
                sender: SenderRef::User {
                    user_id: u.id.clone(),
                },
                recipient: Recipient {
                    phone: remesa_testkit::phone("+50255550101"),
                    name: "Maria".into(),
                    account: None,
                },
            },
            &IdempotencyKey::parse("wamid.1").expect("key"),
        )
        .await
        .expect("create");
    (r, u.address)
}

async fn happy_path_books_and_settles(t: TestEnv) {
    let (r, sender) = setup(&t).await;
    assert_eq!(r.state, State::PendingFunds);
    assert_eq!(r.total_base_units, "11000000");
    // illegal before the lock
    assert!(matches!(
        t.engine.payout_accepted(&rid(&r.id), pid(1)).await,
        Err(EngineError::Conflict(_))
    ));
    t.deposit(&r.id, &sender, 11_000_000).await;
    assert_eq!(t.ledger_ok().await, 11_000_000);
    let got = t
        .engine
        .remittance(&rid(&r.id))
        .await
        .expect("get")
        .expect("some");
    assert_eq!(got.state, State::PayoutAssigned);
    assert!(got.lock_tx_hash.is_some());
    // another partner cannot see or touch it (a sender's cancel once locked: `cancel_window`)
    assert!(matches!(
        t.engine.payout_accepted(&rid(&r.id), pid(2)).await,
        Err(EngineError::NotFound(_))
    ));
    t.engine
        .payout_accepted(&rid(&r.id), pid(1))
        .await
        .expect("accept");
    t.engine
        .payout_accepted(&rid(&r.id), pid(1))
        .await
        .expect("accept again is harmless");
    let wrong = PayoutProof::PickupCode {
        code: "0000-0000-0000".into(),
    };
    assert!(matches!(
        t.engine.payout_paid(&rid(&r.id), pid(1), wrong).await,
        Err(EngineError::Invalid(_))
    ));
    // The code the chat delivers to the recipient: derived from the claim key, never stored.
    let code = t
        .engine
        .pickup_code(&rid(&r.id))
        .await
        .expect("code")
        .expect("cash pickup");
    let secret = t.claim_secret(&r.id).await;
    assert_eq!(secret.code(), &code);
    let stored: Vec<String> = sqlx::query_scalar("SELECT pickup_lookup FROM remittances WHERE id = $1")
        .bind(&r.id)
        .fetch_all(&t.db.db.pool)
        .await
        .expect("lookup column");
    assert!(
        stored[0].starts_with("0x") && !stored[0].contains(code.expose()),
        "a keyed hash, not the code"
    );
    let by_code = t
        .engine
        .find_by_pickup_code(1, &code)
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(by_code.id, r.id);
    assert!(
        t.engine
            .find_by_pickup_code(2, &code)
            .await
            .expect("lookup")
            .is_none()
    );
    let paid = t
        .engine
        .payout_paid(
            &rid(&r.id),
            pid(1),
            PayoutProof::PickupCode {
                code: code.display_grouped().to_lowercase(),
            },
        )
        .await
        .expect("paid");
    assert_eq!(paid.state, State::Paid);
    assert_eq!(t.job_count("release", &r.id).await, 1);
    t.release(&r.id, 11_000_000, 1).await;
    assert_eq!(t.ledger_ok().await, 0);
    let partner = remesa::engine::ledger::balance(&t.db.db.pool, "partner:1")
        .await
        .expect("partner");
    assert_eq!(partner, 11_000_000);
    assert_eq!(
        t.states(&r.id).await,
        [
            "quoted",
            "pending_funds",
            "funds_locked",
            "payout_assigned",
            "payout_accepted",
            "paid",
            "settled"
        ]
    );
    let b = t.engine.balance(&sender).await.expect("balance");
    assert_eq!(b.balance_base_units, "39000000");
    // the feed is strictly increasing and pages
    let first = t.engine.events_after(0, 3, None).await.expect("feed");
    assert_eq!(first.len(), 3);
    let rest = t
        .engine
        .events_after(first[2].seq, 100, None)
        .await
        .expect("feed");
    assert_eq!(rest.len(), 4);
    assert!(
        first
            .iter()
            .chain(rest.iter())
            .collect::<Vec<_>>()
            .windows(2)
            .all(|w| w[0].seq < w[1].seq)
    );
    assert!(
        t.engine
            .events_after(0, 100, Some(2))
            .await
            .expect("feed")
            .is_empty()
    );
    // replaying an event is harmless (booked once by source)
    let again = t.engine.history(&rid(&r.id)).await.expect("history").len();
    assert_eq!(again, 7);
}
both_dbs!(happy_path_t, happy_path_books_and_settles);

async fn failed_payout_refunds_at_expiry(t: TestEnv) {
    let (r, sender) = setup(&t).await;
    t.deposit(&r.id, &sender, 11_000_000).await;
    t.engine
        .payout_failed(&rid(&r.id), pid(1), "recipient unreachable", None)
        .await
        .expect("fail");
    // the keeper asks for expired remittances with chain time
    let mut tx = t.db.db.begin().await.expect("tx");
    let none = t
        .engine
        .expired_locked(&mut tx, r.expiry_unix_s - 1, 10)
        .await
        .expect("expired");
    assert!(none.is_empty());
    let jobs = t
        .engine
        .expired_locked(&mut tx, r.expiry_unix_s, 10)
        .await
        .expect("expired");
    assert_eq!(jobs.len(), 1);
    assert_eq!(format!("{:#x}", jobs[0].remittance_id), r.id);
    tx.commit().await.expect("commit");
    t.refund(&r.id, &sender, 11_000_000).await;
    assert_eq!(t.ledger_ok().await, 0);
    assert_eq!(
        t.engine.balance(&sender).await.expect("b").balance_base_units,
        "50000000"
    );
    assert_eq!(
        t.states(&r.id).await,
        [
            "quoted",
            "pending_funds",
            "funds_locked",
            "payout_assigned",
            "refund_pending",
            "refunded"
        ]
    );
}
both_dbs!(refund_t, failed_payout_refunds_at_expiry);

async fn expiry_moves_locked_remittances_to_refund(t: TestEnv) {
    let (r, sender) = setup(&t).await;
    t.deposit(&r.id, &sender, 11_000_000).await;
    let mut tx = t.db.db.begin().await.expect("tx");
    let jobs = t
        .engine
        .expired_locked(&mut tx, r.expiry_unix_s + 10, 10)
        .await
        .expect("expired");
    assert_eq!(jobs.len(), 1);
    tx.commit().await.expect("commit");
    let got = t
        .engine
        .remittance(&rid(&r.id))
        .await
        .expect("get")
        .expect("some");
    assert_eq!(got.state, State::RefundPending);
}
both_dbs!(expiry_t, expiry_moves_locked_remittances_to_refund);

async fn reorg_rolls_back_deposit(t: TestEnv) {
    let (r, sender) = setup(&t).await;
    let meta = t.deposit(&r.id, &sender, 11_000_000).await;
    assert_eq!(t.ledger_ok().await, 11_000_000);
    let mut tx = t.db.db.begin().await.expect("tx");
    t.engine
        .on_rolled_back(
            &mut tx,
            &RolledBack {
                from_block: meta.block_number,
                to_block: meta.block_number,
                events: vec![RemovedEvent {
                    id: meta.id.clone(),
                    kind: "deposited".into(),
                    block_number: meta.block_number,
                    remittance_id: Some(B256::from_str(&r.id).expect("id")),
                }],
            },
        )
        .await
        .expect("rollback");
    tx.commit().await.expect("commit");
    assert_eq!(t.ledger_ok().await, 0);
    let got = t
        .engine
        .remittance(&rid(&r.id))
        .await
        .expect("get")
        .expect("some");
    assert_eq!(got.state, State::PendingFunds);
    // the replacement deposit (new block) locks it again
    t.deposit(&r.id, &sender, 11_000_000).await;
    assert_eq!(t.ledger_ok().await, 11_000_000);
    let states = t.states(&r.id).await;
    assert_eq!(states.last().map(String::as_str), Some("payout_assigned"));
    assert!(states.contains(&"pending_funds".to_owned()));
}
both_dbs!(reorg_t, reorg_rolls_back_deposit);

async fn cancel_before_lock_and_late_funds(t: TestEnv) {
    let (r, sender) = setup(&t).await;
    let c = t.engine.cancel(&rid(&r.id), None).await.expect("cancel");
    assert_eq!(c.state, State::Cancelled);
    // funds that arrive anyway are refunded at expiry
    t.deposit(&r.id, &sender, 11_000_000).await;
    let got = t
        .engine
        .remittance(&rid(&r.id))
        .await
        .expect("get")
        .expect("some");
    assert_eq!(got.state, State::RefundPending);
    let bal = t.engine.balance(&sender).await.expect("b");
    assert_eq!(bal.balance_base_units, "39000000");
    let _ = PickupCode::generate();
}
both_dbs!(cancel_t, cancel_before_lock_and_late_funds);

async fn self_custody_sender_signs(t: TestEnv) {
    use alloy::signers::local::PrivateKeySigner;
    use remesa::engine::AuthorizationInput;
    use remesa::engine::authorization::{AuthTerms, sign, signature_hex};

    t.partner(1, "7.65", "1", 0).await;
    let wallet = PrivateKeySigner::random();
    let q = t.engine.quote(TestEnv::quote_req("20")).await.expect("quote");
    let (r, _) = t
        .engine
        .create_remittance(
            CreateRemittance {
                quote_id: q.id,
                sender: SenderRef::Address {
                    address: format!("{:#x}", wallet.address()),
                    name: None,
                },
                recipient: Recipient {
                    phone: remesa_testkit::phone("+50255550101"),
                    name: "Maria".into(),
                    account: None,
                },
            },
            &IdempotencyKey::parse("self-1").expect("key"),
        )
        .await
        .expect("create");
    assert_eq!(r.state, State::Quoted);
    assert!(!r.custodial);
    let req = r.authorization_request.clone().expect("something to sign");
    assert_eq!(req.nonce, r.id);
    assert_eq!(req.value_base_units, "21000000");
    assert_eq!(t.job_count("deposit", &r.id).await, 0);
    let terms = AuthTerms {
        from: wallet.address(),
        escrow: req.to.parse().expect("escrow"),
        value: alloy::primitives::U256::from(21_000_000u64),
        valid_after_unix_s: 0,
        valid_before_unix_s: req.valid_before_unix_s,
        nonce: B256::from_str(&r.id).expect("id"),
    };
    let domain = crate::helpers::chain_info().domain;
    // a signature by someone else, or over other terms, is refused
    let other = sign(&PrivateKeySigner::random(), &domain, &terms).expect("sign");
    let input = |a: &remesa::chain::Authorization| AuthorizationInput {
        signature: signature_hex(a),
        valid_after_unix_s: 0,
        valid_before_unix_s: req.valid_before_unix_s,
    };
    assert!(matches!(
        t.engine.authorize(&rid(&r.id), input(&other)).await,
        Err(EngineError::Invalid(_))
    ));
    let cheaper = sign(
        &wallet,
        &domain,
        &AuthTerms {
            value: alloy::primitives::U256::from(1u64),
            ..terms
        },
    )
    .expect("sign");
    assert!(matches!(
        t.engine.authorize(&rid(&r.id), input(&cheaper)).await,
        Err(EngineError::Invalid(_))
    ));
    let good = sign(&wallet, &domain, &terms).expect("sign");
    let authorized = t
        .engine
        .authorize(&rid(&r.id), input(&good))
        .await
        .expect("authorize");
    assert_eq!(authorized.state, State::PendingFunds);
    assert!(authorized.authorization_request.is_none());
    assert_eq!(t.job_count("deposit", &r.id).await, 1);
    assert!(matches!(
        t.engine.authorize(&rid(&r.id), input(&good)).await,
        Err(EngineError::Conflict(_))
    ));
}
both_dbs!(self_custody_t, self_custody_sender_signs);

async fn never_authorized_remittances_expire(t: TestEnv) {
    t.partner(1, "7.65", "1", 0).await;
    let q = t.engine.quote(TestEnv::quote_req("20")).await.expect("quote");
    let (r, _) = t
        .engine
        .create_remittance(
            CreateRemittance {
                quote_id: q.id,
                sender: SenderRef::Address {
                    address: "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc".into(),
                    name: None,
                },
                recipient: Recipient {
                    phone: remesa_testkit::phone("+50255550101"),
                    name: "Maria".into(),
                    account: None,
                },
            },
            &IdempotencyKey::parse("self-2").expect("key"),
        )
        .await
        .expect("create");
    assert_eq!(
        t.engine
            .expire_stale(r.expiry_unix_s - 1, 10)
            .await
            .expect("sweep"),
        0
    );
    assert_eq!(
        t.engine.expire_stale(r.expiry_unix_s, 10).await.expect("sweep"),
        1
    );
    assert_eq!(t.states(&r.id).await, ["quoted", "expired"]);
    // pruning keeps what is recent
    let (keys, quotes) = t.engine.prune(remesa::store::now_ms()).await.expect("prune");
    assert_eq!((keys, quotes), (0, 0));
}
both_dbs!(expire_t, never_authorized_remittances_expire);

async fn refused_deposits_fail_the_remittance(t: TestEnv) {
    use remesa::chain::{FailedJob, JobKind, SkipReason, Skipped};
    let (r, _) = setup(&t).await;
    let mut tx = t.db.db.begin().await.expect("tx");
    let token_says = |reason: &str| -> alloy::primitives::Bytes {
        use alloy::sol_types::SolError;
        alloy::sol_types::Revert::from(reason).abi_encode().into()
    };
    // WrongState (already deposited) is not a failure; nor is a token that is paused (the outbox retries it) or a
    // blacklisted sender (the outbox fails the job, see job_failed below).
    for (reason, detail) in [
        (SkipReason::WrongState, Default::default()),
        (SkipReason::AuthorizationFailed, token_says("Pausable: paused")),
        (
            SkipReason::AuthorizationFailed,
            token_says("Blacklistable: account is blacklisted"),
        ),
        (SkipReason::AuthorizationFailed, Default::default()),
    ] {
        t.engine
            .on_skipped(
                &mut tx,
                &Skipped {
                    meta: t.meta(),
                    remittance_id: B256::from_str(&r.id).expect("id"),
                    reason,
                    detail,
                    batch: Some(JobKind::Deposit),
                },
            )
            .await
            .expect("skipped");
    }
    tx.commit().await.expect("commit");
    assert_eq!(
        t.engine
            .remittance(&rid(&r.id))
            .await
            .expect("get")
            .expect("some")
            .state,
        State::PendingFunds
    );
    let mut tx = t.db.db.begin().await.expect("tx");
    t.engine
        .on_skipped(
            &mut tx,
            &Skipped {
                meta: t.meta(),
                remittance_id: B256::from_str(&r.id).expect("id"),
                reason: SkipReason::AuthorizationFailed,
                detail: token_says("FiatTokenV2: invalid signature"),
                batch: Some(JobKind::Deposit),
            },
        )
        .await
        .expect("skipped");
    tx.commit().await.expect("commit");
    let got = t
        .engine
        .remittance(&rid(&r.id))
        .await
        .expect("get")
        .expect("some");
    assert_eq!(got.state, State::Failed);
    assert!(
        got.failure_reason
            .expect("reason")
            .contains("AuthorizationFailed: FiatTokenV2: invalid signature")
    );
    // the funds are available again
    let b = t.engine.balance(&got.sender_address).await.expect("balance");
    assert_eq!(b.available, b.balance);
    // a second remittance whose deposit job gives up fails too
    let q = t.engine.quote(TestEnv::quote_req("5")).await.expect("quote");
    let (r2, _) = t
        .engine
        .create_remittance(
            CreateRemittance {
                quote_id: q.id,
                sender: SenderRef::User {
                    user_id: got.sender_user_id.clone().expect("user"),
                },
                recipient: Recipient {
                    phone: remesa_testkit::phone("+50255550101"),
                    name: "Maria".into(),
                    account: None,
                },
            },
            &IdempotencyKey::parse("wamid.2").expect("key"),
        )
        .await
        .expect("create");
    let mut tx = t.db.db.begin().await.expect("tx");
    t.engine
        .on_job_failed(
            &mut tx,
            &FailedJob {
                job_id: "j".into(),
                kind: JobKind::Deposit,
                remittance_id: B256::from_str(&r2.id).expect("id"),
                attempts: 10,
                error: "gas estimate failed".into(),
            },
        )
        .await
        .expect("failed");
    tx.commit().await.expect("commit");
    assert_eq!(t.states(&r2.id).await, ["quoted", "pending_funds", "failed"]);
}
both_dbs!(refused_t, refused_deposits_fail_the_remittance);

/// A locked remittance cancelled by its sender within the window goes to refund_pending (the partner can no longer
/// pay it); after the window, a cancel is refused and says why.
async fn cancel_window(t: TestEnv) {
    let (r, sender) = setup(&t).await;
    t.deposit(&r.id, &sender, 11_000_000).await;
    let someone_else = t.engine.cancel(&rid(&r.id), Some("another-user")).await;
    assert!(
        matches!(someone_else, Err(EngineError::NotFound(_))),
        "{someone_else:?}"
    );
    let user = t
        .engine
        .user_by_address(&sender)
        .await
        .expect("user")
        .expect("some");
    let c = t
        .engine
        .cancel(&rid(&r.id), Some(&user.id))
        .await
        .expect("cancel");
    assert_eq!(c.state, State::RefundPending);
    let again = t.engine.cancel(&rid(&r.id), Some(&user.id)).await.expect("again");
    assert_eq!(again.state, State::RefundPending);
    let history = t.engine.history(&rid(&r.id)).await.expect("history");
    assert_eq!(history.last().map(|e| e.cause.as_str()), Some("sender_cancelled"));
    let paid = t.engine.payout_accepted(&rid(&r.id), pid(1)).await;
    assert!(matches!(paid, Err(EngineError::Conflict(_))), "{paid:?}");
    assert_eq!(
        t.ledger_ok().await,
        11_000_000,
        "still in escrow until the refund"
    );
}
both_dbs!(
    a_locked_remittance_can_be_cancelled_within_the_window,
    cancel_window
);

#[tokio::test]
async fn after_the_window_a_locked_remittance_is_not_cancelled() {
    let db = remesa_testkit::TestDb::sqlite().await.expect("sqlite");
    let t = TestEnv::with_config(
        db,
        remesa::engine::EngineConfig {
            cancel_window_s: 0,
            ..remesa::engine::EngineConfig::default()
        },
    );
    let (r, sender) = setup(&t).await;
    t.deposit(&r.id, &sender, 11_000_000).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    match t.engine.cancel(&rid(&r.id), None).await {
        Err(EngineError::Conflict(m)) => assert!(m.contains("cancellation window"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}
