// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {Vm} from "forge-std/Vm.sol";
import {RemittanceEscrow} from "../../src/RemittanceEscrow.sol";
import {IRemittanceEscrow} from "../../src/interfaces/IRemittanceEscrow.sol";
import {IFiatTokenV2_2} from "../utils/Usdc.sol";
import {DepositItem, ReleaseItem, Packing, BatchBook} from "../utils/Batches.sol";

/// Drives the escrow on USDC with random deposits (valid, invalid, tampered, duplicated, front-run, out of the lock
/// bounds, naming a partner's old settlement address or signer), releases (right and wrong codes, duplicates, mixed
/// partners and settlement addresses, before and after expiry), refunds (early and late), cooperative cancels (the
/// partner signer's or a wrong signature), escrow pauses, partner re-keying and removal, USDC pauses and blacklisting
/// of senders and settlement addresses, and direct attempts to redeem authorizations on the token. Keeps an
/// independent model of what must happen and counts every divergence. Exits carry the Merkle proofs the handler
/// builds from the escrow's Deposited events (BatchBook), as the node does.
contract EscrowHandler is Test, BatchBook {
    bytes32 internal constant RECEIVE_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    uint256 internal constant SENDERS = 4;
    uint64 internal constant PARTNERS = 3; // ids 1..3 may be registered; id 4 never is
    uint256 internal constant SETTLEMENTS = 4;
    uint256 internal constant SIGNERS = 3;
    uint256 internal constant INITIAL = 1_000_000e6;
    uint256 internal constant MAX_ITEMS = 6;

    IFiatTokenV2_2 public immutable token;
    RemittanceEscrow public immutable escrow;
    address public immutable owner;
    address public immutable pauser;
    address public immutable blacklister;
    address public immutable attacker = makeAddr("attacker");
    address public immutable relayer = makeAddr("relayer");
    uint64 public immutable minLock;
    uint64 public immutable maxLock;
    bytes32 internal immutable usdcDomain; // USDC's EIP-712 domain separator (fixed for the chain)

    address[] public senders;
    uint256[] internal keys;
    address[] public settlements;
    address[] public signers;
    mapping(address => uint256) internal signerKey;
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

    struct Partner {
        address settlement;
        address signer;
        bool accepting;
    }

    // ---------------------------------------------------------------- the model

    Rem[] internal rems; // every remittance ever locked or signed
    bytes32[] internal remIds; // their ids
    Pending[] internal pending; // signed authorizations not yet submitted by the relayer
    mapping(bytes32 => IRemittanceEscrow.Status) public model;
    mapping(bytes32 => uint256) public exits; // successful release / refund / cancel per remittance, as observed
    mapping(uint64 => Partner) public partners;
    mapping(address => uint256) public expectedBalance;
    mapping(address => bool) public blacklisted;
    address public blacklistedNow; // at most one account is blacklisted at a time
    uint256 public modelLocked; // sum of Locked amounts
    bool public escrowPaused;
    bool public usdcPaused;
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

    constructor(
        IFiatTokenV2_2 token_,
        RemittanceEscrow escrow_,
        address owner_,
        address pauser_,
        address blacklister_
    ) {
        token = token_;
        escrow = escrow_;
        owner = owner_;
        pauser = pauser_;
        blacklister = blacklister_;
        minLock = escrow_.minLockSeconds();
        maxLock = escrow_.maxLockSeconds();
        usdcDomain = token_.DOMAIN_SEPARATOR();
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
        for (uint256 i; i < SIGNERS; ++i) {
            (address a, uint256 k) = makeAddrAndKey(string.concat("inv-signer-", vm.toString(i)));
            signers.push(a);
            signerKey[a] = k;
        }
        actors.push(attacker);
        actors.push(relayer);
    }

    /// Called once by the test after minting and registering partner p (1..3) to settlement p-1 and signer p-1.
    function initModel() external {
        for (uint64 p = 1; p <= PARTNERS; ++p) {
            partners[p] = Partner(settlements[p - 1], signers[p - 1], true);
        }
    }

    // ---------------------------------------------------------------- views for the invariants

    function remCount() external view returns (uint256) {
        return rems.length;
    }

    function remAt(uint256 i) external view returns (IRemittanceEscrow.Terms memory, bytes32) {
        return (rems[i].t, rems[i].preimage);
    }

    /// How many of the remittances `from` .. `from + count - 1` (modulo their number) have an on-chain status other
    /// than the model's, or exited more than once.
    function statusMismatches(uint256 from, uint256 count) external view returns (uint256 bad) {
        uint256 n = remIds.length;
        if (n == 0) return 0;
        for (uint256 k; k < count && k < n; ++k) {
            bytes32 id = remIds[(from + k) % n];
            (uint256 index, bytes32[] memory proof) = proofOf(id);
            if (escrow.statusOf(id, index, proof) != model[id] || exits[id] > 1) ++bad;
        }
    }

    /// The escrow's status of `id`, asked with the proof of where it sits (BatchBook).
    function statusOnChain(bytes32 id) external view returns (IRemittanceEscrow.Status) {
        (uint256 index, bytes32[] memory proof) = proofOf(id);
        return escrow.statusOf(id, index, proof);
    }

    /// How many actors hold another balance than the model says, and the sum of all actors' balances.
    function balanceMismatches() external view returns (uint256 bad, uint256 sum) {
        for (uint256 i; i < actors.length; ++i) {
            uint256 b = token.balanceOf(actors[i]);
            if (b != expectedBalance[actors[i]]) ++bad;
            sum += b;
        }
    }

    function actorCount() external view returns (uint256) {
        return actors.length;
    }

    // ---------------------------------------------------------------- helpers

    function _bookEscrow() internal view override returns (address) {
        return address(escrow);
    }

    function _bookId(IRemittanceEscrow.Terms memory t) internal view override returns (bytes32) {
        return _id(t);
    }

    function _min(uint256 a, uint256 b) internal pure returns (uint256) {
        return a < b ? a : b;
    }

    function _violation(string memory what) internal {
        ++violations;
        lastViolation = what;
    }

    function _id(IRemittanceEscrow.Terms memory t) internal view returns (bytes32) {
        return keccak256(
            abi.encode(
                address(escrow), t.sender, t.amount, t.partnerId, t.expiry, t.settlement, t.partnerSigner, t.claimHash
            )
        );
    }

    function _sign(uint256 key, IRemittanceEscrow.Terms memory t, uint256 validBefore)
        internal
        view
        returns (IRemittanceEscrow.Authorization memory a)
    {
        a.validBefore = validBefore;
        bytes32 structHash =
            keccak256(abi.encode(RECEIVE_TYPEHASH, t.sender, address(escrow), t.amount, 0, validBefore, _id(t)));
        (a.v, a.r, a.s) = vm.sign(key, keccak256(abi.encodePacked(hex"1901", usdcDomain, structHash)));
    }

    function _newTerms(uint256 seed) internal returns (IRemittanceEscrow.Terms memory t, bytes32 preimage, uint256 s) {
        s = seed % SENDERS;
        preimage = keccak256(abi.encode("code", ++nonce));
        // one in eight goes to partner 4, which is never registered
        uint64 p = (seed >> 8) % 8 == 0 ? PARTNERS + 1 : uint64(1 + (seed >> 8) % PARTNERS);
        Partner memory reg = partners[p];
        // one in sixteen names another settlement address or signer than the registry's (e.g. one it replaced)
        if ((seed >> 24) % 16 == 0) reg.settlement = settlements[(seed >> 32) % SETTLEMENTS];
        if ((seed >> 24) % 16 == 1) reg.signer = signers[(seed >> 32) % SIGNERS];
        if (reg.settlement == address(0)) reg.settlement = settlements[0];
        if (reg.signer == address(0)) reg.signer = signers[0];
        // expiry around the lock bounds: one in sixteen just outside them
        uint256 lock = _bound(seed >> 40, minLock, maxLock);
        if ((seed >> 36) % 16 == 0) lock = (seed >> 40) % 2 == 0 ? minLock - 1 : maxLock + 1;
        t = IRemittanceEscrow.Terms({
            sender: senders[s],
            amount: _bound(uint256(keccak256(abi.encode(seed, "amount"))), 1, 20_000e6),
            partnerId: p,
            expiry: uint64(block.timestamp + lock),
            settlement: reg.settlement,
            partnerSigner: reg.signer,
            claimHash: keccak256(abi.encodePacked(preimage))
        });
    }

    function _termsAcceptable(IRemittanceEscrow.Terms memory t) internal view returns (bool) {
        Partner memory reg = partners[t.partnerId];
        return t.sender != address(0) && t.amount != 0 && t.expiry >= block.timestamp + minLock
            && t.expiry <= block.timestamp + maxLock && reg.accepting && reg.settlement == t.settlement
            && reg.signer == t.partnerSigner;
    }

    /// Whether the token would move `amount` from the escrow to `to` now.
    function _payable(address to) internal view returns (bool) {
        return !usdcPaused && !blacklisted[to];
    }

    /// What the escrow must do with one deposit item (escrow not paused), given the model so far.
    function _depositWouldSucceed(IRemittanceEscrow.Terms memory t, bool signedAsIs) internal view returns (bool) {
        return signedAsIs && _termsAcceptable(t) && model[_id(t)] == IRemittanceEscrow.Status.None && !usdcPaused
            && !blacklisted[t.sender] && expectedBalance[t.sender] >= t.amount;
    }

    function _track(IRemittanceEscrow.Terms memory t, bytes32 preimage) internal {
        rems.push(Rem(t, preimage));
        remIds.push(_id(t));
    }

    function _lock(IRemittanceEscrow.Terms memory t) internal {
        ++calls["locked"];
        model[_id(t)] = IRemittanceEscrow.Status.Locked;
        expectedBalance[t.sender] -= t.amount;
        modelLocked += t.amount;
    }

    function _exit(IRemittanceEscrow.Terms memory t, IRemittanceEscrow.Status to, address payee) internal {
        bytes32 id = _id(t);
        model[id] = to;
        modelLocked -= t.amount;
        expectedBalance[payee] += t.amount;
    }

    /// Counts an exit the escrow performed; a second exit of the same remittance is a violation.
    function _observedExit(bytes32 id) internal {
        if (++exits[id] > 1) _violation("a remittance exited twice");
    }

    // ---------------------------------------------------------------- actions

    /// A batch of new deposits (mixed partners: a packed section per run of equal partner terms); some are
    /// tampered with after signing (which must make them fail).
    function depositBatch(uint256 seed, uint8 count, uint8 tamperMask) external step {
        uint256 n = 1 + count % MAX_ITEMS;
        DepositItem[] memory items = new DepositItem[](n);
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
                else if (which == 1) t.expiry -= 1;
                else if (which == 2) t.claimHash = bytes32(uint256(t.claimHash) ^ 1);
                else t.sender = senders[(s + 1) % SENDERS];
                signedAsIs[i] = false;
            }
            items[i] = DepositItem(t, a);
            preimages[i] = pre;
        }
        bool dup = n > 1 && seed % 5 == 0;
        if (dup) items[n - 1] = items[0]; // a duplicate within the batch
        uint256 expected;
        calls["depositItems"] += n;
        if (escrowPaused) calls["depositItemsWhilePaused"] += n;
        if (!escrowPaused) {
            for (uint256 i; i < n; ++i) {
                bool sameAsFirst = dup && i == n - 1;
                if (_depositWouldSucceed(items[i].terms, sameAsFirst ? signedAsIs[0] : signedAsIs[i])) {
                    _lock(items[i].terms);
                    _track(items[i].terms, sameAsFirst ? preimages[0] : preimages[i]);
                    ++expected;
                }
            }
        }
        bytes memory packed = Packing.depositSections(items);
        vm.recordLogs();
        vm.prank(relayer);
        try escrow.depositBatch(packed) returns (uint256 done, bytes32) {
            recordBatches(vm.getRecordedLogs());
            if (escrowPaused) _violation("depositBatch worked while paused");
            if (done != expected) _violation("depositBatch count differs from the model");
        } catch {
            if (!escrowPaused) _violation("depositBatch reverted while not paused");
        }
        ++calls["depositBatch"];
    }

    /// A single deposit, sometimes tampered; must revert exactly when the model says it fails.
    function deposit(uint256 seed, bool tamper) external step {
        (IRemittanceEscrow.Terms memory t, bytes32 pre, uint256 s) = _newTerms(seed);
        IRemittanceEscrow.Authorization memory a = _sign(keys[s], t, block.timestamp + 1 hours);
        if (tamper) t.claimHash = bytes32(uint256(t.claimHash) ^ 2);
        bool ok = !escrowPaused && _depositWouldSucceed(t, !tamper);
        vm.prank(relayer);
        try escrow.deposit(t, a) returns (bytes32 id) {
            if (!ok) _violation("deposit succeeded although the model says it must fail");
            if (id != _id(t)) _violation("deposit returned a wrong id");
            if (ok) {
                _lock(t);
                _track(t, pre);
            }
        } catch {
            if (ok) _violation("deposit failed although the model says it must succeed");
        }
        ++calls["deposit"];
    }

    /// The sender signs; the authorization travels to the relayer but is not submitted yet (visible to attackers).
    function sign(uint256 seed) external step {
        (IRemittanceEscrow.Terms memory t, bytes32 pre, uint256 s) = _newTerms(seed);
        pending.push(Pending(t, _sign(keys[s], t, block.timestamp + 1 days)));
        _track(t, pre); // tracked (model status None until someone deposits it)
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
        bool ok = !escrowPaused && block.timestamp < p.a.validBefore && _depositWouldSucceed(p.t, true);
        vm.prank(byAttacker ? attacker : relayer);
        try escrow.deposit(p.t, p.a) {
            if (!ok) {
                _violation("front-run deposit succeeded although the model says it must fail");
            } else {
                ++calls["frontRunLocked"];
                _lock(p.t);
            }
        } catch {
            if (ok) _violation("pending deposit failed although the model says it must succeed");
        }
        DepositItem[] memory items = new DepositItem[](1);
        items[0] = DepositItem(p.t, p.a);
        bytes memory packed = Packing.deposits(items, 0, 1);
        vm.recordLogs();
        vm.prank(relayer);
        try escrow.depositBatch(packed) returns (uint256 done, bytes32) {
            recordBatches(vm.getRecordedLogs());
            if (done != 0) _violation("a second submission of the same authorization deposited again");
        } catch {
            if (!escrowPaused) _violation("depositBatch reverted while not paused");
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

    /// Releases a random selection of remittances (any state, expired or not), with some wrong codes; single or
    /// batched (packed, grouped by deposit batch). Never paused by the escrow; a run whose payout USDC refuses stays
    /// Locked.
    function release(uint256 seed, uint8 count, uint8 wrongMask, bool single) external step {
        if (rems.length == 0) return;
        uint256 n = single ? 1 : 1 + count % MAX_ITEMS;
        ReleaseItem[] memory items = new ReleaseItem[](n);
        for (uint256 i; i < n; ++i) {
            Rem memory r = rems[uint256(keccak256(abi.encode(seed, i))) % rems.length];
            // One in four gets a wrong code.
            bytes32 pre = (wrongMask >> i) & 3 == 0 ? bytes32(uint256(r.preimage) ^ 1) : r.preimage;
            items[i] = ReleaseItem(r.t, pre);
        }
        if (single) {
            uint256 expected = _modelReleaseBatch(items, true);
            (uint256 index, bytes32[] memory proof) = proofOf(_id(items[0].terms));
            vm.prank(relayer);
            try escrow.release(items[0].terms, items[0].preimage, index, proof) {
                if (expected != 1) _violation("release succeeded although the model says it must fail");
                _observedExit(_id(items[0].terms));
            } catch {
                if (expected != 0) _violation("release failed although the model says it must succeed");
            }
        } else {
            bytes memory packed = packReleases(items);
            uint256 expected = _modelReleaseBatch(items, false);
            vm.recordLogs();
            vm.prank(relayer);
            try escrow.releaseBatch(packed) returns (uint256 done) {
                if (done != expected) _violation("releaseBatch count differs from the model");
                _observeReleased();
            } catch {
                _violation("releaseBatch reverted");
            }
        }
        ++calls[single ? "release" : "releaseBatch"];
    }

    /// The model of a release: items form groups as packReleases makes them (one deposit batch and partner terms,
    /// ascending leaf indexes); a group with a wrong code (or a remittance never deposited) fails its proof as a
    /// whole. Consecutive groups with equal (partnerId, settlement) form a run paid with one transfer, or all
    /// put back to Locked when the token refuses it. A single release has one item and checks its code itself.
    function _modelReleaseBatch(ReleaseItem[] memory items, bool single) internal returns (uint256 released) {
        uint256 n = items.length;
        bytes32[] memory runIds = new bytes32[](n);
        uint256 runCount;
        uint256 runSum;
        IRemittanceEscrow.Terms memory runHead;
        uint256 i;
        while (i < n) {
            uint256 end = _groupEnd(items, i);
            IRemittanceEscrow.Terms memory head = items[i].terms;
            if (runCount != 0 && (head.partnerId != runHead.partnerId || head.settlement != runHead.settlement)) {
                released += _modelPay(runHead, runIds, runCount, runSum);
                runCount = 0;
                runSum = 0;
            }
            runHead = head;
            bool proven = true;
            for (uint256 k = i; k < end; ++k) {
                IRemittanceEscrow.Terms memory t = items[k].terms;
                bool codeOk = keccak256(abi.encodePacked(items[k].preimage)) == t.claimHash;
                if (model[_id(t)] == IRemittanceEscrow.Status.None || (!codeOk && !single)) proven = false;
            }
            for (uint256 k = i; proven && k < end; ++k) {
                IRemittanceEscrow.Terms memory t = items[k].terms;
                bytes32 id = _id(t);
                if (
                    model[id] == IRemittanceEscrow.Status.Locked && block.timestamp < t.expiry
                        && keccak256(abi.encodePacked(items[k].preimage)) == t.claimHash
                ) {
                    _exit(t, IRemittanceEscrow.Status.Released, t.settlement);
                    runIds[runCount++] = id;
                    runSum += t.amount;
                }
            }
            i = end;
        }
        if (runCount != 0) released += _modelPay(runHead, runIds, runCount, runSum);
    }

    /// Where the group that starts at items[i] ends (exclusive), as packReleases groups.
    function _groupEnd(ReleaseItem[] memory items, uint256 i) internal view returns (uint256 j) {
        (bytes32 root, uint256 last,) = locate(_id(items[i].terms));
        for (j = i + 1; j < items.length; ++j) {
            (bytes32 r, uint256 ix,) = locate(_id(items[j].terms));
            if (r != root || ix <= last || !samePartnerTerms(items[i].terms, items[j].terms)) break;
            last = ix;
        }
    }

    /// One run's payout in the model: paid, or every item of the run back to Locked when the token refuses it.
    function _modelPay(IRemittanceEscrow.Terms memory head, bytes32[] memory ids, uint256 count, uint256 sum)
        internal
        returns (uint256 released)
    {
        if (_payable(head.settlement)) {
            calls["released"] += count;
            return count;
        }
        calls["releaseRefused"] += count;
        for (uint256 k; k < count; ++k) {
            model[ids[k]] = IRemittanceEscrow.Status.Locked;
        }
        modelLocked += sum;
        expectedBalance[head.settlement] -= sum;
    }

    /// Counts the exits a releaseBatch reported: each Released(root, bits) names leaves of a deposit batch.
    function _observeReleased() internal {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter != address(escrow) || logs[i].topics[0] != IRemittanceEscrow.Released.selector) {
                continue;
            }
            bytes32 root = logs[i].topics[1];
            uint256 bits = abi.decode(logs[i].data, (uint256)); // Released(root, partnerId, bits)
            bytes32[] memory leaves = batchLeaves[root];
            if (leaves.length == 0) {
                if (bits != 1) _violation("a batch of one released another leaf than 0");
                _observedExit(root);
                continue;
            }
            for (uint256 k; k < leaves.length; ++k) {
                if ((bits >> k) & 1 == 1) _observedExit(leaves[k]);
            }
        }
    }

    /// Counts the exits an escrow call reported with per-remittance events (Refunded).
    function _observeLogs(bytes32 topic) internal {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].emitter == address(escrow) && logs[i].topics[0] == topic) _observedExit(logs[i].topics[1]);
        }
    }

    /// Refunds a random selection of remittances (any state, expired or not); single or batched. Never paused by
    /// the escrow; an item whose payout USDC refuses stays Locked.
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
                if (_payable(items[i].sender)) {
                    _exit(items[i], IRemittanceEscrow.Status.Refunded, items[i].sender);
                    ++calls["refunded"];
                    ++expected;
                } else {
                    ++calls["refundRefused"];
                }
            }
        }
        if (single) {
            (uint256 index, bytes32[] memory proof) = proofOf(_id(items[0]));
            vm.prank(attacker); // anyone may refund; the money still goes to the sender
            try escrow.refund(items[0], index, proof) {
                if (expected != 1) _violation("refund succeeded although the model says it must fail");
                _observedExit(_id(items[0]));
            } catch {
                if (expected != 0) _violation("refund failed although the model says it must succeed");
            }
        } else {
            IRemittanceEscrow.ExitItem[] memory exitList = exitItems(items);
            vm.recordLogs();
            vm.prank(attacker);
            try escrow.refundBatch(exitList) returns (uint256 done) {
                if (done != expected) _violation("refundBatch count differs from the model");
                _observeLogs(IRemittanceEscrow.Refunded.selector);
            } catch {
                _violation("refundBatch reverted");
            }
        }
        ++calls[single ? "refund" : "refundBatch"];
    }

    /// Anyone submits a cancel with the partner signer's Decline signature (or, one in four, another signer's).
    function cancel(uint256 seed, bool wrongSigner) external step {
        if (rems.length == 0) return;
        IRemittanceEscrow.Terms memory t = rems[seed % rems.length].t;
        bytes32 id = _id(t);
        wrongSigner = wrongSigner && (seed >> 8) % 2 == 0;
        address by = wrongSigner ? signers[(seed >> 16) % SIGNERS] : t.partnerSigner;
        uint256 key = signerKey[by];
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, escrow.declineDigest(id));
        bool ok = model[id] == IRemittanceEscrow.Status.Locked && block.timestamp < t.expiry && by == t.partnerSigner
            && _payable(t.sender);
        (uint256 index, bytes32[] memory proof) = proofOf(id);
        vm.prank(attacker);
        try escrow.cancel(t, index, proof, abi.encodePacked(r, s, v)) {
            if (!ok) _violation("cancel succeeded although the model says it must fail");
            _observedExit(id);
            _exit(t, IRemittanceEscrow.Status.Refunded, t.sender);
            ++calls["canceled"];
        } catch {
            if (ok) _violation("cancel failed although the model says it must succeed");
        }
        ++calls["cancel"];
    }

    function warp(uint256 secs) external step {
        vm.warp(block.timestamp + _bound(secs, 1, 12 hours));
        ++calls["warp"];
    }

    /// Pauses (by the guardian or the owner) or unpauses the escrow; pausing is half as likely, so the escrow is
    /// paused in a minority of the steps.
    function togglePause(bool byGuardian, uint8 coin) external step {
        if (!escrowPaused && coin % 2 == 0) return;
        if (escrowPaused) {
            vm.prank(owner);
            escrow.unpause();
        } else {
            vm.prank(byGuardian ? escrow.guardian() : owner);
            escrow.pause();
        }
        escrowPaused = !escrowPaused;
        ++calls["togglePause"];
    }

    /// USDC's pauser pauses or unpauses the token (pausing half as likely).
    function toggleUsdcPause(uint8 coin) external step {
        if (!usdcPaused && coin % 2 == 0) return;
        vm.prank(pauser);
        if (usdcPaused) token.unpause();
        else token.pause();
        usdcPaused = !usdcPaused;
        ++calls["toggleUsdcPause"];
    }

    /// USDC's blacklister blacklists a sender or a settlement address, or lifts the current blacklisting.
    function toggleBlacklist(uint256 seed) external step {
        vm.startPrank(blacklister);
        if (blacklistedNow != address(0)) {
            token.unBlacklist(blacklistedNow);
            blacklisted[blacklistedNow] = false;
            blacklistedNow = address(0);
        } else {
            address who = seed % 2 == 0 ? senders[(seed >> 8) % SENDERS] : settlements[(seed >> 8) % SETTLEMENTS];
            token.blacklist(who);
            blacklisted[who] = true;
            blacklistedNow = who;
        }
        vm.stopPrank();
        ++calls["toggleBlacklist"];
    }

    /// The owner re-keys a partner (new settlement address and signer for new deposits) or removes it. Locked
    /// remittances keep the settlement address in their terms.
    function setPartner(uint256 partnerSeed, uint256 settlementSeed) external step {
        // forge-lint: disable-next-line(unsafe-typecast)
        uint64 p = uint64(1 + partnerSeed % PARTNERS);
        vm.prank(owner);
        if (settlementSeed % 10 == 0) {
            escrow.removePartner(p);
            partners[p].accepting = false;
        } else {
            address s = settlements[(settlementSeed >> 8) % SETTLEMENTS];
            address signer = signers[(settlementSeed >> 16) % SIGNERS];
            escrow.setPartner(p, s, signer);
            partners[p] = Partner(s, signer, true);
        }
        ++calls["setPartner"];
    }
}
