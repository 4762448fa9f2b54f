//! Batch calldata builders. The contract bindings are the wallet's (`remesa_wallet::contracts`, generated from the
//! committed artifacts); they are re-exported here. For the token the node uses only standard members of
//! `TestStablecoin`'s ABI (the ERC-20 `Transfer` event and EIP-3009 `transferWithAuthorization`), which any USDC-like
//! token shares.

use alloy::primitives::Bytes;
use alloy::sol_types::SolCall;
pub use remesa_wallet::contracts::{IRemittanceEscrow, RemittanceEscrow, TestStablecoin};

use super::types::JobPayload;

/// Calldata for one batch transaction. All payloads must be of one kind (the caller groups them). A transfer job (a
/// call on the token) and a cancel job (it carries a signature) are never batched: when the first payload is one,
/// only it is encoded (the writer claims them one at a time).
pub(crate) fn batch_calldata(payloads: &[JobPayload]) -> Bytes {
    if let Some(JobPayload::Transfer(j)) = payloads.first() {
        return TestStablecoin::transferWithAuthorizationCall {
            from: j.from,
            to: j.to,
            value: j.value_base_units,
            validAfter: j.authorization.valid_after_unix_s,
            validBefore: j.authorization.valid_before_unix_s,
            nonce: j.remittance_id,
            v: j.authorization.v,
            r: j.authorization.r,
            s: j.authorization.s,
        }
        .abi_encode()
        .into();
    }
    if let Some(JobPayload::Cancel(j)) = payloads.first() {
        return RemittanceEscrow::cancelCall {
            t: j.terms.to_sol(),
            declineSignature: j.decline_signature.clone(),
        }
        .abi_encode()
        .into();
    }
    let mut deposits = Vec::new();
    let mut releases = Vec::new();
    let mut refunds = Vec::new();
    for p in payloads {
        match p {
            JobPayload::Deposit(j) => deposits.push(IRemittanceEscrow::DepositItem {
                terms: j.terms.to_sol(),
                auth: j.authorization.to_sol(),
            }),
            JobPayload::Release(j) => releases.push(IRemittanceEscrow::ReleaseItem {
                terms: j.terms.to_sol(),
                preimage: j.preimage,
            }),
            JobPayload::Refund(j) => refunds.push(j.terms.to_sol()),
            JobPayload::Transfer(_) | JobPayload::Cancel(_) => {} // never batched (see above)
        }
    }
    if !deposits.is_empty() {
        RemittanceEscrow::depositBatchCall { items: deposits }
            .abi_encode()
            .into()
    } else if !releases.is_empty() {
        // Runs of equal partner ids share one token transfer: the writer sorts releases by partner.
        RemittanceEscrow::releaseBatchCall { items: releases }
            .abi_encode()
            .into()
    } else {
        RemittanceEscrow::refundBatchCall { items: refunds }
            .abi_encode()
            .into()
    }
}
