//! The node's connection to its chain as the HTTP layer and the commands see it: the deployment file (the wallet's
//! [`Deployment`]), the token's decimals and EIP-712 domain read at start, the escrow owner's key on the devnet.

use std::str::FromStr;
use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
// The wallet's artifact bindings; the token calls used here (decimals, balanceOf, eip712Domain) are standard, so
// they work for any USDC-like token.
use remesa_wallet::contracts::{RemittanceEscrow, TestStablecoin};
pub use remesa_wallet::devnet::Deployment;
pub use remesa_wallet::eip3009::TokenDomain;

/// Why the chain could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("chain: {0}")]
    Chain(String),
}

/// What the operator expects of the token's EIP-712 domain (`REMESA_TOKEN_NAME`, `REMESA_TOKEN_VERSION`): USDC's
/// name is "USD Coin" on Ethereum mainnet but "USDC" on some L2 test networks, so a deployment can pin the one it
/// means. Unset: whatever the token reports (checked against its `DOMAIN_SEPARATOR()` either way).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExpectedToken {
    pub name: Option<String>,
    pub version: Option<String>,
}

/// The chain the engine books against: escrow, token and the token's EIP-712 domain and decimals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainInfo {
    pub chain_id: u64,
    pub escrow: Address,
    pub token: Address,
    pub token_decimals: u8,
    pub domain: TokenDomain,
    /// The escrow's shortest lock (`minLockSeconds`): a deposit whose expiry is nearer is refused on chain.
    pub lock_min_s: u64,
}

/// The chain as the HTTP layer and commands see it.
#[derive(Clone, Debug)]
pub struct ChainRuntime {
    pub provider: DynProvider,
    pub rpc_url: String,
    pub info: ChainInfo,
    pub deployment: Deployment,
    /// The escrow owner's key, when this node holds it (devnet): used to register partners on chain.
    pub owner: Option<PrivateKeySigner>,
    /// The escrow's shortest and longest lock (`minLockSeconds`, `maxLockSeconds`).
    pub lock_bounds_s: (u64, u64),
}

impl ChainRuntime {
    /// Connects, checks the chain id, and reads the token's decimals and EIP-712 domain. Refuses to go on (an
    /// error naming the token and what is wrong) when the escrow holds another token, the token's domain does not
    /// hash to its `DOMAIN_SEPARATOR()` or differs from `expected`, or the token has no EIP-3009
    /// `receiveWithAuthorization`.
    pub async fn connect(
        rpc_url: &str,
        deployment: Deployment,
        owner: Option<PrivateKeySigner>,
        expected: &ExpectedToken,
    ) -> Result<ChainRuntime, RuntimeError> {
        let provider = super::connect_http(rpc_url).map_err(|e| RuntimeError::Chain(e.to_string()))?;
        let chain_id = provider
            .get_chain_id()
            .await
            .map_err(|e| RuntimeError::Chain(format!("eth_chainId: {e}")))?;
        if chain_id != deployment.chain_id {
            return Err(RuntimeError::Chain(format!(
                "the RPC serves chain {chain_id}, the deployment is for chain {}",
                deployment.chain_id
            )));
        }
        let escrow_token = RemittanceEscrow::new(deployment.escrow, provider.clone())
            .token()
            .call()
            .await
            .map_err(|e| RuntimeError::Chain(format!("escrow {} token(): {e}", deployment.escrow)))?;
        if escrow_token != deployment.token {
            return Err(RuntimeError::Chain(format!(
                "the escrow {} holds token {escrow_token}, not the deployment's token {}",
                deployment.escrow, deployment.token
            )));
        }
        let token = TestStablecoin::new(deployment.token, provider.clone());
        let decimals = token.decimals().call().await.map_err(|e| {
            RuntimeError::Chain(format!(
                "the token {} has no usable decimals(): {e}",
                deployment.token
            ))
        })?;
        // The wallet reads the domain the way signatures need it (eip712Domain(), else name()/version()) and
        // checks it against the token's DOMAIN_SEPARATOR().
        let wallet_chain =
            remesa_wallet::chain::Chain::connect(rpc_url, Some(chain_id), Duration::from_secs(15))
                .await
                .map_err(|e| RuntimeError::Chain(e.to_string()))?;
        let domain = wallet_chain
            .token_domain(deployment.token)
            .await
            .map_err(|e| RuntimeError::Chain(e.to_string()))?;
        for (what, want, got) in [
            ("name", &expected.name, &domain.name),
            ("version", &expected.version, &domain.version),
        ] {
            if let Some(want) = want
                && want != got
            {
                return Err(RuntimeError::Chain(format!(
                    "the token {} reports EIP-712 {what} {got:?}, the configuration expects {want:?} \
                     (REMESA_TOKEN_{}); is the deployment for the right token?",
                    deployment.token,
                    what.to_uppercase()
                )));
            }
        }
        wallet_chain
            .require_eip3009(deployment.token, deployment.escrow)
            .await
            .map_err(|e| RuntimeError::Chain(e.to_string()))?;
        let lock_bounds_s = wallet_chain
            .escrow_lock_bounds(deployment.escrow)
            .await
            .map_err(|e| RuntimeError::Chain(e.to_string()))?;
        let info = ChainInfo {
            chain_id,
            escrow: deployment.escrow,
            token: deployment.token,
            token_decimals: decimals,
            domain,
            lock_min_s: lock_bounds_s.0,
        };
        Ok(ChainRuntime {
            provider,
            rpc_url: rpc_url.to_owned(),
            info,
            deployment,
            owner,
            lock_bounds_s,
        })
    }

    /// Refuses a remittance lifetime the escrow would not lock: expiry is set at creation, and the deposit may be
    /// mined up to `deposit_slack_s` later.
    pub fn check_lock_time(&self, expiry_s: u64, deposit_slack_s: u64) -> Result<(), RuntimeError> {
        let (min, max) = self.lock_bounds_s;
        if expiry_s > max || expiry_s.saturating_sub(deposit_slack_s) < min {
            return Err(RuntimeError::Chain(format!(
                "remittance_expiry_s is {expiry_s} s, but the escrow {} locks between {min} and {max} s (with \
                 {deposit_slack_s} s for the deposit to be mined)",
                self.deployment.escrow
            )));
        }
        Ok(())
    }

    /// `setPartner(id, settlement, signer)` with the owner key, waiting for the receipt. Skipped when the escrow
    /// already accepts deposits naming them. Locked remittances keep the addresses in their terms either way.
    pub async fn register_partner_on_chain(
        &self,
        partner_id: u64,
        settlement: &str,
        signer: &str,
    ) -> Result<(), String> {
        let settlement = Address::from_str(settlement).map_err(|e| e.to_string())?;
        let signer = Address::from_str(signer).map_err(|e| e.to_string())?;
        let escrow = RemittanceEscrow::new(self.deployment.escrow, self.provider.clone());
        let accepts = escrow
            .partnerAccepts(partner_id, settlement, signer)
            .call()
            .await
            .map_err(|e| e.to_string())?;
        if accepts {
            return Ok(());
        }
        let owner = self
            .owner
            .clone()
            .ok_or("this node does not hold the escrow owner key (REMESA_ESCROW_OWNER_KEY)")?;
        let url = self.rpc_url.parse().map_err(|e| format!("rpc url: {e}"))?;
        let p = ProviderBuilder::new()
            .wallet(EthereumWallet::from(owner))
            .connect_http(url);
        let escrow = RemittanceEscrow::new(self.deployment.escrow, p);
        let receipt = escrow
            .setPartner(partner_id, settlement, signer)
            .send()
            .await
            .map_err(|e| format!("setPartner: {e}"))?
            .with_timeout(Some(Duration::from_secs(60)))
            .get_receipt()
            .await
            .map_err(|e| format!("setPartner receipt: {e}"))?;
        if !receipt.status() {
            return Err("setPartner reverted".into());
        }
        tracing::info!(target: "app", partner_id, %settlement, %signer, "partner registered in the escrow");
        Ok(())
    }

    /// The escrow contract's token balance at `block` (latest when `None`).
    pub async fn escrow_balance(&self, block: Option<u64>) -> Result<U256, String> {
        let token = TestStablecoin::new(self.deployment.token, self.provider.clone());
        let call = token.balanceOf(self.deployment.escrow);
        let call = match block {
            Some(b) => call.block(b.into()),
            None => call,
        };
        call.call().await.map_err(|e| format!("balanceOf: {e}"))
    }
}
