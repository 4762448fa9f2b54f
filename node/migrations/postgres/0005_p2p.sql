-- P2P transfers straight into a Remesa wallet (payout method remesa_wallet): no partner (partner_id 0), no FX.
-- The quote is bound to the recipient's phone; the remittance records the recipient's custodial address, the
-- EIP-3009 TransferWithAuthorization is sent to the token by the chain outbox (chain_jobs.kind = 'transfer').
ALTER TABLE quotes ADD COLUMN recipient_phone TEXT;
ALTER TABLE remittances ADD COLUMN recipient_address TEXT;

-- The outbox gains the 'transfer' job kind.
ALTER TABLE chain_jobs DROP CONSTRAINT chain_jobs_kind_check;
ALTER TABLE chain_jobs ADD CONSTRAINT chain_jobs_kind_check CHECK (kind IN ('deposit', 'release', 'refund', 'transfer'));
