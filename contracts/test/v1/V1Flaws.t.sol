// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {EscrowBase} from "../Base.t.sol";
import {KeyWallet} from "../utils/Wallets.sol";
import {IRemittanceEscrowV1} from "./IRemittanceEscrowV1.sol";
import {IRemittanceEscrow} from "../../src/interfaces/IRemittanceEscrow.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

/// The calls of the v1 escrow beyond its interface (Ownable2Step, Pausable, the guardian, its gas error).
interface IRemittanceEscrowV1Full is IRemittanceEscrowV1 {
    error InsufficientGas(uint256 index);

    function owner() external view returns (address);
    function renounceOwnership() external;
    function transferOwnership(address newOwner) external;
    function paused() external view returns (bool);
}

/// The flaws of the v1 escrow that v2 fixes, demonstrated against v1's own bytecode: the artifact committed before
/// v2 (`git show HEAD:contracts/artifacts/RemittanceEscrow.json` at the v2 rewrite), kept as the fixture
/// test/fixtures/RemittanceEscrowV1.json and deployed here on the same USDC as the v2 tests. Each test asserts
/// that the flaw IS there in v1 (it passes because v1 is flawed); the v2 test that shows the fix is named in each
/// comment (test/RemittanceEscrow.t.sol) and in contracts/SECURITY.md.
contract V1FlawsTest is EscrowBase {
    IRemittanceEscrowV1Full internal v1;

    function setUp() public override {
        super.setUp();
        bytes memory code = vm.parseJsonBytes(vm.readFile("test/fixtures/RemittanceEscrowV1.json"), ".bytecode.object");
        address deployed;
        bytes memory init = abi.encodePacked(code, abi.encode(address(token), owner, guardian));
        assembly ("memory-safe") {
            deployed := create(0, add(init, 0x20), mload(init))
        }
        require(deployed != address(0), "v1 deployment failed");
        v1 = IRemittanceEscrowV1Full(deployed);
        vm.startPrank(owner);
        v1.setPartner(PARTNER, settlement);
        v1.setPartner(PARTNER_B, settlementB);
        vm.stopPrank();
    }

    // ---------------------------------------------------------------- helpers

    function v1Id(IRemittanceEscrowV1.Terms memory t) internal view returns (bytes32) {
        return keccak256(abi.encode(address(v1), t.sender, t.amount, t.partnerId, t.expiry, t.claimHash));
    }

    function v1Terms(address from, uint256 amount, uint64 partnerId, uint256 seed, uint256 lock)
        internal
        view
        returns (IRemittanceEscrowV1.Terms memory t)
    {
        t = IRemittanceEscrowV1.Terms({
            sender: from,
            amount: amount,
            partnerId: partnerId,
            expiry: uint64(block.timestamp + lock),
            claimHash: keccak256(abi.encodePacked(preimageOf(seed)))
        });
    }

    function v1Auth(uint256 key, IRemittanceEscrowV1.Terms memory t)
        internal
        view
        returns (IRemittanceEscrowV1.Authorization memory a)
    {
        a.validBefore = block.timestamp + 1 hours;
        (a.v, a.r, a.s) =
            vm.sign(key, digest(RECEIVE_TYPEHASH, t.sender, address(v1), t.amount, 0, a.validBefore, v1Id(t)));
    }

    function v1Deposit(uint256 amount, uint64 partnerId, uint256 seed)
        internal
        returns (IRemittanceEscrowV1.Terms memory t)
    {
        t = v1Terms(sender, amount, partnerId, seed, 1 days);
        IRemittanceEscrowV1.Authorization memory a = v1Auth(senderKey, t);
        vm.prank(relayer);
        v1.deposit(t, a);
    }

    function v1Status(IRemittanceEscrowV1.Terms memory t) internal view returns (uint8) {
        return uint8(v1.statusOf(v1Id(t)));
    }

    // ---------------------------------------------------------------- the flaws

    /// V1-1: the owner redirects locked money. Release pays the partner's *current* settlement address, so
    /// setPartner after the deposit sends the sender's coins wherever the owner likes.
    /// Fixed by v2: test_fix_ownerCannotRedirectLockedMoney_setPartner.
    function test_v1Flaw_ownerRedirectsLockedFunds() public {
        IRemittanceEscrowV1.Terms memory t = v1Deposit(100e6, PARTNER, 1);
        address ownersPocket = makeAddr("owner's pocket");
        vm.prank(owner);
        v1.setPartner(PARTNER, ownersPocket);
        vm.prank(makeAddr("owner's accomplice with the code"));
        v1.release(t, preimageOf(1));
        assertEq(token.balanceOf(ownersPocket), 100e6, "v1: the owner redirected a locked remittance");
        assertEq(token.balanceOf(settlement), 0);
    }

    /// V1-2: the owner strands a paid partner. Removing a partner (setPartner(id, 0)) makes its locked remittances
    /// unreleasable; after expiry the sender takes the money back although the partner paid out the cash.
    /// Fixed by v2: test_fix_ownerCannotRedirectLockedMoney_removePartner.
    function test_v1Flaw_removedPartnerCannotBeReleased() public {
        IRemittanceEscrowV1.Terms memory t = v1Deposit(100e6, PARTNER, 1);
        vm.prank(owner);
        v1.setPartner(PARTNER, address(0));
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrowV1.UnknownPartner.selector, PARTNER));
        v1.release(t, preimageOf(1));
        vm.warp(t.expiry);
        v1.refund(t);
        assertEq(token.balanceOf(settlement), 0, "v1: the partner that paid was not reimbursed");
    }

    /// V1-3: any settlement address is accepted, the escrow's own included: a release "pays" the escrow, the
    /// remittance is Released and its coins are stranded (the balance no longer equals the Locked sum). The token's
    /// address is accepted too (USDC blacklists itself, so releases to it fail).
    /// Fixed by v2: test_fix_settlementZeroEscrowOrTokenRefused.
    function test_v1Flaw_settlementMayBeEscrowOrToken() public {
        IRemittanceEscrowV1.Terms memory t = v1Deposit(100e6, PARTNER, 1);
        IRemittanceEscrowV1.Terms memory t2 = v1Deposit(50e6, PARTNER_B, 2);
        vm.startPrank(owner);
        v1.setPartner(PARTNER, address(v1));
        v1.setPartner(PARTNER_B, address(token));
        vm.stopPrank();
        v1.release(t, preimageOf(1));
        assertEq(v1Status(t), uint8(IRemittanceEscrowV1.Status.Released));
        assertEq(token.balanceOf(address(v1)), 150e6, "v1: released coins stranded in the escrow");
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        v1.release(t2, preimageOf(2));
    }

    /// V1-4: ownership can be renounced, leaving a registry nobody can change: a compromised partner could never
    /// be stopped from receiving new deposits.
    /// Fixed by v2: test_fix_ownershipTwoStep_renounceDisabled.
    function test_v1Flaw_renounceOwnershipFreezesRegistry() public {
        vm.prank(owner);
        v1.renounceOwnership();
        assertEq(v1.owner(), address(0), "v1: ownership renounced");
        vm.expectRevert();
        vm.prank(owner);
        v1.setPartner(PARTNER, address(0));
        v1Deposit(1e6, PARTNER, 1); // the partner keeps receiving deposits, for good
    }

    /// V1-5: no lock bounds: an expiry one second out (refundable at once, racing any release) or a century out
    /// (locked for good if the partner never releases) is accepted.
    /// Fixed by v2: test_fix_lockTimeBounds.
    function test_v1Flaw_noLockTimeBounds() public {
        IRemittanceEscrowV1.Terms memory soon = v1Terms(sender, 1e6, PARTNER, 1, 1);
        v1.deposit(soon, v1Auth(senderKey, soon));
        IRemittanceEscrowV1.Terms memory century = v1Terms(sender, 1e6, PARTNER, 2, 100 * 365 days);
        v1.deposit(century, v1Auth(senderKey, century));
        assertEq(v1Status(soon), uint8(IRemittanceEscrowV1.Status.Locked));
        assertEq(v1Status(century), uint8(IRemittanceEscrowV1.Status.Locked), "v1: locked for a century");
    }

    /// V1-6: pause stops releases: a guardian (or a compromised guardian key) holds a paid partner's money until
    /// expiry, when the sender may take it back (refunds are never paused).
    /// Fixed by v2: test_fix_pauseStopsDepositsOnly_notReleaseRefundCancel.
    function test_v1Flaw_pauseBlocksRelease() public {
        IRemittanceEscrowV1.Terms memory t = v1Deposit(100e6, PARTNER, 1);
        vm.prank(guardian);
        v1.pause();
        vm.expectRevert(Pausable.EnforcedPause.selector);
        v1.release(t, preimageOf(1));
        vm.warp(t.expiry);
        v1.refund(t);
        assertEq(token.balanceOf(sender), INITIAL, "v1: refunded while the paid partner's release was paused");
    }

    /// V1-7: release and refund are both open at and after expiry: whichever transaction lands first wins.
    /// Fixed by v2: test_fix_expirySecond_releaseBeforeRefundAt, test_release_atOrAfterExpiry_reverts_refundInstead.
    function test_v1Flaw_releaseAndRefundRaceAtExpiry() public {
        IRemittanceEscrowV1.Terms memory t = v1Deposit(100e6, PARTNER, 1);
        vm.warp(t.expiry + 30 days);
        uint256 snap = vm.snapshotState();
        v1.release(t, preimageOf(1));
        assertEq(token.balanceOf(settlement), 100e6, "v1: released after expiry");
        vm.revertToState(snap);
        v1.refund(t);
        assertEq(token.balanceOf(sender), INITIAL, "v1: refunded at the same moment instead");
    }

    /// V1-8: no cooperative way back: before expiry only the partner's release moves the money; a partner that
    /// declines leaves the sender's coins locked for the whole term. (v1 has no cancel.)
    /// Fixed by v2: test_fix_cancel_eoaSigner and the other test_fix_cancel_* tests.
    function test_v1Flaw_noCancelBeforeExpiry() public {
        IRemittanceEscrowV1.Terms memory t = v1Deposit(100e6, PARTNER, 1);
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrowV1.NotExpired.selector, v1Id(t), t.expiry));
        v1.refund(t);
        (bool ok,) = address(v1).call(abi.encodeWithSelector(IRemittanceEscrow.cancel.selector, t, bytes("")));
        assertFalse(ok, "v1 has no cancel");
    }

    /// V1-9: one item whose token call runs out of the gas it was given reverts the whole depositBatch, whatever
    /// the gas limit: a sender whose ERC-1271 wallet burns all the gas it gets blocks every batch it is in.
    /// Fixed by v2: test_fix_depositBatch_itemOverGasCap_skipped_othersDeposit.
    function test_v1Flaw_oneGasBurningItemBlocksDepositBatch() public {
        KeyWallet griefer = new KeyWallet(sender, 1_000_000_000); // burns whatever gas it is given
        mint(address(griefer), 10e6);
        IRemittanceEscrowV1.DepositItem[] memory items = new IRemittanceEscrowV1.DepositItem[](3);
        IRemittanceEscrowV1.Terms memory a = v1Terms(sender, 1e6, PARTNER, 1, 1 days);
        IRemittanceEscrowV1.Terms memory g = v1Terms(address(griefer), 10e6, PARTNER, 2, 1 days);
        IRemittanceEscrowV1.Terms memory b = v1Terms(sender, 2e6, PARTNER, 3, 1 days);
        items[0] = IRemittanceEscrowV1.DepositItem(a, v1Auth(senderKey, a));
        items[1] = IRemittanceEscrowV1.DepositItem(g, v1Auth(senderKey, g));
        items[2] = IRemittanceEscrowV1.DepositItem(b, v1Auth(senderKey, b));
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrowV1Full.InsufficientGas.selector, 1));
        vm.prank(relayer);
        v1.depositBatch{gas: 15_000_000}(items);
        assertEq(token.balanceOf(address(v1)), 0, "v1: the honest items were not deposited either");
    }

    /// V1-10: one payout the token refuses (a blacklisted settlement address) reverts the whole releaseBatch, so
    /// every other partner's releases in it wait.
    /// Fixed by v2: test_fix_releaseBatch_blacklistedPayeeRun_staysLocked_othersPaid.
    function test_v1Flaw_blacklistedPayeeBlocksReleaseBatch() public {
        IRemittanceEscrowV1.ReleaseItem[] memory items = new IRemittanceEscrowV1.ReleaseItem[](2);
        items[0] = IRemittanceEscrowV1.ReleaseItem(v1Deposit(1e6, PARTNER, 1), preimageOf(1));
        items[1] = IRemittanceEscrowV1.ReleaseItem(v1Deposit(2e6, PARTNER_B, 2), preimageOf(2));
        blacklist(settlementB);
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        v1.releaseBatch(items);
        assertEq(token.balanceOf(settlement), 0, "v1: partner A was not paid because partner B is blacklisted");
    }

    /// V1-11: one refund the token refuses (a blacklisted sender) reverts the whole refundBatch.
    /// Fixed by v2: test_fix_refundBatch_blacklistedSender_staysLocked_othersRefunded.
    function test_v1Flaw_blacklistedSenderBlocksRefundBatch() public {
        (address other, uint256 otherKey) = makeAddrAndKey("other sender");
        mint(other, INITIAL);
        IRemittanceEscrowV1.Terms[] memory items = new IRemittanceEscrowV1.Terms[](2);
        items[0] = v1Deposit(1e6, PARTNER, 1);
        items[1] = v1Terms(other, 2e6, PARTNER, 2, 1 days);
        v1.deposit(items[1], v1Auth(otherKey, items[1]));
        vm.warp(items[0].expiry);
        blacklist(other);
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        v1.refundBatch(items);
        assertEq(
            token.balanceOf(sender), INITIAL - 1e6, "v1: the sender was not refunded because another is blacklisted"
        );
    }
}
