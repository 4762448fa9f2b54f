//! A node that dies between recording a partner's `Idempotency-Key` and storing the response (issue: the payout
//! stayed stuck until the sender was refunded). The dying process is a real handler stopped for good at the
//! injected fault point (`hang`: it never writes again, as after a SIGKILL); the real-binary version with a real
//! crash (`abort`) is the end-to-end test `*_partner_crash_mid_request`.
//!
//! - Restarted under the same node name, the node takes the dead start's keys over at once: the partner's retry
//!   with the same key and body answers 200 and the payout moves on, the work done once (before the work: the
//!   retry does it; after the work: the retry finds it done and answers the same).
//! - A node that died and never came back: its unfinished key is abandoned once older than the stale limit.

use std::time::Duration;

use remesa::domain::PayoutMethod;
use remesa::faults::Faults;
use remesa::partner::PartnerState;
use remesa::partner::client::PartnerClient;
use remesa::store::instances::{CHAIN_ROLE, Instance, PARTNER_FEED_ROLE, register};
use remesa::store::{lease, now_ms, partner_cursors};
use remesa_testkit::{TestDb, rid};
use reqwest::Method;
use serde_json::json;

use crate::api::{call, client, locked_remittance, rates, serve, start_node_as};
use crate::auth::partner_signer;

/// Waits until the key's row is recorded and unfinished; returns its owner.
async fn unfinished(t: &TestDb, key: &str) -> Option<String> {
    for _ in 0..200 {
        let row: Option<(Option<i64>, Option<String>)> =
            sqlx::query_as("SELECT status_code, owner FROM idempotency_keys WHERE idem_key = $1")
                .bind(key)
                .fetch_optional(&t.db.pool)
                .await
                .unwrap();
        if let Some((None, owner)) = row {
            return owner;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no unfinished idempotency row for {key}");
}

async fn state_of(node: &crate::api::Node, id: &str) -> String {
    node.engine
        .remittance(&rid(id))
        .await
        .unwrap()
        .unwrap()
        .state
        .as_str()
        .to_owned()
}

async fn wait_state(node: &crate::api::Node, id: &str, want: &str) {
    for _ in 0..200 {
        if state_of(node, id).await == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{id} never became {want} (is {})", state_of(node, id).await);
}

fn partner1(base: &str) -> PartnerClient {
    PartnerClient::new(base, partner_signer("1", 0xA1)).unwrap()
}

/// Starts a request that will never finish (the process "dies" at the fault point).
fn start_dying(c: &PartnerClient, path: String, body: serde_json::Value, key: &'static str) {
    let c = c.clone();
    tokio::spawn(async move {
        let _ = c.send_raw(Method::POST, &path, Some(&body), Some(key)).await;
    });
}

async fn restarted_node_takes_over(t: TestDb) {
    let node_name = "partner-crash-test";
    let first = Instance::new();
    assert_eq!(
        register(&t.db, node_name, &first)
            .await
            .unwrap()
            .previous_start_id,
        None
    );
    let node = start_node_as(
        &t,
        None,
        first.clone(),
        Faults::parse("partner.accept.before_work=hang").unwrap(),
    )
    .await;
    let a = client(&node, 1, 0xA1);
    let (s, _) = call(
        &a,
        Method::PUT,
        "/v1/partner/rates",
        Some(rates("7.60", "1.50")),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (id, partner) = locked_remittance(&node, PayoutMethod::CashPickup, "crash-cash").await;
    assert_eq!(partner, 1);
    let code = node
        .engine
        .pickup_code(&rid(&id))
        .await
        .unwrap()
        .unwrap()
        .expose()
        .to_owned();
    let accept = format!("/v1/partner/payouts/{id}/accept");
    let complete = format!("/v1/partner/payouts/{id}/complete");

    // 1. accept: the process dies after recording the key, before the work.
    start_dying(&a, accept.clone(), json!({}), "sim-accept-crash");
    assert_eq!(
        unfinished(&t, "sim-accept-crash").await.as_deref(),
        Some(first.start_id.as_str())
    );
    assert_eq!(state_of(&node, &id).await, "payout_assigned");
    // Until the node restarts (and long before the key goes stale) a retry is told it is still running.
    let (s, v) = call(
        &a,
        Method::POST,
        &accept,
        Some(json!({})),
        Some("sim-accept-crash"),
    )
    .await;
    assert_eq!(s, 409, "{v}");

    // Restart under the same name: the dead start's key is taken over at once.
    let second = Instance::new();
    let rec = register(&t.db, node_name, &second).await.unwrap();
    assert_eq!(rec.previous_start_id.as_deref(), Some(first.start_id.as_str()));
    assert_eq!(rec.idempotency_keys, 1);
    let base2 = serve(PartnerState {
        instance: second.clone(),
        faults: Faults::parse("partner.complete.after_work=hang").unwrap(),
        ..node.state.clone()
    })
    .await;
    let a2 = partner1(&base2);
    let (s, v) = call(
        &a2,
        Method::POST,
        &accept,
        Some(json!({})),
        Some("sim-accept-crash"),
    )
    .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("payout_accepted")), "{v}");
    let r = a2
        .send_raw(Method::POST, &accept, Some(&json!({})), Some("sim-accept-crash"))
        .await
        .unwrap();
    assert_eq!(r.headers().get("idempotent-replayed").unwrap(), "true");

    // 2. complete: the process dies after the work committed, before the response was stored.
    let proof = json!({"kind": "pickup_code", "code": code});
    start_dying(&a2, complete.clone(), proof.clone(), "sim-complete-crash");
    assert_eq!(
        unfinished(&t, "sim-complete-crash").await.as_deref(),
        Some(second.start_id.as_str())
    );
    wait_state(&node, &id, "paid").await;
    let third = Instance::new();
    let rec = register(&t.db, node_name, &third).await.unwrap();
    assert_eq!(rec.previous_start_id.as_deref(), Some(second.start_id.as_str()));
    assert_eq!(rec.idempotency_keys, 1);
    let base3 = serve(PartnerState {
        instance: third,
        faults: Faults::none(),
        ..node.state.clone()
    })
    .await;
    let a3 = partner1(&base3);
    let (s, v) = call(
        &a3,
        Method::POST,
        &complete,
        Some(proof.clone()),
        Some("sim-complete-crash"),
    )
    .await;
    assert_eq!((s, v["status"].as_str()), (200, Some("paid")), "{v}");
    // The same key with another body is still refused; the same request is replayed.
    let (s, _) = call(
        &a3,
        Method::POST,
        &complete,
        Some(json!({"kind": "pickup_code", "code": "AAAA-BBBB-CCCC"})),
        Some("sim-complete-crash"),
    )
    .await;
    assert_eq!(s, 422);
    let r = a3
        .send_raw(Method::POST, &complete, Some(&proof), Some("sim-complete-crash"))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers().get("idempotent-replayed").unwrap(), "true");

    // The work happened once: one transition into each state, one release queued.
    let history: Vec<String> = node
        .engine
        .history(&rid(&id))
        .await
        .unwrap()
        .iter()
        .map(|e| e.to.to_string())
        .collect();
    for s in ["payout_accepted", "paid"] {
        assert_eq!(
            history.iter().filter(|h| *h == s).count(),
            1,
            "{s} in {history:?}"
        );
    }
    let releases: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM chain_jobs WHERE kind = 'release' AND remittance_id = $1",
    )
    .bind(&id)
    .fetch_one(&t.db.pool)
    .await
    .unwrap();
    assert_eq!(releases, 1);
    node.cancel.cancel();
}

async fn dead_node_key_goes_stale(t: TestDb) {
    let node = start_node_as(&t, None, Instance::new(), Faults::none()).await;
    let a = client(&node, 1, 0xA1);
    let (s, _) = call(
        &a,
        Method::PUT,
        "/v1/partner/rates",
        Some(rates("7.60", "1.50")),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (id, _) = locked_remittance(&node, PayoutMethod::BankDeposit, "stale-bank").await;
    let accept = format!("/v1/partner/payouts/{id}/accept");
    // Another node takes the request and dies after the work; it never comes back.
    let dying = serve(PartnerState {
        instance: Instance::new(),
        faults: Faults::parse("partner.accept.after_work=hang").unwrap(),
        ..node.state.clone()
    })
    .await;
    start_dying(&partner1(&dying), accept.clone(), json!({}), "acc-stale");
    unfinished(&t, "acc-stale").await;
    wait_state(&node, &id, "payout_accepted").await;
    // This node sees the key as abandoned once older than its stale limit (the HTTP timeout plus a margin).
    let survivor = serve(PartnerState {
        idempotency_stale_ms: 400,
        ..node.state.clone()
    })
    .await;
    let s1 = partner1(&survivor);
    let (s, _) = call(&s1, Method::POST, &accept, Some(json!({})), Some("acc-stale")).await;
    assert_eq!(s, 409);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (s, v) = call(&s1, Method::POST, &accept, Some(json!({})), Some("acc-stale")).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("payout_accepted")), "{v}");
    node.cancel.cancel();
}

/// Tries to take the sending-key lease and the partner feed's lease for `start`'s workers, in one transaction:
/// (the chain lease's fencing number if taken, whether the feed lease was).
async fn take_leases(t: &TestDb, start: &Instance) -> (Option<i64>, bool) {
    let now = now_ms();
    let mut tx = t.db.begin().await.unwrap();
    let chain = lease::try_acquire(
        &mut *tx,
        "writer:test",
        &start.worker_id(CHAIN_ROLE),
        now + 60_000,
        now,
    )
    .await
    .unwrap();
    let feed = partner_cursors::try_lease(
        &mut tx,
        "engine_feed",
        &start.worker_id(PARTNER_FEED_ROLE),
        60_000,
        now,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    (chain, feed)
}

/// The leases a SIGKILLed start held (its chain workers', its partner feed follower's) expire when the node
/// restarts under the same name, so the new start's workers take them at once instead of waiting them out (the
/// fault suite's crash scenario found the partner feed stalled for its whole 30 s lease after each kill).
async fn restart_expires_the_dead_starts_leases(t: TestDb) {
    let node_name = "lease-restart-test";
    let first = Instance::new();
    register(&t.db, node_name, &first).await.unwrap();
    assert_eq!(take_leases(&t, &first).await, (Some(1), true));

    // The first start dies; its restart gets new worker names, which the old leases keep out until they expire.
    let second = Instance::new();
    assert_eq!(
        take_leases(&t, &second).await,
        (None, false),
        "held by the dead start until registered"
    );
    let rec = register(&t.db, node_name, &second).await.unwrap();
    assert_eq!(rec.previous_start_id.as_deref(), Some(first.start_id.as_str()));
    assert_eq!(rec.leases, 2);
    assert_eq!(
        take_leases(&t, &second).await,
        (Some(2), true),
        "taken over at once, the chain lease with a higher fencing number"
    );
    // Another node's leases are not touched by this node's restart.
    let third = Instance::new();
    let rec = register(&t.db, "another-node", &third).await.unwrap();
    assert_eq!((rec.previous_start_id, rec.leases), (None, 0));
}

#[tokio::test]
async fn restart_expires_the_dead_starts_leases_sqlite() {
    restart_expires_the_dead_starts_leases(TestDb::sqlite().await.unwrap()).await;
}

#[tokio::test]
async fn restart_expires_the_dead_starts_leases_postgres() {
    if let Some(t) = TestDb::postgres().await {
        restart_expires_the_dead_starts_leases(t).await;
    }
}

#[tokio::test]
async fn partner_crash_mid_request_restart_sqlite() {
    restarted_node_takes_over(TestDb::sqlite().await.unwrap()).await;
}

#[tokio::test]
async fn partner_crash_mid_request_restart_postgres() {
    if let Some(t) = TestDb::postgres().await {
        restarted_node_takes_over(t).await;
    }
}

#[tokio::test]
async fn partner_crash_mid_request_stale_sqlite() {
    dead_node_key_goes_stale(TestDb::sqlite().await.unwrap()).await;
}

#[tokio::test]
async fn partner_crash_mid_request_stale_postgres() {
    if let Some(t) = TestDb::postgres().await {
        dead_node_key_goes_stale(t).await;
    }
}
