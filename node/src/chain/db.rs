//! The chain module's view of the node database: the pool, which backend it is, and small helpers.

use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use alloy::primitives::{Address, B256};
use sqlx::AnyPool;

use super::error::ChainError;

/// The node's `AnyPool` and whether it talks to PostgreSQL (row locks with `SKIP LOCKED`) or SQLite (one process).
#[derive(Clone, Debug)]
pub struct ChainDb {
    pub pool: AnyPool,
    postgres: bool,
}

impl ChainDb {
    /// Wraps a pool whose backend is already known.
    pub fn new(pool: AnyPool, postgres: bool) -> Self {
        Self { pool, postgres }
    }

    /// Wraps a pool, asking a connection which backend it is.
    pub async fn detect(pool: AnyPool) -> Result<Self, ChainError> {
        let conn = pool.acquire().await?;
        let postgres = conn.backend_name().eq_ignore_ascii_case("postgresql");
        drop(conn);
        Ok(Self { pool, postgres })
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres
    }

    /// ` FOR UPDATE SKIP LOCKED` on PostgreSQL, nothing on SQLite (a single writer process).
    pub(crate) fn skip_locked(&self) -> &'static str {
        if self.postgres {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

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
