//! The chat's typed view of its tables: platforms, languages and messages in, parsed rows out, and the inbox
//! completion as one transaction. The SQL is in [`crate::store::chat`]; a stored value that does not parse is
//! [`StoreError::Corrupt`].

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::AnyPool;

use super::intent::Lang;
use super::model::{InboundMessage, OutboundMessage, Platform};
use crate::store::chat::{self as tables, IdentityRow, NewIdentityRow, NewOutboxRow};
use crate::store::{Db, write_tx};

pub use crate::store::{StoreError, now_ms};

/// Most inbox attempts before an item is parked as failed.
pub const INBOX_ATTEMPTS_MAX: i64 = 5;
/// Most outbox delivery attempts (each itself retried inside the client) before a message is parked as failed.
pub const OUTBOX_ATTEMPTS_MAX: i64 = 8;
/// Most rows returned by a terminal poll.
pub const TERMINAL_PAGE_MAX: i64 = 100;
/// How stale an identity's activity time may get before a message from it refreshes it (the order "most recently
/// active" that picks which of a person's chats is told about a payout is this coarse).
pub const IDENTITY_REFRESH_MS: i64 = 60_000;

/// The node pool seen by the chat.
#[derive(Debug, Clone)]
pub struct ChatStore {
    db: Db,
    /// The inbox's group committer, started on the first insert (on the runtime that makes it).
    ingest: std::sync::Arc<std::sync::OnceLock<super::ingest::InboxCommit>>,
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

fn json_of<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn parse_json<T: DeserializeOwned>(payload: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(payload).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn identity_of(r: IdentityRow) -> Result<Identity, StoreError> {
    let lang =
        Lang::from_tag(&r.lang).ok_or_else(|| StoreError::Corrupt(format!("identity lang {:?}", r.lang)))?;
    Ok(Identity {
        platform: platform_of(&r.platform)?,
        user_key: r.user_key,
        address: r.address,
        phone_e164: r.phone_e164,
        display_name: r.display_name,
        lang,
        engine_user_id: r.engine_user_id,
        wallet_address: r.wallet_address,
    })
}

fn inbox_item(row: tables::ClaimedInboxRow) -> Result<InboxItem, StoreError> {
    Ok(InboxItem {
        message: parse_json(&row.payload, "inbox payload")?,
        id: row.id,
        attempts: row.attempts,
    })
}

/// The stored form of each message, in order.
fn payloads_of(msgs: &[NewOutbound]) -> Result<Vec<String>, StoreError> {
    msgs.iter().map(|m| json_of(&m.message)).collect()
}

impl NewOutbound {
    fn insert_with<'a>(&'a self, payload: &'a str, inbox_id: Option<&'a str>) -> NewOutboxRow<'a> {
        NewOutboxRow {
            dedupe_key: &self.dedupe_key,
            platform: self.platform.as_str(),
            address: &self.address,
            payload,
            inbox_id,
            callback_query_id: self.callback_query_id.as_deref(),
        }
    }
}

impl ChatStore {
    /// The chat's view of the node database.
    pub fn new(db: Db) -> Self {
        Self {
            db,
            ingest: std::sync::Arc::default(),
        }
    }

    /// The pool.
    pub fn pool(&self) -> &AnyPool {
        &self.db.pool
    }

    /// Whether the database is PostgreSQL (several writers) rather than SQLite (one).
    pub fn is_postgres(&self) -> bool {
        self.db.is_postgres()
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
        let new = NewIdentityRow {
            platform: platform.as_str(),
            user_key,
            address,
            phone_e164,
            display_name,
            lang: lang.as_str(),
        };
        let now = now_ms();
        // Most messages come from someone already known, with the same address, phone and name: a read answers
        // them, and the write (a turn on SQLite's one write connection) is only for a change, or to refresh the
        // activity time that orders a person's identities at most every IDENTITY_REFRESH_MS.
        if let Some(row) = tables::identity(&self.db.pool, platform.as_str(), user_key).await?
            && row.address == address
            && (phone_e164.is_none() || row.phone_e164.as_deref() == phone_e164)
            && (display_name.is_none() || row.display_name.as_deref() == display_name)
            && row.updated_at_unix_ms > now.saturating_sub(IDENTITY_REFRESH_MS)
        {
            return identity_of(row);
        }
        write_tx!(self.db, |tx| tables::upsert_identity(&mut *tx, &new, now))?;
        self.identity(platform, user_key)
            .await?
            .ok_or_else(|| StoreError::Corrupt("identity vanished".into()))
    }

    /// One identity.
    pub async fn identity(&self, platform: Platform, user_key: &str) -> Result<Option<Identity>, StoreError> {
        tables::identity(&self.db.pool, platform.as_str(), user_key)
            .await?
            .map(identity_of)
            .transpose()
    }

    /// Identities of an engine user (a person may chat on several platforms).
    pub async fn identities_of_user(&self, engine_user_id: &str) -> Result<Vec<Identity>, StoreError> {
        tables::identities_of_engine_user(&self.db.pool, engine_user_id)
            .await?
            .into_iter()
            .map(identity_of)
            .collect()
    }

    /// The most recently active identity with this phone number, on any platform.
    pub async fn identity_by_phone(&self, phone_e164: &str) -> Result<Option<Identity>, StoreError> {
        tables::identity_by_phone(&self.db.pool, phone_e164)
            .await?
            .map(identity_of)
            .transpose()
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
        write_tx!(self.db, |tx| tables::set_engine_user(
            &mut *tx,
            platform.as_str(),
            user_key,
            engine_user_id,
            wallet_address,
            display_name,
            now_ms(),
        ))
    }

    /// Records the identity's language.
    pub async fn set_lang(&self, platform: Platform, user_key: &str, lang: Lang) -> Result<(), StoreError> {
        write_tx!(self.db, |tx| tables::set_lang(
            &mut *tx,
            platform.as_str(),
            user_key,
            lang.as_str()
        ))
    }

    // --- conversation ----------------------------------------------------------------------------------------

    /// The stored conversation state (JSON), if any.
    pub async fn conversation(
        &self,
        platform: Platform,
        user_key: &str,
    ) -> Result<Option<String>, StoreError> {
        tables::conversation_state(&self.db.pool, platform.as_str(), user_key).await
    }

    // --- inbox -----------------------------------------------------------------------------------------------

    /// Stores an inbound message, durably, in a transaction it may share with other webhooks' messages (group
    /// commit, [`super::ingest`]). `Ok(None)` when (platform, message_id) was stored before: a redelivery.
    /// `Err(StoreError::Busy)` when the commit queue is full: answer 503, the platform redelivers.
    pub async fn insert_inbox(&self, msg: &InboundMessage) -> Result<Option<String>, StoreError> {
        let row = super::ingest::InboxInsert {
            platform: msg.platform.as_str().to_owned(),
            message_id: msg.message_id.clone(),
            user_key: msg.sender.user_key.clone(),
            payload: json_of(msg)?,
        };
        let ingest = self
            .ingest
            .get_or_init(|| super::ingest::InboxCommit::start(self.db.clone(), super::ingest::InboxOp));
        ingest.submit(row).await
    }

    /// Transactions the inbox's group committer has committed (each stored one group of messages).
    pub fn inbox_commits(&self) -> u64 {
        self.ingest.get().map_or(0, super::ingest::InboxCommit::commits)
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
        // Every write is a transaction of the write connection (see `Db::begin`).
        let mut tx = self.db.begin().await?;
        let row =
            tables::claim_inbox(&mut *tx, self.db.dialect, worker, now + lease_ms, now, only_id).await?;
        tx.commit().await?;
        row.map(inbox_item).transpose()
    }

    /// Inbound messages not handled yet (pending or in hand), across every node sharing the database.
    pub async fn inbox_pending(&self) -> Result<u64, StoreError> {
        let n = tables::count_inbox_pending(&self.db.pool).await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Finishes an inbox item: stores the new conversation state and the replies, and marks it done, atomically.
    /// Returns false (and writes nothing) when the claim was lost.
    pub async fn complete_inbox(
        &self,
        item: &InboxItem,
        state_json: Option<&str>,
        replies: &[NewOutbound],
    ) -> Result<bool, StoreError> {
        Ok(self
            .complete_inbox_and_claim(item, state_json, replies, None)
            .await?
            .0)
    }

    /// [`ChatStore::complete_inbox`], and in the same transaction (one write turn instead of two) the claim of the
    /// next message for `next_for` = (worker, lease in ms), as [`ChatStore::claim_inbox`] would.
    pub async fn complete_inbox_and_claim(
        &self,
        item: &InboxItem,
        state_json: Option<&str>,
        replies: &[NewOutbound],
        next_for: Option<(&str, i64)>,
    ) -> Result<(bool, Option<InboxItem>), StoreError> {
        let payloads = payloads_of(replies)?;
        let now = now_ms();
        let mut tx = self.db.begin().await?;
        if !tables::finish_inbox(&mut *tx, &item.id, item.attempts, now).await? {
            tx.rollback().await?;
            return Ok((false, None));
        }
        if let Some(state) = state_json {
            let platform = item.message.platform.as_str();
            tables::upsert_conversation(&mut *tx, platform, &item.message.sender.user_key, state, now)
                .await?;
        }
        for (n, (r, payload)) in replies.iter().zip(&payloads).enumerate() {
            let row = r.insert_with(payload, Some(&item.id));
            tables::insert_outbox(&mut *tx, &row, now, i64::try_from(n).unwrap_or(0)).await?;
        }
        let next = match next_for {
            Some((worker, lease_ms)) => {
                tables::claim_inbox(&mut *tx, self.db.dialect, worker, now + lease_ms, now, None).await?
            }
            None => None,
        };
        tx.commit().await?;
        Ok((true, next.map(inbox_item).transpose()?))
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
        let not_before = now_ms() + retry_in_ms;
        let released = write_tx!(self.db, |tx| tables::release_inbox(
            &mut *tx,
            &item.id,
            item.attempts,
            parked,
            error,
            not_before
        ))?;
        // a lost claim parks nothing: the worker that holds the row now decides
        Ok(parked && released)
    }

    /// Status of an inbox row by (platform, message id): its id and status.
    pub async fn inbox_status(
        &self,
        platform: Platform,
        message_id: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        Ok(tables::inbox_status(&self.db.pool, platform.as_str(), message_id)
            .await?
            .map(|r| (r.id, r.status)))
    }

    // --- outbox ----------------------------------------------------------------------------------------------

    /// Stores one outbound message (no-op when its dedupe key exists). Returns true when stored.
    pub async fn enqueue(&self, msg: &NewOutbound) -> Result<bool, StoreError> {
        let payload = json_of(&msg.message)?;
        write_tx!(self.db, |tx| tables::insert_outbox(
            &mut *tx,
            &msg.insert_with(&payload, None),
            now_ms(),
            0
        ))
    }

    /// Queues messages in the order given (each user's messages stay in that order) and, when given, moves a
    /// cursor forward, in one transaction: the notifier's whole page of engine events is one durable commit.
    /// Returns how many were new (a dedupe key already queued adds nothing).
    pub async fn enqueue_all(
        &self,
        msgs: &[NewOutbound],
        cursor: Option<(&str, i64)>,
    ) -> Result<usize, StoreError> {
        let payloads = payloads_of(msgs)?;
        let now = now_ms();
        let mut tx = self.db.begin().await?;
        let mut added = 0;
        for (order, (msg, payload)) in msgs.iter().zip(&payloads).enumerate() {
            // seq_unix_ms is now × 1000 + order: at most 999 keep their order within one millisecond.
            let order = i64::try_from(order.min(999)).unwrap_or(999);
            if tables::insert_outbox(&mut *tx, &msg.insert_with(payload, None), now, order).await? {
                added += 1;
            }
        }
        if let Some((name, position)) = cursor {
            tables::advance_cursor(&mut *tx, name, position, now).await?;
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Claims one deliverable outbox message (not terminal ones: those are fetched by the terminal client).
    pub async fn claim_outbox(&self, worker: &str, lease_ms: i64) -> Result<Option<OutboxItem>, StoreError> {
        Ok(self
            .claim_outbox_batch(worker, lease_ms, 1)
            .await?
            .into_iter()
            .next())
    }

    /// Claims up to `limit` deliverable outbox messages in one statement, at most one per user (the first
    /// undelivered message of users with none in hand), so they can be sent at once.
    pub async fn claim_outbox_batch(
        &self,
        worker: &str,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let now = now_ms();
        // Every write is a transaction of the write connection (see `Db::begin`).
        let mut tx = self.db.begin().await?;
        let rows =
            tables::claim_outbox(&mut *tx, self.db.dialect, worker, now + lease_ms, now, limit).await?;
        tx.commit().await?;
        rows.into_iter()
            .map(|row| {
                Ok(OutboxItem {
                    platform: platform_of(&row.platform)?,
                    message: parse_json(&row.payload, "outbox payload")?,
                    id: row.id,
                    address: row.address,
                    callback_query_id: row.callback_query_id,
                    attempts: row.attempts,
                })
            })
            .collect()
    }

    /// Marks a message sent.
    pub async fn mark_sent(&self, id: &str, provider_message_id: Option<&str>) -> Result<(), StoreError> {
        self.mark_sent_all(&[(id.to_owned(), provider_message_id.map(str::to_owned))])
            .await
    }

    /// Marks messages sent (id, the platform's message id), in one transaction.
    pub async fn mark_sent_all(&self, sent: &[(String, Option<String>)]) -> Result<(), StoreError> {
        if sent.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let mut tx = self.db.begin().await?;
        for (id, provider_message_id) in sent {
            tables::mark_outbox_sent(&mut *tx, id, provider_message_id.as_deref(), now).await?;
        }
        tx.commit().await?;
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
        let not_before = now_ms() + retry_in_ms;
        let released = write_tx!(self.db, |tx| tables::release_outbox(
            &mut *tx,
            &item.id,
            item.attempts,
            parked,
            error,
            code,
            not_before,
        ))?;
        // a lost claim (another worker holds or sent the row) parks nothing
        Ok(parked && released)
    }

    /// Records a platform delivery status (WhatsApp `statuses[]`) on the message it belongs to.
    pub async fn record_delivery_status(
        &self,
        provider_message_id: &str,
        status: &str,
        code: Option<i64>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        write_tx!(self.db, |tx| tables::record_delivery_status(
            &mut *tx,
            provider_message_id,
            status,
            code,
            error
        ))
    }

    /// The stored message queued under `dedupe_key` (as stored: placeholders not filled in).
    pub async fn outbox_message(&self, dedupe_key: &str) -> Result<Option<OutboundMessage>, StoreError> {
        tables::outbox_payload(&self.db.pool, dedupe_key)
            .await?
            .map(|p| parse_json(&p, "outbox payload"))
            .transpose()
    }

    /// How many outbound messages have a dedupe key starting with `prefix` (hex and `:` only: no LIKE wildcards).
    pub async fn count_outbox_prefix(&self, prefix: &str) -> Result<i64, StoreError> {
        tables::count_outbox_prefix(&self.db.pool, prefix).await
    }

    /// Replies stored for one inbox item, in order.
    pub async fn replies_of(&self, inbox_id: &str) -> Result<Vec<OutboundMessage>, StoreError> {
        tables::reply_payloads(&self.db.pool, inbox_id)
            .await?
            .iter()
            .map(|p| parse_json(p, "outbox payload"))
            .collect()
    }

    /// Takes (marks sent and returns) pending terminal messages for `address`, oldest first; `except_inbox`
    /// leaves the replies of that inbox item alone (they are returned with the request that caused them).
    pub async fn take_terminal(
        &self,
        address: &str,
        except_inbox: Option<&str>,
    ) -> Result<Vec<OutboundMessage>, StoreError> {
        write_tx!(self.db, |tx| tables::take_terminal(
            &mut *tx,
            address,
            except_inbox,
            TERMINAL_PAGE_MAX,
            now_ms()
        ))?
        .iter()
        .map(|p| parse_json(p, "outbox payload"))
        .collect()
    }

    /// Marks the terminal replies of one inbox item as sent.
    pub async fn mark_inbox_replies_sent(&self, inbox_id: &str) -> Result<(), StoreError> {
        write_tx!(self.db, |tx| tables::mark_inbox_replies_sent(
            &mut *tx,
            inbox_id,
            now_ms()
        ))
    }

    /// Counts outbox rows by status (tests, metrics).
    pub async fn outbox_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(tables::outbox_counts(&self.db.pool)
            .await?
            .into_iter()
            .map(|r| (r.status, r.n))
            .collect())
    }

    // --- cursors ---------------------------------------------------------------------------------------------

    /// A cursor's position (0 when new).
    pub async fn cursor(&self, name: &str) -> Result<i64, StoreError> {
        tables::cursor(&self.db.pool, name).await
    }

    /// Moves a cursor forward (never back).
    pub async fn advance_cursor(&self, name: &str, position: i64) -> Result<(), StoreError> {
        write_tx!(self.db, |tx| tables::advance_cursor(
            &mut *tx,
            name,
            position,
            now_ms()
        ))
    }
}
