-- Compliance (owner: node/src/engine/limits.rs, node/src/store/compliance.rs).

-- A user's KYC tier: 0 is a phone number only; higher tiers need verified identity (issue 13). Limits apply per tier.
ALTER TABLE users ADD COLUMN kyc_tier BIGINT NOT NULL DEFAULT 0;

-- Every compliance decision (a limit refusal, later screening results, tier changes, holds): append-only, never
-- updated or deleted. `subject` is what the decision is about (a sender address, a remittance id); `actor` who made
-- it (`engine`, `operator`); `detail` is JSON.
CREATE TABLE compliance_events (
    id TEXT PRIMARY KEY,
    at_unix_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX compliance_events_at ON compliance_events (at_unix_ms, id);
CREATE INDEX compliance_events_subject ON compliance_events (subject, at_unix_ms);
