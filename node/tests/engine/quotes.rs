use remesa::domain::IdempotencyKey;
use remesa::engine::{CreateRemittance, EngineConfig, EngineError, Recipient, SenderRef};

use crate::helpers::TestEnv;
use remesa_testkit::{both_dbs, pid};

fn key(s: &str) -> IdempotencyKey {
    IdempotencyKey::parse(s).expect("key")
}

fn create(quote_id: &str, user_id: &str) -> CreateRemittance {
    CreateRemittance {
        quote_id: quote_id.into(),
        sender: SenderRef::User {
            user_id: user_id.into(),
        },
        recipient: Recipient {
            phone: remesa_testkit::phone("+50255550101"),
            name: "Maria Lopez".into(),
            account: None,
        },
    }
}

async fn best_partner_and_rounding(t: TestEnv) {
    t.partner(1, "7.60", "1.00", 50).await;
    t.partner(2, "7.6543", "1.50", 75).await;
    t.engine.set_mid_market_rate("GTQ", "7.70").await.expect("mid");
    let q = t.engine.quote(TestEnv::quote_req("100")).await.expect("quote");
    assert_eq!(q.partner_id, 2, "partner 2 pays out more: {q:?}");
    assert_eq!(q.fee, "2.25");
    assert_eq!(q.total, "102.25");
    assert_eq!(q.payout_amount, "765.43");
    assert_eq!(q.all_in_cost, "2.843507");
    assert_eq!(q.all_in_cost_percent, "2.78");
    assert!(q.expires_at_unix_ms - q.created_at_unix_ms <= 300_000);
    // suspended partners are not eligible
    t.engine
        .set_partner_status(pid(2), "suspended")
        .await
        .expect("suspend");
    let q = t.engine.quote(TestEnv::quote_req("100")).await.expect("quote");
    assert_eq!(q.partner_id, 1);
    assert_eq!(q.payout_amount, "760.00");
    // outside limits, unknown corridor
    assert!(matches!(
        t.engine.quote(TestEnv::quote_req("5000")).await,
        Err(EngineError::Invalid(_))
    ));
    let mut other = TestEnv::quote_req("10");
    other.country = "MX".into();
    other.currency = None;
    assert!(matches!(t.engine.quote(other).await, Err(EngineError::NoRoute)));
    // the server caps the requested ttl
    let mut long = TestEnv::quote_req("10");
    long.ttl_s = Some(86_400);
    let q = t.engine.quote(long).await.expect("quote");
    assert_eq!(q.expires_at_unix_ms - q.created_at_unix_ms, 300_000);
}
both_dbs!(best_partner_and_rounding_t, best_partner_and_rounding);

async fn quotes_are_single_use_and_remittances_idempotent(t: TestEnv) {
    t.partner(1, "7.65", "1", 0).await;
    let u = t.user("u1").await;
    t.fund(&u.address, 1_000_000_000).await;
    let q = t.engine.quote(TestEnv::quote_req("10")).await.expect("quote");
    let (r1, created) = t
        .engine
        .create_remittance(create(&q.id, &u.id), &key("k1"))
        .await
        .expect("create");
    assert!(created);
    let (r2, created) = t
        .engine
        .create_remittance(create(&q.id, &u.id), &key("k1"))
        .await
        .expect("again");
    assert!(!created);
    assert_eq!(r1.id, r2.id);
    assert!(matches!(
        t.engine.create_remittance(create(&q.id, &u.id), &key("k2")).await,
        Err(EngineError::QuoteUsed)
    ));
    let q2 = t.engine.quote(TestEnv::quote_req("10")).await.expect("quote");
    assert!(matches!(
        t.engine
            .create_remittance(create(&q2.id, &u.id), &key("k1"))
            .await,
        Err(EngineError::IdempotencyMismatch)
    ));
    assert_eq!(t.job_count("deposit", &r1.id).await, 1);
}
both_dbs!(single_use_t, quotes_are_single_use_and_remittances_idempotent);

async fn insufficient_funds_are_refused(t: TestEnv) {
    t.partner(1, "7.65", "1", 0).await;
    let u = t.user("poor").await;
    t.fund(&u.address, 5_000_000).await; // 5 tokens
    let q = t.engine.quote(TestEnv::quote_req("10")).await.expect("quote");
    let e = t
        .engine
        .create_remittance(create(&q.id, &u.id), &key("k"))
        .await
        .expect_err("refused");
    assert!(matches!(e, EngineError::InsufficientFunds { .. }), "{e}");
    assert_eq!(e.to_string(), "insufficient funds: 5 available, 11 required");
    // the quote is still usable once funded
    t.fund(&u.address, 10_000_000).await;
    t.engine
        .create_remittance(create(&q.id, &u.id), &key("k"))
        .await
        .expect("funded now");
    let b = t.engine.balance(&u.address).await.expect("balance");
    assert_eq!(b.balance, "15.000000");
    assert_eq!(b.available, "4.000000");
}
both_dbs!(insufficient_funds_t, insufficient_funds_are_refused);

#[tokio::test]
async fn expired_quotes_are_refused() {
    let cfg = EngineConfig {
        quote_ttl_s_max: 1,
        quote_ttl_s_default: 1,
        ..EngineConfig::default()
    };
    let t = TestEnv::sqlite_with(cfg).await;
    t.partner(1, "7.65", "1", 0).await;
    let u = t.user("late").await;
    t.fund(&u.address, 100_000_000).await;
    let q = t.engine.quote(TestEnv::quote_req("10")).await.expect("quote");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(matches!(
        t.engine.create_remittance(create(&q.id, &u.id), &key("k")).await,
        Err(EngineError::QuoteExpired)
    ));
}

async fn users_are_idempotent_and_derived(t: TestEnv) {
    let a = t.user("same").await;
    let b = t.user("same").await;
    assert_eq!(a, b);
    let c = t.user("other").await;
    assert_ne!(a.address, c.address);
    // index 0 is the relayer: users start at 1 (the second well-known test account)
    assert_eq!(a.address, "0x70997970c51812dc3a010c7d01b50e0d17dc79c8");
    let found = t
        .engine
        .find_user_by_chat("WhatsApp", "same")
        .await
        .expect("find")
        .expect("some");
    assert_eq!(found.id, a.id);
    assert!(
        t.engine
            .register_user(remesa::engine::NewUser {
                channel: "x y".into(),
                external_id: "1".into(),
                ..Default::default()
            })
            .await
            .is_err()
    );
}
both_dbs!(users_t, users_are_idempotent_and_derived);

async fn remittance_list_pages_without_overlap(t: TestEnv) {
    use remesa::engine::{RemittanceFilter, State};
    t.partner(1, "7.65", "1", 0).await;
    let u = t.user("pager").await;
    t.fund(&u.address, 1_000_000_000).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let q = t.engine.quote(TestEnv::quote_req("10")).await.expect("quote");
        let (r, _) = t
            .engine
            .create_remittance(create(&q.id, &u.id), &key(&format!("page-{i}")))
            .await
            .expect("create");
        ids.push(r.id);
    }
    let filter = RemittanceFilter {
        sender_user_id: Some(u.id.clone()),
        ..RemittanceFilter::default()
    };
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = t
            .engine
            .list_remittances(&filter, cursor.as_deref(), 2)
            .await
            .expect("page");
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|r| r.id.clone()));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut expected = ids.clone();
    expected.sort();
    let mut got = seen.clone();
    got.sort();
    assert_eq!(got, expected, "every remittance exactly once");
    let by_state = RemittanceFilter {
        states: vec![State::Settled],
        ..RemittanceFilter::default()
    };
    assert!(
        t.engine
            .list_remittances(&by_state, None, 10)
            .await
            .expect("page")
            .items
            .is_empty()
    );
    assert!(matches!(
        t.engine.list_remittances(&filter, Some("garbage"), 2).await,
        Err(EngineError::Invalid(_))
    ));
}
both_dbs!(pages_t, remittance_list_pages_without_overlap);

/// A corrupt stored row is an error, never a plausible default: a negative fee in basis points, a negative partner
/// id in a transition, a transition detail that is not JSON.
async fn corrupt_rows_are_errors(t: TestEnv) {
    t.partner(1, "7.6", "1.00", 50).await;
    assert_eq!(t.engine.rates(pid(1)).await.expect("rates").len(), 1);
    let mut tx = t.db.db.begin().await.expect("begin");
    sqlx::query("UPDATE partner_rates SET fee_bps = -5 WHERE partner_id = 1")
        .execute(&mut *tx)
        .await
        .expect("corrupt the rate");
    tx.commit().await.expect("commit");
    let err = t
        .engine
        .rates(pid(1))
        .await
        .expect_err("a negative fee_bps is corrupt");
    assert!(
        matches!(&err, EngineError::Store(remesa::store::StoreError::Corrupt(m)) if m.contains("fee_bps")),
        "{err:?}"
    );
}
both_dbs!(corrupt_rows_t, corrupt_rows_are_errors);

/// Escrow v2: a partner's settlement address may not be zero, the escrow or the token, and the remittance's terms
/// (so its id, the nonce the sender signs) bind the partner's settlement address and signer as registered.
async fn partner_addresses_are_checked_and_bound_in_the_terms(t: TestEnv) {
    use alloy::primitives::{Address, B256, U256};
    use remesa::domain::PayoutMethod;
    use remesa::engine::NewPartner;
    use std::str::FromStr;
    let info = crate::helpers::chain_info();
    let partner = |settlement: Address, signer: Option<Address>| NewPartner {
        id: 9,
        name: "Checked".into(),
        countries: vec!["GT".into()],
        currencies: vec!["GTQ".into()],
        payout_methods: vec![PayoutMethod::CashPickup],
        public_key: crate::helpers::PARTNER_KEY_B64.into(),
        webhook_url: None,
        settlement_address: format!("{settlement:#x}"),
        signer_address: signer.map(|a| format!("{a:#x}")),
    };
    for (settlement, signer) in [
        (Address::ZERO, None),
        (info.escrow, None),
        (info.token, None),
        (Address::repeat_byte(0x09), Some(Address::ZERO)),
    ] {
        let e = t
            .engine
            .add_partner(partner(settlement, signer))
            .await
            .expect_err("a settlement address or signer that would lose money was accepted");
        assert!(matches!(e, EngineError::Invalid(_)), "{e:?}");
    }
    let signer = Address::repeat_byte(0x5a);
    let p = t
        .engine
        .add_partner(partner(Address::repeat_byte(0x09), Some(signer)))
        .await
        .expect("partner");
    assert_eq!(p.signer_address, format!("{signer:#x}"));

    t.partner(1, "7.65", "1", 0).await;
    let u = t.user("u1").await;
    t.fund(&u.address, 1_000_000_000).await;
    let q = t.engine.quote(TestEnv::quote_req("10")).await.expect("quote");
    let (r, _) = t
        .engine
        .create_remittance(create(&q.id, &u.id), &key("bound"))
        .await
        .expect("create");
    let partner = t
        .engine
        .partner(pid(r.partner_id))
        .await
        .expect("get")
        .expect("partner");
    // Partner 1 gave no signer: its settlement address signs.
    assert_eq!(partner.signer_address, partner.settlement_address);
    let terms = remesa::chain::Terms {
        sender: Address::from_str(&r.sender_address).expect("sender"),
        amount_base_units: U256::from_str(&r.total_base_units).expect("total"),
        partner_id: r.partner_id,
        expiry_unix_s: r.expiry_unix_s,
        settlement: Address::from_str(&partner.settlement_address).expect("settlement"),
        partner_signer: Address::from_str(&partner.signer_address).expect("signer"),
        claim_hash: B256::from_str(&r.claim_hash).expect("claim hash"),
    };
    assert_eq!(format!("{:#x}", terms.remittance_id(info.escrow)), r.id);
}
both_dbs!(
    partner_addresses_t,
    partner_addresses_are_checked_and_bound_in_the_terms
);
