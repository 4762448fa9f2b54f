-- Sanctions lists (owner: node/src/engine/screening.rs, node/src/store/sanctions.rs).

-- One row per list source (`ofac_sdn`, `un_consolidated`): the parsed entries as JSON, so every node serving this
-- database (and this one after a restart) screens against the same list. Replaced whole by a load; a refused file
-- never reaches this table.
CREATE TABLE sanctions_lists (
    source TEXT PRIMARY KEY,
    list_date TEXT,
    entry_count BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    entries_json TEXT NOT NULL,
    loaded_at_unix_ms BIGINT NOT NULL,
    loaded_by TEXT NOT NULL
);
