// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @title Remesa remittance escrow (v2)
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
///     cannot be searched from the code alone; `Released` reveals it (the code is spent then).
interface IRemittanceEscrow {
    /// The terms of one remittance. Hashing them gives its id.
    struct Terms {
        address sender; // who signed the authorization; refunds go here
        uint256 amount; // token base units
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
        AuthorizationFailed, // the token refused receiveWithAuthorization (detail: its revert data)
        BadPreimage, // keccak256(preimage) != claimHash
        NotExpired, // refund before expiry
        InvalidTerms, // zero sender or amount, lock time out of bounds, partner not accepting these terms
        Expired, // release at or after expiry (the sender may refund)
        TransferFailed // the token refused the payout (detail: its revert data); the item stays Locked
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
    error BadPreimage(bytes32 id);
    error NotExpired(bytes32 id, uint64 expiry);
    error Expired(bytes32 id, uint64 expiry);
    error BadDeclineSignature(bytes32 id);
    error BatchTooLarge(uint256 size, uint256 max);
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

    /// Largest batch accepted by the batch functions.
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

    function statusOf(bytes32 id) external view returns (Status);

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

    /// Pulls `t.amount` from `t.sender` with receiveWithAuthorization (nonce = id) and locks it. Reverts on failure.
    function deposit(Terms calldata t, Authorization calldata auth) external returns (bytes32 id);

    /// Like deposit for each item; an item that cannot be deposited is skipped with a Skipped event.
    function depositBatch(DepositItem[] calldata items) external returns (uint256 deposited);

    /// Anyone holding the preimage, before expiry: pays `t.settlement`. Reverts on failure.
    function release(Terms calldata t, bytes32 preimage) external;

    /// Items are grouped by runs of equal (partnerId, settlement): one token transfer per run. Invalid items are
    /// skipped; a run whose transfer the token refuses stays Locked (Skipped, TransferFailed).
    function releaseBatch(ReleaseItem[] calldata items) external returns (uint256 released);

    /// Anyone, at or after expiry: returns the funds to the sender. Reverts on failure.
    function refund(Terms calldata t) external;

    /// Like refund for each item; items that cannot be refunded are skipped (a refused transfer stays Locked).
    function refundBatch(Terms[] calldata items) external returns (uint256 refunded);

    /// Anyone, before expiry, with the partner signer's EIP-712 `Decline(id)` signature (ECDSA or ERC-1271):
    /// returns the funds to the sender.
    function cancel(Terms calldata t, bytes calldata declineSignature) external;
}
