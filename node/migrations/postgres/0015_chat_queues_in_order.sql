-- The chat inbox's and outbox's unfinished rows in processing order (owner: node/src/store/chat.rs): a claim walks
-- one of these indexes from the oldest row and stops at the rows it takes, instead of sorting every pending row
-- (with its per-user check) on each claim, which grew with the queue.
CREATE INDEX chat_inbox_unfinished ON chat_inbox (received_at_unix_ms, id) WHERE status IN ('pending', 'claimed');
CREATE INDEX chat_outbox_undelivered ON chat_outbox (seq_unix_ms, id) WHERE status IN ('pending', 'claimed');
