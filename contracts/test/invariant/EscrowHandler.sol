// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {TestStablecoin} from "../../src/TestStablecoin.sol";
import {RemittanceEscrow} from "../../src/RemittanceEscrow.sol";
import {IRemittanceEscrow} from "../../src/interfaces/IRemittanceEscrow.sol";

/// Drives the escrow with random deposits (valid, invalid, tampered, duplicated, front-run), releases (right and
/// wrong codes, duplicates, mixed partners), refunds (early and late), pauses, partner changes and direct attempts to
/// redeem authorizations on the token; keeps an independent model of what must happen and counts every divergence.
contract EscrowHandler is Test {
    bytes32 internal constant RECEIVE_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    uint256 internal constant SENDERS = 4;
    uint64 internal constant PARTNERS = 3; // ids 1..3 may be registered; id 4 never is
    uint256 internal constant SETTLEMENTS = 4;
    uint256 internal constant INITIAL = 1_000_000e6;
    uint256 internal constant MAX_ITEMS = 6;

    TestStablecoin public immutable token;
    RemittanceEscrow public immutable escrow;
    address public immutable owner;
    address public immutable attacker = makeAddr("attacker");
    address public immutable relayer = makeAddr("relayer");

    address[] public senders;
    uint256[] internal keys;
    address[] public settlements;
    /// Every address that can hold tokens in this test (besides the escrow).
    address[] public actors;

    struct Rem {
        IRemittanceEscrow.Terms t;
        bytes32 preimage;
    }

    struct Pending {
        IRemittanceEscrow.Terms t;
        IRemittanceEscrow.Authorization a;
    }

    // ---------------------------------------------------------------- the model

    Rem[] internal rems; // every remittance ever locked
    Pending[] internal pending; // signed authorizations not yet submitted by the relayer
    mapping(bytes32 => IRemittanceEscrow.Status) public model;
    mapping(uint64 => address) public modelSettlement;
    mapping(address => uint256) public expectedBalance;
    uint256 public modelLocked; // sum of Locked amounts
    bool public modelPaused;
    uint256 internal nonce;

    uint256 public violations;
    string public lastViolation;

    // call statistics, to show the campaign exercised every path
    mapping(string => uint256) public calls;
    uint256 public steps;

    modifier step() {
        ++steps;
        _;
    }

    constructor(TestStablecoin token_, RemittanceEscrow escrow_, address owner_) {
        token = token_;
        escrow = escrow_;
        owner = owner_;
        for (uint256 i; i < SENDERS; ++i) {
            (address a, uint256 k) = makeAddrAndKey(string.concat("inv-sender-", vm.toString(i)));
            senders.push(a);
            keys.push(k);
            actors.push(a);
            expectedBalance[a] = INITIAL;
        }
        for (uint256 i; i < SETTLEMENTS; ++i) {
            address s = makeAddr(string.concat("inv-settlement-", vm.toString(i)));
            settlements.push(s);
            actors.push(s);
        }
        actors.push(attacker);
        actors.push(relayer);
    }

    /// Called once by the test after minting and registering partners 1..3 to settlements 0..2.
    function initModel() external {
        for (uint64 p = 1; p <= PARTNERS; ++p) {
            modelSettlement[p] = settlements[p - 1];
        }
    }

    // ---------------------------------------------------------------- views for the invariants

    function remCount() external view returns (uint256) {
        return rems.length;
    }

    function remAt(uint256 i) external view returns (IRemittanceEscrow.Terms memory, bytes32) {
        return (rems[i].t, rems[i].preimage);
    }

    function actorCount() external view returns (uint256) {
        return actors.length;
    }

    // ---------------------------------------------------------------- helpers

    function _min(uint256 a, uint256 b) internal pure returns (uint256) {
        return a < b ? a : b;
    }

    function _violation(string memory what) internal {
        ++violations;
        lastViolation = what;
    }

    function _id(IRemittanceEscrow.Terms memory t) internal view returns (bytes32) {
        return keccak256(abi.encode(address(escrow), t.sender, t.amount, t.partnerId, t.expiry, t.claimHash));
    }

    function _sign(uint256 key, IRemittanceEscrow.Terms memory t, uint256 validBefore)
        internal
        view
        returns (IRemittanceEscrow.Authorization memory a)
    {
        a.validBefore = validBefore;
        bytes32 structHash =
            keccak256(abi.encode(RECEIVE_TYPEHASH, t.sender, address(escrow), t.amount, 0, validBefore, _id(t)));
        (a.v, a.r, a.s) = vm.sign(key, keccak256(abi.encodePacked(hex"1901", token.DOMAIN_SEPARATOR(), structHash)));
    }

    function _newTerms(uint256 seed) internal returns (IRemittanceEscrow.Terms memory t, bytes32 preimage, uint256 s) {
        s = seed % SENDERS;
        preimage = keccak256(abi.encode("code", ++nonce));
        t = IRemittanceEscrow.Terms({
            sender: senders[s],
            amount: bound(uint256(keccak256(abi.encode(seed, "amount"))), 1, 20_000e6),
            // one in eight goes to partner 4, which is never registered
            partnerId: (seed >> 8) % 8 == 0 ? PARTNERS + 1 : uint64(1 + (seed >> 8) % PARTNERS),
            expiry: uint64(block.timestamp + bound(seed >> 16, 1, 1 days)),
            claimHash: keccak256(abi.encodePacked(preimage))
        });
    }

    /// What the escrow must do with one deposit item, given the model so far.
    function _depositWouldSucceed(IRemittanceEscrow.Terms memory t, bool signedAsIs) internal view returns (bool) {
        return signedAsIs && t.sender != address(0) && t.amount != 0 && t.expiry > block.timestamp
            && modelSettlement[t.partnerId] != address(0) && model[_id(t)] == IRemittanceEscrow.Status.None
            && expectedBalance[t.sender] >= t.amount;
    }

    function _applyDeposit(IRemittanceEscrow.Terms memory t, bytes32 preimage) internal {
        ++calls["locked"];
        model[_id(t)] = IRemittanceEscrow.Status.Locked;
        expectedBalance[t.sender] -= t.amount;
        modelLocked += t.amount;
        rems.push(Rem(t, preimage));
    }

    // ---------------------------------------------------------------- actions

    /// A batch of new deposits; some are tampered with after signing (which must make them fail).
    function depositBatch(uint256 seed, uint8 count, uint8 tamperMask) external step {
        uint256 n = 1 + count % MAX_ITEMS;
        IRemittanceEscrow.DepositItem[] memory items = new IRemittanceEscrow.DepositItem[](n);
        bytes32[] memory preimages = new bytes32[](n);
        bool[] memory signedAsIs = new bool[](n);
        for (uint256 i; i < n; ++i) {
            (IRemittanceEscrow.Terms memory t, bytes32 pre, uint256 s) =
                _newTerms(uint256(keccak256(abi.encode(seed, i))));
            IRemittanceEscrow.Authorization memory a = _sign(keys[s], t, block.timestamp + 1 hours);
            signedAsIs[i] = true;
            if ((tamperMask >> i) & 1 == 1 && (seed >> (8 + i)) % 4 == 0) {
                // Change one term after signing: the signature no longer matches.
                uint256 which = (seed >> i) % 4;
                if (which == 0) t.amount += 1;
                else if (which == 1) t.expiry += 1;
                else if (which == 2) t.claimHash = bytes32(uint256(t.claimHash) ^ 1);
                else t.sender = senders[(s + 1) % SENDERS];
                signedAsIs[i] = false;
            }
            items[i] = IRemittanceEscrow.DepositItem(t, a);
            preimages[i] = pre;
        }
        if (n > 1 && seed % 5 == 0) items[n - 1] = items[0]; // a duplicate within the batch
        uint256 expected;
        calls["depositItems"] += n;
        if (modelPaused) calls["depositItemsWhilePaused"] += n;
        if (!modelPaused) {
            for (uint256 i; i < n; ++i) {
                bool sameAsFirst = i == n - 1 && n > 1 && seed % 5 == 0;
                bool ok = _depositWouldSucceed(items[i].terms, sameAsFirst ? signedAsIs[0] : signedAsIs[i]);
                if (ok) {
                    _applyDeposit(items[i].terms, sameAsFirst ? preimages[0] : preimages[i]);
                    ++expected;
                }
            }
        }
        vm.prank(relayer);
        try escrow.depositBatch(items) returns (uint256 done) {
            if (modelPaused) _violation("depositBatch worked while paused");
            if (done != expected) _violation("depositBatch count differs from the model");
        } catch {
            if (!modelPaused) _violation("depositBatch reverted while not paused");
        }
        ++calls["depositBatch"];
    }

    /// A single deposit, sometimes tampered; must revert exactly when the model says it fails.
    function deposit(uint256 seed, bool tamper) external step {
        (IRemittanceEscrow.Terms memory t, bytes32 pre, uint256 s) = _newTerms(seed);
        IRemittanceEscrow.Authorization memory a = _sign(keys[s], t, block.timestamp + 1 hours);
        if (tamper) t.partnerId = t.partnerId == 1 ? 2 : 1;
        bool ok = !modelPaused && _depositWouldSucceed(t, !tamper);
        vm.prank(relayer);
        try escrow.deposit(t, a) returns (bytes32 id) {
            if (!ok) _violation("deposit succeeded although the model says it must fail");
            if (id != _id(t)) _violation("deposit returned a wrong id");
            if (ok) _applyDeposit(t, pre);
        } catch {
            if (ok) _violation("deposit failed although the model says it must succeed");
        }
        ++calls["deposit"];
    }

    /// The sender signs; the authorization travels to the relayer but is not submitted yet (visible to attackers).
    function sign(uint256 seed) external step {
        (IRemittanceEscrow.Terms memory t, bytes32 pre, uint256 s) = _newTerms(seed);
        // forge-lint: disable-next-line(unsafe-typecast)
        t.partnerId = uint64(1 + seed % PARTNERS);
        pending.push(Pending(t, _sign(keys[s], t, block.timestamp + 1 days)));
        rems.push(Rem(t, pre)); // tracked (model status None until someone deposits it)
        ++calls["sign"];
    }

    /// Someone (an attacker or the relayer) submits a pending authorization to the escrow; then the relayer submits
    /// the same one in a batch. Exactly one of them may lock it, and only with the signed terms.
    function submitPending(uint256 index, bool byAttacker) external step {
        if (pending.length == 0) return;
        // Mostly one of the latest few (they are still valid), sometimes an old one.
        uint256 k =
            index % 4 == 0 ? index % pending.length : pending.length - 1 - (index >> 2) % _min(pending.length, 3);
        Pending memory p = pending[k];
        bool ok = !modelPaused && block.timestamp < p.a.validBefore && _depositWouldSucceed(p.t, true);
        vm.prank(byAttacker ? attacker : relayer);
        try escrow.deposit(p.t, p.a) {
            if (!ok) {
                _violation("front-run deposit succeeded although the model says it must fail");
            } else {
                ++calls["locked"];
                ++calls["frontRunLocked"];
                model[_id(p.t)] = IRemittanceEscrow.Status.Locked;
                expectedBalance[p.t.sender] -= p.t.amount;
                modelLocked += p.t.amount;
            }
        } catch {
            if (ok) _violation("pending deposit failed although the model says it must succeed");
        }
        IRemittanceEscrow.DepositItem[] memory items = new IRemittanceEscrow.DepositItem[](1);
        items[0] = IRemittanceEscrow.DepositItem(p.t, p.a);
        vm.prank(relayer);
        try escrow.depositBatch(items) returns (uint256 done) {
            if (done != 0) _violation("a second submission of the same authorization deposited again");
        } catch {
            if (!modelPaused) _violation("depositBatch reverted while not paused");
        }
        ++calls["submitPending"];
    }

    /// An attacker tries to redeem a pending authorization directly on the token, to itself or to the escrow
    /// (bypassing the escrow's bookkeeping). Every attempt must fail.
    function attackerRedeem(uint256 index) external step {
        if (pending.length == 0) return;
        Pending memory p = pending[index % pending.length];
        bytes32 id = _id(p.t);
        vm.startPrank(attacker);
        try token.receiveWithAuthorization(
            p.t.sender, address(escrow), p.t.amount, 0, p.a.validBefore, id, p.a.v, p.a.r, p.a.s
        ) {
            _violation("attacker redeemed an authorization meant for the escrow");
        } catch {}
        try token.receiveWithAuthorization(
            p.t.sender, attacker, p.t.amount, 0, p.a.validBefore, id, p.a.v, p.a.r, p.a.s
        ) {
            _violation("attacker received with the sender's authorization");
        } catch {}
        try token.transferWithAuthorization(
            p.t.sender, attacker, p.t.amount, 0, p.a.validBefore, id, p.a.v, p.a.r, p.a.s
        ) {
            _violation("attacker transferred with the sender's authorization");
        } catch {}
        try token.transferWithAuthorization(
            p.t.sender, address(escrow), p.t.amount, 0, p.a.validBefore, id, p.a.v, p.a.r, p.a.s
        ) {
            _violation("attacker pushed the authorization into the escrow without a deposit");
        } catch {}
        vm.stopPrank();
        ++calls["attackerRedeem"];
    }

    /// Releases a random selection of remittances (any state), with some wrong codes; single or batched.
    function release(uint256 seed, uint8 count, uint8 wrongMask, bool single) external step {
        if (rems.length == 0) return;
        uint256 n = single ? 1 : 1 + count % MAX_ITEMS;
        IRemittanceEscrow.ReleaseItem[] memory items = new IRemittanceEscrow.ReleaseItem[](n);
        for (uint256 i; i < n; ++i) {
            Rem memory r = rems[uint256(keccak256(abi.encode(seed, i))) % rems.length];
            // One in four gets a wrong code.
            bytes32 pre = (wrongMask >> i) & 3 == 0 ? bytes32(uint256(r.preimage) ^ 1) : r.preimage;
            items[i] = IRemittanceEscrow.ReleaseItem(r.t, pre);
        }
        uint256 expected;
        if (!modelPaused) {
            for (uint256 i; i < n; ++i) {
                IRemittanceEscrow.Terms memory t = items[i].terms;
                bytes32 id = _id(t);
                address to = modelSettlement[t.partnerId];
                if (
                    model[id] == IRemittanceEscrow.Status.Locked
                        && keccak256(abi.encodePacked(items[i].preimage)) == t.claimHash && to != address(0)
                ) {
                    model[id] = IRemittanceEscrow.Status.Released;
                    ++calls["released"];
                    modelLocked -= t.amount;
                    expectedBalance[to] += t.amount;
                    ++expected;
                }
            }
        }
        vm.prank(relayer);
        if (single) {
            try escrow.release(items[0].terms, items[0].preimage) {
                if (expected != 1) _violation("release succeeded although the model says it must fail");
            } catch {
                if (expected != 0) _violation("release failed although the model says it must succeed");
            }
        } else {
            try escrow.releaseBatch(items) returns (uint256 done) {
                if (modelPaused) _violation("releaseBatch worked while paused");
                if (done != expected) _violation("releaseBatch count differs from the model");
            } catch {
                if (!modelPaused) _violation("releaseBatch reverted while not paused");
            }
        }
        ++calls[single ? "release" : "releaseBatch"];
    }

    /// Refunds a random selection of remittances (any state, expired or not); single or batched. Never paused.
    function refund(uint256 seed, uint8 count, bool single) external step {
        if (rems.length == 0) return;
        uint256 n = single ? 1 : 1 + count % MAX_ITEMS;
        IRemittanceEscrow.Terms[] memory items = new IRemittanceEscrow.Terms[](n);
        for (uint256 i; i < n; ++i) {
            items[i] = rems[uint256(keccak256(abi.encode(seed, i))) % rems.length].t;
        }
        uint256 expected;
        for (uint256 i; i < n; ++i) {
            bytes32 id = _id(items[i]);
            if (model[id] == IRemittanceEscrow.Status.Locked && block.timestamp >= items[i].expiry) {
                model[id] = IRemittanceEscrow.Status.Refunded;
                ++calls["refunded"];
                modelLocked -= items[i].amount;
                expectedBalance[items[i].sender] += items[i].amount;
                ++expected;
            }
        }
        vm.prank(attacker); // anyone may refund; the money still goes to the sender
        if (single) {
            try escrow.refund(items[0]) {
                if (expected != 1) _violation("refund succeeded although the model says it must fail");
            } catch {
                if (expected != 0) _violation("refund failed although the model says it must succeed");
            }
        } else {
            try escrow.refundBatch(items) returns (uint256 done) {
                if (done != expected) _violation("refundBatch count differs from the model");
            } catch {
                _violation("refundBatch reverted");
            }
        }
        ++calls[single ? "refund" : "refundBatch"];
    }

    function warp(uint256 secs) external step {
        vm.warp(block.timestamp + bound(secs, 1, 12 hours));
        ++calls["warp"];
    }

    /// Pauses (by the guardian or the owner) or unpauses; pausing is half as likely, so the escrow is paused in a
    /// minority of the steps.
    function togglePause(bool byGuardian, uint8 coin) external step {
        if (!modelPaused && coin % 2 == 0) return;
        if (modelPaused) {
            vm.prank(owner);
            escrow.unpause();
        } else {
            vm.prank(byGuardian ? escrow.guardian() : owner);
            escrow.pause();
        }
        modelPaused = !modelPaused;
        ++calls["togglePause"];
    }

    /// The owner moves a partner's settlement address or removes the partner.
    function setPartner(uint256 partnerSeed, uint256 settlementSeed) external step {
        // forge-lint: disable-next-line(unsafe-typecast)
        uint64 p = uint64(1 + partnerSeed % PARTNERS);
        // One in ten removes the partner.
        address s = settlementSeed % 10 == 0 ? address(0) : settlements[(settlementSeed >> 8) % SETTLEMENTS];
        vm.prank(owner);
        escrow.setPartner(p, s);
        modelSettlement[p] = s;
        ++calls["setPartner"];
    }
}
