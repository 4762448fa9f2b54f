//! The chat tables (`migrations/*/0003_chat.sql`): identities, conversation state, the inbox (durable ack +
//! dedupe, one message per user at a time), the chat outbox (every message sent, with its delivery errors) and
//! feed cursors. Platforms, languages and message payloads (JSON) are stored as text; the chat parses them.

use sqlx::Executor;

use super::{Dialect, MULTI_ROW_MAX, StoreError, values_placeholders};

/// Longest stored error text, in characters.
const ERROR_CHARS_MAX: usize = 500;
/// Longest stored platform delivery status, in characters.
const DELIVERY_STATUS_CHARS_MAX: usize = 40;
/// Most replies [`reply_payloads`] returns.
const REPLIES_MAX: i64 = 50;
/// Most identities [`identities_of_engine_user`] returns.
const IDENTITIES_PER_USER_MAX: i64 = 10;

fn cut(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

// --- identities ------------------------------------------------------------------------------------------------

const IDENTITY_COLS: &str = "platform, user_key, address, phone_e164, display_name, lang, engine_user_id, wallet_address, updated_at_unix_ms";

/// A stored chat identity (a chat user on one platform), read by column name.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct IdentityRow {
    pub platform: String,
    pub user_key: String,
    /// Where replies go.
    pub address: String,
    pub phone_e164: Option<String>,
    pub display_name: Option<String>,
    pub lang: String,
    pub engine_user_id: Option<String>,
    pub wallet_address: Option<String>,
    /// Last refreshed (the "most recently active" order of a person's identities).
    pub updated_at_unix_ms: i64,
}

/// An identity to insert or refresh.
#[derive(Clone, Debug)]
pub struct NewIdentityRow<'a> {
    pub platform: &'a str,
    pub user_key: &'a str,
    pub address: &'a str,
    pub phone_e164: Option<&'a str>,
    pub display_name: Option<&'a str>,
    /// Only stored for a new identity.
    pub lang: &'a str,
}

/// Inserts an identity, or refreshes its address (and its phone and name when given).
pub async fn upsert_identity<'e, E>(exec: E, new: &NewIdentityRow<'_>, now_ms: i64) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO chat_identities (platform, user_key, address, phone_e164, display_name, lang, created_at_unix_ms, updated_at_unix_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
         ON CONFLICT (platform, user_key) DO UPDATE SET address = excluded.address, \
         phone_e164 = COALESCE(excluded.phone_e164, chat_identities.phone_e164), \
         display_name = COALESCE(excluded.display_name, chat_identities.display_name), \
         updated_at_unix_ms = excluded.updated_at_unix_ms",
    )
    .bind(new.platform)
    .bind(new.user_key)
    .bind(new.address)
    .bind(new.phone_e164)
    .bind(new.display_name)
    .bind(new.lang)
    .bind(now_ms)
    .execute(exec)
    .await?;
    Ok(())
}

pub async fn identity<'e, E>(
    exec: E,
    platform: &str,
    user_key: &str,
) -> Result<Option<IdentityRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(&format!(
        "SELECT {IDENTITY_COLS} FROM chat_identities WHERE platform = $1 AND user_key = $2"
    ))
    .bind(platform)
    .bind(user_key)
    .fetch_optional(exec)
    .await?)
}

/// The identities of an engine user (a person may chat on several platforms), most recently active first.
pub async fn identities_of_engine_user<'e, E>(
    exec: E,
    engine_user_id: &str,
) -> Result<Vec<IdentityRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(&format!(
        "SELECT {IDENTITY_COLS} FROM chat_identities WHERE engine_user_id = $1 ORDER BY updated_at_unix_ms DESC LIMIT $2"
    ))
    .bind(engine_user_id)
    .bind(IDENTITIES_PER_USER_MAX)
    .fetch_all(exec)
    .await?)
}

/// The most recently active identity with this phone, on any platform.
pub async fn identity_by_phone<'e, E>(exec: E, phone_e164: &str) -> Result<Option<IdentityRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_as(&format!(
        "SELECT {IDENTITY_COLS} FROM chat_identities WHERE phone_e164 = $1 ORDER BY updated_at_unix_ms DESC LIMIT 1"
    ))
    .bind(phone_e164)
    .fetch_optional(exec)
    .await?)
}

/// Records the engine user and wallet of an identity (and its name, if it had none).
pub async fn set_engine_user<'e, E>(
    exec: E,
    platform: &str,
    user_key: &str,
    engine_user_id: &str,
    wallet_address: &str,
    display_name: Option<&str>,
    now_ms: i64,
) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "UPDATE chat_identities SET engine_user_id = $1, wallet_address = $2, updated_at_unix_ms = $3, \
         display_name = COALESCE(display_name, $6) WHERE platform = $4 AND user_key = $5",
    )
    .bind(engine_user_id)
    .bind(wallet_address)
    .bind(now_ms)
    .bind(platform)
    .bind(user_key)
    .bind(display_name)
    .execute(exec)
    .await?;
    Ok(())
}

pub async fn set_lang<'e, E>(exec: E, platform: &str, user_key: &str, lang: &str) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query("UPDATE chat_identities SET lang = $1 WHERE platform = $2 AND user_key = $3")
        .bind(lang)
        .bind(platform)
        .bind(user_key)
        .execute(exec)
        .await?;
    Ok(())
}

// --- conversations ---------------------------------------------------------------------------------------------

/// The stored conversation state (JSON) of a chat user, if any.
pub async fn conversation_state<'e, E>(
    exec: E,
    platform: &str,
    user_key: &str,
) -> Result<Option<String>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(
        sqlx::query_scalar("SELECT state FROM chat_conversations WHERE platform = $1 AND user_key = $2")
            .bind(platform)
            .bind(user_key)
            .fetch_optional(exec)
            .await?,
    )
}

/// Stores the conversation state (JSON) of a chat user.
pub async fn upsert_conversation<'e, E>(
    exec: E,
    platform: &str,
    user_key: &str,
    state: &str,
    now_ms: i64,
) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO chat_conversations (platform, user_key, state, updated_at_unix_ms) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (platform, user_key) DO UPDATE SET state = excluded.state, updated_at_unix_ms = excluded.updated_at_unix_ms",
    )
    .bind(platform)
    .bind(user_key)
    .bind(state)
    .bind(now_ms)
    .execute(exec)
    .await?;
    Ok(())
}

// --- inbox -----------------------------------------------------------------------------------------------------

/// An inbound message to store.
#[derive(Clone, Debug)]
pub struct NewInboxRow<'a> {
    pub platform: &'a str,
    /// The platform's message id: (platform, message_id) is the dedupe key.
    pub message_id: &'a str,
    pub user_key: &'a str,
    /// The message (JSON).
    pub payload: &'a str,
}

/// A claimed inbox row, read by column name.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ClaimedInboxRow {
    pub id: String,
    /// The message (JSON).
    pub payload: String,
    /// Claims so far, this one included: the fence of [`finish_inbox`] and [`release_inbox`].
    pub attempts: i64,
}

/// An inbox row's id and status (`pending`, `claimed`, `done`, `failed`).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct InboxStatusRow {
    pub id: String,
    pub status: String,
}

/// Stores an inbound message as pending; its new row id, or `None` when (platform, message_id) was stored before.
pub async fn insert_inbox<'e, E>(
    exec: E,
    new: &NewInboxRow<'_>,
    now_ms: i64,
) -> Result<Option<String>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let id = uuid::Uuid::now_v7().to_string();
    let res = sqlx::query(
        "INSERT INTO chat_inbox (id, platform, message_id, user_key, payload, status, received_at_unix_ms) \
         VALUES ($1, $2, $3, $4, $5, 'pending', $6) ON CONFLICT (platform, message_id) DO NOTHING",
    )
    .bind(&id)
    .bind(new.platform)
    .bind(new.message_id)
    .bind(new.user_key)
    .bind(new.payload)
    .bind(now_ms)
    .execute(exec)
    .await?;
    Ok((res.rows_affected() == 1).then_some(id))
}

/// Stores many inbound messages as pending in a few statements (one per [`MULTI_ROW_MAX`] rows): each one's new
/// row id, or `None` when (platform, message_id) was stored before or comes earlier in `rows`.
pub async fn insert_inbox_many(
    conn: &mut sqlx::AnyConnection,
    rows: &[NewInboxRow<'_>],
    now_ms: i64,
) -> Result<Vec<Option<String>>, StoreError> {
    let mut seen = std::collections::HashSet::with_capacity(rows.len());
    let ids: Vec<Option<String>> = rows
        .iter()
        .map(|r| {
            seen.insert((r.platform, r.message_id))
                .then(|| uuid::Uuid::now_v7().to_string())
        })
        .collect();
    let new: Vec<(&NewInboxRow<'_>, &str)> = rows
        .iter()
        .zip(&ids)
        .filter_map(|(r, id)| id.as_deref().map(|id| (r, id)))
        .collect();
    let mut stored = std::collections::HashSet::with_capacity(new.len());
    for chunk in new.chunks(MULTI_ROW_MAX) {
        let sql = format!(
            "INSERT INTO chat_inbox (id, platform, message_id, user_key, payload, status, received_at_unix_ms) \
             VALUES {} ON CONFLICT (platform, message_id) DO NOTHING RETURNING id",
            values_placeholders(chunk.len(), 7)
        );
        let mut q = sqlx::query_scalar::<_, String>(&sql);
        for (r, id) in chunk {
            q = q
                .bind(*id)
                .bind(r.platform)
                .bind(r.message_id)
                .bind(r.user_key)
                .bind(r.payload)
                .bind("pending")
                .bind(now_ms);
        }
        stored.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(ids
        .into_iter()
        .map(|id| id.filter(|id| stored.contains(id)))
        .collect())
}

/// Claims the oldest claimable inbox row (pending and due, or claimed with an expired lease) whose user has no
/// earlier unfinished row: an earlier row of the same user that is pending, claimed, or whose claim expired goes
/// first, and a row claimed under a live lease blocks the user's other rows. One message per user at a time, in
/// the order received. `only_id` restricts the claim to that row. The claim counts an attempt and holds until
/// `lease_until_ms`.
pub async fn claim_inbox<'e, E>(
    exec: E,
    dialect: Dialect,
    worker: &str,
    lease_until_ms: i64,
    now_ms: i64,
    only_id: Option<&str>,
) -> Result<Option<ClaimedInboxRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let sql = format!(
        "UPDATE chat_inbox SET status = 'claimed', claimed_by = $1, claim_expires_at_unix_ms = $2, attempts = attempts + 1 \
         WHERE id = (SELECT a.id FROM chat_inbox a{} WHERE a.status IN ('pending', 'claimed') \
           AND ((a.status = 'pending' AND a.not_before_unix_ms <= $3) OR (a.status = 'claimed' AND a.claim_expires_at_unix_ms < $3)) \
           AND ($4 = '' OR a.id = $4) \
           AND NOT EXISTS (SELECT 1 FROM chat_inbox b WHERE b.platform = a.platform AND b.user_key = a.user_key \
             AND b.id <> a.id AND b.status IN ('pending', 'claimed') \
             AND ((b.status = 'claimed' AND b.claim_expires_at_unix_ms >= $3) \
               OR b.received_at_unix_ms < a.received_at_unix_ms \
               OR (b.received_at_unix_ms = a.received_at_unix_ms AND b.id < a.id))) \
           ORDER BY a.received_at_unix_ms, a.id LIMIT 1{}) \
         AND (status = 'pending' OR (status = 'claimed' AND claim_expires_at_unix_ms < $3)) \
         RETURNING id, payload, attempts",
        dialect.indexed_by("chat_inbox_unfinished"),
        dialect.skip_locked()
    );
    Ok(sqlx::query_as(&sql)
        .bind(worker)
        .bind(lease_until_ms)
        .bind(now_ms)
        .bind(only_id.unwrap_or(""))
        .fetch_optional(exec)
        .await?)
}

/// Inbox rows not handled yet (`pending` or `claimed`).
pub async fn count_inbox_pending<'e, E>(exec: E) -> Result<i64, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM chat_inbox WHERE status IN ('pending', 'claimed')")
            .fetch_one(exec)
            .await?;
    Ok(n)
}

/// Marks a claimed row done; false when the claim was lost. Fenced by the claim (`attempts` grows with every
/// claim): a worker whose lease expired and whose row was claimed again changes nothing.
pub async fn finish_inbox<'e, E>(exec: E, id: &str, attempts: i64, now_ms: i64) -> Result<bool, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let done = sqlx::query(
        "UPDATE chat_inbox SET status = 'done', processed_at_unix_ms = $1, last_error = NULL \
         WHERE id = $2 AND status = 'claimed' AND attempts = $3",
    )
    .bind(now_ms)
    .bind(id)
    .bind(attempts)
    .execute(exec)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a processing failure of a claimed row (fenced like [`finish_inbox`]): back to pending from
/// `not_before_ms` on, or parked as `failed`. False when the claim was lost (nothing written).
pub async fn release_inbox<'e, E>(
    exec: E,
    id: &str,
    attempts: i64,
    parked: bool,
    error: &str,
    not_before_ms: i64,
) -> Result<bool, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let done = sqlx::query(
        "UPDATE chat_inbox SET status = $1, last_error = $2, claimed_by = NULL, not_before_unix_ms = $3 \
         WHERE id = $4 AND status = 'claimed' AND attempts = $5",
    )
    .bind(if parked { "failed" } else { "pending" })
    .bind(cut(error, ERROR_CHARS_MAX))
    .bind(not_before_ms)
    .bind(id)
    .bind(attempts)
    .execute(exec)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The inbox row of (platform, message id).
pub async fn inbox_status<'e, E>(
    exec: E,
    platform: &str,
    message_id: &str,
) -> Result<Option<InboxStatusRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(
        sqlx::query_as("SELECT id, status FROM chat_inbox WHERE platform = $1 AND message_id = $2")
            .bind(platform)
            .bind(message_id)
            .fetch_optional(exec)
            .await?,
    )
}

// --- chat outbox -----------------------------------------------------------------------------------------------

/// An outbound message to store.
#[derive(Clone, Debug)]
pub struct NewOutboxRow<'a> {
    /// Unique: a retry of the same work never stores (and sends) twice.
    pub dedupe_key: &'a str,
    pub platform: &'a str,
    pub address: &'a str,
    /// The message (JSON).
    pub payload: &'a str,
    /// The inbox row whose reply this is.
    pub inbox_id: Option<&'a str>,
    /// Telegram callback to answer first.
    pub callback_query_id: Option<&'a str>,
}

/// A claimed outbox row, read by column name.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ClaimedOutboxRow {
    pub id: String,
    pub platform: String,
    pub address: String,
    /// The message (JSON).
    pub payload: String,
    pub callback_query_id: Option<String>,
    /// Claims so far, this one included.
    pub attempts: i64,
}

/// The number of outbox rows with one status.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct StatusCountRow {
    pub status: String,
    pub n: i64,
}

/// A taken terminal message: its payload and sort key.
#[derive(sqlx::FromRow)]
struct TakenRow {
    seq_unix_ms: i64,
    dedupe_key: String,
    payload: String,
}

/// Stores a pending outbound message (nothing when its dedupe key exists); true when stored. Messages are sent in
/// (`now_ms`, `order`) order.
pub async fn insert_outbox<'e, E>(
    exec: E,
    new: &NewOutboxRow<'_>,
    now_ms: i64,
    order: i64,
) -> Result<bool, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let res = sqlx::query(
        "INSERT INTO chat_outbox (id, seq_unix_ms, platform, address, payload, dedupe_key, inbox_id, callback_query_id, status, \
         not_before_unix_ms, created_at_unix_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $9) \
         ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(now_ms * 1000 + order)
    .bind(new.platform)
    .bind(new.address)
    .bind(new.payload)
    .bind(new.dedupe_key)
    .bind(new.inbox_id)
    .bind(new.callback_query_id)
    .bind(now_ms)
    .execute(exec)
    .await?;
    Ok(res.rows_affected() == 1)
}

/// Claims deliverable outbox rows (pending and due, or claimed with an expired lease) until `lease_until_ms`, at
/// most `limit` and at most one per address: each the first undelivered row of an address with no message in hand
/// (a live claim) and none queued before it still undelivered (pending, even while it waits to be retried). So
/// several workers (and nodes) deliver to different users at once, each user's messages one at a time in order.
/// Exact on PostgreSQL too: the earliest undelivered row of an address is the only one claimable, and
/// `SKIP LOCKED` gives it to one worker. The pick is a materialized CTE: PostgreSQL may otherwise run a `LIMIT`ed
/// `SKIP LOCKED` subquery under `IN` more than once and claim more than `limit` rows (a test caught it). The scan
/// walks `chat_outbox_undelivered` in delivery order. Terminal
/// messages are never claimed: the terminal client takes them ([`take_terminal`]).
pub async fn claim_outbox<'e, E>(
    exec: E,
    dialect: Dialect,
    worker: &str,
    lease_until_ms: i64,
    now_ms: i64,
    limit: i64,
) -> Result<Vec<ClaimedOutboxRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let sql = format!(
        "WITH picked AS MATERIALIZED (SELECT a.id FROM chat_outbox a{} WHERE a.status IN ('pending', 'claimed') AND a.platform <> 'terminal' \
           AND ((a.status = 'pending' AND a.not_before_unix_ms <= $3) OR (a.status = 'claimed' AND a.claim_expires_at_unix_ms < $3)) \
           AND NOT EXISTS (SELECT 1 FROM chat_outbox b WHERE b.platform = a.platform AND b.address = a.address \
             AND b.id <> a.id AND b.status IN ('pending', 'claimed') \
             AND ((b.status = 'claimed' AND b.claim_expires_at_unix_ms >= $3) \
               OR b.seq_unix_ms < a.seq_unix_ms OR (b.seq_unix_ms = a.seq_unix_ms AND b.id < a.id))) \
           ORDER BY a.seq_unix_ms, a.id LIMIT $4{}) \
         UPDATE chat_outbox SET status = 'claimed', claimed_by = $1, claim_expires_at_unix_ms = $2, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM picked) \
         AND (status = 'pending' OR (status = 'claimed' AND claim_expires_at_unix_ms < $3)) \
         RETURNING id, platform, address, payload, callback_query_id, attempts",
        dialect.indexed_by("chat_outbox_undelivered"),
        dialect.skip_locked()
    );
    Ok(sqlx::query_as(&sql)
        .bind(worker)
        .bind(lease_until_ms)
        .bind(now_ms)
        .bind(limit.max(1))
        .fetch_all(exec)
        .await?)
}

pub async fn mark_outbox_sent<'e, E>(
    exec: E,
    id: &str,
    provider_message_id: Option<&str>,
    now_ms: i64,
) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "UPDATE chat_outbox SET status = 'sent', sent_at_unix_ms = $1, provider_message_id = $2, claimed_by = NULL WHERE id = $3",
    )
    .bind(now_ms)
    .bind(provider_message_id)
    .bind(id)
    .execute(exec)
    .await?;
    Ok(())
}

/// Records a failed delivery of a claimed row: back to pending from `not_before_ms` on, or parked as `failed`.
/// Fenced by the claim (`attempts` grows with every claim): a worker whose lease expired and whose row was claimed
/// again (and perhaps sent) changes nothing. False when the claim was lost.
pub async fn release_outbox<'e, E>(
    exec: E,
    id: &str,
    attempts: i64,
    parked: bool,
    error: &str,
    code: Option<i64>,
    not_before_ms: i64,
) -> Result<bool, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let done = sqlx::query(
        "UPDATE chat_outbox SET status = $1, last_error = $2, last_error_code = $3, not_before_unix_ms = $4, \
         claimed_by = NULL WHERE id = $5 AND status = 'claimed' AND attempts = $6",
    )
    .bind(if parked { "failed" } else { "pending" })
    .bind(cut(error, ERROR_CHARS_MAX))
    .bind(code)
    .bind(not_before_ms)
    .bind(id)
    .bind(attempts)
    .execute(exec)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a platform delivery status on the message the platform knows as `provider_message_id`.
pub async fn record_delivery_status<'e, E>(
    exec: E,
    provider_message_id: &str,
    status: &str,
    code: Option<i64>,
    error: Option<&str>,
) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "UPDATE chat_outbox SET delivery_status = $1, last_error_code = COALESCE($2, last_error_code), \
         last_error = COALESCE($3, last_error) WHERE provider_message_id = $4",
    )
    .bind(cut(status, DELIVERY_STATUS_CHARS_MAX))
    .bind(code)
    .bind(error.map(|e| cut(e, ERROR_CHARS_MAX)))
    .bind(provider_message_id)
    .execute(exec)
    .await?;
    Ok(())
}

/// The payloads (JSON) of the replies to one inbox row, in order.
pub async fn reply_payloads<'e, E>(exec: E, inbox_id: &str) -> Result<Vec<String>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_scalar(
        "SELECT payload FROM chat_outbox WHERE inbox_id = $1 ORDER BY seq_unix_ms, dedupe_key LIMIT $2",
    )
    .bind(inbox_id)
    .bind(REPLIES_MAX)
    .fetch_all(exec)
    .await?)
}

/// The payload (JSON) of the outbound message with this dedupe key, if one was queued.
pub async fn outbox_payload<'e, E>(exec: E, dedupe_key: &str) -> Result<Option<String>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(
        sqlx::query_scalar("SELECT payload FROM chat_outbox WHERE dedupe_key = $1")
            .bind(dedupe_key)
            .fetch_optional(exec)
            .await?,
    )
}

/// How many outbound messages have a dedupe key starting with `prefix`, which must hold no `%` or `_`.
pub async fn count_outbox_prefix<'e, E>(exec: E, prefix: &str) -> Result<i64, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    if prefix.contains(['%', '_', '\\']) {
        return Err(StoreError::Corrupt(format!(
            "outbox key prefix {prefix:?} holds a LIKE wildcard"
        )));
    }
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM chat_outbox WHERE dedupe_key LIKE $1")
            .bind(format!("{prefix}%"))
            .fetch_one(exec)
            .await?,
    )
}

/// Takes (marks sent and returns the payloads of) at most `limit` pending terminal messages for `address`, oldest
/// first; `except_inbox` leaves the replies of that inbox row alone.
pub async fn take_terminal<'e, E>(
    exec: E,
    address: &str,
    except_inbox: Option<&str>,
    limit: i64,
    now_ms: i64,
) -> Result<Vec<String>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    // One statement: on SQLite a transaction that reads and then writes fails at once (SQLITE_BUSY) when another
    // connection writes meanwhile; on PostgreSQL the `status` check is re-read under the row lock, so two pollers
    // never take the same message.
    let mut taken: Vec<TakenRow> = sqlx::query_as(
        "UPDATE chat_outbox SET status = 'sent', sent_at_unix_ms = $1 \
         WHERE status = 'pending' AND id IN (SELECT id FROM chat_outbox WHERE platform = 'terminal' \
           AND address = $2 AND status = 'pending' AND ($3 = '' OR inbox_id IS NULL OR inbox_id <> $3) \
           ORDER BY seq_unix_ms, dedupe_key LIMIT $4) \
         RETURNING payload, seq_unix_ms, dedupe_key",
    )
    .bind(now_ms)
    .bind(address)
    .bind(except_inbox.unwrap_or(""))
    .bind(limit)
    .fetch_all(exec)
    .await?;
    // RETURNING does not keep the subquery's order.
    taken.sort_by(|a, b| (a.seq_unix_ms, &a.dedupe_key).cmp(&(b.seq_unix_ms, &b.dedupe_key)));
    Ok(taken.into_iter().map(|t| t.payload).collect())
}

/// Marks the terminal replies of one inbox row sent.
pub async fn mark_inbox_replies_sent<'e, E>(exec: E, inbox_id: &str, now_ms: i64) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "UPDATE chat_outbox SET status = 'sent', sent_at_unix_ms = $1 WHERE inbox_id = $2 AND platform = 'terminal'",
    )
    .bind(now_ms)
    .bind(inbox_id)
    .execute(exec)
    .await?;
    Ok(())
}

/// Outbox rows by status, in status order.
pub async fn outbox_counts<'e, E>(exec: E) -> Result<Vec<StatusCountRow>, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    Ok(
        sqlx::query_as("SELECT status, COUNT(*) AS n FROM chat_outbox GROUP BY status ORDER BY status")
            .fetch_all(exec)
            .await?,
    )
}

// --- cursors ---------------------------------------------------------------------------------------------------

/// A cursor's position; 0 for a new cursor.
pub async fn cursor<'e, E>(exec: E, name: &str) -> Result<i64, StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    let position: Option<i64> = sqlx::query_scalar("SELECT position FROM chat_cursors WHERE name = $1")
        .bind(name)
        .fetch_optional(exec)
        .await?;
    Ok(position.unwrap_or(0))
}

/// Moves a cursor forward to `position` (never back).
pub async fn advance_cursor<'e, E>(exec: E, name: &str, position: i64, now_ms: i64) -> Result<(), StoreError>
where
    E: Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO chat_cursors (name, position, updated_at_unix_ms) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at_unix_ms = excluded.updated_at_unix_ms \
         WHERE chat_cursors.position < excluded.position",
    )
    .bind(name)
    .bind(position)
    .bind(now_ms)
    .execute(exec)
    .await?;
    Ok(())
}
