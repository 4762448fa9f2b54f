// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {EscrowBase} from "./Base.t.sol";
import {IRemittanceEscrow} from "../src/interfaces/IRemittanceEscrow.sol";
import {RemittanceEscrow} from "../src/RemittanceEscrow.sol";
import {TestStablecoin} from "../src/TestStablecoin.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Vm} from "forge-std/Vm.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

contract RemittanceEscrowTest is EscrowBase {
    using StatusLib for IRemittanceEscrow.Status;

    event Transfer(address indexed from, address indexed to, uint256 value);

    // ---------------------------------------------------------------- construction and administration

    function test_constructor() public {
        assertEq(escrow.token(), address(token));
        assertEq(escrow.owner(), owner);
        assertEq(escrow.guardian(), guardian);
        assertEq(escrow.MAX_BATCH(), 64);
        assertFalse(escrow.paused());
        vm.expectEmit();
        emit IRemittanceEscrow.GuardianSet(guardian);
        new RemittanceEscrow(address(token), owner, guardian);
    }

    function test_constructor_rejectsZeroAddresses() public {
        vm.expectRevert(IRemittanceEscrow.ZeroAddress.selector);
        new RemittanceEscrow(address(0), owner, guardian);
        vm.expectRevert(IRemittanceEscrow.ZeroAddress.selector);
        new RemittanceEscrow(address(token), owner, address(0));
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableInvalidOwner.selector, address(0)));
        new RemittanceEscrow(address(token), address(0), guardian);
    }

    function test_remittanceId_isTheDocumentedHash() public view {
        IRemittanceEscrow.Terms memory t = termsFor(sender, 123e6, PARTNER, 9);
        assertEq(escrow.remittanceId(t), idOf(t));
    }

    function test_setPartner() public {
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.PartnerSet(42, address(0xBEEF));
        vm.prank(owner);
        escrow.setPartner(42, address(0xBEEF));
        assertEq(escrow.partnerSettlement(42), address(0xBEEF));
        vm.prank(owner);
        escrow.setPartner(42, address(0));
        assertEq(escrow.partnerSettlement(42), address(0));
    }

    function test_setPartner_onlyOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, guardian));
        vm.prank(guardian);
        escrow.setPartner(42, address(0xBEEF));
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

    function test_ownable2Step() public {
        vm.prank(owner);
        escrow.transferOwnership(relayer);
        assertEq(escrow.owner(), owner);
        vm.prank(relayer);
        escrow.acceptOwnership();
        assertEq(escrow.owner(), relayer);
    }

    // ---------------------------------------------------------------- deposit

    function test_deposit() public {
        IRemittanceEscrow.Terms memory t = termsFor(sender, 100e6, PARTNER, 1);
        IRemittanceEscrow.Authorization memory a = signAuth(senderKey, t);
        bytes32 id = idOf(t);
        vm.expectEmit(address(token));
        emit Transfer(sender, address(escrow), 100e6);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Deposited(id, sender, PARTNER, 100e6, t.expiry, t.claimHash);
        vm.prank(relayer);
        assertEq(escrow.deposit(t, a), id);
        assertTrue(escrow.statusOf(id).eq(IRemittanceEscrow.Status.Locked));
        assertEq(token.balanceOf(address(escrow)), 100e6);
        assertEq(token.balanceOf(sender), 1_000_000e6 - 100e6);
        assertTrue(token.authorizationState(sender, id));
    }

    function test_deposit_twice_wrongState() public {
        IRemittanceEscrow.Terms memory t = termsFor(sender, 100e6, PARTNER, 1);
        IRemittanceEscrow.Authorization memory a = signAuth(senderKey, t);
        escrow.deposit(t, a);
        vm.expectRevert(
            abi.encodeWithSelector(IRemittanceEscrow.WrongState.selector, idOf(t), IRemittanceEscrow.Status.Locked)
        );
        escrow.deposit(t, a);
    }

    function test_deposit_invalidTerms() public {
        IRemittanceEscrow.Terms memory t = termsFor(sender, 100e6, PARTNER, 1);
        IRemittanceEscrow.Authorization memory a = signAuth(senderKey, t);
        IRemittanceEscrow.Terms memory bad = t;

        bad.sender = address(0);
        vm.expectRevert(IRemittanceEscrow.InvalidTerms.selector);
        escrow.deposit(bad, a);

        bad = termsFor(sender, 0, PARTNER, 1);
        vm.expectRevert(IRemittanceEscrow.InvalidTerms.selector);
        escrow.deposit(bad, a);

        bad = termsFor(sender, 100e6, PARTNER, 1);
        bad.expiry = uint64(block.timestamp); // must be strictly in the future
        vm.expectRevert(IRemittanceEscrow.InvalidTerms.selector);
        escrow.deposit(bad, a);

        bad = termsFor(sender, 100e6, 77, 1);
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.UnknownPartner.selector, uint64(77)));
        escrow.deposit(bad, a);
    }

    function test_deposit_badSignature_revertsAndLeavesNothing() public {
        IRemittanceEscrow.Terms memory t = termsFor(sender, 100e6, PARTNER, 1);
        (, uint256 malloryKey) = makeAddrAndKey("mallory");
        IRemittanceEscrow.Authorization memory a = signAuth(malloryKey, t);
        vm.expectRevert(TestStablecoin.InvalidSignature.selector);
        escrow.deposit(t, a);
        assertTrue(escrow.statusOf(idOf(t)).eq(IRemittanceEscrow.Status.None));
        assertEq(token.balanceOf(address(escrow)), 0);
    }

    function test_deposit_expiredAuthorization() public {
        IRemittanceEscrow.Terms memory t = termsFor(sender, 100e6, PARTNER, 1);
        IRemittanceEscrow.Authorization memory a = signAuth(senderKey, t);
        vm.warp(a.validBefore);
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.AuthorizationExpired.selector, a.validBefore));
        escrow.deposit(t, a);
    }

    function test_deposit_insufficientBalance() public {
        IRemittanceEscrow.Terms memory t = termsFor(sender, 2_000_000e6, PARTNER, 1);
        IRemittanceEscrow.Authorization memory a = signAuth(senderKey, t);
        vm.expectRevert(); // ERC20InsufficientBalance from the token
        escrow.deposit(t, a);
        assertTrue(escrow.statusOf(idOf(t)).eq(IRemittanceEscrow.Status.None));
    }

    function test_deposit_paused() public {
        IRemittanceEscrow.Terms memory t = termsFor(sender, 100e6, PARTNER, 1);
        IRemittanceEscrow.Authorization memory a = signAuth(senderKey, t);
        vm.prank(guardian);
        escrow.pause();
        vm.expectRevert(Pausable.EnforcedPause.selector);
        escrow.deposit(t, a);
        IRemittanceEscrow.DepositItem[] memory items = new IRemittanceEscrow.DepositItem[](1);
        items[0] = IRemittanceEscrow.DepositItem(t, a);
        vm.expectRevert(Pausable.EnforcedPause.selector);
        escrow.depositBatch(items);
    }

    /// Every single term is bound by the signature: changing any of them makes the deposit fail.
    function test_deposit_changedTermFails() public {
        IRemittanceEscrow.Terms memory t = termsFor(sender, 100e6, PARTNER, 1);
        IRemittanceEscrow.Authorization memory a = signAuth(senderKey, t);
        for (uint256 k; k < 5; ++k) {
            IRemittanceEscrow.Terms memory m = mutate(t, k);
            vm.expectRevert();
            escrow.deposit(m, a);
        }
        escrow.deposit(t, a); // the original still works
    }

    // ---------------------------------------------------------------- depositBatch

    function test_depositBatch_skipsBadItems() public {
        IRemittanceEscrow.DepositItem[] memory items = new IRemittanceEscrow.DepositItem[](5);
        IRemittanceEscrow.Terms memory t0 = termsFor(sender, 10e6, PARTNER, 1);
        items[0] = IRemittanceEscrow.DepositItem(t0, signAuth(senderKey, t0));
        items[1] = items[0]; // duplicate: WrongState
        IRemittanceEscrow.Terms memory t2 = termsFor(sender, 0, PARTNER, 2); // zero amount: InvalidTerms
        items[2] = IRemittanceEscrow.DepositItem(t2, signAuth(senderKey, t2));
        IRemittanceEscrow.Terms memory t3 = termsFor(sender, 30e6, PARTNER_B, 3);
        IRemittanceEscrow.Authorization memory a3 = signAuth(senderKey, t3);
        a3.s = bytes32(uint256(a3.s) ^ 1); // broken signature: AuthorizationFailed
        items[3] = IRemittanceEscrow.DepositItem(t3, a3);
        IRemittanceEscrow.Terms memory t4 = termsFor(sender, 40e6, PARTNER_B, 4);
        items[4] = IRemittanceEscrow.DepositItem(t4, signAuth(senderKey, t4));

        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Deposited(idOf(t0), sender, PARTNER, 10e6, t0.expiry, t0.claimHash);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(idOf(t0), IRemittanceEscrow.SkipReason.WrongState);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(idOf(t2), IRemittanceEscrow.SkipReason.InvalidTerms);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(idOf(t3), IRemittanceEscrow.SkipReason.AuthorizationFailed);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Deposited(idOf(t4), sender, PARTNER_B, 40e6, t4.expiry, t4.claimHash);
        vm.prank(relayer);
        assertEq(escrow.depositBatch(items), 2);

        assertTrue(escrow.statusOf(idOf(t0)).eq(IRemittanceEscrow.Status.Locked));
        assertTrue(escrow.statusOf(idOf(t2)).eq(IRemittanceEscrow.Status.None));
        assertTrue(escrow.statusOf(idOf(t3)).eq(IRemittanceEscrow.Status.None)); // failed pull: never Locked
        assertTrue(escrow.statusOf(idOf(t4)).eq(IRemittanceEscrow.Status.Locked));
        assertEq(token.balanceOf(address(escrow)), 50e6);
    }

    function test_depositBatch_invalidTermsVariants() public {
        IRemittanceEscrow.Terms[4] memory bad;
        bad[0] = termsFor(address(0), 1, PARTNER, 1);
        bad[1] = termsFor(sender, 1, 99, 2);
        bad[2] = termsFor(sender, 1, PARTNER, 3);
        bad[2].expiry = uint64(block.timestamp - 1);
        bad[3] = termsFor(sender, 0, PARTNER, 4);
        IRemittanceEscrow.DepositItem[] memory items = new IRemittanceEscrow.DepositItem[](4);
        for (uint256 i; i < 4; ++i) {
            items[i].terms = bad[i];
            vm.expectEmit(address(escrow));
            emit IRemittanceEscrow.Skipped(idOf(bad[i]), IRemittanceEscrow.SkipReason.InvalidTerms);
        }
        assertEq(escrow.depositBatch(items), 0);
    }

    /// Whatever gas limit the relayer picks (e.g. a low eth_estimateGas), a valid item is never skipped: the batch
    /// either deposits every valid item (and skips the refused one) or reverts as a whole.
    function testFuzz_depositBatch_gasLimitNeverSkipsValidItems(uint256 gasLimit) public {
        uint256 n = 4;
        IRemittanceEscrow.DepositItem[] memory items = new IRemittanceEscrow.DepositItem[](n);
        for (uint256 i; i < n; ++i) {
            IRemittanceEscrow.Terms memory t = termsFor(sender, (i + 1) * 1e6, PARTNER, i);
            items[i] = IRemittanceEscrow.DepositItem(t, signAuth(senderKey, t));
        }
        items[2].auth.r = bytes32(uint256(items[2].auth.r) ^ 1); // a refused authorization (bad signature)
        gasLimit = bound(gasLimit, 30_000, 600_000);
        vm.prank(relayer);
        try escrow.depositBatch{gas: gasLimit}(items) returns (uint256 done) {
            assertEq(done, n - 1, "a valid item was skipped for lack of gas");
            assertEq(token.balanceOf(address(escrow)), 1e6 + 2e6 + 4e6);
            assertTrue(escrow.statusOf(idOf(items[2].terms)).eq(IRemittanceEscrow.Status.None));
        } catch {
            assertEq(token.balanceOf(address(escrow)), 0);
            for (uint256 i; i < n; ++i) {
                assertTrue(escrow.statusOf(idOf(items[i].terms)).eq(IRemittanceEscrow.Status.None));
            }
        }
    }

    /// A contract wallet whose signature check needs a lot of gas: with a tight gas limit its token call runs out
    /// of gas while the batch itself would still have gas to "skip" it. The batch must revert instead.
    function test_depositBatch_outOfGasInTokenCallRevertsBatch() public {
        GasHungryWallet wallet = new GasHungryWallet(sender);
        vm.prank(owner);
        token.mint(address(wallet), 10e6);
        IRemittanceEscrow.Terms memory t = termsFor(address(wallet), 10e6, PARTNER, 1);
        IRemittanceEscrow.Authorization memory a = signAuth(senderKey, t);
        IRemittanceEscrow.DepositItem[] memory items = new IRemittanceEscrow.DepositItem[](1);
        items[0] = IRemittanceEscrow.DepositItem(t, a);
        vm.expectRevert(abi.encodeWithSelector(RemittanceEscrow.InsufficientGas.selector, 0));
        escrow.depositBatch{gas: 400_000}(items);
        assertTrue(escrow.statusOf(idOf(t)).eq(IRemittanceEscrow.Status.None));
        // With enough gas the same item deposits.
        assertEq(escrow.depositBatch{gas: 3_000_000}(items), 1);
        assertEq(token.balanceOf(address(escrow)), 10e6);
    }

    function test_depositBatch_tooLarge() public {
        IRemittanceEscrow.DepositItem[] memory items = new IRemittanceEscrow.DepositItem[](65);
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.BatchTooLarge.selector, 65, 64));
        escrow.depositBatch(items);
    }

    function test_depositBatch_empty() public {
        assertEq(escrow.depositBatch(new IRemittanceEscrow.DepositItem[](0)), 0);
    }

    // ---------------------------------------------------------------- release

    function test_release() public {
        (IRemittanceEscrow.Terms memory t, bytes32 id) = depositOne(100e6, PARTNER, 1);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Released(id, PARTNER, 100e6, preimageOf(1));
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Settled(PARTNER, settlement, 100e6, 1);
        vm.expectEmit(address(token));
        emit Transfer(address(escrow), settlement, 100e6);
        vm.prank(makeAddr("anyone with the code"));
        escrow.release(t, preimageOf(1));
        assertTrue(escrow.statusOf(id).eq(IRemittanceEscrow.Status.Released));
        assertEq(token.balanceOf(settlement), 100e6);
        assertEq(token.balanceOf(address(escrow)), 0);
    }

    function test_release_afterExpiry() public {
        (IRemittanceEscrow.Terms memory t,) = depositOne(100e6, PARTNER, 1);
        vm.warp(t.expiry + 30 days);
        escrow.release(t, preimageOf(1));
        assertEq(token.balanceOf(settlement), 100e6);
    }

    function test_release_goesToCurrentSettlementAddress() public {
        (IRemittanceEscrow.Terms memory t,) = depositOne(100e6, PARTNER, 1);
        address moved = makeAddr("new settlement");
        vm.prank(owner);
        escrow.setPartner(PARTNER, moved);
        escrow.release(t, preimageOf(1));
        assertEq(token.balanceOf(moved), 100e6);
        assertEq(token.balanceOf(settlement), 0);
    }

    function test_release_badPreimage() public {
        (IRemittanceEscrow.Terms memory t, bytes32 id) = depositOne(100e6, PARTNER, 1);
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.BadPreimage.selector, id));
        escrow.release(t, preimageOf(2));
    }

    function test_release_wrongState() public {
        IRemittanceEscrow.Terms memory never = termsFor(sender, 100e6, PARTNER, 9);
        vm.expectRevert(
            abi.encodeWithSelector(IRemittanceEscrow.WrongState.selector, idOf(never), IRemittanceEscrow.Status.None)
        );
        escrow.release(never, preimageOf(9));

        (IRemittanceEscrow.Terms memory t, bytes32 id) = depositOne(100e6, PARTNER, 1);
        escrow.release(t, preimageOf(1));
        vm.expectRevert(
            abi.encodeWithSelector(IRemittanceEscrow.WrongState.selector, id, IRemittanceEscrow.Status.Released)
        );
        escrow.release(t, preimageOf(1));
        vm.expectRevert(
            abi.encodeWithSelector(IRemittanceEscrow.WrongState.selector, id, IRemittanceEscrow.Status.Released)
        );
        escrow.refund(t);

        (IRemittanceEscrow.Terms memory t2, bytes32 id2) = depositOne(100e6, PARTNER, 2);
        vm.warp(t2.expiry);
        escrow.refund(t2);
        vm.expectRevert(
            abi.encodeWithSelector(IRemittanceEscrow.WrongState.selector, id2, IRemittanceEscrow.Status.Refunded)
        );
        escrow.release(t2, preimageOf(2));
    }

    function test_release_removedPartner() public {
        (IRemittanceEscrow.Terms memory t, bytes32 id) = depositOne(100e6, PARTNER, 1);
        vm.prank(owner);
        escrow.setPartner(PARTNER, address(0));
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.UnknownPartner.selector, PARTNER));
        escrow.release(t, preimageOf(1));
        // The sender can still get the money back after expiry.
        vm.warp(t.expiry);
        escrow.refund(t);
        assertTrue(escrow.statusOf(id).eq(IRemittanceEscrow.Status.Refunded));
        assertEq(token.balanceOf(sender), 1_000_000e6);
    }

    function test_release_paused() public {
        (IRemittanceEscrow.Terms memory t,) = depositOne(100e6, PARTNER, 1);
        vm.prank(guardian);
        escrow.pause();
        vm.expectRevert(Pausable.EnforcedPause.selector);
        escrow.release(t, preimageOf(1));
        IRemittanceEscrow.ReleaseItem[] memory items = new IRemittanceEscrow.ReleaseItem[](1);
        items[0] = IRemittanceEscrow.ReleaseItem(t, preimageOf(1));
        vm.expectRevert(Pausable.EnforcedPause.selector);
        escrow.releaseBatch(items);
        vm.prank(owner);
        escrow.unpause();
        escrow.release(t, preimageOf(1));
    }

    /// The preimage for one remittance cannot release another, and releasing with the wrong partner id fails
    /// (the terms no longer hash to a Locked id).
    function test_release_cannotRedirectToAnotherPartner() public {
        (IRemittanceEscrow.Terms memory t,) = depositOne(100e6, PARTNER, 1);
        IRemittanceEscrow.Terms memory other = t;
        other.partnerId = PARTNER_B;
        vm.expectRevert(
            abi.encodeWithSelector(IRemittanceEscrow.WrongState.selector, idOf(other), IRemittanceEscrow.Status.None)
        );
        escrow.release(other, preimageOf(1));
    }

    // ---------------------------------------------------------------- releaseBatch

    function test_releaseBatch_oneTransferPerRun() public {
        uint64[6] memory partners = [PARTNER, PARTNER, PARTNER_B, PARTNER_B, PARTNER_B, PARTNER];
        IRemittanceEscrow.ReleaseItem[] memory items = new IRemittanceEscrow.ReleaseItem[](6);
        for (uint256 i; i < 6; ++i) {
            (IRemittanceEscrow.Terms memory t,) = depositOne((i + 1) * 1e6, partners[i], i);
            items[i] = IRemittanceEscrow.ReleaseItem(t, preimageOf(i));
        }
        vm.recordLogs();
        vm.prank(relayer);
        assertEq(escrow.releaseBatch(items), 6);
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

    function test_releaseBatch_settledEvents() public {
        IRemittanceEscrow.ReleaseItem[] memory items = new IRemittanceEscrow.ReleaseItem[](3);
        for (uint256 i; i < 3; ++i) {
            (IRemittanceEscrow.Terms memory t,) = depositOne(10e6, i < 2 ? PARTNER : PARTNER_B, i);
            items[i] = IRemittanceEscrow.ReleaseItem(t, preimageOf(i));
        }
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Released(idOf(items[0].terms), PARTNER, 10e6, preimageOf(0));
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Released(idOf(items[1].terms), PARTNER, 10e6, preimageOf(1));
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Settled(PARTNER, settlement, 20e6, 2);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Released(idOf(items[2].terms), PARTNER_B, 10e6, preimageOf(2));
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Settled(PARTNER_B, settlementB, 10e6, 1);
        escrow.releaseBatch(items);
    }

    function test_releaseBatch_skipsBadItems() public {
        (IRemittanceEscrow.Terms memory a,) = depositOne(10e6, PARTNER, 1);
        (IRemittanceEscrow.Terms memory b,) = depositOne(20e6, PARTNER, 2);
        IRemittanceEscrow.Terms memory never = termsFor(sender, 5e6, PARTNER, 3);
        (IRemittanceEscrow.Terms memory c,) = depositOne(40e6, PARTNER_B, 4);
        vm.prank(owner);
        escrow.setPartner(PARTNER_B, address(0)); // c's partner removed

        IRemittanceEscrow.ReleaseItem[] memory items = new IRemittanceEscrow.ReleaseItem[](5);
        items[0] = IRemittanceEscrow.ReleaseItem(a, preimageOf(1));
        items[1] = IRemittanceEscrow.ReleaseItem(b, preimageOf(1)); // wrong code
        items[2] = IRemittanceEscrow.ReleaseItem(never, preimageOf(3)); // never deposited
        items[3] = IRemittanceEscrow.ReleaseItem(a, preimageOf(1)); // duplicate in the same batch
        items[4] = IRemittanceEscrow.ReleaseItem(c, preimageOf(4));

        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Released(idOf(a), PARTNER, 10e6, preimageOf(1));
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(idOf(b), IRemittanceEscrow.SkipReason.BadPreimage);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(idOf(never), IRemittanceEscrow.SkipReason.WrongState);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(idOf(a), IRemittanceEscrow.SkipReason.WrongState);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Settled(PARTNER, settlement, 10e6, 1);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(idOf(c), IRemittanceEscrow.SkipReason.InvalidTerms);
        assertEq(escrow.releaseBatch(items), 1);

        assertEq(token.balanceOf(settlement), 10e6);
        assertEq(token.balanceOf(address(escrow)), 60e6);
        assertTrue(escrow.statusOf(idOf(b)).eq(IRemittanceEscrow.Status.Locked));
        assertTrue(escrow.statusOf(idOf(c)).eq(IRemittanceEscrow.Status.Locked));
    }

    function test_releaseBatch_allSkipped_noTransfer() public {
        (IRemittanceEscrow.Terms memory a,) = depositOne(10e6, PARTNER, 1);
        IRemittanceEscrow.ReleaseItem[] memory items = new IRemittanceEscrow.ReleaseItem[](1);
        items[0] = IRemittanceEscrow.ReleaseItem(a, preimageOf(2));
        vm.recordLogs();
        assertEq(escrow.releaseBatch(items), 0);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 1); // only the Skipped event
        assertEq(logs[0].topics[0], IRemittanceEscrow.Skipped.selector);
    }

    function test_releaseBatch_tooLarge() public {
        IRemittanceEscrow.ReleaseItem[] memory items = new IRemittanceEscrow.ReleaseItem[](65);
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.BatchTooLarge.selector, 65, 64));
        escrow.releaseBatch(items);
    }

    function test_releaseBatch_empty() public {
        assertEq(escrow.releaseBatch(new IRemittanceEscrow.ReleaseItem[](0)), 0);
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
        escrow.refund(t);
        assertTrue(escrow.statusOf(id).eq(IRemittanceEscrow.Status.Refunded));
        assertEq(token.balanceOf(sender), 1_000_000e6);
        vm.expectRevert(
            abi.encodeWithSelector(IRemittanceEscrow.WrongState.selector, id, IRemittanceEscrow.Status.Refunded)
        );
        escrow.refund(t);
    }

    function test_refund_notExpired() public {
        (IRemittanceEscrow.Terms memory t, bytes32 id) = depositOne(100e6, PARTNER, 1);
        vm.warp(t.expiry - 1);
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.NotExpired.selector, id, t.expiry));
        escrow.refund(t);
    }

    function test_refund_neverDeposited() public {
        IRemittanceEscrow.Terms memory t = termsFor(sender, 100e6, PARTNER, 1);
        vm.warp(t.expiry);
        vm.expectRevert(
            abi.encodeWithSelector(IRemittanceEscrow.WrongState.selector, idOf(t), IRemittanceEscrow.Status.None)
        );
        escrow.refund(t);
    }

    function test_refund_worksWhilePaused() public {
        (IRemittanceEscrow.Terms memory t,) = depositOne(100e6, PARTNER, 1);
        (IRemittanceEscrow.Terms memory t2,) = depositOne(50e6, PARTNER, 2);
        vm.prank(guardian);
        escrow.pause();
        vm.warp(t.expiry);
        escrow.refund(t);
        IRemittanceEscrow.Terms[] memory items = new IRemittanceEscrow.Terms[](1);
        items[0] = t2;
        assertEq(escrow.refundBatch(items), 1);
        assertEq(token.balanceOf(sender), 1_000_000e6);
    }

    function test_refundBatch_skipsBadItems() public {
        (IRemittanceEscrow.Terms memory a, bytes32 ida) = depositOne(10e6, PARTNER, 1);
        (IRemittanceEscrow.Terms memory b, bytes32 idb) = depositOne(20e6, PARTNER, 2);
        (IRemittanceEscrow.Terms memory c, bytes32 idc) = depositOne(30e6, PARTNER, 3);
        IRemittanceEscrow.Terms memory late = termsFor(sender, 40e6, PARTNER, 4);
        late.expiry = uint64(block.timestamp + 3 days);
        escrow.deposit(late, signAuth(senderKey, late));
        escrow.release(c, preimageOf(3));
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
        emit IRemittanceEscrow.Skipped(idc, IRemittanceEscrow.SkipReason.WrongState);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(idOf(late), IRemittanceEscrow.SkipReason.NotExpired);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Refunded(idb, sender, 20e6);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(ida, IRemittanceEscrow.SkipReason.WrongState);
        assertEq(escrow.refundBatch(items), 2);
        assertEq(token.balanceOf(address(escrow)), 40e6);
        assertEq(token.balanceOf(sender), 1_000_000e6 - 30e6 - 40e6);
    }

    function test_refundBatch_fullBatch() public {
        IRemittanceEscrow.Terms[] memory items = new IRemittanceEscrow.Terms[](64);
        for (uint256 i; i < 64; ++i) {
            (items[i],) = depositOne(1e6 + i, PARTNER, i);
        }
        vm.warp(items[0].expiry);
        assertEq(escrow.refundBatch(items), 64);
        assertEq(token.balanceOf(address(escrow)), 0);
        assertEq(token.balanceOf(sender), 1_000_000e6);
    }

    function test_refundBatch_tooLarge() public {
        IRemittanceEscrow.Terms[] memory items = new IRemittanceEscrow.Terms[](65);
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.BatchTooLarge.selector, 65, 64));
        escrow.refundBatch(items);
    }

    // ---------------------------------------------------------------- front-running

    /// Someone else submits the sender's signed deposit first: it locks exactly the signed terms; the relayer's
    /// own attempt is skipped (batch) or reverts (single); the funds can still be released or refunded.
    function test_frontRun_deposit() public {
        IRemittanceEscrow.Terms memory t = termsFor(sender, 100e6, PARTNER, 1);
        IRemittanceEscrow.Authorization memory a = signAuth(senderKey, t);
        vm.prank(makeAddr("front-runner"));
        escrow.deposit(t, a);
        IRemittanceEscrow.DepositItem[] memory items = new IRemittanceEscrow.DepositItem[](1);
        items[0] = IRemittanceEscrow.DepositItem(t, a);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(idOf(t), IRemittanceEscrow.SkipReason.WrongState);
        vm.prank(relayer);
        assertEq(escrow.depositBatch(items), 0);
        escrow.release(t, preimageOf(1));
        assertEq(token.balanceOf(settlement), 100e6);
    }

    /// The authorization cannot be redeemed on the token by anyone but the escrow, nor replayed as a transfer.
    function test_frontRun_directRedeemOnToken() public {
        IRemittanceEscrow.Terms memory t = termsFor(sender, 100e6, PARTNER, 1);
        IRemittanceEscrow.Authorization memory a = signAuth(senderKey, t);
        address thief = makeAddr("thief");
        vm.startPrank(thief);
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.CallerNotPayee.selector, thief, address(escrow)));
        token.receiveWithAuthorization(
            sender, address(escrow), 100e6, a.validAfter, a.validBefore, idOf(t), a.v, a.r, a.s
        );
        vm.expectRevert(TestStablecoin.InvalidSignature.selector);
        token.receiveWithAuthorization(sender, thief, 100e6, a.validAfter, a.validBefore, idOf(t), a.v, a.r, a.s);
        vm.expectRevert(TestStablecoin.InvalidSignature.selector);
        token.transferWithAuthorization(sender, thief, 100e6, a.validAfter, a.validBefore, idOf(t), a.v, a.r, a.s);
        vm.expectRevert(TestStablecoin.InvalidSignature.selector);
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
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(
            senderKey,
            keccak256(
                abi.encodePacked(
                    hex"1901", token.DOMAIN_SEPARATOR(), keccak256(abi.encode(CANCEL_TYPEHASH, sender, id))
                )
            )
        );
        token.cancelAuthorization(sender, id, v, r, s);
        IRemittanceEscrow.DepositItem[] memory items = new IRemittanceEscrow.DepositItem[](1);
        items[0] = IRemittanceEscrow.DepositItem(t, a);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(id, IRemittanceEscrow.SkipReason.AuthorizationFailed);
        assertEq(escrow.depositBatch(items), 0);
        assertTrue(escrow.statusOf(id).eq(IRemittanceEscrow.Status.None));
    }

    // ---------------------------------------------------------------- fuzz

    function testFuzz_depositRelease(
        uint256 amount,
        uint64 partnerId,
        uint64 ttl,
        bytes32 preimage,
        uint256 relayerSeed
    ) public {
        amount = bound(amount, 1, token.balanceOf(sender));
        vm.assume(partnerId != PARTNER && partnerId != PARTNER_B);
        ttl = uint64(bound(ttl, 1, 10 * 365 days));
        address s = address(uint160(uint256(keccak256(abi.encode(partnerId)))));
        vm.assume(s != address(0) && s != address(escrow) && s != sender);
        vm.prank(owner);
        escrow.setPartner(partnerId, s);
        IRemittanceEscrow.Terms memory t = IRemittanceEscrow.Terms({
            sender: sender,
            amount: amount,
            partnerId: partnerId,
            expiry: uint64(block.timestamp) + ttl,
            claimHash: keccak256(abi.encodePacked(preimage))
        });
        vm.prank(address(uint160(bound(relayerSeed, 1, type(uint160).max))));
        bytes32 id = escrow.deposit(t, signAuth(senderKey, t));
        assertEq(id, idOf(t));
        assertEq(token.balanceOf(address(escrow)), amount);
        escrow.release(t, preimage);
        assertEq(token.balanceOf(s), amount);
        assertEq(token.balanceOf(address(escrow)), 0);
        assertTrue(escrow.statusOf(id).eq(IRemittanceEscrow.Status.Released));
    }

    function testFuzz_wrongPreimageNeverReleases(bytes32 preimage, bytes32 guess) public {
        vm.assume(preimage != guess);
        IRemittanceEscrow.Terms memory t = termsFor(sender, 1e6, PARTNER, 0);
        t.claimHash = keccak256(abi.encodePacked(preimage));
        escrow.deposit(t, signAuth(senderKey, t));
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.BadPreimage.selector, idOf(t)));
        escrow.release(t, guess);
    }

    function testFuzz_refundOnlyAtOrAfterExpiry(uint64 ttl, uint64 wait) public {
        ttl = uint64(bound(ttl, 1, 365 days));
        wait = uint64(bound(wait, 0, 2 * 365 days));
        IRemittanceEscrow.Terms memory t = termsFor(sender, 1e6, PARTNER, 0);
        t.expiry = uint64(block.timestamp) + ttl;
        escrow.deposit(t, signAuth(senderKey, t));
        vm.warp(block.timestamp + wait);
        if (wait < ttl) {
            vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.NotExpired.selector, idOf(t), t.expiry));
            escrow.refund(t);
        } else {
            escrow.refund(t);
            assertEq(token.balanceOf(sender), 1_000_000e6);
        }
    }

    /// A signature authorizes exactly its terms: any changed term (sender, amount, partner, expiry, claim hash) or
    /// a changed authorization window makes the deposit fail and leaves no state.
    function testFuzz_signatureBindsTerms(uint256 which, uint256 delta) public {
        IRemittanceEscrow.Terms memory t = termsFor(sender, 100e6, PARTNER, 1);
        IRemittanceEscrow.Authorization memory a = signAuth(senderKey, t);
        which = bound(which, 0, 6);
        delta = bound(delta, 1, 1e6);
        IRemittanceEscrow.Terms memory m = t;
        IRemittanceEscrow.Authorization memory ma = a;
        if (which < 5) {
            m = mutateBy(t, which, delta);
        } else if (which == 5) {
            ma.validBefore = a.validBefore + delta;
        } else {
            ma.validAfter = 1; // still in the past, but not what was signed
        }
        IRemittanceEscrow.DepositItem[] memory items = new IRemittanceEscrow.DepositItem[](1);
        items[0] = IRemittanceEscrow.DepositItem(m, ma);
        assertEq(escrow.depositBatch(items), 0);
        assertTrue(escrow.statusOf(idOf(m)).eq(IRemittanceEscrow.Status.None));
        assertEq(token.balanceOf(address(escrow)), 0);
        assertFalse(token.authorizationState(sender, idOf(t)));
    }

    // ---------------------------------------------------------------- helpers

    function mutate(IRemittanceEscrow.Terms memory t, uint256 k)
        internal
        view
        returns (IRemittanceEscrow.Terms memory)
    {
        return mutateBy(t, k, 1);
    }

    function mutateBy(IRemittanceEscrow.Terms memory t, uint256 k, uint256 delta)
        internal
        view
        returns (IRemittanceEscrow.Terms memory m)
    {
        m = IRemittanceEscrow.Terms(t.sender, t.amount, t.partnerId, t.expiry, t.claimHash);
        // forge-lint: disable-next-line(unsafe-typecast)
        if (k == 0) m.sender = address(uint160(t.sender) ^ uint160(delta));
        else if (k == 1) m.amount = t.amount + delta;
        else if (k == 2) m.partnerId = t.partnerId == PARTNER ? PARTNER_B : PARTNER;
        // forge-lint: disable-next-line(unsafe-typecast)
        else if (k == 3) m.expiry = t.expiry + uint64(delta);
        else m.claimHash = bytes32(uint256(t.claimHash) ^ delta);
        // Keep the mutated terms otherwise valid, so the failure is the signature's.
        require(m.sender != address(0) && m.expiry > block.timestamp, "mutation made terms invalid");
    }
}

/// An ERC-1271 wallet owned by a key, whose signature check burns a lot of gas first.
contract GasHungryWallet {
    address public immutable owner;

    constructor(address owner_) {
        owner = owner_;
    }

    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        uint256 x;
        for (uint256 i; i < 40_000; ++i) {
            unchecked {
                x = x * 31 + i; // ~1,000,000 gas in all
            }
        }
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, signature);
        return err == ECDSA.RecoverError.NoError && signer == owner && x != 1 ? bytes4(0x1626ba7e) : bytes4(0);
    }
}

library StatusLib {
    function eq(IRemittanceEscrow.Status a, IRemittanceEscrow.Status b) internal pure returns (bool) {
        return a == b;
    }
}
