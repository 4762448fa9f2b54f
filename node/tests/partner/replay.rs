//! The shared replay cache: one process or several, a signature is accepted once.

use remesa::partner::store::{ReplayOutcome, now_ms};

use crate::support::TestDb;
use remesa_testkit::both_dbs;

async fn replay_is_refused_and_expired_rows_are_pruned(t: TestDb) {
    let db = &t.db;
    let exp = now_ms() + 60_000;
    assert_eq!(
        db.record_signature("p1", b"sig-a", exp, 100).await.unwrap(),
        ReplayOutcome::Fresh
    );
    assert_eq!(
        db.record_signature("p1", b"sig-a", exp, 100).await.unwrap(),
        ReplayOutcome::Replayed
    );
    // Same signature bytes under another keyid are another entry.
    assert_eq!(
        db.record_signature("p2", b"sig-a", exp, 100).await.unwrap(),
        ReplayOutcome::Fresh
    );
    // A second handle on the same database (another process) sees the same cache.
    let other =
        remesa::partner::store::PartnerDb::new(remesa::store::Db::detect(db.pool.clone()).await.unwrap());
    assert_eq!(
        other.record_signature("p1", b"sig-a", exp, 100).await.unwrap(),
        ReplayOutcome::Replayed
    );

    // Concurrent identical requests: exactly one wins.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move { db.record_signature("p1", b"sig-race", exp, 100).await.unwrap() })
        })
        .collect();
    let mut fresh = 0;
    for t in tasks {
        if t.await.unwrap() == ReplayOutcome::Fresh {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1);

    // A burst of distinct signatures: every one fresh, recorded in shared transactions (group commit), each
    // answered only after its transaction committed (a second handle sees them all).
    let before = db.replay_commits();
    let sigs: Vec<Vec<u8>> = (0..100u32)
        .map(|i| format!("sig-burst-{i}").into_bytes())
        .collect();
    let burst =
        futures::future::join_all(sigs.iter().map(|sig| db.record_signature("p4", sig, exp, 1_000))).await;
    assert!(
        burst.iter().all(|o| matches!(o, Ok(ReplayOutcome::Fresh))),
        "{burst:?}"
    );
    let commits = db.replay_commits() - before;
    assert!(
        (1..=10).contains(&commits),
        "100 signatures took {commits} transactions"
    );
    for i in 0..100u32 {
        assert_eq!(
            other
                .record_signature("p4", format!("sig-burst-{i}").as_bytes(), exp, 1_000)
                .await
                .unwrap(),
            ReplayOutcome::Replayed
        );
    }

    // A burst bigger than one multi-row insert, with one signature sent twice and expired leftovers among new
    // ones: each signature is fresh exactly once, the leftovers included.
    let past = now_ms() - 1;
    for i in 0..5u32 {
        assert_eq!(
            db.record_signature("p5", format!("sig-mixed-{i}").as_bytes(), past, 10_000)
                .await
                .unwrap(),
            ReplayOutcome::Fresh
        );
    }
    let mut sigs: Vec<Vec<u8>> = (0..300u32)
        .map(|i| format!("sig-mixed-{i}").into_bytes())
        .collect();
    sigs.push(b"sig-mixed-7".to_vec());
    let burst =
        futures::future::join_all(sigs.iter().map(|sig| db.record_signature("p5", sig, exp, 10_000))).await;
    let fresh = burst
        .iter()
        .filter(|o| matches!(o, Ok(ReplayOutcome::Fresh)))
        .count();
    let replayed = burst
        .iter()
        .filter(|o| matches!(o, Ok(ReplayOutcome::Replayed)))
        .count();
    assert_eq!((fresh, replayed), (300, 1), "{burst:?}");

    // An expired leftover is not a replay (its signature would be refused as too old anyway).
    let past = now_ms() - 1;
    assert_eq!(
        db.record_signature("p1", b"sig-old", past, 100).await.unwrap(),
        ReplayOutcome::Fresh
    );
    assert_eq!(
        db.record_signature("p1", b"sig-old", exp, 100).await.unwrap(),
        ReplayOutcome::Fresh
    );

    // Bounded: when full of unexpired entries, new requests are refused (fail closed), replays still refused.
    db.prune_replay(now_ms(), 3).await.unwrap();
    assert_eq!(
        db.record_signature("p3", b"sig-new", exp, 3).await.unwrap(),
        ReplayOutcome::CacheFull
    );
    assert_eq!(
        db.record_signature("p1", b"sig-a", exp, 3).await.unwrap(),
        ReplayOutcome::Replayed
    );
    db.prune_replay(now_ms() + 120_000, 3).await.unwrap();
    assert_eq!(
        db.record_signature("p3", b"sig-newer", exp + 200_000, 3)
            .await
            .unwrap(),
        ReplayOutcome::Fresh
    );
}

#[tokio::test]
async fn replay_cache() {
    both_dbs!(replay_is_refused_and_expired_rows_are_pruned);
}
