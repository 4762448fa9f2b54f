//! End-to-end tests: the real `remesa` binary against a real anvil with the real contracts, on SQLite and on
//! PostgreSQL (`cargo test -p remesa-e2e`; the helpers build the binary first).
//!
//! One scenario per database: a remittance from quote to on-chain settlement through the admin payout path; the
//! node killed with SIGKILL mid-flow (twice) and restarted, every remittance finishing exactly once; a refund
//! through anvil time travel; the ledger reconciled against the escrow contract. On PostgreSQL a second node
//! process shares the database and the work.

mod dev;
mod partner_crash;

use std::time::Duration;

use anyhow::{Context, Result};
use remesa_e2e::{Anvil, Node, OPERATOR_TOKEN, eventually, fresh_postgres, token_balance};
use remesa_testkit::RecipientChats;
use serde_json::{Value, json};

pub(crate) const WAIT: Duration = Duration::from_secs(90);
/// The recipient of every remittance here.
pub(crate) const MARIA: &str = "+50255550101";
const SETTLEMENT: &str = "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc"; // demo partner 1 (anvil account 2)

pub(crate) async fn create(node: &Node, user_id: &str, amount: &str, key: &str) -> Result<Value> {
    let q = node
        .ok("POST", "/v1/quotes", Some(json!({"send_amount": amount, "country": "GT", "currency": "GTQ", "payout_method": "cash_pickup"})), None)
        .await?;
    anyhow::ensure!(q["partner_id"] == 1, "best net payout is partner 1: {q}");
    let body = json!({"quote_id": q["id"], "sender": {"kind": "user", "user_id": user_id},
        "recipient": {"phone": MARIA, "name": "Maria Lopez"}});
    let r = node
        .ok("POST", "/v1/remittances", Some(body.clone()), Some(key))
        .await?;
    // the same key and body give the same remittance
    let again = node.ok("POST", "/v1/remittances", Some(body), Some(key)).await?;
    anyhow::ensure!(again["id"] == r["id"], "idempotent create");
    Ok(r)
}

async fn complete(node: &Node, maria: &RecipientChats, id: &str) -> Result<()> {
    // The code as the recipient learns it: from her chat message (the node's terminal chat).
    let code = maria.code(MARIA, id, WAIT).await?;
    let body = json!({"kind": "pickup_code", "code": code});
    node.ok(
        "POST",
        &format!("/v1/admin/payouts/{id}/complete"),
        Some(body),
        Some(&format!("complete-{id}")),
    )
    .await?;
    Ok(())
}

pub(crate) fn reconcile(node: &Node) -> Result<String> {
    let out = node.run(&["reconcile"])?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    anyhow::ensure!(text.contains("OK"), "reconcile: {text}");
    Ok(text)
}

pub(crate) async fn exactly_once(node: &Node, id: &str, final_state: &str) -> Result<()> {
    let h = node
        .ok("GET", &format!("/v1/remittances/{id}/events"), None, None)
        .await?;
    let states: Vec<&str> = h
        .as_array()
        .context("history")?
        .iter()
        .filter_map(|e| e["to"].as_str())
        .collect();
    for s in ["funds_locked", final_state] {
        let n = states.iter().filter(|x| **x == s).count();
        anyhow::ensure!(n == 1, "{id}: {s} appears {n} times in {states:?}");
    }
    Ok(())
}

async fn scenario(database_url: Option<String>) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let result = run_scenario(database_url, dir.path()).await;
    show_logs_on_error(&result, dir.path());
    result
}

/// Prints the tail of every node log of a failed run.
pub(crate) fn show_logs_on_error<T>(result: &Result<T>, dir: &std::path::Path) {
    if result.is_ok() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "log") {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(60).collect();
            eprintln!("==== {} (last lines) ====", p.display());
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// A devnet (contracts, demo partners) and a started node with one custodial user holding 1,000 tokens; returns
/// the token address, the user id and the user's address.
async fn funded_node(node: &mut Node) -> Result<(String, String, String)> {
    let setup = node.run(&["devnet", "setup"])?;
    let setup: Value = serde_json::from_slice(&setup.stdout).context("setup output")?;
    let token = setup["deployment"]["token"].as_str().context("token")?.to_owned();
    node.run(&["migrate"])?;
    node.run(&["devnet", "seed"])?;
    node.start().await?;

    let user = node
        .ok(
            "POST",
            "/v1/admin/users",
            Some(json!({"channel": "api", "external_id": "alice", "phone": "+14155552671"})),
            Some("u-alice"),
        )
        .await?;
    let user_id = user["id"].as_str().context("user id")?.to_owned();
    let address = user["address"].as_str().context("address")?.to_owned();
    node.run(&["devnet", "mint", "--to", &address, "--amount", "1000"])?;
    eventually("the mint is indexed", WAIT, || async {
        Ok(node
            .ok("GET", &format!("/v1/balances/{address}"), None, None)
            .await?["balance_base_units"]
            == "1000000000")
    })
    .await?;
    Ok((token, user_id, address))
}

async fn run_scenario(database_url: Option<String>, dir: &std::path::Path) -> Result<()> {
    let anvil = Anvil::start(1).await?;
    let mut node = Node::new("a", dir, &anvil.url, database_url.as_deref());
    let (token, user_id, address) = funded_node(&mut node).await?;
    let maria = RecipientChats::new(&node.base, OPERATOR_TOKEN);

    // 1. quote → remittance → locked on chain → paid (admin path) → released → settled
    let r = create(&node, &user_id, "100", "e2e-1").await?;
    let id = r["id"].as_str().context("id")?.to_owned();
    let total: u128 = r["total_base_units"].as_str().context("total")?.parse()?;
    node.wait_state(&id, "payout_assigned", WAIT).await?;
    let locked = node
        .ok("GET", &format!("/v1/remittances/{id}"), None, None)
        .await?;
    anyhow::ensure!(locked["lock_tx_hash"].is_string(), "lock tx recorded: {locked}");
    complete(&node, &maria, &id).await?;
    node.wait_state(&id, "settled", WAIT).await?;
    anyhow::ensure!(
        token_balance(&anvil.url, &token, SETTLEMENT).await? == total,
        "partner paid on chain"
    );
    exactly_once(&node, &id, "settled").await?;
    reconcile(&node)?;

    // 2. SIGKILL mid-flow, twice; every remittance finishes exactly once
    let mut second = if database_url.is_some() {
        let mut b = Node::new("b", dir, &anvil.url, database_url.as_deref());
        b.start().await?;
        Some(b)
    } else {
        None
    };
    let mut ids = Vec::new();
    for i in 0..4 {
        let via = match (&second, i % 2) {
            (Some(b), 1) => b,
            _ => &node,
        };
        let r = create(via, &user_id, "10", &format!("e2e-crash-{i}")).await?;
        ids.push(r["id"].as_str().context("id")?.to_owned());
    }
    node.kill9();
    node.start().await?;
    for id in &ids {
        node.wait_state(id, "payout_assigned", WAIT).await?;
    }
    for (i, id) in ids.iter().enumerate() {
        let via = match (&second, i % 2) {
            (Some(b), 1) => b,
            _ => &node,
        };
        complete(via, &maria, id).await?;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    node.kill9();
    if let Some(b) = second.as_mut() {
        b.kill9();
        b.start().await?;
    }
    node.start().await?;
    for id in &ids {
        node.wait_state(id, "settled", WAIT).await?;
        exactly_once(&node, id, "settled").await?;
    }
    let mut expected = total;
    for id in &ids {
        let r = node
            .ok("GET", &format!("/v1/remittances/{id}"), None, None)
            .await?;
        expected += r["total_base_units"].as_str().context("total")?.parse::<u128>()?;
    }
    anyhow::ensure!(
        token_balance(&anvil.url, &token, SETTLEMENT).await? == expected,
        "each released exactly once"
    );
    reconcile(&node)?;

    // 3. refund through time travel: the keeper refunds after the on-chain expiry
    let r = create(&node, &user_id, "50", "e2e-refund").await?;
    let rid = r["id"].as_str().context("id")?.to_owned();
    node.wait_state(&rid, "payout_assigned", WAIT).await?;
    let before = node
        .ok("GET", &format!("/v1/balances/{address}"), None, None)
        .await?;
    anvil.time_travel(3700).await?;
    node.wait_state(&rid, "refunded", WAIT).await?;
    exactly_once(&node, &rid, "refunded").await?;
    let after = node
        .ok("GET", &format!("/v1/balances/{address}"), None, None)
        .await?;
    let b: u128 = before["balance_base_units"].as_str().context("b")?.parse()?;
    let a: u128 = after["balance_base_units"].as_str().context("a")?.parse()?;
    anyhow::ensure!(
        a == b + r["total_base_units"].as_str().context("t")?.parse::<u128>()?,
        "refunded to the sender"
    );
    anyhow::ensure!(
        token_balance(&anvil.url, &token, &address).await? == a,
        "ledger wallet equals chain balance"
    );
    reconcile(&node)?;
    let rec = node.ok("GET", "/v1/admin/reconcile", None, None).await?;
    anyhow::ensure!(rec["matches"] == true, "{rec}");
    let ledger = node.ok("GET", "/v1/admin/ledger", None, None).await?;
    anyhow::ensure!(ledger["entries"].as_u64().unwrap_or(0) > 0, "{ledger}");
    // No chain job failed on this run; a retry of an unknown job is a 404 problem.
    let failed = node.ok("GET", "/v1/admin/chain/jobs/failed", None, None).await?;
    anyhow::ensure!(failed.as_array().is_some_and(Vec::is_empty), "{failed}");
    let (status, body) = node
        .api(
            "POST",
            "/v1/admin/chain/jobs/no-such-job/retry",
            None,
            Some("retry-none"),
        )
        .await?;
    anyhow::ensure!(status == 404 && body["status"] == 404, "{status} {body}");

    if let Some(mut b) = second.take() {
        b.stop()?;
    }
    node.stop()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_quote_to_settlement_crash_and_refund() -> Result<()> {
    scenario(None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_nodes_quote_to_settlement_crash_and_refund() -> Result<()> {
    let Some(url) = fresh_postgres().await else {
        return Ok(());
    };
    scenario(Some(url)).await
}
