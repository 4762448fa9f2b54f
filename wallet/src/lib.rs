//! Remesa wallet library: keys, exact money, contract bindings, EIP-3009 authorizations and the relayer.
//!
//! Architecture invariant: this crate never touches HTTP servers, chat or databases.
//!
//! - [`money`]: `TokenAmount`, exact decimal parsing and formatting.
//! - [`keys`]: BIP-39 mnemonics, BIP-44 derivation, encrypted keystore files.
//! - [`terms`]: remittance terms, their id (terms hash), pickup codes and claim hashes.
//! - [`contracts`]: `sol!` bindings from the committed artifacts.
//! - [`batches`]: the escrow's deposit batches off chain: Merkle proofs, placements, packed calldata.
//! - [`eip3009`]: EIP-712 signing of EIP-3009 authorizations and EIP-2612 permits.
//! - [`chain`]: connecting (HTTP/WS), chain id check, token metadata, balances, escrow status.
//! - [`relayer`]: nonce-managed sending, fee bumps, confirmations with timeouts.
//! - [`devnet`]: deployment file, deploy from artifacts, faucet, anvil time travel, throw-away devnets.

pub mod batches;
pub mod chain;
pub mod contracts;
pub mod devnet;
pub mod eip3009;
pub mod keys;
pub mod money;
pub mod relayer;
pub mod terms;
pub mod usdc;

pub use chain::{Chain, ChainError, TokenInfo};
pub use eip3009::{Signature65, SignedAuthorization, TokenDomain};
pub use keys::{Keystore, Mnemonic, Passphrase};
pub use money::{MoneyError, TokenAmount};
pub use relayer::{ReceiptSummary, Relayer, RelayerConfig};
pub use terms::{ClaimSecret, PickupCode, RemittanceTerms};
