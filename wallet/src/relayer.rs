//! A relayer: sends transactions from one key with explicitly managed nonces, re-prices stuck transactions, and
//! waits for confirmations with a timeout. In memory and DB-free (the node keeps its own database outbox).
//!
//! Nonces: the pending nonce is read from the chain once, then assigned locally under a lock that also covers
//! signing and broadcasting, so two back-to-back sends get consecutive nonces. A send that fails before reaching the
//! mempool (estimate refused, RPC error) does not consume its nonce: the next send resynchronises from the chain's
//! pending count. A fresh `Relayer` (a restart) starts from the chain. A transaction not mined within
//! `bump_after` is re-broadcast with the same nonce and fees raised by 20 % (nodes require ≥ 12.5 %), at most
//! `max_bumps` times; a dropped transaction is re-broadcast the same way.

use std::future::IntoFuture;
use std::time::{Duration, Instant};

use alloy::consensus::TxEnvelope;
use alloy::eips::eip2718::Encodable2718;
use alloy::network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{Address, B256, Bytes, TxKind, U256};
use alloy::providers::Provider;
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use serde::Serialize;

use crate::batches::Placement;
use crate::chain::{Chain, ChainError};
use crate::contracts::{IRemittanceEscrow, RemittanceEscrow, TestStablecoin};
use crate::eip3009::{AuthorizationTerms, SignedAuthorization};
use crate::terms::RemittanceTerms;

/// Fee raise per replacement, in percent (nodes require at least 12.5 %).
pub const FEE_BUMP_PERCENT: u128 = 20;

/// How the relayer waits.
#[derive(Clone, Debug)]
pub struct RelayerConfig {
    /// Blocks on top of (and including) the one holding the transaction.
    pub confirmations: u64,
    /// Bound on the whole wait for confirmations.
    pub confirm_timeout: Duration,
    /// Re-broadcast with raised fees when not mined this long after the last broadcast.
    pub bump_after: Duration,
    /// Most replacements per transaction.
    pub max_bumps: u32,
    pub poll_interval: Duration,
    /// Gas limit = estimate × this / 100.
    pub gas_limit_percent: u64,
}

impl Default for RelayerConfig {
    fn default() -> Self {
        Self {
            confirmations: 1,
            confirm_timeout: Duration::from_secs(120),
            bump_after: Duration::from_secs(30),
            max_bumps: 5,
            poll_interval: Duration::from_millis(250),
            gas_limit_percent: 130,
        }
    }
}

/// A transaction handed to the mempool, not yet confirmed.
#[derive(Debug, Clone)]
pub struct PendingTx {
    pub label: String,
    pub nonce: u64,
    /// Every hash broadcast for this nonce, the latest last.
    pub hashes: Vec<B256>,
    request: TransactionRequest,
    last_sent: Instant,
    bumps: u32,
}

impl PendingTx {
    pub fn tx_hash(&self) -> B256 {
        self.hashes.last().copied().unwrap_or_default()
    }
}

/// What a confirmed transaction cost.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiptSummary {
    pub label: String,
    pub tx_hash: B256,
    pub nonce: u64,
    pub block_number: u64,
    pub gas_used: u64,
    pub effective_gas_price_wei: u128,
    /// gas used × effective gas price, decimal string.
    pub fee_wei: String,
    /// Earlier broadcasts with the same nonce that this one replaced.
    pub replaced: Vec<B256>,
    pub contract_address: Option<Address>,
    #[serde(skip)]
    pub receipt: TransactionReceipt,
}

/// Sends from one key.
#[derive(Debug)]
pub struct Relayer {
    chain: Chain,
    address: Address,
    wallet: EthereumWallet,
    config: RelayerConfig,
    next_nonce: tokio::sync::Mutex<Option<u64>>,
}

/// A batch that cannot be packed is the caller's mistake (an amount or time too large, a duplicate).
fn batch_error(e: crate::batches::BatchError) -> ChainError {
    ChainError::Refused {
        what: "packing a batch".into(),
        reason: e.to_string(),
    }
}

fn rpc_message(e: &ChainError) -> String {
    match e {
        ChainError::Rpc { message, .. } => message.to_ascii_lowercase(),
        ChainError::Refused { reason, .. } => reason.to_ascii_lowercase(),
        _ => String::new(),
    }
}

fn bump(v: u128) -> u128 {
    v.saturating_mul(100 + FEE_BUMP_PERCENT)
        .div_ceil(100)
        .max(v.saturating_add(1))
}

impl Relayer {
    pub fn new(chain: Chain, signer: PrivateKeySigner, config: RelayerConfig) -> Self {
        Self {
            chain,
            address: signer.address(),
            wallet: EthereumWallet::from(signer),
            config,
            next_nonce: tokio::sync::Mutex::new(None),
        }
    }

    pub fn address(&self) -> Address {
        self.address
    }

    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    pub fn config(&self) -> &RelayerConfig {
        &self.config
    }

    /// Forgets the local nonce: the next send reads the chain's pending count.
    pub async fn resync(&self) {
        *self.next_nonce.lock().await = None;
    }

    /// The nonce the next send would use (reads the chain when not yet known).
    pub async fn next_nonce(&self) -> Result<u64, ChainError> {
        let mut guard = self.next_nonce.lock().await;
        self.nonce_locked(&mut guard).await
    }

    async fn nonce_locked(&self, slot: &mut Option<u64>) -> Result<u64, ChainError> {
        if let Some(n) = *slot {
            return Ok(n);
        }
        let n = self
            .chain
            .rpc(
                "reading the relayer's nonce",
                self.chain
                    .provider()
                    .get_transaction_count(self.address)
                    .pending()
                    .into_future(),
            )
            .await?;
        *slot = Some(n);
        Ok(n)
    }

    async fn sign(&self, request: TransactionRequest) -> Result<(B256, Bytes), ChainError> {
        let envelope: TxEnvelope = request.build(&self.wallet).await.map_err(|e| ChainError::Rpc {
            what: "signing a transaction".into(),
            message: e.to_string(),
        })?;
        let hash = *envelope.tx_hash();
        Ok((hash, Bytes::from(envelope.encoded_2718())))
    }

    async fn broadcast(&self, what: &str, raw: &Bytes) -> Result<(), ChainError> {
        let sent = self
            .chain
            .rpc(what, self.chain.provider().send_raw_transaction(raw))
            .await;
        match sent {
            Ok(_) => Ok(()),
            // The very same transaction is already in the pool: that is what we wanted.
            Err(e) if rpc_message(&e).contains("already known") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Estimates, signs and broadcasts a call (or a contract creation when `to` is `TxKind::Create`).
    pub async fn send(&self, label: &str, to: TxKind, input: Bytes) -> Result<PendingTx, ChainError> {
        let mut base = TransactionRequest::default()
            .with_from(self.address)
            .with_input(input)
            .with_chain_id(self.chain.chain_id());
        base.to = Some(to);
        let provider = self.chain.provider();
        let mut slot = self.next_nonce.lock().await;
        // Refused here (a revert) means nothing was sent and no nonce is used.
        let estimate = match self
            .chain
            .rpc(label, provider.estimate_gas(base.clone()).into_future())
            .await
        {
            Err(e) if rpc_message(&e).contains("insufficient funds") => {
                return Err(ChainError::RelayerUnfunded {
                    relayer: self.address,
                });
            }
            other => other?,
        };
        let gas_limit = estimate.saturating_mul(self.config.gas_limit_percent) / 100;
        let fees = self
            .chain
            .rpc("estimating fees", provider.estimate_eip1559_fees())
            .await?;
        let mut retried = false;
        loop {
            let nonce = self.nonce_locked(&mut slot).await?;
            let request = base
                .clone()
                .with_nonce(nonce)
                .with_gas_limit(gas_limit)
                .with_max_fee_per_gas(fees.max_fee_per_gas)
                .with_max_priority_fee_per_gas(fees.max_priority_fee_per_gas);
            let (hash, raw) = self.sign(request.clone()).await?;
            match self.broadcast(label, &raw).await {
                Ok(()) => {
                    *slot = Some(nonce + 1);
                    tracing::debug!(target: "wallet::relayer", %hash, nonce, label, "sent");
                    return Ok(PendingTx {
                        label: label.to_owned(),
                        nonce,
                        hashes: vec![hash],
                        request,
                        last_sent: Instant::now(),
                        bumps: 0,
                    });
                }
                Err(e) => {
                    // Not in the mempool: do not keep the nonce; the next attempt reads the chain.
                    *slot = None;
                    let m = rpc_message(&e);
                    if m.contains("insufficient funds") {
                        return Err(ChainError::RelayerUnfunded {
                            relayer: self.address,
                        });
                    }
                    if !retried && (m.contains("nonce too low") || m.contains("nonce too high")) {
                        retried = true;
                        continue;
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Re-broadcasts with the same nonce and fees raised by [`FEE_BUMP_PERCENT`].
    async fn replace(&self, p: &mut PendingTx) -> Result<(), ChainError> {
        let max_fee = bump(p.request.max_fee_per_gas.unwrap_or_default());
        let tip = bump(p.request.max_priority_fee_per_gas.unwrap_or_default());
        // Never below what the chain asks for now.
        let now = self
            .chain
            .rpc("estimating fees", self.chain.provider().estimate_eip1559_fees())
            .await?;
        let request = p
            .request
            .clone()
            .with_max_fee_per_gas(max_fee.max(now.max_fee_per_gas))
            .with_max_priority_fee_per_gas(
                tip.max(now.max_priority_fee_per_gas)
                    .min(max_fee.max(now.max_fee_per_gas)),
            );
        let (hash, raw) = self.sign(request.clone()).await?;
        self.broadcast("re-broadcasting a stuck transaction", &raw)
            .await?;
        tracing::info!(target: "wallet::relayer", %hash, nonce = p.nonce, bump = p.bumps + 1, "replaced");
        p.request = request;
        if !p.hashes.contains(&hash) {
            p.hashes.push(hash);
        }
        p.bumps += 1;
        p.last_sent = Instant::now();
        Ok(())
    }

    /// Waits for `confirmations` blocks, re-pricing while unmined; always bounded by `confirm_timeout`.
    /// `progress` is told how many confirmations there are so far.
    pub async fn confirm(
        &self,
        mut p: PendingTx,
        mut progress: impl FnMut(u64),
    ) -> Result<ReceiptSummary, ChainError> {
        let started = Instant::now();
        let provider = self.chain.provider();
        loop {
            let mut found = None;
            for h in p.hashes.iter().rev() {
                if let Some(r) = self
                    .chain
                    .rpc(
                        "reading a receipt",
                        provider.get_transaction_receipt(*h).into_future(),
                    )
                    .await?
                {
                    found = Some(r);
                    break;
                }
            }
            match found {
                Some(r) => {
                    let block = r.block_number.unwrap_or_default();
                    let tip = self
                        .chain
                        .rpc(
                            "reading the block number",
                            provider.get_block_number().into_future(),
                        )
                        .await?;
                    let confirmations = tip.saturating_add(1).saturating_sub(block);
                    progress(confirmations);
                    if confirmations >= self.config.confirmations {
                        if !r.status() {
                            return Err(ChainError::TxFailed {
                                tx_hash: r.transaction_hash,
                                gas_used: r.gas_used,
                            });
                        }
                        let replaced = p
                            .hashes
                            .iter()
                            .copied()
                            .filter(|h| *h != r.transaction_hash)
                            .collect();
                        let fee = U256::from(r.gas_used) * U256::from(r.effective_gas_price);
                        return Ok(ReceiptSummary {
                            label: p.label.clone(),
                            tx_hash: r.transaction_hash,
                            nonce: p.nonce,
                            block_number: block,
                            gas_used: r.gas_used,
                            effective_gas_price_wei: r.effective_gas_price,
                            fee_wei: fee.to_string(),
                            replaced,
                            contract_address: r.contract_address,
                            receipt: r,
                        });
                    }
                }
                None => {
                    progress(0);
                    if p.last_sent.elapsed() >= self.config.bump_after
                        && p.bumps < self.config.max_bumps
                        && let Err(e) = self.replace(&mut p).await
                    {
                        // e.g. "nonce too low": an earlier broadcast was just mined; keep polling.
                        tracing::debug!(target: "wallet::relayer", error = %e, "replacement not sent");
                        p.last_sent = Instant::now();
                    }
                }
            }
            if started.elapsed() >= self.config.confirm_timeout {
                return Err(ChainError::ConfirmationTimeout {
                    tx_hash: p.tx_hash(),
                    nonce: p.nonce,
                    confirmations: self.config.confirmations,
                    after_s: self.config.confirm_timeout.as_secs(),
                });
            }
            tokio::time::sleep(self.config.poll_interval).await;
        }
    }

    /// [`send`](Self::send) then [`confirm`](Self::confirm).
    pub async fn send_and_confirm(
        &self,
        label: &str,
        to: TxKind,
        input: Bytes,
        progress: impl FnMut(u64),
    ) -> Result<ReceiptSummary, ChainError> {
        let p = self.send(label, to, input).await?;
        self.confirm(p, progress).await
    }

    // ------------------------------------------------------------ escrow and token operations (send only)

    pub async fn deposit(
        &self,
        terms: &RemittanceTerms,
        auth: &SignedAuthorization,
    ) -> Result<PendingTx, ChainError> {
        let call = RemittanceEscrow::depositCall {
            t: terms.to_sol(),
            auth: auth.to_sol(),
        };
        self.send("deposit", TxKind::Call(terms.escrow), call.abi_encode().into())
            .await
    }

    /// All items must be for the same escrow. One packed `depositBatch` (a section per run of equal partner terms;
    /// leaf i = item i).
    pub async fn deposit_batch(
        &self,
        escrow: Address,
        items: &[(RemittanceTerms, SignedAuthorization)],
    ) -> Result<PendingTx, ChainError> {
        let sol: Vec<_> = items.iter().map(|(t, a)| (t.to_sol(), a.to_sol())).collect();
        let packed = crate::batches::pack_deposits(escrow, &sol).map_err(batch_error)?;
        let call = RemittanceEscrow::depositBatchCall { data: packed };
        self.send("depositBatch", TxKind::Call(escrow), call.abi_encode().into())
            .await
    }

    /// Releases one remittance at `placement` (where its deposit put it).
    pub async fn release(
        &self,
        terms: &RemittanceTerms,
        preimage: B256,
        placement: &Placement,
    ) -> Result<PendingTx, ChainError> {
        let call = RemittanceEscrow::releaseCall {
            t: terms.to_sol(),
            preimage,
            index: placement.index_u256(),
            proof: placement.proof(),
        };
        self.send("release", TxKind::Call(terms.escrow), call.abi_encode().into())
            .await
    }

    /// One packed `releaseBatch`: grouped by deposit batch, each partner paid with one transfer.
    pub async fn release_batch(
        &self,
        escrow: Address,
        items: &[(RemittanceTerms, B256, Placement)],
    ) -> Result<PendingTx, ChainError> {
        let rel: Vec<_> = items
            .iter()
            .map(|(t, p, pl)| crate::batches::ReleaseItem {
                terms: t.to_sol(),
                preimage: *p,
                placement: pl,
            })
            .collect();
        let packed = crate::batches::pack_releases(escrow, &rel).map_err(batch_error)?;
        let call = RemittanceEscrow::releaseBatchCall { data: packed };
        self.send("releaseBatch", TxKind::Call(escrow), call.abi_encode().into())
            .await
    }

    pub async fn refund(
        &self,
        terms: &RemittanceTerms,
        placement: &Placement,
    ) -> Result<PendingTx, ChainError> {
        let call = RemittanceEscrow::refundCall {
            t: terms.to_sol(),
            index: placement.index_u256(),
            proof: placement.proof(),
        };
        self.send("refund", TxKind::Call(terms.escrow), call.abi_encode().into())
            .await
    }

    /// Refunds before expiry with the partner signer's EIP-712 `Decline` signature (`terms::sign_decline`).
    pub async fn cancel(
        &self,
        terms: &RemittanceTerms,
        placement: &Placement,
        decline: &crate::eip3009::Signature65,
    ) -> Result<PendingTx, ChainError> {
        let call = RemittanceEscrow::cancelCall {
            t: terms.to_sol(),
            index: placement.index_u256(),
            proof: placement.proof(),
            declineSignature: decline.as_bytes().to_vec().into(),
        };
        self.send("cancel", TxKind::Call(terms.escrow), call.abi_encode().into())
            .await
    }

    pub async fn refund_batch(
        &self,
        escrow: Address,
        items: &[(RemittanceTerms, Placement)],
    ) -> Result<PendingTx, ChainError> {
        let call = RemittanceEscrow::refundBatchCall {
            items: items
                .iter()
                .map(|(t, p)| IRemittanceEscrow::ExitItem {
                    terms: t.to_sol(),
                    index: p.index_u256(),
                    proof: p.proof(),
                })
                .collect(),
        };
        self.send("refundBatch", TxKind::Call(escrow), call.abi_encode().into())
            .await
    }

    /// Gasless P2P: submits a signed EIP-3009 `transferWithAuthorization`.
    pub async fn transfer_with_authorization(
        &self,
        token: Address,
        t: &AuthorizationTerms,
        auth: &SignedAuthorization,
    ) -> Result<PendingTx, ChainError> {
        let sig = auth.signature;
        let call = TestStablecoin::transferWithAuthorizationCall {
            from: t.from,
            to: t.to,
            value: t.value,
            validAfter: U256::from(t.valid_after_unix_s),
            validBefore: U256::from(t.valid_before_unix_s),
            nonce: t.nonce,
            v: sig.v(),
            r: sig.r(),
            s: sig.s(),
        };
        self.send(
            "transferWithAuthorization",
            TxKind::Call(token),
            call.abi_encode().into(),
        )
        .await
    }

    /// Devnet: mints from the minter key (this relayer's key must be the token's minter).
    pub async fn mint(&self, token: Address, to: Address, base_units: U256) -> Result<PendingTx, ChainError> {
        let call = TestStablecoin::mintCall {
            to,
            amount: base_units,
        };
        self.send("mint", TxKind::Call(token), call.abi_encode().into())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bumps_by_at_least_twenty_percent() {
        assert_eq!(bump(100), 120);
        assert_eq!(bump(1), 2);
        assert_eq!(bump(0), 1);
        assert_eq!(bump(7), 9);
        assert_eq!(bump(u128::MAX), u128::MAX);
    }
}
