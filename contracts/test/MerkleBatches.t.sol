// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {EscrowBase} from "./Base.t.sol";
import {IRemittanceEscrow} from "../src/interfaces/IRemittanceEscrow.sol";
import {DepositItem, ReleaseItem, Merkle, Packing} from "./utils/Batches.sol";

/// The v3 escrow's batch storage: one Merkle root per deposit batch, exits proven against it. Releases grouped by
/// deposit batch with multiproofs, refunds and cancels with single proofs, and every way a proof or a packed batch
/// can be wrong.
contract MerkleBatchesTest is EscrowBase {
    /// Deposits `n` remittances to PARTNER in one batch (amounts 1e6 + i, seeds from `seed0`); returns their terms.
    function depositN(uint256 n, uint256 seed0) internal returns (IRemittanceEscrow.Terms[] memory ts) {
        ts = new IRemittanceEscrow.Terms[](n);
        DepositItem[] memory items = new DepositItem[](n);
        for (uint256 i; i < n; ++i) {
            ts[i] = termsFor(sender, 1e6 + i, PARTNER, seed0 + i);
            items[i] = DepositItem(ts[i], signAuth(senderKey, ts[i]));
        }
        assertEq(depositBatch(items), n);
    }

    function assertStatus(IRemittanceEscrow.Terms memory t, IRemittanceEscrow.Status want) internal view {
        assertEq(uint8(statusOf(idOf(t))), uint8(want), "status");
    }

    /// Any subset of a batch released in one grouped transaction (one multiproof), the rest refunded after expiry
    /// with single proofs: every leaf exits exactly once, to the right place, and the escrow ends empty.
    function testFuzz_releaseSubset_refundRest(uint8 size, uint256 releaseMask) public {
        uint256 n = bound(size, 1, 64);
        IRemittanceEscrow.Terms[] memory ts = depositN(n, 100);
        uint256 m;
        uint256 paid;
        for (uint256 i; i < n; ++i) {
            if ((releaseMask >> i) & 1 == 1) ++m;
        }
        ReleaseItem[] memory items = new ReleaseItem[](m);
        uint256 k;
        for (uint256 i; i < n; ++i) {
            if ((releaseMask >> i) & 1 == 1) {
                items[k++] = ReleaseItem(ts[i], preimageOf(100 + i));
                paid += ts[i].amount;
            }
        }
        if (m > 0) {
            bytes memory packed = packReleases(items);
            assertEq(uint8(packed[0]), 1, "one group: one deposit batch, ascending indexes");
            assertEq(escrow.releaseBatch(packed), m);
        }
        assertEq(token.balanceOf(settlement), paid);
        vm.warp(ts[0].expiry);
        for (uint256 i; i < n; ++i) {
            if ((releaseMask >> i) & 1 == 1) {
                assertStatus(ts[i], IRemittanceEscrow.Status.Released);
                vm.expectRevert(
                    abi.encodeWithSelector(
                        IRemittanceEscrow.WrongState.selector, idOf(ts[i]), IRemittanceEscrow.Status.Released
                    )
                );
                refund(ts[i]);
            } else {
                assertStatus(ts[i], IRemittanceEscrow.Status.Locked);
                refund(ts[i]);
                assertStatus(ts[i], IRemittanceEscrow.Status.Refunded);
            }
        }
        assertEq(token.balanceOf(address(escrow)), 0);
        assertEq(token.balanceOf(sender), INITIAL - paid);
    }

    /// Leaves of three deposit batches released in one transaction: one group per batch, one transfer for the run.
    function test_releaseBatch_groupsFromSeveralDepositBatches() public {
        IRemittanceEscrow.Terms[] memory a = depositN(5, 200);
        IRemittanceEscrow.Terms[] memory b = depositN(8, 300);
        IRemittanceEscrow.Terms[] memory c = depositN(1, 400);
        ReleaseItem[] memory items = new ReleaseItem[](6);
        items[0] = ReleaseItem(a[1], preimageOf(201));
        items[1] = ReleaseItem(a[4], preimageOf(204));
        items[2] = ReleaseItem(b[0], preimageOf(300));
        items[3] = ReleaseItem(b[3], preimageOf(303));
        items[4] = ReleaseItem(b[7], preimageOf(307));
        items[5] = ReleaseItem(c[0], preimageOf(400));
        bytes memory packed = packReleases(items);
        assertEq(uint8(packed[0]), 3);
        uint256 sum = a[1].amount + a[4].amount + b[0].amount + b[3].amount + b[7].amount + c[0].amount;
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Released(batchRootOf[idOf(a[1])], PARTNER, (1 << 1) | (1 << 4));
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Released(batchRootOf[idOf(b[0])], PARTNER, (1 << 0) | (1 << 3) | (1 << 7));
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Released(idOf(c[0]), PARTNER, 1);
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Settled(PARTNER, settlement, sum, 6);
        assertEq(escrow.releaseBatch(packed), 6);
        assertEq(token.balanceOf(settlement), sum);
        (uint256 n, uint256 exited, uint256 refunded) = escrow.batchOf(batchRootOf[idOf(b[0])]);
        assertEq(n, 8);
        assertEq(exited, (1 << 0) | (1 << 3) | (1 << 7));
        assertEq(refunded, 0);
    }

    /// One wrong code in a group makes that leaf's id unknown to the batch: the whole group's proof fails and
    /// nothing of it is paid (the node checks every code before it sends; this is the contract's backstop).
    function test_releaseBatch_wrongCodeSkipsItsGroupOnly() public {
        IRemittanceEscrow.Terms[] memory a = depositN(4, 500);
        IRemittanceEscrow.Terms[] memory b = depositN(2, 600);
        ReleaseItem[] memory items = new ReleaseItem[](4);
        items[0] = ReleaseItem(a[0], preimageOf(500));
        items[1] = ReleaseItem(a[2], preimageOf(999)); // wrong code
        items[2] = ReleaseItem(b[0], preimageOf(600));
        items[3] = ReleaseItem(b[1], preimageOf(601));
        assertEq(releaseBatch(items), 2);
        assertEq(token.balanceOf(settlement), b[0].amount + b[1].amount);
        assertStatus(a[0], IRemittanceEscrow.Status.Locked);
        assertStatus(a[2], IRemittanceEscrow.Status.Locked);
    }

    /// A leaf released twice in one transaction (two groups of one batch): the second is skipped, paid once.
    function test_releaseBatch_sameLeafTwice_paidOnce() public {
        IRemittanceEscrow.Terms[] memory a = depositN(4, 700);
        ReleaseItem[] memory items = new ReleaseItem[](2);
        items[0] = ReleaseItem(a[2], preimageOf(702));
        items[1] = ReleaseItem(a[2], preimageOf(702));
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(idOf(a[2]), IRemittanceEscrow.SkipReason.WrongState, "");
        assertEq(releaseBatch(items), 1);
        assertEq(token.balanceOf(settlement), a[2].amount);
    }

    /// A refused payout puts back the exit bits of every group in its run, and the same items release later.
    function test_releaseBatch_refusedRunRestoresEveryGroup() public {
        IRemittanceEscrow.Terms[] memory a = depositN(3, 800);
        IRemittanceEscrow.Terms[] memory b = depositN(3, 900);
        ReleaseItem[] memory items = new ReleaseItem[](4);
        items[0] = ReleaseItem(a[0], preimageOf(800));
        items[1] = ReleaseItem(a[2], preimageOf(802));
        items[2] = ReleaseItem(b[1], preimageOf(901));
        items[3] = ReleaseItem(b[2], preimageOf(902));
        blacklist(settlement);
        for (uint256 i; i < 4; ++i) {
            vm.expectEmit(address(escrow));
            emit IRemittanceEscrow.Skipped(
                idOf(items[i].terms),
                IRemittanceEscrow.SkipReason.TransferFailed,
                abi.encodeWithSignature("Error(string)", "Blacklistable: account is blacklisted")
            );
        }
        assertEq(releaseBatch(items), 0);
        (, uint256 exitedA,) = escrow.batchOf(batchRootOf[idOf(a[0])]);
        (, uint256 exitedB,) = escrow.batchOf(batchRootOf[idOf(b[1])]);
        assertEq(exitedA | exitedB, 0);
        unBlacklist(settlement);
        assertEq(releaseBatch(items), 4);
    }

    /// Forged places: another index, a proof one level short (an inner node as a "root"), one level long, a
    /// sibling changed, a leaf of the zero padding. None locates the id, so nothing exits.
    function test_forgedProofs_locateNothing() public {
        IRemittanceEscrow.Terms[] memory a = depositN(5, 1000); // width 8, depth 3, leaves 5..7 are padding
        bytes32 id = idOf(a[2]);
        (uint256 index, bytes32[] memory proof) = proofOf(id);
        assertEq(index, 2);
        assertEq(proof.length, 3);
        vm.warp(a[2].expiry);
        bytes32[] memory shorter = new bytes32[](2);
        shorter[0] = proof[0];
        shorter[1] = proof[1];
        bytes32[] memory longer = new bytes32[](4);
        for (uint256 k; k < 3; ++k) {
            longer[k] = proof[k];
        }
        bytes32[] memory changed = new bytes32[](3);
        changed[0] = proof[0];
        changed[1] = bytes32(uint256(proof[1]) ^ 1);
        changed[2] = proof[2];
        bytes32[][4] memory forged = [shorter, longer, changed, proof];
        uint256[4] memory indexes = [uint256(2), 2, 2, 3];
        for (uint256 f; f < 4; ++f) {
            vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.BadProof.selector, id));
            escrow.refund(a[2], indexes[f], forged[f]);
        }
        // An index at or beyond n with a proof that hashes to the root still fails (n = 5): the padding is not
        // a place. (A zero leaf cannot be anybody's id; here a real id is claimed at padding index 6.)
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.BadProof.selector, id));
        escrow.refund(a[2], 6, proof);
        // An inner node is not a leaf: its "terms" would have to hash to it.
        bytes32[] memory none = new bytes32[](0);
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.BadProof.selector, id));
        escrow.refund(a[2], 0, none);
        escrow.refund(a[2], index, proof);
        assertEq(token.balanceOf(address(escrow)), a[0].amount + a[1].amount + a[3].amount + a[4].amount);
    }

    /// A group whose leaf indexes do not ascend, a count that overruns the data, trailing bytes, no group at all:
    /// the whole transaction reverts before anything moves.
    function test_releaseBatch_malformed() public {
        IRemittanceEscrow.Terms[] memory a = depositN(4, 1100);
        bytes32[] memory leaves = batchLeaves[batchRootOf[idOf(a[0])]];
        uint256[] memory idx = new uint256[](2);
        idx[0] = 1;
        idx[1] = 3;
        bytes32[] memory proof = Merkle.multiProof(leaves, idx);
        bytes memory good = bytes.concat(
            hex"01",
            Packing.groupHeader(a[1], 2, proof.length),
            Packing.groupLeaf(1, a[1], preimageOf(1101)),
            Packing.groupLeaf(3, a[3], preimageOf(1103)),
            abi.encodePacked(proof)
        );
        bytes memory descending = bytes.concat(
            hex"01",
            Packing.groupHeader(a[1], 2, proof.length),
            Packing.groupLeaf(3, a[3], preimageOf(1103)),
            Packing.groupLeaf(1, a[1], preimageOf(1101)),
            abi.encodePacked(proof)
        );
        vm.expectRevert(IRemittanceEscrow.MalformedBatch.selector);
        escrow.releaseBatch(descending);
        vm.expectRevert(IRemittanceEscrow.MalformedBatch.selector);
        escrow.releaseBatch(bytes.concat(good, hex"00"));
        bytes memory cut = new bytes(good.length - 1);
        for (uint256 i; i < cut.length; ++i) {
            cut[i] = good[i];
        }
        vm.expectRevert(IRemittanceEscrow.MalformedBatch.selector);
        escrow.releaseBatch(cut);
        vm.expectRevert(IRemittanceEscrow.MalformedBatch.selector);
        escrow.releaseBatch(hex"00");
        vm.expectRevert(IRemittanceEscrow.MalformedBatch.selector);
        escrow.releaseBatch(hex"");
        assertEq(token.balanceOf(settlement), 0);
        assertEq(escrow.releaseBatch(good), 2);
        assertEq(token.balanceOf(settlement), a[1].amount + a[3].amount);
    }

    /// Cancel and refundBatch find leaves of a batch by their proofs; the refunded bit tells a refund from a
    /// release.
    function test_cancelAndRefundBatch_inABatch() public {
        IRemittanceEscrow.Terms[] memory a = depositN(6, 1200);
        cancel(a[3], signDecline(partnerSignerKey, idOf(a[3])));
        release(a[0], preimageOf(1200));
        vm.warp(a[0].expiry);
        IRemittanceEscrow.Terms[] memory rest = new IRemittanceEscrow.Terms[](5);
        rest[0] = a[1];
        rest[1] = a[2];
        rest[2] = a[3]; // already cancelled: WrongState
        rest[3] = a[4];
        rest[4] = a[5];
        vm.expectEmit(address(escrow));
        emit IRemittanceEscrow.Skipped(idOf(a[3]), IRemittanceEscrow.SkipReason.WrongState, "");
        assertEq(refundBatch(rest), 4);
        (uint256 n, uint256 exited, uint256 refunded) = escrow.batchOf(batchRootOf[idOf(a[0])]);
        assertEq(n, 6);
        assertEq(exited, 0x3f);
        assertEq(refunded, 0x3e);
        assertStatus(a[0], IRemittanceEscrow.Status.Released);
        assertStatus(a[3], IRemittanceEscrow.Status.Refunded);
        assertEq(token.balanceOf(address(escrow)), 0);
    }

    /// rootOf is the tree the node builds; it refuses an empty or oversized list.
    function test_rootOf() public {
        bytes32[] memory leaves = new bytes32[](3);
        leaves[0] = keccak256("a");
        leaves[2] = keccak256("c");
        assertEq(escrow.rootOf(leaves), Merkle.root(leaves));
        assertEq(escrow.rootOf(leaves), Merkle.hashPair(Merkle.hashPair(leaves[0], 0), Merkle.hashPair(leaves[2], 0)));
        bytes32[] memory one = new bytes32[](1);
        one[0] = keccak256("x");
        assertEq(escrow.rootOf(one), one[0]);
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.BatchTooLarge.selector, 0, 64));
        escrow.rootOf(new bytes32[](0));
        vm.expectRevert(abi.encodeWithSelector(IRemittanceEscrow.BatchTooLarge.selector, 65, 64));
        escrow.rootOf(new bytes32[](65));
    }
}
