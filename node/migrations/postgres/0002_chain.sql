-- Chain outbox and indexer (owner: node/src/chain). Same shape as sqlite/0002_chain.sql.
-- Integers are BIGINT, amounts and fees are decimal TEXT (wei / base units), hashes and bytes are 0x-hex TEXT.

-- Work the engine asks the chain to do. Enqueued inside the engine's own transaction (transactional outbox).
CREATE TABLE chain_jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('deposit', 'release', 'refund')),
    remittance_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    -- pending -> claimed -> in_tx -> done | failed (claimed/in_tx fall back to pending when their tx is abandoned)
    status TEXT NOT NULL CHECK (status IN ('pending', 'claimed', 'in_tx', 'done', 'failed')),
    claimed_by TEXT,
    claim_expires_at_unix_ms BIGINT,
    tx_id TEXT,
    attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    not_before_unix_ms BIGINT NOT NULL,
    created_at_unix_ms BIGINT NOT NULL,
    updated_at_unix_ms BIGINT NOT NULL,
    UNIQUE (kind, remittance_id)
);
CREATE INDEX chain_jobs_queue ON chain_jobs (status, kind, created_at_unix_ms);
CREATE INDEX chain_jobs_tx ON chain_jobs (tx_id);

-- One row per nonce the node uses: the intent (kind, calldata, jobs) written before anything is broadcast.
CREATE TABLE chain_txs (
    id TEXT PRIMARY KEY,
    chain_id BIGINT NOT NULL,
    sender TEXT NOT NULL,
    nonce BIGINT NOT NULL,
    kind TEXT NOT NULL,
    to_address TEXT NOT NULL,
    calldata TEXT NOT NULL,
    gas_limit BIGINT NOT NULL,
    job_count BIGINT NOT NULL,
    -- signed (stored, maybe never broadcast) -> broadcast -> mined -> confirmed | reverted;
    -- dropped: the nonce was used by a transaction that is not ours; abandoned: rejected, nonce not used.
    status TEXT NOT NULL CHECK (status IN ('signed', 'broadcast', 'mined', 'confirmed', 'reverted', 'dropped', 'abandoned')),
    bumps BIGINT NOT NULL DEFAULT 0,
    broadcast_failures BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    mined_tx_hash TEXT,
    mined_block_number BIGINT,
    mined_block_hash TEXT,
    gas_used BIGINT,
    effective_gas_price_wei TEXT,
    created_at_unix_ms BIGINT NOT NULL,
    updated_at_unix_ms BIGINT NOT NULL
);
CREATE UNIQUE INDEX chain_txs_sender_nonce ON chain_txs (sender, nonce) WHERE status <> 'abandoned';
CREATE INDEX chain_txs_open ON chain_txs (sender, status);

-- Every signed version of a chain_txs row (the original and each fee bump, same nonce), stored before broadcast.
CREATE TABLE chain_tx_attempts (
    tx_hash TEXT PRIMARY KEY,
    tx_id TEXT NOT NULL REFERENCES chain_txs (id),
    attempt BIGINT NOT NULL,
    raw_tx TEXT NOT NULL,
    max_fee_per_gas_wei TEXT NOT NULL,
    max_priority_fee_per_gas_wei TEXT NOT NULL,
    created_at_unix_ms BIGINT NOT NULL,
    broadcast_at_unix_ms BIGINT,
    UNIQUE (tx_id, attempt)
);

-- Leases: one writer per sending key, one indexer, one refund keeper across processes sharing the database.
CREATE TABLE chain_leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    fencing BIGINT NOT NULL,
    expires_at_unix_ms BIGINT NOT NULL
);

-- Indexer cursor: the last block whose events were applied (number + hash).
CREATE TABLE chain_cursors (
    name TEXT PRIMARY KEY,
    block_number BIGINT NOT NULL,
    block_hash TEXT NOT NULL,
    updated_at_unix_ms BIGINT NOT NULL
);

-- Recent block hashes the indexer applied (a bounded window), to find the common ancestor after a reorg.
CREATE TABLE chain_blocks (
    cursor_name TEXT NOT NULL,
    block_number BIGINT NOT NULL,
    block_hash TEXT NOT NULL,
    PRIMARY KEY (cursor_name, block_number)
);

-- Events the indexer applied, so that a reorg can say exactly which ones it removed.
CREATE TABLE chain_events (
    id TEXT PRIMARY KEY,
    cursor_name TEXT NOT NULL,
    block_number BIGINT NOT NULL,
    block_hash TEXT NOT NULL,
    tx_hash TEXT NOT NULL,
    log_index BIGINT NOT NULL,
    kind TEXT NOT NULL,
    remittance_id TEXT,
    payload TEXT NOT NULL
);
CREATE INDEX chain_events_block ON chain_events (cursor_name, block_number);
CREATE INDEX chain_events_remittance ON chain_events (remittance_id);
