-- Customers' KYC (owner: node/src/engine/customers.rs, node/src/store/customers.rs).

-- The latest request of a user for a higher KYC tier (SEP-12 status, the fields given, the operator's note); the tier
-- in force is `users.kyc_tier`. One row per user, updated as the request moves; every change is also a compliance
-- event. `fields` is a JSON object of the parsed fields (personal data: readable by the operator API only).
CREATE TABLE customer_kyc (
    user_id TEXT PRIMARY KEY,
    requested_tier BIGINT NOT NULL,
    status TEXT NOT NULL,
    fields TEXT NOT NULL,
    note TEXT,
    updated_at_unix_ms BIGINT NOT NULL
);
CREATE INDEX customer_kyc_status ON customer_kyc (status, updated_at_unix_ms);
