// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {EscrowBase} from "./Base.t.sol";
import {KeyWallet} from "./utils/Wallets.sol";
import {IRemittanceEscrow} from "../src/interfaces/IRemittanceEscrow.sol";
import {RemittanceEscrow} from "../src/RemittanceEscrow.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {Vm} from "forge-std/Vm.sol";
import {DepositItem, ReleaseItem, Merkle, Packing} from "./utils/Batches.sol";

/// Unit and fuzz tests of the v2 escrow on Circle's USDC (FiatTokenV2_2 behind its proxy, see Base.t.sol).
/// Tests named `test_fix_*` each cover one finding of the v1 review that v2 fixes (contracts/SECURITY.md; the same
/// flaws are demonstrated against the v1 bytecode in test/v1/V1Flaws.t.sol).
contract RemittanceEscrowTest is EscrowBase {
    event Transfer(address indexed from, address indexed to, uint256 value);

    string internal constant INVALID_SIGNATURE = "FiatTokenV2: invalid signature";
    string internal constant USED_OR_CANCELED = "FiatTokenV2: authorization is used or canceled";
    string internal constant BLACKLISTED = "Blacklistable: account is blacklisted";
    string internal constant USDC_PAUSED = "Pausable: paused";

    // ---------------------------------------------------------------- helpers

    function assertStatus(bytes32 id, IRemittanceEscrow.Status want) internal view {
        assertEq(uint8(statusOf(id)), uint8(want), "status");
    }

    function badProof(bytes32 id) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IRemittanceEscrow.BadProof.selector, id);
    }

    function wrongState(bytes32 id, IRemittanceEscrow.Status s) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IRemittanceEscrow.WrongState.selector, id, s);
    }

    function one(IRemittanceEscrow.Terms memory t, IRemittanceEscrow.Authorization memory a)
        internal
        pure
        returns (DepositItem[] memory items)
    {
        items = new DepositItem[](1);
        items[0] = DepositItem(t, a);
    }

    /// A second funded sender (its own key).
    function newSender(string memory name) internal returns (address who, uint256 key) {
        (who, key) = makeAddrAndKey(name);
        mint(who, INITIAL);
    }

    function depositAs(address from, uint256 key, uint256 amount, uint64 partnerId, uint256 seed)
        internal
        returns (IRemittanceEscrow.Terms memory t, bytes32 id)
    {
        t = termsFor(from, amount, partnerId, seed);
        vm.prank(relayer);
        id = escrow.deposit(t, signAuth(key, t));
    }

    // ---------------------------------------------------------------- construction and administration

    function test_constructor() public {
        assertEq(escrow.token(), address(token));
        assertEq(escrow.owner(), owner);
        assertEq(escrow.guardian(), guardian);
        assertEq(escrow.MAX_BATCH(), 64);
        assertEq(escrow.ITEM_GAS(), 200_000);
        assertEq(escrow.DECLINE_TYPEHASH(), keccak256("Decline(bytes32 id)"));
        assertEq(escrow.minLockSeconds(), MIN_LOCK);
        assertEq(escrow.maxLockSeconds(), MAX_LOCK);
        assertFalse(escrow.paused());
        vm.expectEmit();
        emit IRemittanceEscrow.GuardianSet(guardian);
        new RemittanceEscrow(address(token), owner, guardian, MIN_LOCK, MAX_LOCK);
    }

    function test_constructor_rejectsZeroAddresses() public {
        vm.expectRevert(IRemittanceEscrow.ZeroAddress.selector);
        new RemittanceEscrow(address(0), owner, guardian, MIN_LOCK, MAX_LOCK);
        vm.expectRevert(IRemittanceEscrow.ZeroAddress.selector);
        new RemittanceEscrow(address(token), owner, address(0), MIN_LOCK, MAX_LOCK);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableInvalidOwner.selector, address(0)));
        new RemittanceEscrow(address(token), address(0), guardian, MIN_LOCK, MAX_LOCK);
    }

    function test_constructor_rejectsTokenWithoutCode() public {
        address eoa = makeAddr("not a token");
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.TokenHasNoCode.selector, eoa));
        new RemittanceEscrow(eoa, owner, guardian, MIN_LOCK, MAX_LOCK);
    }

    function test_constructor_rejectsBadLockBounds() public {
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.InvalidLockBounds.selector, 2 days, 1 days));
        new RemittanceEscrow(address(token), owner, guardian, 2 days, 1 days);
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.InvalidLockBounds.selector, 0, 0));
        new RemittanceEscrow(address(token), owner, guardian, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.InvalidLockBounds.selector, 0, 366 days + 1));
        new RemittanceEscrow(address(token), owner, guardian, 0, 366 days + 1);
        RemittanceEscrow e = new RemittanceEscrow(address(token), owner, guardian, 0, 366 days);
        assertEq(e.maxLockSeconds(), 366 days);
    }

    function test_remittanceId_isTheDocumentedHash() public view {
        IRemittanceEscrow.Terms memory t = termsFor(sender, 123e6, PARTNER, 9);
        assertEq(escrow.remittanceId(t), idOf(t));
    }

    function test_declineDigest_isTheDocumentedEip712Digest() public view {
        bytes32 id = keccak256("some id");
        assertEq(escrow.declineDigest(id), declineDigestOf(id));
        (, string memory name, string memory version, uint256 chainId, address verifying,,) = escrow.eip712Domain();
        assertEq(name, "Remesa Escrow");
        assertEq(version, "3");
        assertEq(chainId, block.chainid);
        assertEq(verifying, address(escrow));
    }

    function test_setPartner() public {
        address signer = makeAddr("signer-42");
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.PartnerSet(42, address(0xBEEF), signer);
        vm.prank(owner);
        escrow.setPartner(42, address(0xBEEF), signer);
        assertEq(escrow.partnerKey(42), keccak256(abi.encode(address(0xBEEF), signer)));
        assertTrue(escrow.partnerAccepts(42, address(0xBEEF), signer));
        assertFalse(escrow.partnerAccepts(42, address(0xBEEF), partnerSigner));
        assertFalse(escrow.partnerAccepts(42, settlement, signer));
        assertFalse(escrow.partnerAccepts(43, address(0xBEEF), signer));
        vm.expectRevert(IRemittanceEscrow.ZeroAddress.selector);
        vm.prank(owner);
        escrow.setPartner(42, address(0xBEEF), address(0));
    }

    function test_removePartner() public {
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.PartnerRemoved(PARTNER);
        vm.prank(owner);
        escrow.removePartner(PARTNER);
        assertEq(escrow.partnerKey(PARTNER), bytes32(0));
        assertFalse(escrow.partnerAccepts(PARTNER, settlement, partnerSigner));
        IRemittanceEscrow.Terms memory t = termsFor(sender, 100e6, PARTNER, 1);
        IRemittanceEscrow.Authorization memory a = signAuth(senderKey, t);
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.PartnerNotAccepting.selector, PARTNER));
        escrow.deposit(t, a);
    }

    function test_setPartner_removePartner_onlyOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, guardian));
        vm.prank(guardian);
        escrow.setPartner(42, address(0xBEEF), partnerSigner);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, guardian));
        vm.prank(guardian);
        escrow.removePartner(PARTNER);
    }

    /// Finding: v1 accepted any settlement address, including the escrow itself (a release would "pay" the
    /// escrow and strand the coins, status Released) and the token (USDC blacklists its own address: releases fail).
    function test_fix_settlementZeroEscrowOrTokenRefused() public {
        address[3] memory bad = [address(0), address(escrow), address(token)];
        for (uint256 i; i < 3; ++i) {
            vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.InvalidSettlement.selector, bad[i]));
            vm.prank(owner);
            escrow.setPartner(PARTNER, bad[i], partnerSigner);
        }
        assertEq(escrow.partnerKey(PARTNER), keccak256(abi.encode(settlement, partnerSigner)));
    }

    function test_setGuardian() public {
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.GuardianSet(relayer);
        vm.prank(owner);
        escrow.setGuardian(relayer);
        assertEq(escrow.guardian(), relayer);
        vm.expectRevert(IRemittanceEscrow.ZeroAddress.selector);
        vm.prank(owner);
        escrow.setGuardian(address(0));
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, guardian));
        vm.prank(guardian);
        escrow.setGuardian(guardian);
    }

    function test_pause_byGuardianOrOwner_unpause_byOwner() public {
        vm.prank(guardian);
        escrow.pause();
        assertTrue(escrow.paused());
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, guardian));
        vm.prank(guardian);
        escrow.unpause();
        vm.prank(owner);
        escrow.unpause();
        assertFalse(escrow.paused());
        vm.prank(owner);
        escrow.pause();
        assertTrue(escrow.paused());
        vm.expectRevert(Pausable.EnforcedPause.selector);
        vm.prank(guardian);
        escrow.pause();
    }

    function test_pause_rejectsOthers() public {
        vm.expectRevert(IRemittanceEscrow.NotGuardian.selector);
        vm.prank(relayer);
        escrow.pause();
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, relayer));
        vm.prank(relayer);
        escrow.unpause();
        vm.expectRevert(Pausable.ExpectedPause.selector);
        vm.prank(owner);
        escrow.unpause();
    }

    /// Finding: v1's ownership could be handed over in two steps but also renounced, freezing the registry (a
    /// compromised partner could never be stopped from receiving new deposits). v2: two-step only, no renounce.
    function test_fix_ownershipTwoStep_renounceDisabled() public {
        vm.expectRevert(IRemittanceEscrow.RenounceDisabled.selector);
        vm.prank(owner);
        escrow.renounceOwnership();
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, relayer));
        vm.prank(relayer);
        escrow.renounceOwnership();
        assertEq(escrow.owner(), owner);

        address next = makeAddr("next owner");
        vm.prank(owner);
        escrow.transferOwnership(next);
        assertEq(escrow.owner(), owner, "the transfer alone changes nothing");
        assertEq(escrow.pendingOwner(), next);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, relayer));
        vm.prank(relayer);
        escrow.acceptOwnership();
        vm.prank(next);
        escrow.acceptOwnership();
        assertEq(escrow.owner(), next);
        assertEq(escrow.pendingOwner(), address(0));
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, owner));
        vm.prank(owner);
        escrow.setPartner(PARTNER, settlementB, partnerSigner);
    }

    // ---------------------------------------------------------------- deposit

    function test_deposit() public {
        IRemittanceEscrow.Terms memory t = termsFor(sender, 100e6, PARTNER, 1);
        IRemittanceEscrow.Authorization memory a = signAuth(senderKey, t);
        bytes32 id = idOf(t);
        vm.expectEmit(address(token));
        emit Transfer(sender, address(escrow), 100e6);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Deposited(id, singleLeaf(id), singleItem(t));
        vm.prank(relayer);
        assertEq(escrow.deposit(t, a), id);
        assertStatus(id, IRemittanceEscrow.Status.Locked);
        assertEq(token.balanceOf(address(escrow)), 100e6);
        assertEq(token.balanceOf(sender), INITIAL - 100e6);
        assertTrue(token.authorizationState(sender, id));
    }

    function test_deposit_twice_wrongState() public {
        IRemittanceEscrow.Terms memory t = termsFor(sender, 100e6, PARTNER, 1);
        IRemittanceEscrow.Authorization memory a = signAuth(senderKey, t);
        escrow.deposit(t, a);
        // The token's EIP-3009 nonce (the id) is spent: a remittance cannot be deposited twice.
        vm.expectRevert(bytes(USED_OR_CANCELED));
        escrow.deposit(t, a);
    }

    function test_deposit_invalidTerms() public {
        IRemittanceEscrow.Terms memory t = termsFor(sender, 100e6, PARTNER, 1);
        IRemittanceEscrow.Authorization memory a = signAuth(senderKey, t);
        IRemittanceEscrow.Terms memory bad = termsFor(sender, 100e6, PARTNER, 1);

        bad.sender = address(0);
        vm.expectRevert(IRemittanceEscrow.InvalidTerms.selector);
        escrow.deposit(bad, a);

        bad = termsFor(sender, 0, PARTNER, 1);
        vm.expectRevert(IRemittanceEscrow.InvalidTerms.selector);
        escrow.deposit(bad, a);

        bad = termsFor(sender, uint256(type(uint96).max) + 1, PARTNER, 1); // beyond the packed layouts' amount
        vm.expectRevert(IRemittanceEscrow.InvalidTerms.selector);
        escrow.deposit(bad, a);

        bad = termsFor(sender, 100e6, PARTNER, 1);
        bad.expiry = uint64(block.timestamp); // below now + minLockSeconds
        vm.expectRevert(
            abi.encodeWithSelector(
                IRemittanceEscrow.LockTimeOutOfBounds.selector,
                bad.expiry,
                block.timestamp + MIN_LOCK,
                block.timestamp + MAX_LOCK
            )
        );
        escrow.deposit(bad, a);

        bad = termsFor(sender, 100e6, 77, 1); // unknown partner
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.PartnerNotAccepting.selector, uint64(77)));
        escrow.deposit(bad, a);

        bad = termsFor(sender, 100e6, PARTNER, 1);
        bad.settlement = settlementB; // not this partner's settlement address
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.PartnerNotAccepting.selector, PARTNER));
        escrow.deposit(bad, a);

        bad = termsFor(sender, 100e6, PARTNER, 1);
        bad.partnerSigner = partnerSignerB; // not this partner's signer
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.PartnerNotAccepting.selector, PARTNER));
        escrow.deposit(bad, a);
    }

    /// Finding: v1 accepted any expiry after now: one second (a refund race from the start) or a century (coins
    /// locked for good when the partner never releases). v2: expiry within [now + min, now + max].
    function test_fix_lockTimeBounds() public {
        uint64[4] memory expiries = [
            uint64(block.timestamp + MIN_LOCK - 1),
            uint64(block.timestamp + MIN_LOCK),
            uint64(block.timestamp + MAX_LOCK),
            uint64(block.timestamp + MAX_LOCK + 1)
        ];
        bool[4] memory accepted = [false, true, true, false];
        for (uint256 i; i < 4; ++i) {
            IRemittanceEscrow.Terms memory t = termsFor(sender, 1e6, PARTNER, i);
            t.expiry = expiries[i];
            IRemittanceEscrow.Authorization memory a = signAuth(senderKey, t);
            if (!accepted[i]) {
                vm.expectRevert(
                    abi.encodeWithSelector(
                        IRemittanceEscrow.LockTimeOutOfBounds.selector,
                        t.expiry,
                        block.timestamp + MIN_LOCK,
                        block.timestamp + MAX_LOCK
                    )
                );
                escrow.deposit(t, a);
                vm.expectEmit(address(escrow));
                emit IRemittanceEscrow.Skipped(idOf(t), IRemittanceEscrow.SkipReason.InvalidTerms, "");
                assertEq(depositBatch(one(t, a)), 0);
                assertStatus(idOf(t), IRemittanceEscrow.Status.None);
            } else {
                escrow.deposit(t, a);
                assertStatus(idOf(t), IRemittanceEscrow.Status.Locked);
            }
        }
        // A century out: refused (v1 locked it).
        IRemittanceEscrow.Terms memory far = termsFor(sender, 1e6, PARTNER, 9);
        far.expiry = uint64(block.timestamp + 100 * 365 days);
        IRemittanceEscrow.Authorization memory farAuth = signAuth(senderKey, far);
        vm.expectPartialRevert(IRemittanceEscrow.LockTimeOutOfBounds.selector);
        escrow.deposit(far, farAuth);
    }

    function test_deposit_badSignature_revertsAndLeavesNothing() public {
        IRemittanceEscrow.Terms memory t = termsFor(sender, 100e6, PARTNER, 1);
        (, uint256 malloryKey) = makeAddrAndKey("mallory");
        IRemittanceEscrow.Authorization memory a = signAuth(malloryKey, t);
        vm.expectRevert(bytes(INVALID_SIGNATURE));
        escrow.deposit(t, a);
        assertStatus(idOf(t), IRemittanceEscrow.Status.None);
        assertEq(token.balanceOf(address(escrow)), 0);
    }

    function test_deposit_expiredAuthorization() public {
        IRemittanceEscrow.Terms memory t = termsFor(sender, 100e6, PARTNER, 1);
        IRemittanceEscrow.Authorization memory a = signAuth(senderKey, t);
        vm.warp(a.validBefore); // the expiry (a day out) is still within the lock bounds
        vm.expectRevert(bytes("FiatTokenV2: authorization is expired"));
        escrow.deposit(t, a);
    }

    function test_deposit_insufficientBalance() public {
        IRemittanceEscrow.Terms memory t = termsFor(sender, 2_000_000e6, PARTNER, 1);
        IRemittanceEscrow.Authorization memory a = signAuth(senderKey, t);
        vm.expectRevert(bytes("ERC20: transfer amount exceeds balance"));
        escrow.deposit(t, a);
        assertStatus(idOf(t), IRemittanceEscrow.Status.None);
    }

    function test_deposit_paused() public {
        IRemittanceEscrow.Terms memory t = termsFor(sender, 100e6, PARTNER, 1);
        IRemittanceEscrow.Authorization memory a = signAuth(senderKey, t);
        vm.prank(guardian);
        escrow.pause();
        vm.expectRevert(Pausable.EnforcedPause.selector);
        escrow.deposit(t, a);
        vm.expectRevert(Pausable.EnforcedPause.selector);
        depositBatch(one(t, a));
    }

    function test_deposit_usdcPaused_reverts() public {
        IRemittanceEscrow.Terms memory t = termsFor(sender, 100e6, PARTNER, 1);
        IRemittanceEscrow.Authorization memory a = signAuth(senderKey, t);
        pauseUsdc();
        vm.expectRevert(bytes(USDC_PAUSED));
        escrow.deposit(t, a);
        unpauseUsdc();
        escrow.deposit(t, a);
        assertStatus(idOf(t), IRemittanceEscrow.Status.Locked);
    }

    function test_deposit_blacklistedSender_reverts() public {
        IRemittanceEscrow.Terms memory t = termsFor(sender, 100e6, PARTNER, 1);
        IRemittanceEscrow.Authorization memory a = signAuth(senderKey, t);
        blacklist(sender);
        vm.expectRevert(bytes(BLACKLISTED));
        escrow.deposit(t, a);
        assertStatus(idOf(t), IRemittanceEscrow.Status.None);
    }

    /// Every single term is bound by the signature: changing any of them makes the deposit fail (the registry is
    /// set to accept the changed partner terms, so the failure is the signature's).
    function test_deposit_changedTermFails() public {
        IRemittanceEscrow.Terms memory t = termsFor(sender, 100e6, PARTNER, 1);
        IRemittanceEscrow.Authorization memory a = signAuth(senderKey, t);
        for (uint256 k; k < 7; ++k) {
            uint256 snap = vm.snapshotState();
            IRemittanceEscrow.Terms memory m = mutateBy(t, k, 1);
            vm.expectRevert(bytes(INVALID_SIGNATURE));
            escrow.deposit(m, a);
            vm.revertToState(snap);
        }
        escrow.deposit(t, a); // the original still works
    }

    // ---------------------------------------------------------------- depositBatch

    function test_depositBatch_skipsBadItems() public {
        DepositItem[] memory items = new DepositItem[](5);
        IRemittanceEscrow.Terms memory t0 = termsFor(sender, 10e6, PARTNER, 1);
        items[0] = DepositItem(t0, signAuth(senderKey, t0));
        items[1] = items[0]; // duplicate: the token refuses the spent nonce (AuthorizationFailed)
        IRemittanceEscrow.Terms memory t2 = termsFor(sender, 0, PARTNER, 2); // zero amount: InvalidTerms
        items[2] = DepositItem(t2, signAuth(senderKey, t2));
        IRemittanceEscrow.Terms memory t3 = termsFor(sender, 30e6, PARTNER, 3);
        IRemittanceEscrow.Authorization memory a3 = signAuth(senderKey, t3);
        a3.s = bytes32(uint256(a3.s) ^ 1); // broken signature: AuthorizationFailed
        items[3] = DepositItem(t3, a3);
        IRemittanceEscrow.Terms memory t4 = termsFor(sender, 40e6, PARTNER, 4);
        items[4] = DepositItem(t4, signAuth(senderKey, t4));

        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(
            idOf(t0), IRemittanceEscrow.SkipReason.AuthorizationFailed, usdcError(USED_OR_CANCELED)
        );
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(idOf(t2), IRemittanceEscrow.SkipReason.InvalidTerms, "");
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(
            idOf(t3), IRemittanceEscrow.SkipReason.AuthorizationFailed, usdcError(INVALID_SIGNATURE)
        );
        // The batch's leaves: the deposited ids at their item positions, zero where an item was skipped.
        bytes32[] memory leaves = new bytes32[](5);
        leaves[0] = idOf(t0);
        leaves[4] = idOf(t4);
        uint256[] memory words = new uint256[](5);
        words[0] = Packing.senderAmount(t0);
        words[4] = Packing.senderAmount(t4);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Deposited(Merkle.root(leaves), leaves, words);
        vm.prank(relayer);
        assertEq(depositBatch(items), 2);
        (uint256 n, uint256 exited, uint256 refunded) = escrow.batchOf(Merkle.root(leaves));
        assertEq(n, 5);
        assertEq(exited, 0);
        assertEq(refunded, 0);

        assertStatus(idOf(t0), IRemittanceEscrow.Status.Locked);
        assertStatus(idOf(t2), IRemittanceEscrow.Status.None);
        assertStatus(idOf(t3), IRemittanceEscrow.Status.None); // failed pull: never Locked
        assertStatus(idOf(t4), IRemittanceEscrow.Status.Locked);
        assertEq(token.balanceOf(address(escrow)), 50e6);
    }

    function test_depositBatch_invalidTermsVariants() public {
        IRemittanceEscrow.Terms[7] memory bad;
        bad[0] = termsFor(address(0), 1, PARTNER, 1);
        bad[1] = termsFor(sender, 1, 99, 2); // unknown partner
        bad[2] = termsFor(sender, 1, PARTNER, 3);
        bad[2].expiry = uint64(block.timestamp - 1);
        bad[3] = termsFor(sender, 0, PARTNER, 4);
        bad[4] = termsFor(sender, 1, PARTNER, 5);
        bad[4].settlement = settlementB; // not the registered settlement address
        bad[5] = termsFor(sender, 1, PARTNER, 6);
        bad[5].partnerSigner = relayer; // not the registered signer
        bad[6] = termsFor(sender, 1, PARTNER, 7);
        bad[6].expiry = uint64(block.timestamp + MAX_LOCK + 1);
        // A packed batch names one partner: each variant is a batch of its own.
        for (uint256 i; i < 7; ++i) {
            vm.expectEmit(address(escrow));
            emit IRemittanceEscrow.Skipped(idOf(bad[i]), IRemittanceEscrow.SkipReason.InvalidTerms, "");
            assertEq(depositBatch(one(bad[i], signAuth(senderKey, bad[i]))), 0);
        }
        assertEq(token.balanceOf(address(escrow)), 0);
    }

    /// Whatever gas limit the relayer picks (e.g. a low eth_estimateGas), a valid item is never skipped: the batch
    /// either deposits every valid item (and skips the refused one) or reverts as a whole.
    function testFuzz_depositBatch_gasLimitNeverSkipsValidItems(uint256 gasLimit) public {
        uint256 n = 4;
        DepositItem[] memory items = new DepositItem[](n);
        for (uint256 i; i < n; ++i) {
            IRemittanceEscrow.Terms memory t = termsFor(sender, (i + 1) * 1e6, PARTNER, i);
            items[i] = DepositItem(t, signAuth(senderKey, t));
        }
        items[2].auth.r = bytes32(uint256(items[2].auth.r) ^ 1); // a refused authorization (bad signature)
        gasLimit = bound(gasLimit, 30_000, 1_000_000);
        vm.prank(relayer);
        bytes memory packed = Packing.deposits(items, 0, n);
        vm.recordLogs();
        try escrow.depositBatch{gas: gasLimit}(packed) returns (uint256 done, bytes32) {
            recordBatches(vm.getRecordedLogs());
            assertEq(done, n - 1, "a valid item was skipped for lack of gas");
            assertEq(token.balanceOf(address(escrow)), 1e6 + 2e6 + 4e6);
            assertStatus(idOf(items[2].terms), IRemittanceEscrow.Status.None);
        } catch {
            assertEq(token.balanceOf(address(escrow)), 0);
            for (uint256 i; i < n; ++i) {
                assertStatus(idOf(items[i].terms), IRemittanceEscrow.Status.None);
            }
        }
    }

    /// Finding: in v1 one item whose token call ran (nearly) out of the gas it was given made the whole batch
    /// revert, whatever the gas limit: a sender whose ERC-1271 wallet burns all gas blocked every batch it was in.
    /// v2: each item's token call gets ITEM_GAS at most; an item that needs more is skipped, the others deposit.
    function test_fix_depositBatch_itemOverGasCap_skipped_othersDeposit() public {
        KeyWallet hungry = new KeyWallet(sender, 1_000_000_000); // burns whatever gas it is given (as in V1-9)
        mint(address(hungry), 10e6);
        DepositItem[] memory items = new DepositItem[](3);
        IRemittanceEscrow.Terms memory t0 = termsFor(sender, 1e6, PARTNER, 1);
        IRemittanceEscrow.Terms memory tw = termsFor(address(hungry), 10e6, PARTNER, 2);
        IRemittanceEscrow.Terms memory t2 = termsFor(sender, 2e6, PARTNER, 3);
        items[0] = DepositItem(t0, signAuth(senderKey, t0));
        items[1] = DepositItem(tw, signAuth(senderKey, tw)); // the wallet's owner signs
        items[2] = DepositItem(t2, signAuth(senderKey, t2));

        // A transaction gas limit that cannot cover the next item's cap reverts the batch (never skips an item).
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.InsufficientGas.selector, 0));
        vm.prank(relayer);
        depositBatchGas(items, 150_000);

        // Generous gas: the hungry item is still capped (skipped), the others go through.
        bytes memory packed = Packing.deposits(items, 0, 3);
        vm.recordLogs();
        vm.prank(relayer);
        (uint256 done,) = escrow.depositBatch{gas: 5_000_000}(packed);
        assertEq(done, 2);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        recordBatches(logs);
        bool skipped;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] == IRemittanceEscrow.Skipped.selector) {
                assertEq(logs[i].topics[1], idOf(tw));
                (IRemittanceEscrow.SkipReason reason,) = abi.decode(logs[i].data, (IRemittanceEscrow.SkipReason, bytes));
                assertEq(uint8(reason), uint8(IRemittanceEscrow.SkipReason.AuthorizationFailed));
                skipped = true;
            }
        }
        assertTrue(skipped);
        assertStatus(idOf(t0), IRemittanceEscrow.Status.Locked);
        assertStatus(idOf(tw), IRemittanceEscrow.Status.None);
        assertStatus(idOf(t2), IRemittanceEscrow.Status.Locked);
        assertEq(token.balanceOf(address(hungry)), 10e6);
        assertFalse(token.authorizationState(address(hungry), idOf(tw)));
    }

    /// A contract-wallet sender whose check fits the cap deposits in a batch like any other.
    function test_depositBatch_contractWalletUnderCap_deposits() public {
        KeyWallet wallet = new KeyWallet(sender, 2_000); // ~50,000 gas per check
        mint(address(wallet), 10e6);
        IRemittanceEscrow.Terms memory t = termsFor(address(wallet), 10e6, PARTNER, 1);
        assertEq(depositBatch(one(t, signAuth(senderKey, t))), 1);
        assertStatus(idOf(t), IRemittanceEscrow.Status.Locked);
    }

    /// The cap against the transaction's gas: too little for item `index` reverts InsufficientGas(index), however
    /// many items went before; enough for all deposits all.
    function test_depositBatch_insufficientGas_revertsWholeBatch() public {
        DepositItem[] memory items = new DepositItem[](8);
        for (uint256 i; i < 8; ++i) {
            IRemittanceEscrow.Terms memory t = termsFor(sender, 1e6 + i, PARTNER, i);
            items[i] = DepositItem(t, signAuth(senderKey, t));
        }
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.InsufficientGas.selector, 0));
        depositBatchGas(items, 200_000);
        // Enough for the first items but not for the last ones' caps: still reverts as a whole.
        vm.expectPartialRevert(IRemittanceEscrow.InsufficientGas.selector);
        depositBatchGas(items, 450_000);
        assertEq(token.balanceOf(address(escrow)), 0);
        assertEq(depositBatchGas(items, 1_500_000), 8);
        assertEq(token.balanceOf(address(escrow)), 8e6 + 28);
    }

    /// A griefer slips items into the relayer's batch: one whose EIP-3009 nonce it already used (it canceled the
    /// authorization on USDC), one with a signature that is not the sender's, one it cannot pay for. Each is
    /// skipped with the token's reason; the honest items deposit.
    function test_depositBatch_griefer_usedNonce_badSignature() public {
        (address griefer, uint256 grieferKey) = newSender("griefer");
        DepositItem[] memory items = new DepositItem[](5);
        items[0] = signedItem(sender, senderKey, 1e6, PARTNER, 4);
        items[1] = signedItem(griefer, grieferKey, 5e6, PARTNER, 1); // its nonce canceled below
        items[2] = signedItem(sender, grieferKey, 7e6, PARTNER, 2); // not the sender's key
        items[3] = signedItem(griefer, grieferKey, 2 * INITIAL, PARTNER, 3); // more than it holds
        items[4] = signedItem(sender, senderKey, 2e6, PARTNER, 5);
        bytes32 usedId = idOf(items[1].terms);
        cancelOnToken(grieferKey, griefer, usedId);

        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(
            usedId, IRemittanceEscrow.SkipReason.AuthorizationFailed, usdcError(USED_OR_CANCELED)
        );
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(
            idOf(items[2].terms), IRemittanceEscrow.SkipReason.AuthorizationFailed, usdcError(INVALID_SIGNATURE)
        );
        // USDC (Solidity 0.6.12) leaves dirty padding after some revert strings (here the 65 of its signature
        // buffer), so the expected detail is the token's own revert data for the same call.
        bytes memory brokeDetail = receiveRevertData(items[3]);
        assertEq(bytes32(brokeDetail), bytes32(usdcError("ERC20: transfer amount exceeds balance")));
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(
            idOf(items[3].terms), IRemittanceEscrow.SkipReason.AuthorizationFailed, brokeDetail
        );
        vm.prank(relayer);
        assertEq(depositBatch(items), 2);
        assertStatus(idOf(items[0].terms), IRemittanceEscrow.Status.Locked);
        assertStatus(idOf(items[4].terms), IRemittanceEscrow.Status.Locked);
        assertEq(token.balanceOf(address(escrow)), 3e6);
        assertEq(token.balanceOf(griefer), INITIAL);
    }

    /// The revert data USDC returns when the escrow redeems this item's authorization (the state is restored).
    function receiveRevertData(DepositItem memory item) internal returns (bytes memory data) {
        uint256 snap = vm.snapshotState();
        IRemittanceEscrow.Terms memory t = item.terms;
        IRemittanceEscrow.Authorization memory a = item.auth;
        vm.prank(address(escrow));
        bool ok;
        (ok, data) = address(token)
            .call(
                abi.encodeCall(
                    token.receiveWithAuthorization,
                    (t.sender, address(escrow), t.amount, a.validAfter, a.validBefore, idOf(t), a.v, a.r, a.s)
                )
            );
        assertFalse(ok);
        vm.revertToState(snap);
    }

    function signedItem(address from, uint256 key, uint256 amount, uint64 partnerId, uint256 seed)
        internal
        view
        returns (DepositItem memory item)
    {
        item.terms = termsFor(from, amount, partnerId, seed);
        item.auth = signAuth(key, item.terms);
    }

    /// A blacklisted sender's item is skipped (USDC's reason as detail); the others deposit.
    function test_depositBatch_blacklistedSender_skipped() public {
        (address other, uint256 otherKey) = newSender("other sender");
        IRemittanceEscrow.Terms memory ta = termsFor(sender, 1e6, PARTNER, 1);
        IRemittanceEscrow.Terms memory tb = termsFor(other, 2e6, PARTNER, 2);
        DepositItem[] memory items = new DepositItem[](2);
        items[0] = DepositItem(ta, signAuth(senderKey, ta));
        items[1] = DepositItem(tb, signAuth(otherKey, tb));
        blacklist(sender);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(
            idOf(ta), IRemittanceEscrow.SkipReason.AuthorizationFailed, usdcError(BLACKLISTED)
        );
        bytes32[] memory leaves = new bytes32[](2);
        leaves[1] = idOf(tb);
        uint256[] memory words = new uint256[](2);
        words[1] = Packing.senderAmount(tb);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Deposited(Merkle.root(leaves), leaves, words);
        assertEq(depositBatch(items), 1);
        assertStatus(idOf(ta), IRemittanceEscrow.Status.None);
        // Unblacklisted, the same authorization still deposits.
        unBlacklist(sender);
        assertEq(depositBatch(items), 1);
        assertStatus(idOf(ta), IRemittanceEscrow.Status.Locked);
    }

    /// USDC paused: every item is skipped with USDC's reason and nothing is Locked; after unpause the same signed
    /// items deposit.
    function test_depositBatch_usdcPaused_allSkipped() public {
        DepositItem[] memory items = new DepositItem[](3);
        for (uint256 i; i < 3; ++i) {
            IRemittanceEscrow.Terms memory t = termsFor(sender, 1e6 + i, PARTNER, i);
            items[i] = DepositItem(t, signAuth(senderKey, t));
        }
        pauseUsdc();
        for (uint256 i; i < 3; ++i) {
            vm.expectEmit(address(escrow));
            emit IRemittanceEscrow.Skipped(
                idOf(items[i].terms), IRemittanceEscrow.SkipReason.AuthorizationFailed, usdcError(USDC_PAUSED)
            );
        }
        assertEq(depositBatch(items), 0);
        for (uint256 i; i < 3; ++i) {
            assertStatus(idOf(items[i].terms), IRemittanceEscrow.Status.None);
        }
        unpauseUsdc();
        assertEq(depositBatch(items), 3);
    }

    function test_depositBatch_tooLarge() public {
        DepositItem[] memory items = new DepositItem[](65);
        for (uint256 i; i < 65; ++i) {
            items[i] = signedItem(sender, senderKey, 1e6, PARTNER, i);
        }
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.BatchTooLarge.selector, 65, 64));
        depositBatch(items);
    }

    function test_depositBatch_empty() public {
        vm.expectRevert(IRemittanceEscrow.MalformedBatch.selector);
        depositBatch(new DepositItem[](0));
        vm.expectRevert(IRemittanceEscrow.MalformedBatch.selector);
        escrow.depositBatch(hex"");
    }

    /// Sections of several partners in one batch: one tree over all items, each section checked against its own
    /// partner's registration, each leaf released to its own settlement address.
    function test_depositBatch_sectionsOfSeveralPartners() public {
        DepositItem[] memory items = new DepositItem[](4);
        items[0] = signedItem(sender, senderKey, 1e6, PARTNER, 1);
        items[1] = signedItem(sender, senderKey, 2e6, PARTNER, 2);
        items[2] = signedItem(sender, senderKey, 3e6, PARTNER_B, 3);
        items[3] = signedItem(sender, senderKey, 4e6, PARTNER, 4);
        bytes memory packed = Packing.depositSections(items);
        assertEq(uint8(packed[0]), 3);
        (uint256 done, bytes32 root,) = depositPackedLogs(packed);
        assertEq(done, 4);
        bytes32[] memory leaves = new bytes32[](4);
        for (uint256 i; i < 4; ++i) {
            leaves[i] = idOf(items[i].terms);
        }
        assertEq(root, Merkle.root(leaves));
        ReleaseItem[] memory rel = new ReleaseItem[](4);
        for (uint256 i; i < 4; ++i) {
            rel[i] = ReleaseItem(items[i].terms, preimageOf(i + 1));
        }
        assertEq(releaseBatch(rel), 4);
        assertEq(token.balanceOf(settlement), 7e6);
        assertEq(token.balanceOf(settlementB), 3e6);
    }

    /// The packed layout is checked before anything moves: too short, a count that does not match the length.
    function test_depositBatch_malformed() public {
        DepositItem[] memory items = new DepositItem[](2);
        items[0] = signedItem(sender, senderKey, 1e6, PARTNER, 1);
        items[1] = signedItem(sender, senderKey, 2e6, PARTNER, 2);
        bytes memory packed = Packing.deposits(items, 0, 2);
        vm.expectRevert(IRemittanceEscrow.MalformedBatch.selector);
        escrow.depositBatch(hex"0102");
        bytes memory cut = new bytes(packed.length - 1);
        for (uint256 i; i < cut.length; ++i) {
            cut[i] = packed[i];
        }
        vm.expectRevert(IRemittanceEscrow.MalformedBatch.selector);
        escrow.depositBatch(cut);
        vm.expectRevert(IRemittanceEscrow.MalformedBatch.selector);
        escrow.depositBatch(bytes.concat(packed, hex"00"));
        assertEq(token.balanceOf(address(escrow)), 0);
        assertEq(depositPacked(packed), 2);
    }

    /// A batch's leaves and root are what the Deposited event and rootOf say; every leaf has exactly one place
    /// (index, proof of the batch's depth), and a proof of another depth or index does not locate it.
    function testFuzz_depositBatch_leavesAndProofs(uint8 size, uint256 skipMask) public {
        uint256 n = bound(size, 1, 64);
        DepositItem[] memory items = new DepositItem[](n);
        bytes32[] memory leaves = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            items[i] = signedItem(sender, senderKey, 1e6 + i, PARTNER, i);
            if ((skipMask >> i) & 1 == 1) {
                items[i].terms.amount = 0; // skipped: InvalidTerms, a zero leaf
            } else {
                leaves[i] = idOf(items[i].terms);
            }
        }
        (uint256 deposited, bytes32 root,) = depositPackedLogs(Packing.deposits(items, 0, n));
        uint256 want;
        for (uint256 i; i < n; ++i) {
            if (leaves[i] != bytes32(0)) ++want;
        }
        assertEq(deposited, want);
        if (want == 0) {
            assertEq(root, bytes32(0));
            return;
        }
        assertEq(root, Merkle.root(leaves));
        assertEq(escrow.rootOf(leaves), root);
        (uint256 stored,,) = escrow.batchOf(root);
        assertEq(stored, n);
        for (uint256 i; i < n; ++i) {
            if (leaves[i] == bytes32(0)) continue;
            bytes32[] memory proof = Merkle.proof(leaves, i);
            assertEq(uint8(escrow.statusOf(leaves[i], i, proof)), uint8(IRemittanceEscrow.Status.Locked));
            if (proof.length > 0) {
                // One level short (an inner node taken for the root) or another index: not located.
                bytes32[] memory shorter = new bytes32[](proof.length - 1);
                for (uint256 k; k < shorter.length; ++k) {
                    shorter[k] = proof[k];
                }
                assertEq(uint8(escrow.statusOf(leaves[i], i, shorter)), uint8(IRemittanceEscrow.Status.None));
                assertEq(uint8(escrow.statusOf(leaves[i], i ^ 1, proof)), uint8(IRemittanceEscrow.Status.None));
            }
        }
    }

    // ---------------------------------------------------------------- release

    function test_release() public {
        (IRemittanceEscrow.Terms memory t, bytes32 id) = depositOne(100e6, PARTNER, 1);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Released(id, PARTNER, 1); // a batch of one: root = id, leaf 0
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Settled(PARTNER, settlement, 100e6, 1);
        vm.expectEmit(address(token));
        emit Transfer(address(escrow), settlement, 100e6);
        vm.prank(makeAddr("anyone with the code"));
        release(t, preimageOf(1));
        assertStatus(id, IRemittanceEscrow.Status.Released);
        assertEq(token.balanceOf(settlement), 100e6);
        assertEq(token.balanceOf(address(escrow)), 0);
    }

    /// v1 released after expiry too (racing the refund); v2 releases only before expiry: at and after it the
    /// sender's refund is the only exit.
    function test_release_atOrAfterExpiry_reverts_refundInstead() public {
        (IRemittanceEscrow.Terms memory t, bytes32 id) = depositOne(100e6, PARTNER, 1);
        vm.warp(t.expiry + 30 days);
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.Expired.selector, id, t.expiry));
        release(t, preimageOf(1));
        refund(t);
        assertEq(token.balanceOf(settlement), 0);
        assertEq(token.balanceOf(sender), INITIAL);
    }

    /// Finding: v1 paid the partner's *current* settlement address, so the owner could redirect every locked
    /// remittance with setPartner. v2 pays the address in the signed terms, whatever the registry says now.
    function test_fix_ownerCannotRedirectLockedMoney_setPartner() public {
        (IRemittanceEscrow.Terms memory t,) = depositOne(100e6, PARTNER, 1);
        (IRemittanceEscrow.Terms memory t2,) = depositOne(50e6, PARTNER, 2);
        address moved = makeAddr("owner's own address");
        vm.prank(owner);
        escrow.setPartner(PARTNER, moved, owner);
        release(t, preimageOf(1));
        ReleaseItem[] memory items = new ReleaseItem[](1);
        items[0] = ReleaseItem(t2, preimageOf(2));
        assertEq(releaseBatch(items), 1);
        assertEq(token.balanceOf(settlement), 150e6);
        assertEq(token.balanceOf(moved), 0);
        // Terms naming the new address are other terms: they hash to an id nobody deposited.
        IRemittanceEscrow.Terms memory redirected = t;
        redirected.settlement = moved;
        vm.expectRevert(badProof(idOf(redirected)));
        release(redirected, preimageOf(1));
    }

    /// Finding: v1's setPartner(id, 0) made a partner's locked remittances unreleasable (UnknownPartner): a partner
    /// that had paid out could not be reimbursed. v2: removePartner only stops new deposits.
    function test_fix_ownerCannotRedirectLockedMoney_removePartner() public {
        (IRemittanceEscrow.Terms memory t, bytes32 id) = depositOne(100e6, PARTNER, 1);
        (IRemittanceEscrow.Terms memory t2, bytes32 id2) = depositOne(40e6, PARTNER, 2);
        (IRemittanceEscrow.Terms memory t3, bytes32 id3) = depositOne(30e6, PARTNER, 3);
        vm.prank(owner);
        escrow.removePartner(PARTNER);
        release(t, preimageOf(1));
        assertStatus(id, IRemittanceEscrow.Status.Released);
        assertEq(token.balanceOf(settlement), 100e6);
        // cancel and refund still work too
        cancel(t2, signDecline(partnerSignerKey, id2));
        assertStatus(id2, IRemittanceEscrow.Status.Refunded);
        vm.warp(t3.expiry);
        refund(t3);
        assertStatus(id3, IRemittanceEscrow.Status.Refunded);
        assertEq(token.balanceOf(sender), INITIAL - 100e6);
    }

    function test_release_badPreimage() public {
        (IRemittanceEscrow.Terms memory t, bytes32 id) = depositOne(100e6, PARTNER, 1);
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.BadPreimage.selector, id));
        release(t, preimageOf(2));
    }

    function test_release_wrongState() public {
        IRemittanceEscrow.Terms memory never = termsFor(sender, 100e6, PARTNER, 9);
        vm.expectRevert(badProof(idOf(never)));
        release(never, preimageOf(9));

        (IRemittanceEscrow.Terms memory t, bytes32 id) = depositOne(100e6, PARTNER, 1);
        release(t, preimageOf(1));
        vm.expectRevert(wrongState(id, IRemittanceEscrow.Status.Released));
        release(t, preimageOf(1));
        vm.expectRevert(wrongState(id, IRemittanceEscrow.Status.Released));
        refund(t);

        (IRemittanceEscrow.Terms memory t2, bytes32 id2) = depositOne(100e6, PARTNER, 2);
        vm.warp(t2.expiry);
        refund(t2);
        vm.expectRevert(wrongState(id2, IRemittanceEscrow.Status.Refunded));
        release(t2, preimageOf(2));
    }

    /// The preimage for one remittance cannot release another, and releasing with another partner id or
    /// settlement address fails (the terms no longer hash to a Locked id).
    function test_release_cannotRedirectToAnotherPartner() public {
        (IRemittanceEscrow.Terms memory t,) = depositOne(100e6, PARTNER, 1);
        IRemittanceEscrow.Terms memory other = termsFor(sender, 100e6, PARTNER, 1);
        other.partnerId = PARTNER_B;
        vm.expectRevert(badProof(idOf(other)));
        release(other, preimageOf(1));
        other = termsFor(sender, 100e6, PARTNER_B, 1);
        other.claimHash = t.claimHash;
        vm.expectRevert(badProof(idOf(other)));
        release(other, preimageOf(1));
    }

    /// A blacklisted settlement address: the single release reverts and the remittance stays Locked (the sender
    /// refunds after expiry, or it is released once USDC unblacklists the partner).
    function test_release_blacklistedSettlement_staysLocked() public {
        (IRemittanceEscrow.Terms memory t, bytes32 id) = depositOne(100e6, PARTNER, 1);
        blacklist(settlement);
        vm.expectRevert(bytes(BLACKLISTED));
        release(t, preimageOf(1));
        assertStatus(id, IRemittanceEscrow.Status.Locked);
        unBlacklist(settlement);
        release(t, preimageOf(1));
        assertEq(token.balanceOf(settlement), 100e6);
    }

    function test_release_usdcPaused_revertsThenWorks() public {
        (IRemittanceEscrow.Terms memory t, bytes32 id) = depositOne(100e6, PARTNER, 1);
        pauseUsdc();
        vm.expectRevert(bytes(USDC_PAUSED));
        release(t, preimageOf(1));
        assertStatus(id, IRemittanceEscrow.Status.Locked);
        unpauseUsdc();
        release(t, preimageOf(1));
        assertStatus(id, IRemittanceEscrow.Status.Released);
    }

    // ---------------------------------------------------------------- pause (escrow)

    /// Finding: v1's pause stopped releases too, so a guardian could hold a paid partner's money until expiry
    /// and let the sender refund it. v2: pause stops new deposits only; release, cancel and refund go on.
    function test_fix_pauseStopsDepositsOnly_notReleaseRefundCancel() public {
        (IRemittanceEscrow.Terms memory a, bytes32 ida) = depositOne(10e6, PARTNER, 1);
        (IRemittanceEscrow.Terms memory b, bytes32 idb) = depositOne(20e6, PARTNER, 2);
        (IRemittanceEscrow.Terms memory c, bytes32 idc) = depositOne(30e6, PARTNER_B, 3);
        (IRemittanceEscrow.Terms memory d,) = depositOne(40e6, PARTNER, 4);
        (IRemittanceEscrow.Terms memory e,) = depositOne(50e6, PARTNER, 5);
        vm.prank(guardian);
        escrow.pause();

        DepositItem memory fresh = signedItem(sender, senderKey, 1e6, PARTNER, 6);
        vm.expectRevert(Pausable.EnforcedPause.selector);
        escrow.deposit(fresh.terms, fresh.auth);

        release(a, preimageOf(1));
        ReleaseItem[] memory rel = new ReleaseItem[](1);
        rel[0] = ReleaseItem(b, preimageOf(2));
        assertEq(releaseBatch(rel), 1);
        cancel(c, signDecline(partnerSignerKeyB, idc));
        vm.warp(d.expiry);
        refund(d);
        IRemittanceEscrow.Terms[] memory ref = new IRemittanceEscrow.Terms[](1);
        ref[0] = e;
        assertEq(refundBatch(ref), 1);

        assertStatus(ida, IRemittanceEscrow.Status.Released);
        assertStatus(idb, IRemittanceEscrow.Status.Released);
        assertStatus(idc, IRemittanceEscrow.Status.Refunded);
        assertEq(token.balanceOf(settlement), 30e6);
        assertEq(token.balanceOf(sender), INITIAL - 30e6);
        assertEq(token.balanceOf(address(escrow)), 0);
    }

    // ---------------------------------------------------------------- the expiry second

    /// Finding: in v1 both release and refund were valid at and after expiry, a race the faster transaction won.
    /// v2: release strictly before expiry, refund at or after it; exactly one exit is open at every second.
    function test_fix_expirySecond_releaseBeforeRefundAt() public {
        (IRemittanceEscrow.Terms memory t, bytes32 id) = depositOne(100e6, PARTNER, 1);
        vm.warp(t.expiry - 1);
        uint256 snap = vm.snapshotState();
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.NotExpired.selector, id, t.expiry));
        refund(t);
        release(t, preimageOf(1));
        assertStatus(id, IRemittanceEscrow.Status.Released);
        vm.revertToState(snap);

        vm.warp(t.expiry);
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.Expired.selector, id, t.expiry));
        release(t, preimageOf(1));
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.Expired.selector, id, t.expiry));
        cancel(t, signDecline(partnerSignerKey, id));
        ReleaseItem[] memory items = new ReleaseItem[](1);
        items[0] = ReleaseItem(t, preimageOf(1));
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(id, IRemittanceEscrow.SkipReason.Expired, "");
        assertEq(releaseBatch(items), 0);
        refund(t);
        assertStatus(id, IRemittanceEscrow.Status.Refunded);
    }

    // ---------------------------------------------------------------- cancel

    /// Finding: v1 had no way back before expiry; a partner that will not pay left the sender's money locked for
    /// the whole term. v2: the partner signer's Decline(id) lets anyone return it to the sender before expiry.
    function test_fix_cancel_eoaSigner() public {
        (IRemittanceEscrow.Terms memory t, bytes32 id) = depositOne(100e6, PARTNER, 1);
        bytes memory sig = signDecline(partnerSignerKey, id);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Canceled(id, PARTNER);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Refunded(id, sender, 100e6);
        vm.expectEmit(address(token));
        emit Transfer(address(escrow), sender, 100e6);
        vm.prank(makeAddr("anyone with the signature"));
        cancel(t, sig);
        assertStatus(id, IRemittanceEscrow.Status.Refunded);
        assertEq(token.balanceOf(sender), INITIAL);
        vm.expectRevert(wrongState(id, IRemittanceEscrow.Status.Refunded));
        cancel(t, sig);
        vm.expectRevert(wrongState(id, IRemittanceEscrow.Status.Refunded));
        release(t, preimageOf(1));
    }

    function test_fix_cancel_erc1271Signer() public {
        (address walletOwner, uint256 walletKey) = makeAddrAndKey("partner wallet owner");
        KeyWallet wallet = new KeyWallet(walletOwner, 0);
        vm.prank(owner);
        escrow.setPartner(PARTNER, settlement, address(wallet));
        (IRemittanceEscrow.Terms memory t,) = depositOneWithSigner(100e6, PARTNER, 1, address(wallet));
        bytes32 id = idOf(t);
        bytes memory sig = signDecline(walletKey, id);
        // The wallet's rules decide: switched off, the same signature is refused.
        vm.prank(walletOwner);
        wallet.setValid(false);
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.BadDeclineSignature.selector, id));
        cancel(t, sig);
        vm.prank(walletOwner);
        wallet.setValid(true);
        // A signature by another key is refused by the wallet.
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.BadDeclineSignature.selector, id));
        cancel(t, signDecline(partnerSignerKey, id));
        cancel(t, sig);
        assertStatus(id, IRemittanceEscrow.Status.Refunded);
        assertEq(token.balanceOf(sender), INITIAL);
    }

    function test_fix_cancel_badSignature() public {
        (IRemittanceEscrow.Terms memory t, bytes32 id) = depositOne(100e6, PARTNER, 1);
        (IRemittanceEscrow.Terms memory t2, bytes32 id2) = depositOne(100e6, PARTNER, 2);
        (, uint256 strangerKey) = makeAddrAndKey("stranger");
        bytes[5] memory bad = [
            signDecline(strangerKey, id), // not the partner's signer
            signDecline(partnerSignerKeyB, id), // another partner's signer
            signDecline(partnerSignerKey, id2), // the partner's consent for another remittance
            bytes(""), // empty
            abi.encodePacked(keccak256("r"), keccak256("s"), uint8(27)) // garbage
        ];
        for (uint256 i; i < bad.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.BadDeclineSignature.selector, id));
            cancel(t, bad[i]);
        }
        // The sender's own signature is not the partner's consent either.
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.BadDeclineSignature.selector, id));
        cancel(t, signDecline(senderKey, id));
        // A Decline signed for another escrow (other domain) does not work here.
        RemittanceEscrow other = new RemittanceEscrow(address(token), owner, guardian, MIN_LOCK, MAX_LOCK);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(partnerSignerKey, other.declineDigest(id));
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.BadDeclineSignature.selector, id));
        cancel(t, abi.encodePacked(r, s, v));
        assertStatus(id, IRemittanceEscrow.Status.Locked);
        assertStatus(id2, IRemittanceEscrow.Status.Locked);
        t2; // (deposited only for its id)
    }

    function test_fix_cancel_afterExpiry_reverts() public {
        (IRemittanceEscrow.Terms memory t, bytes32 id) = depositOne(100e6, PARTNER, 1);
        bytes memory sig = signDecline(partnerSignerKey, id);
        vm.warp(t.expiry);
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.Expired.selector, id, t.expiry));
        cancel(t, sig);
        vm.warp(t.expiry + 10 days);
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.Expired.selector, id, t.expiry));
        cancel(t, sig);
        refund(t); // the refund is the exit after expiry
        assertEq(token.balanceOf(sender), INITIAL);
    }

    function test_cancel_wrongState() public {
        IRemittanceEscrow.Terms memory never = termsFor(sender, 100e6, PARTNER, 9);
        vm.expectRevert(badProof(idOf(never)));
        cancel(never, signDecline(partnerSignerKey, idOf(never)));
        (IRemittanceEscrow.Terms memory t, bytes32 id) = depositOne(100e6, PARTNER, 1);
        release(t, preimageOf(1));
        vm.expectRevert(wrongState(id, IRemittanceEscrow.Status.Released));
        cancel(t, signDecline(partnerSignerKey, id));
    }

    /// A blacklisted sender cannot be paid back: the cancel reverts and the remittance stays Locked.
    function test_cancel_blacklistedSender_staysLocked() public {
        (IRemittanceEscrow.Terms memory t, bytes32 id) = depositOne(100e6, PARTNER, 1);
        blacklist(sender);
        vm.expectRevert(bytes(BLACKLISTED));
        cancel(t, signDecline(partnerSignerKey, id));
        assertStatus(id, IRemittanceEscrow.Status.Locked);
    }

    function depositOneWithSigner(uint256 amount, uint64 partnerId, uint256 seed, address signer)
        internal
        returns (IRemittanceEscrow.Terms memory t, bytes32 id)
    {
        t = termsFor(sender, amount, partnerId, seed);
        t.partnerSigner = signer;
        vm.prank(relayer);
        id = escrow.deposit(t, signAuth(senderKey, t));
    }

    // ---------------------------------------------------------------- releaseBatch

    function test_releaseBatch_oneTransferPerRun() public {
        uint64[6] memory partners = [PARTNER, PARTNER, PARTNER_B, PARTNER_B, PARTNER_B, PARTNER];
        ReleaseItem[] memory items = new ReleaseItem[](6);
        for (uint256 i; i < 6; ++i) {
            (IRemittanceEscrow.Terms memory t,) = depositOne((i + 1) * 1e6, partners[i], i);
            items[i] = ReleaseItem(t, preimageOf(i));
        }
        vm.recordLogs();
        vm.prank(relayer);
        assertEq(releaseBatch(items), 6);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        uint256 transfers;
        uint256 settled;
        for (uint256 i; i < logs.length; ++i) {
            if (logs[i].topics[0] == Transfer.selector) ++transfers;
            if (logs[i].topics[0] == IRemittanceEscrow.Settled.selector) ++settled;
        }
        assertEq(transfers, 3); // runs: [1,1] [2,2,2] [1]
        assertEq(settled, 3);
        assertEq(token.balanceOf(settlement), 1e6 + 2e6 + 6e6);
        assertEq(token.balanceOf(settlementB), 3e6 + 4e6 + 5e6);
        assertEq(token.balanceOf(address(escrow)), 0);
    }

    /// A partner that moved its settlement address between deposits: the same partner id with two settlement
    /// addresses makes two runs, each paid to the address in its terms.
    function test_releaseBatch_runsSplitBySettlement() public {
        (IRemittanceEscrow.Terms memory a,) = depositOne(1e6, PARTNER, 1);
        address moved = makeAddr("moved settlement");
        vm.prank(owner);
        escrow.setPartner(PARTNER, moved, partnerSigner);
        IRemittanceEscrow.Terms memory b = termsFor(sender, 2e6, PARTNER, 2);
        b.settlement = moved;
        escrow.deposit(b, signAuth(senderKey, b));
        ReleaseItem[] memory items = new ReleaseItem[](2);
        items[0] = ReleaseItem(a, preimageOf(1));
        items[1] = ReleaseItem(b, preimageOf(2));
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Settled(PARTNER, settlement, 1e6, 1);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Settled(PARTNER, moved, 2e6, 1);
        assertEq(releaseBatch(items), 2);
        assertEq(token.balanceOf(settlement), 1e6);
        assertEq(token.balanceOf(moved), 2e6);
    }

    function test_releaseBatch_settledEvents() public {
        ReleaseItem[] memory items = new ReleaseItem[](3);
        for (uint256 i; i < 3; ++i) {
            (IRemittanceEscrow.Terms memory t,) = depositOne(10e6, i < 2 ? PARTNER : PARTNER_B, i);
            items[i] = ReleaseItem(t, preimageOf(i));
        }
        // Single deposits: each its own batch (root = id, leaf 0), so one group and one Released event each.
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Released(idOf(items[0].terms), PARTNER, 1);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Released(idOf(items[1].terms), PARTNER, 1);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Settled(PARTNER, settlement, 20e6, 2);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Released(idOf(items[2].terms), PARTNER_B, 1);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Settled(PARTNER_B, settlementB, 10e6, 1);
        releaseBatch(items);
    }

    function test_releaseBatch_skipsBadItems() public {
        (IRemittanceEscrow.Terms memory a,) = depositOne(10e6, PARTNER, 1);
        (IRemittanceEscrow.Terms memory b,) = depositOne(20e6, PARTNER, 2);
        IRemittanceEscrow.Terms memory never = termsFor(sender, 5e6, PARTNER, 3);
        IRemittanceEscrow.Terms memory soon = termsFor(sender, 40e6, PARTNER_B, 4);
        soon.expiry = uint64(block.timestamp + MIN_LOCK);
        escrow.deposit(soon, signAuth(senderKey, soon));
        vm.prank(owner);
        escrow.removePartner(PARTNER); // a and b still release
        vm.warp(soon.expiry); // soon has expired: Expired; a and b have not

        ReleaseItem[] memory items = new ReleaseItem[](5);
        items[0] = ReleaseItem(a, preimageOf(1));
        items[1] = ReleaseItem(b, preimageOf(1)); // wrong code
        items[2] = ReleaseItem(never, preimageOf(3)); // never deposited
        items[3] = ReleaseItem(a, preimageOf(1)); // duplicate in the same batch
        items[4] = ReleaseItem(soon, preimageOf(4));

        // The packed release does not send the claim hash: a wrong code hashes to another id, whose proof fails.
        IRemittanceEscrow.Terms memory bWrong = termsFor(sender, 20e6, PARTNER, 2); // a copy of b's terms
        bWrong.expiry = b.expiry;
        bWrong.claimHash = keccak256(abi.encodePacked(preimageOf(1)));
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(idOf(bWrong), IRemittanceEscrow.SkipReason.BadProof, "");
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(idOf(never), IRemittanceEscrow.SkipReason.BadProof, "");
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(idOf(a), IRemittanceEscrow.SkipReason.WrongState, "");
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Released(idOf(a), PARTNER, 1);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Settled(PARTNER, settlement, 10e6, 1);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(idOf(soon), IRemittanceEscrow.SkipReason.Expired, "");
        assertEq(releaseBatch(items), 1);

        assertEq(token.balanceOf(settlement), 10e6);
        assertEq(token.balanceOf(address(escrow)), 60e6);
        assertStatus(idOf(b), IRemittanceEscrow.Status.Locked);
        assertStatus(idOf(soon), IRemittanceEscrow.Status.Locked);
    }

    function test_releaseBatch_allSkipped_noTransfer() public {
        (IRemittanceEscrow.Terms memory a,) = depositOne(10e6, PARTNER, 1);
        ReleaseItem[] memory items = new ReleaseItem[](1);
        items[0] = ReleaseItem(a, preimageOf(2));
        vm.recordLogs();
        assertEq(releaseBatch(items), 0);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 1); // only the Skipped event
        assertEq(logs[0].topics[0], IRemittanceEscrow.Skipped.selector);
    }

    /// Finding: in v1 one payout the token refused (a blacklisted settlement address) reverted the whole
    /// releaseBatch, holding up every other partner's releases. v2: that run stays Locked (Skipped,
    /// TransferFailed, with USDC's reason), the other runs are paid.
    function test_fix_releaseBatch_blacklistedPayeeRun_staysLocked_othersPaid() public {
        uint64[4] memory partners = [PARTNER, PARTNER_B, PARTNER_B, PARTNER];
        ReleaseItem[] memory items = new ReleaseItem[](4);
        for (uint256 i; i < 4; ++i) {
            (IRemittanceEscrow.Terms memory t,) = depositOne((i + 1) * 1e6, partners[i], i);
            items[i] = ReleaseItem(t, preimageOf(i));
        }
        blacklist(settlementB);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Released(idOf(items[0].terms), PARTNER, 1);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Settled(PARTNER, settlement, 1e6, 1);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(
            idOf(items[1].terms), IRemittanceEscrow.SkipReason.TransferFailed, usdcError(BLACKLISTED)
        );
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(
            idOf(items[2].terms), IRemittanceEscrow.SkipReason.TransferFailed, usdcError(BLACKLISTED)
        );
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Released(idOf(items[3].terms), PARTNER, 1);
        vm.prank(relayer);
        assertEq(releaseBatch(items), 2);
        assertStatus(idOf(items[1].terms), IRemittanceEscrow.Status.Locked);
        assertStatus(idOf(items[2].terms), IRemittanceEscrow.Status.Locked);
        assertEq(token.balanceOf(settlement), 5e6);
        assertEq(token.balanceOf(settlementB), 0);
        assertEq(token.balanceOf(address(escrow)), 5e6);
        // Once unblacklisted, the same items release.
        unBlacklist(settlementB);
        assertEq(releaseBatch(items), 2);
        assertEq(token.balanceOf(settlementB), 5e6);
        assertEq(token.balanceOf(address(escrow)), 0);
    }

    function test_releaseBatch_usdcPaused_staysLocked() public {
        ReleaseItem[] memory items = new ReleaseItem[](2);
        for (uint256 i; i < 2; ++i) {
            (IRemittanceEscrow.Terms memory t,) = depositOne(1e6, i == 0 ? PARTNER : PARTNER_B, i);
            items[i] = ReleaseItem(t, preimageOf(i));
        }
        pauseUsdc();
        for (uint256 i; i < 2; ++i) {
            vm.expectEmit(address(escrow));
            emit IRemittanceEscrow.Skipped(
                idOf(items[i].terms), IRemittanceEscrow.SkipReason.TransferFailed, usdcError(USDC_PAUSED)
            );
        }
        assertEq(releaseBatch(items), 0);
        assertStatus(idOf(items[0].terms), IRemittanceEscrow.Status.Locked);
        assertStatus(idOf(items[1].terms), IRemittanceEscrow.Status.Locked);
        unpauseUsdc();
        assertEq(releaseBatch(items), 2);
    }

    function test_releaseBatch_insufficientGas() public {
        (IRemittanceEscrow.Terms memory t,) = depositOne(1e6, PARTNER, 1);
        ReleaseItem[] memory items = new ReleaseItem[](1);
        items[0] = ReleaseItem(t, preimageOf(1));
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.InsufficientGas.selector, 0));
        escrow.releaseBatch{gas: 150_000}(packReleases(items));
        assertStatus(idOf(t), IRemittanceEscrow.Status.Locked);
        assertEq(releaseBatch(items), 1);
    }

    function test_releaseBatch_tooLarge() public {
        ReleaseItem[] memory items = new ReleaseItem[](65);
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.BatchTooLarge.selector, 65, 64));
        releaseBatch(items);
    }

    function test_releaseBatch_empty() public {
        vm.expectRevert(IRemittanceEscrow.MalformedBatch.selector);
        releaseBatch(new ReleaseItem[](0));
    }

    // ---------------------------------------------------------------- refund

    function test_refund() public {
        (IRemittanceEscrow.Terms memory t, bytes32 id) = depositOne(100e6, PARTNER, 1);
        vm.warp(t.expiry); // refundable at expiry
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Refunded(id, sender, 100e6);
        vm.expectEmit(address(token));
        emit Transfer(address(escrow), sender, 100e6);
        vm.prank(makeAddr("anyone"));
        refund(t);
        assertStatus(id, IRemittanceEscrow.Status.Refunded);
        assertEq(token.balanceOf(sender), INITIAL);
        vm.expectRevert(wrongState(id, IRemittanceEscrow.Status.Refunded));
        refund(t);
    }

    function test_refund_notExpired() public {
        (IRemittanceEscrow.Terms memory t, bytes32 id) = depositOne(100e6, PARTNER, 1);
        vm.warp(t.expiry - 1);
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.NotExpired.selector, id, t.expiry));
        refund(t);
    }

    function test_refund_neverDeposited() public {
        IRemittanceEscrow.Terms memory t = termsFor(sender, 100e6, PARTNER, 1);
        vm.warp(t.expiry);
        vm.expectRevert(badProof(idOf(t)));
        refund(t);
    }

    function test_refund_worksWhilePaused() public {
        (IRemittanceEscrow.Terms memory t,) = depositOne(100e6, PARTNER, 1);
        (IRemittanceEscrow.Terms memory t2,) = depositOne(50e6, PARTNER, 2);
        vm.prank(guardian);
        escrow.pause();
        vm.warp(t.expiry);
        refund(t);
        IRemittanceEscrow.Terms[] memory items = new IRemittanceEscrow.Terms[](1);
        items[0] = t2;
        assertEq(refundBatch(items), 1);
        assertEq(token.balanceOf(sender), INITIAL);
    }

    function test_refund_blacklistedSender_revertsStaysLocked() public {
        (IRemittanceEscrow.Terms memory t, bytes32 id) = depositOne(100e6, PARTNER, 1);
        vm.warp(t.expiry);
        blacklist(sender);
        vm.expectRevert(bytes(BLACKLISTED));
        refund(t);
        assertStatus(id, IRemittanceEscrow.Status.Locked);
        unBlacklist(sender);
        refund(t);
        assertEq(token.balanceOf(sender), INITIAL);
    }

    function test_refundBatch_skipsBadItems() public {
        (IRemittanceEscrow.Terms memory a, bytes32 ida) = depositOne(10e6, PARTNER, 1);
        (IRemittanceEscrow.Terms memory b, bytes32 idb) = depositOne(20e6, PARTNER, 2);
        (IRemittanceEscrow.Terms memory c, bytes32 idc) = depositOne(30e6, PARTNER, 3);
        IRemittanceEscrow.Terms memory late = termsFor(sender, 40e6, PARTNER, 4);
        late.expiry = uint64(block.timestamp + 3 days);
        escrow.deposit(late, signAuth(senderKey, late));
        release(c, preimageOf(3));
        vm.warp(a.expiry);

        IRemittanceEscrow.Terms[] memory items = new IRemittanceEscrow.Terms[](5);
        items[0] = a;
        items[1] = c; // released: WrongState
        items[2] = late; // not expired
        items[3] = b;
        items[4] = a; // duplicate
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Refunded(ida, sender, 10e6);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(idc, IRemittanceEscrow.SkipReason.WrongState, "");
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(idOf(late), IRemittanceEscrow.SkipReason.NotExpired, "");
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Refunded(idb, sender, 20e6);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(ida, IRemittanceEscrow.SkipReason.WrongState, "");
        assertEq(refundBatch(items), 2);
        assertEq(token.balanceOf(address(escrow)), 40e6);
        assertEq(token.balanceOf(sender), INITIAL - 30e6 - 40e6);
    }

    /// Finding: in v1 one refund the token refused (a blacklisted sender) reverted the whole refundBatch, holding
    /// up every other sender's refund. v2: that item stays Locked (TransferFailed), the others are refunded.
    function test_fix_refundBatch_blacklistedSender_staysLocked_othersRefunded() public {
        (address other, uint256 otherKey) = newSender("other sender");
        (IRemittanceEscrow.Terms memory a, bytes32 ida) = depositOne(10e6, PARTNER, 1);
        (IRemittanceEscrow.Terms memory b, bytes32 idb) = depositAs(other, otherKey, 20e6, PARTNER, 2);
        (IRemittanceEscrow.Terms memory c, bytes32 idc) = depositOne(30e6, PARTNER_B, 3);
        vm.warp(a.expiry);
        blacklist(other);
        IRemittanceEscrow.Terms[] memory items = new IRemittanceEscrow.Terms[](3);
        items[0] = a;
        items[1] = b;
        items[2] = c;
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Refunded(ida, sender, 10e6);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(idb, IRemittanceEscrow.SkipReason.TransferFailed, usdcError(BLACKLISTED));
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Refunded(idc, sender, 30e6);
        assertEq(refundBatch(items), 2);
        assertStatus(idb, IRemittanceEscrow.Status.Locked);
        assertEq(token.balanceOf(address(escrow)), 20e6);
        assertEq(token.balanceOf(sender), INITIAL);
        unBlacklist(other);
        assertEq(refundBatch(items), 1);
        assertEq(token.balanceOf(other), INITIAL);
    }

    function test_refundBatch_fullBatch() public {
        IRemittanceEscrow.Terms[] memory items = new IRemittanceEscrow.Terms[](64);
        for (uint256 i; i < 64; ++i) {
            (items[i],) = depositOne(1e6 + i, PARTNER, i);
        }
        vm.warp(items[0].expiry);
        assertEq(refundBatch(items), 64);
        assertEq(token.balanceOf(address(escrow)), 0);
        assertEq(token.balanceOf(sender), INITIAL);
    }

    function test_refundBatch_tooLarge() public {
        IRemittanceEscrow.Terms[] memory items = new IRemittanceEscrow.Terms[](65);
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.BatchTooLarge.selector, 65, 64));
        refundBatch(items);
    }

    // ---------------------------------------------------------------- front-running

    /// Someone else submits the sender's signed deposit first: it locks exactly the signed terms; the relayer's
    /// own attempt is skipped (batch) or reverts (single); the funds can still be released or refunded.
    function test_frontRun_deposit() public {
        IRemittanceEscrow.Terms memory t = termsFor(sender, 100e6, PARTNER, 1);
        IRemittanceEscrow.Authorization memory a = signAuth(senderKey, t);
        vm.prank(makeAddr("front-runner"));
        escrow.deposit(t, a);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(
            idOf(t), IRemittanceEscrow.SkipReason.AuthorizationFailed, usdcError(USED_OR_CANCELED)
        );
        vm.prank(relayer);
        assertEq(depositBatch(one(t, a)), 0);
        release(t, preimageOf(1));
        assertEq(token.balanceOf(settlement), 100e6);
    }

    /// The authorization cannot be redeemed on the token by anyone but the escrow, nor replayed as a transfer.
    function test_frontRun_directRedeemOnToken() public {
        IRemittanceEscrow.Terms memory t = termsFor(sender, 100e6, PARTNER, 1);
        IRemittanceEscrow.Authorization memory a = signAuth(senderKey, t);
        address thief = makeAddr("thief");
        vm.startPrank(thief);
        vm.expectRevert(bytes("FiatTokenV2: caller must be the payee"));
        token.receiveWithAuthorization(
            sender, address(escrow), 100e6, a.validAfter, a.validBefore, idOf(t), a.v, a.r, a.s
        );
        vm.expectRevert(bytes(INVALID_SIGNATURE));
        token.receiveWithAuthorization(sender, thief, 100e6, a.validAfter, a.validBefore, idOf(t), a.v, a.r, a.s);
        vm.expectRevert(bytes(INVALID_SIGNATURE));
        token.transferWithAuthorization(sender, thief, 100e6, a.validAfter, a.validBefore, idOf(t), a.v, a.r, a.s);
        vm.expectRevert(bytes(INVALID_SIGNATURE));
        token.transferWithAuthorization(
            sender, address(escrow), 100e6, a.validAfter, a.validBefore, idOf(t), a.v, a.r, a.s
        );
        vm.stopPrank();
        vm.prank(relayer);
        escrow.deposit(t, a);
        assertEq(token.balanceOf(thief), 0);
        assertEq(token.balanceOf(address(escrow)), 100e6);
    }

    /// A sender who cancels the authorization before the relayer submits it: nothing is locked.
    function test_canceledAuthorization_depositFailsCleanly() public {
        IRemittanceEscrow.Terms memory t = termsFor(sender, 100e6, PARTNER, 1);
        IRemittanceEscrow.Authorization memory a = signAuth(senderKey, t);
        bytes32 id = idOf(t);
        cancelOnToken(senderKey, sender, id);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(
            id, IRemittanceEscrow.SkipReason.AuthorizationFailed, usdcError(USED_OR_CANCELED)
        );
        assertEq(depositBatch(one(t, a)), 0);
        assertStatus(id, IRemittanceEscrow.Status.None);
    }

    // ---------------------------------------------------------------- claim preimage

    /// The node's preimage: 16 random salt bytes, then the 12-character pickup code's ASCII, then 4 zero bytes.
    /// The salt makes the claim hash unsearchable from the code; the contract only checks the hash.
    function test_preimage_saltLayout() public {
        bytes16 salt = bytes16(0x0123456789abcdeffedcba9876543210);
        bytes12 code = bytes12("7KQ2M9XPRT4W");
        bytes32 preimage = preimageFor(salt, code);
        assertEq(preimage, bytes32(hex"0123456789abcdeffedcba9876543210" hex"374b51324d39585052543457" hex"00000000"));
        assertEq(bytes16(preimage), salt);
        assertEq(bytes12(preimage << 128), code);
        assertEq(uint32(uint256(preimage)), 0);

        IRemittanceEscrow.Terms memory t = termsFor(sender, 100e6, PARTNER, 1);
        t.claimHash = keccak256(abi.encodePacked(preimage));
        bytes32 id = escrow.deposit(t, signAuth(senderKey, t));
        // The code alone (v1's layout: ASCII right-padded) or the code under another salt does not release.
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.BadPreimage.selector, id));
        release(t, bytes32(code));
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.BadPreimage.selector, id));
        release(t, preimageFor(bytes16(uint128(salt) ^ 1), code));
        // The release's calldata reveals the preimage (the code is spent then), so anyone can check it off-chain.
        release(t, preimage);
        assertStatus(id, IRemittanceEscrow.Status.Released);
    }

    function testFuzz_preimage_saltLayout(bytes16 salt, bytes12 code) public pure {
        bytes32 p = preimageFor(salt, code);
        assertEq(bytes16(p), salt);
        assertEq(bytes12(p << 128), code);
        assertEq(uint32(uint256(p)), 0);
    }

    // ---------------------------------------------------------------- fuzz

    function testFuzz_depositRelease(
        uint256 amount,
        uint64 partnerId,
        uint64 ttl,
        bytes32 preimage,
        uint256 relayerSeed,
        address settle,
        address signer
    ) public {
        amount = bound(amount, 1, token.balanceOf(sender));
        vm.assume(partnerId != PARTNER && partnerId != PARTNER_B);
        ttl = uint64(bound(ttl, MIN_LOCK + 1, MAX_LOCK));
        vm.assume(settle != address(0) && settle != address(escrow) && settle != address(token) && settle != sender);
        vm.assume(settle != proxyAdmin && signer != address(0));
        vm.prank(owner);
        escrow.setPartner(partnerId, settle, signer);
        IRemittanceEscrow.Terms memory t = IRemittanceEscrow.Terms({
            sender: sender,
            amount: amount,
            partnerId: partnerId,
            expiry: uint64(block.timestamp) + ttl,
            settlement: settle,
            partnerSigner: signer,
            claimHash: keccak256(abi.encodePacked(preimage))
        });
        uint256 before = token.balanceOf(settle);
        vm.prank(address(uint160(bound(relayerSeed, 1, type(uint160).max))));
        bytes32 id = escrow.deposit(t, signAuth(senderKey, t));
        assertEq(id, idOf(t));
        assertEq(token.balanceOf(address(escrow)), amount);
        vm.warp(block.timestamp + ttl - 1); // the last second before expiry
        release(t, preimage);
        assertEq(token.balanceOf(settle), before + amount);
        assertEq(token.balanceOf(address(escrow)), 0);
        assertStatus(id, IRemittanceEscrow.Status.Released);
    }

    function testFuzz_wrongPreimageNeverReleases(bytes32 preimage, bytes32 guess) public {
        vm.assume(preimage != guess);
        IRemittanceEscrow.Terms memory t = termsFor(sender, 1e6, PARTNER, 0);
        t.claimHash = keccak256(abi.encodePacked(preimage));
        escrow.deposit(t, signAuth(senderKey, t));
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.BadPreimage.selector, idOf(t)));
        release(t, guess);
        ReleaseItem[] memory items = new ReleaseItem[](1);
        items[0] = ReleaseItem(t, guess);
        assertEq(releaseBatch(items), 0);
        assertStatus(idOf(t), IRemittanceEscrow.Status.Locked);
        assertEq(token.balanceOf(address(escrow)), 1e6);
    }

    function testFuzz_refundOnlyAtOrAfterExpiry(uint64 ttl, uint64 wait) public {
        ttl = uint64(bound(ttl, MIN_LOCK, MAX_LOCK));
        wait = uint64(bound(wait, 0, 2 * MAX_LOCK));
        IRemittanceEscrow.Terms memory t = termsFor(sender, 1e6, PARTNER, 0);
        t.expiry = uint64(block.timestamp) + ttl;
        escrow.deposit(t, signAuth(senderKey, t));
        vm.warp(block.timestamp + wait);
        if (wait < ttl) {
            vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.NotExpired.selector, idOf(t), t.expiry));
            refund(t);
        } else {
            refund(t);
            assertEq(token.balanceOf(sender), INITIAL);
        }
    }

    function testFuzz_releaseOnlyBeforeExpiry(uint64 ttl, uint64 wait) public {
        ttl = uint64(bound(ttl, MIN_LOCK, MAX_LOCK));
        wait = uint64(bound(wait, 0, 2 * MAX_LOCK));
        IRemittanceEscrow.Terms memory t = termsFor(sender, 1e6, PARTNER, 0);
        t.expiry = uint64(block.timestamp) + ttl;
        escrow.deposit(t, signAuth(senderKey, t));
        vm.warp(block.timestamp + wait);
        if (wait < ttl) {
            release(t, preimageOf(0));
            assertEq(token.balanceOf(settlement), 1e6);
        } else {
            vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.Expired.selector, idOf(t), t.expiry));
            release(t, preimageOf(0));
            vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.Expired.selector, idOf(t), t.expiry));
            cancel(t, signDecline(partnerSignerKey, idOf(t)));
        }
    }

    /// A signature authorizes exactly its terms: any changed term (sender, amount, partner, expiry, settlement,
    /// partner signer, claim hash) or a changed authorization window makes the deposit fail and leaves no state.
    /// The registry is made to accept the changed partner terms, so it is the token that refuses the signature.
    function testFuzz_signatureBindsTerms(uint256 which, uint256 delta) public {
        IRemittanceEscrow.Terms memory t = termsFor(sender, 100e6, PARTNER, 1);
        IRemittanceEscrow.Authorization memory a = signAuth(senderKey, t);
        which = bound(which, 0, 8);
        delta = bound(delta, 1, 1e6);
        IRemittanceEscrow.Terms memory m = termsFor(sender, 100e6, PARTNER, 1);
        IRemittanceEscrow.Authorization memory ma = signAuth(senderKey, t);
        if (which < 7) {
            m = mutateBy(t, which, delta);
        } else if (which == 7) {
            ma.validBefore = a.validBefore + delta;
        } else {
            ma.validAfter = 1; // still in the past, but not what was signed
        }
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(
            idOf(m), IRemittanceEscrow.SkipReason.AuthorizationFailed, usdcError(INVALID_SIGNATURE)
        );
        assertEq(depositBatch(one(m, ma)), 0);
        assertStatus(idOf(m), IRemittanceEscrow.Status.None);
        assertEq(token.balanceOf(address(escrow)), 0);
        assertFalse(token.authorizationState(sender, idOf(t)));
    }

    // ---------------------------------------------------------------- helpers

    /// Terms `t` with field `k` changed (0 sender, 1 amount, 2 partnerId, 3 expiry, 4 settlement, 5 partner signer,
    /// 6 claim hash), still acceptable: the registry is set to accept the changed partner terms.
    function mutateBy(IRemittanceEscrow.Terms memory t, uint256 k, uint256 delta)
        internal
        returns (IRemittanceEscrow.Terms memory m)
    {
        m = IRemittanceEscrow.Terms(
            t.sender, t.amount, t.partnerId, t.expiry, t.settlement, t.partnerSigner, t.claimHash
        );
        // forge-lint: disable-next-line(unsafe-typecast)
        if (k == 0) m.sender = address(uint160(t.sender) ^ uint160(delta));
        else if (k == 1) m.amount = t.amount + delta;
        else if (k == 2) m.partnerId = t.partnerId + 100;
        // forge-lint: disable-next-line(unsafe-typecast)
        else if (k == 3) m.expiry = t.expiry + uint64(delta);
        // forge-lint: disable-next-line(unsafe-typecast)
        else if (k == 4) m.settlement = address(uint160(t.settlement) ^ uint160(delta));
        // forge-lint: disable-next-line(unsafe-typecast)
        else if (k == 5) m.partnerSigner = address(uint160(t.partnerSigner) ^ uint160(delta));
        else m.claimHash = bytes32(uint256(t.claimHash) ^ delta);
        vm.prank(owner);
        escrow.setPartner(m.partnerId, m.settlement, m.partnerSigner);
        require(m.sender != address(0) && m.expiry <= block.timestamp + MAX_LOCK, "mutation made terms invalid");
    }
}
