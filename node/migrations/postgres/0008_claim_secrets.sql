-- Pickup codes are no longer stored. Each remittance's release secret (a 128-bit salt and the pickup code) is
-- derived from the node keystore's claim key and the remittance's quote id (node/src/engine/claims.rs); for cash
-- pickups the row keeps only a keyed hash of the code (HMAC under the claim key), which counter agents look codes
-- up by. Remittances created before this migration had unsalted claim hashes and stored codes: they can no longer
-- be paid by code and are refunded to their senders at expiry (drain them before upgrading).
ALTER TABLE remittances ADD COLUMN pickup_lookup TEXT;
CREATE INDEX remittances_pickup_lookup ON remittances (pickup_lookup);
-- A recipient who lost a code asks in chat: their collectible remittances are found by phone.
CREATE INDEX remittances_recipient_phone ON remittances (recipient_phone);
ALTER TABLE remittances DROP COLUMN pickup_code;
