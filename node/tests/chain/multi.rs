//! Two node processes (separate pools) sharing one PostgreSQL database and the same two sending keys: every job is
//! sent exactly once, and both keys carry load.

use std::collections::HashSet;

use anyhow::Result;
use remesa::chain::outbox::job_state;
use remesa::chain::writer::list_txs;
use remesa::chain::{ChainConfig, JobKind, enqueue_deposit, spawn_workers};
use tokio_util::sync::CancellationToken;

use crate::harness::{self, Chain, fast_config, nonce_of};

#[tokio::test]
async fn two_processes_on_one_postgres_never_send_a_job_twice() -> Result<()> {
    let Some(t) = harness::postgres().await? else {
        return Ok(());
    };
    let chain = Chain::start().await?;
    let cfg = ChainConfig {
        batch_size_max: 5,
        in_flight_txs_max: 2,
        ..fast_config()
    };
    let ctx_a = chain.context(&t.db, cfg.clone())?;
    let ctx_b = chain.context(&t.another_pool().await?, cfg)?;
    let keys = vec![chain.relayers[0].clone(), chain.relayers[1].clone()];
    let n = 40;
    let deps = chain.deposits(n, 1_000_000, 3_600).await?;

    let cancel = CancellationToken::new();
    let mut handles = spawn_workers(ctx_a, keys.clone(), cancel.clone())?;
    handles.extend(spawn_workers(ctx_b, keys.clone(), cancel.clone())?);
    // Enqueue while the workers run, in several engine transactions.
    for chunk in deps.chunks(7) {
        let mut tx = t.db.begin().await?;
        for (d, _) in chunk {
            enqueue_deposit(&mut tx, d.clone()).await?;
        }
        tx.commit().await?;
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    until!("all deposits done and indexed", 90, {
        let mut done = true;
        for (d, _) in &deps {
            done &= job_state(&t.db, JobKind::Deposit, d.remittance_id)
                .await?
                .is_some_and(|s| s.status == "done");
        }
        done && t
            .count("SELECT COUNT(*) FROM test_sink_events WHERE kind = 'deposited'")
            .await?
            == n as i64
    });
    cancel.cancel();
    for h in handles {
        h.await?;
    }

    let events = t.sink_events().await?;
    let remittances: HashSet<_> = events
        .iter()
        .filter(|e| e.1 == "deposited")
        .map(|e| e.2.clone())
        .collect();
    assert_eq!(remittances.len(), n, "each remittance deposited once");
    assert_eq!(
        events.iter().filter(|e| e.1 == "skipped").count(),
        0,
        "no job was sent twice (would be skipped)"
    );
    let txs = list_txs(&t.db).await?;
    let items: u64 = txs
        .iter()
        .filter(|x| x.status == "confirmed")
        .map(|x| x.job_count)
        .sum();
    assert_eq!(items, n as u64, "each job in exactly one mined transaction");
    let mut nonces = 0;
    for k in &keys {
        let sent = nonce_of(&chain.provider, k.address()).await?;
        let stored = txs.iter().filter(|x| x.sender == k.address()).count() as u64;
        assert_eq!(
            sent,
            stored,
            "every transaction of {} is one the outbox stored",
            k.address()
        );
        nonces += sent;
    }
    let per_key: Vec<usize> = keys
        .iter()
        .map(|k| txs.iter().filter(|x| x.sender == k.address()).count())
        .collect();
    eprintln!("postgres, 2 processes x 2 keys: {n} deposits in {nonces} transactions, per key {per_key:?}");
    assert!(
        per_key.iter().all(|c| *c > 0),
        "both keys carried load: {per_key:?}"
    );
    let leases = t.count("SELECT COUNT(*) FROM chain_leases").await?;
    assert_eq!(leases, 0, "leases given back on shutdown");
    Ok(())
}
