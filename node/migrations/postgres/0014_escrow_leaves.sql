-- The escrow's deposit batches (escrow v3), as the indexer applied them (owner: node/src/store/chain_index.rs):
-- every leaf of every `Deposited` event, with its sender and amount, so a release, refund or cancel can carry its
-- remittance's Merkle proof and a `Released(root, partner, bits)` event can be booked per remittance. A skipped
-- item's leaf is the zero id. Removed with the indexer's other rows when a reorg takes its block away.
CREATE TABLE escrow_leaves (
    cursor_name TEXT NOT NULL,
    root TEXT NOT NULL,
    leaf_index BIGINT NOT NULL,
    remittance_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    amount_base_units TEXT NOT NULL,
    block_number BIGINT NOT NULL,
    PRIMARY KEY (cursor_name, root, leaf_index)
);
CREATE INDEX escrow_leaves_remittance ON escrow_leaves (remittance_id);
CREATE INDEX escrow_leaves_block ON escrow_leaves (cursor_name, block_number);
