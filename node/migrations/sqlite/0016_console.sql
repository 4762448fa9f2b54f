-- The web consoles (owner: node/src/engine/accounts.rs, node/src/store/console.rs): counter agents of a partner
-- (`/partner/`) and operators (`/ops/`). Passwords are argon2id PHC strings; a session is stored as the SHA-256 of
-- its token (the token itself lives only in the browser's cookie).
CREATE TABLE console_accounts (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('agent', 'operator')),
    partner_id BIGINT,
    display_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    created_at_unix_ms BIGINT NOT NULL,
    updated_at_unix_ms BIGINT NOT NULL,
    CHECK ((role = 'agent') = (partner_id IS NOT NULL))
);
CREATE INDEX console_accounts_partner ON console_accounts (partner_id, username);

CREATE TABLE console_sessions (
    token_hash TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES console_accounts (id),
    created_at_unix_ms BIGINT NOT NULL,
    expires_at_unix_ms BIGINT NOT NULL
);
CREATE INDEX console_sessions_account ON console_sessions (account_id);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at_unix_ms);

-- Failure counters over fixed windows: wrong passwords per username, wrong pickup codes per agent and per partner.
CREATE TABLE console_throttle (
    bucket TEXT PRIMARY KEY,
    window_start_unix_ms BIGINT NOT NULL,
    failures BIGINT NOT NULL
);

-- What people did in the consoles, append-only: sign-ins, payouts paid or reported, refused codes, resends. Never a
-- pickup code or a password.
CREATE TABLE console_audit (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    partner_id BIGINT,
    action TEXT NOT NULL,
    subject TEXT,
    detail TEXT,
    created_at_unix_ms BIGINT NOT NULL
);
CREATE INDEX console_audit_subject ON console_audit (subject, created_at_unix_ms);
CREATE INDEX console_audit_partner ON console_audit (partner_id, created_at_unix_ms);

-- The operator dashboard's "settled per hour" reads transitions by target state and time.
CREATE INDEX remittance_transitions_to_state ON remittance_transitions (to_state, at_unix_ms);
