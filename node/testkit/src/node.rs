//! A whole node in process on a throw-away devnet (as anvil's `spawn(NodeConfig::test())` and zero2prod's
//! `spawn_app`): [`node_config`] prepares a data directory on a [`LocalDevnet`], [`spawn_node`] builds and serves it on
//! a free port.

use std::path::Path;
use std::time::Duration;

use alloy::primitives::{Address, U256};
use alloy::providers::ext::AnvilApi;
use anyhow::{Context, Result};
use remesa::app::{self, AppError, AppState};
use remesa::config::Config;
use remesa_wallet::devnet::{LocalDevnet, anvil_dev_signer};
use remesa_wallet::relayer::RelayerConfig;
use secrecy::SecretString;
use tokio::task::JoinHandle;

/// The keystore passphrase of every test node.
pub const KEYSTORE_PASSPHRASE: &str = "correct horse battery staple";
/// The gas money given to a test node's relayer: 10 ETH.
pub const RELAYER_FUNDS_WEI: u128 = 10_000_000_000_000_000_000;

/// The configuration of a node on `devnet` with its data in `dir`: a new keystore whose relayer holds
/// [`RELAYER_FUNDS_WEI`], the devnet's deployment file, `operator_token`, chain workers polling every 100 ms with no
/// confirmation depth, HTTP on a free port. Change what the test needs before [`spawn_node`].
pub async fn node_config(devnet: &LocalDevnet, dir: &Path, operator_token: &str) -> Result<Config> {
    let pass = SecretString::from(KEYSTORE_PASSPHRASE);
    let mut config = Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    let custody = remesa::engine::Custody::create_keystore(&app::keystore_path(&config), &pass)?;
    let relayer = custody.relayer()?.address();
    devnet
        .chain
        .provider()
        .anvil_set_balance(relayer, U256::from(RELAYER_FUNDS_WEI))
        .await
        .context("fund the relayer")?;
    let deployment = dir.join("deployment.json");
    devnet.deployment.save(&deployment)?;
    config.http_addr = "127.0.0.1:0".parse()?;
    config.rpc_url = Some(devnet.endpoint());
    config.deployment = Some(deployment);
    config.keystore_passphrase = Some(pass);
    config.operator_token = Some(SecretString::from(operator_token));
    config.chain.confirmations = 0;
    config.chain.batch_delay_ms_max = 100;
    config.chain.writer_poll_ms = 100;
    config.chain.indexer_poll_ms = 100;
    Ok(config)
}

/// Mints `base_units` of the devnet's test dollar to `to` (the deployer is the minter) and waits for the receipt.
pub async fn mint(devnet: &LocalDevnet, to: Address, base_units: U256) -> Result<()> {
    let minter = devnet.relayer(0, RelayerConfig::default());
    let pending = minter.mint(devnet.deployment.token, to, base_units).await?;
    minter.confirm(pending, |_| {}).await?;
    Ok(())
}

/// The devnet's settlement address of partner 1 (anvil account 9, registered by [`LocalDevnet::start`]).
pub fn demo_settlement() -> Address {
    anvil_dev_signer(9).address()
}

/// A node serving in this process.
#[derive(Debug)]
pub struct TestNode {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub state: AppState,
    server: JoinHandle<Result<(), AppError>>,
}

/// Builds the node from `config` (workers started, port bound) and serves it in a background task.
pub async fn spawn_node(config: Config) -> Result<TestNode> {
    let built = app::build(config).await.context("build node")?;
    let base = format!("http://127.0.0.1:{}", built.port());
    let state = built.state().clone();
    let server = tokio::spawn(built.run_until_stopped());
    Ok(TestNode { base, state, server })
}

impl TestNode {
    /// Asks the node to stop and waits (at most 30 s) for it to drain and close its database.
    pub async fn stop(self) {
        self.state.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(30), self.server).await;
    }
}
