// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IRemittanceEscrow} from "./interfaces/IRemittanceEscrow.sol";

/// @title Merkle-batch escrow PROTOTYPE, variant G: global leaf counter + global exit bitmap (lean packed paths only)
/// @notice Same terms, ids, positional tree and packed layouts as RemittanceEscrowMerkle, other storage:
///             leafCount                      global leaf counter; a batch takes [first, first + n)
///             _root[first] = root[255:8] ‖ n  one new slot per batch (the root's low byte replaced by n)
///             _exited[g >> 8] bit (g & 255)  exit bitmap, g = first + index (256 leaves per word)
///         so releases of neighbouring batches share exit words. Only what the gas comparison needs is here:
///         depositBatchPackedLean, releaseGroupsPacked (group header carries `first`), refund. No cancel / ABI paths.
contract RemittanceEscrowMerkleBitmap is Ownable, Pausable, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    enum SkipReason {
        WrongState,
        AuthorizationFailed,
        BadPreimage,
        NotExpired,
        InvalidTerms,
        Expired,
        TransferFailed,
        BadProof
    }

    event BatchDeposited(bytes32 indexed root, uint256 first, uint256 n, uint256 deposited);
    event Settled(uint64 indexed partnerId, address indexed settlement, uint256 amount, uint256 count);
    event Refunded(bytes32 indexed id, address indexed sender, uint256 amount);
    event Skipped(bytes32 indexed id, SkipReason reason, bytes detail);

    error InvalidTerms();
    error BatchTooLarge(uint256 size, uint256 max);
    error InsufficientGas(uint256 index);
    error BadProof(bytes32 id);
    error AlreadyExited(bytes32 id);
    error NotExpired(bytes32 id, uint64 expiry);

    uint256 public constant MAX_BATCH = 64;
    uint256 public constant ITEM_GAS = 200_000;
    uint256 private constant ITEM_GAS_RESERVE = ITEM_GAS / 63 + 10_000;
    uint256 private constant DETAIL_BYTES_MAX = 256;
    uint256 private constant HEADER = 55; // release group header

    address public immutable token;
    uint64 public immutable minLockSeconds;
    uint64 public immutable maxLockSeconds;

    uint256 public leafCount;
    mapping(uint64 partnerId => bytes32 key) private _partnerKey;
    mapping(uint256 first => uint256 rootN) private _root;
    mapping(uint256 word => uint256 bits) private _exited;

    constructor(address token_, address owner_, uint64 minLock, uint64 maxLock) Ownable(owner_) {
        token = token_;
        minLockSeconds = minLock;
        maxLockSeconds = maxLock;
        leafCount = 1; // steady state: the counter slot is never zero
    }

    function remittanceId(IRemittanceEscrow.Terms calldata t) public view returns (bytes32) {
        return keccak256(
            abi.encode(
                address(this), t.sender, t.amount, t.partnerId, t.expiry, t.settlement, t.partnerSigner, t.claimHash
            )
        );
    }

    function setPartner(uint64 partnerId, address settlement, address signer) external onlyOwner {
        _partnerKey[partnerId] = keccak256(abi.encode(settlement, signer));
    }

    function isExited(uint256 g) external view returns (bool) {
        return _exited[g >> 8] & (uint256(1) << (g & 255)) != 0;
    }

    // ------------------------------------------------------------ deposit (as RemittanceEscrowMerkle's lean path)

    function depositBatchPackedLean(bytes calldata data)
        external
        whenNotPaused
        nonReentrant
        returns (uint256 deposited, bytes32 root, uint256 first)
    {
        uint256 n = uint8(data[48]);
        if (n > MAX_BATCH) revert BatchTooLarge(n, MAX_BATCH);
        if (data.length != 49 + n * 144) revert InvalidTerms();
        uint256 width = 1;
        while (width < n) width <<= 1;
        bytes32[] memory leaves = new bytes32[](width);
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
        if (deposited == 0) return (0, bytes32(0), 0);
        root = _rootInPlace(leaves);
        first = leafCount;
        leafCount = first + n;
        _root[first] = (uint256(root) & ~uint256(0xff)) | n;
        emit BatchDeposited(root, first, n, deposited);
    }

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
        return key != bytes32(0) && key == keccak256(abi.encode(settlement, partnerSigner));
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

    function _leanReceive(bytes calldata data, uint256 o, uint256 h, bytes32 id, uint256 i) private returns (bool ok) {
        if (gasleft() < ITEM_GAS + ITEM_GAS_RESERVE) revert InsufficientGas(i);
        address target = token;
        assembly ("memory-safe") {
            let p := add(data.offset, o)
            let c := add(h, 0x100)
            mstore(c, shl(224, 0xef55bec6))
            mstore(add(c, 0x04), mload(add(h, 0x20)))
            mstore(add(c, 0x24), address())
            mstore(add(c, 0x44), mload(add(h, 0x40)))
            mstore(add(c, 0x64), shr(216, calldataload(add(p, 69))))
            mstore(add(c, 0x84), shr(216, calldataload(add(p, 74))))
            mstore(add(c, 0xa4), id)
            mstore(add(c, 0xc4), shr(248, calldataload(add(p, 79))))
            mstore(add(c, 0xe4), calldataload(add(p, 80)))
            mstore(add(c, 0x104), calldataload(add(p, 112)))
            ok := call(ITEM_GAS, target, 0, c, 0x124, 0, 0x20)
            if ok { ok := or(iszero(returndatasize()), and(iszero(lt(returndatasize(), 32)), eq(mload(0), 1))) }
        }
        if (!ok) emit Skipped(id, SkipReason.AuthorizationFailed, _returnDetail());
    }

    // ------------------------------------------------------------ release (packed groups, one transfer per run)

    struct Pending {
        uint64 partnerId;
        address settlement;
        uint256 sum;
        uint256 count;
        uint256 entries;
        uint256[] words;
        uint256[] bits;
    }

    /// As RemittanceEscrowMerkle.releaseGroupsPacked, the group header being
    /// [partnerId u64][settlement 20][partnerSigner 20][m u8][proofLen u8][first u40].
    function releaseGroupsPacked(bytes calldata data) external nonReentrant returns (uint256 released) {
        uint256 groups = uint8(data[0]);
        uint256 o = 1;
        uint256 total;
        Pending memory run;
        run.words = new uint256[](2 * groups);
        run.bits = new uint256[](2 * groups);
        for (uint256 g; g < groups; ++g) {
            uint256 m = uint8(data[o + 48]);
            total += m;
            if (total > MAX_BATCH) revert BatchTooLarge(total, MAX_BATCH);
            uint64 partnerId = uint64(bytes8(data[o:o + 8]));
            address settlement = address(bytes20(data[o + 8:o + 28]));
            if (run.count != 0 && (partnerId != run.partnerId || settlement != run.settlement)) {
                released += _flush(run);
            }
            run.partnerId = partnerId;
            run.settlement = settlement;
            o = _prepareGroup(data, o, m, run);
        }
        if (o != data.length) revert InvalidTerms();
        if (run.count != 0) released += _flush(run);
    }

    function _prepareGroup(bytes calldata data, uint256 o, uint256 m, Pending memory run)
        private
        returns (uint256 next)
    {
        uint256 proofLen = uint8(data[o + 49]);
        next = o + HEADER + m * 70 + proofLen * 32;
        if (next > data.length || m == 0) revert InvalidTerms();
        (bytes32[] memory ids, bool ok) = _verifyGroup(data, o, m, proofLen);
        if (!ok) {
            for (uint256 k; k < m; ++k) {
                emit Skipped(ids[k], SkipReason.BadProof, "");
            }
            return next;
        }
        _collect(data, o, ids, run);
    }

    /// Marks the group's releasable leaves in the exit bitmap (before the run's transfer), words written once each.
    function _collect(bytes calldata data, uint256 o, bytes32[] memory ids, Pending memory run) private {
        uint256 first = uint40(bytes5(data[o + 50:o + 55]));
        uint256 curWord = type(uint256).max;
        uint256 cur;
        uint256 newBits;
        for (uint256 k; k < ids.length; ++k) {
            uint256 p = o + HEADER + k * 70;
            uint256 g = first + uint8(data[p]);
            if (g >> 8 != curWord) {
                if (newBits != 0) _mark(run, curWord, cur, newBits);
                curWord = g >> 8;
                cur = _exited[curWord];
                newBits = 0;
            }
            uint256 bit = uint256(1) << (g & 255);
            if ((cur | newBits) & bit != 0) {
                emit Skipped(ids[k], SkipReason.WrongState, "");
            } else if (block.timestamp >= uint40(bytes5(data[p + 33:p + 38]))) {
                emit Skipped(ids[k], SkipReason.Expired, "");
            } else {
                newBits |= bit;
                run.sum += uint96(bytes12(data[p + 21:p + 33]));
                ++run.count;
            }
        }
        if (newBits != 0) _mark(run, curWord, cur, newBits);
    }

    function _mark(Pending memory run, uint256 word, uint256 cur, uint256 newBits) private {
        _exited[word] = cur | newBits;
        uint256 j = run.entries++;
        run.words[j] = word;
        run.bits[j] = newBits;
    }

    function _flush(Pending memory run) private returns (uint256 released) {
        (bool ok,) = _cappedCall(abi.encodeCall(IERC20.transfer, (run.settlement, run.sum)), 0);
        if (ok) {
            emit Settled(run.partnerId, run.settlement, run.sum, run.count);
            released = run.count;
        } else {
            // Prototype: bits cleared again; per-leaf TransferFailed events omitted here (see the main prototype).
            for (uint256 j; j < run.entries; ++j) {
                _exited[run.words[j]] &= ~run.bits[j];
            }
        }
        run.sum = 0;
        run.count = 0;
        run.entries = 0;
    }

    function _verifyGroup(bytes calldata data, uint256 o, uint256 m, uint256 proofLen)
        private
        view
        returns (bytes32[] memory ids, bool ok)
    {
        ids = new bytes32[](m);
        uint256[] memory idx = new uint256[](m);
        bytes32[] memory hs = new bytes32[](m);
        if (!_groupIds(data, o, ids, idx, hs)) return (ids, false);
        uint256 start = o + HEADER + m * 70;
        ok = _checkRoot(uint40(bytes5(data[o + 50:o + 55])), idx, hs, data[start:start + proofLen * 32]);
    }

    function _checkRoot(uint256 first, uint256[] memory idx, bytes32[] memory hs, bytes calldata proof)
        private
        view
        returns (bool)
    {
        uint256 last = idx[idx.length - 1];
        (bytes32 root, uint256 depth) = _multiRootMem(idx, hs, proof);
        uint256 w = _root[first];
        uint256 n = w & 0xff;
        return w != 0 && (w >> 8) == (uint256(root) >> 8) && _depthOf(n) == depth && last < n;
    }

    function _groupIds(bytes calldata data, uint256 o, bytes32[] memory ids, uint256[] memory idx, bytes32[] memory hs)
        private
        view
        returns (bool ordered)
    {
        uint256 m = ids.length;
        ordered = true;
        assembly ("memory-safe") {
            let h := mload(0x40)
            let q := add(data.offset, o)
            mstore(h, address())
            mstore(add(h, 0x60), shr(192, calldataload(q)))
            mstore(add(h, 0xa0), shr(96, calldataload(add(q, 8))))
            mstore(add(h, 0xc0), shr(96, calldataload(add(q, 28))))
            let prev := not(0)
            for { let k := 0 } lt(k, m) { k := add(k, 1) } {
                let p := add(q, add(HEADER, mul(k, 70)))
                let ix := shr(248, calldataload(p))
                mstore(add(h, 0x20), shr(96, calldataload(add(p, 1))))
                mstore(add(h, 0x40), shr(160, calldataload(add(p, 21))))
                mstore(add(h, 0x80), shr(216, calldataload(add(p, 33))))
                mstore(0x00, calldataload(add(p, 38)))
                mstore(add(h, 0xe0), keccak256(0x00, 0x20))
                let id := keccak256(h, 0x100)
                mstore(add(add(ids, 0x20), mul(k, 0x20)), id)
                mstore(add(add(hs, 0x20), mul(k, 0x20)), id)
                mstore(add(add(idx, 0x20), mul(k, 0x20)), ix)
                if or(gt(ix, 63), and(iszero(eq(prev, not(0))), iszero(gt(ix, prev)))) { ordered := 0 }
                prev := ix
            }
        }
    }

    // ------------------------------------------------------------ refund (ABI, single)

    function refund(IRemittanceEscrow.Terms calldata t, uint256 first, uint256 index, bytes32[] calldata proof)
        external
        nonReentrant
    {
        bytes32 id = remittanceId(t);
        if (!_isLeaf(id, first, index, proof)) revert BadProof(id);
        uint256 g = first + index;
        uint256 bit = uint256(1) << (g & 255);
        uint256 word = _exited[g >> 8];
        if (word & bit != 0) revert AlreadyExited(id);
        if (block.timestamp < t.expiry) revert NotExpired(id, t.expiry);
        _exited[g >> 8] = word | bit;
        emit Refunded(id, t.sender, t.amount);
        IERC20(token).safeTransfer(t.sender, t.amount);
    }

    function _isLeaf(bytes32 id, uint256 first, uint256 index, bytes32[] calldata proof) private view returns (bool) {
        uint256 depth = proof.length;
        if (depth > 6 || index >> depth != 0) return false;
        bytes32 root = id;
        uint256 ix = index;
        for (uint256 k; k < depth; ++k) {
            root = ix & 1 == 0 ? _hashPair(root, proof[k]) : _hashPair(proof[k], root);
            ix >>= 1;
        }
        uint256 w = _root[first];
        uint256 n = w & 0xff;
        return w != 0 && (w >> 8) == (uint256(root) >> 8) && _depthOf(n) == depth && index < n;
    }

    // ------------------------------------------------------------ Merkle and helpers

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
}
