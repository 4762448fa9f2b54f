//! Figure 6: `remesa dev` from start to healthy.

use std::time::{Duration, Instant};

use crate::Ctx;
use crate::node::fresh_dir;
use crate::procs::{self, Proc};

pub const METHOD: &str = "`remesa dev` (binaries already built) with a fresh data directory and a free anvil port, \
    timed from spawning the process until `GET /readyz` answers 200 (polled every 10 ms); in that time it starts \
    anvil (in automine mode for the setup, then 1-second blocks), deploys the contracts, creates the keystore, registers the demo partner (also in the \
    escrow) and users, funds them, and serves. Baseline: anvil alone, from spawn to its first JSON-RPC answer.";

pub const LIMITS: &str = "`remesa dev` sends its setup transactions (token and escrow deployments, the partners' \
    registration in the escrow, the demo users' funds) one after another, each mined at once in automine mode, then \
    gives anvil its 1-second block time; the rest is starting anvil, deriving and encrypting the node keystore \
    (scrypt), migrating a fresh SQLite database and starting the workers.";

pub async fn start_to_ready(ctx: &Ctx) -> anyhow::Result<Duration> {
    let data_dir = fresh_dir(ctx, "dev-node")?;
    let port = procs::free_port()?;
    let anvil_port = procs::free_port()?.to_string();
    let env: Vec<(String, String)> = vec![
        ("REMESA_DATA_DIR".into(), data_dir.display().to_string()),
        ("REMESA_HTTP_ADDR".into(), format!("127.0.0.1:{port}")),
        ("REMESA_ANVIL".into(), ctx.anvil_bin.display().to_string()),
        ("REMESA_LOG".into(), "warn".into()),
        ("NO_COLOR".into(), "1".into()),
    ];
    let started = Instant::now();
    let mut p = Proc::spawn(
        "remesa dev",
        &ctx.remesa_bin,
        &["dev", "--anvil-port", &anvil_port],
        &env,
        &ctx.work_dir.join("dev-node.log"),
    )?;
    procs::wait_http_200(
        &format!("http://127.0.0.1:{port}/readyz"),
        Duration::from_secs(120),
        || p.check_alive(),
    )
    .await?;
    let elapsed = started.elapsed();
    p.stop(Duration::from_secs(15))?;
    Ok(elapsed)
}
