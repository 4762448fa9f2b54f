//! Sending limits per KYC tier and corridor, checked in the transaction that uses the quote: refusals name the
//! window and what is left, are recorded as compliance events, and concurrent sends cannot pass a limit together.

use std::str::FromStr;

use remesa::config::compliance::{LimitRule, parse_limits};
use remesa::domain::IdempotencyKey;
use remesa::engine::{CreateRemittance, EngineConfig, EngineError, LimitWindow, Recipient, SenderRef};
use remesa_testkit::{FromTestDb, TestDb, both_dbs, run_on};
use rust_decimal::Decimal;

use crate::helpers::TestEnv;

/// Tier 0: 50 USD per transfer, 100 USD in 24 hours, 150 USD in 30 days; Mexico: 20 USD per transfer.
struct Limited(TestEnv);

impl FromTestDb for Limited {
    async fn from_test_db(db: TestDb) -> Self {
        let rule = |country: &str, tx: &str, day: Option<&str>, month: Option<&str>| LimitRule {
            tier: 0,
            country: country.into(),
            per_tx_usd: Some(tx.into()),
            per_day_usd: day.map(Into::into),
            per_30d_usd: month.map(Into::into),
        };
        let limits = parse_limits(&[
            rule("*", "50", Some("100"), Some("150")),
            rule("MX", "20", None, None),
        ])
        .expect("rules");
        Limited(TestEnv::with_config(
            db,
            EngineConfig {
                limits,
                ..EngineConfig::default()
            },
        ))
    }
}

async fn send(t: &TestEnv, user_id: &str, amount: &str, key: &str) -> Result<(), EngineError> {
    let q = t.engine.quote(TestEnv::quote_req(amount)).await.expect("quote");
    t.engine
        .create_remittance(
            CreateRemittance {
                quote_id: q.id,
                sender: SenderRef::User {
                    user_id: user_id.to_owned(),
                },
                recipient: Recipient {
                    phone: remesa_testkit::phone("+50255550101"),
                    name: "Maria".into(),
                    account: None,
                },
            },
            &IdempotencyKey::parse(key).expect("key"),
        )
        .await
        .map(|_| ())
}

/// Partner 1 (GT, 7.65, 1 USD fee) and a sender holding 1,000 USD.
async fn funded_sender(t: &TestEnv) -> remesa::engine::User {
    t.partner(1, "7.65", "1", 0).await;
    let u = t.user("sender").await;
    t.fund(&u.address, 1_000_000_000).await;
    u
}

/// Asserts a refusal by `window` with that limit and what is left (USD).
fn refused(result: Result<(), EngineError>, want: LimitWindow, limit: &str, left: &str) {
    match result {
        Err(EngineError::LimitExceeded {
            window,
            limit_usd,
            left_usd,
            ..
        }) => assert_eq!((window, limit_usd, left_usd), (want, usd(limit), usd(left))),
        other => panic!("expected a {want:?} refusal, got {other:?}"),
    }
}

fn usd(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal")
}

async fn refused_with_what_is_left(Limited(t): Limited) {
    let u = funded_sender(&t).await;

    let h = t
        .engine
        .send_headroom(&u.address, "GT")
        .await
        .expect("headroom")
        .expect("limited");
    assert_eq!((h.tier, h.max_send_usd()), (0, Some(usd("50"))));
    assert!(
        t.engine
            .send_headroom(&u.address, "MX")
            .await
            .expect("mx")
            .is_some()
    );

    refused(
        send(&t, &u.id, "60", "k-1").await,
        LimitWindow::PerTransaction,
        "50",
        "50",
    );
    send(&t, &u.id, "40", "k-2").await.expect("40");
    send(&t, &u.id, "40", "k-3").await.expect("80 today");
    refused(send(&t, &u.id, "30", "k-4").await, LimitWindow::Day, "100", "20");
    send(&t, &u.id, "20", "k-5")
        .await
        .expect("exactly the day's limit");
    let h = t
        .engine
        .send_headroom(&u.address, "GT")
        .await
        .expect("headroom")
        .expect("limited");
    assert_eq!(
        (h.day_left_usd, h.thirty_days_left_usd),
        (Some(usd("0")), Some(usd("50")))
    );

    // A refused send changes nothing and is recorded, with why.
    let events = remesa::store::compliance::page(&t.db.db.pool, None, 10)
        .await
        .expect("events");
    assert_eq!(events.len(), 2);
    assert!(
        events
            .iter()
            .all(|e| e.kind == "limit_refused" && e.subject == u.address && e.actor == "engine")
    );
    assert!(
        events[1].detail.contains("\"window\":\"day\"") && events[1].reason.contains("24-hour"),
        "{events:?}"
    );
    // Another user is not limited by this one's sends.
    let other = t.user("other").await;
    t.fund(&other.address, 1_000_000_000).await;
    send(&t, &other.id, "50", "k-6").await.expect("another sender");
}
both_dbs!(
    refusals_name_the_window_and_what_is_left,
    refused_with_what_is_left
);

async fn concurrent_sends(Limited(t): Limited) {
    let u = funded_sender(&t).await;
    let t = std::sync::Arc::new(t);
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let (t, id) = (t.clone(), u.id.clone());
            tokio::spawn(async move { send(&t, &id, "30", &format!("par-{i}")).await })
        })
        .collect();
    let mut ok = 0;
    let mut refused = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(()) => ok += 1,
            Err(EngineError::LimitExceeded {
                window: LimitWindow::Day,
                ..
            }) => refused += 1,
            Err(e) => panic!("unexpected: {e:?}"),
        }
    }
    // 100 USD a day: three sends of 30 fit, whatever the interleaving.
    assert_eq!((ok, refused), (3, 3));
}
both_dbs!(concurrent_sends_cannot_pass_a_limit_together, concurrent_sends);

#[tokio::test]
async fn no_rule_no_limit() {
    let db = TestDb::sqlite().await.expect("sqlite");
    run_on(db, |t: TestEnv| async move {
        let u = funded_sender(&t).await;
        assert!(
            t.engine
                .send_headroom(&u.address, "GT")
                .await
                .expect("headroom")
                .is_none()
        );
        send(&t, &u.id, "900", "big").await.expect("not limited");
    })
    .await;
}
