//! Figure 2's baseline: the most plain USDC (ERC-20) transfers per second a tight alloy client gets confirmed on anvil with
//! 1-second blocks.
//!
//! Circle's USDC is deployed from its committed artifacts (FiatTokenV2_2 behind its proxy), minted to ~10 funded anvil
//! accounts, and `n` transfers of
//! one base unit to fresh addresses are signed ahead of time with explicit nonces and the exact gas estimate as the
//! gas limit (block packing counts gas limits), then sent pipelined (each sender streams its transactions in nonce
//! order without waiting for receipts). The clock runs from the first send until the block holding the last one is
//! seen; every receipt is then checked for success.

use std::path::Path;
use std::time::{Duration, Instant};

use alloy::eips::BlockNumberOrTag;
use alloy::eips::eip2718::Encodable2718 as _;
use alloy::network::{EthereumWallet, NetworkTransactionBuilder as _, TransactionBuilder as _};
use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{Address, U256, keccak256};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol;
use alloy::sol_types::SolCall as _;
use anyhow::{Context as _, bail, ensure};

sol! {
    /// The slice of the token (USDC) the baseline and figure 2 use.
    interface IMintableErc20 {
        function mint(address to, uint256 amount) external;
        function transfer(address to, uint256 amount) external returns (bool);
        function balanceOf(address owner) external view returns (uint256);
    }
}

/// Starts anvil the way figure 2 needs it: 1-second blocks (or automine with `block_time_s = 0`), `accounts` funded
/// dev accounts, otherwise anvil's defaults.
/// anvil with `block_time_s`-second blocks (0: a block per transaction), `accounts` funded accounts, and the block
/// gas limit `gas_limit` (`None`: anvil's default, 30M).
pub fn spawn_anvil(
    anvil_bin: &Path,
    block_time_s: u64,
    accounts: usize,
    gas_limit: Option<u64>,
) -> anyhow::Result<AnvilInstance> {
    let mut a = Anvil::at(anvil_bin)
        .arg("--accounts")
        .arg(accounts.to_string())
        .timeout(30_000);
    if let Some(limit) = gas_limit {
        a = a.arg("--gas-limit").arg(limit.to_string());
    }
    if block_time_s > 0 {
        a = a.block_time(block_time_s);
    }
    a.try_spawn()
        .with_context(|| format!("starting {}", anvil_bin.display()))
}

/// Waits until blocks after `start_block` hold `count` transactions in all; returns when that was seen and the
/// last block. Only the benchmark sends transactions on its anvil, so every transaction counted is ours.
pub async fn wait_included<P: Provider>(
    p: &P,
    start_block: u64,
    count: usize,
    timeout: Duration,
) -> anyhow::Result<(Instant, u64)> {
    let mut seen: usize = 0;
    let mut next = start_block + 1;
    let deadline = Instant::now() + timeout;
    loop {
        let head = p.get_block_number().await?;
        while next <= head {
            let block = p
                .get_block_by_number(BlockNumberOrTag::Number(next))
                .await?
                .context("missing block")?;
            seen += block.transactions.len();
            next += 1;
        }
        if seen >= count {
            return Ok((Instant::now(), next - 1));
        }
        if Instant::now() > deadline {
            bail!("only {seen} of {count} transactions were included within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Signs `calls` (to `to`, from `signer`, consecutive nonces, gas limit `gas_limit`), sends them pipelined and
/// waits for all to be included successfully.
pub async fn send_all<P: Provider>(
    p: &P,
    signer: &PrivateKeySigner,
    to: Address,
    calls: Vec<Vec<u8>>,
    gas_limit: u64,
) -> anyhow::Result<()> {
    let chain_id = p.get_chain_id().await?;
    let nonce = p.get_transaction_count(signer.address()).await?;
    let latest = p
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await?
        .context("no latest block")?;
    let base_fee = u128::from(latest.header.base_fee_per_gas.unwrap_or(1_000_000_000));
    let wallet = EthereumWallet::from(signer.clone());
    let mut raw = Vec::with_capacity(calls.len());
    for (k, input) in calls.into_iter().enumerate() {
        let tx = TransactionRequest::default()
            .with_from(signer.address())
            .with_to(to)
            .with_input(input)
            .with_nonce(nonce + k as u64)
            .with_chain_id(chain_id)
            .with_gas_limit(gas_limit)
            .with_max_fee_per_gas((base_fee * 50).max(100_000_000_000))
            .with_max_priority_fee_per_gas(1_000_000_000)
            .with_value(U256::ZERO);
        raw.push(tx.build(&wallet).await.context("signing")?.encoded_2718());
    }
    let n = raw.len();
    let start_block = p.get_block_number().await?;
    let mut hashes = Vec::with_capacity(n);
    for tx in raw {
        hashes.push(
            *p.send_raw_transaction(&tx)
                .await
                .context("eth_sendRawTransaction")?
                .tx_hash(),
        );
    }
    let (_, last) = wait_included(p, start_block, n, Duration::from_secs(300)).await?;
    let _ = last;
    for h in hashes {
        let r = p.get_transaction_receipt(h).await?.context("missing receipt")?;
        ensure!(r.status(), "transaction {h} reverted");
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Erc20Run {
    pub transfers: usize,
    pub senders: usize,
    pub elapsed: Duration,
    pub blocks: u64,
    pub gas_per_transfer: u64,
    pub block_gas_limit: u64,
}

impl Erc20Run {
    pub fn per_s(&self) -> f64 {
        self.transfers as f64 / self.elapsed.as_secs_f64()
    }
}

fn fresh_address(run_seed: u64, k: usize) -> Address {
    let mut seed = run_seed.to_be_bytes().to_vec();
    seed.extend_from_slice(&(k as u64).to_be_bytes());
    Address::from_slice(&keccak256(&seed)[12..])
}

/// Runs the baseline on a fresh anvil.
pub async fn run(
    anvil_bin: &Path,
    transfers: usize,
    senders: usize,
    gas_limit: Option<u64>,
) -> anyhow::Result<Erc20Run> {
    let anvil = spawn_anvil(anvil_bin, 1, senders.max(1), gas_limit)?;
    let url = anvil.endpoint_url();
    let signers: Vec<PrivateKeySigner> = anvil
        .keys()
        .iter()
        .take(senders)
        .map(|k| k.clone().into())
        .collect();
    ensure!(
        signers.len() == senders,
        "anvil gave {} accounts, {senders} needed",
        signers.len()
    );
    let deployer = signers[0].clone();
    let chain = ProviderBuilder::new()
        .wallet(EthereumWallet::from(deployer.clone()))
        .connect_http(url.clone());

    // Deploy Circle's USDC from its committed artifacts and fund the senders (outside the clock).
    let wallet_chain =
        remesa_wallet::chain::Chain::connect(url.as_str(), None, Duration::from_secs(30)).await?;
    let token = remesa_wallet::usdc::deploy(
        &wallet_chain,
        deployer.clone(),
        remesa_wallet::devnet::USDC_PROXY_ADMIN,
        U256::MAX,
    )
    .await
    .context("deploying USDC")?
    .token;
    let mut pending = Vec::new();
    for s in &signers {
        let call = IMintableErc20::mintCall {
            to: s.address(),
            amount: U256::from(10u64).pow(U256::from(15u64)),
        };
        let tx = TransactionRequest::default()
            .with_to(token)
            .with_input(call.abi_encode());
        pending.push(chain.send_transaction(tx).await.context("mint")?);
    }
    for p in pending {
        let r = p.get_receipt().await?;
        ensure!(r.status(), "mint reverted");
    }

    let probe = IMintableErc20::transferCall {
        to: fresh_address(u64::MAX, 0),
        amount: U256::from(1u64),
    };
    let gas_limit = chain
        .estimate_gas(
            TransactionRequest::default()
                .with_from(signers[senders - 1].address())
                .with_to(token)
                .with_input(probe.abi_encode()),
        )
        .await
        .context("estimating a transfer")?;
    let latest = chain
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await?
        .context("no latest block")?;
    let base_fee = u128::from(latest.header.base_fee_per_gas.unwrap_or(1_000_000_000));
    // Far above what the base fee can climb to while the run fills blocks (+12.5% per full block).
    let max_fee = (base_fee * 50).max(100_000_000_000);
    let chain_id = chain.get_chain_id().await?;

    // Sign everything before the clock starts.
    let mut nonces = Vec::with_capacity(senders);
    for s in &signers {
        nonces.push(chain.get_transaction_count(s.address()).await?);
    }
    let run_seed = latest.header.number;
    let mut raw: Vec<Vec<Vec<u8>>> = vec![Vec::new(); senders];
    for k in 0..transfers {
        let s = k % senders;
        let call = IMintableErc20::transferCall {
            to: fresh_address(run_seed, k),
            amount: U256::from(1u64),
        };
        let nonce = nonces[s] + (k / senders) as u64;
        let tx = TransactionRequest::default()
            .with_from(signers[s].address())
            .with_to(token)
            .with_input(call.abi_encode())
            .with_nonce(nonce)
            .with_chain_id(chain_id)
            .with_gas_limit(gas_limit)
            .with_max_fee_per_gas(max_fee)
            .with_max_priority_fee_per_gas(1_000_000_000)
            .with_value(U256::ZERO);
        let envelope = tx
            .build(&EthereumWallet::from(signers[s].clone()))
            .await
            .context("signing a transfer")?;
        raw[s].push(envelope.encoded_2718());
    }

    let plain = ProviderBuilder::new()
        .disable_recommended_fillers()
        .connect_http(url);
    let start_block = plain.get_block_number().await?;
    let started = Instant::now();
    let mut sends = Vec::with_capacity(senders);
    for txs in raw {
        let p = plain.clone();
        sends.push(tokio::spawn(async move {
            for tx in txs {
                let _pending = p
                    .send_raw_transaction(&tx)
                    .await
                    .context("eth_sendRawTransaction")?;
            }
            anyhow::Ok(())
        }));
    }
    let (ended, last_block) = wait_included(&plain, start_block, transfers, Duration::from_secs(600)).await?;
    for s in sends {
        s.await??;
    }
    let elapsed = ended - started;

    let mut gas_used: u64 = 0;
    let mut ok: usize = 0;
    for b in start_block + 1..=last_block {
        let receipts = plain
            .get_block_receipts(b.into())
            .await?
            .context("missing receipts")?;
        for r in receipts {
            ensure!(r.status(), "transfer {} reverted", r.transaction_hash);
            gas_used += r.gas_used;
            ok += 1;
        }
    }
    ensure!(ok == transfers, "{ok} receipts for {transfers} transfers");
    let block_gas_limit = plain
        .get_block_by_number(BlockNumberOrTag::Latest)
        .await?
        .context("no latest block")?
        .header
        .gas_limit;
    drop(anvil);
    Ok(Erc20Run {
        transfers,
        senders,
        elapsed,
        blocks: last_block - start_block,
        gas_per_transfer: gas_used / ok as u64,
        block_gas_limit,
    })
}
