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

/// @title Remesa remittance escrow (v3)
/// @notice See {IRemittanceEscrow}. Coins come in only through EIP-3009 `receiveWithAuthorization` whose nonce is the
///         remittance id (the hash of the terms), so the sender's signature binds the exact terms, settlement
///         address and partner signer included, and only this contract can redeem it. Coins leave only to the
///         settlement address in the terms (`release`, with the claim preimage, before expiry) or back to the sender
///         (`refund` at or after expiry by anyone; `cancel` before expiry with the partner's signed consent).
/// @dev Per deposit batch one word is stored: the batch's Merkle root => item count and exit bits. The terms travel
///      as calldata and are re-hashed; an exit proves the id is leaf `index` of a stored root. Every state change is
///      written before the token call that depends on it (checks-effects-interactions); a batch item whose token
///      call fails is put back as it was and skipped. The token is fixed at construction. Ownership is two-step and
///      cannot be renounced; the owner can only change which partners accept new deposits, the guardian, and pause
///      new deposits.
contract RemittanceEscrow is IRemittanceEscrow, Ownable2Step, Pausable, ReentrancyGuardTransient, EIP712 {
    using SafeERC20 for IERC20;

    /// @inheritdoc IRemittanceEscrow
    uint256 public constant MAX_BATCH = 64;

    /// @inheritdoc IRemittanceEscrow
    /// @dev USDC's receiveWithAuthorization from an EOA uses ~40,000 gas, from an ERC-1271 wallet more; a transfer
    ///      ~30,000. 200,000 leaves room for contract wallets while bounding what one item can take from a batch.
    uint256 public constant ITEM_GAS = 200_000;

    /// Longest lock the constructor accepts for `maxLockSeconds`.
    uint64 public constant MAX_LOCK_LIMIT = 366 days;

    /// @inheritdoc IRemittanceEscrow
    bytes32 public constant DECLINE_TYPEHASH = keccak256("Decline(bytes32 id)");

    /// Gas kept back beyond the cap before an item's token call: the call's own cost (cold account access, memory)
    /// and EIP-150's 1/64 retention, so the callee really gets ITEM_GAS.
    uint256 private constant ITEM_GAS_RESERVE = ITEM_GAS / 63 + 10_000;

    /// Revert data kept from a refused token call (Skipped.detail): enough for Error(string) with a short reason.
    uint256 private constant DETAIL_BYTES_MAX = 256;

    /// Depth of a tree of MAX_BATCH leaves.
    uint256 private constant MAX_DEPTH = 6;

    /// Packed layouts (see IRemittanceEscrow.depositBatch / releaseBatch).
    uint256 private constant SECTION_HEADER = 49;
    uint256 private constant DEPOSIT_ITEM = 144;
    uint256 private constant GROUP_HEADER = 50;
    uint256 private constant GROUP_LEAF = 70;

    /// Batch word: n in the top byte, refunded bits at 64..127, exited bits at 0..63.
    uint256 private constant EXITED_MASK = type(uint64).max;
    uint256 private constant REFUNDED_SHIFT = 64;

    /// @inheritdoc IRemittanceEscrow
    address public immutable token;

    /// @inheritdoc IRemittanceEscrow
    uint64 public immutable minLockSeconds;

    /// @inheritdoc IRemittanceEscrow
    uint64 public immutable maxLockSeconds;

    /// May pause (as may the owner); cannot unpause.
    address public guardian;

    mapping(uint64 partnerId => bytes32 key) private _partnerKey;
    /// root => n << 248 | refunded bits << 64 | exited bits.
    mapping(bytes32 root => uint256 word) private _batch;

    /// The groups of a releaseBatch run (consecutive groups with one partner and settlement address), paid with one
    /// token transfer.
    struct Run {
        uint64 partnerId;
        address settlement;
        uint256 sum;
        uint256 count;
        uint256 groups;
        bytes32[] roots;
        uint256[] bits;
        uint256[] offsets;
    }

    constructor(address token_, address owner_, address guardian_, uint64 minLockSeconds_, uint64 maxLockSeconds_)
        Ownable(owner_)
        EIP712("Remesa Escrow", "3")
    {
        if (token_ == address(0) || guardian_ == address(0)) revert ZeroAddress();
        if (token_.code.length == 0) revert TokenHasNoCode(token_);
        if (minLockSeconds_ > maxLockSeconds_ || maxLockSeconds_ > MAX_LOCK_LIMIT || maxLockSeconds_ == 0) {
            revert InvalidLockBounds(minLockSeconds_, maxLockSeconds_);
        }
        token = token_;
        guardian = guardian_;
        minLockSeconds = minLockSeconds_;
        maxLockSeconds = maxLockSeconds_;
        emit GuardianSet(guardian_);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IRemittanceEscrow
    function remittanceId(Terms calldata t) external view returns (bytes32) {
        return _id(t);
    }

    /// @inheritdoc IRemittanceEscrow
    function rootOf(bytes32[] calldata leaves) external pure returns (bytes32) {
        uint256 n = leaves.length;
        if (n == 0 || n > MAX_BATCH) revert BatchTooLarge(n, MAX_BATCH);
        bytes32[] memory level = new bytes32[](_widthOf(n));
        for (uint256 i; i < n; ++i) {
            level[i] = leaves[i];
        }
        return _root(level);
    }

    /// @inheritdoc IRemittanceEscrow
    function batchOf(bytes32 root) external view returns (uint256 n, uint256 exitedBits, uint256 refundedBits) {
        uint256 w = _batch[root];
        return (w >> 248, w & EXITED_MASK, (w >> REFUNDED_SHIFT) & EXITED_MASK);
    }

    /// @inheritdoc IRemittanceEscrow
    function statusOf(bytes32 id, uint256 index, bytes32[] calldata proof) external view returns (Status) {
        (, uint256 w) = _locate(id, index, proof);
        return _statusIn(w, index);
    }

    /// @inheritdoc IRemittanceEscrow
    function partnerKey(uint64 partnerId) external view returns (bytes32) {
        return _partnerKey[partnerId];
    }

    /// @inheritdoc IRemittanceEscrow
    function partnerAccepts(uint64 partnerId, address settlement, address signer) external view returns (bool) {
        bytes32 key = _partnerKey[partnerId];
        return key != bytes32(0) && key == _keyOf(settlement, signer);
    }

    /// @inheritdoc IRemittanceEscrow
    function declineDigest(bytes32 id) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(DECLINE_TYPEHASH, id)));
    }

    // ---------------------------------------------------------------- administration

    /// @inheritdoc IRemittanceEscrow
    function setPartner(uint64 partnerId, address settlement, address signer) external onlyOwner {
        if (settlement == address(0) || settlement == address(this) || settlement == token) {
            revert InvalidSettlement(settlement);
        }
        if (signer == address(0)) revert ZeroAddress();
        _partnerKey[partnerId] = _keyOf(settlement, signer);
        emit PartnerSet(partnerId, settlement, signer);
    }

    /// @inheritdoc IRemittanceEscrow
    function removePartner(uint64 partnerId) external onlyOwner {
        delete _partnerKey[partnerId];
        emit PartnerRemoved(partnerId);
    }

    /// @inheritdoc IRemittanceEscrow
    function setGuardian(address guardian_) external onlyOwner {
        if (guardian_ == address(0)) revert ZeroAddress();
        guardian = guardian_;
        emit GuardianSet(guardian_);
    }

    /// @inheritdoc IRemittanceEscrow
    function pause() external {
        if (msg.sender != guardian && msg.sender != owner()) revert NotGuardian();
        _pause();
    }

    /// @inheritdoc IRemittanceEscrow
    function unpause() external onlyOwner {
        _unpause();
    }

    /// Ownership cannot be given up: a registry without an owner could never stop accepting a compromised partner.
    function renounceOwnership() public view override onlyOwner {
        revert RenounceDisabled();
    }

    // ---------------------------------------------------------------- deposit

    /// @inheritdoc IRemittanceEscrow
    function deposit(Terms calldata t, Authorization calldata auth)
        external
        whenNotPaused
        nonReentrant
        returns (bytes32 id)
    {
        _checkTerms(t);
        id = _id(t);
        // A batch of one: its root is the id. The token's nonce makes a second deposit of the same id impossible.
        _batch[id] = uint256(1) << 248;
        // Pulls exactly t.amount from t.sender; reverts (undoing the batch word) unless the sender signed these terms.
        IERC3009(token)
            .receiveWithAuthorization(
                t.sender, address(this), t.amount, auth.validAfter, auth.validBefore, id, auth.v, auth.r, auth.s
            );
        bytes32[] memory leaves = new bytes32[](1);
        leaves[0] = id;
        uint256[] memory items = new uint256[](1);
        items[0] = (uint256(uint160(t.sender)) << 96) | t.amount;
        emit Deposited(id, leaves, items);
    }

    /// @inheritdoc IRemittanceEscrow
    function depositBatch(bytes calldata data)
        external
        whenNotPaused
        nonReentrant
        returns (uint256 deposited, bytes32 root)
    {
        uint256 n = _depositCount(data);
        bytes32[] memory leaves = new bytes32[](_widthOf(n));
        uint256[] memory items = new uint256[](n);
        // Two fixed buffers: h (8 words, the id preimage; a section's header words written once) and c (the call).
        uint256 h;
        assembly ("memory-safe") {
            h := mload(0x40)
            mstore(0x40, add(h, 0x260))
        }
        uint256 o = 1;
        uint256 i;
        while (o < data.length) {
            uint256 count = uint8(data[o + 48]);
            deposited += _depositSection(data, o, h, i, leaves, items);
            o += SECTION_HEADER + count * DEPOSIT_ITEM;
            i += count;
        }
        if (deposited == 0) return (0, bytes32(0));
        root = _root(leaves);
        // Unreachable: a root commits to its leaves, and a deposited id can never be deposited again.
        if (_batch[root] != 0) revert BadProof(root);
        _batch[root] = n << 248;
        // The event names the n item positions, not the zero padding up to the tree's width.
        assembly ("memory-safe") {
            mstore(leaves, n)
        }
        emit Deposited(root, leaves, items);
    }

    /// The number of items of a packed deposit batch; reverts unless the layout is exact and within MAX_BATCH.
    function _depositCount(bytes calldata data) private pure returns (uint256 n) {
        if (data.length == 0) revert MalformedBatch();
        uint256 sections = uint8(data[0]);
        uint256 o = 1;
        for (uint256 k; k < sections; ++k) {
            if (o + SECTION_HEADER > data.length) revert MalformedBatch();
            uint256 count = uint8(data[o + 48]);
            if (count == 0) revert MalformedBatch();
            n += count;
            o += SECTION_HEADER + count * DEPOSIT_ITEM;
        }
        if (n > MAX_BATCH) revert BatchTooLarge(n, MAX_BATCH);
        if (n == 0 || o != data.length) revert MalformedBatch();
    }

    /// Deposits the items of the section at `o` (leaf positions from `first`); records each deposited id and its
    /// sender and amount; returns how many were deposited.
    function _depositSection(
        bytes calldata data,
        uint256 o,
        uint256 h,
        uint256 first,
        bytes32[] memory leaves,
        uint256[] memory items
    ) private returns (uint256 deposited) {
        bool accepts = _headerInto(data, o, h);
        uint256 end = first + uint8(data[o + 48]);
        o += SECTION_HEADER;
        for (uint256 i = first; i < end; ++i) {
            (bytes32 id, bool valid) = _packedId(data, o, h);
            if (!valid || !accepts) {
                emit Skipped(id, SkipReason.InvalidTerms, "");
            } else if (_receive(data, o, h, id, i)) {
                _recordLeaf(leaves, items, i, id, h);
                ++deposited;
            }
            o += DEPOSIT_ITEM;
        }
    }

    /// Writes the section-constant words of the id preimage into h; whether the partner accepts these terms.
    function _headerInto(bytes calldata data, uint256 o, uint256 h) private view returns (bool) {
        uint64 partnerId = uint64(bytes8(data[o:o + 8]));
        address settlement = address(bytes20(data[o + 8:o + 28]));
        address partnerSigner = address(bytes20(data[o + 28:o + 48]));
        assembly ("memory-safe") {
            mstore(h, address())
            mstore(add(h, 0x60), partnerId)
            mstore(add(h, 0xa0), settlement)
            mstore(add(h, 0xc0), partnerSigner)
        }
        bytes32 key = _partnerKey[partnerId];
        return key != bytes32(0) && key == _keyOf(settlement, partnerSigner);
    }

    /// The id of the packed deposit item at `o` (the header's words already in h) and whether its own terms are
    /// acceptable (non-zero sender and amount, expiry within the lock bounds).
    function _packedId(bytes calldata data, uint256 o, uint256 h) private view returns (bytes32 id, bool valid) {
        uint256 earliest = block.timestamp + minLockSeconds;
        uint256 latest = block.timestamp + maxLockSeconds;
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

    /// Leaf i is `id`; its event word is sender << 96 | amount (both still in the id preimage buffer h).
    function _recordLeaf(bytes32[] memory leaves, uint256[] memory items, uint256 i, bytes32 id, uint256 h)
        private
        pure
    {
        leaves[i] = id;
        uint256 item;
        assembly ("memory-safe") {
            item := or(shl(96, mload(add(h, 0x20))), mload(add(h, 0x40)))
        }
        items[i] = item;
    }

    /// receiveWithAuthorization for the packed item at `o` under the ITEM_GAS cap; Skipped on refusal.
    function _receive(bytes calldata data, uint256 o, uint256 h, bytes32 id, uint256 i) private returns (bool ok) {
        if (gasleft() < ITEM_GAS + ITEM_GAS_RESERVE) revert InsufficientGas(i);
        address target = token;
        assembly ("memory-safe") {
            let p := add(data.offset, o)
            let c := add(h, 0x100)
            // receiveWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)
            mstore(c, shl(224, 0xef55bec6))
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

    // ---------------------------------------------------------------- release

    /// @inheritdoc IRemittanceEscrow
    function release(Terms calldata t, bytes32 preimage, uint256 index, bytes32[] calldata proof)
        external
        nonReentrant
    {
        bytes32 id = _id(t);
        (bytes32 root, uint256 w) = _locate(id, index, proof);
        if (w == 0) revert BadProof(id);
        uint256 bit = uint256(1) << index;
        if (w & bit != 0) revert WrongState(id, _statusIn(w, index));
        if (block.timestamp >= t.expiry) revert Expired(id, t.expiry);
        if (keccak256(abi.encodePacked(preimage)) != t.claimHash) revert BadPreimage(id);
        _batch[root] = w | bit;
        emit Released(root, t.partnerId, bit);
        emit Settled(t.partnerId, t.settlement, t.amount, 1);
        IERC20(token).safeTransfer(t.settlement, t.amount);
    }

    /// @inheritdoc IRemittanceEscrow
    function releaseBatch(bytes calldata data) external nonReentrant returns (uint256 released) {
        if (data.length == 0) revert MalformedBatch();
        uint256 groups = uint8(data[0]);
        if (groups == 0) revert MalformedBatch();
        uint256 o = 1;
        uint256 total;
        Run memory run;
        run.roots = new bytes32[](groups);
        run.bits = new uint256[](groups);
        run.offsets = new uint256[](groups);
        for (uint256 g; g < groups; ++g) {
            if (o + GROUP_HEADER > data.length) revert MalformedBatch();
            uint256 m = uint8(data[o + 48]);
            total += m;
            if (total > MAX_BATCH) revert BatchTooLarge(total, MAX_BATCH);
            uint64 partnerId = uint64(bytes8(data[o:o + 8]));
            address settlement = address(bytes20(data[o + 8:o + 28]));
            if (run.groups != 0 && (partnerId != run.partnerId || settlement != run.settlement)) {
                released += _pay(data, run);
            }
            run.partnerId = partnerId;
            run.settlement = settlement;
            o = _prepareGroup(data, o, m, run);
        }
        if (o != data.length) revert MalformedBatch();
        if (run.groups != 0) released += _pay(data, run);
    }

    /// Verifies one group, marks its releasable leaves exited (before the run's transfer) and adds them to the run.
    function _prepareGroup(bytes calldata data, uint256 o, uint256 m, Run memory run) private returns (uint256 next) {
        next = o + GROUP_HEADER + m * GROUP_LEAF + uint256(uint8(data[o + 49])) * 32;
        if (m == 0 || next > data.length) revert MalformedBatch();
        (bytes32[] memory ids, bytes32 root, uint256 w) = _verifyGroup(data, o, m, next);
        if (w == 0) {
            for (uint256 k; k < m; ++k) {
                emit Skipped(ids[k], SkipReason.BadProof, "");
            }
            return next;
        }
        (uint256 runBits, uint256 sum, uint256 count) = _collectGroup(data, o, ids, w);
        if (count == 0) return next;
        _batch[root] = w | runBits;
        uint256 j = run.groups++;
        run.roots[j] = root;
        run.bits[j] = runBits;
        run.offsets[j] = o;
        run.sum += sum;
        run.count += count;
    }

    /// The group's ids, and its batch's root and word (w == 0 when the multiproof does not place the leaves in a
    /// deposited batch: unknown root, wrong depth, an index at or above n).
    function _verifyGroup(bytes calldata data, uint256 o, uint256 m, uint256 end)
        private
        view
        returns (bytes32[] memory ids, bytes32 root, uint256 w)
    {
        ids = new bytes32[](m);
        uint256[] memory idx = new uint256[](m);
        bytes32[] memory hs = new bytes32[](m);
        _groupIds(data, o, ids, idx, hs);
        uint256 start = o + GROUP_HEADER + m * GROUP_LEAF;
        uint256 last = idx[m - 1];
        uint256 depth;
        (root, depth) = _multiRoot(idx, hs, data[start:end]);
        if (depth > MAX_DEPTH) return (ids, root, 0);
        w = _batch[root];
        if (w == 0 || _depthOf(w >> 248) != depth || last >= w >> 248) return (ids, root, 0);
    }

    /// The group's leaves that can be released now (not exited, not expired): their bits, amounts and count.
    function _collectGroup(bytes calldata data, uint256 o, bytes32[] memory ids, uint256 w)
        private
        returns (uint256 runBits, uint256 sum, uint256 count)
    {
        for (uint256 k; k < ids.length; ++k) {
            uint256 p = o + GROUP_HEADER + k * GROUP_LEAF;
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

    /// Pays the run with one capped transfer; on refusal clears the run's exit bits again (Skipped, TransferFailed).
    function _pay(bytes calldata data, Run memory run) private returns (uint256 released) {
        (bool ok, bytes memory detail) = _cappedCall(abi.encodeCall(IERC20.transfer, (run.settlement, run.sum)), 0);
        for (uint256 j; j < run.groups; ++j) {
            if (ok) {
                emit Released(run.roots[j], run.partnerId, run.bits[j]);
            } else {
                _batch[run.roots[j]] &= ~run.bits[j];
                _skipGroup(data, run.offsets[j], run.bits[j], detail);
            }
        }
        if (ok) {
            emit Settled(run.partnerId, run.settlement, run.sum, run.count);
            released = run.count;
        }
        run.sum = 0;
        run.count = 0;
        run.groups = 0;
    }

    /// Skipped(TransferFailed) for the leaves of the group at `o` whose bits are in `bits`.
    function _skipGroup(bytes calldata data, uint256 o, uint256 bits, bytes memory detail) private {
        uint256 m = uint8(data[o + 48]);
        bytes32[] memory ids = new bytes32[](m);
        _groupIds(data, o, ids, new uint256[](m), new bytes32[](m));
        for (uint256 k; k < m; ++k) {
            if (bits & (uint256(1) << uint8(data[o + GROUP_HEADER + k * GROUP_LEAF])) != 0) {
                emit Skipped(ids[k], SkipReason.TransferFailed, detail);
            }
        }
    }

    /// The group's ids (claimHash = keccak256(preimage)), leaf indexes, and a copy of the ids to hash up. Reverts
    /// (MalformedBatch) unless the indexes are strictly ascending and below MAX_BATCH.
    function _groupIds(bytes calldata data, uint256 o, bytes32[] memory ids, uint256[] memory idx, bytes32[] memory hs)
        private
        view
    {
        uint256 m = ids.length;
        bool ordered = true;
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
        if (!ordered) revert MalformedBatch();
    }

    /// The root of a multiproof over strictly ascending leaf indexes (`idx`, `h` modified in place), level by
    /// level: a node's sibling is the next known node when that is its pair, else the next proof hash. Walks up
    /// until one node at index 0 is left and the proof is used up; returns the levels walked as the depth
    /// (MAX_DEPTH + 1 when the proof does not fit, so no stored batch matches).
    function _multiRoot(uint256[] memory idx, bytes32[] memory h, bytes calldata proof)
        private
        pure
        returns (bytes32 root, uint256 depth)
    {
        uint256 count = idx.length;
        uint256 p;
        while (count > 1 || idx[0] != 0 || p < proof.length) {
            if (depth == MAX_DEPTH) return (bytes32(0), MAX_DEPTH + 1);
            uint256 out;
            uint256 k;
            while (k < count) {
                uint256 ix = idx[k];
                bytes32 node;
                if (ix & 1 == 0 && k + 1 < count && idx[k + 1] == ix + 1) {
                    node = _hashPair(h[k], h[k + 1]);
                    k += 2;
                } else {
                    if (p == proof.length) return (bytes32(0), MAX_DEPTH + 1);
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

    // ---------------------------------------------------------------- refund and cancel

    /// @inheritdoc IRemittanceEscrow
    function refund(Terms calldata t, uint256 index, bytes32[] calldata proof) external nonReentrant {
        bytes32 id = _id(t);
        (bytes32 root, uint256 w) = _locate(id, index, proof);
        if (w == 0) revert BadProof(id);
        uint256 bit = uint256(1) << index;
        if (w & bit != 0) revert WrongState(id, _statusIn(w, index));
        if (block.timestamp < t.expiry) revert NotExpired(id, t.expiry);
        _batch[root] = w | bit | (bit << REFUNDED_SHIFT);
        emit Refunded(id, t.sender, t.amount);
        IERC20(token).safeTransfer(t.sender, t.amount);
    }

    /// @inheritdoc IRemittanceEscrow
    function refundBatch(ExitItem[] calldata items) external nonReentrant returns (uint256 refunded) {
        uint256 n = items.length;
        if (n > MAX_BATCH) revert BatchTooLarge(n, MAX_BATCH);
        for (uint256 i; i < n; ++i) {
            Terms calldata t = items[i].terms;
            uint256 index = items[i].index;
            bytes32 id = _id(t);
            (bytes32 root, uint256 w) = _locate(id, index, items[i].proof);
            if (w == 0) {
                emit Skipped(id, SkipReason.BadProof, "");
                continue;
            }
            uint256 bits = (uint256(1) << index) | (uint256(1) << (index + REFUNDED_SHIFT));
            if (w & (uint256(1) << index) != 0) {
                emit Skipped(id, SkipReason.WrongState, "");
                continue;
            }
            if (block.timestamp < t.expiry) {
                emit Skipped(id, SkipReason.NotExpired, "");
                continue;
            }
            _batch[root] = w | bits;
            (bool ok, bytes memory detail) = _cappedCall(abi.encodeCall(IERC20.transfer, (t.sender, t.amount)), i);
            if (ok) {
                emit Refunded(id, t.sender, t.amount);
                ++refunded;
            } else {
                // The token refused (a blacklisted sender, USDC paused): nothing left, still Locked.
                _batch[root] = w;
                emit Skipped(id, SkipReason.TransferFailed, detail);
            }
        }
    }

    /// @inheritdoc IRemittanceEscrow
    function cancel(Terms calldata t, uint256 index, bytes32[] calldata proof, bytes calldata declineSignature)
        external
        nonReentrant
    {
        bytes32 id = _id(t);
        (bytes32 root, uint256 w) = _locate(id, index, proof);
        if (w == 0) revert BadProof(id);
        uint256 bit = uint256(1) << index;
        if (w & bit != 0) revert WrongState(id, _statusIn(w, index));
        if (block.timestamp >= t.expiry) revert Expired(id, t.expiry);
        if (!SignatureChecker.isValidSignatureNowCalldata(t.partnerSigner, declineDigest(id), declineSignature)) {
            revert BadDeclineSignature(id);
        }
        _batch[root] = w | bit | (bit << REFUNDED_SHIFT);
        emit Canceled(id, t.partnerId);
        emit Refunded(id, t.sender, t.amount);
        IERC20(token).safeTransfer(t.sender, t.amount);
    }

    // ---------------------------------------------------------------- Merkle

    /// The batch word and root of the leaf `id` at `index` with `proof`; w == 0 when that is not a leaf of a
    /// deposited batch (unknown root, index >= n, or a proof of another depth than the batch's).
    function _locate(bytes32 id, uint256 index, bytes32[] calldata proof)
        private
        view
        returns (bytes32 root, uint256 w)
    {
        uint256 depth = proof.length;
        if (depth > MAX_DEPTH || index >> depth != 0) return (bytes32(0), 0);
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

    function _statusIn(uint256 w, uint256 index) private pure returns (Status) {
        if (w == 0) return Status.None;
        if (w & (uint256(1) << index) == 0) return Status.Locked;
        if (w & (uint256(1) << (index + REFUNDED_SHIFT)) != 0) return Status.Refunded;
        return Status.Released;
    }

    function _depthOf(uint256 n) private pure returns (uint256 d) {
        while ((uint256(1) << d) < n) ++d;
    }

    function _widthOf(uint256 n) private pure returns (uint256) {
        return uint256(1) << _depthOf(n);
    }

    function _hashPair(bytes32 a, bytes32 b) private pure returns (bytes32 r) {
        assembly ("memory-safe") {
            mstore(0x00, a)
            mstore(0x20, b)
            r := keccak256(0x00, 0x40)
        }
    }

    /// The root of a power-of-two-wide list of leaves (left as it is).
    function _root(bytes32[] memory leaves) private pure returns (bytes32) {
        uint256 w = leaves.length;
        if (w == 1) return leaves[0];
        w >>= 1;
        bytes32[] memory level = new bytes32[](w);
        for (uint256 i; i < w; ++i) {
            level[i] = _hashPair(leaves[2 * i], leaves[2 * i + 1]);
        }
        while (w > 1) {
            w >>= 1;
            for (uint256 i; i < w; ++i) {
                level[i] = _hashPair(level[2 * i], level[2 * i + 1]);
            }
        }
        return level[0];
    }

    // ---------------------------------------------------------------- internal

    function _keyOf(address settlement, address signer) private pure returns (bytes32) {
        return keccak256(abi.encode(settlement, signer));
    }

    function _checkTerms(Terms calldata t) private view {
        if (t.sender == address(0) || t.amount == 0 || t.amount > type(uint96).max) revert InvalidTerms();
        uint256 earliest = block.timestamp + minLockSeconds;
        uint256 latest = block.timestamp + maxLockSeconds;
        if (t.expiry < earliest || t.expiry > latest) revert LockTimeOutOfBounds(t.expiry, earliest, latest);
        bytes32 key = _partnerKey[t.partnerId];
        if (key == bytes32(0) || key != _keyOf(t.settlement, t.partnerSigner)) revert PartnerNotAccepting(t.partnerId);
    }

    /// Calls the token with at most ITEM_GAS. Succeeds when the call did and returned nothing or `true` (as
    /// SafeERC20 accepts); otherwise returns up to DETAIL_BYTES_MAX bytes of its revert data. Reverts the whole
    /// transaction with InsufficientGas(index) when less than the cap is left: that is the transaction's gas
    /// limit, never the item's fault, so a low limit cannot "succeed" by skipping valid items.
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
        return (false, _returnDetail());
    }

    /// Up to DETAIL_BYTES_MAX bytes of the last call's revert data.
    function _returnDetail() private pure returns (bytes memory detail) {
        uint256 size;
        assembly ("memory-safe") {
            size := returndatasize()
        }
        if (size > DETAIL_BYTES_MAX) size = DETAIL_BYTES_MAX;
        detail = new bytes(size);
        assembly ("memory-safe") {
            returndatacopy(add(detail, 0x20), 0, size)
        }
    }

    /// keccak256(abi.encode(address(this), sender, amount, partnerId, expiry, settlement, partnerSigner, claimHash)),
    /// hashed in scratch memory above the free memory pointer (not moved, so batches do not grow memory per item).
    function _id(Terms calldata t) private view returns (bytes32 id) {
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
}
