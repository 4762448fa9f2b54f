//! The chat tables (`migrations/*/0003_chat.sql`): identities, conversation state, the inbox (durable ack +
//! dedupe), the outbox (every message we send, with its delivery errors) and feed cursors.

use sqlx::{AnyPool, Row};

use super::intent::Lang;
use super::model::{InboundMessage, OutboundMessage, Platform};
use crate::store::Db;

pub use crate::store::{StoreError, now_ms};

/// Most inbox attempts before an item is parked as failed.
pub const INBOX_ATTEMPTS_MAX: i64 = 5;
/// Most outbox delivery attempts (each itself retried inside the client) before a message is parked as failed.
pub const OUTBOX_ATTEMPTS_MAX: i64 = 8;
/// Most rows returned by a terminal poll.
pub const TERMINAL_PAGE_MAX: i64 = 100;

/// The node pool seen by the chat.
#[derive(Debug, Clone)]
pub struct ChatStore {
    db: Db,
}

/// A stored chat identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Platform.
    pub platform: Platform,
    /// User key.
    pub user_key: String,
    /// Reply address.
    pub address: String,
    /// Phone (E.164), if known.
    pub phone_e164: Option<String>,
    /// Display name.
    pub display_name: Option<String>,
    /// Language.
    pub lang: Lang,
    /// Engine user id once registered.
    pub engine_user_id: Option<String>,
    /// Custodial wallet address once registered.
    pub wallet_address: Option<String>,
}

/// A claimed inbox item.
#[derive(Debug, Clone)]
pub struct InboxItem {
    /// Row id.
    pub id: String,
    /// The message.
    pub message: InboundMessage,
    /// Attempts so far (including this one).
    pub attempts: i64,
}

/// A claimed outbox item.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    /// Row id.
    pub id: String,
    /// Platform.
    pub platform: Platform,
    /// Address.
    pub address: String,
    /// The message.
    pub message: OutboundMessage,
    /// Telegram callback to answer first, if any.
    pub callback_query_id: Option<String>,
    /// Attempts so far (including this one).
    pub attempts: i64,
}

/// A message to store in the outbox.
#[derive(Debug, Clone)]
pub struct NewOutbound {
    /// Unique key: a retry of the same work never sends twice.
    pub dedupe_key: String,
    /// Platform.
    pub platform: Platform,
    /// Address.
    pub address: String,
    /// Message.
    pub message: OutboundMessage,
    /// Telegram callback to answer.
    pub callback_query_id: Option<String>,
}

fn platform_of(s: &str) -> Result<Platform, StoreError> {
    Platform::parse(s).ok_or_else(|| StoreError::Corrupt(format!("platform {s:?}")))
}

impl ChatStore {
    /// The chat's view of the node database.
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The pool.
    pub fn pool(&self) -> &AnyPool {
        &self.db.pool
    }

    fn skip_locked(&self) -> &'static str {
        self.db.dialect.skip_locked()
    }

    // --- identities ------------------------------------------------------------------------------------------

    /// Inserts or refreshes an identity (address, phone, name); returns the stored row.
    pub async fn upsert_identity(
        &self,
        platform: Platform,
        user_key: &str,
        address: &str,
        phone_e164: Option<&str>,
        display_name: Option<&str>,
        lang: Lang,
    ) -> Result<Identity, StoreError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO chat_identities (platform, user_key, address, phone_e164, display_name, lang, created_at_unix_ms, updated_at_unix_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
             ON CONFLICT (platform, user_key) DO UPDATE SET address = excluded.address, \
             phone_e164 = COALESCE(excluded.phone_e164, chat_identities.phone_e164), \
             display_name = COALESCE(excluded.display_name, chat_identities.display_name), \
             updated_at_unix_ms = excluded.updated_at_unix_ms",
        )
        .bind(platform.as_str())
        .bind(user_key)
        .bind(address)
        .bind(phone_e164)
        .bind(display_name)
        .bind(lang.as_str())
        .bind(now)
        .execute(&self.db.pool)
        .await?;
        self.identity(platform, user_key)
            .await?
            .ok_or_else(|| StoreError::Corrupt("identity vanished".into()))
    }

    /// One identity.
    pub async fn identity(&self, platform: Platform, user_key: &str) -> Result<Option<Identity>, StoreError> {
        let row = sqlx::query(
            "SELECT platform, user_key, address, phone_e164, display_name, lang, engine_user_id, wallet_address \
             FROM chat_identities WHERE platform = $1 AND user_key = $2",
        )
        .bind(platform.as_str())
        .bind(user_key)
        .fetch_optional(&self.db.pool)
        .await?;
        row.map(|r| identity_of(&r)).transpose()
    }

    /// Identities of an engine user (a person may chat on several platforms).
    pub async fn identities_of_user(&self, engine_user_id: &str) -> Result<Vec<Identity>, StoreError> {
        let rows = sqlx::query(
            "SELECT platform, user_key, address, phone_e164, display_name, lang, engine_user_id, wallet_address \
             FROM chat_identities WHERE engine_user_id = $1 ORDER BY updated_at_unix_ms DESC LIMIT 10",
        )
        .bind(engine_user_id)
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter().map(identity_of).collect()
    }

    /// The most recently active identity with this phone number, on any platform.
    pub async fn identity_by_phone(&self, phone_e164: &str) -> Result<Option<Identity>, StoreError> {
        let row = sqlx::query(
            "SELECT platform, user_key, address, phone_e164, display_name, lang, engine_user_id, wallet_address \
             FROM chat_identities WHERE phone_e164 = $1 ORDER BY updated_at_unix_ms DESC LIMIT 1",
        )
        .bind(phone_e164)
        .fetch_optional(&self.db.pool)
        .await?;
        row.map(|r| identity_of(&r)).transpose()
    }

    /// Records the engine user of an identity.
    pub async fn set_engine_user(
        &self,
        platform: Platform,
        user_key: &str,
        engine_user_id: &str,
        wallet_address: &str,
        display_name: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE chat_identities SET engine_user_id = $1, wallet_address = $2, updated_at_unix_ms = $3, \
             display_name = COALESCE(display_name, $6) WHERE platform = $4 AND user_key = $5",
        )
        .bind(engine_user_id)
        .bind(wallet_address)
        .bind(now_ms())
        .bind(platform.as_str())
        .bind(user_key)
        .bind(display_name)
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }

    /// Records the identity's language.
    pub async fn set_lang(&self, platform: Platform, user_key: &str, lang: Lang) -> Result<(), StoreError> {
        sqlx::query("UPDATE chat_identities SET lang = $1 WHERE platform = $2 AND user_key = $3")
            .bind(lang.as_str())
            .bind(platform.as_str())
            .bind(user_key)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    // --- conversation ----------------------------------------------------------------------------------------

    /// The stored conversation state (JSON), if any.
    pub async fn conversation(
        &self,
        platform: Platform,
        user_key: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT state FROM chat_conversations WHERE platform = $1 AND user_key = $2")
            .bind(platform.as_str())
            .bind(user_key)
            .fetch_optional(&self.db.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<String, _>("state")).transpose()?)
    }

    // --- inbox -----------------------------------------------------------------------------------------------

    /// Stores an inbound message. `Ok(None)` when (platform, message_id) was stored before: a redelivery.
    pub async fn insert_inbox(&self, msg: &InboundMessage) -> Result<Option<String>, StoreError> {
        let id = uuid::Uuid::now_v7().to_string();
        let payload = serde_json::to_string(msg).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let res = sqlx::query(
            "INSERT INTO chat_inbox (id, platform, message_id, user_key, payload, status, received_at_unix_ms) \
             VALUES ($1, $2, $3, $4, $5, 'pending', $6) ON CONFLICT (platform, message_id) DO NOTHING",
        )
        .bind(&id)
        .bind(msg.platform.as_str())
        .bind(&msg.message_id)
        .bind(&msg.sender.user_key)
        .bind(payload)
        .bind(now_ms())
        .execute(&self.db.pool)
        .await?;
        Ok((res.rows_affected() == 1).then_some(id))
    }

    /// Claims the oldest pending inbox item whose user has no other item in progress (one message per user at a
    /// time, in order: an earlier message of the same user that is pending, claimed, or whose claim expired goes
    /// first). `only_id` restricts the claim to one row (the terminal endpoint processes its own).
    pub async fn claim_inbox(
        &self,
        worker: &str,
        lease_ms: i64,
        only_id: Option<&str>,
    ) -> Result<Option<InboxItem>, StoreError> {
        let now = now_ms();
        let sql = format!(
            "UPDATE chat_inbox SET status = 'claimed', claimed_by = $1, claim_expires_at_unix_ms = $2, attempts = attempts + 1 \
             WHERE id = (SELECT a.id FROM chat_inbox a \
               WHERE ((a.status = 'pending' AND a.not_before_unix_ms <= $3) OR (a.status = 'claimed' AND a.claim_expires_at_unix_ms < $3)) \
               AND ($4 = '' OR a.id = $4) \
               AND NOT EXISTS (SELECT 1 FROM chat_inbox b WHERE b.platform = a.platform AND b.user_key = a.user_key \
                 AND b.id <> a.id AND b.status IN ('pending', 'claimed') \
                 AND ((b.status = 'claimed' AND b.claim_expires_at_unix_ms >= $3) \
                   OR b.received_at_unix_ms < a.received_at_unix_ms \
                   OR (b.received_at_unix_ms = a.received_at_unix_ms AND b.id < a.id))) \
               ORDER BY a.received_at_unix_ms, a.id LIMIT 1{}) \
             AND (status = 'pending' OR (status = 'claimed' AND claim_expires_at_unix_ms < $3)) \
             RETURNING id, payload, attempts",
            self.skip_locked()
        );
        let row = sqlx::query(&sql)
            .bind(worker)
            .bind(now + lease_ms)
            .bind(now)
            .bind(only_id.unwrap_or(""))
            .fetch_optional(&self.db.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let payload: String = row.try_get("payload")?;
        let message = serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(Some(InboxItem {
            id: row.try_get("id")?,
            message,
            attempts: row.try_get("attempts")?,
        }))
    }

    /// Finishes an inbox item: stores the new conversation state and the replies, and marks it done, atomically.
    /// Returns false (and writes nothing) when the claim was lost.
    pub async fn complete_inbox(
        &self,
        item: &InboxItem,
        state_json: Option<&str>,
        replies: &[NewOutbound],
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut tx = self.db.pool.begin().await?;
        // Fenced by the claim (attempts grows with every claim): a worker whose lease expired and whose item was
        // claimed again writes nothing.
        let done = sqlx::query(
            "UPDATE chat_inbox SET status = 'done', processed_at_unix_ms = $1, last_error = NULL \
             WHERE id = $2 AND status = 'claimed' AND attempts = $3",
        )
        .bind(now)
        .bind(&item.id)
        .bind(item.attempts)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        if let Some(state) = state_json {
            sqlx::query(
                "INSERT INTO chat_conversations (platform, user_key, state, updated_at_unix_ms) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (platform, user_key) DO UPDATE SET state = excluded.state, updated_at_unix_ms = excluded.updated_at_unix_ms",
            )
            .bind(item.message.platform.as_str())
            .bind(&item.message.sender.user_key)
            .bind(state)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        for (n, r) in replies.iter().enumerate() {
            insert_outbox(&mut tx, r, Some(&item.id), now, i64::try_from(n).unwrap_or(0)).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Records a processing failure: back to pending after `retry_in_ms`, or parked as failed after
    /// [`INBOX_ATTEMPTS_MAX`].
    /// Returns true when parked.
    pub async fn fail_inbox(
        &self,
        item: &InboxItem,
        error: &str,
        retry_in_ms: i64,
    ) -> Result<bool, StoreError> {
        let parked = item.attempts >= INBOX_ATTEMPTS_MAX;
        sqlx::query(
            "UPDATE chat_inbox SET status = $1, last_error = $2, claimed_by = NULL, not_before_unix_ms = $3 \
             WHERE id = $4 AND status = 'claimed' AND attempts = $5",
        )
        .bind(if parked { "failed" } else { "pending" })
        .bind(error.chars().take(500).collect::<String>())
        .bind(now_ms() + retry_in_ms)
        .bind(&item.id)
        .bind(item.attempts)
        .execute(&self.db.pool)
        .await?;
        Ok(parked)
    }

    /// Status of an inbox row by (platform, message id).
    pub async fn inbox_status(
        &self,
        platform: Platform,
        message_id: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let row = sqlx::query("SELECT id, status FROM chat_inbox WHERE platform = $1 AND message_id = $2")
            .bind(platform.as_str())
            .bind(message_id)
            .fetch_optional(&self.db.pool)
            .await?;
        row.map(|r| Ok((r.try_get("id")?, r.try_get("status")?)))
            .transpose()
    }

    // --- outbox ----------------------------------------------------------------------------------------------

    /// Stores one outbound message (no-op when its dedupe key exists). Returns true when stored.
    pub async fn enqueue(&self, msg: &NewOutbound) -> Result<bool, StoreError> {
        let mut tx = self.db.pool.begin().await?;
        let stored = insert_outbox(&mut tx, msg, None, now_ms(), 0).await?;
        tx.commit().await?;
        Ok(stored)
    }

    /// Claims one deliverable outbox message (not terminal ones: those are fetched by the terminal client).
    pub async fn claim_outbox(&self, worker: &str, lease_ms: i64) -> Result<Option<OutboxItem>, StoreError> {
        let now = now_ms();
        let sql = format!(
            "UPDATE chat_outbox SET status = 'claimed', claimed_by = $1, claim_expires_at_unix_ms = $2, attempts = attempts + 1 \
             WHERE id = (SELECT id FROM chat_outbox WHERE platform <> 'terminal' \
               AND ((status = 'pending' AND not_before_unix_ms <= $3) OR (status = 'claimed' AND claim_expires_at_unix_ms < $3)) \
               ORDER BY seq_unix_ms, id LIMIT 1{}) \
             AND (status = 'pending' OR (status = 'claimed' AND claim_expires_at_unix_ms < $3)) \
             RETURNING id, platform, address, payload, callback_query_id, attempts",
            self.skip_locked()
        );
        let row = sqlx::query(&sql)
            .bind(worker)
            .bind(now + lease_ms)
            .bind(now)
            .fetch_optional(&self.db.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        outbox_of(&row).map(Some)
    }

    /// Marks a message sent.
    pub async fn mark_sent(&self, id: &str, provider_message_id: Option<&str>) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE chat_outbox SET status = 'sent', sent_at_unix_ms = $1, provider_message_id = $2, claimed_by = NULL WHERE id = $3",
        )
        .bind(now_ms())
        .bind(provider_message_id)
        .bind(id)
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }

    /// Records a failed delivery: retried after `retry_in_ms`, or parked as failed (permanent errors, or after
    /// [`OUTBOX_ATTEMPTS_MAX`]). Returns true when parked.
    pub async fn mark_failed(
        &self,
        item: &OutboxItem,
        error: &str,
        code: Option<i64>,
        permanent: bool,
        retry_in_ms: i64,
    ) -> Result<bool, StoreError> {
        let parked = permanent || item.attempts >= OUTBOX_ATTEMPTS_MAX;
        sqlx::query(
            "UPDATE chat_outbox SET status = $1, last_error = $2, last_error_code = $3, not_before_unix_ms = $4, claimed_by = NULL WHERE id = $5",
        )
        .bind(if parked { "failed" } else { "pending" })
        .bind(error.chars().take(500).collect::<String>())
        .bind(code)
        .bind(now_ms() + retry_in_ms)
        .bind(&item.id)
        .execute(&self.db.pool)
        .await?;
        Ok(parked)
    }

    /// Records a platform delivery status (WhatsApp `statuses[]`) on the message it belongs to.
    pub async fn record_delivery_status(
        &self,
        provider_message_id: &str,
        status: &str,
        code: Option<i64>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE chat_outbox SET delivery_status = $1, last_error_code = COALESCE($2, last_error_code), \
             last_error = COALESCE($3, last_error) WHERE provider_message_id = $4",
        )
        .bind(status.chars().take(40).collect::<String>())
        .bind(code)
        .bind(error.map(|e| e.chars().take(500).collect::<String>()))
        .bind(provider_message_id)
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }

    /// Replies stored for one inbox item, in order.
    pub async fn replies_of(&self, inbox_id: &str) -> Result<Vec<OutboundMessage>, StoreError> {
        let rows = sqlx::query(
            "SELECT payload FROM chat_outbox WHERE inbox_id = $1 ORDER BY seq_unix_ms, dedupe_key LIMIT 50",
        )
        .bind(inbox_id)
        .fetch_all(&self.db.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let p: String = r.try_get("payload")?;
                serde_json::from_str(&p).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect()
    }

    /// Takes (marks sent and returns) pending terminal messages for `address`, oldest first; `except_inbox`
    /// leaves the replies of that inbox item alone (they are returned with the request that caused them).
    pub async fn take_terminal(
        &self,
        address: &str,
        except_inbox: Option<&str>,
    ) -> Result<Vec<OutboundMessage>, StoreError> {
        // One statement: on SQLite a transaction that reads and then writes fails at once (SQLITE_BUSY) when
        // another connection writes meanwhile; on PostgreSQL the `status` check is re-read under the row lock, so
        // two pollers never take the same message.
        let rows = sqlx::query(
            "UPDATE chat_outbox SET status = 'sent', sent_at_unix_ms = $1 \
             WHERE status = 'pending' AND id IN (SELECT id FROM chat_outbox WHERE platform = 'terminal' \
               AND address = $2 AND status = 'pending' AND ($3 = '' OR inbox_id IS NULL OR inbox_id <> $3) \
               ORDER BY seq_unix_ms, dedupe_key LIMIT $4) \
             RETURNING payload, seq_unix_ms, dedupe_key",
        )
        .bind(now_ms())
        .bind(address)
        .bind(except_inbox.unwrap_or(""))
        .bind(TERMINAL_PAGE_MAX)
        .fetch_all(&self.db.pool)
        .await?;
        let mut taken = Vec::with_capacity(rows.len());
        for r in &rows {
            let seq: i64 = r.try_get("seq_unix_ms")?;
            let key: String = r.try_get("dedupe_key")?;
            let p: String = r.try_get("payload")?;
            taken.push((seq, key, p));
        }
        // RETURNING does not keep the subquery's order.
        taken.sort();
        taken
            .into_iter()
            .map(|(_, _, p)| serde_json::from_str(&p).map_err(|e| StoreError::Corrupt(e.to_string())))
            .collect()
    }

    /// Marks the terminal replies of one inbox item as sent.
    pub async fn mark_inbox_replies_sent(&self, inbox_id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE chat_outbox SET status = 'sent', sent_at_unix_ms = $1 WHERE inbox_id = $2 AND platform = 'terminal'")
            .bind(now_ms())
            .bind(inbox_id)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    /// Counts outbox rows by status (tests, metrics).
    pub async fn outbox_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows =
            sqlx::query("SELECT status, COUNT(*) AS n FROM chat_outbox GROUP BY status ORDER BY status")
                .fetch_all(&self.db.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("status")?, r.try_get("n")?)))
            .collect()
    }

    // --- cursors ---------------------------------------------------------------------------------------------

    /// A cursor's position (0 when new).
    pub async fn cursor(&self, name: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT position FROM chat_cursors WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.db.pool)
            .await?;
        Ok(row
            .map(|r| r.try_get::<i64, _>("position"))
            .transpose()?
            .unwrap_or(0))
    }

    /// Moves a cursor forward (never back).
    pub async fn advance_cursor(&self, name: &str, position: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO chat_cursors (name, position, updated_at_unix_ms) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at_unix_ms = excluded.updated_at_unix_ms \
             WHERE chat_cursors.position < excluded.position",
        )
        .bind(name)
        .bind(position)
        .bind(now_ms())
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }
}

async fn insert_outbox(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    r: &NewOutbound,
    inbox_id: Option<&str>,
    now: i64,
    order: i64,
) -> Result<bool, StoreError> {
    let payload = serde_json::to_string(&r.message).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let res = sqlx::query(
        "INSERT INTO chat_outbox (id, seq_unix_ms, platform, address, payload, dedupe_key, inbox_id, callback_query_id, status, \
         not_before_unix_ms, created_at_unix_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $9) \
         ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(now * 1000 + order)
    .bind(r.platform.as_str())
    .bind(&r.address)
    .bind(payload)
    .bind(&r.dedupe_key)
    .bind(inbox_id)
    .bind(r.callback_query_id.as_deref())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(res.rows_affected() == 1)
}

fn identity_of(r: &sqlx::any::AnyRow) -> Result<Identity, StoreError> {
    let lang: String = r.try_get("lang")?;
    Ok(Identity {
        platform: platform_of(&r.try_get::<String, _>("platform")?)?,
        user_key: r.try_get("user_key")?,
        address: r.try_get("address")?,
        phone_e164: r.try_get("phone_e164")?,
        display_name: r.try_get("display_name")?,
        lang: Lang::from_tag(&lang).unwrap_or_default(),
        engine_user_id: r.try_get("engine_user_id")?,
        wallet_address: r.try_get("wallet_address")?,
    })
}

fn outbox_of(r: &sqlx::any::AnyRow) -> Result<OutboxItem, StoreError> {
    let payload: String = r.try_get("payload")?;
    Ok(OutboxItem {
        id: r.try_get("id")?,
        platform: platform_of(&r.try_get::<String, _>("platform")?)?,
        address: r.try_get("address")?,
        message: serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        callback_query_id: r.try_get("callback_query_id")?,
        attempts: r.try_get("attempts")?,
    })
}
