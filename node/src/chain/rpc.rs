//! RPC helpers: every call has a timeout, and node errors are told apart from transport errors.

use std::future::Future;
use std::time::Duration;

use alloy::transports::{RpcError, TransportErrorKind};

use super::error::ChainError;

/// Runs an RPC call with a timeout.
pub(crate) async fn call<T>(
    method: &'static str,
    timeout_ms: u64,
    fut: impl Future<Output = Result<T, RpcError<TransportErrorKind>>>,
) -> Result<T, ChainError> {
    match tokio::time::timeout(Duration::from_millis(timeout_ms), fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ChainError::rpc(method, e)),
        Err(_) => Err(ChainError::RpcTimeout { method, timeout_ms }),
    }
}

/// What the node said to `eth_sendRawTransaction`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Broadcast {
    Accepted,
    /// The node already has it (a re-broadcast).
    AlreadyKnown,
    /// The nonce is used: ours was mined, or someone else's was.
    NonceTooLow,
    /// A replacement with too small a fee increase.
    Underpriced,
    /// Any other refusal by the node (insufficient funds, bad gas, ...).
    Rejected(String),
}

/// Sorts an RPC result into node answers (Ok) and transport failures (Err: try again later, the node may or may not
/// have received the transaction).
pub(crate) fn classify_broadcast<T>(
    res: Result<Result<T, RpcError<TransportErrorKind>>, tokio::time::error::Elapsed>,
    timeout_ms: u64,
) -> Result<Broadcast, ChainError> {
    match res {
        Err(_) => Err(ChainError::RpcTimeout {
            method: "eth_sendRawTransaction",
            timeout_ms,
        }),
        Ok(Ok(_)) => Ok(Broadcast::Accepted),
        Ok(Err(RpcError::ErrorResp(payload))) => Ok(classify_message(&payload.message)),
        Ok(Err(e)) => Err(ChainError::rpc("eth_sendRawTransaction", e)),
    }
}

pub(crate) fn classify_message(message: &str) -> Broadcast {
    let m = message.to_ascii_lowercase();
    if m.contains("already known") || m.contains("already imported") || m.contains("known transaction") {
        Broadcast::AlreadyKnown
    } else if m.contains("nonce too low") || m.contains("nonce is too low") {
        Broadcast::NonceTooLow
    } else if m.contains("underpriced") || m.contains("fee too low") || m.contains("replacement") {
        Broadcast::Underpriced
    } else {
        Broadcast::Rejected(message.chars().take(500).collect())
    }
}

/// True when the node answered with an error (e.g. the call reverts), false for transport trouble.
pub(crate) fn is_node_error(e: &RpcError<TransportErrorKind>) -> bool {
    matches!(e, RpcError::ErrorResp(_))
}

/// Whether a call reverted with `error` (its 4-byte selector), from the revert data in the node's answer.
pub(crate) fn reverted_with(e: &RpcError<TransportErrorKind>, selector: [u8; 4]) -> bool {
    e.as_error_resp()
        .and_then(|r| r.as_revert_data())
        .is_some_and(|d| d.len() >= 4 && d[..4] == selector)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_classified() {
        assert_eq!(classify_message("already known"), Broadcast::AlreadyKnown);
        assert_eq!(classify_message("nonce too low"), Broadcast::NonceTooLow);
        assert_eq!(
            classify_message("replacement transaction underpriced"),
            Broadcast::Underpriced
        );
        assert!(matches!(
            classify_message("insufficient funds for gas * price + value"),
            Broadcast::Rejected(_)
        ));
    }
}
