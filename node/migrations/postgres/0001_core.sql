-- Store and engine core (owner: node/src/store, node/src/engine). Same shape as sqlite/0001_core.sql.
-- Integers BIGINT, amounts: BIGINT base/minor units or decimal TEXT, timestamps BIGINT unix ms, ids TEXT.

-- Named counters (derivation indexes, the transition feed's sequence). Incrementing a row serialises writers.
CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value) VALUES ('transition_seq', 0), ('derivation_index', 0), ('ledger_entry', 0);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    external_id TEXT NOT NULL,
    phone TEXT,
    display_name TEXT,
    lang TEXT,
    custody TEXT NOT NULL CHECK (custody IN ('custodial', 'self')),
    derivation_index BIGINT,
    address TEXT NOT NULL,
    created_at_unix_ms BIGINT NOT NULL,
    UNIQUE (channel, external_id)
);
CREATE UNIQUE INDEX users_address ON users (address);
CREATE UNIQUE INDEX users_derivation ON users (derivation_index);
CREATE INDEX users_phone ON users (phone);

CREATE TABLE partners (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    countries TEXT NOT NULL,
    currencies TEXT NOT NULL,
    payout_methods TEXT NOT NULL,
    public_key TEXT NOT NULL,
    webhook_url TEXT,
    settlement_address TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
    created_at_unix_ms BIGINT NOT NULL,
    updated_at_unix_ms BIGINT NOT NULL
);

-- Posted rates: one row per partner, corridor and payout method. Rate = payout currency per 1 token (USD).
CREATE TABLE partner_rates (
    partner_id BIGINT NOT NULL REFERENCES partners (id),
    country TEXT NOT NULL,
    currency TEXT NOT NULL,
    payout_method TEXT NOT NULL,
    rate TEXT NOT NULL,
    fee_fixed TEXT NOT NULL,
    fee_bps BIGINT NOT NULL,
    send_min TEXT NOT NULL,
    send_max TEXT NOT NULL,
    valid_until_unix_ms BIGINT NOT NULL,
    updated_at_unix_ms BIGINT NOT NULL,
    PRIMARY KEY (partner_id, country, currency, payout_method)
);
CREATE INDEX partner_rates_corridor ON partner_rates (country, currency, payout_method);

-- Mid-market reference rates (payout currency per 1 USD) for the all-in cost shown in quotes.
CREATE TABLE mid_market_rates (
    currency TEXT PRIMARY KEY,
    rate TEXT NOT NULL,
    updated_at_unix_ms BIGINT NOT NULL
);

CREATE TABLE quotes (
    id TEXT PRIMARY KEY,
    partner_id BIGINT NOT NULL,
    country TEXT NOT NULL,
    currency TEXT NOT NULL,
    payout_method TEXT NOT NULL,
    send_amount_base_units BIGINT NOT NULL,
    fee_base_units BIGINT NOT NULL,
    total_base_units BIGINT NOT NULL,
    token_decimals BIGINT NOT NULL,
    rate TEXT NOT NULL,
    mid_market_rate TEXT,
    payout_amount_minor BIGINT NOT NULL,
    body TEXT NOT NULL,
    expires_at_unix_ms BIGINT NOT NULL,
    used_by TEXT,
    created_at_unix_ms BIGINT NOT NULL
);

CREATE TABLE remittances (
    id TEXT PRIMARY KEY,
    quote_id TEXT NOT NULL UNIQUE,
    idempotency_key TEXT NOT NULL UNIQUE,
    sender_user_id TEXT,
    sender_address TEXT NOT NULL,
    custodial BIGINT NOT NULL,
    partner_id BIGINT NOT NULL,
    recipient_phone TEXT NOT NULL,
    recipient_name TEXT NOT NULL,
    recipient_account TEXT,
    country TEXT NOT NULL,
    currency TEXT NOT NULL,
    payout_method TEXT NOT NULL,
    send_amount_base_units BIGINT NOT NULL,
    fee_base_units BIGINT NOT NULL,
    total_base_units BIGINT NOT NULL,
    payout_amount_minor BIGINT NOT NULL,
    rate TEXT NOT NULL,
    expiry_unix_s BIGINT NOT NULL,
    claim_hash TEXT NOT NULL,
    pickup_code TEXT NOT NULL,
    auth_valid_after BIGINT,
    auth_valid_before BIGINT,
    auth_signature TEXT,
    state TEXT NOT NULL,
    payout_reference TEXT,
    failure_reason TEXT,
    lock_tx_hash TEXT,
    release_tx_hash TEXT,
    refund_tx_hash TEXT,
    created_at_unix_ms BIGINT NOT NULL,
    updated_at_unix_ms BIGINT NOT NULL
);
CREATE INDEX remittances_state ON remittances (state);
CREATE INDEX remittances_sender ON remittances (sender_address, created_at_unix_ms);
CREATE INDEX remittances_partner ON remittances (partner_id, state);
CREATE INDEX remittances_created ON remittances (created_at_unix_ms, id);

-- The append-only feed of every state change: THE bus chat notifications and partner webhooks read.
-- seq is taken from counters('transition_seq') inside the writing transaction, so it grows in commit order.
CREATE TABLE remittance_transitions (
    seq BIGINT PRIMARY KEY,
    remittance_id TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    cause TEXT NOT NULL,
    detail TEXT NOT NULL,
    at_unix_ms BIGINT NOT NULL
);
CREATE INDEX remittance_transitions_remittance ON remittance_transitions (remittance_id, seq);

-- Double-entry ledger: an entry's postings sum to zero. Amounts are token base units (signed).
CREATE TABLE ledger_entries (
    id BIGINT PRIMARY KEY,
    remittance_id TEXT,
    kind TEXT NOT NULL,
    source TEXT NOT NULL UNIQUE,
    block_number BIGINT,
    reversed_by BIGINT,
    at_unix_ms BIGINT NOT NULL
);
CREATE TABLE ledger_postings (
    entry_id BIGINT NOT NULL REFERENCES ledger_entries (id),
    account TEXT NOT NULL,
    amount_base_units BIGINT NOT NULL,
    PRIMARY KEY (entry_id, account)
);
CREATE INDEX ledger_postings_account ON ledger_postings (account);

CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status_code BIGINT,
    response_body TEXT,
    created_at_unix_ms BIGINT NOT NULL,
    PRIMARY KEY (scope, idem_key)
);

-- One row per `Settled` event: one token transfer to a partner's settlement address for a run of releases.
CREATE TABLE settlements (
    event_id TEXT PRIMARY KEY,
    partner_id BIGINT NOT NULL,
    settlement_address TEXT NOT NULL,
    amount_base_units BIGINT NOT NULL,
    release_count BIGINT NOT NULL,
    tx_hash TEXT NOT NULL,
    block_number BIGINT NOT NULL,
    at_unix_ms BIGINT NOT NULL
);
CREATE INDEX settlements_partner ON settlements (partner_id, block_number);
