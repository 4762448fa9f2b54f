// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title Remesa remittance escrow, v1 (the interface at the commit before v2; test fixture only)
/// @notice Locks a dollar stablecoin for one remittance until the assigned cash-out partner proves the recipient
///         was paid (the preimage of the claim hash, i.e. the recipient's pickup code), or refunds the sender after
///         expiry. Only `keccak256(terms)` and a one-byte state are stored per remittance; the terms travel as calldata.
///
/// Remittance id = terms hash = the EIP-3009 nonce the sender signs:
///     id = keccak256(abi.encode(address(escrow), t.sender, t.amount, t.partnerId, t.expiry, t.claimHash))
/// Claim hash: claimHash = keccak256(abi.encodePacked(preimage)), preimage a bytes32 (the pickup code's ASCII,
///     right-padded with zero bytes).
interface IRemittanceEscrowV1 {
    /// The terms of one remittance. Hashing them gives its id.
    struct Terms {
        address sender; // who signed the authorization; refunds go here
        uint256 amount; // token base units
        uint64 partnerId; // cash-out partner bound to the remittance (registry key)
        uint64 expiry; // unix seconds; refundable at or after this time
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

    struct DepositItem {
        Terms terms;
        Authorization auth;
    }

    struct ReleaseItem {
        Terms terms;
        bytes32 preimage;
    }

    enum Status {
        None,
        Locked,
        Released,
        Refunded
    }

    /// Why a batch skipped an item instead of reverting the whole batch.
    enum SkipReason {
        WrongState, // already deposited / released / refunded, or never deposited
        AuthorizationFailed, // the token refused receiveWithAuthorization (bad signature, used nonce, balance, window)
        BadPreimage, // keccak256(preimage) != claimHash
        NotExpired, // refund before expiry
        InvalidTerms // zero amount, unknown partner, expiry in the past, zero sender
    }

    event Deposited(
        bytes32 indexed id,
        address indexed sender,
        uint64 indexed partnerId,
        uint256 amount,
        uint64 expiry,
        bytes32 claimHash
    );
    event Released(bytes32 indexed id, uint64 indexed partnerId, uint256 amount, bytes32 preimage);
    /// One token transfer to a partner's settlement address for a run of releases.
    event Settled(uint64 indexed partnerId, address indexed settlement, uint256 amount, uint256 count);
    event Refunded(bytes32 indexed id, address indexed sender, uint256 amount);
    event Skipped(bytes32 indexed id, SkipReason reason);
    event PartnerSet(uint64 indexed partnerId, address settlement);
    event GuardianSet(address guardian);

    error InvalidTerms();
    error UnknownPartner(uint64 partnerId);
    error WrongState(bytes32 id, Status status);
    error BadPreimage(bytes32 id);
    error NotExpired(bytes32 id, uint64 expiry);
    error BatchTooLarge(uint256 size, uint256 max);
    error NotGuardian();
    error ZeroAddress();

    /// Largest batch accepted by the batch functions.
    function MAX_BATCH() external view returns (uint256);

    function token() external view returns (address);

    /// The id of a set of terms (also the EIP-3009 nonce to sign).
    function remittanceId(Terms calldata t) external view returns (bytes32);

    function statusOf(bytes32 id) external view returns (Status);

    function partnerSettlement(uint64 partnerId) external view returns (address);

    /// Owner only. A zero address removes the partner (open remittances can still be refunded).
    function setPartner(uint64 partnerId, address settlement) external;

    /// Owner only.
    function setGuardian(address guardian) external;

    /// Guardian or owner: stops deposits and releases. Refunds are never paused.
    function pause() external;

    /// Owner only.
    function unpause() external;

    /// Pulls `t.amount` from `t.sender` with receiveWithAuthorization (nonce = id) and locks it. Reverts on failure.
    function deposit(Terms calldata t, Authorization calldata auth) external returns (bytes32 id);

    /// Like deposit for each item; an item that cannot be deposited is skipped with a Skipped event.
    function depositBatch(DepositItem[] calldata items) external returns (uint256 deposited);

    /// Anyone holding the preimage: pays the bound partner's settlement address. Allowed while Locked, before or
    /// after expiry (a refund ends it). Reverts on failure.
    function release(Terms calldata t, bytes32 preimage) external;

    /// Items are grouped by runs of equal partnerId: one token transfer per run (sort by partner for one per
    /// partner). Invalid items are skipped with a Skipped event.
    function releaseBatch(ReleaseItem[] calldata items) external returns (uint256 released);

    /// Anyone, at or after expiry: returns the funds to the sender. Works while paused.
    function refund(Terms calldata t) external;

    /// Like refund for each item; items that cannot be refunded are skipped with a Skipped event.
    function refundBatch(Terms[] calldata items) external returns (uint256 refunded);
}
