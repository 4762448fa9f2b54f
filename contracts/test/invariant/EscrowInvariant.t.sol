// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {StdInvariant} from "forge-std/StdInvariant.sol";
import {RemittanceEscrow} from "../../src/RemittanceEscrow.sol";
import {IRemittanceEscrow} from "../../src/interfaces/IRemittanceEscrow.sol";
import {IFiatTokenV2_2, UsdcDeployer} from "../utils/Usdc.sol";
import {EscrowHandler} from "./EscrowHandler.sol";

/// Invariants of the escrow on Circle's USDC under random sequences of deposits, releases, refunds, cancels, escrow
/// pauses, partner re-keying and removal, USDC pauses and blacklisting, tampered and front-run authorizations (see
/// EscrowHandler). Runs and depth: foundry.toml [invariant].
contract EscrowInvariantTest is StdInvariant, Test, UsdcDeployer {
    IFiatTokenV2_2 internal token;
    RemittanceEscrow internal escrow;
    EscrowHandler internal handler;
    address internal owner = makeAddr("inv-owner");
    address internal guardian = makeAddr("inv-guardian");
    address internal usdcAdmin = makeAddr("inv-usdc-admin"); // master minter, minter, pauser, blacklister, owner

    function setUp() public {
        vm.warp(1_750_000_000);
        token = deployUsdc(
            UsdcRoles({
                owner: usdcAdmin,
                masterMinter: usdcAdmin,
                pauser: usdcAdmin,
                blacklister: usdcAdmin,
                lostAndFound: usdcAdmin,
                proxyAdmin: makeAddr("inv-usdc-proxy-admin")
            })
        );
        escrow = new RemittanceEscrow(address(token), owner, guardian, 1 hours, 3 days);
        handler = new EscrowHandler(token, escrow, owner, usdcAdmin, usdcAdmin);
        vm.startPrank(usdcAdmin);
        token.configureMinter(usdcAdmin, type(uint128).max);
        for (uint256 i; i < 4; ++i) {
            token.mint(handler.senders(i), 1_000_000e6);
        }
        vm.stopPrank();
        vm.startPrank(owner);
        for (uint64 p = 1; p <= 3; ++p) {
            escrow.setPartner(p, handler.settlements(p - 1), handler.signers(p - 1));
        }
        vm.stopPrank();
        handler.initModel();
        targetContract(address(handler));
        bytes4[] memory actions = new bytes4[](15);
        actions[0] = EscrowHandler.depositBatch.selector;
        actions[1] = EscrowHandler.deposit.selector;
        actions[2] = EscrowHandler.sign.selector;
        actions[3] = EscrowHandler.submitPending.selector;
        actions[4] = EscrowHandler.attackerRedeem.selector;
        actions[5] = EscrowHandler.release.selector;
        actions[6] = EscrowHandler.refund.selector;
        actions[7] = EscrowHandler.cancel.selector;
        actions[8] = EscrowHandler.warp.selector;
        actions[9] = EscrowHandler.togglePause.selector;
        actions[10] = EscrowHandler.toggleUsdcPause.selector;
        actions[11] = EscrowHandler.toggleBlacklist.selector;
        actions[12] = EscrowHandler.setPartner.selector;
        actions[13] = EscrowHandler.depositBatch.selector; // deposits and releases twice as likely
        actions[14] = EscrowHandler.release.selector;
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
            IRemittanceEscrow.Status status = handler.statusOnChain(id);
            assertEq(uint8(status), uint8(handler.model(id)), "status differs from the model");
            assertLe(handler.exits(id), 1, "a remittance exited more than once");
            if (status == IRemittanceEscrow.Status.Locked) open += t.amount;
        }
        assertEq(token.balanceOf(address(escrow)), open, "escrow balance != sum of Locked remittances");
        assertEq(open, handler.modelLocked(), "open remittances differ from the model");
    }

    /// Tokens leave the escrow only to the settlement address bound in the remittance's terms (release) or back to
    /// the sender (refund, cancel) — whatever the registry says now: every account holds exactly what the model
    /// (which credits the terms' own addresses) says, and no token is anywhere else.
    function invariant_fundsGoOnlyToBoundSettlementOrSender() public view {
        (uint256 bad, uint256 sum) = handler.balanceMismatches();
        assertEq(bad, 0, "an account's balance differs from the model");
        assertEq(
            sum + token.balanceOf(address(escrow)), token.totalSupply(), "tokens went to an account outside the model"
        );
        assertEq(token.balanceOf(handler.attacker()), 0, "the attacker got tokens");
    }

    /// Each remittance exits once: its on-chain status equals the model's (nothing is released or refunded twice,
    /// nothing moves out of a final state, nothing is Locked without a valid signed deposit, a refused payout leaves
    /// it Locked) and at most one exit (Released / Refunded event, or successful exit call) was seen for it. After
    /// every call this checks the newest WINDOW remittances and a window that rotates over the older ones (so a run
    /// at Foundry's default depth stays linear); afterInvariant checks every remittance at the end of each run.
    function invariant_eachRemittanceExitsOnce() public view {
        uint256 n = handler.remCount();
        uint256 newest = n > WINDOW ? n - WINDOW : 0;
        assertEq(handler.statusMismatches(newest, n - newest), 0, "a status differs from the model");
        if (newest == 0) return;
        assertEq(
            handler.statusMismatches((handler.steps() * WINDOW) % newest, WINDOW < newest ? WINDOW : newest),
            0,
            "a status differs from the model"
        );
    }

    uint256 internal constant WINDOW = 16;

    /// Every call did what the model predicted (tampered signatures failed, duplicates and front-runs were
    /// skipped, direct redemption on the token failed, batch counts matched, refused payouts stayed Locked) and no
    /// remittance exited twice (each Released / Refunded event and each successful exit call is counted per id).
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
        emit log_named_uint("release runs refused by USDC (items)", handler.calls("releaseRefused"));
        emit log_named_uint("refunded", handler.calls("refunded"));
        emit log_named_uint("refunds refused by USDC", handler.calls("refundRefused"));
        emit log_named_uint("canceled", handler.calls("canceled"));
        // (Short sequences, e.g. a replayed or shrunk failure, need not have deposited anything.)
        if (handler.steps() >= 100) assertGt(handler.calls("locked"), 0, "no deposit succeeded in this run");
    }
}
