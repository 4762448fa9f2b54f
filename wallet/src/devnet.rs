//! Devnet helpers: the deployment file written by `scripts/devnet.sh`, deploying the contracts from the committed
//! artifacts, a faucet (mint from the minter key), anvil time travel, and a throw-away local devnet for tests.

use std::future::IntoFuture;
use std::path::{Path, PathBuf};
use std::time::Duration;

use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{Address, Bytes, TxKind, U256};
use alloy::providers::ext::AnvilApi;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolConstructor;
use serde::{Deserialize, Serialize};

use crate::chain::{Chain, ChainError};
use crate::contracts::{RemittanceEscrow, TestStablecoin};
use crate::keys::Mnemonic;
use crate::relayer::{Relayer, RelayerConfig};

/// Anvil's default mnemonic: its development accounts are public knowledge. Never use them on a real network.
pub const ANVIL_MNEMONIC: &str = "test test test test test test test test test test test junk";
/// Anvil's chain id.
pub const ANVIL_CHAIN_ID: u64 = 31337;
/// Default path of the deployment file, relative to the repository root.
pub const DEFAULT_DEPLOYMENT_PATH: &str = ".devnet/deployment.json";
/// Partner registered by [`LocalDevnet::start`] and `scripts/devnet.sh`.
pub const DEMO_PARTNER_ID: u64 = 1;
/// Minted to anvil accounts 1..3 by [`LocalDevnet::start`] (10,000 tokens of 6 decimals).
pub const DEMO_MINT_BASE_UNITS: u64 = 10_000_000_000;

#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    #[error(
        "no deployment file at {0} (start the devnet with scripts/devnet.sh, or pass --deployment / set \
         REMESA_DEPLOYMENT)"
    )]
    Missing(PathBuf),
    #[error("the deployment file {path} is not valid: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("cannot start anvil from {path}: {reason}")]
    Anvil { path: PathBuf, reason: String },
    #[error(transparent)]
    Chain(#[from] ChainError),
}

/// `.devnet/deployment.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    pub chain_id: u64,
    pub rpc_url: String,
    pub token: Address,
    pub escrow: Address,
    pub deployer: Address,
    pub deploy_block: u64,
}

impl Deployment {
    pub fn load(path: &Path) -> Result<Self, DevnetError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(DevnetError::Missing(path.to_owned()));
            }
            Err(e) => {
                return Err(DevnetError::Invalid {
                    path: path.to_owned(),
                    reason: e.to_string(),
                });
            }
        };
        serde_json::from_slice(&bytes).map_err(|e| DevnetError::Invalid {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, json)?;
        std::fs::rename(tmp, path)
    }
}

/// Anvil development account `index` (public key material: devnets only).
pub fn anvil_dev_signer(index: u32) -> PrivateKeySigner {
    // The constant phrase is valid; derivation of a u32 index cannot fail for it.
    Mnemonic::parse(ANVIL_MNEMONIC)
        .and_then(|m| m.signer(index))
        .unwrap_or_else(|_| PrivateKeySigner::random())
}

/// The stablecoin a devnet runs on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DevnetToken {
    /// Circle's FiatTokenV2_2 behind its proxy, from the pinned npm package's artifacts ([`crate::usdc`]).
    #[default]
    Usdc,
    /// Remesa's own EIP-3009 test token (TUSD): kept for what USDC cannot show (it has `eip712Domain()`).
    TestStablecoin,
}

/// The proxy admin of the devnet's USDC: a fixed address nobody uses (the deployer owns the token itself; a
/// transparent proxy's admin cannot use the token).
pub const USDC_PROXY_ADMIN: Address = Address::new([0xad; 20]);

/// Shortest lock the devnet escrow accepts (`minLockSeconds`): a minute, so tests and demos can expire quickly.
/// A production deployment would choose hours.
pub const DEVNET_MIN_LOCK_S: u64 = 60;
/// Longest lock the devnet escrow accepts (`maxLockSeconds`): 30 days.
pub const DEVNET_MAX_LOCK_S: u64 = 30 * 24 * 3600;

/// A partner as the escrow's registry knows it: new deposits to `id` must name this settlement address (where
/// releases pay) and signer (whose EIP-712 `Decline` allows a refund before expiry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartnerRegistration {
    pub id: u64,
    pub settlement: Address,
    pub signer: Address,
}

/// Deploys real USDC and RemittanceEscrow (deployer = owner = guardian = minter; locks between
/// [`DEVNET_MIN_LOCK_S`] and [`DEVNET_MAX_LOCK_S`]) and registers `partners`. [`deploy_with`] chooses the token.
pub async fn deploy(
    chain: &Chain,
    deployer: PrivateKeySigner,
    partners: &[PartnerRegistration],
) -> Result<Deployment, ChainError> {
    deploy_with(chain, deployer, partners, DevnetToken::default()).await
}

/// [`deploy`] on the given token.
pub async fn deploy_with(
    chain: &Chain,
    deployer: PrivateKeySigner,
    partners: &[PartnerRegistration],
    token: DevnetToken,
) -> Result<Deployment, ChainError> {
    let owner = deployer.address();
    let relayer = Relayer::new(chain.clone(), deployer.clone(), RelayerConfig::default());
    let (token, deploy_block) = match token {
        DevnetToken::Usdc => {
            let d = crate::usdc::deploy(chain, deployer, USDC_PROXY_ADMIN, U256::MAX).await?;
            (d.token, d.first_block)
        }
        DevnetToken::TestStablecoin => {
            let receipt = relayer
                .send_and_confirm(
                    "deploy TestStablecoin",
                    TxKind::Create,
                    TestStablecoin::BYTECODE.clone(),
                    |_| {},
                )
                .await?;
            let token = receipt.contract_address.ok_or_else(|| ChainError::Rpc {
                what: "deploying TestStablecoin".into(),
                message: "the receipt has no contract address".into(),
            })?;
            (token, receipt.block_number)
        }
    };
    let mut code = RemittanceEscrow::BYTECODE.to_vec();
    code.extend(
        RemittanceEscrow::constructorCall {
            token_: token,
            owner_: owner,
            guardian_: owner,
            minLockSeconds_: DEVNET_MIN_LOCK_S,
            maxLockSeconds_: DEVNET_MAX_LOCK_S,
        }
        .abi_encode(),
    );
    let escrow = relayer
        .send_and_confirm(
            "deploy RemittanceEscrow",
            TxKind::Create,
            Bytes::from(code),
            |_| {},
        )
        .await?
        .contract_address
        .ok_or_else(|| ChainError::Rpc {
            what: "deploying RemittanceEscrow".into(),
            message: "the receipt has no contract address".into(),
        })?;
    for p in partners {
        let call = RemittanceEscrow::setPartnerCall {
            partnerId: p.id,
            settlement: p.settlement,
            signer: p.signer,
        };
        use alloy::sol_types::SolCall;
        relayer
            .send_and_confirm(
                "setPartner",
                TxKind::Call(escrow),
                call.abi_encode().into(),
                |_| {},
            )
            .await?;
    }
    Ok(Deployment {
        chain_id: chain.chain_id(),
        rpc_url: chain.url().to_owned(),
        token,
        escrow,
        deployer: owner,
        deploy_block,
    })
}

/// Anvil: moves the clock forward and mines a block with the new time.
pub async fn increase_time(chain: &Chain, seconds: u64) -> Result<(), ChainError> {
    chain
        .rpc("evm_increaseTime", chain.provider().anvil_increase_time(seconds))
        .await?;
    mine(chain).await
}

/// Anvil: mines one block.
pub async fn mine(chain: &Chain) -> Result<(), ChainError> {
    chain.rpc("evm_mine", chain.provider().evm_mine(None)).await?;
    Ok(())
}

/// Anvil: turns automatic mining on or off.
pub async fn set_automine(chain: &Chain, on: bool) -> Result<(), ChainError> {
    chain
        .rpc("anvil_setAutomine", chain.provider().anvil_set_auto_mine(on))
        .await
}

/// The native anvil binary installed by `scripts/install-toolchain.sh` (or `REMESA_ANVIL`).
pub fn anvil_path() -> PathBuf {
    match std::env::var_os("REMESA_ANVIL") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts/node_modules/.bin/anvil"),
    }
}

/// A throw-away devnet: anvil on a free port (killed on drop) with the contracts deployed, partner 1 registered
/// (settlement address and signer = anvil account 9) and 10,000 USDC minted to anvil accounts 1..3 — like `scripts/devnet.sh`.
#[derive(Debug)]
pub struct LocalDevnet {
    pub anvil: AnvilInstance,
    pub chain: Chain,
    pub deployment: Deployment,
}

impl LocalDevnet {
    /// `extra_args` go to anvil (e.g. `["--block-time", "1"]`). The token is real USDC.
    pub async fn start(extra_args: &[&str]) -> Result<Self, DevnetError> {
        Self::start_with(extra_args, DevnetToken::default()).await
    }

    /// [`LocalDevnet::start`] on the given token.
    pub async fn start_with(extra_args: &[&str], token: DevnetToken) -> Result<Self, DevnetError> {
        let path = anvil_path();
        let anvil = Anvil::new()
            .path(&path)
            .args(extra_args.iter().copied())
            .try_spawn()
            .map_err(|e| DevnetError::Anvil {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        let chain = Chain::connect(&anvil.endpoint(), Some(ANVIL_CHAIN_ID), Duration::from_secs(15)).await?;
        let settlement = anvil_dev_signer(9).address();
        let deployment = deploy_with(
            &chain,
            anvil_dev_signer(0),
            &[PartnerRegistration {
                id: DEMO_PARTNER_ID,
                settlement,
                signer: settlement,
            }],
            token,
        )
        .await?;
        let minter = Relayer::new(chain.clone(), anvil_dev_signer(0), RelayerConfig::default());
        let mut pending = Vec::new();
        for i in 1..=3 {
            pending.push(
                minter
                    .mint(
                        deployment.token,
                        anvil_dev_signer(i).address(),
                        U256::from(DEMO_MINT_BASE_UNITS),
                    )
                    .await?,
            );
        }
        for p in pending {
            minter.confirm(p, |_| {}).await?;
        }
        Ok(Self {
            anvil,
            chain,
            deployment,
        })
    }

    pub fn endpoint(&self) -> String {
        self.anvil.endpoint()
    }

    pub fn ws_endpoint(&self) -> String {
        self.anvil.ws_endpoint()
    }

    /// A relayer from anvil account `index`.
    pub fn relayer(&self, index: u32, config: RelayerConfig) -> Relayer {
        Relayer::new(self.chain.clone(), anvil_dev_signer(index), config)
    }

    /// Token balance in base units.
    pub async fn balance_of(&self, owner: Address) -> Result<U256, ChainError> {
        let t = TestStablecoin::new(self.deployment.token, self.chain.provider());
        self.chain
            .contract_call("balanceOf", t.balanceOf(owner).call().into_future())
            .await
    }
}
