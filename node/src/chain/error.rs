//! Errors of the chain workers.

use super::sink::SinkError;

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
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
