//! Figure 4: the partner API under a constant open-loop load of RFC 9421-signed requests.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use ed25519_dalek::SigningKey;
use remesa::partner::httpsig::Ed25519Signer;

use crate::Ctx;
use crate::loadgen::{self, Latency, MakeRequest};
use crate::node::Node;

pub const METHOD: &str = "an open-loop generator in `remesa-bench` starts {load} on a fixed schedule \
    (one task per request over a shared keep-alive pool, so a slow answer never delays the next request), each \
    `GET /v1/partner/payouts?limit=50` signed afresh with RFC 9421 ed25519 (the node's own `Ed25519Signer`: \
    `@method`, `@target-uri`, `created`, `keyid`, a fresh `nonce`), against `remesa serve` on a fresh SQLite data \
    directory with one registered partner; latency runs from handing the signed request to the HTTP client to the \
    complete answer, recorded in an HdrHistogram; requests start on schedule whatever the server does (open loop: no \
    coordinated omission), and the generator's own lateness is reported in the notes. Floor: the same generator, signing included, against \
    `remesa-bench floor-server` (tokio + axum answering a constant page, no verification) in its own process.";

pub const LIMITS: &str = "CPU spent handing work between threads. Profiled at e0eb3de (one run, `perf` at 499 Hz \
    on the node at 1,000 req/s): the node used about 0.85 of a core, 0.85 ms per request, and about 40% of its \
    samples were the kernel switching threads. Each request wakes tokio's workers and, for every statement, one of \
    sqlx's SQLite connection threads: the page of payouts (a read) and the replay cache's group commit on the write \
    connection (`BEGIN IMMEDIATE; SAVEPOINT`, one multi-row INSERT for the whole group, `RELEASE; COMMIT`: three \
    round trips when the group has one request). ed25519 verification is about 5%. What no longer makes the tail: \
    the replay cache inserts a whole group in one statement, prunes in a task of its own, WAL checkpoints run in \
    a task of their own instead of inside a commit, and partner keys are read from memory (1 s). At 5,000 req/s \
    the node cannot keep up on two cores shared with the generator: admission (`http_in_flight_max`, 1,024 requests \
    in flight) answers the rest 503 with `Retry-After` at once (counted as failed in the notes), and the tail of the \
    answered requests is their wait among the 1,024.";

/// A deterministic benchmark key (never a real partner's).
pub fn bench_signer(keyid: &str) -> Ed25519Signer {
    Ed25519Signer::new(keyid, SigningKey::from_bytes(&[0x42; 32]))
}

/// Starts `rate` signed GETs of `url` per second for `duration`.
pub async fn signed_open_loop(
    url: &str,
    signer: Ed25519Signer,
    rate: u32,
    duration: Duration,
) -> anyhow::Result<Latency> {
    let url = url.to_owned();
    let signer = Arc::new(signer);
    let make: MakeRequest = Arc::new(move |client: &reqwest::Client, _i: u64| {
        let mut req = client.get(&url).build()?;
        signer.sign_reqwest(&mut req)?;
        Ok(req)
    });
    loadgen::open_loop(rate, duration, make).await
}

pub async fn node_latency(ctx: &Ctx, rate: u32, duration: Duration) -> anyhow::Result<Latency> {
    let node = Node::serve(ctx, "partner-node", &[]).await?;
    let signer = bench_signer("1");
    let public_key = base64::engine::general_purpose::STANDARD.encode(signer.verifying_key().as_bytes());
    node.admin(
        reqwest::Method::POST,
        "/v1/admin/partners",
        Some(&serde_json::json!({
            "id": 1,
            "name": "Bench Cash",
            "countries": ["GT"],
            "currencies": ["GTQ"],
            "payout_methods": ["cash_pickup"],
            "public_key": public_key,
            "webhook_url": null,
            "settlement_address": "0x00000000000000000000000000000000000b3c11"
        })),
    )
    .await?;
    let url = format!("{}/v1/partner/payouts?limit=50", node.base_url);
    let l = signed_open_loop(&url, signer, rate, duration).await?;
    node.proc.stop(Duration::from_secs(10))?;
    anyhow::ensure!(
        !l.histogram.is_empty(),
        "no request succeeded; first error: {}",
        l.first_error.clone().unwrap_or_default()
    );
    Ok(l)
}
