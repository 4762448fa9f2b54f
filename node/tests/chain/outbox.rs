//! The outbox against a real anvil and the real contracts: batching, crash recovery, re-pricing.

use std::time::Duration;

use alloy::primitives::{B256, U256};
use alloy::providers::Provider;
use alloy::providers::ext::AnvilApi;
use anyhow::{Context, Result};
use remesa::chain::indexer::Indexer;
use remesa::chain::outbox::{self, job_state};
use remesa::chain::writer::{Writer, list_txs};
use remesa::chain::{ChainConfig, JobKind, enqueue_deposit, enqueue_release};
use sqlx::Row;

use crate::harness::{self, Chain, RecordingSink, TestDb, fast_config, nonce_of, release_of};

async fn all_done(t: &TestDb, kind: JobKind, ids: &[B256]) -> Result<bool> {
    for id in ids {
        match job_state(&t.db, kind, *id).await? {
            Some(s) if s.status == "done" => {}
            _ => return Ok(false),
        }
    }
    Ok(true)
}

/// Ticks the writer and the indexer until `kind` jobs for `ids` are done and the indexer reached the head.
async fn drive(
    t: &TestDb,
    chain: &Chain,
    w: &mut Writer<RecordingSink>,
    idx: &mut Indexer<RecordingSink>,
    kind: JobKind,
    ids: &[B256],
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        w.tick().await?;
        let tick = idx.tick().await?;
        let head = chain.provider.get_block_number().await?;
        if all_done(t, kind, ids).await? && tick.cursor == Some(head) {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{kind} jobs not done in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn gas_of(t: &TestDb, kind: JobKind) -> Result<(u64, u64, Vec<u64>)> {
    let txs: Vec<_> = list_txs(&t.db)
        .await?
        .into_iter()
        .filter(|x| x.kind == kind)
        .collect();
    let gas: u64 = txs.iter().map(|x| x.gas_used.unwrap_or(0)).sum();
    let jobs: u64 = txs.iter().map(|x| x.job_count).sum();
    Ok((gas, jobs, txs.iter().map(|x| x.job_count).collect()))
}

/// N deposits become ceil(N / batch size) transactions; one bad authorization is skipped, not fatal; then N
/// releases likewise, with one settlement transfer per batch.
#[tokio::test]
async fn n_jobs_make_ceil_n_over_size_transactions() -> Result<()> {
    for t in harness::all_dbs().await? {
        let chain = Chain::start().await?;
        let ctx = chain.context(
            &t.db,
            ChainConfig {
                batch_size_max: 4,
                ..fast_config()
            },
        )?;
        let amount = 2_500_000u64;
        let mut deps = chain.deposits(10, amount, 3_600).await?;
        // An eleventh one whose signature is wrong: skipped by the batch with AuthorizationFailed.
        let mut bad = chain.deposits(1, amount, 3_600).await?.remove(0);
        bad.0.authorization.s = B256::repeat_byte(0x01);
        let mut tx = t.db.begin().await?;
        for (d, _) in &deps {
            enqueue_deposit(&mut tx, d.clone()).await?;
        }
        enqueue_deposit(&mut tx, bad.0.clone()).await?;
        tx.commit().await?;

        let mut w = Writer::new(&ctx, chain.relayers[0].clone());
        let mut idx = Indexer::new(&ctx);
        let mut ids: Vec<B256> = deps.iter().map(|(d, _)| d.remittance_id).collect();
        ids.push(bad.0.remittance_id);
        drive(&t, &chain, &mut w, &mut idx, JobKind::Deposit, &ids).await?;

        let (gas, jobs, sizes) = gas_of(&t, JobKind::Deposit).await?;
        assert_eq!(sizes, vec![4, 4, 3], "{}: 11 deposits in batches of 4", t.label);
        assert_eq!(jobs, 11);
        for (d, _) in &deps {
            assert_eq!(chain.status_of(d.remittance_id).await?, 1, "locked");
        }
        assert_eq!(
            chain.status_of(bad.0.remittance_id).await?,
            0,
            "bad one not locked"
        );
        assert_eq!(chain.balance(chain.escrow).await?, U256::from(amount * 10));
        let events = t.sink_events().await?;
        assert_eq!(events.iter().filter(|e| e.1 == "deposited").count(), 10);
        let skipped: Vec<_> = sqlx::query("SELECT detail FROM test_sink_events WHERE kind = 'skipped'")
            .fetch_all(&t.db.pool)
            .await?
            .into_iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<_, _>>()?;
        assert_eq!(
            skipped,
            vec!["AuthorizationFailed:Some(Deposit)".to_owned()],
            "{}",
            t.label
        );
        eprintln!(
            "{}: deposits: {jobs} jobs in {:?} txs, {} gas per deposit (11 items incl. 1 skipped)",
            t.label,
            sizes,
            gas / jobs
        );

        // Releases, batched the same way; one Settled per batch (all to one partner).
        deps.truncate(10);
        let mut tx = t.db.begin().await?;
        for (d, p) in &deps {
            enqueue_release(&mut tx, release_of(d, *p)).await?;
        }
        tx.commit().await?;
        let ids: Vec<B256> = deps.iter().map(|(d, _)| d.remittance_id).collect();
        drive(&t, &chain, &mut w, &mut idx, JobKind::Release, &ids).await?;
        let (gas, jobs, sizes) = gas_of(&t, JobKind::Release).await?;
        assert_eq!(sizes, vec![4, 4, 2], "{}: 10 releases in batches of 4", t.label);
        assert_eq!(chain.balance(chain.settlement).await?, U256::from(amount * 10));
        assert_eq!(chain.balance(chain.escrow).await?, U256::ZERO);
        let events = t.sink_events().await?;
        assert_eq!(events.iter().filter(|e| e.1 == "released").count(), 10);
        assert_eq!(events.iter().filter(|e| e.1 == "settled").count(), 3);
        eprintln!(
            "{}: releases: {jobs} jobs in {:?} txs, {} gas per release",
            t.label,
            sizes,
            gas / jobs
        );
        assert_eq!(
            nonce_of(&chain.provider, chain.relayers[0].address()).await?,
            6,
            "exactly 6 transactions"
        );
    }
    Ok(())
}

/// Gas per item with full batches of 32 (SQLite only: a measurement, printed).
#[tokio::test]
async fn gas_per_item_in_batches_of_32() -> Result<()> {
    let t = harness::sqlite().await?;
    let chain = Chain::start().await?;
    let ctx = chain.context(
        &t.db,
        ChainConfig {
            batch_size_max: 32,
            ..fast_config()
        },
    )?;
    let deps = chain.deposits(32, 1_000_000, 3_600).await?;
    let mut tx = t.db.begin().await?;
    for (d, _) in &deps {
        enqueue_deposit(&mut tx, d.clone()).await?;
    }
    tx.commit().await?;
    let mut w = Writer::new(&ctx, chain.relayers[0].clone());
    let mut idx = Indexer::new(&ctx);
    let ids: Vec<B256> = deps.iter().map(|(d, _)| d.remittance_id).collect();
    drive(&t, &chain, &mut w, &mut idx, JobKind::Deposit, &ids).await?;
    let mut tx = t.db.begin().await?;
    for (d, p) in &deps {
        enqueue_release(&mut tx, release_of(d, *p)).await?;
    }
    tx.commit().await?;
    drive(&t, &chain, &mut w, &mut idx, JobKind::Release, &ids).await?;
    let (dgas, djobs, dsizes) = gas_of(&t, JobKind::Deposit).await?;
    let (rgas, rjobs, rsizes) = gas_of(&t, JobKind::Release).await?;
    assert_eq!(dsizes, vec![32]);
    assert_eq!(rsizes, vec![32]);
    eprintln!(
        "MEASURED batch 32: depositBatch {dgas} gas ({} per deposit); releaseBatch {rgas} gas ({} per release); \
         all-in {} per remittance",
        dgas / djobs,
        rgas / rjobs,
        (dgas + rgas) / djobs
    );
    Ok(())
}

async fn stored_raw(t: &TestDb) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query("SELECT tx_hash, raw_tx FROM chain_tx_attempts ORDER BY created_at_unix_ms")
        .fetch_all(&t.db.pool)
        .await?;
    rows.into_iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// Crash after the transaction was stored but before it was broadcast: the next writer (after the lease expires)
/// broadcasts exactly the stored bytes, once, before anything new.
#[tokio::test]
async fn stored_but_not_broadcast_is_sent_after_restart_exactly_once() -> Result<()> {
    for t in harness::all_dbs().await? {
        let chain = Chain::start().await?;
        let ctx = chain.context(&t.db, fast_config())?;
        let relayer = chain.relayers[0].clone();
        let deps = chain.deposits(3, 1_000_000, 3_600).await?;
        let mut tx = t.db.begin().await?;
        for (d, _) in &deps {
            enqueue_deposit(&mut tx, d.clone()).await?;
        }
        tx.commit().await?;

        let mut w1 = Writer::new(&ctx, relayer.clone());
        assert!(w1.ensure_lease().await?);
        let prepared = w1.prepare_next_batch().await?.context("a batch")?;
        drop(w1); // the process dies here: stored, never broadcast
        assert_eq!(nonce_of(&chain.provider, relayer.address()).await?, 0);
        assert!(
            chain
                .provider
                .get_transaction_by_hash(prepared.tx_hash)
                .await?
                .is_none()
        );

        let mut w2 = Writer::new(&ctx, relayer.clone());
        let first = w2.tick().await?;
        assert!(
            !first.lease_held,
            "{}: the dead writer's lease must expire first",
            t.label
        );
        until!("restarted writer finishes the stored batch", 20, {
            w2.tick().await?;
            job_state(&t.db, JobKind::Deposit, deps[0].0.remittance_id)
                .await?
                .is_some_and(|s| s.status == "done")
        });
        let receipt = chain
            .provider
            .get_transaction_receipt(prepared.tx_hash)
            .await?
            .context("stored hash mined")?;
        assert!(receipt.status());
        for _ in 0..5 {
            w2.tick().await?;
        }
        assert_eq!(
            nonce_of(&chain.provider, relayer.address()).await?,
            1,
            "{}: exactly one transaction",
            t.label
        );
        let txs = list_txs(&t.db).await?;
        assert_eq!(txs.len(), 1);
        assert_eq!((txs[0].status.as_str(), txs[0].attempts), ("confirmed", 1));
        assert_eq!(stored_raw(&t).await?.len(), 1);
        for (d, _) in &deps {
            assert_eq!(chain.status_of(d.remittance_id).await?, 1);
        }
    }
    Ok(())
}

/// Crash right after the broadcast (nothing recorded yet), with the transaction still in the mempool: the next
/// writer recognises it and sends nothing new; once mined, the jobs are done.
#[tokio::test]
async fn broadcast_then_killed_is_not_duplicated() -> Result<()> {
    for t in harness::all_dbs().await? {
        let chain = Chain::start().await?;
        let ctx = chain.context(&t.db, fast_config())?;
        let relayer = chain.relayers[0].clone();
        let deps = chain.deposits(2, 1_000_000, 3_600).await?;
        chain.provider.anvil_set_auto_mine(false).await?;
        let mut tx = t.db.begin().await?;
        for (d, _) in &deps {
            enqueue_deposit(&mut tx, d.clone()).await?;
        }
        tx.commit().await?;

        let mut w1 = Writer::new(&ctx, relayer.clone());
        assert!(w1.ensure_lease().await?);
        let prepared = w1.prepare_next_batch().await?.context("a batch")?;
        let (_, raw) = stored_raw(&t).await?.remove(0);
        let raw: alloy::primitives::Bytes = raw.parse()?;
        let _pending = chain.provider.send_raw_transaction(&raw).await?; // the broadcast the writer made before dying
        drop(w1);

        let mut w2 = Writer::new(&ctx, relayer.clone());
        until!("lease taken over", 10, { w2.tick().await?.lease_held });
        for _ in 0..5 {
            let r = w2.tick().await?;
            assert_eq!(
                r.sent, 0,
                "{}: nothing new while the stored tx is pending",
                t.label
            );
        }
        assert_eq!(
            chain
                .provider
                .get_transaction_count(relayer.address())
                .pending()
                .await?,
            1
        );
        chain.provider.evm_mine(None).await?;
        until!("mined batch confirmed", 10, {
            w2.tick().await?;
            job_state(&t.db, JobKind::Deposit, deps[1].0.remittance_id)
                .await?
                .is_some_and(|s| s.status == "done")
        });
        assert!(
            chain
                .provider
                .get_transaction_receipt(prepared.tx_hash)
                .await?
                .is_some()
        );
        assert_eq!(
            nonce_of(&chain.provider, relayer.address()).await?,
            1,
            "{}: exactly one transaction",
            t.label
        );
        assert_eq!(list_txs(&t.db).await?.len(), 1);
    }
    Ok(())
}

/// With mining stopped, a transaction is re-priced after `bump_after_ms`: same nonce, fees +20% each time, at most
/// `bumps_max` times; when blocks come back exactly one version is mined.
#[tokio::test]
async fn stuck_transaction_is_repriced_with_the_same_nonce() -> Result<()> {
    let t = harness::sqlite().await?;
    let chain = Chain::start().await?;
    let cfg = ChainConfig {
        bump_after_ms: 200,
        bumps_max: 3,
        bump_percent: 20,
        ..fast_config()
    };
    let ctx = chain.context(&t.db, cfg)?;
    let relayer = chain.relayers[0].clone();
    let deps = chain.deposits(1, 1_000_000, 3_600).await?;
    chain.provider.anvil_set_auto_mine(false).await?;
    let mut tx = t.db.begin().await?;
    enqueue_deposit(&mut tx, deps[0].0.clone()).await?;
    tx.commit().await?;

    let mut w = Writer::new(&ctx, relayer.clone());
    let mut bumped = 0;
    for _ in 0..30 {
        bumped += w.tick().await?.bumped;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(bumped, 3, "bumps_max bounds the re-pricing");
    let fees: Vec<u128> = sqlx::query(
        "SELECT max_fee_per_gas_wei, max_priority_fee_per_gas_wei FROM chain_tx_attempts ORDER BY attempt",
    )
    .fetch_all(&t.db.pool)
    .await?
    .into_iter()
    .map(|r| Ok(r.try_get::<String, _>(0)?.parse::<u128>()?))
    .collect::<Result<_>>()?;
    assert_eq!(fees.len(), 4);
    for pair in fees.windows(2) {
        assert!(
            pair[1] * 100 >= pair[0] * 120,
            "each bump raises the fee cap by at least 20%: {fees:?}"
        );
    }
    eprintln!("MEASURED re-pricing: maxFeePerGas per attempt {fees:?}");
    let txs = list_txs(&t.db).await?;
    assert_eq!((txs.len(), txs[0].nonce, txs[0].bumps), (1, 0, 3));
    assert_eq!(
        chain
            .provider
            .get_transaction_count(relayer.address())
            .pending()
            .await?,
        1,
        "one nonce in use"
    );

    chain.provider.evm_mine(None).await?;
    until!("mined", 10, {
        w.tick().await?;
        job_state(&t.db, JobKind::Deposit, deps[0].0.remittance_id)
            .await?
            .is_some_and(|s| s.status == "done")
    });
    let txs = list_txs(&t.db).await?;
    let hashes = stored_raw(&t).await?;
    let mined = txs[0].mined_tx_hash.context("mined hash")?;
    assert_eq!(
        format!("{mined:#x}"),
        hashes.last().context("attempts")?.0,
        "the last (highest) version was mined"
    );
    assert_eq!(nonce_of(&chain.provider, relayer.address()).await?, 1);
    assert_eq!(chain.status_of(deps[0].0.remittance_id).await?, 1);
    Ok(())
}

/// A fee ceiling stops re-pricing before `bumps_max`.
#[tokio::test]
async fn fee_ceiling_bounds_repricing() -> Result<()> {
    let t = harness::sqlite().await?;
    let chain = Chain::start().await?;
    let deps = chain.deposits(1, 1_000_000, 3_600).await?;
    chain.provider.anvil_set_auto_mine(false).await?;
    let est = chain.provider.estimate_eip1559_fees().await?;
    let ceiling = est.max_fee_per_gas * 13 / 10;
    let cfg = ChainConfig {
        bump_after_ms: 100,
        bumps_max: 5,
        bump_percent: 20,
        max_fee_per_gas_wei_ceiling: ceiling,
        ..fast_config()
    };
    let ctx = chain.context(&t.db, cfg)?;
    let mut tx = t.db.begin().await?;
    enqueue_deposit(&mut tx, deps[0].0.clone()).await?;
    tx.commit().await?;
    let mut w = Writer::new(&ctx, chain.relayers[0].clone());
    for _ in 0..20 {
        w.tick().await?;
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    let fees: Vec<u128> = sqlx::query("SELECT max_fee_per_gas_wei FROM chain_tx_attempts ORDER BY attempt")
        .fetch_all(&t.db.pool)
        .await?
        .into_iter()
        .map(|r| Ok(r.try_get::<String, _>(0)?.parse::<u128>()?))
        .collect::<Result<_>>()?;
    assert!(fees.iter().all(|f| *f <= ceiling), "{fees:?} above {ceiling}");
    assert_eq!(
        fees.len(),
        2,
        "one bump fits under the ceiling, the next does not: {fees:?} (ceiling {ceiling})"
    );
    let _ = outbox::job_counts(&t.db).await?;
    Ok(())
}

/// Ticks the writer and the indexer until `until` holds (at most 60 s).
async fn drive_until<F, Fut>(
    w: &mut Writer<RecordingSink>,
    idx: &mut Indexer<RecordingSink>,
    what: &str,
    mut until: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        w.tick().await?;
        idx.tick().await?;
        if until().await? {
            return Ok(());
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Real USDC refusing items of a batch (issue 11, part 6): while USDC is paused the deposits are skipped and go
/// back to the queue as failed attempts (not failed remittances: the signatures stay valid), and go through once
/// it is unpaused; a blacklisted sender's deposit fails its job at once while the rest of its batch locks; a
/// release to a blacklisted settlement address fails its job and leaves the coins locked.
#[tokio::test]
async fn usdc_pause_and_blacklist_are_charged_to_their_items_only() -> Result<()> {
    use remesa_wallet::usdc::FiatTokenV2_2;
    for t in harness::all_dbs().await? {
        let chain = Chain::start().await?;
        let ctx = chain.context(
            &t.db,
            ChainConfig {
                job_backoff_ms: 100,
                job_backoff_ms_max: 200,
                ..fast_config()
            },
        )?;
        let usdc = FiatTokenV2_2::new(chain.token, chain.wallet_provider()?);
        let amount = 1_000_000u64;
        // Three senders, one deposit each.
        let mut deps = Vec::new();
        for _ in 0..3 {
            deps.push(chain.deposits(1, amount, 3_600).await?.remove(0));
        }
        let state = |i: usize, kind: JobKind| {
            let id = deps[i].0.remittance_id;
            let db = t.db.clone();
            async move { job_state(&db, kind, id).await?.context("job") }
        };
        let mut w = Writer::new(&ctx, chain.relayers[0].clone());
        let mut idx = Indexer::new(&ctx);

        // 1. USDC paused: the deposit is skipped and retried, never failed.
        usdc.pause().send().await?.get_receipt().await?;
        let mut tx = t.db.begin().await?;
        enqueue_deposit(&mut tx, deps[0].0.clone()).await?;
        tx.commit().await?;
        drive_until(&mut w, &mut idx, "a paused deposit retried twice", || async {
            Ok(state(0, JobKind::Deposit).await?.attempts >= 2)
        })
        .await?;
        let s = state(0, JobKind::Deposit).await?;
        assert!(
            s.status != "failed"
                && s.last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("Pausable: paused")),
            "{}: {s:?}",
            t.label
        );
        assert_eq!(
            chain.status_of(deps[0].0.remittance_id).await?,
            0,
            "not locked while paused"
        );

        // 2. Unpaused, and the third sender blacklisted: its item fails at once, the others lock.
        usdc.unpause().send().await?.get_receipt().await?;
        usdc.blacklist(deps[2].0.terms.sender)
            .send()
            .await?
            .get_receipt()
            .await?;
        let mut tx = t.db.begin().await?;
        enqueue_deposit(&mut tx, deps[1].0.clone()).await?;
        enqueue_deposit(&mut tx, deps[2].0.clone()).await?;
        tx.commit().await?;
        drive_until(&mut w, &mut idx, "deposits settled", || async {
            Ok(state(0, JobKind::Deposit).await?.status == "done"
                && state(1, JobKind::Deposit).await?.status == "done"
                && state(2, JobKind::Deposit).await?.status == "failed")
        })
        .await?;
        assert_eq!(
            chain.status_of(deps[0].0.remittance_id).await?,
            1,
            "locked after the pause"
        );
        assert_eq!(chain.status_of(deps[1].0.remittance_id).await?, 1);
        assert_eq!(chain.status_of(deps[2].0.remittance_id).await?, 0);
        let s = state(2, JobKind::Deposit).await?;
        assert!(
            s.attempts == 1 && s.last_error.as_deref().is_some_and(|e| e.contains("blacklisted")),
            "{}: {s:?}",
            t.label
        );
        let failed: Vec<(String, String)> = sqlx::query_as("SELECT job_id, error FROM test_failed_jobs")
            .fetch_all(&t.db.pool)
            .await?;
        assert_eq!(
            failed.len(),
            1,
            "{}: only the blacklisted item failed: {failed:?}",
            t.label
        );
        assert_eq!(failed[0].0, s.job_id);

        // 3. The partner's settlement address blacklisted: the release fails its job, the coins stay locked.
        usdc.blacklist(chain.settlement)
            .send()
            .await?
            .get_receipt()
            .await?;
        let mut tx = t.db.begin().await?;
        enqueue_release(&mut tx, release_of(&deps[0].0, deps[0].1)).await?;
        tx.commit().await?;
        drive_until(&mut w, &mut idx, "the blocked release failed", || async {
            Ok(state(0, JobKind::Release).await?.status == "failed")
        })
        .await?;
        assert_eq!(chain.status_of(deps[0].0.remittance_id).await?, 1, "still locked");
        assert_eq!(chain.balance(chain.escrow).await?, U256::from(2 * amount));
        let s = state(0, JobKind::Release).await?;
        assert!(
            s.last_error
                .as_deref()
                .is_some_and(|e| e.contains("TransferFailed")),
            "{s:?}"
        );

        // 4. The operator sees both failed jobs with their reasons; once the issuer lifts the blacklist, the
        // release is sent again and pays. A failed deposit cannot be sent again (its remittance already failed).
        let failed = outbox::failed_jobs(&t.db, None, 10).await?;
        assert_eq!(failed.len(), 2, "{}: {failed:?}", t.label);
        assert_eq!(
            (failed[0].kind.as_str(), failed[1].kind.as_str()),
            ("release", "deposit")
        );
        assert!(
            failed[0]
                .error
                .as_deref()
                .is_some_and(|e| e.contains("blacklisted"))
        );
        assert_eq!(
            outbox::failed_jobs(&t.db, Some(&failed[0].job_id), 10)
                .await?
                .len(),
            1,
            "paged"
        );
        assert!(
            !outbox::retry_failed_job(&t.db, &failed[1].job_id).await?,
            "a failed deposit stays failed"
        );
        usdc.unBlacklist(chain.settlement)
            .send()
            .await?
            .get_receipt()
            .await?;
        assert!(outbox::retry_failed_job(&t.db, &s.job_id).await?);
        assert!(
            !outbox::retry_failed_job(&t.db, &s.job_id).await?,
            "only a failed job is sent again"
        );
        drive_until(&mut w, &mut idx, "the release sent again", || async {
            Ok(state(0, JobKind::Release).await?.status == "done")
        })
        .await?;
        assert_eq!(chain.status_of(deps[0].0.remittance_id).await?, 2, "released");
        assert_eq!(chain.balance(chain.settlement).await?, U256::from(amount));
    }
    Ok(())
}

/// The guardian pauses the escrow: deposit batches would revert as a whole, so the writer charges no attempt (the
/// jobs are fine) and tries again later; once unpaused, they lock.
#[tokio::test]
async fn a_paused_escrow_makes_deposits_wait_without_charging_them() -> Result<()> {
    use remesa::chain::abi::RemittanceEscrow;
    let t = harness::all_dbs().await?.remove(0);
    let chain = Chain::start().await?;
    let ctx = chain.context(
        &t.db,
        ChainConfig {
            job_backoff_ms: 100,
            job_backoff_ms_max: 300,
            ..fast_config()
        },
    )?;
    // The deposit first: the harness mints with its own provider of the deployer's key (and nonces).
    let (dep, _) = chain.deposits(1, 1_000_000, 3_600).await?.remove(0);
    let escrow = RemittanceEscrow::new(chain.escrow, chain.wallet_provider()?);
    escrow.pause().send().await?.get_receipt().await?;
    let mut tx = t.db.begin().await?;
    enqueue_deposit(&mut tx, dep.clone()).await?;
    tx.commit().await?;
    let mut w = Writer::new(&ctx, chain.relayers[0].clone());
    let mut idx = Indexer::new(&ctx);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut waits = 0;
    while waits < 3 {
        let before = job_state(&t.db, JobKind::Deposit, dep.remittance_id)
            .await?
            .context("job")?;
        // The tick reports the paused escrow as an error; the job is put back, uncharged.
        let _ = w.tick().await;
        let s = job_state(&t.db, JobKind::Deposit, dep.remittance_id)
            .await?
            .context("job")?;
        assert_eq!(s.attempts, 0, "{}: {s:?}", t.label);
        assert_ne!(s.status, "failed");
        if s.last_error.as_deref().is_some_and(|e| e.contains("paused")) && before.status == "pending" {
            waits += 1;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the paused escrow was never noticed"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(chain.status_of(dep.remittance_id).await?, 0);
    escrow.unpause().send().await?.get_receipt().await?;
    drive_until(
        &mut w,
        &mut idx,
        "the deposit locked after the unpause",
        || async {
            Ok(job_state(&t.db, JobKind::Deposit, dep.remittance_id)
                .await?
                .context("job")?
                .status
                == "done")
        },
    )
    .await?;
    assert_eq!(chain.status_of(dep.remittance_id).await?, 1);
    Ok(())
}
