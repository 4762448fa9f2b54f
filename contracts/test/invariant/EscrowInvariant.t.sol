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

    /// The escrow holds exactly the sum of the open (Locked) remittances, read from the escrow's own statuses.
    function invariant_balanceEqualsOpenRemittances() public view {
        uint256 open;
        uint256 n = handler.remCount();
        for (uint256 i; i < n; ++i) {
            (IRemittanceEscrow.Terms memory t,) = handler.remAt(i);
            if (escrow.statusOf(escrow.remittanceId(t)) == IRemittanceEscrow.Status.Locked) open += t.amount;
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
    /// out of a final state, and nothing is Locked without a valid signed deposit.
    function invariant_statusesMatchModel() public view {
        uint256 n = handler.remCount();
        for (uint256 i; i < n; ++i) {
            (IRemittanceEscrow.Terms memory t,) = handler.remAt(i);
            bytes32 id = escrow.remittanceId(t);
            assertEq(uint8(escrow.statusOf(id)), uint8(handler.model(id)), "status differs from the model");
        }
    }

    /// Every call did what the model predicted (tampered signatures failed, duplicates and front-runs were
    /// skipped, direct redemption on the token failed, batch counts matched).
    function invariant_noModelViolations() public view {
        assertEq(handler.violations(), 0, handler.lastViolation());
    }

    /// The campaign must have exercised the interesting paths, or the invariants above prove little.
    function afterInvariant() external {
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
