-- Error-resolution cases (owner: node/src/engine/cases.rs, node/src/store/cases.rs): a sender reports a problem
-- with a transfer within 180 days; the operator answers within 90 (Regulation E's error resolution, as the model).
CREATE TABLE error_cases (
    id TEXT PRIMARY KEY,
    remittance_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    description TEXT NOT NULL,
    status TEXT NOT NULL,
    opened_at_unix_ms BIGINT NOT NULL,
    answer_due_unix_ms BIGINT NOT NULL,
    resolution TEXT,
    resolved_by TEXT,
    resolved_at_unix_ms BIGINT
);
CREATE INDEX error_cases_status ON error_cases (status, opened_at_unix_ms);
CREATE INDEX error_cases_remittance ON error_cases (remittance_id);
