//! Figure 3's baseline: single-row durable SQLite commits per second on the disk the node uses.
//!
//! WAL journal, `synchronous=FULL` (every commit is fsynced), one INSERT per transaction, from as many concurrent
//! tasks as the webhook load has connections. SQLite has one writer at a time, so the tasks share a small pool; the
//! pool size that commits the most is the baseline (the fairest one to beat).

use std::path::Path;
use std::str::FromStr as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// A payload about the size of a one-message WhatsApp webhook, so the baseline writes what the node writes.
const ROW_BODY_BYTES: usize = 900;

#[derive(Debug, Clone, Copy)]
pub struct CommitRate {
    pub commits_per_s: f64,
    pub pool_size: u32,
}

/// Commits per second with `concurrency` tasks over a pool of `pool_size` connections for `duration`.
pub async fn commits_per_s(
    dir: &Path,
    concurrency: usize,
    pool_size: u32,
    duration: Duration,
) -> anyhow::Result<CommitRate> {
    let file = dir.join(format!("baseline-{pool_size}.sqlite"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
    let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", file.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(30));
    let pool = SqlitePoolOptions::new()
        .max_connections(pool_size)
        .min_connections(pool_size)
        .acquire_timeout(Duration::from_secs(60))
        .connect_with(opts)
        .await
        .with_context(|| format!("opening {}", file.display()))?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS inbound_messages (id TEXT PRIMARY KEY, body TEXT NOT NULL, received_at_ms BIGINT NOT NULL)",
    )
    .execute(&pool)
    .await?;

    let body: Arc<str> = "x".repeat(ROW_BODY_BYTES).into();
    let stop = Arc::new(AtomicBool::new(false));
    let counted = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for task in 0..concurrency {
        let pool = pool.clone();
        let stop = Arc::clone(&stop);
        let counted = Arc::clone(&counted);
        let body = Arc::clone(&body);
        tasks.push(tokio::spawn(async move {
            let mut i: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                let mut tx = pool.begin().await?;
                sqlx::query("INSERT INTO inbound_messages (id, body, received_at_ms) VALUES ($1, $2, $3)")
                    .bind(format!("{task}-{i}"))
                    .bind(&*body)
                    .bind(i64::try_from(start.elapsed().as_millis()).unwrap_or(i64::MAX))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                if !stop.load(Ordering::Relaxed) {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
            }
            anyhow::Ok(())
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed();
    for t in tasks {
        t.await??;
    }
    pool.close().await;
    let n = counted.load(Ordering::Relaxed);
    Ok(CommitRate {
        commits_per_s: n as f64 / elapsed.as_secs_f64(),
        pool_size,
    })
}

/// The best of a few pool sizes (1 = the tasks queue on one connection; more = SQLite's busy handler arbitrates).
pub async fn best_commits_per_s(
    dir: &Path,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<CommitRate> {
    let mut best: Option<CommitRate> = None;
    for pool_size in [1, 8, 64] {
        let r = commits_per_s(dir, concurrency, pool_size, duration).await?;
        eprintln!(
            "[bench]   SQLite pool of {pool_size}: {:.0} commits/s",
            r.commits_per_s
        );
        if best.is_none_or(|b| r.commits_per_s > b.commits_per_s) {
            best = Some(r);
        }
    }
    best.context("no pool size measured")
}
