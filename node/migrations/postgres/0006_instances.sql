-- Crash recovery without waiting for leases: every serving process registers under its node name (unique among
-- the processes running at once: `REMESA_NODE_NAME`, default host:port) with a fresh start id. Claims carry the
-- start id of the process that made them; when a node starts again under the same name, the claims of its
-- previous start id are dead at once (see store::instances).
CREATE TABLE node_instances (
    node_name TEXT PRIMARY KEY,
    start_id TEXT NOT NULL,
    started_at_unix_ms BIGINT NOT NULL
);

-- The start id of the process running the request of an unfinished idempotency key (status_code IS NULL).
ALTER TABLE idempotency_keys ADD COLUMN owner TEXT;
