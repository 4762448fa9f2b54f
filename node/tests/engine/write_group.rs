//! SQLite's write connection and group commit (`store::write_group`): the pool refuses writes, concurrent
//! transactions share commits, and each transaction's rollback (or drop) undoes only its own work.

use remesa::store::Db;
use remesa_testkit::TestDb;

async fn table(db: &Db) -> anyhow::Result<()> {
    let mut tx = db.begin().await?;
    sqlx::query("CREATE TABLE wg_test (id BIGINT PRIMARY KEY, who TEXT NOT NULL)")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

async fn ids(db: &Db) -> anyhow::Result<Vec<i64>> {
    Ok(sqlx::query_scalar("SELECT id FROM wg_test ORDER BY id")
        .fetch_all(&db.pool)
        .await?)
}

async fn insert(db: &Db, id: i64) -> anyhow::Result<()> {
    let mut tx = db.begin().await?;
    sqlx::query("INSERT INTO wg_test (id, who) VALUES ($1, 'x')")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Inserts row `id` inside the open transaction `tx`.
async fn insert_in(tx: &mut remesa::store::Tx, id: i64, who: &str) -> anyhow::Result<()> {
    sqlx::query("INSERT INTO wg_test (id, who) VALUES ($1, $2)")
        .bind(id)
        .bind(who)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A write through the pool is refused: every SQLite write goes through `Db::begin`.
#[tokio::test]
async fn sqlite_pool_connections_refuse_writes() -> anyhow::Result<()> {
    let t = TestDb::sqlite().await?;
    table(&t.db).await?;
    let err = sqlx::query("INSERT INTO wg_test (id, who) VALUES (1, 'pool')")
        .execute(&t.db.pool)
        .await
        .expect_err("the pool is query_only");
    assert!(err.to_string().contains("readonly"), "{err}");
    assert!(ids(&t.db).await?.is_empty());
    Ok(())
}

/// Many concurrent transactions: every one is stored once its commit returns, and they share fsyncs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_concurrent_transactions_commit_in_groups() -> anyhow::Result<()> {
    let t = TestDb::sqlite().await?;
    table(&t.db).await?;
    let (groups_before, members_before) = t.db.group_commits().expect("SQLite has a writer");
    let mut tasks = Vec::new();
    for id in 0..200_i64 {
        let db = t.db.clone();
        tasks.push(tokio::spawn(async move {
            insert(&db, id).await?;
            // Once commit returned, a reader on another connection sees it.
            let seen: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM wg_test WHERE id = $1")
                .bind(id)
                .fetch_one(&db.pool)
                .await?;
            anyhow::ensure!(seen == 1, "row {id} not visible after its commit");
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    assert_eq!(ids(&t.db).await?, (0..200).collect::<Vec<_>>());
    let (groups, members) = t.db.group_commits().expect("SQLite has a writer");
    assert_eq!(members - members_before, 200);
    assert!(
        groups - groups_before < 200,
        "200 concurrent transactions took {} commits",
        groups - groups_before
    );
    Ok(())
}

/// One transaction's failed statement and rollback, and another's drop without commit, leave the others of the
/// group alone (both databases).
async fn rollback_is_per_transaction(t: TestDb) -> anyhow::Result<()> {
    table(&t.db).await?;
    let db = t.db.clone();
    let a = tokio::spawn({
        let db = db.clone();
        async move { insert(&db, 1).await }
    });
    let b = tokio::spawn({
        let db = db.clone();
        async move {
            let mut tx = db.begin().await?;
            sqlx::query("INSERT INTO wg_test (id, who) VALUES (2, 'rolled back')")
                .execute(&mut *tx)
                .await?;
            // a failing statement inside the transaction (on SQLite the group goes on)
            let dup = sqlx::query("INSERT INTO wg_test (id, who) VALUES (2, 'duplicate')")
                .execute(&mut *tx)
                .await;
            anyhow::ensure!(dup.is_err(), "a duplicate key must fail");
            tx.rollback().await?;
            anyhow::Ok(())
        }
    });
    let c = tokio::spawn({
        let db = db.clone();
        async move {
            let mut tx = db.begin().await?;
            insert_in(&mut tx, 3, "dropped").await?;
            drop(tx);
            anyhow::Ok(())
        }
    });
    let d = tokio::spawn({
        let db = db.clone();
        async move { insert(&db, 4).await }
    });
    a.await??;
    b.await??;
    c.await??;
    d.await??;
    insert(&db, 5).await?;
    assert_eq!(ids(&db).await?, vec![1, 4, 5]);
    Ok(())
}

#[tokio::test]
async fn sqlite_rollback_is_per_transaction() -> anyhow::Result<()> {
    rollback_is_per_transaction(TestDb::sqlite().await?).await
}

#[tokio::test]
async fn postgres_rollback_is_per_transaction() -> anyhow::Result<()> {
    let Some(t) = TestDb::postgres().await else {
        return Ok(());
    };
    rollback_is_per_transaction(t).await
}

/// A transaction dropped while others wait for their group: the group still commits and nobody hangs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_dropped_transaction_does_not_stall_its_group() -> anyhow::Result<()> {
    let t = TestDb::sqlite().await?;
    table(&t.db).await?;
    let holder = t.db.begin().await?;
    // These queue behind the holder; the first to commit waits for the group, which the holder keeps open.
    let mut tasks = Vec::new();
    for id in 10..20_i64 {
        let db = t.db.clone();
        tasks.push(tokio::spawn(async move { insert(&db, id).await }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    drop(holder);
    for task in tasks {
        tokio::time::timeout(std::time::Duration::from_secs(10), task).await???;
    }
    assert_eq!(ids(&t.db).await?, (10..20).collect::<Vec<_>>());
    Ok(())
}

/// Callers that stop waiting (a timed-out request drops its future) while waiting for the turn, or while their
/// commit waits for the group, leave nothing behind: later transactions run and what was committed stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_cancelled_callers_leave_the_writer_usable() -> anyhow::Result<()> {
    let t = TestDb::sqlite().await?;
    table(&t.db).await?;
    let holder = t.db.begin().await?;
    let waiting = tokio::time::timeout(std::time::Duration::from_millis(20), insert(&t.db, 1)).await;
    assert!(waiting.is_err(), "the turn is held: the insert cannot finish");
    drop(holder);
    for id in 2..6_i64 {
        let db = t.db.clone();
        // cancelled at once: it may or may not have committed, but must not break anything
        let _ = tokio::time::timeout(std::time::Duration::from_micros(50), insert(&db, 100 + id)).await;
        insert(&db, id).await?;
    }
    let ids = ids(&t.db).await?;
    for id in 2..6_i64 {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    Ok(())
}

/// A transaction that commits while the next one waits for the turn hands the turn over and leaves its savepoint's
/// release to the next one's `SAVEPOINT` (one round trip). The next one's rollback, and a later one's drop, still
/// undo only their own work, and the first one's commit returns once its group is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_handed_over_commit_outlives_the_next_rollback_and_drop() -> anyhow::Result<()> {
    let t = TestDb::sqlite().await?;
    table(&t.db).await?;
    let (groups_before, _) = t.db.group_commits().expect("SQLite has a writer");
    let mut first = t.db.begin().await?;
    insert_in(&mut first, 1, "kept").await?;
    let next = tokio::spawn({
        let db = t.db.clone();
        async move {
            let mut tx = db.begin().await?;
            insert_in(&mut tx, 2, "rolled back").await?;
            tx.rollback().await?;
            let mut tx = db.begin().await?;
            insert_in(&mut tx, 3, "dropped").await?;
            drop(tx);
            anyhow::Ok(())
        }
    });
    // The next transaction is waiting for the turn when the first commits.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    tokio::time::timeout(std::time::Duration::from_secs(10), first.commit()).await??;
    assert_eq!(
        ids(&t.db).await?,
        vec![1],
        "the first commit is stored once it returns"
    );
    tokio::time::timeout(std::time::Duration::from_secs(10), next).await???;
    insert(&t.db, 4).await?;
    assert_eq!(ids(&t.db).await?, vec![1, 4]);
    let (groups, _) = t.db.group_commits().expect("SQLite has a writer");
    assert!(groups > groups_before, "nothing was committed");
    Ok(())
}

/// The write turn's profile counts each transaction under the line that started it.
#[tokio::test]
async fn sqlite_turn_time_is_counted_per_call_site() -> anyhow::Result<()> {
    let t = TestDb::sqlite().await?;
    table(&t.db).await?;
    let mut begin_line = 0;
    for id in 0..3_i64 {
        begin_line = line!() + 1;
        let mut tx = t.db.begin().await?;
        insert_in(&mut tx, id, "profiled").await?;
        tx.commit().await?;
    }
    let site = format!("{}:{}", file!(), begin_line);
    let sites = t.db.write_turn_sites().expect("SQLite has a writer");
    let ours = sites
        .iter()
        .find(|s| s.site == site)
        .unwrap_or_else(|| panic!("{site} not in {sites:?}"));
    assert_eq!(ours.turns, 3, "{sites:?}");
    assert!(ours.held_us > 0, "{sites:?}");
    // `table` began its own transaction on another line.
    assert!(sites.iter().any(|s| s.site != site && s.turns >= 1), "{sites:?}");
    Ok(())
}
