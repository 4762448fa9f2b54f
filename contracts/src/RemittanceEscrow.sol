// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IERC3009} from "@openzeppelin/contracts/interfaces/draft-IERC3009.sol";
import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {IRemittanceEscrow} from "./interfaces/IRemittanceEscrow.sol";

/// @title Remesa remittance escrow
/// @notice See {IRemittanceEscrow}. Coins come in only through EIP-3009 `receiveWithAuthorization` whose nonce is the
///         remittance id (the hash of the terms), so the sender's signature binds the exact terms and only this
///         contract can redeem it. Coins leave only to the settlement address of the partner bound in the terms
///         (`release`, with the claim preimage) or back to the sender (`refund`, at or after expiry, by anyone).
/// @dev Per remittance only `id => Status` is stored (one slot); the terms travel as calldata and are re-hashed.
///      Every state change is written before any token transfer (checks-effects-interactions); the batch functions
///      transfer only after all their state changes. The token is fixed at construction.
contract RemittanceEscrow is IRemittanceEscrow, Ownable2Step, Pausable {
    using SafeERC20 for IERC20;

    /// @inheritdoc IRemittanceEscrow
    uint256 public constant MAX_BATCH = 64;

    /// @inheritdoc IRemittanceEscrow
    address public immutable token;

    /// May pause (as may the owner); cannot unpause.
    address public guardian;

    /// `depositBatch` ran out of gas in the token call of item `index`: the whole batch reverts (raise the
    /// transaction's gas limit) rather than skipping an item whose authorization may well be valid.
    error InsufficientGas(uint256 index);

    mapping(uint64 partnerId => address settlement) private _settlement;
    mapping(bytes32 id => Status status) private _status;

    constructor(address token_, address owner_, address guardian_) Ownable(owner_) {
        if (token_ == address(0) || guardian_ == address(0)) revert ZeroAddress();
        token = token_;
        guardian = guardian_;
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
    function partnerSettlement(uint64 partnerId) external view returns (address) {
        return _settlement[partnerId];
    }

    // ---------------------------------------------------------------- administration

    /// @inheritdoc IRemittanceEscrow
    function setPartner(uint64 partnerId, address settlement) external onlyOwner {
        _settlement[partnerId] = settlement;
        emit PartnerSet(partnerId, settlement);
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

    // ---------------------------------------------------------------- deposit

    /// @inheritdoc IRemittanceEscrow
    function deposit(Terms calldata t, Authorization calldata auth) external whenNotPaused returns (bytes32 id) {
        if (t.sender == address(0) || t.amount == 0 || t.expiry <= block.timestamp) revert InvalidTerms();
        if (_settlement[t.partnerId] == address(0)) revert UnknownPartner(t.partnerId);
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
    function depositBatch(DepositItem[] calldata items) external whenNotPaused returns (uint256 deposited) {
        uint256 n = items.length;
        if (n > MAX_BATCH) revert BatchTooLarge(n, MAX_BATCH);
        for (uint256 i; i < n; ++i) {
            Terms calldata t = items[i].terms;
            bytes32 id = _id(t);
            if (
                t.sender == address(0) || t.amount == 0 || t.expiry <= block.timestamp
                    || _settlement[t.partnerId] == address(0)
            ) {
                emit Skipped(id, SkipReason.InvalidTerms);
                continue;
            }
            if (_status[id] != Status.None) {
                emit Skipped(id, SkipReason.WrongState);
                continue;
            }
            _status[id] = Status.Locked;
            Authorization calldata a = items[i].auth;
            uint256 gasBefore = gasleft();
            try IERC3009(token)
                .receiveWithAuthorization(
                    t.sender, address(this), t.amount, a.validAfter, a.validBefore, id, a.v, a.r, a.s
                ) {
                emit Deposited(id, t.sender, t.partnerId, t.amount, t.expiry, t.claimHash);
                ++deposited;
            } catch {
                // A call that used up (nearly) all the gas it was given ran out of gas somewhere, possibly in a nested
                // call such as an ERC-1271 wallet's check (each level keeps 1/64, EIP-150): that is the transaction's
                // gas limit, not a refused authorization. Revert the whole batch, so a low gas estimate can never
                // "succeed" by skipping valid items. A genuine refusal costs a few thousand gas, far below 15/16.
                if (gasleft() < gasBefore / 16) revert InsufficientGas(i);
                // Refused: nothing arrived, the remittance was never locked.
                delete _status[id];
                emit Skipped(id, SkipReason.AuthorizationFailed);
            }
        }
    }

    // ---------------------------------------------------------------- release

    /// @inheritdoc IRemittanceEscrow
    function release(Terms calldata t, bytes32 preimage) external whenNotPaused {
        bytes32 id = _id(t);
        Status s = _status[id];
        if (s != Status.Locked) revert WrongState(id, s);
        if (keccak256(abi.encodePacked(preimage)) != t.claimHash) revert BadPreimage(id);
        address settlement = _settlement[t.partnerId];
        if (settlement == address(0)) revert UnknownPartner(t.partnerId);
        _status[id] = Status.Released;
        emit Released(id, t.partnerId, t.amount, preimage);
        emit Settled(t.partnerId, settlement, t.amount, 1);
        IERC20(token).safeTransfer(settlement, t.amount);
    }

    /// @inheritdoc IRemittanceEscrow
    function releaseBatch(ReleaseItem[] calldata items) external whenNotPaused returns (uint256 released) {
        uint256 n = items.length;
        if (n > MAX_BATCH) revert BatchTooLarge(n, MAX_BATCH);
        // One pending transfer per run of equal partnerId; paid after every state change of the batch.
        address[] memory payees = new address[](n);
        uint256[] memory sums = new uint256[](n);
        uint256 runs;
        uint256 i;
        while (i < n) {
            uint64 partnerId = items[i].terms.partnerId;
            address settlement = _settlement[partnerId];
            uint256 sum;
            uint256 count;
            do {
                Terms calldata t = items[i].terms;
                bytes32 preimage = items[i].preimage;
                bytes32 id = _id(t);
                if (_status[id] != Status.Locked) {
                    emit Skipped(id, SkipReason.WrongState);
                } else if (keccak256(abi.encodePacked(preimage)) != t.claimHash) {
                    emit Skipped(id, SkipReason.BadPreimage);
                } else if (settlement == address(0)) {
                    emit Skipped(id, SkipReason.InvalidTerms);
                } else {
                    _status[id] = Status.Released;
                    emit Released(id, partnerId, t.amount, preimage);
                    sum += t.amount;
                    ++count;
                }
                ++i;
            } while (i < n && items[i].terms.partnerId == partnerId);
            if (count != 0) {
                emit Settled(partnerId, settlement, sum, count);
                payees[runs] = settlement;
                sums[runs] = sum;
                ++runs;
                released += count;
            }
        }
        for (uint256 k; k < runs; ++k) {
            IERC20(token).safeTransfer(payees[k], sums[k]);
        }
    }

    // ---------------------------------------------------------------- refund

    /// @inheritdoc IRemittanceEscrow
    function refund(Terms calldata t) external {
        bytes32 id = _id(t);
        Status s = _status[id];
        if (s != Status.Locked) revert WrongState(id, s);
        if (block.timestamp < t.expiry) revert NotExpired(id, t.expiry);
        _status[id] = Status.Refunded;
        emit Refunded(id, t.sender, t.amount);
        IERC20(token).safeTransfer(t.sender, t.amount);
    }

    /// @inheritdoc IRemittanceEscrow
    function refundBatch(Terms[] calldata items) external returns (uint256 refunded) {
        uint256 n = items.length;
        if (n > MAX_BATCH) revert BatchTooLarge(n, MAX_BATCH);
        uint256 done; // bit i set: items[i] refunded (MAX_BATCH <= 256)
        for (uint256 i; i < n; ++i) {
            Terms calldata t = items[i];
            bytes32 id = _id(t);
            if (_status[id] != Status.Locked) {
                emit Skipped(id, SkipReason.WrongState);
            } else if (block.timestamp < t.expiry) {
                emit Skipped(id, SkipReason.NotExpired);
            } else {
                _status[id] = Status.Refunded;
                emit Refunded(id, t.sender, t.amount);
                // forge-lint: disable-next-line(incorrect-shift)
                done |= 1 << i;
                ++refunded;
            }
        }
        for (uint256 i; done != 0; ++i) {
            // forge-lint: disable-next-line(incorrect-shift)
            uint256 bit = 1 << i;
            if (done & bit != 0) {
                IERC20(token).safeTransfer(items[i].sender, items[i].amount);
                done &= ~bit;
            }
        }
    }

    // ---------------------------------------------------------------- internal

    /// keccak256(abi.encode(address(this), t.sender, t.amount, t.partnerId, t.expiry, t.claimHash)), hashed in
    /// scratch memory (the free memory pointer is not moved, so batches do not grow memory per item).
    function _id(Terms calldata t) private view returns (bytes32 id) {
        address sender = t.sender;
        uint256 amount = t.amount;
        uint64 partnerId = t.partnerId;
        uint64 expiry = t.expiry;
        bytes32 claimHash = t.claimHash;
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, address())
            mstore(add(p, 0x20), sender)
            mstore(add(p, 0x40), amount)
            mstore(add(p, 0x60), partnerId)
            mstore(add(p, 0x80), expiry)
            mstore(add(p, 0xa0), claimHash)
            id := keccak256(p, 0xc0)
        }
    }
}
