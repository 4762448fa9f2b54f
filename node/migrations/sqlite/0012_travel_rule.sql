-- The travel rule (owner: node/src/engine/travel_rule.rs): the IVMS101 payload (JSON) of a remittance at or above
-- the threshold, passed to its payout partner; NULL below it.
ALTER TABLE remittances ADD COLUMN travel_rule TEXT;
