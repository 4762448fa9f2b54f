//! The processes serving a database, and recovery of a crashed process's claims at its restart.
//!
//! Every serving process has a node name (unique among the processes running at once: `REMESA_NODE_NAME`, by
//! default `host:port`, and two live processes cannot listen on the same host and port) and a start id (fresh at
//! every start). Work it claims — chat inbox and outbox messages, webhook deliveries, unfinished idempotency
//! keys — carries its start id. When a node starts under a name that was registered before, the process of the
//! previous start id is gone (it held the port), so [`register`] frees its claims at once instead of letting them
//! wait for their leases. Claims of a process that crashed and is not restarted still expire with their leases.

use sqlx::Row as _;

use super::{Db, StoreError, now_ms};

/// Who this process is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    /// Fresh at every start (a UUIDv7).
    pub start_id: String,
}

impl Instance {
    pub fn new() -> Instance {
        Instance {
            start_id: uuid::Uuid::now_v7().to_string(),
        }
    }

    /// The claim holder name of one of this process's workers (`chat`, `webhooks`).
    pub fn worker_id(&self, role: &str) -> String {
        worker_id(role, &self.start_id)
    }
}

impl Default for Instance {
    fn default() -> Self {
        Instance::new()
    }
}

fn worker_id(role: &str, start_id: &str) -> String {
    format!("{role}@{start_id}")
}

/// What [`register`] freed from the previous start of the same node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    pub previous_start_id: Option<String>,
    pub idempotency_keys: u64,
    pub chat_inbox: u64,
    pub chat_outbox: u64,
    pub webhook_deliveries: u64,
    /// Leases (sending keys, indexer, refund keeper, the partner feed) the previous start held, now expired.
    pub leases: u64,
}

/// The lease holder role of a node's chain workers (`chain@<start id>`).
pub const CHAIN_ROLE: &str = "chain";
/// The lease owner role of a node's partner feed follower (`partner-feed@<start id>`).
pub const PARTNER_FEED_ROLE: &str = "partner-feed";

/// Registers `instance` as the live process of `node_name` and frees every claim of the previous process that
/// ran under that name: its unfinished idempotency keys can be retried at once, its claimed chat messages and
/// webhook deliveries are due again, its leases (chain workers, partner feed) expire. One transaction.
/// (A SIGKILLed process left them held; without this its restart waited out every lease: up to 30 s in which no
/// partner event or webhook was made, found by the fault suite's crash scenario.)
pub async fn register(db: &Db, node_name: &str, instance: &Instance) -> Result<Recovered, StoreError> {
    let now = now_ms();
    let mut tx = db.begin().await?;
    // Write first: on SQLite a transaction that reads and then writes cannot upgrade its lock while another
    // connection writes (SQLITE_BUSY at once, no busy wait); on PostgreSQL this locks the row.
    sqlx::query("UPDATE node_instances SET started_at_unix_ms = started_at_unix_ms WHERE node_name = $1")
        .bind(node_name)
        .execute(&mut *tx)
        .await?;
    let previous: Option<String> = sqlx::query("SELECT start_id FROM node_instances WHERE node_name = $1")
        .bind(node_name)
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.try_get("start_id"))
        .transpose()?;
    sqlx::query(
        "INSERT INTO node_instances (node_name, start_id, started_at_unix_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (node_name) DO UPDATE SET start_id = excluded.start_id, started_at_unix_ms = excluded.started_at_unix_ms",
    )
    .bind(node_name)
    .bind(&instance.start_id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let mut recovered = Recovered {
        previous_start_id: previous.clone(),
        ..Recovered::default()
    };
    if let Some(prev) = previous.filter(|p| *p != instance.start_id) {
        recovered.idempotency_keys =
            sqlx::query("UPDATE idempotency_keys SET owner = NULL WHERE owner = $1 AND status_code IS NULL")
                .bind(&prev)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        // (table, status of a claimed row, worker role): what the previous start's workers may hold.
        let claims: [(&str, &str, &str, &mut u64); 3] = [
            ("chat_inbox", "claimed", "chat", &mut recovered.chat_inbox),
            ("chat_outbox", "claimed", "chat", &mut recovered.chat_outbox),
            (
                "partner_webhook_deliveries",
                "delivering",
                "webhooks",
                &mut recovered.webhook_deliveries,
            ),
        ];
        for (table, status, role, freed) in claims {
            *freed = sqlx::query(&format!(
                "UPDATE {table} SET claim_expires_at_unix_ms = 0 WHERE status = $1 AND claimed_by = $2"
            ))
            .bind(status)
            .bind(worker_id(role, &prev))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        // Fencing numbers grow on every takeover, so expiring a dead holder's chain lease is safe.
        recovered.leases = sqlx::query("UPDATE chain_leases SET expires_at_unix_ms = 0 WHERE holder = $1")
            .bind(worker_id(CHAIN_ROLE, &prev))
            .execute(&mut *tx)
            .await?
            .rows_affected()
            + sqlx::query("UPDATE partner_cursors SET lease_expires_at_unix_ms = 0 WHERE lease_owner = $1")
                .bind(worker_id(PARTNER_FEED_ROLE, &prev))
                .execute(&mut *tx)
                .await?
                .rows_affected();
    }
    tx.commit().await?;
    Ok(recovered)
}
