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
-- signature).
ALTER TABLE chain_jobs DROP CONSTRAINT chain_jobs_kind_check;
ALTER TABLE chain_jobs ADD CONSTRAINT chain_jobs_kind_check
    CHECK (kind IN ('deposit', 'release', 'refund', 'transfer', 'cancel'));
