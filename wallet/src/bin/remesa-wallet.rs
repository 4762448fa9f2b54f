//! `remesa-wallet`: a self-custody wallet for Remesa remittances (see wallet/README.md).
//!
//! Exit codes: 0 ok, 2 user error (bad input, wrong passphrase, insufficient balance, refused by the contract),
//! 3 chain or network failure (RPC unreachable, chain id mismatch, timeout), 1 anything else.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use alloy::primitives::{Address, B256};
use alloy::signers::local::PrivateKeySigner;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use remesa_wallet::chain::{Chain, ChainError, TokenInfo, redact_url};
use remesa_wallet::contracts::EscrowStatus;
use remesa_wallet::devnet::{self, Deployment, DevnetError};
use remesa_wallet::eip3009::{self, AuthorizationKind, AuthorizationTerms, SignedAuthorization};
use remesa_wallet::keys::{self, KeyError, Keystore, Mnemonic, Passphrase, WalletKind};
use remesa_wallet::money::{MoneyError, TokenAmount};
use remesa_wallet::relayer::{PendingTx, ReceiptSummary, Relayer, RelayerConfig};
use remesa_wallet::terms::{ClaimSecret, PickupCode, RemittanceTerms};
use serde_json::{Value, json};
use zeroize::Zeroizing;

const EXIT_USER: u8 = 2;
const EXIT_CHAIN: u8 = 3;

#[derive(Parser, Debug)]
#[command(
    name = "remesa-wallet",
    version,
    about = "Self-custody wallet for Remesa remittances"
)]
struct Cli {
    /// JSON-RPC endpoint: http(s):// or ws(s)://.
    #[arg(
        long,
        global = true,
        env = "REMESA_RPC_URL",
        hide_env_values = true,
        default_value = "http://127.0.0.1:8545"
    )]
    rpc_url: String,
    /// Deployment file (token and escrow addresses) written by scripts/devnet.sh.
    #[arg(long, global = true, env = "REMESA_DEPLOYMENT", default_value = devnet::DEFAULT_DEPLOYMENT_PATH)]
    deployment: PathBuf,
    /// Directory of encrypted wallets [default: ~/.remesa-wallet].
    #[arg(long, global = true, env = "REMESA_WALLET_DIR")]
    keystore_dir: Option<PathBuf>,
    /// Expected chain id; a different chain is refused [default: the deployment file's].
    #[arg(long, global = true)]
    chain_id: Option<u64>,
    /// Machine-readable output on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// Confirmations to wait for after sending.
    #[arg(long, global = true, default_value_t = 1)]
    confirmations: u64,
    /// Longest wait for a transaction's confirmations, in seconds.
    #[arg(long, global = true, default_value_t = 60)]
    timeout_s: u64,
    /// Read the keystore passphrase from the first line of this file (else REMESA_WALLET_PASSPHRASE, else a prompt).
    #[arg(long, global = true)]
    passphrase_file: Option<PathBuf>,
    /// Name of the environment variable holding the relayer's private key (it pays the gas).
    #[arg(long, global = true, default_value = "REMESA_RELAYER_KEY")]
    relayer_key_env: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a wallet from a fresh BIP-39 mnemonic, stored encrypted; shows the mnemonic once.
    New {
        #[arg(long, default_value = "default")]
        name: String,
        /// 12 or 24 words.
        #[arg(long, default_value_t = 24)]
        words: usize,
        /// With --json, include the mnemonic in the output (otherwise it is shown only in human mode).
        #[arg(long)]
        show_mnemonic: bool,
    },
    /// Import a mnemonic or a hex private key, read from stdin (or a hidden prompt) — never from arguments.
    Import {
        #[arg(long, default_value = "default")]
        name: String,
    },
    /// List wallets (no passphrase needed).
    List,
    /// Addresses of a wallet's accounts m/44'/60'/0'/0/<index> (needs the passphrase for a mnemonic wallet).
    Address {
        #[arg(default_value = "default")]
        wallet: String,
        /// First index.
        #[arg(long, default_value_t = 0)]
        index: u32,
        /// How many consecutive accounts (at most 100).
        #[arg(long, default_value_t = 1)]
        count: u32,
    },
    /// Token and native balance of a wallet name or an 0x address.
    Balance {
        #[arg(default_value = "default")]
        account: String,
    },
    /// Devnet only: mint test dollars from the minter key.
    Faucet {
        #[arg(allow_hyphen_values = true)]
        amount: String,
        /// Wallet name or 0x address.
        #[arg(long, default_value = "default")]
        to: String,
    },
    /// Gasless transfer: sign an EIP-3009 transferWithAuthorization and submit it through the relayer.
    Send {
        #[arg(allow_hyphen_values = true)]
        amount: String,
        /// Wallet name or 0x address.
        to: String,
        #[arg(long, default_value = "default")]
        from: String,
        /// Account index within a mnemonic wallet.
        #[arg(long, default_value_t = 0)]
        index: u32,
        /// Seconds the authorization stays valid.
        #[arg(long, default_value_t = 3600)]
        valid_for_s: u64,
    },
    /// Sign the ReceiveWithAuthorization for a remittance and print what the node's API takes.
    Remit {
        #[arg(allow_hyphen_values = true)]
        amount: String,
        /// Cash-out partner id (registered at the escrow).
        #[arg(long)]
        partner: u64,
        /// Refundable this many seconds from now (chain time).
        #[arg(long, default_value_t = 86_400, conflicts_with = "expires_at_unix_s")]
        expires_in_s: u64,
        #[arg(long)]
        expires_at_unix_s: Option<u64>,
        /// The recipient's pickup code (12 Crockford base32 characters); generated when absent.
        #[arg(long)]
        pickup_code: Option<String>,
        /// Seconds the signature stays valid for a deposit.
        #[arg(long, default_value_t = 3600)]
        valid_for_s: u64,
        #[arg(long, default_value = "default")]
        from: String,
        #[arg(long, default_value_t = 0)]
        index: u32,
        /// Also deposit it on the escrow through the relayer.
        #[arg(long)]
        submit: bool,
        /// Write the remittance (terms, pickup code, claim salt, signature) to this file (mode 0600), for
        /// status/refund.
        #[arg(long)]
        save: Option<PathBuf>,
    },
    /// Escrow status of a remittance: its 0x id, or a file (or - for stdin) with its terms (`remit --save`).
    Status { remittance: String },
    /// Refund an expired remittance to its sender (anyone may): a file (or -) with its terms.
    Refund { remittance: String },
}

/// An error with its exit code. The message never contains secrets.
#[derive(Debug)]
struct CliError {
    code: u8,
    message: String,
}

impl CliError {
    fn user(message: impl Into<String>) -> Self {
        Self {
            code: EXIT_USER,
            message: message.into(),
        }
    }
}

impl From<KeyError> for CliError {
    fn from(e: KeyError) -> Self {
        let code = if matches!(e, KeyError::Io { .. }) {
            1
        } else {
            EXIT_USER
        };
        Self {
            code,
            message: e.to_string(),
        }
    }
}

impl From<ChainError> for CliError {
    fn from(e: ChainError) -> Self {
        Self {
            code: if e.is_user_error() { EXIT_USER } else { EXIT_CHAIN },
            message: e.to_string(),
        }
    }
}

impl From<DevnetError> for CliError {
    fn from(e: DevnetError) -> Self {
        match e {
            DevnetError::Chain(c) => c.into(),
            other => Self::user(other.to_string()),
        }
    }
}

fn amount_error(input_name: &str, e: MoneyError) -> CliError {
    CliError::user(format!("invalid {input_name}: {e}"))
}

type Result<T, E = CliError> = std::result::Result<T, E>;

struct Ctx {
    cli: Cli,
}

/// What a chain command needs: the checked connection, the deployment and the token.
struct Connected {
    chain: Chain,
    deployment: Deployment,
    token: TokenInfo,
}

impl Ctx {
    fn keystore(&self) -> Result<Keystore> {
        let dir = match &self.cli.keystore_dir {
            Some(d) => d.clone(),
            None => {
                let home = std::env::var_os("HOME").ok_or_else(|| {
                    CliError::user("HOME is not set: pass --keystore-dir or REMESA_WALLET_DIR")
                })?;
                PathBuf::from(home).join(".remesa-wallet")
            }
        };
        Ok(Keystore::new(dir))
    }

    fn rpc_timeout(&self) -> Duration {
        Duration::from_secs(self.cli.timeout_s.clamp(1, 15))
    }

    async fn connect(&self) -> Result<Connected> {
        let deployment = Deployment::load(&self.cli.deployment)?;
        let expected = self.cli.chain_id.unwrap_or(deployment.chain_id);
        let chain = Chain::connect(&self.cli.rpc_url, Some(expected), self.rpc_timeout()).await?;
        let token = chain.token_info(deployment.token).await?;
        Ok(Connected {
            chain,
            deployment,
            token,
        })
    }

    fn relayer_config(&self) -> RelayerConfig {
        RelayerConfig {
            confirmations: self.cli.confirmations.max(1),
            confirm_timeout: Duration::from_secs(self.cli.timeout_s.max(1)),
            ..RelayerConfig::default()
        }
    }

    /// The relayer key from the named environment variable; on an anvil devnet deployed by scripts/devnet.sh,
    /// anvil's account 0 when the variable is unset.
    fn relayer(&self, c: &Connected) -> Result<Relayer> {
        let var = &self.cli.relayer_key_env;
        let signer = match std::env::var(var) {
            Ok(v) => {
                let v = Zeroizing::new(v);
                keys::parse_private_key(&v)
                    .map_err(|_| CliError::user(format!("{var} does not hold a valid private key")))?
            }
            Err(_) => self.devnet_key(c).ok_or_else(|| {
                CliError::user(format!(
                    "no relayer key: set {var} to the private key of an account with gas (see --relayer-key-env)"
                ))
            })?,
        };
        Ok(Relayer::new(c.chain.clone(), signer, self.relayer_config()))
    }

    fn devnet_key(&self, c: &Connected) -> Option<PrivateKeySigner> {
        let dev = devnet::anvil_dev_signer(0);
        (c.chain.chain_id() == devnet::ANVIL_CHAIN_ID && c.deployment.deployer == dev.address())
            .then_some(dev)
    }

    fn passphrase(&self, creating: bool) -> Result<Passphrase> {
        if let Some(path) = &self.cli.passphrase_file {
            return Ok(Passphrase::from_file(path)?);
        }
        if let Some(p) = Passphrase::from_env() {
            return Ok(p);
        }
        if !std::io::stdin().is_terminal() {
            return Err(CliError::user(format!(
                "a passphrase is needed: set {} or pass --passphrase-file (no terminal to prompt on)",
                keys::PASSPHRASE_ENV
            )));
        }
        let first = Zeroizing::new(
            rpassword::prompt_password("Keystore passphrase: ")
                .map_err(|e| CliError::user(format!("cannot read the passphrase: {e}")))?,
        );
        if creating {
            let again = Zeroizing::new(
                rpassword::prompt_password("Repeat the passphrase: ")
                    .map_err(|e| CliError::user(format!("cannot read the passphrase: {e}")))?,
            );
            if *first != *again {
                return Err(CliError::user("the passphrases differ"));
            }
        }
        Ok(Passphrase::new(first.as_str())?)
    }

    fn unlock(&self, name: &str, index: u32) -> Result<PrivateKeySigner> {
        let ks = self.keystore()?;
        ks.info(name)?; // "no such wallet" before asking for a passphrase
        let pass = self.passphrase(false)?;
        Ok(ks.unlock(name, &pass)?.signer(index)?)
    }

    /// An 0x address, or the first address of a wallet by name.
    fn resolve(&self, account: &str) -> Result<Address> {
        if account.starts_with("0x") || account.starts_with("0X") {
            return account.parse().map_err(|_| {
                CliError::user(format!("{account:?} is not an address (0x and 40 hex digits)"))
            });
        }
        Ok(self.keystore()?.info(account)?.address)
    }

    fn spinner(&self, message: &str) -> ProgressBar {
        let pb = if self.cli.json || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            pb.set_style(
                ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            pb.enable_steady_tick(Duration::from_millis(120));
            pb
        };
        pb.set_message(message.to_owned());
        pb
    }

    async fn confirm(&self, relayer: &Relayer, p: PendingTx) -> Result<ReceiptSummary> {
        let wanted = relayer.config().confirmations;
        let pb = self.spinner(&format!(
            "{} {} sent, waiting for confirmations",
            p.label,
            p.tx_hash()
        ));
        let label = p.label.clone();
        let pb2 = pb.clone();
        let r = relayer
            .confirm(p, move |n| {
                pb2.set_message(format!("{label}: {n}/{wanted} confirmations"))
            })
            .await;
        pb.finish_and_clear();
        Ok(r?)
    }

    fn print(&self, value: &Value, human: &str) {
        let mut out = std::io::stdout().lock();
        let _ = if self.cli.json {
            writeln!(out, "{value}")
        } else {
            writeln!(out, "{human}")
        };
    }
}

fn receipt_json(r: &ReceiptSummary) -> Value {
    serde_json::to_value(r).unwrap_or(Value::Null)
}

fn receipt_human(r: &ReceiptSummary) -> String {
    let mut s = format!(
        "transaction {} in block {} (nonce {}, {} gas used)",
        r.tx_hash, r.block_number, r.nonce, r.gas_used
    );
    if !r.replaced.is_empty() {
        s.push_str(&format!(", replaced {} stuck broadcast(s)", r.replaced.len()));
    }
    s
}

async fn check_balance(c: &Connected, owner: Address, amount: &TokenAmount) -> Result<()> {
    let have = c.chain.token_balance(&c.token, owner).await?;
    if have.base_units() < amount.base_units() {
        return Err(CliError::user(format!(
            "insufficient balance: {owner} has {have} {sym}, the amount is {amount} {sym}",
            sym = c.token.symbol
        )));
    }
    Ok(())
}

fn now_unix_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The chain's clock (a devnet may run ahead of the wall clock), never behind the wall clock.
async fn chain_now(c: &Connected) -> Result<u64> {
    Ok(c.chain.latest_timestamp().await?.max(now_unix_s()))
}

fn read_input(source: &str) -> Result<String> {
    if source == "-" {
        let mut s = String::new();
        std::io::stdin()
            .take(1 << 20)
            .read_to_string(&mut s)
            .map_err(|e| CliError::user(format!("cannot read stdin: {e}")))?;
        Ok(s)
    } else {
        std::fs::read_to_string(source).map_err(|e| CliError::user(format!("cannot read {source}: {e}")))
    }
}

/// Terms from a `remit --save` file (its `terms` field) or a bare terms object.
fn parse_terms(source: &str) -> Result<RemittanceTerms> {
    let text = read_input(source)?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| CliError::user(format!("{source} is not JSON with remittance terms: {e}")))?;
    let terms = v.get("terms").cloned().unwrap_or(v);
    serde_json::from_value(terms)
        .map_err(|e| CliError::user(format!("{source} does not hold remittance terms: {e}")))
}

fn write_private(path: &Path, content: &str) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| CliError::user(format!("cannot create {}: {e}", path.display())))?;
    f.write_all(content.as_bytes())
        .map_err(|e| CliError::user(format!("cannot write {}: {e}", path.display())))
}

async fn run(ctx: &Ctx) -> Result<()> {
    match &ctx.cli.command {
        Command::New {
            name,
            words,
            show_mnemonic,
        } => {
            if *words != 12 && *words != 24 {
                return Err(CliError::user("--words must be 12 or 24"));
            }
            let ks = ctx.keystore()?;
            if ks.info(name).is_ok() {
                return Err(KeyError::AlreadyExists {
                    name: name.clone(),
                    dir: ks.dir().to_owned(),
                }
                .into());
            }
            let pass = ctx.passphrase(true)?;
            pass.check_strength()?;
            let mnemonic = Mnemonic::generate(*words)?;
            let info = ks.store_mnemonic(name, &mnemonic, &pass)?;
            let mut v = json!({
                "name": info.name, "kind": info.kind, "address": info.address,
                "keystore_dir": ks.dir(), "mnemonic_shown": !ctx.cli.json || *show_mnemonic,
            });
            if ctx.cli.json && *show_mnemonic {
                v["mnemonic"] = Value::String(mnemonic.expose().to_owned());
            }
            if !ctx.cli.json {
                eprintln!(
                    "WARNING: the recovery phrase below is shown only this once. Write it down on paper, keep it \
                     offline, never share it: whoever has it controls this wallet's money."
                );
            }
            ctx.print(
                &v,
                &format!(
                    "Created wallet {:?}, address {}\nRecovery phrase ({} words):\n\n  {}\n",
                    info.name,
                    info.address,
                    words,
                    mnemonic.expose()
                ),
            );
        }
        Command::Import { name } => {
            let ks = ctx.keystore()?;
            if ks.info(name).is_ok() {
                return Err(KeyError::AlreadyExists {
                    name: name.clone(),
                    dir: ks.dir().to_owned(),
                }
                .into());
            }
            let secret = if std::io::stdin().is_terminal() {
                Zeroizing::new(
                    rpassword::prompt_password("Mnemonic or private key (hidden): ")
                        .map_err(|e| CliError::user(format!("cannot read the secret: {e}")))?,
                )
            } else {
                let mut s = Zeroizing::new(String::new());
                std::io::stdin()
                    .take(4096)
                    .read_to_string(&mut s)
                    .map_err(|e| CliError::user(format!("cannot read stdin: {e}")))?;
                s
            };
            let t = secret.trim();
            let hexish = t.strip_prefix("0x").unwrap_or(t);
            let is_key = !t.contains(char::is_whitespace) && hexish.len() == 64;
            let key = if is_key {
                Some(keys::parse_private_key(t)?)
            } else {
                None
            };
            let mnemonic = if is_key {
                None
            } else if t.is_empty() {
                return Err(CliError::user(
                    "nothing to import: give a mnemonic or a private key on stdin",
                ));
            } else {
                Some(Mnemonic::parse(t)?)
            };
            let pass = ctx.passphrase(true)?;
            pass.check_strength()?;
            let info = match (&key, &mnemonic) {
                (Some(k), _) => ks.store_private_key(name, k, &pass)?,
                (None, Some(m)) => ks.store_mnemonic(name, m, &pass)?,
                (None, None) => return Err(CliError::user("nothing to import")),
            };
            let kind = match info.kind {
                WalletKind::Mnemonic => "mnemonic",
                WalletKind::PrivateKey => "private key",
            };
            ctx.print(
                &json!({"name": info.name, "kind": info.kind, "address": info.address}),
                &format!(
                    "Imported {kind} as wallet {:?}, address {}",
                    info.name, info.address
                ),
            );
        }
        Command::List => {
            let ks = ctx.keystore()?;
            let wallets = ks.list()?;
            let human = if wallets.is_empty() {
                format!(
                    "no wallets in {} (create one with `remesa-wallet new`)",
                    ks.dir().display()
                )
            } else {
                wallets
                    .iter()
                    .map(|w| {
                        let kind = match w.kind {
                            WalletKind::Mnemonic => "mnemonic",
                            WalletKind::PrivateKey => "private-key",
                        };
                        format!("{:<20} {}  {kind}", w.name, w.address)
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            ctx.print(&json!({"keystore_dir": ks.dir(), "wallets": wallets}), &human);
        }
        Command::Address { wallet, index, count } => {
            if *count == 0 || *count > 100 {
                return Err(CliError::user("--count must be between 1 and 100"));
            }
            let ks = ctx.keystore()?;
            let info = ks.info(wallet)?;
            let addresses: Vec<(u32, Address)> = if *index == 0 && *count == 1 {
                vec![(0, info.address)]
            } else {
                let end = index
                    .checked_add(*count)
                    .ok_or_else(|| CliError::user("--index is too large"))?;
                let unlocked = ks.unlock(wallet, &ctx.passphrase(false)?)?;
                (*index..end)
                    .map(|i| Ok((i, unlocked.signer(i)?.address())))
                    .collect::<Result<_>>()?
            };
            let human = addresses
                .iter()
                .map(|(i, a)| format!("{wallet}/{i}  {a}"))
                .collect::<Vec<_>>()
                .join("\n");
            let list: Vec<Value> = addresses
                .iter()
                .map(|(i, a)| json!({"index": i, "address": a}))
                .collect();
            ctx.print(&json!({"wallet": wallet, "accounts": list}), &human);
        }
        Command::Balance { account } => {
            let address = ctx.resolve(account)?;
            let c = ctx.connect().await?;
            let bal = c.chain.token_balance(&c.token, address).await?;
            let eth = c.chain.eth_balance(address).await?;
            ctx.print(
                &json!({
                    "address": address, "token": c.token.address, "symbol": c.token.symbol,
                    "decimals": c.token.decimals, "balance": bal.to_string(),
                    "balance_base_units": bal.base_units().to_string(), "native_wei": eth.to_string(),
                }),
                &format!("{address}: {bal} {} ({} wei of gas coin)", c.token.symbol, eth),
            );
        }
        Command::Faucet { amount, to } => {
            let to = ctx.resolve(to)?;
            let c = ctx.connect().await?;
            let amount = TokenAmount::parse_positive(amount, c.token.decimals)
                .map_err(|e| amount_error("amount", e))?;
            let minter = match std::env::var("REMESA_MINTER_KEY") {
                Ok(v) => {
                    let v = Zeroizing::new(v);
                    keys::parse_private_key(&v)
                        .map_err(|_| CliError::user("REMESA_MINTER_KEY does not hold a valid private key"))?
                }
                Err(_) => ctx.devnet_key(&c).ok_or_else(|| {
                    CliError::user(
                        "the faucet works on the devnet only (or set REMESA_MINTER_KEY to the token minter's key)",
                    )
                })?,
            };
            let relayer = Relayer::new(c.chain.clone(), minter, ctx.relayer_config());
            let p = relayer.mint(c.token.address, to, amount.base_units()).await?;
            let r = ctx.confirm(&relayer, p).await?;
            let bal = c.chain.token_balance(&c.token, to).await?;
            ctx.print(
                &json!({"to": to, "amount": amount.to_string(), "balance": bal.to_string(), "receipt": receipt_json(&r)}),
                &format!(
                    "Minted {amount} {sym} to {to}; balance now {bal} {sym}\n{}",
                    receipt_human(&r),
                    sym = c.token.symbol
                ),
            );
        }
        Command::Send {
            amount,
            to,
            from,
            index,
            valid_for_s,
        } => {
            let to = ctx.resolve(to)?;
            ctx.keystore()?.info(from)?;
            let c = ctx.connect().await?;
            let amount = TokenAmount::parse_positive(amount, c.token.decimals)
                .map_err(|e| amount_error("amount", e))?;
            let signer = ctx.unlock(from, *index)?;
            check_balance(&c, signer.address(), &amount).await?;
            let relayer = ctx.relayer(&c)?;
            let domain = c.chain.token_domain(c.token.address).await?;
            let now = chain_now(&c).await?;
            let t = AuthorizationTerms {
                from: signer.address(),
                to,
                value: amount.base_units(),
                valid_after_unix_s: 0,
                valid_before_unix_s: now.saturating_add(*valid_for_s),
                nonce: eip3009::random_nonce(),
            };
            let auth = eip3009::sign_authorization(&signer, AuthorizationKind::Transfer, &domain, &t)
                .map_err(|e| CliError::user(e.to_string()))?;
            let p = relayer
                .transfer_with_authorization(c.token.address, &t, &auth)
                .await?;
            let r = ctx.confirm(&relayer, p).await?;
            ctx.print(
                &json!({"from": t.from, "to": to, "amount": amount.to_string(), "receipt": receipt_json(&r)}),
                &format!(
                    "Sent {amount} {} from {} to {to} (gas paid by relayer {})\n{}",
                    c.token.symbol,
                    t.from,
                    relayer.address(),
                    receipt_human(&r)
                ),
            );
        }
        Command::Remit {
            amount,
            partner,
            expires_in_s,
            expires_at_unix_s,
            pickup_code,
            valid_for_s,
            from,
            index,
            submit,
            save,
        } => {
            // The claim hash commits to a fresh random salt besides the code, so it cannot be searched for the code.
            let secret = match pickup_code {
                Some(s) => ClaimSecret::new(
                    *ClaimSecret::generate().salt(),
                    PickupCode::parse(s).map_err(|e| CliError::user(e.to_string()))?,
                ),
                None => ClaimSecret::generate(),
            };
            let code = secret.code();
            if let Some(path) = save
                && path.exists()
            {
                return Err(CliError::user(format!("{} already exists", path.display())));
            }
            ctx.keystore()?.info(from)?;
            let c = ctx.connect().await?;
            let amount = TokenAmount::parse_positive(amount, c.token.decimals)
                .map_err(|e| amount_error("amount", e))?;
            let Some((settlement, partner_signer)) = c
                .chain
                .partner_registration(c.deployment.escrow, *partner, c.deployment.deploy_block)
                .await?
            else {
                return Err(CliError::user(format!(
                    "partner {partner} does not accept deposits at the escrow {} (not registered, or removed)",
                    c.deployment.escrow
                )));
            };
            let now = chain_now(&c).await?;
            let expiry = match expires_at_unix_s {
                Some(t) if *t <= now => {
                    return Err(CliError::user(format!(
                        "the expiry {t} is in the past (chain time is {now})"
                    )));
                }
                Some(t) => *t,
                None => now.saturating_add((*expires_in_s).max(1)),
            };
            let (lock_min_s, lock_max_s) = c.chain.escrow_lock_bounds(c.deployment.escrow).await?;
            let lock_s = expiry.saturating_sub(now);
            // A minute of slack for the deposit to be mined after signing.
            if lock_s < lock_min_s.saturating_add(60) || lock_s > lock_max_s {
                return Err(CliError::user(format!(
                    "the expiry is {lock_s} s from now, but the escrow locks between {lock_min_s} and {lock_max_s} s \
                     (with a minute of slack for the deposit to be mined)"
                )));
            }
            let signer = ctx.unlock(from, *index)?;
            check_balance(&c, signer.address(), &amount).await?;
            let terms = RemittanceTerms {
                escrow: c.deployment.escrow,
                sender: signer.address(),
                amount_base_units: amount.base_units(),
                partner_id: *partner,
                settlement,
                partner_signer,
                expires_at_unix_s: expiry,
                claim_hash: secret.claim_hash(),
            };
            let id = terms.id();
            let domain = c.chain.token_domain(c.token.address).await?;
            let t = AuthorizationTerms {
                from: terms.sender,
                to: terms.escrow,
                value: terms.amount_base_units,
                valid_after_unix_s: 0,
                valid_before_unix_s: now.saturating_add(*valid_for_s),
                nonce: id,
            };
            let auth: SignedAuthorization =
                eip3009::sign_authorization(&signer, AuthorizationKind::Receive, &domain, &t)
                    .map_err(|e| CliError::user(e.to_string()))?;
            let mut v = json!({
                "remittance_id": id,
                "amount": amount.to_string(),
                "symbol": c.token.symbol,
                "terms": terms,
                "pickup_code": code.display_grouped(),
                // The release preimage is this salt, then the code's 12 characters, then 4 zero bytes.
                "claim_salt": format!("0x{}", hex::encode(secret.salt())),
                "authorization": auth,
            });
            if let Some(path) = save {
                let text = serde_json::to_string_pretty(&v).unwrap_or_default();
                write_private(path, &text)?;
            }
            let mut human = format!(
                "Remittance {id}\n  {amount} {} from {} to partner {partner}, refundable from {expiry} (unix s)\n  \
                 pickup code {} (give it to the recipient only)\n  claim salt 0x{} (the releaser needs it with the \
                 code; keep it secret until then)\n  authorization for the node API:\n  {}",
                c.token.symbol,
                terms.sender,
                code.display_grouped(),
                hex::encode(secret.salt()),
                serde_json::to_string(&auth).unwrap_or_default(),
            );
            if *submit {
                let relayer = ctx.relayer(&c)?;
                let p = relayer.deposit(&terms, &auth).await?;
                let r = ctx.confirm(&relayer, p).await?;
                v["deposit"] = receipt_json(&r);
                human.push_str(&format!("\nDeposited: {}", receipt_human(&r)));
            }
            ctx.print(&v, &human);
        }
        Command::Status { remittance } => {
            let (id, terms) = if remittance.starts_with("0x") {
                let id = remittance.parse::<B256>().map_err(|_| {
                    CliError::user(format!(
                        "{remittance:?} is not a remittance id (0x and 64 hex digits)"
                    ))
                })?;
                (id, None)
            } else {
                let t = parse_terms(remittance)?;
                (t.id(), Some(t))
            };
            let c = ctx.connect().await?;
            if let Some(t) = &terms
                && t.escrow != c.deployment.escrow
            {
                return Err(CliError::user(format!(
                    "these terms are for escrow {}, the deployment's escrow is {}",
                    t.escrow, c.deployment.escrow
                )));
            }
            let status = c
                .chain
                .escrow_status(c.deployment.escrow, id, c.deployment.deploy_block)
                .await?;
            let mut v = json!({"remittance_id": id, "status": status});
            let mut human = format!("Remittance {id}: {}", status.as_str());
            if let Some(t) = &terms {
                let now = c.chain.latest_timestamp().await?;
                let refundable = status == EscrowStatus::Locked && now >= t.expires_at_unix_s;
                v["expires_at_unix_s"] = json!(t.expires_at_unix_s);
                v["refundable"] = json!(refundable);
                v["amount"] = json!(c.token.amount(t.amount_base_units).to_string());
                human.push_str(&format!(
                    "\n  {} {} from {}, partner {}, expires at {} (chain time now {now}){}",
                    c.token.amount(t.amount_base_units),
                    c.token.symbol,
                    t.sender,
                    t.partner_id,
                    t.expires_at_unix_s,
                    if refundable { "; refundable now" } else { "" }
                ));
            }
            ctx.print(&v, &human);
        }
        Command::Refund { remittance } => {
            if remittance.starts_with("0x") {
                return Err(CliError::user(
                    "a refund needs the remittance's terms, not only its id: pass the file written by `remit --save`",
                ));
            }
            let terms = parse_terms(remittance)?;
            let c = ctx.connect().await?;
            if terms.escrow != c.deployment.escrow {
                return Err(CliError::user(format!(
                    "these terms are for escrow {}, the deployment's escrow is {}",
                    terms.escrow, c.deployment.escrow
                )));
            }
            let id = terms.id();
            // Where the deposit put it, from the escrow's Deposited events (anyone can rebuild the proof: the
            // refund needs nobody's permission).
            let Some(placement) = c
                .chain
                .escrow_placement(terms.escrow, id, c.deployment.deploy_block)
                .await?
            else {
                return Err(CliError::user(format!(
                    "remittance {id} cannot be refunded: no deposit of it is on chain"
                )));
            };
            let status = c.chain.escrow_status_at(terms.escrow, &placement).await?;
            if status != EscrowStatus::Locked {
                return Err(CliError::user(format!(
                    "remittance {id} cannot be refunded: its status is {}",
                    status.as_str()
                )));
            }
            let now = c.chain.latest_timestamp().await?;
            if now < terms.expires_at_unix_s {
                return Err(CliError::user(format!(
                    "remittance {id} is not expired yet: refundable at {} (unix s), chain time is {now}, {} s to go",
                    terms.expires_at_unix_s,
                    terms.expires_at_unix_s - now
                )));
            }
            let relayer = ctx.relayer(&c)?;
            let p = relayer.refund(&terms, &placement).await?;
            let r = ctx.confirm(&relayer, p).await?;
            let amount = c.token.amount(terms.amount_base_units);
            ctx.print(
                &json!({"remittance_id": id, "refunded_to": terms.sender, "amount": amount.to_string(), "receipt": receipt_json(&r)}),
                &format!(
                    "Refunded {amount} {} to {}\n{}",
                    c.token.symbol,
                    terms.sender,
                    receipt_human(&r)
                ),
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("REMESA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let json = cli.json;
    let rpc = redact_url(&cli.rpc_url);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let ctx = Ctx { cli };
    match runtime.block_on(run(&ctx)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let kind = match e.code {
                EXIT_USER => "user",
                EXIT_CHAIN => "chain",
                _ => "internal",
            };
            if json {
                println!(
                    "{}",
                    json!({"error": {"kind": kind, "code": e.code, "message": e.message}})
                );
            }
            eprintln!("error: {}", e.message);
            if e.code == EXIT_CHAIN {
                tracing::debug!(rpc = %rpc, "chain failure");
            }
            ExitCode::from(e.code)
        }
    }
}
