-- P2P transfers straight into a Remesa wallet (payout method remesa_wallet): no partner (partner_id 0), no FX.
-- The quote is bound to the recipient's phone; the remittance records the recipient's custodial address, the
-- EIP-3009 TransferWithAuthorization is sent to the token by the chain outbox (chain_jobs.kind = 'transfer').
ALTER TABLE quotes ADD COLUMN recipient_phone TEXT;
ALTER TABLE remittances ADD COLUMN recipient_address TEXT;

-- The outbox gains the 'transfer' job kind. SQLite cannot alter a CHECK constraint: rebuild the table (same
-- columns, indexes and data; nothing references it).
CREATE TABLE chain_jobs_new (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('deposit', 'release', 'refund', 'transfer')),
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
