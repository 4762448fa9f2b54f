//! Group commit: many small durable writes share one transaction (one fsync) instead of each paying its own, as
//! TigerBeetle's and PostgreSQL's group commits do. One committer task per [`GroupCommit`] drains a bounded
//! queue: it takes the first waiting item, then every other already waiting (up to [`GROUP_MAX`]), applies them in
//! one transaction in arrival order, and only after the commit answers each waiter with its own outcome. So an
//! answer still means stored; a failed transaction answers every item of its group with [`StoreError::Busy`]
//! (nothing of the group was stored: try again).
//!
//! The queue is bounded ([`QUEUE_MAX`]): when it is full a submit fails at once with [`StoreError::Busy`] (the
//! caller answers 503 with `Retry-After`), so memory stays bounded under any load. If the committer is gone (its
//! runtime shut down), a submit applies its item alone in its own transaction.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};

use super::{Db, StoreError, now_ms};

/// Most items one transaction applies.
pub const GROUP_MAX: usize = 256;
/// Most items waiting for the committer.
pub const QUEUE_MAX: usize = 4096;

/// A boxed future borrowing the connection and the item.
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One kind of write that can share a transaction with others of its kind.
pub trait Op: Send + Sync + 'static {
    type Item: Send + Sync + 'static;
    type Out: Send + 'static;
    /// A name for metrics and logs (`remesa_group_commit_*{op}`).
    const NAME: &'static str;
    /// Applies one item inside the group's transaction.
    fn apply<'a>(
        &'a self,
        conn: &'a mut sqlx::AnyConnection,
        item: &'a Self::Item,
        now_ms: i64,
    ) -> BoxFut<'a, Result<Self::Out, StoreError>>;

    /// Applies a whole group inside its transaction: each item's outcome, in order. The default applies the items
    /// one by one with [`Op::apply`]; an op overrides it to do the group in a few statements (a multi-row insert),
    /// which is what lets one committer keep up with thousands of items a second.
    fn apply_group<'a>(
        &'a self,
        conn: &'a mut sqlx::AnyConnection,
        items: Vec<&'a Self::Item>,
        now_ms: i64,
    ) -> BoxFut<'a, Result<Vec<Self::Out>, StoreError>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(self.apply(&mut *conn, item, now_ms).await?);
            }
            Ok(out)
        })
    }
}

type Waiter<O> = (
    <O as Op>::Item,
    oneshot::Sender<Result<<O as Op>::Out, StoreError>>,
);

/// The handle writers submit to; cheap to clone.
pub struct GroupCommit<O: Op> {
    queue: mpsc::Sender<Waiter<O>>,
    op: Arc<O>,
    db: Db,
    commits: Arc<AtomicU64>,
}

impl<O: Op> Clone for GroupCommit<O> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
            op: self.op.clone(),
            db: self.db.clone(),
            commits: self.commits.clone(),
        }
    }
}

impl<O: Op> std::fmt::Debug for GroupCommit<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("op", &O::NAME)
            .field("commits", &self.commits())
            .finish_non_exhaustive()
    }
}

impl<O: Op> GroupCommit<O> {
    /// Starts the committer task on the current tokio runtime.
    pub fn start(db: Db, op: O) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE_MAX);
        let op = Arc::new(op);
        let commits = Arc::new(AtomicU64::new(0));
        tokio::spawn(run(db.clone(), op.clone(), rx, commits.clone()));
        Self {
            queue,
            op,
            db,
            commits,
        }
    }

    /// Transactions committed so far (each applied one group).
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Applies `item` in the next group and returns its outcome once the group is committed.
    pub async fn submit(&self, item: O::Item) -> Result<O::Out, StoreError> {
        let (tx, rx) = oneshot::channel();
        match self.queue.try_send((item, tx)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("remesa_group_commit_busy_total", "op" => O::NAME).increment(1);
                return Err(StoreError::Busy(format!("the {} commit queue is full", O::NAME)));
            }
            Err(mpsc::error::TrySendError::Closed((item, _))) => {
                let mut tx = self.db.begin().await?;
                let out = self.op.apply(&mut tx, &item, now_ms()).await?;
                tx.commit().await?;
                return Ok(out);
            }
        }
        rx.await
            .unwrap_or_else(|_| Err(StoreError::Busy(format!("the {} committer stopped", O::NAME))))
    }
}

async fn run<O: Op>(db: Db, op: Arc<O>, mut rx: mpsc::Receiver<Waiter<O>>, commits: Arc<AtomicU64>) {
    let mut group: Vec<Waiter<O>> = Vec::with_capacity(GROUP_MAX);
    while let Some(first) = rx.recv().await {
        group.push(first);
        while group.len() < GROUP_MAX {
            match rx.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        metrics::histogram!("remesa_group_commit_size", "op" => O::NAME).record(group.len() as f64);
        match commit(&db, op.as_ref(), &group).await {
            Ok(outcomes) => {
                commits.fetch_add(1, Ordering::Relaxed);
                for ((_, reply), outcome) in group.drain(..).zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::error!(target: "store", op = O::NAME, error = %e, items = group.len(), "group commit failed: nothing of it stored");
                let message = e.to_string();
                for (_, reply) in group.drain(..) {
                    let _ = reply.send(Err(StoreError::Busy(message.clone())));
                }
            }
        }
    }
}

/// Applies the group in one transaction; each item's outcome in order.
async fn commit<O: Op>(db: &Db, op: &O, group: &[Waiter<O>]) -> Result<Vec<O::Out>, StoreError> {
    let now = now_ms();
    let mut tx = db.begin().await?;
    let out = op
        .apply_group(&mut tx, group.iter().map(|(item, _)| item).collect(), now)
        .await?;
    if out.len() != group.len() {
        return Err(StoreError::Corrupt(format!(
            "the {} group answered {} of {} items",
            O::NAME,
            out.len(),
            group.len()
        )));
    }
    tx.commit().await?;
    Ok(out)
}
