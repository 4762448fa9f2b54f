//! Batch calldata builders. The contract bindings are the wallet's (`remesa_wallet::contracts`, generated from the
//! committed artifacts); they are re-exported here. For the token the node uses only standard members of
//! `TestStablecoin`'s ABI (the ERC-20 `Transfer` event and EIP-3009 `transferWithAuthorization`), which any USDC-like
//! token shares.

use std::collections::HashMap;

use alloy::primitives::{Address, B256, Bytes};
use alloy::sol_types::SolCall;
use remesa_wallet::batches::{self, BatchError, Placement};
pub use remesa_wallet::contracts::{IRemittanceEscrow, RemittanceEscrow, TestStablecoin};

use super::types::JobPayload;

/// Calldata for one batch transaction. All payloads must be of one kind (the caller groups them). A transfer job (a
/// call on the token) and a cancel job (it carries a signature) are never batched: when the first payload is one,
/// only it is encoded (the writer claims them one at a time). Releases, refunds and cancels carry the proof of where
/// their deposit put them: `placements` must hold one for each of their remittance ids (the writer reads them from
/// the indexed deposit batches).
pub(crate) fn batch_calldata(
    escrow: Address,
    payloads: &[JobPayload],
    placements: &HashMap<B256, Placement>,
) -> Result<Bytes, CalldataError> {
    let placement = |id: B256| placements.get(&id).ok_or(CalldataError::NotIndexed(id));
    match payloads.first() {
        None => Err(CalldataError::Batch(BatchError::Empty)),
        Some(JobPayload::Transfer(j)) => Ok(TestStablecoin::transferWithAuthorizationCall {
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
        .into()),
        Some(JobPayload::Cancel(j)) => {
            let p = placement(j.remittance_id)?;
            Ok(RemittanceEscrow::cancelCall {
                t: j.terms.to_sol(),
                index: p.index_u256(),
                proof: p.proof(),
                declineSignature: j.decline_signature.clone(),
            }
            .abi_encode()
            .into())
        }
        Some(JobPayload::Deposit(_)) => {
            let items: Vec<_> = payloads
                .iter()
                .filter_map(|p| match p {
                    JobPayload::Deposit(j) => Some((j.terms.to_sol(), j.authorization.to_sol())),
                    _ => None,
                })
                .collect();
            let data = batches::pack_deposits(escrow, &items)?;
            Ok(RemittanceEscrow::depositBatchCall { data }.abi_encode().into())
        }
        Some(JobPayload::Release(_)) => {
            let mut items = Vec::with_capacity(payloads.len());
            for p in payloads {
                if let JobPayload::Release(j) = p {
                    items.push(batches::ReleaseItem {
                        terms: j.terms.to_sol(),
                        preimage: j.preimage,
                        placement: placement(j.remittance_id)?,
                    });
                }
            }
            // Grouped by deposit batch; each (partner, settlement address) paid with one token transfer.
            let data = batches::pack_releases(escrow, &items)?;
            Ok(RemittanceEscrow::releaseBatchCall { data }.abi_encode().into())
        }
        Some(JobPayload::Refund(_)) => {
            let mut items = Vec::with_capacity(payloads.len());
            for p in payloads {
                if let JobPayload::Refund(j) = p {
                    let pl = placement(j.remittance_id)?;
                    items.push(IRemittanceEscrow::ExitItem {
                        terms: j.terms.to_sol(),
                        index: pl.index_u256(),
                        proof: pl.proof(),
                    });
                }
            }
            Ok(RemittanceEscrow::refundBatchCall { items }.abi_encode().into())
        }
    }
}

/// Why a batch's calldata could not be built.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CalldataError {
    /// The deposit of this remittance has not been indexed (or a reorg took it away): its proof is unknown yet.
    #[error("the deposit of remittance {0:#x} is not indexed yet, so its proof is unknown")]
    NotIndexed(B256),
    #[error(transparent)]
    Batch(#[from] BatchError),
}
