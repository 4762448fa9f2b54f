//! Test harness for the chain workers: real SQLite files / PostgreSQL schemas, a real anvil, the real contracts from
//! the committed artifacts, and a sink that records what the engine would see in the same database transaction.

#![allow(dead_code)]

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, Result};
use remesa::chain::{
    ChainEventSink, CustodialTransfer, DbTx, Deposited, FailedJob, RefundJob, Refunded, Released, RolledBack,
    Settled, SinkError, Skipped,
};
use remesa::store::Db;
use remesa_testkit as testing;
use sqlx::Row;
use sqlx::any::AnyPoolOptions;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

// ---- databases ----------------------------------------------------------------------------------------------

/// A fresh migrated database from `remesa_testkit` (a SQLite file in a temporary directory, or a fresh
/// PostgreSQL database) with the harness's own tables added.
#[derive(Debug)]
pub struct TestDb {
    pub db: Db,
    pub url: String,
    pub label: &'static str,
    _db: testing::TestDb,
}

const TEST_TABLES: &str = "
CREATE TABLE test_sink_events (event_id TEXT PRIMARY KEY, kind TEXT NOT NULL, remittance_id TEXT,
    block_number BIGINT NOT NULL, detail TEXT NOT NULL);
CREATE TABLE test_sink_rollbacks (from_block BIGINT NOT NULL, to_block BIGINT NOT NULL, event_ids TEXT NOT NULL);
CREATE TABLE test_custodial (address TEXT PRIMARY KEY);
CREATE TABLE test_locked (remittance_id TEXT PRIMARY KEY, payload TEXT NOT NULL, expiry_unix_s BIGINT NOT NULL,
    refund_enqueued BIGINT NOT NULL DEFAULT 0);
CREATE TABLE test_failed_jobs (job_id TEXT PRIMARY KEY, kind TEXT NOT NULL, error TEXT NOT NULL);
";

async fn with_test_tables(t: testing::TestDb, label: &'static str) -> Result<TestDb> {
    let mut tx = t.db.begin().await?;
    sqlx::raw_sql(TEST_TABLES)
        .execute(&mut *tx)
        .await
        .context("test tables")?;
    tx.commit().await?;
    Ok(TestDb {
        db: t.db.clone(),
        url: t.url.clone(),
        label,
        _db: t,
    })
}

pub async fn sqlite() -> Result<TestDb> {
    with_test_tables(testing::TestDb::sqlite_with(4).await?, "sqlite").await
}

/// A fresh database on the test PostgreSQL server, or `None` (with the reason printed) when it is unreachable.
/// With `REMESA_REQUIRE_POSTGRES=1` an unreachable server is a failure instead.
pub async fn postgres() -> Result<Option<TestDb>> {
    match testing::TestDb::postgres_part(8)
        .await
        .map_err(anyhow::Error::msg)?
    {
        Some(t) => Ok(Some(with_test_tables(t, "postgres").await?)),
        None => Ok(None),
    }
}

/// SQLite always, PostgreSQL when reachable.
pub async fn all_dbs() -> Result<Vec<TestDb>> {
    let mut out = vec![sqlite().await?];
    if let Some(pg) = postgres().await? {
        out.push(pg);
    }
    Ok(out)
}

impl TestDb {
    /// A second pool on the same database (another "process").
    pub async fn another_pool(&self) -> Result<Db> {
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .connect(&self.url)
            .await?;
        Ok(Db::detect(pool).await?)
    }

    pub async fn count(&self, sql: &str) -> Result<i64> {
        Ok(sqlx::query(sql)
            .fetch_one(&self.db.pool)
            .await?
            .try_get::<i64, _>(0)?)
    }

    pub async fn sink_events(&self) -> Result<Vec<(String, String, Option<String>, i64)>> {
        let rows = sqlx::query(
            "SELECT event_id, kind, remittance_id, block_number FROM test_sink_events ORDER BY block_number, event_id",
        )
        .fetch_all(&self.db.pool)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            out.push((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?));
        }
        Ok(out)
    }

    pub async fn add_custodial(&self, a: Address) -> Result<()> {
        let mut tx = self.db.begin().await?;
        sqlx::query("INSERT INTO test_custodial (address) VALUES ($1)")
            .bind(format!("{a:#x}"))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn add_locked(&self, job: &RefundJob) -> Result<()> {
        let mut tx = self.db.begin().await?;
        sqlx::query("INSERT INTO test_locked (remittance_id, payload, expiry_unix_s) VALUES ($1, $2, $3)")
            .bind(format!("{:#x}", job.remittance_id))
            .bind(serde_json::to_string(job)?)
            .bind(i64::try_from(job.terms.expiry_unix_s)?)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

// ---- the sink: what the engine would do, recorded in the same transaction -------------------------------------

#[derive(Debug, Default)]
pub struct RecordingSink;

async fn record(
    tx: &mut DbTx,
    id: &str,
    kind: &str,
    rid: Option<B256>,
    block: u64,
    detail: String,
) -> Result<(), SinkError> {
    sqlx::query(
        "INSERT INTO test_sink_events (event_id, kind, remittance_id, block_number, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(kind)
    .bind(rid.map(|r| format!("{r:#x}")))
    .bind(i64::try_from(block)?)
    .bind(detail)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl ChainEventSink for RecordingSink {
    async fn on_deposited(&self, tx: &mut DbTx, ev: &Deposited) -> Result<(), SinkError> {
        record(
            tx,
            &ev.meta.id,
            "deposited",
            Some(ev.remittance_id),
            ev.meta.block_number,
            ev.amount_base_units.to_string(),
        )
        .await
    }
    async fn on_released(&self, tx: &mut DbTx, ev: &Released) -> Result<(), SinkError> {
        record(
            tx,
            &ev.meta.id,
            "released",
            Some(ev.remittance_id),
            ev.meta.block_number,
            ev.partner_id.to_string(),
        )
        .await
    }
    async fn on_settled(&self, tx: &mut DbTx, ev: &Settled) -> Result<(), SinkError> {
        record(
            tx,
            &ev.meta.id,
            "settled",
            None,
            ev.meta.block_number,
            format!("{}:{}", ev.partner_id, ev.count),
        )
        .await
    }
    async fn on_refunded(&self, tx: &mut DbTx, ev: &Refunded) -> Result<(), SinkError> {
        record(
            tx,
            &ev.meta.id,
            "refunded",
            Some(ev.remittance_id),
            ev.meta.block_number,
            ev.amount_base_units.to_string(),
        )
        .await
    }
    async fn on_skipped(&self, tx: &mut DbTx, ev: &Skipped) -> Result<(), SinkError> {
        record(
            tx,
            &ev.meta.id,
            "skipped",
            Some(ev.remittance_id),
            ev.meta.block_number,
            format!("{:?}:{:?}", ev.reason, ev.batch),
        )
        .await
    }
    async fn on_token_transfer_to_custodial(
        &self,
        tx: &mut DbTx,
        ev: &CustodialTransfer,
    ) -> Result<(), SinkError> {
        record(
            tx,
            &ev.meta.id,
            "custodial_transfer",
            None,
            ev.meta.block_number,
            format!("{:#x}:{}:{}", ev.to, ev.amount_base_units, ev.from_escrow),
        )
        .await
    }
    async fn on_rolled_back(&self, tx: &mut DbTx, rb: &RolledBack) -> Result<(), SinkError> {
        let ids: Vec<&str> = rb.events.iter().map(|e| e.id.as_str()).collect();
        for id in &ids {
            sqlx::query("DELETE FROM test_sink_events WHERE event_id = $1")
                .bind(*id)
                .execute(&mut **tx)
                .await?;
        }
        sqlx::query("INSERT INTO test_sink_rollbacks (from_block, to_block, event_ids) VALUES ($1, $2, $3)")
            .bind(i64::try_from(rb.from_block)?)
            .bind(i64::try_from(rb.to_block)?)
            .bind(ids.join(","))
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
    async fn on_job_failed(&self, tx: &mut DbTx, job: &FailedJob) -> Result<(), SinkError> {
        sqlx::query("INSERT INTO test_failed_jobs (job_id, kind, error) VALUES ($1, $2, $3)")
            .bind(&job.job_id)
            .bind(job.kind.as_str())
            .bind(&job.error)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
    async fn custodial_among(
        &self,
        tx: &mut DbTx,
        candidates: &[Address],
    ) -> Result<HashSet<Address>, SinkError> {
        let mut out = HashSet::new();
        for a in candidates {
            let hit = sqlx::query("SELECT 1 FROM test_custodial WHERE address = $1")
                .bind(format!("{a:#x}"))
                .fetch_optional(&mut **tx)
                .await?;
            if hit.is_some() {
                out.insert(*a);
            }
        }
        Ok(out)
    }
    async fn expired_locked(
        &self,
        tx: &mut DbTx,
        now_unix_s: u64,
        limit: u32,
    ) -> Result<Vec<RefundJob>, SinkError> {
        let rows = sqlx::query(
            "SELECT remittance_id, payload FROM test_locked WHERE expiry_unix_s <= $1 AND refund_enqueued = 0 \
             ORDER BY expiry_unix_s LIMIT $2",
        )
        .bind(i64::try_from(now_unix_s)?)
        .bind(i64::from(limit))
        .fetch_all(&mut **tx)
        .await?;
        let mut out = Vec::new();
        for r in rows {
            let id: String = r.try_get(0)?;
            let payload: String = r.try_get(1)?;
            sqlx::query("UPDATE test_locked SET refund_enqueued = 1 WHERE remittance_id = $1")
                .bind(&id)
                .execute(&mut **tx)
                .await?;
            out.push(serde_json::from_str(&payload)?);
        }
        Ok(out)
    }
}

// ---- helpers ------------------------------------------------------------------------------------------------

pub fn preimage_of(code: &str) -> B256 {
    let mut b = [0u8; 32];
    let n = code.len().min(32);
    b[..n].copy_from_slice(&code.as_bytes()[..n]);
    B256::from(b)
}

pub fn claim_hash(preimage: B256) -> B256 {
    keccak256(preimage.as_slice())
}

pub fn provider(url: &str) -> Result<DynProvider> {
    Ok(ProviderBuilder::new().connect_http(url.parse()?).erased())
}

/// Polls `f` until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut f: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if f().await? {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn random_signer() -> PrivateKeySigner {
    PrivateKeySigner::random()
}

pub fn u(v: u64) -> U256 {
    U256::from(v)
}

pub async fn nonce_of(p: &DynProvider, a: Address) -> Result<u64> {
    Ok(p.get_transaction_count(a).latest().await?)
}

// ---- chain: anvil + the real contracts ----------------------------------------------------------------------

use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::SignerSync;
use alloy::sol_types::{SolCall, SolStruct};
use remesa::chain::abi::RemittanceEscrow;
use remesa::chain::{
    Authorization, ChainConfig, ChainContext, DepositJob, EscrowDeployment, ReleaseJob, Terms,
};
use remesa_wallet::devnet::{LocalDevnet, anvil_dev_signer};
use std::sync::Arc;

alloy::sol! {
    interface ITestToken {
        function mint(address to, uint256 amount) external;
        function balanceOf(address who) external view returns (uint256);
        function transfer(address to, uint256 amount) external returns (bool);
    }
    struct ReceiveWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }
}

pub const PARTNER_ID: u64 = 1;

#[derive(Debug)]
pub struct Chain {
    /// Owns anvil (killed on drop).
    pub devnet: LocalDevnet,
    pub url: String,
    pub provider: DynProvider,
    pub deployer: PrivateKeySigner,
    /// Funded keys for the outbox writers (anvil's accounts 1..).
    pub relayers: Vec<PrivateKeySigner>,
    pub settlement: Address,
    pub token: Address,
    pub escrow: Address,
    pub chain_id: u64,
    pub deploy_block: u64,
}

impl Chain {
    /// A throw-away devnet from the wallet's devnet module (`LocalDevnet`: anvil, automine, the contracts from
    /// the committed artifacts, partner 1 registered with anvil account 9 as its settlement address); the outbox
    /// writers get anvil's accounts 1 to 5.
    pub async fn start() -> Result<Chain> {
        let devnet = LocalDevnet::start(&[]).await.context("start the devnet")?;
        let url = devnet.endpoint();
        let d = devnet.deployment.clone();
        Ok(Chain {
            provider: provider(&url)?,
            url,
            deployer: anvil_dev_signer(0),
            relayers: (1..=5).map(anvil_dev_signer).collect(),
            settlement: anvil_dev_signer(9).address(),
            token: d.token,
            escrow: d.escrow,
            chain_id: d.chain_id,
            deploy_block: d.deploy_block,
            devnet,
        })
    }

    pub fn wallet_provider(&self) -> Result<DynProvider> {
        Ok(ProviderBuilder::new()
            .wallet(EthereumWallet::from(self.deployer.clone()))
            .connect_http(self.url.parse()?)
            .erased())
    }

    /// A transaction from the deployer (owner, minter); waits for its receipt.
    pub async fn send(&self, to: Address, data: Vec<u8>) -> Result<()> {
        let req = TransactionRequest::default().with_to(to).with_input(data);
        let receipt = self
            .wallet_provider()?
            .send_transaction(req)
            .await?
            .get_receipt()
            .await?;
        anyhow::ensure!(receipt.status(), "transaction to {to} reverted");
        Ok(())
    }

    pub async fn mint(&self, to: Address, amount: U256) -> Result<()> {
        self.send(self.token, ITestToken::mintCall { to, amount }.abi_encode())
            .await
    }

    pub async fn balance(&self, who: Address) -> Result<U256> {
        let req = TransactionRequest::default()
            .with_to(self.token)
            .with_input(ITestToken::balanceOfCall { who }.abi_encode());
        let out = self.provider.call(req).await?;
        Ok(ITestToken::balanceOfCall::abi_decode_returns(&out)?)
    }

    /// The escrow's status of `id`, asked with the proof of where its deposit put it (found among the escrow's
    /// `Deposited` events, as anyone can); 0 (None) when no deposit holds it.
    pub async fn status_of(&self, id: B256) -> Result<u8> {
        use alloy::sol_types::SolEvent;
        let filter = alloy::rpc::types::Filter::new()
            .address(self.escrow)
            .event_signature(RemittanceEscrow::Deposited::SIGNATURE_HASH)
            .from_block(0);
        let mut placement = None;
        for log in self.provider.get_logs(&filter).await? {
            let ev = RemittanceEscrow::Deposited::decode_log_data(log.data())?;
            let batch =
                remesa_wallet::batches::DepositedBatch::from_event(ev.root, ev.leaves, &ev.senderAmounts);
            if let Some(p) = batch.placement_of(id) {
                placement = Some(p);
            }
        }
        let Some(p) = placement else { return Ok(0) };
        let call = RemittanceEscrow::statusOfCall {
            id,
            index: p.index_u256(),
            proof: p.proof(),
        };
        let req = TransactionRequest::default()
            .with_to(self.escrow)
            .with_input(call.abi_encode());
        let out = self.provider.call(req).await?;
        Ok(RemittanceEscrow::statusOfCall::abi_decode_returns(&out)?)
    }

    pub async fn now_unix_s(&self) -> Result<u64> {
        let b = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await?
            .context("latest")?;
        Ok(b.header.timestamp)
    }

    pub fn deployment(&self) -> EscrowDeployment {
        EscrowDeployment {
            chain_id: self.chain_id,
            escrow: self.escrow,
            token: self.token,
            start_block: self.deploy_block,
        }
    }

    pub fn context(&self, db: &Db, config: ChainConfig) -> Result<ChainContext<RecordingSink>> {
        Ok(ChainContext {
            db: db.clone(),
            provider: remesa::chain::connect_http(&self.url)?,
            deployment: self.deployment(),
            config,
            sink: Arc::new(RecordingSink),
            holder: None,
        })
    }

    /// A funded sender (random key, tokens minted, no ETH: deposits are gasless) and `n` signed deposits.
    pub async fn deposits(&self, n: usize, amount: u64, expiry_in_s: u64) -> Result<Vec<(DepositJob, B256)>> {
        let sender = random_signer();
        let total = U256::from(amount) * U256::from(n as u64);
        self.mint(sender.address(), total).await?;
        let now = self.now_unix_s().await?;
        // The token's domain as the wallet reads it (USDC: name() and version(), checked against DOMAIN_SEPARATOR()).
        let domain = self.devnet.chain.token_domain(self.token).await?.eip712();
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let code = uuid::Uuid::new_v4().simple().to_string()[..12].to_ascii_uppercase();
            let preimage = preimage_of(&code);
            let terms = Terms {
                sender: sender.address(),
                amount_base_units: U256::from(amount),
                partner_id: PARTNER_ID,
                expiry_unix_s: now + expiry_in_s,
                settlement: anvil_dev_signer(9).address(),
                partner_signer: anvil_dev_signer(9).address(),
                claim_hash: claim_hash(preimage),
            };
            let id = terms.remittance_id(self.escrow);
            let msg = ReceiveWithAuthorization {
                from: sender.address(),
                to: self.escrow,
                value: terms.amount_base_units,
                validAfter: U256::ZERO,
                validBefore: U256::from(now + 86_400),
                nonce: id,
            };
            let hash = msg.eip712_signing_hash(&domain);
            let sig = sender.sign_hash_sync(&hash)?;
            let authorization = Authorization {
                valid_after_unix_s: U256::ZERO,
                valid_before_unix_s: U256::from(now + 86_400),
                v: 27 + u8::from(sig.v()),
                r: B256::from(sig.r()),
                s: B256::from(sig.s()),
            };
            out.push((
                DepositJob {
                    remittance_id: id,
                    terms,
                    authorization,
                },
                preimage,
            ));
        }
        Ok(out)
    }
}

pub fn release_of(job: &DepositJob, preimage: B256) -> ReleaseJob {
    ReleaseJob {
        remittance_id: job.remittance_id,
        terms: job.terms.clone(),
        preimage,
    }
}

/// Config for tests: fast polls, short leases.
pub fn fast_config() -> ChainConfig {
    ChainConfig {
        batch_size_max: 8,
        batch_delay_ms_max: 0,
        writer_poll_ms: 50,
        indexer_poll_ms: 50,
        lease_ms: 1_000,
        confirmations: 0,
        tx_confirmations: 1,
        bump_after_ms: 60_000,
        refund_keeper_interval_ms: 100,
        ..ChainConfig::default()
    }
}
