//! Devnet helpers for `remesa dev`, `remesa devnet …` and the end-to-end tests: start anvil from the installed
//! toolchain, deploy the test dollar and the escrow from the committed artifacts (the wallet's bindings embed their
//! bytecode), mint, and give the node's relayer gas. Devnet only: the deployer is anvil's well-known account 0.

use std::path::{Path, PathBuf};
use std::time::Duration;

use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use anyhow::Context;
use remesa_wallet::chain::Chain;
use remesa_wallet::relayer::{Relayer, RelayerConfig};

use crate::app::Deployment;

/// Anvil's account 0 (a public, well-known devnet key): deployer, escrow owner, token minter.
pub const DEV_DEPLOYER_KEY: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

/// Where anvil is: `REMESA_ANVIL`, else `contracts/node_modules/.bin/anvil` under the current directory or one of
/// its parents, else the repository this binary was built from, else `anvil` on the `PATH`.
pub fn find_anvil() -> PathBuf {
    if let Ok(p) = std::env::var("REMESA_ANVIL") {
        return PathBuf::from(p);
    }
    let rel = Path::new("contracts/node_modules/.bin/anvil");
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            let p = dir.join(rel);
            if p.exists() {
                return p;
            }
        }
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
    if built.exists() {
        return built;
    }
    PathBuf::from("anvil")
}

/// Starts anvil on `port` (0: a free port) with a block time (0: automine).
pub fn start_anvil(port: u16, block_time_s: u64) -> anyhow::Result<AnvilInstance> {
    let bin = find_anvil();
    let mut a = Anvil::at(&bin).arg("--accounts").arg("4");
    if port != 0 {
        a = a.port(port);
    }
    if block_time_s > 0 {
        a = a.block_time(block_time_s);
    }
    a.try_spawn()
        .with_context(|| format!("starting anvil ({})", bin.display()))
}

pub fn deployer() -> anyhow::Result<PrivateKeySigner> {
    DEV_DEPLOYER_KEY.parse().context("deployer key")
}

/// The wallet's view of the chain at `rpc_url` (every call with a timeout).
async fn chain(rpc_url: &str) -> anyhow::Result<Chain> {
    Ok(Chain::connect(rpc_url, None, Duration::from_secs(15)).await?)
}

/// Deploys the test dollar and the escrow from the committed artifacts (owner and guardian: the deployer), through
/// the wallet's devnet module.
pub async fn deploy(rpc_url: &str) -> anyhow::Result<Deployment> {
    let mut d = remesa_wallet::devnet::deploy(&chain(rpc_url).await?, deployer()?, &[]).await?;
    d.rpc_url = rpc_url.to_owned();
    Ok(d)
}

/// Mints test dollars (base units) to `to` with the deployer (the minter) and waits for the receipt.
pub async fn mint(rpc_url: &str, d: &Deployment, to: Address, base_units: U256) -> anyhow::Result<()> {
    let minter = Relayer::new(chain(rpc_url).await?, deployer()?, RelayerConfig::default());
    let pending = minter.mint(d.token, to, base_units).await?;
    minter.confirm(pending, |_| {}).await?;
    Ok(())
}

/// Gives `who` 100 ETH of gas on anvil (`anvil_setBalance`).
pub async fn fund_gas(rpc_url: &str, who: Address) -> anyhow::Result<()> {
    let p = ProviderBuilder::new().connect_http(rpc_url.parse()?);
    let wei = U256::from(100u64) * U256::from(10u64).pow(U256::from(18u64));
    let _: serde_json::Value = p
        .raw_request("anvil_setBalance".into(), (who, wei))
        .await
        .context("anvil_setBalance")?;
    Ok(())
}

/// Switches anvil from mining on every transaction to a block every `seconds` (`evm_setIntervalMining`). `remesa dev`
/// sets the devnet up in automine mode (each set-up transaction confirms at once) and then gives it its block time.
pub async fn set_interval_mining(rpc_url: &str, seconds: u64) -> anyhow::Result<()> {
    let p = ProviderBuilder::new().connect_http(rpc_url.parse()?);
    let _: serde_json::Value = p
        .raw_request("evm_setIntervalMining".into(), (seconds,))
        .await
        .context("evm_setIntervalMining")?;
    Ok(())
}

/// Moves anvil's clock forward and mines a block (`evm_increaseTime` + `evm_mine`).
pub async fn time_travel(rpc_url: &str, seconds: u64) -> anyhow::Result<()> {
    Ok(remesa_wallet::devnet::increase_time(&chain(rpc_url).await?, seconds).await?)
}

/// Writes the deployment JSON.
pub fn write_deployment(path: &Path, d: &Deployment) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_vec_pretty(d)?).with_context(|| format!("writing {}", path.display()))
}

/// Raw bytes as hex (for printing).
pub fn hex_bytes(b: &Bytes) -> String {
    format!("0x{}", hex::encode(b))
}
