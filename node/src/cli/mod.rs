//! The `remesa` command line: `serve`, `migrate`, `dev`, `reconcile`, `keystore init`, `partner add|list`,
//! `rates set`, `compliance export`, `sanctions load|status`, `chat` (terminal chat) and `partner-sim` (devnet partner).

pub mod compliance;
pub mod dev;
pub mod devnet;
pub mod reconcile;
pub mod sanctions;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use secrecy::SecretString;

use crate::app;
use crate::config::Config;
use crate::domain::PayoutMethod;
use crate::engine::RateInput;

#[derive(Debug, Parser)]
#[command(
    name = "remesa",
    version,
    about = "Remesa node: remittances through chat, settled on chain, paid out by partners"
)]
pub struct Cli {
    /// TOML configuration file (then REMESA_* environment variables override it).
    #[arg(long, global = true, env = "REMESA_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API and run the chain workers.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// One command for a complete local system: anvil, contracts, keystore, demo partner and users, node.
    Dev(dev::DevArgs),
    /// Compare the ledger's escrow account with the escrow contract's balance at the indexed block.
    Reconcile,
    /// The node's master keystore.
    #[command(subcommand)]
    Keystore(KeystoreCmd),
    /// Compliance records (operator).
    #[command(subcommand)]
    Compliance(ComplianceCmd),
    /// Sanctions lists (operator): load OFAC's or the UN's list, show the lists in force.
    #[command(subcommand)]
    Sanctions(sanctions::SanctionsCmd),
    /// Partners (operator).
    #[command(subcommand)]
    Partner(PartnerCmd),
    /// Posted rates (operator, until partners post their own).
    #[command(subcommand)]
    Rates(RatesCmd),
    /// Web console sign-ins (operator): operators of `/ops/`, counter agents of `/partner/`.
    #[command(subcommand)]
    Console(ConsoleCmd),
    /// Devnet helpers (anvil only): deploy, mint, time travel.
    #[command(subcommand)]
    Devnet(DevnetCmd),
    /// Chat with a running node as a chat user (devnet).
    Chat(crate::chat::terminal::ChatArgs),
    /// A simulated cash-out partner working through the partner API (devnet).
    PartnerSim(crate::partner::sim::SimArgs),
}

#[derive(Debug, Subcommand)]
pub enum ConsoleCmd {
    /// Create a sign-in. The password is read from REMESA_CONSOLE_PASSWORD, else from the first line of standard
    /// input (10 to 128 characters); it is stored only as an argon2id hash.
    Add {
        /// `operator` (the `/ops/` console) or `agent` (the `/partner/` counter; needs `--partner`).
        #[arg(long)]
        role: String,
        #[arg(long)]
        username: String,
        /// The name the consoles show.
        #[arg(long)]
        display_name: String,
        /// The partner an agent works for.
        #[arg(long)]
        partner: Option<u64>,
    },
    /// Disable a sign-in: it cannot sign in again, and its sessions end at once.
    Disable {
        #[arg(long)]
        username: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ComplianceCmd {
    /// Every compliance event (limit refusals, …) as CSV, oldest first.
    Export {
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeystoreCmd {
    /// Create the node's master mnemonic, encrypted with REMESA_KEYSTORE_PASSPHRASE(_FILE), in the data directory.
    Init,
    /// Print the relayer address (fund it with gas).
    Address,
}

#[derive(Debug, Subcommand)]
pub enum DevnetCmd {
    /// Deploy the contracts to REMESA_RPC_URL (unless `<data_dir>/deployment.json` exists), create the node
    /// keystore (unless it exists) and give the relayer gas. Prints the deployment.
    Setup,
    /// Mint test dollars (whole tokens, decimal) to an address.
    Mint {
        #[arg(long)]
        to: String,
        #[arg(long)]
        amount: String,
    },
    /// Move anvil's clock forward and mine a block.
    TimeTravel {
        #[arg(long)]
        seconds: u64,
    },
    /// Register the demo partners and rates into the configured node database (and escrow).
    Seed {
        /// Where the node POSTs demo partner 1's signed webhooks (e.g. a `remesa partner-sim --webhook-addr`);
        /// without it partner 1 has no webhook URL and works from polling and its event feed.
        #[arg(long)]
        partner_webhook_url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PartnerCmd {
    /// Register a partner (and in the escrow, when this node holds the owner key).
    Add(crate::partner::wiring::PartnerAddArgs),
    /// Write a new Ed25519 key for a partner (hex seed file, mode 0600) and print its public key.
    Keygen {
        /// Where to write the seed.
        file: PathBuf,
    },
    /// List partners.
    List,
}

#[derive(Debug, Subcommand)]
pub enum RatesCmd {
    /// Post one rate for a partner.
    Set(RateSetArgs),
}

#[derive(Debug, Args)]
pub struct RateSetArgs {
    #[arg(long)]
    pub partner: u64,
    #[arg(long)]
    pub country: String,
    #[arg(long)]
    pub currency: String,
    #[arg(long)]
    pub method: String,
    /// Payout currency per token.
    #[arg(long)]
    pub rate: String,
    #[arg(long, default_value = "0")]
    pub fee_fixed: String,
    #[arg(long, default_value_t = 0)]
    pub fee_bps: u32,
    #[arg(long, default_value = "1")]
    pub min: String,
    #[arg(long, default_value = "10000")]
    pub max: String,
    #[arg(long, default_value_t = 86_400)]
    pub valid_for_s: u64,
    /// Also set the mid-market reference rate of the currency.
    #[arg(long)]
    pub mid_market: Option<String>,
}

fn method(s: &str) -> anyhow::Result<PayoutMethod> {
    PayoutMethod::parse(s.trim()).with_context(|| format!("unknown payout method {s:?}"))
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let load = || Config::load(cli.config.as_deref()).context("loading the configuration");
    match cli.command {
        Command::Serve => {
            let app = app::build(load()?).await.context("starting the node")?;
            app.run_until_stopped().await?;
        }
        Command::Migrate => {
            let config = load()?;
            let db = crate::store::Db::connect(&config.database_url(), 2).await?;
            db.migrate().await?;
            println!("migrations applied");
        }
        Command::Dev(args) => dev::run(load()?, args).await?,
        Command::Reconcile => {
            let ok = reconcile::run(load()?).await?;
            if !ok {
                std::process::exit(1);
            }
        }
        Command::Compliance(ComplianceCmd::Export { out }) => {
            let n = compliance::export(load()?, out.as_deref()).await?;
            if out.is_some() {
                println!("{n} compliance events written");
            }
        }
        Command::Sanctions(sanctions::SanctionsCmd::Load(a)) => {
            let meta = sanctions::load(load()?, &a).await?;
            println!("{}", serde_json::to_string_pretty(&meta)?);
        }
        Command::Sanctions(sanctions::SanctionsCmd::Status(a)) => {
            let status = sanctions::status(load()?, &a).await?;
            println!("{}", serde_json::to_string_pretty(&status)?);
        }
        Command::Keystore(KeystoreCmd::Init) => {
            let config = load()?;
            let pass = config
                .keystore_passphrase()?
                .context("set REMESA_KEYSTORE_PASSPHRASE or REMESA_KEYSTORE_PASSPHRASE_FILE")?;
            let custody = crate::engine::Custody::create_keystore(&app::keystore_path(&config), &pass)?;
            println!(
                "keystore created; relayer address {:#x}",
                custody.relayer()?.address()
            );
        }
        Command::Keystore(KeystoreCmd::Address) => {
            let config = load()?;
            let custody = app::load_custody(&config)?.context("no keystore passphrase configured")?;
            println!("{:#x}", custody.relayer()?.address());
        }
        Command::Partner(PartnerCmd::Add(a)) => {
            let st = app::state(load()?).await?;
            let added = crate::partner::add_partner(&st, a)
                .await
                .map_err(anyhow::Error::msg)?;
            println!("{}", serde_json::to_string_pretty(&added)?);
        }
        Command::Console(ConsoleCmd::Add {
            role,
            username,
            display_name,
            partner,
        }) => {
            use crate::domain::account::{DisplayName, Password, Role, Username};
            let password = match std::env::var("REMESA_CONSOLE_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            let new = crate::engine::accounts::NewAccount {
                username: Username::parse(&username)?,
                password: Password::parse(&password)?,
                display_name: DisplayName::parse(&display_name)?,
                role: Role::parse(&role)?,
                partner: partner.map(crate::domain::PartnerId::new).transpose()?,
            };
            let st = app::state(load()?).await?;
            let a = st.engine.create_account(new).await?;
            println!("{} {} created", a.role.as_str(), a.username);
        }
        Command::Console(ConsoleCmd::Disable { username }) => {
            let st = app::state(load()?).await?;
            let u = crate::domain::account::Username::parse(&username)?;
            st.engine.set_account_active(&u, None, false).await?;
            println!("{username} disabled");
        }
        Command::Partner(PartnerCmd::Keygen { file }) => {
            let public_key = crate::partner::keygen(&file).map_err(anyhow::Error::msg)?;
            println!("{public_key}");
        }
        Command::Partner(PartnerCmd::List) => {
            let st = app::state(load()?).await?;
            for p in st.engine.list_partners().await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    p.id,
                    p.name,
                    p.countries.join(","),
                    p.currencies.join(","),
                    p.status
                );
            }
        }
        Command::Rates(RatesCmd::Set(r)) => {
            let st = app::state(load()?).await?;
            let rates = st
                .engine
                .set_rates(
                    crate::domain::PartnerId::new(r.partner)?,
                    vec![RateInput {
                        country: r.country,
                        currency: r.currency.clone(),
                        payout_method: method(&r.method)?,
                        rate: r.rate,
                        fee_fixed: r.fee_fixed,
                        fee_bps: r.fee_bps,
                        send_min: r.min,
                        send_max: r.max,
                        valid_for_s: r.valid_for_s,
                    }],
                )
                .await?;
            if let Some(mid) = r.mid_market {
                st.engine.set_mid_market_rate(&r.currency, &mid).await?;
            }
            println!("{} rates posted for partner {}", rates.len(), r.partner);
        }
        Command::Devnet(cmd) => devnet_cmd(load()?, cmd).await?,
        Command::Chat(args) => crate::chat::terminal::run(args).await?,
        Command::PartnerSim(args) => {
            let cancel = tokio_util::sync::CancellationToken::new();
            let c = cancel.clone();
            tokio::spawn(async move {
                let _ = tokio::signal::ctrl_c().await;
                c.cancel();
            });
            crate::partner::sim::run(args, cancel).await?;
        }
    }
    Ok(())
}

async fn devnet_cmd(config: Config, cmd: DevnetCmd) -> anyhow::Result<()> {
    let rpc = config.rpc_url.clone().context("set REMESA_RPC_URL")?;
    let deployment_path = config
        .deployment
        .clone()
        .unwrap_or_else(|| config.data_dir.join("deployment.json"));
    match cmd {
        DevnetCmd::Setup => {
            let d = if deployment_path.exists() {
                app::Deployment::load(&deployment_path)?
            } else {
                let d = devnet::deploy(&rpc).await?;
                devnet::write_deployment(&deployment_path, &d)?;
                d
            };
            let pass = config
                .keystore_passphrase()?
                .context("set REMESA_KEYSTORE_PASSPHRASE or REMESA_KEYSTORE_PASSPHRASE_FILE")?;
            let ks = app::keystore_path(&config);
            let custody = if ks.exists() {
                crate::engine::Custody::open_keystore(&ks, &pass)?
            } else {
                crate::engine::Custody::create_keystore(&ks, &pass)?
            };
            let relayer = custody.relayer()?.address();
            devnet::fund_gas(&rpc, relayer).await?;
            println!(
                "{}",
                serde_json::json!({"deployment": d, "relayer": format!("{relayer:#x}")})
            );
        }
        DevnetCmd::Mint { to, amount } => {
            let d = app::Deployment::load(&deployment_path)?;
            let to: alloy::primitives::Address = to.parse().context("--to is not an address")?;
            let st =
                app::ChainRuntime::connect(&rpc, d.clone(), None, &app::ExpectedToken::default()).await?;
            let amount = crate::domain::TokenAmount::parse_decimal(&amount, st.info.token_decimals)?;
            devnet::mint(&rpc, &d, to, amount.base_units()).await?;
            println!("minted {amount} to {to:#x}");
        }
        DevnetCmd::TimeTravel { seconds } => {
            devnet::time_travel(&rpc, seconds).await?;
            println!("advanced {seconds} s");
        }
        DevnetCmd::Seed { partner_webhook_url } => {
            let st = app::state(config).await?;
            dev::seed(&st, partner_webhook_url).await?;
        }
    }
    Ok(())
}

/// A secret from a CLI string (helper for tests and dev).
pub fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}
