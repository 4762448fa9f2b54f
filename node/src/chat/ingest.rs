//! Group commit of inbound messages: a webhook's message is durable before the webhook is acknowledged, but many
//! webhooks share one database transaction (one fsync) instead of each paying its own. One committer task per
//! store drains a bounded queue: it takes the first waiting message, then every other already waiting (up to
//! [`GROUP_MAX`]), inserts them in one transaction and only then answers each waiter with its own outcome (stored,
//! or a redelivery of a message stored before). A 200 still means stored.
//!
//! The queue is bounded ([`QUEUE_MAX`]): when it is full the insert fails at once and the webhook answers 503 with
//! `Retry-After` (the platform redelivers), so memory stays bounded under any load. If the committer is gone (its
//! runtime shut down), inserts fall back to one transaction each.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};

use crate::store::chat::{self as tables, NewInboxRow};
use crate::store::{Db, StoreError, now_ms};

/// Most messages one transaction stores.
pub const GROUP_MAX: usize = 256;
/// Most messages waiting for the committer.
pub const QUEUE_MAX: usize = 4096;

/// One message to store.
#[derive(Debug, Clone)]
pub struct InboxInsert {
    pub platform: String,
    pub message_id: String,
    pub user_key: String,
    pub payload: String,
}

type Reply = oneshot::Sender<Result<Option<String>, StoreError>>;

/// The handle webhooks use; cheap to clone.
#[derive(Debug, Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<(InboxInsert, Reply)>,
    commits: Arc<AtomicU64>,
}

impl GroupCommit {
    /// Starts the committer task on the current tokio runtime.
    pub fn start(db: Db) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE_MAX);
        let commits = Arc::new(AtomicU64::new(0));
        tokio::spawn(run(db, rx, commits.clone()));
        Self { queue, commits }
    }

    /// Transactions committed so far (each stored one group of messages).
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Stores one message in the next group; `Ok(None)` when (platform, message_id) was stored before.
    /// `Err` when the queue is full (busy: try again) or the group's transaction failed (nothing of it stored).
    pub async fn insert(&self, db: &Db, row: InboxInsert) -> Result<Option<String>, StoreError> {
        let (tx, rx) = oneshot::channel();
        match self.queue.try_send((row, tx)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("remesa_chat_ingest_busy_total").increment(1);
                return Err(StoreError::Busy("the inbox's commit queue is full".into()));
            }
            // The committer is gone (its runtime shut down): store it alone.
            Err(mpsc::error::TrySendError::Closed((row, _))) => return insert_one(db, &row).await,
        }
        rx.await
            .unwrap_or_else(|_| Err(StoreError::Busy("the inbox's committer stopped".into())))
    }
}

async fn insert_one(db: &Db, row: &InboxInsert) -> Result<Option<String>, StoreError> {
    tables::insert_inbox(&db.pool, &new_row(row), now_ms()).await
}

fn new_row(row: &InboxInsert) -> NewInboxRow<'_> {
    NewInboxRow {
        platform: &row.platform,
        message_id: &row.message_id,
        user_key: &row.user_key,
        payload: &row.payload,
    }
}

async fn run(db: Db, mut rx: mpsc::Receiver<(InboxInsert, Reply)>, commits: Arc<AtomicU64>) {
    let db = Arc::new(db);
    let mut group: Vec<(InboxInsert, Reply)> = Vec::with_capacity(GROUP_MAX);
    while let Some(first) = rx.recv().await {
        group.push(first);
        while group.len() < GROUP_MAX {
            match rx.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        metrics::histogram!("remesa_chat_ingest_group_size").record(group.len() as f64);
        match commit(&db, &group).await {
            Ok(outcomes) => {
                commits.fetch_add(1, Ordering::Relaxed);
                for ((_, reply), outcome) in group.drain(..).zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(e) => {
                tracing::error!(target: "chat::inbox", error = %e, messages = group.len(), "group commit failed: nothing of it stored");
                let message = e.to_string();
                for (_, reply) in group.drain(..) {
                    let _ = reply.send(Err(StoreError::Busy(message.clone())));
                }
            }
        }
    }
}

/// Inserts the group in one transaction; each message's outcome in order.
async fn commit(db: &Db, group: &[(InboxInsert, Reply)]) -> Result<Vec<Option<String>>, StoreError> {
    let now = now_ms();
    let mut tx = db.begin().await?;
    let mut out = Vec::with_capacity(group.len());
    for (row, _) in group {
        out.push(tables::insert_inbox(&mut *tx, &new_row(row), now).await?);
    }
    tx.commit().await?;
    Ok(out)
}
