-- Escrow v2: a remittance's terms bind its partner's settlement address and EVM signer (the sender signs them);
-- the escrow's registry only decides whether new deposits to a partner are accepted.

-- A partner's EVM signer (an EOA or ERC-1271 contract): its EIP-712 Decline signature lets the sender be refunded
-- before expiry. NULL: the settlement address is the signer.
ALTER TABLE partners ADD COLUMN signer_address TEXT;

-- The settlement address and partner signer in the remittance's terms, as signed. NULL only for P2P transfers,
-- which do not use the escrow.
ALTER TABLE remittances ADD COLUMN settlement_address TEXT;
ALTER TABLE remittances ADD COLUMN partner_signer TEXT;

-- The outbox gains the 'cancel' job kind (the escrow's cancel: a refund before expiry with the partner's Decline
-- signature). SQLite cannot alter a CHECK constraint: rebuild the table (same columns, indexes and data).
CREATE TABLE chain_jobs_new (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('deposit', 'release', 'refund', 'transfer', 'cancel')),
    remittance_id TEXT NOT NULL,
    payload TEXT NOT NULL,
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
INSERT INTO chain_jobs_new (id, kind, remittance_id, payload, status, claimed_by, claim_expires_at_unix_ms, tx_id,
    attempts, last_error, not_before_unix_ms, created_at_unix_ms, updated_at_unix_ms)
    SELECT id, kind, remittance_id, payload, status, claimed_by, claim_expires_at_unix_ms, tx_id, attempts, last_error,
    not_before_unix_ms, created_at_unix_ms, updated_at_unix_ms FROM chain_jobs;
DROP TABLE chain_jobs;
ALTER TABLE chain_jobs_new RENAME TO chain_jobs;
CREATE INDEX chain_jobs_queue ON chain_jobs (status, kind, created_at_unix_ms);
CREATE INDEX chain_jobs_tx ON chain_jobs (tx_id);
