//! Configuration of the chain workers: outbox (batching, fees, bumps), indexer (confirmations, ranges) and the
//! refund keeper. Every queue, batch, retry and range has a limit here.

use serde::{Deserialize, Serialize};

/// Limits and timings of the chain workers. `Default` suits a devnet with ~1 s blocks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChainConfig {
    /// Largest batch (items per transaction); also capped by the escrow's `MAX_BATCH()`.
    pub batch_size_max: u32,
    /// A partial batch is sent once its oldest job has waited this long.
    pub batch_delay_ms_max: u64,
    /// Transactions of one sending key that may be in flight (signed, not yet confirmed) at once.
    pub in_flight_txs_max: u32,
    /// How often the writer looks at the queue and its transactions.
    pub writer_poll_ms: u64,
    /// A claimed job not put in a transaction within this time may be claimed again.
    pub claim_timeout_ms: u64,
    /// Attempts (failed estimates, reverted transactions) before a job is marked failed.
    pub job_attempts_max: u32,
    /// Backoff after a failed attempt, doubled each time up to `job_backoff_ms_max`.
    pub job_backoff_ms: u64,
    pub job_backoff_ms_max: u64,
    /// A broadcast transaction with no receipt after this long is re-priced (same nonce, higher fees).
    pub bump_after_ms: u64,
    /// Fee bumps per transaction.
    pub bumps_max: u32,
    /// Percentage added per bump (nodes require >= 10 to accept a replacement).
    pub bump_percent: u32,
    /// Fee ceiling: no transaction is signed with a higher `maxFeePerGas` (wei).
    pub max_fee_per_gas_wei_ceiling: u128,
    /// Floor for the priority fee (wei).
    pub priority_fee_wei_min: u128,
    /// Gas limit = estimate * (100 + margin) / 100.
    pub gas_limit_margin_percent: u32,
    /// Broadcasts rejected by the node before the transaction is abandoned (its jobs go back to the queue).
    pub broadcast_failures_max: u32,
    /// Blocks on top of a mined outbox transaction before its jobs are done.
    pub tx_confirmations: u64,
    /// Blocks on top of a block before the indexer applies its events.
    pub confirmations: u64,
    /// Largest `eth_getLogs` block range.
    pub logs_block_range_max: u64,
    /// How often the indexer polls the head.
    pub indexer_poll_ms: u64,
    /// Block hashes kept for reorg detection; a deeper reorg stops the indexer with an error.
    pub reorg_depth_max: u64,
    /// How often the refund keeper looks for expired remittances, and how many per round.
    pub refund_keeper_interval_ms: u64,
    pub refund_keeper_batch_max: u32,
    /// Lease time of a writer / indexer / keeper; renewed at a third of it.
    pub lease_ms: u64,
    /// RPC calls time out after this long.
    pub rpc_timeout_ms: u64,
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            batch_size_max: 64,
            batch_delay_ms_max: 1_000,
            in_flight_txs_max: 16,
            writer_poll_ms: 200,
            claim_timeout_ms: 30_000,
            job_attempts_max: 10,
            job_backoff_ms: 1_000,
            job_backoff_ms_max: 60_000,
            bump_after_ms: 15_000,
            bumps_max: 5,
            bump_percent: 20,
            max_fee_per_gas_wei_ceiling: 500_000_000_000, // 500 gwei
            priority_fee_wei_min: 1_000_000,              // 0.001 gwei
            gas_limit_margin_percent: 25,
            broadcast_failures_max: 5,
            tx_confirmations: 1,
            confirmations: 1,
            logs_block_range_max: 2_000,
            indexer_poll_ms: 500,
            reorg_depth_max: 256,
            refund_keeper_interval_ms: 5_000,
            refund_keeper_batch_max: 200,
            lease_ms: 15_000,
            rpc_timeout_ms: 10_000,
        }
    }
}

impl ChainConfig {
    /// Checks the limits make sense together; returns a description of the first problem.
    pub fn validate(&self) -> Result<(), String> {
        if self.batch_size_max == 0 {
            return Err("batch_size_max must be at least 1".into());
        }
        if self.in_flight_txs_max == 0 {
            return Err("in_flight_txs_max must be at least 1".into());
        }
        if self.bump_percent < 10 {
            return Err("bump_percent must be at least 10 (nodes refuse smaller replacements)".into());
        }
        if self.logs_block_range_max == 0 {
            return Err("logs_block_range_max must be at least 1".into());
        }
        if self.reorg_depth_max < self.confirmations {
            return Err("reorg_depth_max must be at least confirmations".into());
        }
        if self.lease_ms < 3 * self.writer_poll_ms.max(self.indexer_poll_ms) {
            return Err("lease_ms must be at least three poll intervals".into());
        }
        if self.max_fee_per_gas_wei_ceiling == 0 {
            return Err("max_fee_per_gas_wei_ceiling must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        assert_eq!(ChainConfig::default().validate(), Ok(()));
    }

    #[test]
    fn small_bump_is_refused() {
        let c = ChainConfig {
            bump_percent: 5,
            ..ChainConfig::default()
        };
        assert!(c.validate().is_err());
    }
}
