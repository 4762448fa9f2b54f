-- Chat bridge (owner: node/src/chat). Same shape as postgres/0003_chat.sql.
-- Times are BIGINT unix ms; JSON documents are TEXT.

-- A chat user on one platform, and the engine user it is (custodial wallet).
CREATE TABLE chat_identities (
    platform TEXT NOT NULL,
    user_key TEXT NOT NULL,
    address TEXT NOT NULL,
    phone_e164 TEXT,
    display_name TEXT,
    lang TEXT NOT NULL DEFAULT 'en',
    engine_user_id TEXT,
    wallet_address TEXT,
    created_at_unix_ms BIGINT NOT NULL,
    updated_at_unix_ms BIGINT NOT NULL,
    PRIMARY KEY (platform, user_key)
);
CREATE INDEX chat_identities_phone ON chat_identities (phone_e164);
CREATE INDEX chat_identities_engine_user ON chat_identities (engine_user_id);

-- Conversation state per chat user (what is being collected, the pending quote).
CREATE TABLE chat_conversations (
    platform TEXT NOT NULL,
    user_key TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at_unix_ms BIGINT NOT NULL,
    PRIMARY KEY (platform, user_key)
);

-- Every inbound message, stored before the webhook is acknowledged. (platform, message_id) is the dedupe key:
-- a redelivered webhook finds its row and acts on nothing.
CREATE TABLE chat_inbox (
    id TEXT PRIMARY KEY,
    platform TEXT NOT NULL,
    message_id TEXT NOT NULL,
    user_key TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'claimed', 'done', 'failed')),
    claimed_by TEXT,
    claim_expires_at_unix_ms BIGINT,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    not_before_unix_ms BIGINT NOT NULL DEFAULT 0,
    received_at_unix_ms BIGINT NOT NULL,
    processed_at_unix_ms BIGINT,
    UNIQUE (platform, message_id)
);
CREATE INDEX chat_inbox_queue ON chat_inbox (status, received_at_unix_ms);
CREATE INDEX chat_inbox_user ON chat_inbox (platform, user_key, status);

-- Every outbound message, stored before it is sent and delivered by a worker with retries; errors are recorded.
CREATE TABLE chat_outbox (
    id TEXT PRIMARY KEY,
    seq_unix_ms BIGINT NOT NULL,
    platform TEXT NOT NULL,
    address TEXT NOT NULL,
    payload TEXT NOT NULL,
    dedupe_key TEXT NOT NULL UNIQUE,
    inbox_id TEXT,
    callback_query_id TEXT,
    status TEXT NOT NULL CHECK (status IN ('pending', 'claimed', 'sent', 'failed')),
    claimed_by TEXT,
    claim_expires_at_unix_ms BIGINT,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    last_error_code BIGINT,
    provider_message_id TEXT,
    delivery_status TEXT,
    not_before_unix_ms BIGINT NOT NULL,
    created_at_unix_ms BIGINT NOT NULL,
    sent_at_unix_ms BIGINT
);
CREATE INDEX chat_outbox_queue ON chat_outbox (status, not_before_unix_ms);
CREATE INDEX chat_outbox_address ON chat_outbox (platform, address, status);
CREATE INDEX chat_outbox_inbox ON chat_outbox (inbox_id);
CREATE INDEX chat_outbox_provider ON chat_outbox (provider_message_id);

-- Positions in feeds the chat follows (the engine's transition feed for notifications).
CREATE TABLE chat_cursors (
    name TEXT PRIMARY KEY,
    position BIGINT NOT NULL,
    updated_at_unix_ms BIGINT NOT NULL
);
