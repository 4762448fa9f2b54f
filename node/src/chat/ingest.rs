//! Group commit of inbound messages ([`crate::store::group_commit`]): a webhook's message is durable before the
//! webhook is acknowledged, but many webhooks share one transaction (one fsync). A full commit queue answers
//! [`crate::store::StoreError::Busy`], which the webhook turns into 503 with `Retry-After` (the platform
//! redelivers).

use crate::store::StoreError;
use crate::store::chat::{self as tables, NewInboxRow};
use crate::store::group_commit::{BoxFut, GroupCommit, Op};

/// One message to store.
#[derive(Debug, Clone)]
pub struct InboxInsert {
    pub platform: String,
    pub message_id: String,
    pub user_key: String,
    pub payload: String,
}

/// Inserts an inbound message; `None` when (platform, message_id) was stored before (a redelivery, also within the
/// same group).
#[derive(Debug, Default)]
pub struct InboxOp;

impl Op for InboxOp {
    type Item = InboxInsert;
    type Out = Option<String>;
    const NAME: &'static str = "chat_inbox";

    fn apply<'a>(
        &'a self,
        conn: &'a mut sqlx::AnyConnection,
        row: &'a InboxInsert,
        now_ms: i64,
    ) -> BoxFut<'a, Result<Option<String>, StoreError>> {
        Box::pin(async move {
            let new = NewInboxRow {
                platform: &row.platform,
                message_id: &row.message_id,
                user_key: &row.user_key,
                payload: &row.payload,
            };
            tables::insert_inbox(conn, &new, now_ms).await
        })
    }

    /// The whole group in one multi-row insert (per 128 messages).
    fn apply_group<'a>(
        &'a self,
        conn: &'a mut sqlx::AnyConnection,
        items: Vec<&'a InboxInsert>,
        now_ms: i64,
    ) -> BoxFut<'a, Result<Vec<Option<String>>, StoreError>> {
        Box::pin(async move {
            let rows: Vec<NewInboxRow<'_>> = items
                .iter()
                .map(|row| NewInboxRow {
                    platform: &row.platform,
                    message_id: &row.message_id,
                    user_key: &row.user_key,
                    payload: &row.payload,
                })
                .collect();
            tables::insert_inbox_many(conn, &rows, now_ms).await
        })
    }
}

/// The inbox's committer.
pub type InboxCommit = GroupCommit<InboxOp>;
