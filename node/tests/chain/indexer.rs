//! The indexer against a real anvil: reorg rollback (anvil_reorg), confirmation depth, custodial transfers,
//! and the refund keeper with anvil time travel.

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use alloy::rpc::types::anvil::{ReorgOptions, TransactionData};
use anyhow::{Context, Result};
use remesa::chain::indexer::{Indexer, cursor, cursor_name};
use remesa::chain::keeper::RefundKeeper;
use remesa::chain::outbox::job_state;
use remesa::chain::writer::{Writer, list_txs};
use remesa::chain::{ChainConfig, JobKind, RefundJob, enqueue_deposit};
use sqlx::Row;

use crate::harness::{self, Chain, fast_config, nonce_of};

async fn indexed_to_head(idx: &mut Indexer<harness::RecordingSink>, chain: &Chain) -> Result<bool> {
    let t = idx.tick().await?;
    Ok(
        t.cursor == Some(chain.provider.get_block_number().await?.saturating_sub(0))
            && t.rolled_back.is_none(),
    )
}

/// Three deposits in three blocks, indexed at depth 0. A reorg replaces the last two blocks, re-including only the
/// second deposit: the indexer rolls both events back (telling the engine which), the outbox re-broadcasts the
/// third (its receipt vanished), and in the end each remittance is applied exactly once.
#[tokio::test]
async fn reorg_rolls_back_removed_events_and_outbox_resends() -> Result<()> {
    for t in harness::all_dbs().await? {
        let chain = Chain::start().await?;
        let cfg = ChainConfig {
            batch_size_max: 1,
            confirmations: 0,
            tx_confirmations: 6,
            ..fast_config()
        };
        let ctx = chain.context(&t.db, cfg)?;
        let deps = chain.deposits(3, 1_000_000, 3_600).await?;
        let mut tx = t.db.begin().await?;
        for (d, _) in &deps {
            enqueue_deposit(&mut tx, d.clone()).await?;
        }
        tx.commit().await?;
        let mut w = Writer::new(&ctx, chain.relayers[0].clone());
        let mut idx = Indexer::new(&ctx);
        until!("three deposits mined", 30, {
            w.tick().await?;
            list_txs(&t.db)
                .await?
                .iter()
                .filter(|x| x.status == "mined")
                .count()
                == 3
        });
        until!("indexed to head", 30, {
            indexed_to_head(&mut idx, &chain).await?
        });
        let before = t.sink_events().await?;
        assert_eq!(
            before.iter().filter(|e| e.1 == "deposited").count(),
            3,
            "{}",
            t.label
        );
        let blocks: Vec<i64> = before.iter().map(|e| e.3).collect();
        let head = chain.provider.get_block_number().await?;
        assert_eq!(blocks[2] as u64, head, "the third deposit is in the head block");

        // The second deposit's signed bytes (nonce 1), re-included in the first replacement block.
        let raw: String = sqlx::query(
            "SELECT a.raw_tx FROM chain_tx_attempts a JOIN chain_txs t ON t.id = a.tx_id WHERE t.nonce = 1",
        )
        .fetch_one(&t.db.pool)
        .await?
        .try_get(0)?;
        let raw: Bytes = raw.parse()?;
        chain
            .provider
            .anvil_reorg(ReorgOptions {
                depth: 2,
                tx_block_pairs: vec![(TransactionData::Raw(raw), 0)],
            })
            .await?;

        let tick = idx.tick().await?;
        let rb = tick.rolled_back.context("the reorg is noticed")?;
        assert_eq!(rb.from_block, blocks[1] as u64, "{}", t.label);
        let removed: Vec<&str> = rb.events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(
            removed,
            vec![before[1].0.as_str(), before[2].0.as_str()],
            "{}",
            t.label
        );
        assert_eq!(
            t.count("SELECT COUNT(*) FROM test_sink_events").await?,
            1,
            "only the first survives"
        );
        assert_eq!(
            chain.status_of(deps[2].0.remittance_id).await?,
            0,
            "third deposit gone from the chain"
        );

        // The outbox notices its third transaction's receipt vanished and sends the same bytes again.
        until!("third deposit back on chain", 30, {
            w.tick().await?;
            chain.status_of(deps[2].0.remittance_id).await? == 1
        });
        chain.provider.anvil_mine(Some(6), None).await?;
        until!("jobs done and indexed", 30, {
            w.tick().await?;
            let done = job_state(&t.db, JobKind::Deposit, deps[2].0.remittance_id)
                .await?
                .is_some_and(|s| s.status == "done");
            done && indexed_to_head(&mut idx, &chain).await?
        });
        let after = t.sink_events().await?;
        let mut ids: Vec<_> = after
            .iter()
            .filter(|e| e.1 == "deposited")
            .filter_map(|e| e.2.clone())
            .collect();
        ids.sort();
        let mut want: Vec<_> = deps
            .iter()
            .map(|(d, _)| format!("{:#x}", d.remittance_id))
            .collect();
        want.sort();
        assert_eq!(
            ids, want,
            "{}: each remittance applied exactly once after the reorg",
            t.label
        );
        assert_eq!(t.count("SELECT COUNT(*) FROM test_sink_rollbacks").await?, 1);
        assert_eq!(
            nonce_of(&chain.provider, chain.relayers[0].address()).await?,
            3,
            "no extra transaction"
        );
        let (n, _) = cursor(&t.db, &cursor_name(chain.chain_id, chain.escrow))
            .await?
            .context("cursor")?;
        assert_eq!(n, chain.provider.get_block_number().await?);
    }
    Ok(())
}

/// A reorg deeper than `tx_confirmations` takes away transactions the writer already finalized: their nonces are at
/// or above the account's on chain again. The writer re-opens them with their jobs and sends their signed bytes
/// again, and a deposit queued after the reorg follows them. (Found by the fault suite's reorg scenario: before, the
/// removed deposits were never sent again and every later transaction of the key waited on their nonces forever.)
#[tokio::test]
async fn reorg_under_final_transactions_sends_them_again() -> Result<()> {
    for t in harness::all_dbs().await? {
        let chain = Chain::start().await?;
        let cfg = ChainConfig {
            batch_size_max: 1,
            confirmations: 0,
            tx_confirmations: 1,
            ..fast_config()
        };
        let ctx = chain.context(&t.db, cfg)?;
        let deps = chain.deposits(4, 1_000_000, 3_600).await?;
        let mut tx = t.db.begin().await?;
        for (d, _) in &deps[..3] {
            enqueue_deposit(&mut tx, d.clone()).await?;
        }
        tx.commit().await?;
        let mut w = Writer::new(&ctx, chain.relayers[0].clone());
        until!("three deposits final", 30, {
            w.tick().await?;
            list_txs(&t.db)
                .await?
                .iter()
                .filter(|x| x.status == "confirmed")
                .count()
                == 3
        });
        let relayer = chain.relayers[0].address();
        chain
            .provider
            .anvil_reorg(ReorgOptions {
                depth: 2,
                tx_block_pairs: vec![],
            })
            .await?;
        assert_eq!(
            nonce_of(&chain.provider, relayer).await?,
            1,
            "{}: two final deposits gone",
            t.label
        );
        assert_eq!(chain.status_of(deps[2].0.remittance_id).await?, 0);

        let mut tx = t.db.begin().await?;
        enqueue_deposit(&mut tx, deps[3].0.clone()).await?;
        tx.commit().await?;
        until!("all four deposits on chain", 30, {
            w.tick().await?;
            let mut on_chain = 0;
            for (d, _) in &deps {
                on_chain += chain.status_of(d.remittance_id).await?;
            }
            on_chain == 4
        });
        until!("every deposit job done", 30, {
            w.tick().await?;
            let mut done = 0;
            for (d, _) in &deps {
                done += usize::from(
                    job_state(&t.db, JobKind::Deposit, d.remittance_id)
                        .await?
                        .is_some_and(|s| s.status == "done"),
                );
            }
            done == 4
        });
        assert_eq!(
            nonce_of(&chain.provider, relayer).await?,
            4,
            "{}: no extra transaction",
            t.label
        );
    }
    Ok(())
}

/// Events are applied only `confirmations` blocks deep; a reorg shallower than that is never seen.
#[tokio::test]
async fn confirmation_depth_is_respected() -> Result<()> {
    let t = harness::sqlite().await?;
    let chain = Chain::start().await?;
    let ctx = chain.context(
        &t.db,
        ChainConfig {
            confirmations: 3,
            ..fast_config()
        },
    )?;
    let deps = chain.deposits(1, 1_000_000, 3_600).await?;
    let mut tx = t.db.begin().await?;
    enqueue_deposit(&mut tx, deps[0].0.clone()).await?;
    tx.commit().await?;
    let mut w = Writer::new(&ctx, chain.relayers[0].clone());
    let mut idx = Indexer::new(&ctx);
    until!("deposit mined", 30, {
        w.tick().await?;
        chain.status_of(deps[0].0.remittance_id).await? == 1
    });
    let mined_at = chain.provider.get_block_number().await?;
    for extra in 0..3u64 {
        for _ in 0..3 {
            idx.tick().await?;
        }
        assert_eq!(
            t.count("SELECT COUNT(*) FROM test_sink_events").await?,
            0,
            "not applied at depth {extra}"
        );
        chain.provider.anvil_mine(Some(1), None).await?;
    }
    idx.tick().await?;
    assert_eq!(chain.provider.get_block_number().await?, mined_at + 3);
    assert_eq!(
        t.count("SELECT COUNT(*) FROM test_sink_events WHERE kind = 'deposited'")
            .await?,
        1,
        "applied at depth 3"
    );

    // A 2-block reorg at the tip: below the confirmation depth, nothing to roll back.
    chain
        .provider
        .anvil_reorg(ReorgOptions {
            depth: 2,
            tx_block_pairs: vec![],
        })
        .await?;
    chain.provider.anvil_mine(Some(2), None).await?;
    for _ in 0..3 {
        assert!(idx.tick().await?.rolled_back.is_none());
    }
    assert_eq!(t.count("SELECT COUNT(*) FROM test_sink_rollbacks").await?, 0);
    assert_eq!(
        t.count("SELECT COUNT(*) FROM test_sink_events WHERE kind = 'deposited'")
            .await?,
        1
    );
    Ok(())
}

/// Token transfers into custodial addresses are reported; others are not.
#[tokio::test]
async fn transfers_to_custodial_addresses_are_noticed() -> Result<()> {
    let t = harness::sqlite().await?;
    let chain = Chain::start().await?;
    let ctx = chain.context(&t.db, fast_config())?;
    let custodial = Address::repeat_byte(0xc1);
    let stranger = Address::repeat_byte(0xc2);
    t.add_custodial(custodial).await?;
    let mut idx = Indexer::new(&ctx);
    chain.mint(custodial, U256::from(7_000_000u64)).await?;
    chain.mint(stranger, U256::from(1u64)).await?;
    until!("indexed", 10, { indexed_to_head(&mut idx, &chain).await? });
    let rows = sqlx::query("SELECT detail FROM test_sink_events WHERE kind = 'custodial_transfer'")
        .fetch_all(&t.db.pool)
        .await?;
    let details: Vec<String> = rows.into_iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
    assert_eq!(details, vec![format!("{custodial:#x}:7000000:false")]);
    Ok(())
}

/// The keeper refunds a locked remittance once chain time passes its expiry (anvil time travel), exactly once.
#[tokio::test]
async fn refund_keeper_refunds_expired_remittances() -> Result<()> {
    for t in harness::all_dbs().await? {
        let chain = Chain::start().await?;
        let ctx = chain.context(&t.db, fast_config())?;
        let deps = chain.deposits(2, 3_000_000, 600).await?;
        let sender = deps[0].0.terms.sender;
        let mut tx = t.db.begin().await?;
        for (d, _) in &deps {
            enqueue_deposit(&mut tx, d.clone()).await?;
        }
        tx.commit().await?;
        let mut w = Writer::new(&ctx, chain.relayers[0].clone());
        let mut idx = Indexer::new(&ctx);
        let mut keeper = RefundKeeper::new(&ctx);
        until!("locked", 30, {
            w.tick().await?;
            chain.status_of(deps[1].0.remittance_id).await? == 1
        });
        assert_eq!(chain.balance(sender).await?, U256::ZERO);
        // The node refunds only what its indexer saw locked (the refund carries the deposit's proof).
        until!("deposits indexed", 30, {
            indexed_to_head(&mut idx, &chain).await?
        });
        for (d, _) in &deps {
            t.add_locked(&RefundJob {
                remittance_id: d.remittance_id,
                terms: d.terms.clone(),
            })
            .await?;
        }
        assert_eq!(keeper.tick().await?, 0, "{}: not expired yet", t.label);
        chain.provider.anvil_increase_time(601).await?;
        chain.provider.evm_mine(None).await?;
        assert_eq!(keeper.tick().await?, 2, "{}: both expired", t.label);
        assert_eq!(keeper.tick().await?, 0, "{}: nothing twice", t.label);
        let ids: Vec<B256> = deps.iter().map(|(d, _)| d.remittance_id).collect();
        until!("refunded and indexed", 30, {
            w.tick().await?;
            let mut done = true;
            for id in &ids {
                done &= job_state(&t.db, JobKind::Refund, *id)
                    .await?
                    .is_some_and(|s| s.status == "done");
            }
            done && indexed_to_head(&mut idx, &chain).await?
        });
        assert_eq!(chain.balance(sender).await?, U256::from(6_000_000u64));
        assert_eq!(
            t.count("SELECT COUNT(*) FROM test_sink_events WHERE kind = 'refunded'")
                .await?,
            2,
            "{}",
            t.label
        );
        let refund_txs = list_txs(&t.db)
            .await?
            .into_iter()
            .filter(|x| x.kind == JobKind::Refund)
            .count();
        assert_eq!(refund_txs, 1, "both refunds in one batch");
    }
    Ok(())
}
