// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {StdInvariant} from "forge-std/StdInvariant.sol";
import {TestStablecoin} from "../../src/TestStablecoin.sol";
import {RemittanceEscrow} from "../../src/RemittanceEscrow.sol";
import {IRemittanceEscrow} from "../../src/interfaces/IRemittanceEscrow.sol";
import {EscrowHandler} from "./EscrowHandler.sol";

/// Invariants of the escrow under random sequences of deposits, releases, refunds, pauses, partner changes,
/// tampered and front-run authorizations (see EscrowHandler). Runs and depth: foundry.toml [invariant].
contract EscrowInvariantTest is StdInvariant, Test {
    TestStablecoin internal token;
    RemittanceEscrow internal escrow;
    EscrowHandler internal handler;
    address internal owner = makeAddr("inv-owner");
    address internal guardian = makeAddr("inv-guardian");

    function setUp() public {
        vm.warp(1_750_000_000);
        vm.prank(owner);
        token = new TestStablecoin();
        escrow = new RemittanceEscrow(address(token), owner, guardian);
        handler = new EscrowHandler(token, escrow, owner);
        vm.startPrank(owner);
        for (uint256 i; i < 4; ++i) {
            token.mint(handler.senders(i), 1_000_000e6);
        }
        for (uint64 p = 1; p <= 3; ++p) {
            escrow.setPartner(p, handler.settlements(p - 1));
        }
        vm.stopPrank();
        handler.initModel();
        targetContract(address(handler));
        bytes4[] memory actions = new bytes4[](11);
        actions[0] = EscrowHandler.depositBatch.selector;
        actions[1] = EscrowHandler.deposit.selector;
        actions[2] = EscrowHandler.sign.selector;
        actions[3] = EscrowHandler.submitPending.selector;
        actions[4] = EscrowHandler.attackerRedeem.selector;
        actions[5] = EscrowHandler.release.selector;
        actions[6] = EscrowHandler.refund.selector;
        actions[7] = EscrowHandler.warp.selector;
        actions[8] = EscrowHandler.togglePause.selector;
        actions[9] = EscrowHandler.setPartner.selector;
        actions[10] = EscrowHandler.depositBatch.selector; // deposits twice as likely
        targetSelector(FuzzSelector({addr: address(handler), selectors: actions}));
        excludeSender(address(escrow));
        excludeSender(address(token));
    }

    /// The escrow holds exactly the sum of the open (Locked) remittances. After every call: against the model's
    /// running sum (O(1)); the model's statuses are checked against the escrow's own by the invariant below, and the
    /// sum is recomputed from the escrow's statuses of every remittance at the end of each run (afterInvariant).
    function invariant_balanceEqualsOpenRemittances() public view {
        assertEq(token.balanceOf(address(escrow)), handler.modelLocked(), "escrow balance != model's Locked sum");
    }

    /// The escrow's statuses summed over every remittance ever created equal its balance and the model's sum.
    function _checkAllRemittances() internal view {
        uint256 open;
        uint256 n = handler.remCount();
        for (uint256 i; i < n; ++i) {
            (IRemittanceEscrow.Terms memory t,) = handler.remAt(i);
            bytes32 id = escrow.remittanceId(t);
            IRemittanceEscrow.Status status = escrow.statusOf(id);
            assertEq(uint8(status), uint8(handler.model(id)), "status differs from the model");
            if (status == IRemittanceEscrow.Status.Locked) open += t.amount;
        }
        assertEq(token.balanceOf(address(escrow)), open, "escrow balance != sum of Locked remittances");
        assertEq(open, handler.modelLocked(), "open remittances differ from the model");
    }

    /// Tokens leave the escrow only to the bound partner's settlement address (release) or back to the sender
    /// (refund): every account holds exactly what the model says, and no token is anywhere else.
    function invariant_fundsGoOnlyToPartnerOrSender() public view {
        uint256 sum = token.balanceOf(address(escrow));
        uint256 n = handler.actorCount();
        for (uint256 i; i < n; ++i) {
            address a = handler.actors(i);
            assertEq(token.balanceOf(a), handler.expectedBalance(a), "an account's balance differs from the model");
            sum += token.balanceOf(a);
        }
        assertEq(sum, token.totalSupply(), "tokens went to an account outside the model");
        assertEq(token.balanceOf(handler.attacker()), 0, "the attacker got tokens");
    }

    /// Each remittance's on-chain status equals the model's: nothing is released or refunded twice, nothing moves
    /// out of a final state, and nothing is Locked without a valid signed deposit. After every call this checks the
    /// newest WINDOW remittances and a window that rotates over the older ones (so a run at Foundry's default depth
    /// stays linear); afterInvariant checks every remittance at the end of each run.
    function invariant_statusesMatchModel() public view {
        uint256 n = handler.remCount();
        uint256 newest = n > WINDOW ? n - WINDOW : 0;
        for (uint256 i = newest; i < n; ++i) {
            _checkStatus(i);
        }
        if (newest == 0) return;
        uint256 start = (handler.steps() * WINDOW) % newest;
        for (uint256 k; k < WINDOW && k < newest; ++k) {
            _checkStatus((start + k) % newest);
        }
    }

    uint256 internal constant WINDOW = 32;

    function _checkStatus(uint256 i) internal view {
        (IRemittanceEscrow.Terms memory t,) = handler.remAt(i);
        bytes32 id = escrow.remittanceId(t);
        assertEq(uint8(escrow.statusOf(id)), uint8(handler.model(id)), "status differs from the model");
    }

    /// Every call did what the model predicted (tampered signatures failed, duplicates and front-runs were
    /// skipped, direct redemption on the token failed, batch counts matched).
    function invariant_noModelViolations() public view {
        assertEq(handler.violations(), 0, handler.lastViolation());
    }

    /// The campaign must have exercised the interesting paths, or the invariants above prove little.
    function afterInvariant() external {
        _checkAllRemittances();
        emit log_named_uint("deposit items (batches)", handler.calls("depositItems"));
        emit log_named_uint("deposit items while paused", handler.calls("depositItemsWhilePaused"));
        emit log_named_uint("locked", handler.calls("locked"));
        emit log_named_uint("front-run locked", handler.calls("frontRunLocked"));
        emit log_named_uint("released", handler.calls("released"));
        emit log_named_uint("refunded", handler.calls("refunded"));
        // (Short sequences, e.g. a replayed or shrunk failure, need not have deposited anything.)
        if (handler.steps() >= 100) assertGt(handler.calls("locked"), 0, "no deposit succeeded in this run");
    }
}
