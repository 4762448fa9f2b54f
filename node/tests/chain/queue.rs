//! The queue and leases without a chain: concurrent claims never overlap, enqueue is idempotent, one lease holder.

use std::collections::HashSet;

use alloy::primitives::{Address, B256, U256};
use anyhow::Result;
use remesa::chain::lease::Lease;
use remesa::chain::outbox;
use remesa::chain::{JobKind, RefundJob, Terms, enqueue_refund};

use crate::harness::{self, TestDb};

fn refund_job(i: u64) -> RefundJob {
    let terms = Terms {
        sender: Address::repeat_byte(0x22),
        amount_base_units: U256::from(1_000_000u64 + i),
        partner_id: 1,
        expiry_unix_s: 1_700_000_000,
        settlement: Address::repeat_byte(0x5e),
        partner_signer: Address::repeat_byte(0x5e),
        claim_hash: B256::repeat_byte(0x33),
    };
    RefundJob {
        remittance_id: terms.remittance_id(Address::repeat_byte(0xee)),
        terms,
    }
}

async fn enqueue_n(t: &TestDb, n: u64) -> Result<()> {
    let mut tx = t.db.begin().await?;
    for i in 0..n {
        enqueue_refund(&mut tx, refund_job(i)).await?;
    }
    tx.commit().await?;
    Ok(())
}

#[tokio::test]
async fn enqueue_is_idempotent_and_rolls_back_with_the_engine_transaction() -> Result<()> {
    for t in harness::all_dbs().await? {
        let job = refund_job(1);
        let mut tx = t.db.begin().await?;
        let first = enqueue_refund(&mut tx, job.clone()).await?;
        let again = enqueue_refund(&mut tx, job.clone()).await?;
        assert!(first.created && !again.created, "{}", t.label);
        assert_eq!(first.job_id, again.job_id);
        tx.commit().await?;

        // Enqueued in a transaction the engine rolls back: no job.
        let other = refund_job(2);
        let mut tx = t.db.begin().await?;
        enqueue_refund(&mut tx, other.clone()).await?;
        tx.rollback().await?;
        assert!(
            outbox::job_state(&t.db, JobKind::Refund, other.remittance_id)
                .await?
                .is_none(),
            "{}",
            t.label
        );
        let state = outbox::job_state(&t.db, JobKind::Refund, job.remittance_id)
            .await?
            .expect("job");
        assert_eq!(state.status, "pending");
    }
    Ok(())
}

/// Several claimers race for the same queue (on PostgreSQL: separate pools, i.e. separate processes): every job is
/// claimed exactly once.
#[tokio::test]
async fn concurrent_claims_never_overlap() -> Result<()> {
    for t in harness::all_dbs().await? {
        let n = 300u64;
        enqueue_n(&t, n).await?;
        let claimers = if t.db.is_postgres() { 4 } else { 2 };
        let mut tasks = Vec::new();
        for c in 0..claimers {
            let db = t.another_pool().await?;
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let jobs =
                        outbox::claim(&db, JobKind::Refund, &format!("claimer-{c}"), 7, 60_000).await?;
                    if jobs.is_empty() {
                        break;
                    }
                    mine.extend(jobs.into_iter().map(|j| j.id));
                }
                anyhow::Ok(mine)
            }));
        }
        let mut all = Vec::new();
        let mut per_claimer = Vec::new();
        for task in tasks {
            let mine = task.await??;
            per_claimer.push(mine.len());
            all.extend(mine);
        }
        let unique: HashSet<_> = all.iter().collect();
        assert_eq!(all.len(), unique.len(), "{}: a job was claimed twice", t.label);
        assert_eq!(unique.len() as u64, n, "{}: every job claimed", t.label);
        eprintln!("{}: claims per claimer {per_claimer:?}", t.label);
        assert_eq!(
            t.count("SELECT COUNT(*) FROM chain_jobs WHERE status = 'claimed'")
                .await?,
            n as i64
        );
    }
    Ok(())
}

#[tokio::test]
async fn one_lease_holder_and_fenced_takeover() -> Result<()> {
    for t in harness::all_dbs().await? {
        let a = Lease::try_acquire(&t.db, "writer:test", "a", 300)
            .await?
            .expect("a takes the free lease");
        assert!(
            Lease::try_acquire(&t.db, "writer:test", "b", 300)
                .await?
                .is_none(),
            "{}: b must wait",
            t.label
        );
        a.renew(&t.db).await?;
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        // Expired: b takes over with a higher fencing number; a can no longer renew, nor commit fenced writes.
        let b = Lease::try_acquire(&t.db, "writer:test", "b", 10_000)
            .await?
            .expect("b takes the expired lease");
        assert!(b.fencing() > a.fencing());
        assert!(a.renew(&t.db).await.is_err(), "{}: a lost its lease", t.label);
        let mut tx = t.db.begin().await?;
        assert!(a.renew_in(&mut tx).await.is_err());
        tx.rollback().await?;
        b.release(&t.db).await?;
        assert!(
            Lease::try_acquire(&t.db, "writer:test", "c", 300)
                .await?
                .is_some(),
            "{}: released lease is free",
            t.label
        );
    }
    Ok(())
}
