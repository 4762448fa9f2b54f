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

/// The chain the engine books against: escrow, token and the token's EIP-712 domain and decimals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainInfo {
    pub chain_id: u64,
    pub escrow: Address,
    pub token: Address,
    pub token_decimals: u8,
    pub domain: TokenDomain,
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
}

impl ChainRuntime {
    /// Connects, checks the chain id, and reads the token's decimals and EIP-712 domain.
    pub async fn connect(
        rpc_url: &str,
        deployment: Deployment,
        owner: Option<PrivateKeySigner>,
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
        let token = TestStablecoin::new(deployment.token, provider.clone());
        let decimals = token
            .decimals()
            .call()
            .await
            .map_err(|e| RuntimeError::Chain(format!("token decimals: {e}")))?;
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
        let info = ChainInfo {
            chain_id,
            escrow: deployment.escrow,
            token: deployment.token,
            token_decimals: decimals,
            domain,
        };
        Ok(ChainRuntime {
            provider,
            rpc_url: rpc_url.to_owned(),
            info,
            deployment,
            owner,
        })
    }

    /// `setPartner(id, settlement)` with the owner key, waiting for the receipt. Skipped when already set.
    pub async fn register_partner_on_chain(&self, partner_id: u64, settlement: &str) -> Result<(), String> {
        let settlement = Address::from_str(settlement).map_err(|e| e.to_string())?;
        let escrow = RemittanceEscrow::new(self.deployment.escrow, self.provider.clone());
        let current = escrow
            .partnerSettlement(partner_id)
            .call()
            .await
            .map_err(|e| e.to_string())?;
        if current == settlement {
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
            .setPartner(partner_id, settlement)
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
        tracing::info!(target: "app", partner_id, %settlement, "partner registered in the escrow");
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
