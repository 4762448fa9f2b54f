//! The real `remesa` binary crashes (an injected `abort`, as sudden as a SIGKILL) in the middle of a partner's
//! `accept` and `complete`: once between recording the partner's `Idempotency-Key` and doing the work, once
//! between the committed work and storing the response. The real `remesa partner-sim` keeps retrying with the
//! same key (`sim-accept-<id>`, `sim-complete-<id>`), as a partner would. After each restart (same node name:
//! same host and port) its retry answers 200, the payout moves on, and the remittance settles exactly once.

use std::os::unix::process::ExitStatusExt as _;
use std::time::Duration;

use anyhow::{Context, Result};
use remesa_e2e::{Anvil, Node, OPERATOR_TOKEN, fresh_postgres};
use remesa_testkit::RecipientChats;

use crate::{MARIA, WAIT, create, exactly_once, funded_node, reconcile, show_logs_on_error};

async fn crash_mid_request(database_url: Option<String>) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let result = run(database_url, dir.path()).await;
    show_logs_on_error(&result, dir.path());
    result
}

/// Waits for the injected crash: the process ends by SIGABRT.
async fn crashed(node: &mut Node) -> Result<()> {
    let status = node.wait_exit(WAIT).await?;
    anyhow::ensure!(
        status.signal() == Some(6),
        "the node crashed at the fault point: {status}"
    );
    Ok(())
}

async fn run(database_url: Option<String>, dir: &std::path::Path) -> Result<()> {
    let anvil = Anvil::start(1).await?;
    let mut node = Node::new("a", dir, &anvil.url, database_url.as_deref());
    let (_, user_id, _) = funded_node(&mut node).await?;
    let r = create(&node, &user_id, "25", "e2e-partner-crash").await?;
    let id = r["id"].as_str().context("id")?.to_owned();
    node.wait_state(&id, "payout_assigned", WAIT).await?;
    // The recipient brings the code to the counter: the simulator completes the cash pickup with it.
    let code = RecipientChats::new(&node.base, OPERATOR_TOKEN)
        .code(MARIA, &id, WAIT)
        .await?;
    let codes = dir.join("codes.txt");
    std::fs::write(&codes, format!("{code}\n"))?;

    // 1. accept: crash after the key is recorded, before the work.
    node.stop()?;
    node.set_env("REMESA_FAULTS", Some("partner.accept.before_work=abort"));
    node.start().await?;
    let key_file = dir.join("demo-partner-1.seed");
    let mut sim = node.spawn(
        &[
            "partner-sim",
            "--node-url",
            &node.base,
            "--partner-id",
            "1",
            "--key-file",
            key_file.to_str().context("path")?,
            "--accept-delay-ms",
            "0",
            "--complete-delay-ms",
            "0",
            "--poll-interval-ms",
            "200",
            "--pickup-codes-file",
            codes.to_str().context("path")?,
            "--stop-after",
            "1",
        ],
        "partner-sim.log",
    )?;
    crashed(&mut node).await?;
    anyhow::ensure!(
        node.state_of_offline(&id).await? == "payout_assigned",
        "the accept's work was not done before the crash"
    );

    // 2. restart: the simulator's retry of the accept goes through; complete: crash after the work.
    node.set_env("REMESA_FAULTS", Some("partner.complete.after_work=abort"));
    node.launch()?; // the simulator may accept and complete before a readiness poll would see the node
    crashed(&mut node).await?;
    anyhow::ensure!(
        node.state_of_offline(&id).await? == "paid",
        "the complete's work was committed before the crash"
    );

    // 3. restart without faults: the simulator's retry of the complete answers 200 and it stops (stop-after 1).
    node.set_env("REMESA_FAULTS", None);
    node.start().await?;
    let deadline = std::time::Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = sim.try_wait()? {
            break s;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the partner simulator never finished"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    anyhow::ensure!(status.success(), "partner-sim exited with {status}");
    node.wait_state(&id, "settled", WAIT).await?;
    exactly_once(&node, &id, "settled").await?;
    for s in ["payout_accepted", "paid"] {
        exactly_once(&node, &id, s).await?;
    }
    reconcile(&node)?;
    node.stop()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_partner_crash_mid_request() -> Result<()> {
    crash_mid_request(None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_partner_crash_mid_request() -> Result<()> {
    let Some(url) = fresh_postgres().await else {
        return Ok(());
    };
    crash_mid_request(Some(url)).await
}
