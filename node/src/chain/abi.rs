//! ABI of the escrow (from the fixed interface file) and of the token's `Transfer` event, plus calldata builders.

use alloy::primitives::Bytes;
use alloy::sol_types::SolCall;

use super::types::JobPayload;

alloy::sol!("../contracts/src/interfaces/IRemittanceEscrow.sol");

alloy::sol! {
    #[derive(Debug, PartialEq, Eq)]
    interface IERC20Transfer {
        event Transfer(address indexed from, address indexed to, uint256 value);
    }
}

/// Calldata for one batch transaction. All payloads must be of one kind (the caller groups them).
pub(crate) fn batch_calldata(payloads: &[JobPayload]) -> Bytes {
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
        }
    }
    if !deposits.is_empty() {
        IRemittanceEscrow::depositBatchCall { items: deposits }
            .abi_encode()
            .into()
    } else if !releases.is_empty() {
        // Runs of equal partner ids share one token transfer: the writer sorts releases by partner.
        IRemittanceEscrow::releaseBatchCall { items: releases }
            .abi_encode()
            .into()
    } else {
        IRemittanceEscrow::refundBatchCall { items: refunds }
            .abi_encode()
            .into()
    }
}
