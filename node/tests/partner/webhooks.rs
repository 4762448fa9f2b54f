//! Webhook queue and worker against a real local HTTP receiver that verifies the node's signatures.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::routing::post;
use remesa::partner::config::PartnerConfig;
use remesa::partner::store::NewEvent;
use remesa::partner::webhook::{WebhookWorker, load_or_create_node_key, verify_webhook};
use tokio::sync::Mutex;

use crate::support::TestDb;
use remesa_testkit::both_dbs;

#[derive(Clone)]
pub struct Receiver {
    pub key: ed25519_dalek::VerifyingKey,
    /// Answer 500 to this many requests first.
    pub fail_first: Arc<AtomicUsize>,
    pub received: Arc<Mutex<Vec<serde_json::Value>>>,
    pub rejected: Arc<Mutex<Vec<String>>>,
    pub addr: std::net::SocketAddr,
}

async fn receive(
    State(r): State<Receiver>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let target = format!(
        "http://{}{}",
        r.addr,
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    if let Err(e) = verify_webhook(&method, &target, &headers, &body, &r.key, 300) {
        r.rejected.lock().await.push(e.to_string());
        return StatusCode::UNAUTHORIZED;
    }
    if r.fail_first.load(Ordering::SeqCst) > 0 {
        r.fail_first.fetch_sub(1, Ordering::SeqCst);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    r.received
        .lock()
        .await
        .push(serde_json::from_slice(&body).unwrap());
    StatusCode::NO_CONTENT
}

/// Starts a receiver on a free port that verifies signatures with `key`.
pub async fn start_receiver(key: ed25519_dalek::VerifyingKey, fail_first: usize) -> Receiver {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let r = Receiver {
        key,
        fail_first: Arc::new(AtomicUsize::new(fail_first)),
        received: Arc::default(),
        rejected: Arc::default(),
        addr: listener.local_addr().unwrap(),
    };
    let app = Router::new()
        .route("/hooks/{*rest}", post(receive))
        .with_state(r.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    r
}

fn cfg() -> PartnerConfig {
    PartnerConfig {
        partner_webhook_max_attempts: 3,
        partner_webhook_backoff_base_ms: 20,
        partner_webhook_backoff_max_ms: 50,
        partner_webhook_timeout_ms: 2_000,
        ..PartnerConfig::default()
    }
}

async fn tick_until(worker: &WebhookWorker, mut done: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        worker.tick().await.unwrap();
        if done().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("condition not reached");
}

async fn delivery_retry_park_and_requeue(t: TestDb) {
    let db = t.db.clone();
    let dir = tempfile::tempdir().unwrap();
    let signer = load_or_create_node_key(dir.path()).unwrap();
    let rx = start_receiver(signer.verifying_key(), 2).await;
    let worker = WebhookWorker::new(db.clone(), signer.clone(), cfg()).unwrap();
    let url = format!("http://{}/hooks/partner-a?token=x", rx.addr);

    // Delivered on the third attempt after two 500s.
    let seq = db
        .append_event(NewEvent {
            partner_id: "partner-a",
            event_type: "payout.created",
            payout_id: Some("r-1"),
            source_key: Some("t-1"),
            data: serde_json::json!({"payout_id": "r-1", "amount": "100.00"}),
            webhook_url: Some(&url),
            max_attempts: 3,
        })
        .await
        .unwrap()
        .unwrap();
    // The same source is not added twice.
    let again = db
        .append_event(NewEvent {
            partner_id: "partner-a",
            event_type: "payout.created",
            payout_id: Some("r-1"),
            source_key: Some("t-1"),
            data: serde_json::json!({}),
            webhook_url: Some(&url),
            max_attempts: 3,
        })
        .await
        .unwrap();
    assert_eq!(again, None);
    tick_until(&worker, async || !rx.received.lock().await.is_empty()).await;
    let got = rx.received.lock().await.clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["type"], "payout.created");
    assert_eq!(got[0]["seq"], seq);
    assert_eq!(got[0]["data"]["payout_id"], "r-1");
    assert!(
        rx.rejected.lock().await.is_empty(),
        "{:?}",
        rx.rejected.lock().await
    );
    let delivered = db.list_deliveries(Some("delivered"), None, 10).await.unwrap();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].attempts, 3);
    assert_eq!(delivered[0].last_status_code, Some(204));

    // A receiver that always fails: parked as failed after max_attempts, visible, then re-queued by hand.
    rx.fail_first.store(usize::MAX / 2, Ordering::SeqCst);
    db.append_event(NewEvent {
        partner_id: "partner-a",
        event_type: "payout.cancelled",
        payout_id: Some("r-2"),
        source_key: Some("t-2"),
        data: serde_json::json!({"payout_id": "r-2"}),
        webhook_url: Some(&url),
        max_attempts: 3,
    })
    .await
    .unwrap();
    tick_until(&worker, async || {
        db.count_deliveries("failed").await.unwrap() == 1
    })
    .await;
    let failed = db.list_deliveries(Some("failed"), None, 10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].attempts, 3);
    assert_eq!(failed[0].last_status_code, Some(500));
    assert!(failed[0].last_error.as_deref().unwrap().contains("500"));
    assert!(!failed[0].url.is_empty());
    // Parked deliveries are not retried by the worker.
    worker.tick().await.unwrap();
    assert_eq!(
        db.list_deliveries(Some("failed"), None, 10).await.unwrap()[0].attempts,
        3
    );
    rx.fail_first.store(0, Ordering::SeqCst);
    assert!(db.requeue_delivery(&failed[0].id).await.unwrap());
    assert!(!db.requeue_delivery(&failed[0].id).await.unwrap());
    tick_until(&worker, async || rx.received.lock().await.len() == 2).await;
    assert_eq!(db.count_deliveries("failed").await.unwrap(), 0);

    // A receiver that checks against another key refuses: the signature binds the node's key.
    let other = load_or_create_node_key(tempfile::tempdir().unwrap().path()).unwrap();
    let rx2 = start_receiver(other.verifying_key(), 0).await;
    db.append_event(NewEvent {
        partner_id: "partner-b",
        event_type: "payout.created",
        payout_id: Some("r-3"),
        source_key: Some("t-3"),
        data: serde_json::json!({}),
        webhook_url: Some(&format!("http://{}/hooks/b", rx2.addr)),
        max_attempts: 1,
    })
    .await
    .unwrap();
    tick_until(&worker, async || {
        db.count_deliveries("failed").await.unwrap() == 1
    })
    .await;
    let rejected = rx2.rejected.lock().await.clone();
    assert_eq!(rejected.len(), 1);
    assert!(rejected[0].contains("does not verify"), "{rejected:?}");

    // The feed replays everything, per partner, after a cursor.
    let evs = db.list_events("partner-a", 0, 100).await.unwrap();
    assert_eq!(
        evs.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>(),
        ["payout.created", "payout.cancelled"]
    );
    let after = db.list_events("partner-a", evs[0].seq, 100).await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].payout_id.as_deref(), Some("r-2"));
    assert_eq!(db.list_events("partner-b", 0, 100).await.unwrap().len(), 1);
}

#[tokio::test]
async fn webhook_delivery() {
    both_dbs!(delivery_retry_park_and_requeue);
}
