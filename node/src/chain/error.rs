//! Errors of the chain workers.

use super::sink::SinkError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// A storage error that is neither a database error nor a corrupt row (see the `From<StoreError>`).
    #[error(transparent)]
    Store(StoreError),
    #[error("rpc {method}: {message}")]
    Rpc { method: &'static str, message: String },
    #[error("rpc {method} timed out after {timeout_ms} ms")]
    RpcTimeout { method: &'static str, timeout_ms: u64 },
    #[error("engine: {0}")]
    Sink(#[source] SinkError),
    #[error("stored row is corrupt: {0}")]
    Corrupt(String),
    #[error("lease {name} is held by another process")]
    LeaseLost { name: String },
    #[error("reorg deeper than {depth_max} blocks below block {cursor}: the indexer stops")]
    ReorgTooDeep { cursor: u64, depth_max: u64 },
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("signing failed: {0}")]
    Signing(String),
}

impl ChainError {
    /// A database error that can pass (see [`StoreError::is_transient`]): the HTTP layers answer 503.
    pub fn is_transient(&self) -> bool {
        match self {
            ChainError::Db(e) => crate::store::sqlx_is_transient(e),
            ChainError::Store(e) => e.is_transient(),
            _ => false,
        }
    }
}

/// A database error stays [`ChainError::Db`] and a corrupt row [`ChainError::Corrupt`], as before the queries moved
/// to the store.
impl From<StoreError> for ChainError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Sqlx(e) => ChainError::Db(e),
            StoreError::Corrupt(what) => ChainError::Corrupt(what),
            other => ChainError::Store(other),
        }
    }
}

impl ChainError {
    pub(crate) fn rpc(method: &'static str, e: impl std::fmt::Display) -> Self {
        ChainError::Rpc {
            method,
            message: e.to_string(),
        }
    }

    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        ChainError::Corrupt(what.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_keep_their_meaning() {
        let e = ChainError::from(StoreError::Corrupt("hash \"x\"".into()));
        assert!(matches!(&e, ChainError::Corrupt(m) if m == "hash \"x\""));
        assert_eq!(e.to_string(), "stored row is corrupt: hash \"x\"");
        let e = ChainError::from(StoreError::Sqlx(sqlx::Error::RowNotFound));
        assert!(matches!(e, ChainError::Db(sqlx::Error::RowNotFound)));
        let e = ChainError::from(StoreError::UnsupportedUrl);
        assert!(matches!(e, ChainError::Store(StoreError::UnsupportedUrl)));
    }
}
