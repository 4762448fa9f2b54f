// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IERC3009} from "@openzeppelin/contracts/interfaces/draft-IERC3009.sol";
import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {IRemittanceEscrow} from "./interfaces/IRemittanceEscrow.sol";

/// @title Remesa remittance escrow, Merkle-batch PROTOTYPE (not audited, not for deployment)
/// @notice Same terms, same id (= EIP-3009 nonce) and same exits as v2 (RemittanceEscrow), but no slot per
///         remittance. A deposit batch stores ONE slot, keyed by the Merkle root of the batch:
///             _batch[root] = n << 248 | exitBits        (n = items in the batch's calldata, 1..64)
///         The tree is positional: leaf i = id of calldata item i if its deposit succeeded, else bytes32(0); the
///         leaves are padded with zeros to the next power of two; node = keccak256(left ‖ right). The root is
///         computed on chain. An exit (release / refund / cancel) re-hashes the terms to the id, carries the leaf
///         index and the sibling hashes, recomputes the root and looks it up: a zero slot = not a deposited
///         remittance (bad proof). Bit `index` of the slot = exited. The tree depth must be ceil(log2 n) and
///         index < n, so each deposited remittance has exactly one (root, index), hence exactly one exit bit.
///         Uniqueness of ids across batches is USDC's: an EIP-3009 nonce (= id, bound to the sender) is usable once.
/// @dev Everything needed to rebuild any proof is public without the node: the depositBatch transaction's calldata
///      (all items' terms => all ids) and its Skipped events (which positions got a zero leaf); or, with
///      itemEvents, the Deposited events. BatchDeposited(root, n) names the batch and its transaction.
contract RemittanceEscrowMerkle is Ownable2Step, Pausable, ReentrancyGuardTransient, EIP712 {
    using SafeERC20 for IERC20;

    // ------------------------------------------------------------ types, events, errors

    struct ReleaseItem {
        IRemittanceEscrow.Terms terms;
        bytes32 preimage;
        uint256 index; // leaf index in its deposit batch
        bytes32[] proof; // sibling hashes, leaf level first
    }

    struct ExitItem {
        IRemittanceEscrow.Terms terms;
        uint256 index;
        bytes32[] proof;
    }

    /// Leaves of ONE deposit batch with a shared multiproof (strictly ascending indexes).
    struct GroupLeaf {
        IRemittanceEscrow.Terms terms;
        bytes32 preimage;
        uint256 index;
    }

    struct ReleaseGroup {
        GroupLeaf[] leaves;
        bytes32[] proof; // the multiproof's hashes in the order _multiRoot consumes them (empty if all leaves given)
    }

    enum SkipReason {
        WrongState, // already exited
        AuthorizationFailed,
        BadPreimage,
        NotExpired,
        InvalidTerms,
        Expired,
        TransferFailed,
        BadProof // not a leaf of a deposited batch (or the group's multiproof does not verify)
    }

    event BatchDeposited(bytes32 indexed root, uint256 n, uint256 deposited);
    /// The batch's leaves (zero-padded; emitted just before the BatchDeposited of the same batch).
    event BatchLeaves(bytes32[] leaves);
    event Deposited(
        bytes32 indexed id,
        address indexed sender,
        uint64 indexed partnerId,
        uint256 amount,
        uint64 expiry,
        bytes32 claimHash
    );
    event Released(bytes32 indexed id, uint64 indexed partnerId, uint256 amount, bytes32 preimage);
    event Settled(uint64 indexed partnerId, address indexed settlement, uint256 amount, uint256 count);
    event Refunded(bytes32 indexed id, address indexed sender, uint256 amount);
    event Canceled(bytes32 indexed id, uint64 indexed partnerId);
    event Skipped(bytes32 indexed id, SkipReason reason, bytes detail);
    event PartnerSet(uint64 indexed partnerId, address settlement, address signer);
    event PartnerRemoved(uint64 indexed partnerId);
    event GuardianSet(address guardian);

    error InvalidTerms();
    error PartnerNotAccepting(uint64 partnerId);
    error LockTimeOutOfBounds(uint64 expiry, uint256 earliest, uint256 latest);
    error AlreadyExited(bytes32 id);
    error BadProof(bytes32 id);
    error BadPreimage(bytes32 id);
    error NotExpired(bytes32 id, uint64 expiry);
    error Expired(bytes32 id, uint64 expiry);
    error BadDeclineSignature(bytes32 id);
    error BatchTooLarge(uint256 size, uint256 max);
    error InsufficientGas(uint256 index);
    error NotGuardian();
    error ZeroAddress();
    error TokenHasNoCode(address token);
    error InvalidSettlement(address settlement);
    error InvalidLockBounds(uint64 minLockSeconds, uint64 maxLockSeconds);
    error RenounceDisabled();
    error DepositFailed(bytes detail);

    // ------------------------------------------------------------ constants, state

    uint256 public constant MAX_BATCH = 64;
    uint256 public constant ITEM_GAS = 200_000;
    uint64 public constant MAX_LOCK_LIMIT = 366 days;
    bytes32 public constant DECLINE_TYPEHASH = keccak256("Decline(bytes32 id)");
    uint256 private constant ITEM_GAS_RESERVE = ITEM_GAS / 63 + 10_000;
    uint256 private constant DETAIL_BYTES_MAX = 256;

    address public immutable token;
    uint64 public immutable minLockSeconds;
    uint64 public immutable maxLockSeconds;
    /// Lever: per-item Deposited / Released events (as v2) or only BatchDeposited / Settled (+ Skipped).
    bool public immutable itemEvents;

    address public guardian;
    mapping(uint64 partnerId => bytes32 key) private _partnerKey;
    /// root => n << 248 | exit bits (bit i: leaf i exited).
    mapping(bytes32 root => uint256 word) private _batch;

    constructor(
        address token_,
        address owner_,
        address guardian_,
        uint64 minLockSeconds_,
        uint64 maxLockSeconds_,
        bool itemEvents_
    ) Ownable(owner_) EIP712("Remesa Escrow", "2") {
        if (token_ == address(0) || guardian_ == address(0)) revert ZeroAddress();
        if (token_.code.length == 0) revert TokenHasNoCode(token_);
        if (minLockSeconds_ > maxLockSeconds_ || maxLockSeconds_ > MAX_LOCK_LIMIT || maxLockSeconds_ == 0) {
            revert InvalidLockBounds(minLockSeconds_, maxLockSeconds_);
        }
        token = token_;
        guardian = guardian_;
        minLockSeconds = minLockSeconds_;
        maxLockSeconds = maxLockSeconds_;
        itemEvents = itemEvents_;
        emit GuardianSet(guardian_);
    }

    // ------------------------------------------------------------ views

    function remittanceId(IRemittanceEscrow.Terms calldata t) external view returns (bytes32) {
        return _id(t);
    }

    /// (n, exit bits) of the batch with this root; n == 0: no such batch.
    function batchOf(bytes32 root) external view returns (uint256 n, uint256 exitBits) {
        uint256 w = _batch[root];
        return (w >> 248, w & type(uint64).max);
    }

    function partnerKey(uint64 partnerId) external view returns (bytes32) {
        return _partnerKey[partnerId];
    }

    function declineDigest(bytes32 id) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(DECLINE_TYPEHASH, id)));
    }

    /// The root of a positional tree over `leaves` (zero-padded to a power of two). Off-chain helper / tests.
    function rootOf(bytes32[] memory leaves) public pure returns (bytes32) {
        uint256 width = 1;
        while (width < leaves.length) width <<= 1;
        bytes32[] memory level = new bytes32[](width);
        for (uint256 i; i < leaves.length; ++i) {
            level[i] = leaves[i];
        }
        return _rootInPlace(level);
    }

    // ------------------------------------------------------------ administration (as v2)

    function setPartner(uint64 partnerId, address settlement, address signer) external onlyOwner {
        if (settlement == address(0) || settlement == address(this) || settlement == token) {
            revert InvalidSettlement(settlement);
        }
        if (signer == address(0)) revert ZeroAddress();
        _partnerKey[partnerId] = _keyOf(settlement, signer);
        emit PartnerSet(partnerId, settlement, signer);
    }

    function removePartner(uint64 partnerId) external onlyOwner {
        delete _partnerKey[partnerId];
        emit PartnerRemoved(partnerId);
    }

    function setGuardian(address guardian_) external onlyOwner {
        if (guardian_ == address(0)) revert ZeroAddress();
        guardian = guardian_;
        emit GuardianSet(guardian_);
    }

    function pause() external {
        if (msg.sender != guardian && msg.sender != owner()) revert NotGuardian();
        _pause();
    }

    function unpause() external onlyOwner {
        _unpause();
    }

    function renounceOwnership() public view override onlyOwner {
        revert RenounceDisabled();
    }

    // ------------------------------------------------------------ deposit

    /// One remittance = a batch of one: root = id, depth 0, proof empty, index 0.
    function deposit(IRemittanceEscrow.Terms calldata t, IRemittanceEscrow.Authorization calldata auth)
        external
        whenNotPaused
        nonReentrant
        returns (bytes32 id)
    {
        _checkTerms(t);
        id = _id(t);
        // A used id fails here (USDC: "authorization is used or canceled"), so the slot below is always fresh.
        IERC3009(token)
            .receiveWithAuthorization(
                t.sender, address(this), t.amount, auth.validAfter, auth.validBefore, id, auth.v, auth.r, auth.s
            );
        _batch[id] = uint256(1) << 248;
        if (itemEvents) emit Deposited(id, t.sender, t.partnerId, t.amount, t.expiry, t.claimHash);
        emit BatchDeposited(id, 1, 1);
    }

    function depositBatch(IRemittanceEscrow.DepositItem[] calldata items)
        external
        whenNotPaused
        nonReentrant
        returns (uint256 deposited, bytes32 root)
    {
        uint256 n = items.length;
        if (n > MAX_BATCH) revert BatchTooLarge(n, MAX_BATCH);
        uint256 width = 1;
        while (width < n) width <<= 1;
        bytes32[] memory leaves = new bytes32[](width);
        bool events = itemEvents;
        for (uint256 i; i < n; ++i) {
            IRemittanceEscrow.Terms calldata t = items[i].terms;
            bytes32 id = _id(t);
            if (!_termsAcceptable(t)) {
                emit Skipped(id, SkipReason.InvalidTerms, "");
                continue;
            }
            IRemittanceEscrow.Authorization calldata a = items[i].auth;
            (bool ok, bytes memory detail) = _cappedCall(
                abi.encodeCall(
                    IERC3009.receiveWithAuthorization,
                    (t.sender, address(this), t.amount, a.validAfter, a.validBefore, id, a.v, a.r, a.s)
                ),
                i
            );
            if (ok) {
                leaves[i] = id;
                ++deposited;
                if (events) emit Deposited(id, t.sender, t.partnerId, t.amount, t.expiry, t.claimHash);
            } else {
                // Also a duplicate id (in this batch or an earlier one): USDC refuses its used nonce.
                emit Skipped(id, SkipReason.AuthorizationFailed, detail);
            }
        }
        if (deposited == 0) return (0, bytes32(0));
        root = _rootInPlace(leaves);
        // Fresh ids => fresh root; the check only documents it (the slot is read by the SSTORE anyway).
        if (_batch[root] != 0) revert BadProof(root);
        _batch[root] = n << 248;
        emit BatchDeposited(root, n, deposited);
    }

    /// Lever "calldata packing": the same batch, packed (no ABI padding, partner fields once per batch).
    /// Layout: header [partnerId u64][settlement 20][partnerSigner 20][n u8], then n items of
    /// [sender 20][amount u96][expiry u40][claimHash 32][validAfter u40][validBefore u40][v u8][r 32][s 32] = 144 B.
    function depositBatchPacked(bytes calldata data)
        external
        whenNotPaused
        nonReentrant
        returns (uint256 deposited, bytes32 root)
    {
        uint64 partnerId = uint64(bytes8(data[0:8]));
        address settlement = address(bytes20(data[8:28]));
        address partnerSigner = address(bytes20(data[28:48]));
        uint256 n = uint8(data[48]);
        if (n > MAX_BATCH) revert BatchTooLarge(n, MAX_BATCH);
        if (data.length != 49 + n * 144) revert InvalidTerms();
        bool accepts;
        {
            bytes32 key = _partnerKey[partnerId];
            accepts = key != bytes32(0) && key == _keyOf(settlement, partnerSigner);
        }
        uint256 width = 1;
        while (width < n) width <<= 1;
        bytes32[] memory leaves = new bytes32[](width);
        bool events = itemEvents;
        for (uint256 i; i < n; ++i) {
            (IRemittanceEscrow.Terms memory t, IRemittanceEscrow.Authorization memory a) =
                _unpack(data, 49 + i * 144, partnerId, settlement, partnerSigner);
            bytes32 id = _idMem(t);
            if (
                !accepts || t.sender == address(0) || t.amount == 0 || t.expiry < block.timestamp + minLockSeconds
                    || t.expiry > block.timestamp + maxLockSeconds
            ) {
                emit Skipped(id, SkipReason.InvalidTerms, "");
                continue;
            }
            (bool ok, bytes memory detail) = _cappedCall(
                abi.encodeCall(
                    IERC3009.receiveWithAuthorization,
                    (t.sender, address(this), t.amount, a.validAfter, a.validBefore, id, a.v, a.r, a.s)
                ),
                i
            );
            if (ok) {
                leaves[i] = id;
                ++deposited;
                if (events) emit Deposited(id, t.sender, partnerId, t.amount, t.expiry, t.claimHash);
            } else {
                emit Skipped(id, SkipReason.AuthorizationFailed, detail);
            }
        }
        if (deposited == 0) return (0, bytes32(0));
        root = _rootInPlace(leaves);
        if (_batch[root] != 0) revert BadProof(root);
        _batch[root] = n << 248;
        emit BatchDeposited(root, n, deposited);
    }

    function _unpack(bytes calldata data, uint256 o, uint64 partnerId, address settlement, address partnerSigner)
        private
        pure
        returns (IRemittanceEscrow.Terms memory t, IRemittanceEscrow.Authorization memory a)
    {
        assembly ("memory-safe") {
            let p := add(data.offset, o)
            mstore(t, shr(96, calldataload(p))) // sender
            mstore(add(t, 0x20), shr(160, calldataload(add(p, 20)))) // amount u96
            mstore(add(t, 0x60), shr(216, calldataload(add(p, 32)))) // expiry u40
            mstore(add(t, 0xc0), calldataload(add(p, 37))) // claimHash
            mstore(a, shr(216, calldataload(add(p, 69)))) // validAfter u40
            mstore(add(a, 0x20), shr(216, calldataload(add(p, 74)))) // validBefore u40
            mstore(add(a, 0x40), shr(248, calldataload(add(p, 79)))) // v
            mstore(add(a, 0x60), calldataload(add(p, 80))) // r
            mstore(add(a, 0x80), calldataload(add(p, 112))) // s
        }
        t.partnerId = partnerId;
        t.settlement = settlement;
        t.partnerSigner = partnerSigner;
    }

    /// Lever "lean packed deposit": the packed layout of depositBatchPacked, with the per-item work in scratch memory
    /// (no per-item allocation; one reused call buffer; the id hashed in place). Same checks and skips.
    function depositBatchPackedLean(bytes calldata data)
        external
        whenNotPaused
        nonReentrant
        returns (uint256 deposited, bytes32 root)
    {
        return _depositPackedLean(data, false);
    }

    /// depositBatchPackedLean + one BatchLeaves(root, leaves) event: every proof can then be rebuilt from the
    /// logs alone (the sender still needs its own terms), without decoding the transaction's calldata.
    function depositBatchPackedLeanLogged(bytes calldata data)
        external
        whenNotPaused
        nonReentrant
        returns (uint256 deposited, bytes32 root)
    {
        return _depositPackedLean(data, true);
    }

    function _depositPackedLean(bytes calldata data, bool logLeaves) private returns (uint256 deposited, bytes32 root) {
        uint256 n = uint8(data[48]);
        if (n > MAX_BATCH) revert BatchTooLarge(n, MAX_BATCH);
        if (data.length != 49 + n * 144) revert InvalidTerms();
        uint256 width = 1;
        while (width < n) width <<= 1;
        bytes32[] memory leaves = new bytes32[](width);
        // Two fixed buffers after the leaves: h (8 words, the id preimage) and c (the call, 0x124 bytes).
        uint256 h;
        assembly ("memory-safe") {
            h := mload(0x40)
            mstore(0x40, add(h, 0x260))
        }
        bool accepts = _headerInto(data, h);
        uint256 earliest = block.timestamp + minLockSeconds;
        uint256 latest = block.timestamp + maxLockSeconds;
        for (uint256 i; i < n; ++i) {
            (bytes32 id, bool valid) = _packedId(data, 49 + i * 144, h, earliest, latest);
            if (!valid || !accepts) {
                emit Skipped(id, SkipReason.InvalidTerms, "");
                continue;
            }
            if (_leanReceive(data, 49 + i * 144, h, id, i)) {
                leaves[i] = id;
                ++deposited;
            }
        }
        if (deposited == 0) return (0, bytes32(0));
        if (logLeaves) emit BatchLeaves(leaves);
        root = _rootInPlace(leaves);
        if (_batch[root] != 0) revert BadProof(root);
        _batch[root] = n << 248;
        emit BatchDeposited(root, n, deposited);
    }

    /// Writes the batch-constant words of the id preimage into h; whether the partner accepts these terms.
    function _headerInto(bytes calldata data, uint256 h) private view returns (bool) {
        uint64 partnerId = uint64(bytes8(data[0:8]));
        address settlement = address(bytes20(data[8:28]));
        address partnerSigner = address(bytes20(data[28:48]));
        assembly ("memory-safe") {
            mstore(h, address())
            mstore(add(h, 0x60), partnerId)
            mstore(add(h, 0xa0), settlement)
            mstore(add(h, 0xc0), partnerSigner)
        }
        bytes32 key = _partnerKey[partnerId];
        return key != bytes32(0) && key == _keyOf(settlement, partnerSigner);
    }

    function _packedId(bytes calldata data, uint256 o, uint256 h, uint256 earliest, uint256 latest)
        private
        pure
        returns (bytes32 id, bool valid)
    {
        assembly ("memory-safe") {
            let p := add(data.offset, o)
            let sender := shr(96, calldataload(p))
            let amount := shr(160, calldataload(add(p, 20)))
            let expiry := shr(216, calldataload(add(p, 32)))
            mstore(add(h, 0x20), sender)
            mstore(add(h, 0x40), amount)
            mstore(add(h, 0x80), expiry)
            mstore(add(h, 0xe0), calldataload(add(p, 37)))
            id := keccak256(h, 0x100)
            valid := and(
                and(iszero(iszero(sender)), iszero(iszero(amount))),
                and(iszero(lt(expiry, earliest)), iszero(gt(expiry, latest)))
            )
        }
    }

    /// receiveWithAuthorization for the packed item at `o` under the ITEM_GAS cap; Skipped on refusal.
    function _leanReceive(bytes calldata data, uint256 o, uint256 h, bytes32 id, uint256 i) private returns (bool ok) {
        if (gasleft() < ITEM_GAS + ITEM_GAS_RESERVE) revert InsufficientGas(i);
        address target = token;
        assembly ("memory-safe") {
            let p := add(data.offset, o)
            let c := add(h, 0x100)
            mstore(c, shl(224, 0xef55bec6)) // receiveWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)
            mstore(add(c, 0x04), mload(add(h, 0x20))) // from = sender
            mstore(add(c, 0x24), address())
            mstore(add(c, 0x44), mload(add(h, 0x40))) // value = amount
            mstore(add(c, 0x64), shr(216, calldataload(add(p, 69)))) // validAfter
            mstore(add(c, 0x84), shr(216, calldataload(add(p, 74)))) // validBefore
            mstore(add(c, 0xa4), id) // nonce
            mstore(add(c, 0xc4), shr(248, calldataload(add(p, 79)))) // v
            mstore(add(c, 0xe4), calldataload(add(p, 80))) // r
            mstore(add(c, 0x104), calldataload(add(p, 112))) // s
            ok := call(ITEM_GAS, target, 0, c, 0x124, 0, 0x20)
            if ok { ok := or(iszero(returndatasize()), and(iszero(lt(returndatasize(), 32)), eq(mload(0), 1))) }
        }
        if (!ok) emit Skipped(id, SkipReason.AuthorizationFailed, _returnDetail());
    }

    function _returnDetail() private pure returns (bytes memory detail) {
        uint256 size = returndatasize_();
        if (size > DETAIL_BYTES_MAX) size = DETAIL_BYTES_MAX;
        detail = new bytes(size);
        assembly ("memory-safe") {
            returndatacopy(add(detail, 0x20), 0, size)
        }
    }

    function returndatasize_() private pure returns (uint256 s) {
        assembly ("memory-safe") {
            s := returndatasize()
        }
    }

    // ------------------------------------------------------------ release

    function release(IRemittanceEscrow.Terms calldata t, bytes32 preimage, uint256 index, bytes32[] calldata proof)
        external
        nonReentrant
    {
        bytes32 id = _id(t);
        (bytes32 root, uint256 w) = _locate(id, index, proof);
        if (w == 0) revert BadProof(id);
        uint256 bit = uint256(1) << index;
        if (w & bit != 0) revert AlreadyExited(id);
        if (block.timestamp >= t.expiry) revert Expired(id, t.expiry);
        if (keccak256(abi.encodePacked(preimage)) != t.claimHash) revert BadPreimage(id);
        _batch[root] = w | bit;
        if (itemEvents) emit Released(id, t.partnerId, t.amount, preimage);
        emit Settled(t.partnerId, t.settlement, t.amount, 1);
        IERC20(token).safeTransfer(t.settlement, t.amount);
    }

    /// Items with per-item proofs, grouped into runs of equal (partnerId, settlement): one transfer per run.
    function releaseBatch(ReleaseItem[] calldata items) external nonReentrant returns (uint256 released) {
        uint256 n = items.length;
        if (n > MAX_BATCH) revert BatchTooLarge(n, MAX_BATCH);
        // The current run's accepted items: their indexes, ids and roots.
        uint256[] memory run = new uint256[](n);
        bytes32[] memory runIds = new bytes32[](n);
        bytes32[] memory runRoots = new bytes32[](n);
        uint256 i;
        while (i < n) {
            uint256 count;
            (i, count) = _releaseBatchRun(items, i, run, runIds, runRoots);
            released += count;
        }
    }

    function _releaseBatchRun(
        ReleaseItem[] calldata items,
        uint256 i,
        uint256[] memory run,
        bytes32[] memory runIds,
        bytes32[] memory runRoots
    ) private returns (uint256 next, uint256 count) {
        uint256 sum;
        (next, count, sum) = _collectRun(items, i, run, runIds, runRoots);
        if (count == 0) return (next, 0);
        if (!_payRun(items, count, sum, run, runIds, runRoots)) return (next, 0);
    }

    /// Marks the run's valid items exited (before the transfer) and records them.
    function _collectRun(
        ReleaseItem[] calldata items,
        uint256 i,
        uint256[] memory run,
        bytes32[] memory runIds,
        bytes32[] memory runRoots
    ) private returns (uint256, uint256 count, uint256 sum) {
        uint256 n = items.length;
        uint64 partnerId = items[i].terms.partnerId;
        address settlement = items[i].terms.settlement;
        do {
            ReleaseItem calldata it = items[i];
            bytes32 id = _id(it.terms);
            (bytes32 root, uint256 w) = _locate(id, it.index, it.proof);
            if (w == 0) {
                emit Skipped(id, SkipReason.BadProof, "");
            } else if (w & (uint256(1) << it.index) != 0) {
                emit Skipped(id, SkipReason.WrongState, "");
            } else if (block.timestamp >= it.terms.expiry) {
                emit Skipped(id, SkipReason.Expired, "");
            } else if (keccak256(abi.encodePacked(it.preimage)) != it.terms.claimHash) {
                emit Skipped(id, SkipReason.BadPreimage, "");
            } else {
                _batch[root] = w | (uint256(1) << it.index);
                run[count] = i;
                runIds[count] = id;
                runRoots[count] = root;
                sum += it.terms.amount;
                ++count;
            }
            ++i;
        } while (i < n && items[i].terms.partnerId == partnerId && items[i].terms.settlement == settlement);
        return (i, count, sum);
    }

    /// One transfer for the run; on refusal the run's exit bits are cleared again.
    function _payRun(
        ReleaseItem[] calldata items,
        uint256 count,
        uint256 sum,
        uint256[] memory run,
        bytes32[] memory runIds,
        bytes32[] memory runRoots
    ) private returns (bool ok) {
        uint64 partnerId = items[run[0]].terms.partnerId;
        address settlement = items[run[0]].terms.settlement;
        bytes memory detail;
        (ok, detail) = _cappedCall(abi.encodeCall(IERC20.transfer, (settlement, sum)), run[count - 1]);
        bool events = itemEvents;
        for (uint256 k; k < count; ++k) {
            ReleaseItem calldata it = items[run[k]];
            if (ok) {
                if (events) emit Released(runIds[k], partnerId, it.terms.amount, it.preimage);
            } else {
                _batch[runRoots[k]] &= ~(uint256(1) << it.index);
                emit Skipped(runIds[k], SkipReason.TransferFailed, detail);
            }
        }
        if (ok) emit Settled(partnerId, settlement, sum, count);
    }

    /// Lever "sorted releases + multiproof": leaves of one deposit batch share one proof (none when all of the
    /// batch's deposited leaves are given: the root is recomputed) and one exit-word write. A group whose proof
    /// does not verify (a leaf that is not in the batch) is skipped whole (BadProof); a valid leaf that cannot be
    /// released (exited, expired, bad preimage) is skipped alone. One transfer per run of equal
    /// (partnerId, settlement) inside a group.
    function releaseGroups(ReleaseGroup[] calldata groups) external nonReentrant returns (uint256 released) {
        uint256 total;
        for (uint256 g; g < groups.length; ++g) {
            total += groups[g].leaves.length;
        }
        if (total > MAX_BATCH) revert BatchTooLarge(total, MAX_BATCH);
        for (uint256 g; g < groups.length; ++g) {
            released += _releaseGroup(groups[g].leaves, groups[g].proof);
        }
    }

    function _releaseGroup(GroupLeaf[] calldata leaves, bytes32[] calldata proof) private returns (uint256 released) {
        uint256 m = leaves.length;
        bytes32[] memory ids = new bytes32[](m);
        for (uint256 k; k < m; ++k) {
            ids[k] = _id(leaves[k].terms);
        }
        (bytes32 root, uint256 w) = _locateMulti(leaves, ids, proof);
        if (w == 0) {
            for (uint256 k; k < m; ++k) {
                emit Skipped(ids[k], SkipReason.BadProof, "");
            }
            return 0;
        }
        uint256 k;
        while (k < m) {
            uint256 count;
            (k, count) = _releaseRun(leaves, ids, root, w, k);
            released += count;
            if (k < m) w = _batch[root];
        }
    }

    /// One run of equal (partnerId, settlement) from leaf `first` of a verified group: returns where the next run
    /// starts and how many were released.
    function _releaseRun(GroupLeaf[] calldata leaves, bytes32[] memory ids, bytes32 root, uint256 w, uint256 first)
        private
        returns (uint256 k, uint256 count)
    {
        uint256 runBits;
        uint256 sum;
        (k, runBits, sum, count) = _collectGroupRun(leaves, ids, w, first);
        if (count == 0) return (k, 0);
        address settlement = leaves[first].terms.settlement;
        _batch[root] = w | runBits;
        (bool ok, bytes memory detail) = _cappedCall(abi.encodeCall(IERC20.transfer, (settlement, sum)), k - 1);
        if (!ok) _batch[root] = w;
        _emitGroupRun(leaves, ids, first, k, runBits, ok, detail);
        if (!ok) return (k, 0);
        emit Settled(leaves[first].terms.partnerId, settlement, sum, count);
    }

    function _collectGroupRun(GroupLeaf[] calldata leaves, bytes32[] memory ids, uint256 w, uint256 first)
        private
        returns (uint256 k, uint256 runBits, uint256 sum, uint256 count)
    {
        uint256 m = leaves.length;
        uint64 partnerId = leaves[first].terms.partnerId;
        address settlement = leaves[first].terms.settlement;
        k = first;
        do {
            GroupLeaf calldata lf = leaves[k];
            uint256 bit = uint256(1) << lf.index;
            if (w & bit != 0) {
                emit Skipped(ids[k], SkipReason.WrongState, "");
            } else if (block.timestamp >= lf.terms.expiry) {
                emit Skipped(ids[k], SkipReason.Expired, "");
            } else if (keccak256(abi.encodePacked(lf.preimage)) != lf.terms.claimHash) {
                emit Skipped(ids[k], SkipReason.BadPreimage, "");
            } else {
                runBits |= bit;
                sum += lf.terms.amount;
                ++count;
            }
            ++k;
        } while (k < m && leaves[k].terms.partnerId == partnerId && leaves[k].terms.settlement == settlement);
    }

    function _emitGroupRun(
        GroupLeaf[] calldata leaves,
        bytes32[] memory ids,
        uint256 first,
        uint256 k,
        uint256 runBits,
        bool ok,
        bytes memory detail
    ) private {
        bool events = itemEvents;
        if (ok && !events) return;
        for (uint256 j = first; j < k; ++j) {
            if (runBits & (uint256(1) << leaves[j].index) == 0) continue;
            if (!ok) emit Skipped(ids[j], SkipReason.TransferFailed, detail);
            else emit Released(ids[j], leaves[j].terms.partnerId, leaves[j].terms.amount, leaves[j].preimage);
        }
    }

    /// Lever "packed + multiproof release": groups of leaves of ONE deposit batch and ONE (partner, settlement),
    /// packed: [groups u8], per group [partnerId u64][settlement 20][partnerSigner 20][m u8][proofLen u8], m leaves
    /// of [index u8][sender 20][amount u96][expiry u40][preimage 32] (70 B, strictly ascending index), then proofLen
    /// 32-byte multiproof hashes. The claim hash is not sent: it is keccak256(preimage), so a wrong preimage gives a
    /// wrong id and the group's proof fails (the whole group is skipped, BadProof). One transfer per group.
    /// A run of consecutive groups with the same (partnerId, settlement), paid with one transfer.
    struct Pending {
        uint64 partnerId;
        address settlement;
        uint256 sum;
        uint256 count;
        uint256 groups;
        bytes32[] roots;
        uint256[] bits;
        uint256[] offsets;
    }

    function releaseGroupsPacked(bytes calldata data) external nonReentrant returns (uint256 released) {
        uint256 groups = uint8(data[0]);
        uint256 o = 1;
        uint256 total;
        Pending memory run;
        run.roots = new bytes32[](groups);
        run.bits = new uint256[](groups);
        run.offsets = new uint256[](groups);
        for (uint256 g; g < groups; ++g) {
            uint256 m = uint8(data[o + 48]);
            total += m;
            if (total > MAX_BATCH) revert BatchTooLarge(total, MAX_BATCH);
            uint64 partnerId = uint64(bytes8(data[o:o + 8]));
            address settlement = address(bytes20(data[o + 8:o + 28]));
            if (run.groups != 0 && (partnerId != run.partnerId || settlement != run.settlement)) {
                released += _flush(data, run);
            }
            run.partnerId = partnerId;
            run.settlement = settlement;
            o = _preparePackedGroup(data, o, m, run);
        }
        if (o != data.length) revert InvalidTerms();
        if (run.groups != 0) released += _flush(data, run);
    }

    /// Verifies one group, marks its releasable leaves exited (before the run's transfer) and adds them to the run.
    function _preparePackedGroup(bytes calldata data, uint256 o, uint256 m, Pending memory run)
        private
        returns (uint256 next)
    {
        uint256 proofLen = uint8(data[o + 49]);
        next = o + 50 + m * 70 + proofLen * 32;
        if (next > data.length || m == 0) revert InvalidTerms();
        (bytes32[] memory ids, bytes32 root, uint256 w) = _verifyPackedGroup(data, o, m, proofLen);
        if (w == 0) {
            for (uint256 k; k < m; ++k) {
                emit Skipped(ids[k], SkipReason.BadProof, "");
            }
            return next;
        }
        (uint256 runBits, uint256 sum, uint256 c) = _collectPacked(data, o, ids, w);
        if (c == 0) return next;
        _batch[root] = w | runBits;
        uint256 j = run.groups++;
        run.roots[j] = root;
        run.bits[j] = runBits;
        run.offsets[j] = o;
        run.sum += sum;
        run.count += c;
    }

    /// Pays the run with one transfer; on refusal clears the run's exit bits again (Skipped, TransferFailed).
    function _flush(bytes calldata data, Pending memory run) private returns (uint256 released) {
        (bool ok, bytes memory detail) = _cappedCall(abi.encodeCall(IERC20.transfer, (run.settlement, run.sum)), 0);
        if (ok) {
            emit Settled(run.partnerId, run.settlement, run.sum, run.count);
            released = run.count;
        } else {
            for (uint256 j; j < run.groups; ++j) {
                _batch[run.roots[j]] &= ~run.bits[j];
                _skipTransferFailed(data, run.offsets[j], run.bits[j], detail);
            }
        }
        run.sum = 0;
        run.count = 0;
        run.groups = 0;
    }

    function _skipTransferFailed(bytes calldata data, uint256 o, uint256 bits, bytes memory detail) private {
        uint256 m = uint8(data[o + 48]);
        bytes32[] memory ids = new bytes32[](m);
        _packedGroupIds(data, o, ids, new uint256[](m), new bytes32[](m));
        for (uint256 k; k < m; ++k) {
            if (bits & (uint256(1) << uint8(data[o + 50 + k * 70])) != 0) {
                emit Skipped(ids[k], SkipReason.TransferFailed, detail);
            }
        }
    }

    function _verifyPackedGroup(bytes calldata data, uint256 o, uint256 m, uint256 proofLen)
        private
        view
        returns (bytes32[] memory ids, bytes32 root, uint256 w)
    {
        ids = new bytes32[](m);
        uint256[] memory idx = new uint256[](m);
        bytes32[] memory hs = new bytes32[](m);
        if (!_packedGroupIds(data, o, ids, idx, hs)) return (ids, bytes32(0), 0);
        uint256 start = o + 50 + m * 70;
        (root, w) = _lookupMulti(idx, hs, data[start:start + proofLen * 32]);
    }

    function _lookupMulti(uint256[] memory idx, bytes32[] memory hs, bytes calldata proof)
        private
        view
        returns (bytes32 root, uint256 w)
    {
        uint256 last = idx[idx.length - 1];
        uint256 depth;
        (root, depth) = _multiRootMem(idx, hs, proof);
        w = _batch[root];
        if (w == 0 || _depthOf(w >> 248) != depth || last >= w >> 248) return (root, 0);
    }

    function _collectPacked(bytes calldata data, uint256 o, bytes32[] memory ids, uint256 w)
        private
        returns (uint256 runBits, uint256 sum, uint256 count)
    {
        for (uint256 k; k < ids.length; ++k) {
            uint256 p = o + 50 + k * 70;
            uint256 bit = uint256(1) << uint8(data[p]);
            if (w & bit != 0) {
                emit Skipped(ids[k], SkipReason.WrongState, "");
            } else if (block.timestamp >= uint40(bytes5(data[p + 33:p + 38]))) {
                emit Skipped(ids[k], SkipReason.Expired, "");
            } else {
                runBits |= bit;
                sum += uint96(bytes12(data[p + 21:p + 33]));
                ++count;
            }
        }
    }

    /// ids (claimHash = keccak256(preimage)), leaf indexes, and a copy of the ids to hash up; false unless the
    /// indexes are strictly ascending and < 64.
    function _packedGroupIds(
        bytes calldata data,
        uint256 o,
        bytes32[] memory ids,
        uint256[] memory idx,
        bytes32[] memory hs
    ) private view returns (bool ordered) {
        uint256 m = ids.length;
        ordered = true;
        assembly ("memory-safe") {
            let h := mload(0x40)
            let q := add(data.offset, o)
            mstore(h, address())
            mstore(add(h, 0x60), shr(192, calldataload(q))) // partnerId
            mstore(add(h, 0xa0), shr(96, calldataload(add(q, 8)))) // settlement
            mstore(add(h, 0xc0), shr(96, calldataload(add(q, 28)))) // partnerSigner
            let prev := not(0)
            for { let k := 0 } lt(k, m) { k := add(k, 1) } {
                let p := add(q, add(50, mul(k, 70)))
                let ix := shr(248, calldataload(p))
                mstore(add(h, 0x20), shr(96, calldataload(add(p, 1)))) // sender
                mstore(add(h, 0x40), shr(160, calldataload(add(p, 21)))) // amount
                mstore(add(h, 0x80), shr(216, calldataload(add(p, 33)))) // expiry
                mstore(0x00, calldataload(add(p, 38))) // preimage
                mstore(add(h, 0xe0), keccak256(0x00, 0x20)) // claimHash
                let id := keccak256(h, 0x100)
                mstore(add(add(ids, 0x20), mul(k, 0x20)), id)
                mstore(add(add(hs, 0x20), mul(k, 0x20)), id)
                mstore(add(add(idx, 0x20), mul(k, 0x20)), ix)
                if or(gt(ix, 63), and(iszero(eq(prev, not(0))), iszero(gt(ix, prev)))) { ordered := 0 }
                prev := ix
            }
        }
    }

    /// The multiproof walk of _locateMulti on memory arrays (modified in place), proof hashes read from calldata;
    /// depth == type(uint256).max when the proof does not fit.
    function _multiRootMem(uint256[] memory idx, bytes32[] memory h, bytes calldata proof)
        private
        pure
        returns (bytes32 root, uint256 depth)
    {
        uint256 count = idx.length;
        uint256 p;
        while (count > 1 || idx[0] != 0 || p < proof.length) {
            if (depth == 6) return (bytes32(0), type(uint256).max);
            uint256 out;
            uint256 k;
            while (k < count) {
                uint256 ix = idx[k];
                bytes32 node;
                if (ix & 1 == 0 && k + 1 < count && idx[k + 1] == ix + 1) {
                    node = _hashPair(h[k], h[k + 1]);
                    k += 2;
                } else {
                    if (p == proof.length) return (bytes32(0), type(uint256).max);
                    bytes32 sib = bytes32(proof[p:p + 32]);
                    p += 32;
                    node = ix & 1 == 0 ? _hashPair(h[k], sib) : _hashPair(sib, h[k]);
                    ++k;
                }
                idx[out] = ix >> 1;
                h[out] = node;
                ++out;
            }
            count = out;
            ++depth;
        }
        root = h[0];
    }

    // ------------------------------------------------------------ refund and cancel

    /// Anyone, at or after expiry. The proof is rebuilt from the deposit transaction (see the contract's notes).
    function refund(IRemittanceEscrow.Terms calldata t, uint256 index, bytes32[] calldata proof) external nonReentrant {
        bytes32 id = _id(t);
        (bytes32 root, uint256 w) = _locate(id, index, proof);
        if (w == 0) revert BadProof(id);
        uint256 bit = uint256(1) << index;
        if (w & bit != 0) revert AlreadyExited(id);
        if (block.timestamp < t.expiry) revert NotExpired(id, t.expiry);
        _batch[root] = w | bit;
        emit Refunded(id, t.sender, t.amount);
        IERC20(token).safeTransfer(t.sender, t.amount);
    }

    function refundBatch(ExitItem[] calldata items) external nonReentrant returns (uint256 refunded) {
        uint256 n = items.length;
        if (n > MAX_BATCH) revert BatchTooLarge(n, MAX_BATCH);
        for (uint256 i; i < n; ++i) {
            ExitItem calldata it = items[i];
            IRemittanceEscrow.Terms calldata t = it.terms;
            bytes32 id = _id(t);
            (bytes32 root, uint256 w) = _locate(id, it.index, it.proof);
            uint256 bit = uint256(1) << it.index;
            if (w == 0) {
                emit Skipped(id, SkipReason.BadProof, "");
                continue;
            }
            if (w & bit != 0) {
                emit Skipped(id, SkipReason.WrongState, "");
                continue;
            }
            if (block.timestamp < t.expiry) {
                emit Skipped(id, SkipReason.NotExpired, "");
                continue;
            }
            _batch[root] = w | bit;
            (bool ok, bytes memory detail) = _cappedCall(abi.encodeCall(IERC20.transfer, (t.sender, t.amount)), i);
            if (ok) {
                emit Refunded(id, t.sender, t.amount);
                ++refunded;
            } else {
                _batch[root] &= ~bit;
                emit Skipped(id, SkipReason.TransferFailed, detail);
            }
        }
    }

    function cancel(
        IRemittanceEscrow.Terms calldata t,
        uint256 index,
        bytes32[] calldata proof,
        bytes calldata declineSignature
    ) external nonReentrant {
        bytes32 id = _id(t);
        (bytes32 root, uint256 w) = _locate(id, index, proof);
        if (w == 0) revert BadProof(id);
        uint256 bit = uint256(1) << index;
        if (w & bit != 0) revert AlreadyExited(id);
        if (block.timestamp >= t.expiry) revert Expired(id, t.expiry);
        if (!SignatureChecker.isValidSignatureNowCalldata(t.partnerSigner, declineDigest(id), declineSignature)) {
            revert BadDeclineSignature(id);
        }
        _batch[root] = w | bit;
        emit Canceled(id, t.partnerId);
        emit Refunded(id, t.sender, t.amount);
        IERC20(token).safeTransfer(t.sender, t.amount);
    }

    // ------------------------------------------------------------ Merkle

    /// The batch word of the leaf `id` at `index` with `proof`, and its root; w == 0 when it is not a leaf of a
    /// deposited batch at that index (unknown root, index >= n, or a proof of the wrong depth).
    function _locate(bytes32 id, uint256 index, bytes32[] calldata proof)
        private
        view
        returns (bytes32 root, uint256 w)
    {
        uint256 depth = proof.length;
        if (depth > 6 || index >> depth != 0) return (bytes32(0), 0);
        root = id;
        uint256 ix = index;
        for (uint256 k; k < depth; ++k) {
            root = ix & 1 == 0 ? _hashPair(root, proof[k]) : _hashPair(proof[k], root);
            ix >>= 1;
        }
        w = _batch[root];
        if (w == 0) return (root, 0);
        uint256 n = w >> 248;
        if (index >= n || _depthOf(n) != depth) return (root, 0);
    }

    /// Multiproof over strictly ascending leaf indexes of one positional tree: level by level, a node's sibling is
    /// the next known node when that is its pair, else the next proof hash. The depth is the batch's (checked
    /// against n after the lookup), so the walk runs until one node is left and counts the levels.
    function _locateMulti(GroupLeaf[] calldata leaves, bytes32[] memory ids, bytes32[] calldata proof)
        private
        view
        returns (bytes32 root, uint256 w)
    {
        uint256 m = leaves.length;
        if (m == 0) return (bytes32(0), 0);
        uint256[] memory idx = new uint256[](m);
        bytes32[] memory h = new bytes32[](m);
        for (uint256 k; k < m; ++k) {
            uint256 ix = leaves[k].index;
            if (ix >= 64 || (k > 0 && ix <= idx[k - 1])) return (bytes32(0), 0);
            idx[k] = ix;
            h[k] = ids[k];
        }
        uint256 p; // next proof hash
        uint256 depth;
        uint256 count = m;
        // Walk up until a single node at index 0 remains and the proof is used up.
        while (count > 1 || idx[0] != 0 || p < proof.length) {
            if (depth == 6) return (bytes32(0), 0);
            uint256 out;
            uint256 k;
            while (k < count) {
                uint256 ix = idx[k];
                bytes32 node;
                if (ix & 1 == 0) {
                    if (k + 1 < count && idx[k + 1] == ix + 1) {
                        node = _hashPair(h[k], h[k + 1]);
                        k += 2;
                    } else {
                        if (p == proof.length) return (bytes32(0), 0);
                        node = _hashPair(h[k], proof[p++]);
                        ++k;
                    }
                } else {
                    if (p == proof.length) return (bytes32(0), 0);
                    node = _hashPair(proof[p++], h[k]);
                    ++k;
                }
                idx[out] = ix >> 1;
                h[out] = node;
                ++out;
            }
            count = out;
            ++depth;
        }
        if (p != proof.length) return (bytes32(0), 0);
        root = h[0];
        w = _batch[root];
        if (w == 0) return (root, 0);
        uint256 n = w >> 248;
        if (_depthOf(n) != depth || leaves[m - 1].index >= n) return (root, 0);
    }

    function _depthOf(uint256 n) private pure returns (uint256 d) {
        while ((uint256(1) << d) < n) ++d;
    }

    function _hashPair(bytes32 a, bytes32 b) private pure returns (bytes32 r) {
        assembly ("memory-safe") {
            mstore(0x00, a)
            mstore(0x20, b)
            r := keccak256(0x00, 0x40)
        }
    }

    function _rootInPlace(bytes32[] memory level) private pure returns (bytes32) {
        uint256 w = level.length;
        while (w > 1) {
            w >>= 1;
            for (uint256 i; i < w; ++i) {
                level[i] = _hashPair(level[2 * i], level[2 * i + 1]);
            }
        }
        return level[0];
    }

    // ------------------------------------------------------------ internal (as v2)

    function _keyOf(address settlement, address signer) private pure returns (bytes32) {
        return keccak256(abi.encode(settlement, signer));
    }

    function _termsAcceptable(IRemittanceEscrow.Terms calldata t) private view returns (bool) {
        if (t.sender == address(0) || t.amount == 0) return false;
        if (t.expiry < block.timestamp + minLockSeconds || t.expiry > block.timestamp + maxLockSeconds) return false;
        bytes32 key = _partnerKey[t.partnerId];
        return key != bytes32(0) && key == _keyOf(t.settlement, t.partnerSigner);
    }

    function _checkTerms(IRemittanceEscrow.Terms calldata t) private view {
        if (t.sender == address(0) || t.amount == 0) revert InvalidTerms();
        uint256 earliest = block.timestamp + minLockSeconds;
        uint256 latest = block.timestamp + maxLockSeconds;
        if (t.expiry < earliest || t.expiry > latest) revert LockTimeOutOfBounds(t.expiry, earliest, latest);
        bytes32 key = _partnerKey[t.partnerId];
        if (key == bytes32(0) || key != _keyOf(t.settlement, t.partnerSigner)) revert PartnerNotAccepting(t.partnerId);
    }

    function _cappedCall(bytes memory data, uint256 index) private returns (bool ok, bytes memory detail) {
        if (gasleft() < ITEM_GAS + ITEM_GAS_RESERVE) revert InsufficientGas(index);
        address target = token;
        uint256 returned;
        uint256 word;
        assembly ("memory-safe") {
            ok := call(ITEM_GAS, target, 0, add(data, 0x20), mload(data), 0, 0x20)
            returned := returndatasize()
            word := mload(0)
        }
        if (ok && (returned == 0 || (returned >= 32 && word == 1))) return (true, "");
        uint256 size = returned < DETAIL_BYTES_MAX ? returned : DETAIL_BYTES_MAX;
        detail = new bytes(size);
        assembly ("memory-safe") {
            returndatacopy(add(detail, 0x20), 0, size)
        }
        return (false, detail);
    }

    function _id(IRemittanceEscrow.Terms calldata t) private view returns (bytes32 id) {
        address sender = t.sender;
        uint256 amount = t.amount;
        uint64 partnerId = t.partnerId;
        uint64 expiry = t.expiry;
        address settlement = t.settlement;
        address partnerSigner = t.partnerSigner;
        bytes32 claimHash = t.claimHash;
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, address())
            mstore(add(p, 0x20), sender)
            mstore(add(p, 0x40), amount)
            mstore(add(p, 0x60), partnerId)
            mstore(add(p, 0x80), expiry)
            mstore(add(p, 0xa0), settlement)
            mstore(add(p, 0xc0), partnerSigner)
            mstore(add(p, 0xe0), claimHash)
            id := keccak256(p, 0x100)
        }
    }

    function _idMem(IRemittanceEscrow.Terms memory t) private view returns (bytes32 id) {
        return keccak256(
            abi.encode(
                address(this), t.sender, t.amount, t.partnerId, t.expiry, t.settlement, t.partnerSigner, t.claimHash
            )
        );
    }
}
