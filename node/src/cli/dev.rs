//! `remesa dev`: one command for a complete local system — anvil (from the installed toolchain), the contracts
//! (from the committed artifacts), the node's keystore, a demo partner with rates (also registered in the escrow),
//! funded demo users, the chain workers, a simulated partner, and the HTTP API.
//!
//! Devnet only: every run starts a fresh chain, so the dev data directory is recreated each time.

use std::path::PathBuf;

use alloy::primitives::{Address, U256};
use anyhow::Context;
use figment::Figment;
use figment::providers::Serialized;
use secrecy::{ExposeSecret, SecretString};

use super::devnet;
use crate::app;
use crate::config::Config;
use crate::domain::{PartnerId, PayoutMethod, PhoneNumber};
use crate::engine::{NewUser, RateInput};

/// Options of `remesa dev`.
#[derive(Debug, Clone, clap::Args)]
pub struct DevArgs {
    /// Anvil's port.
    #[arg(long, default_value_t = 8545)]
    pub anvil_port: u16,
    /// Anvil block time in seconds (0: mine on every transaction).
    #[arg(long, default_value_t = 1)]
    pub block_time_s: u64,
    /// Where the devnet state lives (default: `<data_dir>/dev`); recreated on every run.
    #[arg(long)]
    pub dev_dir: Option<PathBuf>,
    /// Do not start the simulated partner.
    #[arg(long)]
    pub no_partner_sim: bool,
}

/// The demo chat users (terminal chat identities) and what they get.
pub const DEMO_USERS: [(&str, &str); 2] = [("+14155550100", "Alice"), ("+14155550101", "Bob")];
/// Test dollars minted to each demo user.
pub const DEMO_FUNDS_TOKENS: u64 = 1_000;
/// Anvil account 2: the demo partner's settlement address.
pub const DEMO_SETTLEMENT: &str = "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc";
const DEV_OPERATOR_TOKEN: &str = "dev-operator-token";
/// The devnet's console logins (printed on purpose, like the operator token; devnet only).
pub const DEV_AGENT_USERNAME: &str = "agent.tienda";
pub const DEV_AGENT_PASSWORD: &str = "dev-agent-password";
/// An agent of partner 1 (simulated), to see that one partner's agent cannot see another's payouts.
pub const DEV_AGENT1_USERNAME: &str = "agent.banco";
pub const DEV_AGENT1_PASSWORD: &str = "dev-agent-password";
pub const DEV_OPERATOR_USERNAME: &str = "operator";
pub const DEV_OPERATOR_PASSWORD: &str = "dev-operator-password";
const DEV_PASSPHRASE: &str = "remesa-dev-passphrase";

pub async fn run(config: Config, args: DevArgs) -> anyhow::Result<()> {
    let dir = args
        .dev_dir
        .clone()
        .unwrap_or_else(|| config.data_dir.join("dev"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    // Set up in automine mode (every set-up transaction confirms at once), then switch to the block time below.
    let anvil = devnet::start_anvil(args.anvil_port, 0)?;
    let rpc_url = anvil.endpoint();
    println!("anvil: {rpc_url} (chain {})", anvil.chain_id());
    let deployment = devnet::deploy(&rpc_url).await?;
    let deployment_path = dir.join("deployment.json");
    devnet::write_deployment(&deployment_path, &deployment)?;
    println!("token {:#x}, escrow {:#x}", deployment.token, deployment.escrow);

    let operator = config
        .operator_token
        .as_ref()
        .map_or_else(|| DEV_OPERATOR_TOKEN.to_owned(), |t| t.expose_secret().to_owned());
    let passphrase = config
        .keystore_passphrase()?
        .map_or_else(|| DEV_PASSPHRASE.to_owned(), |p| p.expose_secret().to_owned());
    crate::engine::Custody::create_keystore(
        &app::keystore_path(&Config {
            data_dir: dir.clone(),
            ..Config::default()
        }),
        &SecretString::from(passphrase.clone()),
    )?;

    let fig = Figment::new().merge(Serialized::defaults(DevOverrides {
        data_dir: dir.clone(),
        database_url: None,
        rpc_url: rpc_url.clone(),
        deployment: deployment_path,
        operator_token: operator.clone(),
        keystore_passphrase: passphrase,
        escrow_owner_key: devnet::DEV_DEPLOYER_KEY.to_owned(),
        http_addr: config.http_addr.to_string(),
    }));
    let mut dev_config = Config::from_figment(fig)?;
    dev_config.chat = config.chat.clone();
    dev_config.partner = config.partner.clone();
    dev_config.chain = config.chain.clone();
    dev_config.chain.confirmations = 1;
    dev_config.chain.batch_delay_ms_max = 1_000;
    // Small demo limits (so a refusal is easy to try), unless the configuration has its own.
    dev_config.limits = if config.limits.is_empty() {
        demo_limits()
    } else {
        config.limits.clone()
    };
    let limits = crate::config::compliance::parse_limits(&dev_config.limits).map_err(anyhow::Error::msg)?;
    dev_config.kyc = config.kyc.clone();
    dev_config.travel_rule = config.travel_rule.clone();
    dev_config.cancel_window_s = config.cancel_window_s;
    // The devnet is served over plain HTTP on 127.0.0.1: a `Secure` cookie would never come back.
    dev_config.console = config.console.clone();
    dev_config.console.secure_cookies = false;
    // Screening on, against the demo list (OFAC's file formats), unless the configuration names its own lists.
    dev_config.sanctions = config.sanctions.clone();
    if config.sanctions.ofac_dir.is_none() && config.sanctions.un_xml.is_none() {
        dev_config.sanctions.ofac_dir = Some(write_demo_sanctions(&dir)?);
        dev_config.sanctions.required = true;
    }

    let state = app::state(dev_config).await?;
    let custody = state.engine.custody().context("keystore")?;
    devnet::fund_gas(&rpc_url, custody.relayer()?.address()).await?;
    // The simulated partner 1 receives the node's signed webhooks (and works on a payout when its
    // `payout.created` arrives) at a free local port, registered as its webhook URL.
    let sim_webhook = if args.no_partner_sim {
        None
    } else {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = probe.local_addr()?;
        drop(probe);
        Some(addr)
    };
    seed(&state, sim_webhook.map(|a| format!("http://{a}/webhooks"))).await?;
    seed_console_logins(&state).await?;
    for (phone, name) in DEMO_USERS {
        let (u, _) = state
            .engine
            .register_user(NewUser {
                channel: "terminal".into(),
                external_id: phone.into(),
                phone: Some(PhoneNumber::parse(phone, None)?),
                display_name: Some(name.into()),
                lang: None,
                self_custody_address: None,
            })
            .await?;
        let address: Address = u.address.parse()?;
        devnet::mint(
            &rpc_url,
            &deployment,
            address,
            U256::from(DEMO_FUNDS_TOKENS) * U256::from(1_000_000u64),
        )
        .await?;
        println!(
            "demo user {name} {phone}: custodial wallet {} funded with {DEMO_FUNDS_TOKENS} USDC",
            u.address
        );
    }

    if args.block_time_s > 0 {
        devnet::set_interval_mining(&rpc_url, args.block_time_s).await?;
    }
    let app = app::build_from_state(state.clone()).await?;
    let node_url = format!("http://127.0.0.1:{}", app.port());
    if !args.no_partner_sim {
        // The simulator stands in for the recipient at the counter: it reads the code from the recipient's chat
        // message (queued, not taken: the recipient still gets it).
        let chat = crate::chat::service(&state);
        let recipient: crate::partner::sim::PickupOracle = std::sync::Arc::new(move |id: String| {
            let chat = chat.clone();
            Box::pin(async move { chat.recipient_pickup_code(&id).await.ok().flatten() })
        });
        crate::partner::spawn_dev_sim(&state, 1, &node_url, recipient, sim_webhook)
            .map_err(anyhow::Error::msg)?;
        println!(
            "partner simulator: partner 1 accepts and pays payouts through the signed partner API, told by the \
             node's webhooks{}",
            sim_webhook
                .map(|a| format!(" at http://{a}/webhooks"))
                .unwrap_or_default()
        );
        println!(
            "partner 2 is not simulated: sends to Honduras (+504) wait for a person at the counter page (or POST \
             /v1/admin/payouts/{{id}}/accept|complete|fail), so a cancel within 30 minutes can be tried by hand"
        );
    }
    println!();
    println!("Remesa devnet node: {node_url}  (OpenAPI: {node_url}/openapi.json)");
    println!("operator token:     {operator}");
    println!(
        "partner counter:    {node_url}/partner/  agent {DEV_AGENT_USERNAME} / {DEV_AGENT_PASSWORD} (partner 2, \
         Tienda Express: pays out sends to Honduras, +504)"
    );
    println!(
        "operator console:   {node_url}/ops/  operator {DEV_OPERATOR_USERNAME} / {DEV_OPERATOR_PASSWORD}"
    );
    for l in &limits {
        let show =
            |v: Option<rust_decimal::Decimal>| v.map_or_else(|| "-".to_owned(), |d| format!("{d} USD"));
        println!(
            "sending limits:     tier {} to {}: {} per transfer, {} per 24 h, {} per 30 days",
            l.tier,
            l.country.as_deref().unwrap_or("any country"),
            show(l.per_tx_usd),
            show(l.per_day_usd),
            show(l.per_30d_usd)
        );
    }
    let screening = state.engine.sanctions_status();
    for l in &screening.lists {
        println!(
            "sanctions list:     {} of {} ({} entries); a hit holds the transfer for review \
             (GET {node_url}/v1/admin/compliance/holds)",
            l.source,
            l.list_date.as_deref().unwrap_or("unknown date"),
            l.entries
        );
    }
    if screening.lists.iter().any(|l| l.loaded_by.contains("demo")) {
        println!("  try a held send:  send 50 to Joaquin Guzman Loera +52 55 1234 5678, cash pickup");
    }
    println!(
        "chat as a demo user: REMESA_OPERATOR_TOKEN={operator} remesa chat --node {node_url} --as {}",
        DEMO_USERS[0].0
    );
    println!("Ctrl-C stops everything (the devnet is recreated on the next run).");
    app.run_until_stopped().await?;
    drop(anvil);
    Ok(())
}

/// The devnet's demo sanctions list, in OFAC's exact file formats (`node/demo/sanctions`): written to
/// `<dir>/sanctions-demo`, loaded at start like a configured list.
fn write_demo_sanctions(dir: &std::path::Path) -> anyhow::Result<PathBuf> {
    let out = dir.join("sanctions-demo");
    std::fs::create_dir_all(&out)?;
    for (name, bytes) in [
        ("SDN.CSV", &include_bytes!("../../demo/sanctions/SDN.CSV")[..]),
        ("ALT.CSV", &include_bytes!("../../demo/sanctions/ALT.CSV")[..]),
        ("ADD.CSV", &include_bytes!("../../demo/sanctions/ADD.CSV")[..]),
    ] {
        std::fs::write(out.join(name), bytes).with_context(|| format!("writing {name}"))?;
    }
    Ok(out)
}

#[derive(serde::Serialize)]
struct DevOverrides {
    data_dir: PathBuf,
    database_url: Option<String>,
    rpc_url: String,
    deployment: PathBuf,
    operator_token: String,
    keystore_passphrase: String,
    escrow_owner_key: String,
    http_addr: String,
}

/// The demo partner (id 1, key in the data directory, settlement = anvil account 2, registered in the escrow) with
/// Guatemala and Mexico rates, a second partner with a worse GT rate (routing picks partner 1), mid-market rates.
pub async fn seed(state: &app::AppState, partner_webhook_url: Option<String>) -> anyhow::Result<()> {
    let (_, public_key) =
        crate::partner::wiring::demo_partner_key(&state.config.data_dir, 1).map_err(anyhow::Error::msg)?;
    let added = crate::partner::add_partner(
        state,
        crate::partner::wiring::PartnerAddArgs {
            id: 1,
            name: "Banco Demo".into(),
            countries: vec!["GT".into(), "MX".into()],
            currencies: vec!["GTQ".into(), "MXN".into()],
            methods: vec![
                "cash_pickup".into(),
                "bank_deposit".into(),
                "mobile_wallet".into(),
            ],
            public_key,
            webhook_url: partner_webhook_url,
            settlement_address: DEMO_SETTLEMENT.into(),
            signer_address: None,
        },
    )
    .await
    .map_err(anyhow::Error::msg)?;
    if !added.registered_on_chain {
        anyhow::bail!(
            "demo partner not registered in the escrow: {:?}",
            added.chain_note
        );
    }
    let (_, key2) =
        crate::partner::wiring::demo_partner_key(&state.config.data_dir, 2).map_err(anyhow::Error::msg)?;
    crate::partner::add_partner(
        state,
        crate::partner::wiring::PartnerAddArgs {
            id: 2,
            name: "Tienda Express".into(),
            countries: vec!["GT".into(), "HN".into()],
            currencies: vec!["GTQ".into(), "HNL".into()],
            methods: vec!["cash_pickup".into()],
            public_key: key2,
            webhook_url: None,
            settlement_address: "0x90f79bf6eb2c4f870365e785982e1f101e93b906".into(),
            signer_address: None,
        },
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let rate =
        |country: &str, currency: &str, method: PayoutMethod, rate: &str, fee: &str, bps: u32| RateInput {
            country: country.into(),
            currency: currency.into(),
            payout_method: method,
            rate: rate.into(),
            fee_fixed: fee.into(),
            fee_bps: bps,
            send_min: "1".into(),
            send_max: "2500".into(),
            valid_for_s: 30 * 24 * 3600,
        };
    state
        .engine
        .set_rates(
            PartnerId::new(1)?,
            vec![
                rate("GT", "GTQ", PayoutMethod::CashPickup, "7.6543", "1.50", 50),
                rate("GT", "GTQ", PayoutMethod::BankDeposit, "7.68", "0.99", 25),
                rate("GT", "GTQ", PayoutMethod::MobileWallet, "7.66", "0.50", 40),
                rate("MX", "MXN", PayoutMethod::CashPickup, "17.05", "1.99", 50),
                rate("MX", "MXN", PayoutMethod::BankDeposit, "17.12", "0.99", 25),
            ],
        )
        .await?;
    state
        .engine
        .set_rates(
            PartnerId::new(2)?,
            vec![
                rate("GT", "GTQ", PayoutMethod::CashPickup, "7.58", "1.00", 75),
                // Honduras: only this partner, which is not simulated: its payouts wait for a person.
                rate("HN", "HNL", PayoutMethod::CashPickup, "24.55", "1.50", 50),
            ],
        )
        .await?;
    state.engine.set_mid_market_rate("GTQ", "7.70").await?;
    state.engine.set_mid_market_rate("MXN", "17.20").await?;
    state.engine.set_mid_market_rate("HNL", "24.70").await?;
    println!(
        "demo partners: 1 Banco Demo (GT, MX), 2 Tienda Express (GT, HN); rates and mid-market rates posted"
    );
    Ok(())
}

/// The devnet's sending limits per KYC tier: small for unverified (tier 0) senders, so a refusal is easy to try,
/// larger once verified (`verify` in the chat raises a sender to tier 1).
/// The devnet's console logins: an agent of each demo partner and an operator.
async fn seed_console_logins(state: &app::AppState) -> anyhow::Result<()> {
    use crate::domain::account::{DisplayName, Password, Role, Username};
    use crate::engine::accounts::NewAccount;
    for (username, password, name, role, partner) in [
        (
            DEV_AGENT_USERNAME,
            DEV_AGENT_PASSWORD,
            "Ana (Tienda Express)",
            Role::Agent,
            Some(2),
        ),
        (
            DEV_AGENT1_USERNAME,
            DEV_AGENT1_PASSWORD,
            "Luis (Banco Demo)",
            Role::Agent,
            Some(1),
        ),
        (
            DEV_OPERATOR_USERNAME,
            DEV_OPERATOR_PASSWORD,
            "Operator",
            Role::Operator,
            None,
        ),
    ] {
        state
            .engine
            .create_account(NewAccount {
                username: Username::parse(username)?,
                password: Password::parse(password)?,
                display_name: DisplayName::parse(name)?,
                role,
                partner: partner.map(PartnerId::new).transpose()?,
            })
            .await?;
    }
    Ok(())
}

fn demo_limits() -> Vec<crate::config::LimitRule> {
    [
        (0, "500", "1000", "3000"),
        (1, "2000", "5000", "15000"),
        (2, "10000", "25000", "75000"),
    ]
    .into_iter()
    .map(|(tier, tx, day, month)| crate::config::LimitRule {
        tier,
        country: "*".into(),
        per_tx_usd: Some(tx.into()),
        per_day_usd: Some(day.into()),
        per_30d_usd: Some(month.into()),
    })
    .collect()
}
