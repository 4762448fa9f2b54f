//! Figure 2: remittances from custodial WhatsApp users through the real node to settled on chain, with the
//! devnet partner (`remesa partner-sim`) paying at once, on anvil with 1-second blocks.
//!
//! Per run, outside the clock: anvil `-b 1`; Circle's USDC (FiatTokenV2_2 behind its proxy) and RemittanceEscrow
//! deployed from the committed artifacts; the partner registered in the escrow; a fresh node (SQLite) with its keystore, its relayer funded with
//! gas; the partner, its rates and `n` custodial WhatsApp users registered through the admin API; each user minted
//! 100 USDC and the node's indexer caught up with the mints. On the clock: every user sends
//! [`SEND_TEXT`] (a cash pickup) and then "yes" as signed WhatsApp webhooks (64 connections); the clock
//! stops when the node lists all `n` remittances as `settled` (released on chain to the partner).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use alloy::eips::BlockNumberOrTag;
use alloy::network::{EthereumWallet, TransactionBuilder as _};
use alloy::primitives::{Address, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall as _;
use anyhow::{Context as _, bail, ensure};
use base64::Engine as _;

use crate::Ctx;
use crate::erc20::{self, IMintableErc20};
use crate::figures::{WA_APP_SECRET, whatsapp_message, whatsapp_signature};
use crate::node::{Node, NodeSetup};
use remesa::partner::sim::{PickupOracle, SimArgs};

pub const PARTNER_ID: u64 = 1;
/// Base units (6 decimals) minted to each user: 100 USDC.
const USER_FUNDS_BASE_UNITS: u64 = 100_000_000;
const CONNECTIONS: usize = 64;
/// What every sender types first (then "yes" to the quote); `NNNN` is the sender's number, so each sender has
/// its own recipient (the node tells each recipient in order, one message at a time: one recipient shared by every
/// sender would measure that queue, not the node).
pub const SEND_TEXT: &str = "send 10 usd to Maria +502 5555 NNNN, cash pickup";

/// [`SEND_TEXT`] for user `u`.
pub fn send_text(u: usize) -> String {
    SEND_TEXT.replace("NNNN", &format!("{:04}", u % 10_000))
}

#[derive(Debug, Clone)]
pub struct SettleRun {
    pub remittances: usize,
    pub elapsed: Duration,
    pub idle_rss_kib: u64,
    pub peak_hwm_kib: u64,
    /// Gas of every transaction the node's relayer sent during the run, per settled remittance.
    pub relayer_gas_per_remittance: f64,
    pub relayer_txs: usize,
    pub blocks: u64,
    /// Remittances per state every 10 s while the clock ran.
    pub progress: Vec<String>,
    /// Where the time went: each step between two states, from the node's transition log.
    pub stages: Vec<Stage>,
    /// The chat inbox: messages handled, from the first received to the last handled, in seconds.
    pub inbox: (i64, f64),
    /// The relayer's transactions that reverted on chain (a deposit or release sent twice would revert).
    pub relayer_reverted: usize,
    /// Chat messages handled per node process (its chat workers' claim name), most first.
    pub inbox_by_node: Vec<(String, i64)>,
}

/// Where the node keeps its data for a run: one process on its SQLite file, or `processes` `remesa serve` on
/// one PostgreSQL database (a fresh database per run on the tests' server).
#[derive(Debug, Clone)]
pub enum Topology {
    Sqlite,
    Postgres { processes: usize },
}

/// The time remittances spent on one step (`from` → `to`) of their life, from the node's transition log.
#[derive(Debug, Clone)]
pub struct Stage {
    pub from: String,
    pub to: String,
    pub count: usize,
    pub median_ms: i64,
    pub p90_ms: i64,
    pub max_ms: i64,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} → {}: median {} ms, p90 {} ms, max {} ms ({})",
            self.from, self.to, self.median_ms, self.p90_ms, self.max_ms, self.count
        )
    }
}

/// The stopped node's database: its SQLite file (read-only), or its PostgreSQL database.
async fn open_db(url: &str) -> anyhow::Result<sqlx::AnyConnection> {
    sqlx::any::install_default_drivers();
    Ok(sqlx::ConnectOptions::connect(&url.parse::<sqlx::any::AnyConnectOptions>()?).await?)
}

fn sqlite_url(db_path: &std::path::Path) -> String {
    format!("sqlite://{}?mode=ro", db_path.display())
}

/// Chat messages handled per node process: its chat workers' claim name (`chat@<start id>`), most first.
pub async fn inbox_by_node(db_url: &str) -> anyhow::Result<Vec<(String, i64)>> {
    let mut conn = open_db(db_url).await?;
    Ok(sqlx::query_as(
        "SELECT COALESCE(claimed_by, '?') AS node, COUNT(*) AS n FROM chat_inbox WHERE status = 'done' \
         GROUP BY claimed_by ORDER BY n DESC",
    )
    .fetch_all(&mut conn)
    .await?)
}

/// How many chat messages the node handled and the seconds from the first received to the last handled.
pub async fn inbox_profile(db_url: &str) -> anyhow::Result<(i64, f64)> {
    let mut conn = open_db(db_url).await?;
    let (n, span_ms): (i64, Option<i64>) = sqlx::query_as(
        "SELECT COUNT(*), MAX(processed_at_unix_ms) - MIN(received_at_unix_ms) FROM chat_inbox",
    )
    .fetch_one(&mut conn)
    .await?;
    Ok((n, span_ms.unwrap_or(0) as f64 / 1000.0))
}

/// Reads every remittance's transitions from the node's database (after the node stopped) and groups the time
/// between consecutive transitions by step, in the order the steps first happen.
pub async fn stage_profile(db_url: &str) -> anyhow::Result<Vec<Stage>> {
    use sqlx::Row as _;
    let mut conn = open_db(db_url).await?;
    let rows = sqlx::query(
        "SELECT remittance_id, COALESCE(from_state, '') AS from_state, to_state, at_unix_ms \
         FROM remittance_transitions ORDER BY remittance_id, seq",
    )
    .fetch_all(&mut conn)
    .await?;
    let mut order: Vec<(String, String)> = Vec::new();
    let mut times: std::collections::HashMap<(String, String), Vec<i64>> = Default::default();
    let mut prev: Option<(String, i64)> = None;
    for r in rows {
        let id: String = r.try_get("remittance_id")?;
        let (from, to): (String, String) = (r.try_get("from_state")?, r.try_get("to_state")?);
        let at: i64 = r.try_get("at_unix_ms")?;
        if let Some((prev_id, prev_at)) = &prev
            && *prev_id == id
            && !from.is_empty()
        {
            let key = (from, to);
            if !times.contains_key(&key) {
                order.push(key.clone());
            }
            times.entry(key).or_default().push(at - prev_at);
        }
        prev = Some((id, at));
    }
    Ok(order
        .into_iter()
        .map(|key| {
            let mut v = times.remove(&key).unwrap_or_default();
            v.sort_unstable();
            let at = |q: usize| v.get((v.len().saturating_sub(1)) * q / 100).copied().unwrap_or(0);
            Stage {
                count: v.len(),
                median_ms: at(50),
                p90_ms: at(90),
                max_ms: v.last().copied().unwrap_or(0),
                from: key.0,
                to: key.1,
            }
        })
        .collect())
}

impl SettleRun {
    pub fn per_s(&self) -> f64 {
        self.remittances as f64 / self.elapsed.as_secs_f64()
    }
}

/// One run of figure 2. `idle_wait`: how long the node sits idle before its idle RSS is read.
pub async fn run(
    ctx: &Ctx,
    run: usize,
    n: usize,
    gas_limit: Option<u64>,
    idle_wait: Duration,
    graph_api_base: &str,
    topology: &Topology,
) -> anyhow::Result<SettleRun> {
    // Chain.
    let anvil = erc20::spawn_anvil(&ctx.anvil_bin, 1, 10, gas_limit)?;
    let rpc_url = anvil.endpoint_url();
    let owner: PrivateKeySigner = anvil.keys()[0].clone().into();
    let funder: PrivateKeySigner = anvil.keys()[1].clone().into();
    let chain = ProviderBuilder::new()
        .wallet(EthereumWallet::from(owner.clone()))
        .connect_http(rpc_url.clone());
    // Circle's USDC and the escrow from the committed artifacts, through the wallet's devnet module (as `remesa
    // dev` and the tests deploy them), the partner registered with its settlement address as its signer.
    let run_settlement =
        Address::from_slice(&alloy::primitives::keccak256(format!("bench-settlement-{run}"))[12..]);
    let wallet_chain =
        remesa_wallet::chain::Chain::connect(rpc_url.as_str(), None, Duration::from_secs(30)).await?;
    let d = remesa_wallet::devnet::deploy(
        &wallet_chain,
        owner.clone(),
        &[remesa_wallet::devnet::PartnerRegistration {
            id: PARTNER_ID,
            settlement: run_settlement,
            signer: run_settlement,
        }],
    )
    .await
    .context("deploying USDC and RemittanceEscrow")?;
    let (token, escrow, deploy_block) = (d.token, d.escrow, d.deploy_block);
    let chain_id = chain.get_chain_id().await?;

    // Node, before it serves.
    let mut wa_env: Vec<(String, String)> = vec![
        ("REMESA_RPC_URL".into(), rpc_url.to_string()),
        ("REMESA_CHAIN_ID".into(), chain_id.to_string()),
        ("REMESA_WHATSAPP_APP_SECRET".into(), WA_APP_SECRET.into()),
        ("REMESA_WHATSAPP_VERIFY_TOKEN".into(), "bench-verify-token".into()),
        ("REMESA_WHATSAPP_ACCESS_TOKEN".into(), "bench-access-token".into()),
        ("REMESA_WHATSAPP_PHONE_NUMBER_ID".into(), "409552778964973".into()),
        ("REMESA_WHATSAPP_API_BASE".into(), graph_api_base.into()),
    ];
    let mut pg = None;
    let processes = match topology {
        Topology::Sqlite => 1,
        Topology::Postgres { processes } => {
            let db = crate::pg::FreshDatabase::create().await?;
            wa_env.push(("REMESA_DATABASE_URL".into(), db.url.clone()));
            pg = Some(db);
            (*processes).max(1)
        }
    };
    let setup = NodeSetup::new(ctx, "settle-node", &wa_env)?;
    let deployment = serde_json::json!({
        "chain_id": chain_id,
        "rpc_url": rpc_url.to_string(),
        "token": format!("{token:#x}"),
        "escrow": format!("{escrow:#x}"),
        "deployer": format!("{:#x}", owner.address()),
        "deploy_block": deploy_block,
    });
    std::fs::write(
        setup.data_dir.join("deployment.json"),
        serde_json::to_vec_pretty(&deployment)?,
    )?;
    let relayer: Address = setup
        .cli(&["keystore", "address"])?
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .parse()
        .context("reading the relayer address from `remesa keystore address`")?;
    let funding = ProviderBuilder::new()
        .wallet(EthereumWallet::from(funder))
        .connect_http(rpc_url.clone());
    let r = funding
        .send_transaction(
            TransactionRequest::default()
                .with_to(relayer)
                .with_value(U256::from(1000u64) * U256::from(10u64).pow(U256::from(18u64))),
        )
        .await?
        .get_receipt()
        .await?;
    ensure!(r.status(), "funding the relayer reverted");
    let settlement = run_settlement;

    // Serve; idle memory before anything else happens. More processes share the data directory (its keystore)
    // and the database, each on its own port; the load generator spreads the chat webhooks over all of them.
    let twins: Vec<NodeSetup> = (1..processes)
        .map(|k| setup.twin(&format!("settle-node-{k}")))
        .collect::<anyhow::Result<_>>()?;
    let node = setup.serve(ctx).await?;
    let mut others = Vec::with_capacity(twins.len());
    for t in twins {
        others.push(t.serve(ctx).await?);
    }
    tokio::time::sleep(idle_wait).await;
    let idle_rss_kib = node.proc.rss_kib()?;

    // Partner, rates, users, funds. The partner's system hears of each payout by the node's webhook.
    let sim_webhook_port = crate::procs::free_port()?;
    let sim_webhook_url = format!("http://127.0.0.1:{sim_webhook_port}/remesa");
    let signer = crate::partner::bench_signer(&PARTNER_ID.to_string());
    let public_key = base64::engine::general_purpose::STANDARD.encode(signer.verifying_key().as_bytes());
    node.admin(
        reqwest::Method::POST,
        "/v1/admin/partners",
        Some(&serde_json::json!({
            "id": PARTNER_ID, "name": "Bench Cash", "countries": ["GT"], "currencies": ["GTQ"],
            "payout_methods": ["cash_pickup"], "public_key": public_key, "webhook_url": sim_webhook_url,
            "settlement_address": format!("{settlement:#x}"),
        })),
    )
    .await?;
    node.admin(
        reqwest::Method::PUT,
        &format!("/v1/admin/partners/{PARTNER_ID}/rates"),
        Some(&serde_json::json!([{
            "country": "GT", "currency": "GTQ", "payout_method": "cash_pickup", "rate": "7.65",
            "fee_fixed": "0.50", "fee_bps": 50, "send_min": "1", "send_max": "2500", "valid_for_s": 86400
        }])),
    )
    .await?;
    node.admin(
        reqwest::Method::PUT,
        "/v1/admin/fx/GTQ",
        Some(&serde_json::json!({"rate": "7.70"})),
    )
    .await?;
    let mut users = Vec::with_capacity(n);
    for u in 0..n {
        let wa_id = wa_id(u);
        let user = node
            .admin(
                reqwest::Method::POST,
                "/v1/admin/users",
                Some(&serde_json::json!({
                    "channel": "whatsapp", "external_id": wa_id, "phone": format!("+{wa_id}"),
                    "display_name": format!("Bench Sender {u}")
                })),
            )
            .await?;
        let address: Address = user["address"]
            .as_str()
            .context("registered user has no address")?
            .parse()
            .context("user address")?;
        users.push(address);
    }
    let mints: Vec<Vec<u8>> = users
        .iter()
        .map(|a| {
            IMintableErc20::mintCall {
                to: *a,
                amount: U256::from(USER_FUNDS_BASE_UNITS),
            }
            .abi_encode()
        })
        .collect();
    let mint_gas = chain
        .estimate_gas(
            TransactionRequest::default()
                .with_from(owner.address())
                .with_to(token)
                .with_input(mints[0].clone()),
        )
        .await?;
    erc20::send_all(&chain, &owner, token, mints, mint_gas + mint_gas / 5)
        .await
        .context("minting to the users")?;
    wait_funded(&node, &users, Duration::from_secs(120 + n as u64 / 50)).await?;

    // The devnet partner, paying at once: the node's own simulator (`remesa partner-sim`'s code, working from the
    // node's webhooks), with the
    // recipient's pickup code brought to the counter (from the recipient's WhatsApp message, which the Graph API
    // stand-in received).
    let key_file = node.setup.data_dir.join("bench-partner.key");
    std::fs::write(&key_file, hex::encode([0x42u8; 32]))?;
    let cancel = tokio_util::sync::CancellationToken::new();
    // The simulator stops with this run, also when the run fails.
    let _stop_sim = cancel.clone().drop_guard();
    let sim_args = SimArgs {
        node_url: node.base_url.clone(),
        partner_id: PARTNER_ID,
        key_file,
        accept_delay_ms: 0,
        complete_delay_ms: 0,
        // Webhooks bring the work; the poll only catches up on what a webhook did not bring.
        poll_interval_ms: 2_000,
        webhook_addr: Some(std::net::SocketAddr::from(([127, 0, 0, 1], sim_webhook_port))),
        webhook_url: None,
        fail_every: 0,
        pickup_codes_file: None,
        stop_after: None,
    };
    let oracle: PickupOracle =
        Arc::new(move |id: String| Box::pin(async move { crate::floor::recipient_code(&id) }));
    let sim = tokio::spawn(remesa::partner::sim::run_with(
        sim_args,
        cancel.clone(),
        Some(oracle),
    ));

    // On the clock.
    let provider = ProviderBuilder::new()
        .disable_recommended_fillers()
        .connect_http(rpc_url.clone());
    let start_block = provider.get_block_number().await?;
    let started = Instant::now();
    let bases: Vec<String> = std::iter::once(&node)
        .chain(&others)
        .map(|n| n.base_url.clone())
        .collect();
    let mut sender = Some(tokio::spawn(send_conversations(bases, run, n)));
    let timeout = if ctx.smoke {
        Duration::from_secs(120)
    } else {
        Duration::from_secs(900)
    };
    let mut last_report = Instant::now();
    let mut progress = Vec::new();
    loop {
        let settled = count_state(&node, "settled").await?;
        if settled >= n {
            break;
        }
        node.proc_alive()?;
        for o in &others {
            o.proc_alive()?;
        }
        if sim.is_finished() {
            bail!("the partner simulator stopped: {:?}", sim.await);
        }
        if sender.as_ref().is_some_and(tokio::task::JoinHandle::is_finished)
            && let Some(s) = sender.take()
        {
            s.await?.context("sending the conversations")?;
        }
        if started.elapsed() > timeout {
            let states = state_histogram(&node).await.unwrap_or_default();
            let replies = crate::floor::last_graph_messages(3);
            bail!(
                "only {settled} of {n} remittances settled within {timeout:?}; states: {states:?}; the node's last \
                 WhatsApp replies: {replies:?}"
            );
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            let states = state_histogram(&node).await.unwrap_or_default();
            let line = format!("{:.0} s: {states:?}", started.elapsed().as_secs_f64());
            eprintln!("[bench]   {line}");
            progress.push(line);
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = started.elapsed();
    if let Some(s) = sender {
        s.await??;
    }
    let peak_hwm_kib = node.proc.hwm_kib()?;
    let end_block = provider.get_block_number().await?;

    // The relayer's on-chain cost for the run.
    let mut gas: u64 = 0;
    let mut txs = 0usize;
    let mut reverted = 0usize;
    for b in start_block + 1..=end_block {
        let block = provider
            .get_block_by_number(BlockNumberOrTag::Number(b))
            .full()
            .await?
            .context("missing block")?;
        let ours: Vec<_> = block
            .transactions
            .txns()
            .filter(|t| alloy::consensus::Transaction::kind(*t).is_call() && t.inner.signer() == relayer)
            .map(|t| *t.inner.tx_hash())
            .collect();
        for h in ours {
            let r = provider
                .get_transaction_receipt(h)
                .await?
                .context("missing receipt")?;
            gas += r.gas_used;
            txs += 1;
            if !r.status() {
                reverted += 1;
            }
        }
    }
    cancel.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), sim).await;
    for o in others {
        o.proc.stop(Duration::from_secs(15))?;
    }
    node.proc.stop(Duration::from_secs(15))?;
    drop(anvil);
    let db_url = match &pg {
        Some(db) => db.url.clone(),
        None => sqlite_url(&node.setup.data_dir.join("remesa.sqlite")),
    };
    let stages = stage_profile(&db_url)
        .await
        .context("reading the node's transition log")?;
    let inbox = inbox_profile(&db_url)
        .await
        .context("reading the node's chat inbox")?;
    let inbox_by_node = inbox_by_node(&db_url)
        .await
        .context("reading the node's chat inbox")?;
    if let Some(db) = pg {
        db.drop_now().await;
    }
    Ok(SettleRun {
        remittances: n,
        elapsed,
        idle_rss_kib,
        peak_hwm_kib,
        relayer_gas_per_remittance: gas as f64 / n as f64,
        relayer_txs: txs,
        blocks: end_block - start_block,
        progress,
        stages,
        inbox,
        relayer_reverted: reverted,
        inbox_by_node,
    })
}

fn wa_id(u: usize) -> String {
    // US numbers that libphonenumber accepts (New York area code, 555 exchange); at most 10,000 users.
    format!("1212555{:04}", u % 10_000)
}

impl Node {
    fn proc_alive(&self) -> anyhow::Result<()> {
        // `check_alive` needs `&mut`; the node's log tail is enough to say why it died.
        match crate::procs::status_kib(self.proc.pid(), "VmRSS:") {
            Ok(_) => Ok(()),
            Err(_) => bail!("the node exited; its log ends with:\n{}", self.proc.log_tail(30)),
        }
    }
}

/// Waits until the node's indexer shows every user's funds (checks the last one, then all).
async fn wait_funded(node: &Node, users: &[Address], timeout: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    let want = USER_FUNDS_BASE_UNITS.to_string();
    let funded = |v: &serde_json::Value| v["balance_base_units"].as_str() == Some(want.as_str());
    for a in users.iter().rev() {
        loop {
            let b = node
                .admin(reqwest::Method::GET, &format!("/v1/balances/{a:#x}"), None)
                .await?;
            if funded(&b) {
                break;
            }
            if started.elapsed() > timeout {
                bail!(
                    "the node's indexer did not show the users' funds within {timeout:?} (last answer: {b})"
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// Every user sends [`SEND_TEXT`] and then "yes" (each acknowledged before the next; a 503 is sent again after its
/// `Retry-After`, as the platforms do).
async fn send_conversations(bases: Vec<String>, run: usize, n: usize) -> anyhow::Result<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for w in 0..CONNECTIONS.min(n.max(1)) {
        // Connections take the node processes in turn, as a round-robin load balancer would.
        let base = bases.get(w % bases.len().max(1)).context("no node to send to")?;
        let url = format!("{base}/webhooks/whatsapp");
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()?;
            loop {
                let u = next.fetch_add(1, Ordering::Relaxed);
                if u >= n {
                    return anyhow::Ok(());
                }
                for (step, text) in [send_text(u), "yes".to_owned()].into_iter().enumerate() {
                    let body = whatsapp_message(
                        &wa_id(u),
                        &format!("Bench Sender {u}"),
                        &format!("wamid.settle.{run}.{u}.{step}"),
                        &text,
                    );
                    let sig = whatsapp_signature(body.as_bytes())?;
                    // A full inbox answers 503 with Retry-After; the platform delivers the same message again
                    // then, and so does this sender (the message id makes it the same message).
                    let mut attempts = 0;
                    loop {
                        attempts += 1;
                        let r = client
                            .post(url.as_str())
                            .header(reqwest::header::CONTENT_TYPE, "application/json")
                            .header("x-hub-signature-256", &sig)
                            .body(body.clone())
                            .send()
                            .await?;
                        if r.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE && attempts < 600 {
                            tokio::time::sleep(crate::node::retry_after(r.headers(), 10)).await;
                            continue;
                        }
                        ensure!(
                            r.status().is_success(),
                            "webhook answered {}: {}",
                            r.status(),
                            r.text().await.unwrap_or_default()
                        );
                        break;
                    }
                }
            }
        }));
    }
    for w in workers {
        w.await??;
    }
    Ok(())
}

/// How many remittances are in `state` (walks the operator list, 200 a page).
async fn count_state(node: &Node, state: &str) -> anyhow::Result<usize> {
    let mut count = 0;
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let mut path = format!("/v1/remittances?state={state}&limit=200");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = node.admin(reqwest::Method::GET, &path, None).await?;
        count += page["items"].as_array().map_or(0, Vec::len);
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    Ok(count)
}

/// Remittances per state (for progress lines and failure messages).
async fn state_histogram(node: &Node) -> anyhow::Result<BTreeMap<String, usize>> {
    let mut h = BTreeMap::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let mut path = "/v1/remittances?limit=200".to_owned();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = node.admin(reqwest::Method::GET, &path, None).await?;
        for r in page["items"].as_array().into_iter().flatten() {
            *h.entry(r["state"].as_str().unwrap_or("?").to_owned())
                .or_insert(0) += 1;
        }
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    Ok(h)
}
