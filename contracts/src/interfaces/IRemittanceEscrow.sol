// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title Remesa remittance escrow (v3: one Merkle root per deposit batch)
/// @notice Locks a dollar stablecoin (USDC or any EIP-3009 token) for one remittance until the cash-out partner bound
///         in its terms proves the recipient was paid (the preimage of the claim hash), or returns it to the sender:
///         after expiry by anyone, or before expiry with the partner's signed "not paid, will not pay" (cancel).
///         Nobody, the owner included, can send locked coins anywhere else: the partner's settlement address is
///         part of the terms the sender signed, and the registry only decides whether new deposits are accepted.
///
/// Remittance id = terms hash = the EIP-3009 nonce the sender signs:
///     id = keccak256(abi.encode(address(escrow), t.sender, t.amount, t.partnerId, t.expiry, t.settlement,
///                               t.partnerSigner, t.claimHash))
/// Claim hash: claimHash = keccak256(abi.encodePacked(preimage)), preimage a bytes32. Remesa's preimage is a secret
///     random salt of 16 bytes followed by the pickup code's ASCII, right-padded with zero bytes, so the claim hash
///     cannot be searched from the code alone; the release transaction's calldata reveals it (the code is spent).
///
/// Storage: one word per deposit batch, not one per remittance. A batch of n items (n <= MAX_BATCH) stores
///     root => n << 248 | refunded bits << 64 | exited bits,
/// where root is the Merkle root of the batch's leaves: leaf i = the id of item i when it was deposited, zero when it
///     was skipped, zero-padded to the next power of two; inner node = keccak256(left ‖ right). A batch of one is its
///     id. The `Deposited(root, leaves)` event publishes the leaves, so anyone can build any proof from the logs.
/// An exit (release, refund, cancel) names the leaf index and carries the sibling hashes (leaf level first); the
///     proof's depth must be the batch's (ceil(log2 n)) and the index below n, so every deposited remittance has
///     exactly one (root, index) and so exactly one exit bit. Ids are unique across batches because the token's
///     EIP-3009 nonce (the id) is usable once per sender.
interface IRemittanceEscrow {
    /// The terms of one remittance. Hashing them gives its id.
    struct Terms {
        address sender; // who signed the authorization; refunds go here
        uint256 amount; // token base units, at most type(uint96).max
        uint64 partnerId; // cash-out partner (registry key: whether it accepts new deposits)
        uint64 expiry; // unix seconds: releases before it, refunds at or after it
        address settlement; // where a release pays (bound here, never looked up at release time)
        address partnerSigner; // EOA or ERC-1271 contract whose EIP-712 Decline signature allows a cancel
        bytes32 claimHash; // keccak256(abi.encodePacked(preimage))
    }

    /// An EIP-3009 ReceiveWithAuthorization signature over (from=sender, to=escrow, value=amount,
    /// validAfter, validBefore, nonce=id).
    struct Authorization {
        uint256 validAfter;
        uint256 validBefore;
        uint8 v;
        bytes32 r;
        bytes32 s;
    }

    /// One refund: the terms and where the remittance sits in its deposit batch.
    struct ExitItem {
        Terms terms;
        uint256 index; // leaf index in its deposit batch
        bytes32[] proof; // sibling hashes, leaf level first
    }

    enum Status {
        None,
        Locked,
        Released,
        Refunded
    }

    /// Why a batch skipped an item instead of reverting the whole batch.
    enum SkipReason {
        WrongState, // already released or refunded
        AuthorizationFailed, // the token refused receiveWithAuthorization (detail: its revert data)
        BadPreimage, // keccak256(preimage) != claimHash (only where the claim hash is sent)
        NotExpired, // refund before expiry
        InvalidTerms, // zero sender or amount, lock time out of bounds, partner not accepting these terms
        Expired, // release at or after expiry (the sender may refund)
        TransferFailed, // the token refused the payout (detail: its revert data); the item stays Locked
        BadProof // not a leaf of a deposited batch at that index (in a packed release: or a wrong preimage)
    }

    /// A deposit batch (or a single deposit, root = id): its leaves in item order, zero where an item was skipped,
    /// and per leaf `uint256(uint160(sender)) << 96 | amount` (zero where skipped), so the chain alone tells who
    /// locked how much under which id.
    event Deposited(bytes32 indexed root, bytes32[] leaves, uint256[] senderAmounts);
    /// Leaves of batch `root` released to partner `partnerId` by this transaction (bit i = leaf i); a `Settled`
    /// event follows with the payout.
    event Released(bytes32 indexed root, uint64 indexed partnerId, uint256 bits);
    /// One token transfer to a settlement address for a run of releases.
    event Settled(uint64 indexed partnerId, address indexed settlement, uint256 amount, uint256 count);
    event Refunded(bytes32 indexed id, address indexed sender, uint256 amount);
    /// Refunded before expiry with the partner's Decline signature (a `Refunded` event follows).
    event Canceled(bytes32 indexed id, uint64 indexed partnerId);
    /// `detail` is the token's revert data where the token refused (AuthorizationFailed, TransferFailed), else empty.
    event Skipped(bytes32 indexed id, SkipReason reason, bytes detail);
    event PartnerSet(uint64 indexed partnerId, address settlement, address signer);
    event PartnerRemoved(uint64 indexed partnerId);
    event GuardianSet(address guardian);

    error InvalidTerms();
    /// The partner does not accept new deposits with this settlement address and signer.
    error PartnerNotAccepting(uint64 partnerId);
    /// The expiry is not within [now + minLockSeconds, now + maxLockSeconds].
    error LockTimeOutOfBounds(uint64 expiry, uint256 earliest, uint256 latest);
    error WrongState(bytes32 id, Status status);
    /// `id` is not the leaf at that index of a deposited batch (unknown root, index out of range, wrong depth).
    error BadProof(bytes32 id);
    error BadPreimage(bytes32 id);
    error NotExpired(bytes32 id, uint64 expiry);
    error Expired(bytes32 id, uint64 expiry);
    error BadDeclineSignature(bytes32 id);
    error BatchTooLarge(uint256 size, uint256 max);
    /// A packed batch's bytes do not follow its layout (lengths, counts, ascending indexes).
    error MalformedBatch();
    /// The transaction's gas cannot cover item `index` under its per-item cap: raise the gas limit.
    error InsufficientGas(uint256 index);
    error NotGuardian();
    error ZeroAddress();
    /// The token address holds no code: every call to it would "succeed" and move nothing.
    error TokenHasNoCode(address token);
    /// A settlement address may not be zero, the escrow or the token.
    error InvalidSettlement(address settlement);
    error InvalidLockBounds(uint64 minLockSeconds, uint64 maxLockSeconds);
    error RenounceDisabled();

    /// Largest batch accepted by the batch functions (deposits per batch; releases per transaction).
    function MAX_BATCH() external view returns (uint256);

    /// Gas each batch item's token call may use (`receiveWithAuthorization`, a payout `transfer`); an item that
    /// needs more is skipped, the others go through.
    function ITEM_GAS() external view returns (uint256);

    /// EIP-712 type of the partner's cancel consent: `Decline(bytes32 id)` in this escrow's domain.
    function DECLINE_TYPEHASH() external view returns (bytes32);

    function token() external view returns (address);

    /// Shortest and longest lock: a deposit's expiry must be within [now + min, now + max].
    function minLockSeconds() external view returns (uint64);

    function maxLockSeconds() external view returns (uint64);

    /// The id of a set of terms (also the EIP-3009 nonce to sign).
    function remittanceId(Terms calldata t) external view returns (bytes32);

    /// The Merkle root of a deposit batch's leaves (zero-padded to the next power of two).
    function rootOf(bytes32[] calldata leaves) external pure returns (bytes32);

    /// A deposit batch: its item count (zero when `root` is unknown), its exited and its refunded leaves (bit i =
    /// leaf i; an exited leaf that is not refunded was released).
    function batchOf(bytes32 root) external view returns (uint256 n, uint256 exitedBits, uint256 refundedBits);

    /// The status of remittance `id` at `index` of its deposit batch with `proof`; None when the proof does not
    /// place it in a deposited batch.
    function statusOf(bytes32 id, uint256 index, bytes32[] calldata proof) external view returns (Status);

    /// keccak256(abi.encode(settlement, signer)) of a partner accepting deposits, zero when it accepts none.
    function partnerKey(uint64 partnerId) external view returns (bytes32);

    /// Whether a deposit with these partner terms would be accepted now.
    function partnerAccepts(uint64 partnerId, address settlement, address signer) external view returns (bool);

    /// The EIP-712 digest a partner signer signs to consent to the cancel of `id`.
    function declineDigest(bytes32 id) external view returns (bytes32);

    /// Owner only: new deposits to `partnerId` must name this settlement address and signer. Locked remittances
    /// keep the ones in their terms.
    function setPartner(uint64 partnerId, address settlement, address signer) external;

    /// Owner only: no new deposits to `partnerId`. Locked remittances still release, cancel and refund.
    function removePartner(uint64 partnerId) external;

    /// Owner only.
    function setGuardian(address guardian) external;

    /// Guardian or owner: stops new deposits. Exits (release, cancel, refund) are never paused, so a partner that
    /// paid can always be released before expiry, and a sender always refunded after it.
    function pause() external;

    /// Owner only.
    function unpause() external;

    /// Pulls `t.amount` from `t.sender` with receiveWithAuthorization (nonce = id) and locks it as a batch of one
    /// (root = id, index 0, empty proof). Reverts on failure.
    function deposit(Terms calldata t, Authorization calldata auth) external returns (bytes32 id);

    /// Deposits, packed in sections of one partner's terms each: [sections u8], then per section
    ///     [partnerId u64][settlement 20 B][partnerSigner 20 B][count u8], then count items of 144 B:
    ///     [sender 20 B][amount u96][expiry u40][claimHash 32 B][validAfter u40][validBefore u40][v u8][r 32 B][s 32 B]
    /// (integers big-endian; at most MAX_BATCH items in all). Every item is a leaf of one tree, in order. An item
    /// that cannot be deposited is skipped (Skipped) and gets a zero leaf. Stores the root of the leaves; returns how
    /// many were deposited and the root (zero when none was).
    function depositBatch(bytes calldata packed) external returns (uint256 deposited, bytes32 root);

    /// Anyone holding the preimage, before expiry: pays `t.settlement`. Reverts on failure.
    function release(Terms calldata t, bytes32 preimage, uint256 index, bytes32[] calldata proof) external;

    /// Releases grouped by deposit batch, packed: [groups u8], then per group
    ///     [partnerId u64][settlement 20 B][partnerSigner 20 B][m u8][proofLen u8],
    ///     m leaves of 70 B: [index u8][sender 20 B][amount u96][expiry u40][preimage 32 B] (strictly ascending index),
    ///     proofLen multiproof hashes of 32 B (the siblings not computable from the given leaves, level by level,
    ///     left to right; none when the group is the whole batch).
    /// The claim hash is not sent: it is keccak256(preimage), so a wrong preimage makes a wrong id and the group's
    /// proof fails (every leaf of the group skipped, BadProof). Consecutive groups with equal (partnerId, settlement)
    /// are paid with one token transfer; if the token refuses it, their leaves stay Locked (Skipped, TransferFailed).
    function releaseBatch(bytes calldata packed) external returns (uint256 released);

    /// Anyone, at or after expiry: returns the funds to the sender. Reverts on failure.
    function refund(Terms calldata t, uint256 index, bytes32[] calldata proof) external;

    /// Like refund for each item; items that cannot be refunded are skipped (a refused transfer stays Locked).
    function refundBatch(ExitItem[] calldata items) external returns (uint256 refunded);

    /// Anyone, before expiry, with the partner signer's EIP-712 `Decline(id)` signature (ECDSA or ERC-1271):
    /// returns the funds to the sender.
    function cancel(Terms calldata t, uint256 index, bytes32[] calldata proof, bytes calldata declineSignature) external;
}
