//! Small helpers of the chain module: the stored text forms of addresses and hashes (the store's), checked integer
//! casts to BIGINT.

pub(crate) use crate::store::now_ms;
pub(crate) use crate::store::text::{addr_text, b256_text, parse_addr, parse_b256, parse_bytes, parse_wei};

use super::error::ChainError;

/// A value for a BIGINT column.
pub(crate) fn to_i64(v: u64) -> Result<i64, ChainError> {
    i64::try_from(v).map_err(|_| ChainError::corrupt(format!("{v} does not fit a BIGINT")))
}

/// A stored BIGINT that must not be negative.
pub(crate) fn to_u64(v: i64, what: &str) -> Result<u64, ChainError> {
    Ok(crate::store::stored_u64(v, what)?)
}
