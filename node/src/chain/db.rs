//! Small helpers of the chain module's tables: the stored text forms of addresses and hashes, checked integer casts.

use std::str::FromStr;

use alloy::primitives::{Address, B256};

use super::error::ChainError;

pub(crate) use crate::store::now_ms;

/// Lower-case 0x-hex, the stored form of addresses and hashes.
pub(crate) fn addr_text(a: Address) -> String {
    format!("{a:#x}")
}

pub(crate) fn b256_text(h: B256) -> String {
    format!("{h:#x}")
}

pub(crate) fn parse_b256(s: &str) -> Result<B256, ChainError> {
    B256::from_str(s).map_err(|e| ChainError::corrupt(format!("hash {s:?}: {e}")))
}

pub(crate) fn parse_addr(s: &str) -> Result<Address, ChainError> {
    Address::from_str(s).map_err(|e| ChainError::corrupt(format!("address {s:?}: {e}")))
}

pub(crate) fn to_i64(v: u64) -> Result<i64, ChainError> {
    i64::try_from(v).map_err(|_| ChainError::corrupt(format!("{v} does not fit a BIGINT")))
}

pub(crate) fn to_u64(v: i64) -> Result<u64, ChainError> {
    u64::try_from(v).map_err(|_| ChainError::corrupt(format!("negative value {v}")))
}
