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

/// @title Remesa remittance escrow (v2)
/// @notice See {IRemittanceEscrow}. Coins come in only through EIP-3009 `receiveWithAuthorization` whose nonce is the
///         remittance id (the hash of the terms), so the sender's signature binds the exact terms, settlement
///         address and partner signer included, and only this contract can redeem it. Coins leave only to the
///         settlement address in the terms (`release`, with the claim preimage, before expiry) or back to the sender
///         (`refund` at or after expiry by anyone; `cancel` before expiry with the partner's signed consent).
/// @dev Per remittance only `id => Status` is stored (one slot); the terms travel as calldata and are re-hashed.
///      Every state change is written before the token call that depends on it (checks-effects-interactions); a
///      batch item whose token call fails is put back as it was and skipped. The token is fixed at construction.
///      Ownership is two-step and cannot be renounced; the owner can only change which partners accept new
///      deposits, the guardian, and pause new deposits.
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

    /// @inheritdoc IRemittanceEscrow
    address public immutable token;

    /// @inheritdoc IRemittanceEscrow
    uint64 public immutable minLockSeconds;

    /// @inheritdoc IRemittanceEscrow
    uint64 public immutable maxLockSeconds;

    /// May pause (as may the owner); cannot unpause.
    address public guardian;

    mapping(uint64 partnerId => bytes32 key) private _partnerKey;
    mapping(bytes32 id => Status status) private _status;

    constructor(address token_, address owner_, address guardian_, uint64 minLockSeconds_, uint64 maxLockSeconds_)
        Ownable(owner_)
        EIP712("Remesa Escrow", "2")
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
    function statusOf(bytes32 id) external view returns (Status) {
        return _status[id];
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
        Status s = _status[id];
        if (s != Status.None) revert WrongState(id, s);
        _status[id] = Status.Locked;
        // Pulls exactly t.amount from t.sender; reverts (undoing the Locked state) unless the sender signed these terms.
        IERC3009(token)
            .receiveWithAuthorization(
                t.sender, address(this), t.amount, auth.validAfter, auth.validBefore, id, auth.v, auth.r, auth.s
            );
        emit Deposited(id, t.sender, t.partnerId, t.amount, t.expiry, t.claimHash);
    }

    /// @inheritdoc IRemittanceEscrow
    function depositBatch(DepositItem[] calldata items)
        external
        whenNotPaused
        nonReentrant
        returns (uint256 deposited)
    {
        uint256 n = items.length;
        if (n > MAX_BATCH) revert BatchTooLarge(n, MAX_BATCH);
        for (uint256 i; i < n; ++i) {
            Terms calldata t = items[i].terms;
            bytes32 id = _id(t);
            if (!_termsAcceptable(t)) {
                emit Skipped(id, SkipReason.InvalidTerms, "");
                continue;
            }
            if (_status[id] != Status.None) {
                emit Skipped(id, SkipReason.WrongState, "");
                continue;
            }
            _status[id] = Status.Locked;
            Authorization calldata a = items[i].auth;
            bytes memory data = abi.encodeCall(
                IERC3009.receiveWithAuthorization,
                (t.sender, address(this), t.amount, a.validAfter, a.validBefore, id, a.v, a.r, a.s)
            );
            (bool ok, bytes memory detail) = _cappedCall(data, i);
            if (ok) {
                emit Deposited(id, t.sender, t.partnerId, t.amount, t.expiry, t.claimHash);
                ++deposited;
            } else {
                // Refused or out of its gas cap: nothing arrived, the remittance was never locked.
                delete _status[id];
                emit Skipped(id, SkipReason.AuthorizationFailed, detail);
            }
        }
    }

    // ---------------------------------------------------------------- release

    /// @inheritdoc IRemittanceEscrow
    function release(Terms calldata t, bytes32 preimage) external nonReentrant {
        bytes32 id = _id(t);
        Status s = _status[id];
        if (s != Status.Locked) revert WrongState(id, s);
        if (block.timestamp >= t.expiry) revert Expired(id, t.expiry);
        if (keccak256(abi.encodePacked(preimage)) != t.claimHash) revert BadPreimage(id);
        _status[id] = Status.Released;
        emit Released(id, t.partnerId, t.amount, preimage);
        emit Settled(t.partnerId, t.settlement, t.amount, 1);
        IERC20(token).safeTransfer(t.settlement, t.amount);
    }

    /// @inheritdoc IRemittanceEscrow
    function releaseBatch(ReleaseItem[] calldata items) external nonReentrant returns (uint256 released) {
        uint256 n = items.length;
        if (n > MAX_BATCH) revert BatchTooLarge(n, MAX_BATCH);
        // The current run's items marked Released: their indexes and ids.
        uint256[] memory run = new uint256[](n);
        bytes32[] memory runIds = new bytes32[](n);
        uint256 i;
        while (i < n) {
            uint64 partnerId = items[i].terms.partnerId;
            address settlement = items[i].terms.settlement;
            uint256 sum;
            uint256 count;
            do {
                Terms calldata t = items[i].terms;
                bytes32 id = _id(t);
                if (_status[id] != Status.Locked) {
                    emit Skipped(id, SkipReason.WrongState, "");
                } else if (block.timestamp >= t.expiry) {
                    emit Skipped(id, SkipReason.Expired, "");
                } else if (keccak256(abi.encodePacked(items[i].preimage)) != t.claimHash) {
                    emit Skipped(id, SkipReason.BadPreimage, "");
                } else {
                    _status[id] = Status.Released;
                    run[count] = i;
                    runIds[count] = id;
                    sum += t.amount;
                    ++count;
                }
                ++i;
            } while (i < n && items[i].terms.partnerId == partnerId && items[i].terms.settlement == settlement);
            if (count == 0) continue;
            (bool ok, bytes memory detail) =
                _cappedCall(abi.encodeCall(IERC20.transfer, (settlement, sum)), run[count - 1]);
            for (uint256 k; k < count; ++k) {
                ReleaseItem calldata item = items[run[k]];
                bytes32 id = runIds[k];
                if (ok) {
                    emit Released(id, partnerId, item.terms.amount, item.preimage);
                } else {
                    // The token refused the payout (a blacklisted or paused party): nothing left, still Locked.
                    _status[id] = Status.Locked;
                    emit Skipped(id, SkipReason.TransferFailed, detail);
                }
            }
            if (ok) {
                emit Settled(partnerId, settlement, sum, count);
                released += count;
            }
        }
    }

    // ---------------------------------------------------------------- refund and cancel

    /// @inheritdoc IRemittanceEscrow
    function refund(Terms calldata t) external nonReentrant {
        bytes32 id = _id(t);
        Status s = _status[id];
        if (s != Status.Locked) revert WrongState(id, s);
        if (block.timestamp < t.expiry) revert NotExpired(id, t.expiry);
        _status[id] = Status.Refunded;
        emit Refunded(id, t.sender, t.amount);
        IERC20(token).safeTransfer(t.sender, t.amount);
    }

    /// @inheritdoc IRemittanceEscrow
    function refundBatch(Terms[] calldata items) external nonReentrant returns (uint256 refunded) {
        uint256 n = items.length;
        if (n > MAX_BATCH) revert BatchTooLarge(n, MAX_BATCH);
        for (uint256 i; i < n; ++i) {
            Terms calldata t = items[i];
            bytes32 id = _id(t);
            if (_status[id] != Status.Locked) {
                emit Skipped(id, SkipReason.WrongState, "");
                continue;
            }
            if (block.timestamp < t.expiry) {
                emit Skipped(id, SkipReason.NotExpired, "");
                continue;
            }
            _status[id] = Status.Refunded;
            (bool ok, bytes memory detail) = _cappedCall(abi.encodeCall(IERC20.transfer, (t.sender, t.amount)), i);
            if (ok) {
                emit Refunded(id, t.sender, t.amount);
                ++refunded;
            } else {
                _status[id] = Status.Locked;
                emit Skipped(id, SkipReason.TransferFailed, detail);
            }
        }
    }

    /// @inheritdoc IRemittanceEscrow
    function cancel(Terms calldata t, bytes calldata declineSignature) external nonReentrant {
        bytes32 id = _id(t);
        Status s = _status[id];
        if (s != Status.Locked) revert WrongState(id, s);
        if (block.timestamp >= t.expiry) revert Expired(id, t.expiry);
        if (!SignatureChecker.isValidSignatureNowCalldata(t.partnerSigner, declineDigest(id), declineSignature)) {
            revert BadDeclineSignature(id);
        }
        _status[id] = Status.Refunded;
        emit Canceled(id, t.partnerId);
        emit Refunded(id, t.sender, t.amount);
        IERC20(token).safeTransfer(t.sender, t.amount);
    }

    // ---------------------------------------------------------------- internal

    function _keyOf(address settlement, address signer) private pure returns (bytes32) {
        return keccak256(abi.encode(settlement, signer));
    }

    function _termsAcceptable(Terms calldata t) private view returns (bool) {
        if (t.sender == address(0) || t.amount == 0) return false;
        if (t.expiry < block.timestamp + minLockSeconds || t.expiry > block.timestamp + maxLockSeconds) return false;
        bytes32 key = _partnerKey[t.partnerId];
        return key != bytes32(0) && key == _keyOf(t.settlement, t.partnerSigner);
    }

    function _checkTerms(Terms calldata t) private view {
        if (t.sender == address(0) || t.amount == 0) revert InvalidTerms();
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
        uint256 size = returned < DETAIL_BYTES_MAX ? returned : DETAIL_BYTES_MAX;
        detail = new bytes(size);
        assembly ("memory-safe") {
            returndatacopy(add(detail, 0x20), 0, size)
        }
        return (false, detail);
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
