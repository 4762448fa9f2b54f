//! Remesa wallet library: keys, exact money, contract bindings, EIP-3009 authorizations and the relayer.
//!
//! Architecture invariant: this crate never touches HTTP servers, chat or databases.
