use std::str::FromStr;

use alloy::primitives::{Address, B256, U256};
use remesa::chain::{ChainEventSink, CustodialTransfer, Deposited, EventMeta, Refunded, Released};
use remesa::domain::ClaimSecret;
use remesa::domain::PayoutMethod;
use remesa::engine::{
    ChainInfo, ClaimKey, Custody, Engine, EngineConfig, NewPartner, NewUser, QuoteRequest, RateInput,
    TokenDomain, User,
};
use remesa_testkit::{FromTestDb, TestDb, pid, rid};
use secrecy::SecretString;

pub const MNEMONIC: &str = "test test test test test test test test test test test junk";
pub const PARTNER_KEY_B64: &str = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

pub struct TestEnv {
    pub db: TestDb,
    pub engine: Engine,
    #[allow(dead_code)]
    pub escrow: Address,
    block: std::sync::atomic::AtomicU64,
}

pub fn chain_info() -> ChainInfo {
    let token = Address::repeat_byte(0x70);
    ChainInfo {
        chain_id: 31337,
        escrow: Address::repeat_byte(0xee),
        token,
        token_decimals: 6,
        domain: TokenDomain {
            name: "Test Dollar".into(),
            version: "1".into(),
            chain_id: 31337,
            token,
        },
        lock_min_s: 3600,
    }
}

impl TestEnv {
    pub fn with_config(db: TestDb, cfg: EngineConfig) -> TestEnv {
        TestEnv::with(db, cfg)
    }

    fn with(db: TestDb, cfg: EngineConfig) -> TestEnv {
        let custody = Custody::from_mnemonic(SecretString::from(MNEMONIC)).expect("custody");
        let engine = Engine::new(db.db.clone(), cfg, Some(chain_info()), Some(custody), 6);
        TestEnv {
            db,
            engine,
            escrow: chain_info().escrow,
            block: std::sync::atomic::AtomicU64::new(100),
        }
    }

    pub async fn sqlite_with(cfg: EngineConfig) -> TestEnv {
        TestEnv::with(TestDb::sqlite().await.expect("sqlite"), cfg)
    }
}

impl FromTestDb for TestEnv {
    async fn from_test_db(db: TestDb) -> Self {
        TestEnv::with(db, EngineConfig::default())
    }
}

impl TestEnv {
    /// The position the next [`TestEnv::meta`] call will hand out (for reorg bookkeeping of release/refund).
    pub fn meta_peek(&self) -> EventMeta {
        let n = self.block.load(std::sync::atomic::Ordering::SeqCst);
        let hash = B256::from(U256::from(n).to_be_bytes::<32>());
        EventMeta {
            id: format!("{hash:#x}:0"),
            block_number: n,
            block_hash: hash,
            tx_hash: B256::repeat_byte(0xab),
            log_index: 0,
        }
    }

    /// A fresh event position (distinct block per call).
    pub fn meta(&self) -> EventMeta {
        let n = self.block.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let hash = B256::from(U256::from(n).to_be_bytes::<32>());
        EventMeta {
            id: format!("{hash:#x}:0"),
            block_number: n,
            block_hash: hash,
            tx_hash: B256::repeat_byte(0xab),
            log_index: 0,
        }
    }

    pub async fn partner(&self, id: u64, rate: &str, fee_fixed: &str, fee_bps: u32) {
        self.engine
            .add_partner(NewPartner {
                id,
                name: format!("Partner {id}"),
                countries: vec!["GT".into()],
                currencies: vec!["GTQ".into()],
                payout_methods: vec![PayoutMethod::CashPickup, PayoutMethod::BankDeposit],
                public_key: PARTNER_KEY_B64.into(),
                webhook_url: None,
                settlement_address: format!("{:#x}", Address::repeat_byte(u8::try_from(id).unwrap_or(1))),
                signer_address: None,
            })
            .await
            .expect("partner");
        self.engine
            .set_rates(
                pid(id),
                vec![RateInput {
                    country: "GT".into(),
                    currency: "GTQ".into(),
                    payout_method: PayoutMethod::CashPickup,
                    rate: rate.into(),
                    fee_fixed: fee_fixed.into(),
                    fee_bps,
                    send_min: "1".into(),
                    send_max: "2500".into(),
                    valid_for_s: 3600,
                }],
            )
            .await
            .expect("rates");
    }

    pub async fn user(&self, external_id: &str) -> User {
        self.engine
            .register_user(NewUser {
                channel: "whatsapp".into(),
                external_id: external_id.into(),
                phone: Some(remesa_testkit::phone("+14155552671")),
                ..NewUser::default()
            })
            .await
            .expect("user")
            .0
    }

    /// Books a mint to `address` as the indexer does. On SQLite the indexed transaction reads before it writes, so
    /// it cannot start while another connection still holds the write lock (a failed engine transaction is rolled
    /// back when its connection is next used): like the indexer, it tries again.
    pub async fn fund(&self, address: &str, base_units: u64) {
        let transfer = CustodialTransfer {
            meta: self.meta(),
            token: chain_info().token,
            from: Address::ZERO,
            to: Address::from_str(address).expect("addr"),
            amount_base_units: U256::from(base_units),
            from_escrow: false,
        };
        for attempt in 1..=20 {
            let mut tx = self.db.db.begin().await.expect("tx");
            match self
                .engine
                .on_token_transfer_to_custodial(&mut tx, &transfer)
                .await
            {
                Ok(()) => {
                    tx.commit().await.expect("commit");
                    return;
                }
                Err(e) if attempt < 20 && format!("{e:?}").contains("database is locked") => {
                    drop(tx);
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(e) => panic!("fund: {e:?}"),
            }
        }
    }

    /// Quotes `amount` USD to Guatemala (cash pickup) and sends it from `user_id` to +502 5555 0101, `recipient`.
    #[allow(dead_code)]
    pub async fn send_cash(
        &self,
        user_id: &str,
        amount: &str,
        recipient: &str,
        key: &str,
    ) -> Result<remesa::engine::Remittance, remesa::engine::EngineError> {
        let q = self
            .engine
            .quote(TestEnv::quote_req(amount))
            .await
            .expect("quote");
        self.engine
            .create_remittance(
                remesa::engine::CreateRemittance {
                    quote_id: q.id,
                    sender: remesa::engine::SenderRef::User {
                        user_id: user_id.to_owned(),
                    },
                    recipient: remesa::engine::Recipient {
                        phone: remesa_testkit::phone("+50255550101"),
                        name: recipient.into(),
                        account: None,
                    },
                },
                &remesa::domain::IdempotencyKey::parse(key).expect("key"),
            )
            .await
            .map(|(r, _)| r)
    }

    pub fn quote_req(amount: &str) -> QuoteRequest {
        QuoteRequest {
            send_amount: amount.into(),
            country: "GT".into(),
            currency: Some("GTQ".into()),
            payout_method: PayoutMethod::CashPickup,
            ttl_s: None,
            recipient_phone: None,
        }
    }

    /// The escrow's deposit of remittance `id` as the indexer delivers it (deposited alone: a batch of one).
    pub async fn deposit(&self, id: &str, sender: &str, amount: u64) -> EventMeta {
        let meta = self.meta();
        let mut tx = self.db.db.begin().await.expect("tx");
        self.engine
            .on_deposited(
                &mut tx,
                &Deposited {
                    meta: meta.clone(),
                    remittance_id: B256::from_str(id).expect("id"),
                    sender: Address::from_str(sender).expect("sender"),
                    amount_base_units: U256::from(amount),
                    batch_root: B256::from_str(id).expect("id"),
                    leaf_index: 0,
                },
            )
            .await
            .expect("deposited");
        tx.commit().await.expect("commit");
        meta
    }

    /// The claim secret (salt + pickup code) of remittance `id`, as the node derives it from its keystore's claim
    /// key: what a release on chain reveals.
    pub async fn claim_secret(&self, id: &str) -> ClaimSecret {
        let r = self
            .engine
            .remittance(&rid(id))
            .await
            .expect("load")
            .expect("remittance");
        let custody = Custody::from_mnemonic(SecretString::from(MNEMONIC)).expect("custody");
        let secret = ClaimKey::from_custody(&custody)
            .expect("claim key")
            .secret(&r.quote_id);
        assert_eq!(format!("{:#x}", secret.claim_hash()), r.claim_hash);
        secret
    }

    pub async fn release(&self, id: &str, amount: u64, partner_id: u64) {
        let mut tx = self.db.db.begin().await.expect("tx");
        self.engine
            .on_released(
                &mut tx,
                &Released {
                    meta: self.meta(),
                    remittance_id: B256::from_str(id).expect("id"),
                    partner_id,
                    amount_base_units: U256::from(amount),
                    batch_root: B256::from_str(id).expect("id"),
                    leaf_index: 0,
                },
            )
            .await
            .expect("released");
        tx.commit().await.expect("commit");
    }

    pub async fn refund(&self, id: &str, sender: &str, amount: u64) {
        let mut tx = self.db.db.begin().await.expect("tx");
        self.engine
            .on_refunded(
                &mut tx,
                &Refunded {
                    meta: self.meta(),
                    remittance_id: B256::from_str(id).expect("id"),
                    sender: Address::from_str(sender).expect("sender"),
                    amount_base_units: U256::from(amount),
                },
            )
            .await
            .expect("refunded");
        tx.commit().await.expect("commit");
    }

    pub async fn states(&self, id: &str) -> Vec<String> {
        self.engine
            .history(&rid(id))
            .await
            .expect("history")
            .iter()
            .map(|e| e.to.to_string())
            .collect()
    }

    pub async fn job_count(&self, kind: &str, id: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM chain_jobs WHERE kind = $1 AND remittance_id = $2",
        )
        .bind(kind)
        .bind(id)
        .fetch_one(&self.db.db.pool)
        .await
        .expect("count")
    }

    pub async fn ledger_ok(&self) -> i64 {
        remesa::engine::ledger::check_balanced(&self.db.db.pool)
            .await
            .expect("balanced");
        remesa::engine::ledger::balance(&self.db.db.pool, remesa::engine::ledger::ESCROW)
            .await
            .expect("escrow")
    }
}
