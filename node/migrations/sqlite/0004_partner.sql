-- Partner API (owner: node/src/partner). Same shape as postgres/0004_partner.sql.
-- Timestamps are BIGINT unix milliseconds; ids are TEXT; JSON documents are TEXT.

-- Request signatures already accepted, so that a replay within the signature's validity window is refused.
-- Shared by every node process on the same database. Rows expire when the signature would be too old anyway.
CREATE TABLE partner_signature_replay (
    replay_key TEXT PRIMARY KEY,
    keyid TEXT NOT NULL,
    expires_at_unix_ms BIGINT NOT NULL
);
CREATE INDEX partner_signature_replay_expiry ON partner_signature_replay (expires_at_unix_ms);

-- What a partner is told, in order: the source of GET /v1/partner/events?after= and of webhooks.
CREATE TABLE partner_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    partner_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    payout_id TEXT,
    -- The engine transition this event was made from (unique: following the feed twice adds nothing).
    source_key TEXT UNIQUE,
    payload TEXT NOT NULL,
    created_at_unix_ms BIGINT NOT NULL
);
CREATE INDEX partner_events_partner ON partner_events (partner_id, seq);

-- Outbound webhook deliveries: a durable queue. pending -> delivering -> delivered | failed (parked, visible to
-- the operator, re-queued by hand). Never deleted by the worker.
CREATE TABLE partner_webhook_deliveries (
    id TEXT PRIMARY KEY,
    partner_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    url TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'delivering', 'delivered', 'failed')),
    attempts BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    next_attempt_at_unix_ms BIGINT NOT NULL,
    claimed_by TEXT,
    claim_expires_at_unix_ms BIGINT,
    last_status_code BIGINT,
    last_error TEXT,
    created_at_unix_ms BIGINT NOT NULL,
    updated_at_unix_ms BIGINT NOT NULL,
    delivered_at_unix_ms BIGINT,
    UNIQUE (partner_id, event_id)
);
CREATE INDEX partner_webhook_deliveries_due ON partner_webhook_deliveries (status, next_attempt_at_unix_ms);

-- Named cursors and leases of the partner module's background followers (e.g. the engine transition feed).
CREATE TABLE partner_cursors (
    name TEXT PRIMARY KEY,
    cursor_value TEXT NOT NULL,
    lease_owner TEXT,
    lease_expires_at_unix_ms BIGINT,
    updated_at_unix_ms BIGINT NOT NULL
);

-- What a partner did with a payout through the API (accept / complete / fail), with the reference it gave.
CREATE TABLE partner_payout_actions (
    id TEXT PRIMARY KEY,
    partner_id TEXT NOT NULL,
    payout_id TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('accept', 'complete', 'fail')),
    reference TEXT,
    reason TEXT,
    created_at_unix_ms BIGINT NOT NULL
);
CREATE INDEX partner_payout_actions_payout ON partner_payout_actions (payout_id, created_at_unix_ms);
