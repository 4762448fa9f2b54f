// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Test, Vm} from "forge-std/Test.sol";
import {RemittanceEscrowMerkle} from "../src/RemittanceEscrowMerkle.sol";
import {IRemittanceEscrow} from "../src/interfaces/IRemittanceEscrow.sol";
import {IFiatTokenV2_2, UsdcDeployer} from "./utils/Usdc.sol";
import {MerkleHelpers} from "./MerkleHelpers.sol";

/// Correctness of the Merkle-batch prototype on Circle's USDC: exit once, proofs bind (id, index), release strictly
/// before expiry, refund at/after expiry by anyone with a proof rebuilt only from public chain data, funds only to
/// the bound settlement address or the sender, one bad item skipped without reverting its batch, pause stops
/// deposits only.
contract MerkleEscrowTest is Test, UsdcDeployer {
    uint64 internal constant PARTNER = 1;
    uint64 internal constant PARTNER_B = 2;
    bytes32 internal constant RECEIVE_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );

    IFiatTokenV2_2 internal token;
    RemittanceEscrowMerkle internal escrow;
    address internal usdcAdmin = makeAddr("usdc-admin");
    address internal owner = makeAddr("owner");
    address internal relayer = makeAddr("relayer");
    address internal stranger = makeAddr("stranger");
    address internal settlement = makeAddr("settlement");
    address internal settlementB = makeAddr("settlementB");
    address internal signer;
    uint256 internal signerKey;
    address internal signerB;
    uint256 internal signerKeyB;
    address[] internal senders;
    uint256[] internal keys;

    function setUp() public {
        vm.warp(1_750_000_000);
        token = deployUsdc(
            UsdcRoles({
                owner: usdcAdmin,
                masterMinter: usdcAdmin,
                pauser: usdcAdmin,
                blacklister: usdcAdmin,
                lostAndFound: usdcAdmin,
                proxyAdmin: makeAddr("usdc-proxy-admin")
            })
        );
        vm.prank(usdcAdmin);
        token.configureMinter(usdcAdmin, type(uint128).max);
        escrow = new RemittanceEscrowMerkle(address(token), owner, owner, 1 hours, 30 days, false);
        (signer, signerKey) = makeAddrAndKey("partner-signer");
        (signerB, signerKeyB) = makeAddrAndKey("partner-signer-B");
        vm.startPrank(owner);
        escrow.setPartner(PARTNER, settlement, signer);
        escrow.setPartner(PARTNER_B, settlementB, signerB);
        vm.stopPrank();
        for (uint256 i; i < 8; ++i) {
            (address a, uint256 k) = makeAddrAndKey(string.concat("sender-", vm.toString(i)));
            senders.push(a);
            keys.push(k);
            vm.prank(usdcAdmin);
            token.mint(a, 10_000e6);
        }
    }

    // ---------------------------------------------------------------- helpers

    function _preimage(uint256 i) internal pure returns (bytes32) {
        return keccak256(abi.encode("preimage", i));
    }

    function _item(uint256 s, uint256 i, uint64 partnerId)
        internal
        view
        returns (IRemittanceEscrow.DepositItem memory it)
    {
        it.terms = IRemittanceEscrow.Terms({
            sender: senders[s],
            amount: 100e6 + i,
            partnerId: partnerId,
            expiry: uint64(block.timestamp + 1 days),
            settlement: partnerId == PARTNER_B ? settlementB : settlement,
            partnerSigner: partnerId == PARTNER_B ? signerB : signer,
            claimHash: keccak256(abi.encodePacked(_preimage(i)))
        });
        bytes32 id = escrow.remittanceId(it.terms);
        it.auth.validBefore = block.timestamp + 1 hours;
        bytes32 structHash = keccak256(
            abi.encode(RECEIVE_TYPEHASH, it.terms.sender, address(escrow), it.terms.amount, 0, it.auth.validBefore, id)
        );
        (it.auth.v, it.auth.r, it.auth.s) =
            vm.sign(keys[s], keccak256(abi.encodePacked(hex"1901", token.DOMAIN_SEPARATOR(), structHash)));
    }

    function _items(uint256 n, uint256 offset) internal view returns (IRemittanceEscrow.DepositItem[] memory items) {
        items = new IRemittanceEscrow.DepositItem[](n);
        for (uint256 i; i < n; ++i) {
            items[i] = _item(i % senders.length, offset + i, PARTNER);
        }
    }

    function _ids(IRemittanceEscrow.DepositItem[] memory items) internal view returns (bytes32[] memory leaves) {
        leaves = new bytes32[](items.length);
        for (uint256 i; i < items.length; ++i) {
            leaves[i] = escrow.remittanceId(items[i].terms);
        }
    }

    function _deposit(IRemittanceEscrow.DepositItem[] memory items) internal returns (bytes32[] memory leaves) {
        vm.prank(relayer);
        (uint256 done, bytes32 root) = escrow.depositBatch(items);
        assertEq(done, items.length);
        leaves = _ids(items);
        assertEq(root, MerkleHelpers.root(leaves));
    }

    // ---------------------------------------------------------------- tests

    function test_rootIsOnChainAndMatchesOffChain() public {
        IRemittanceEscrow.DepositItem[] memory items = _items(5, 0); // padded to 8
        bytes32[] memory leaves = _deposit(items);
        (uint256 n, uint256 bits) = escrow.batchOf(MerkleHelpers.root(leaves));
        assertEq(n, 5);
        assertEq(bits, 0);
        assertEq(escrow.rootOf(leaves), MerkleHelpers.root(leaves));
        assertEq(token.balanceOf(address(escrow)), 5 * 100e6 + 10);
    }

    function test_release_exitsOnce_thenNoRefundNoCancel() public {
        IRemittanceEscrow.DepositItem[] memory items = _items(5, 0);
        bytes32[] memory leaves = _deposit(items);
        bytes32[] memory proof = MerkleHelpers.proof(leaves, 3);
        vm.prank(stranger);
        escrow.release(items[3].terms, _preimage(3), 3, proof);
        assertEq(token.balanceOf(settlement), items[3].terms.amount);
        vm.expectRevert(abi.encodeWithSelector(RemittanceEscrowMerkle.AlreadyExited.selector, leaves[3]));
        escrow.release(items[3].terms, _preimage(3), 3, proof);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(signerKey, escrow.declineDigest(leaves[3]));
        vm.expectRevert(abi.encodeWithSelector(RemittanceEscrowMerkle.AlreadyExited.selector, leaves[3]));
        escrow.cancel(items[3].terms, 3, proof, abi.encodePacked(r, s, v));
        vm.warp(items[3].terms.expiry);
        vm.expectRevert(abi.encodeWithSelector(RemittanceEscrowMerkle.AlreadyExited.selector, leaves[3]));
        escrow.refund(items[3].terms, 3, proof);
        // The neighbours are untouched: 4 can still be refunded (at expiry).
        escrow.refund(items[4].terms, 4, MerkleHelpers.proof(leaves, 4));
        assertEq(token.balanceOf(items[4].terms.sender), 10_000e6); // sender 4 got its 100e6+4 back
        (, uint256 bits) = escrow.batchOf(MerkleHelpers.root(leaves));
        assertEq(bits, (1 << 3) | (1 << 4));
    }

    function test_badProofs_revert() public {
        IRemittanceEscrow.DepositItem[] memory items = _items(5, 0);
        bytes32[] memory leaves = _deposit(items);
        IRemittanceEscrow.Terms memory t = items[2].terms;
        bytes32 pre = _preimage(2);
        bytes32[] memory proof = MerkleHelpers.proof(leaves, 2);
        bytes memory badProof = abi.encodeWithSelector(RemittanceEscrowMerkle.BadProof.selector, leaves[2]);
        // wrong index (same proof)
        vm.expectRevert(badProof);
        escrow.release(t, pre, 3, proof);
        // index beyond the tree (high bits would alias leaf 2): rejected
        vm.expectRevert(badProof);
        escrow.release(t, pre, 2 + 8, proof);
        // a wrong sibling
        bytes32[] memory wrong = MerkleHelpers.proof(leaves, 2);
        wrong[1] = bytes32(uint256(1));
        vm.expectRevert(badProof);
        escrow.release(t, pre, 2, wrong);
        // too short / too long a proof
        bytes32[] memory shortP = new bytes32[](2);
        shortP[0] = proof[0];
        shortP[1] = proof[1];
        vm.expectRevert(badProof);
        escrow.release(t, pre, 2, shortP);
        // a term changed (more money, another settlement): another id, not a leaf
        IRemittanceEscrow.Terms memory more = _copy(t);
        more.amount = t.amount * 10;
        vm.expectRevert(abi.encodeWithSelector(RemittanceEscrowMerkle.BadProof.selector, escrow.remittanceId(more)));
        escrow.release(more, pre, 2, proof);
        IRemittanceEscrow.Terms memory elsewhere = _copy(t);
        elsewhere.settlement = stranger;
        vm.expectRevert(
            abi.encodeWithSelector(RemittanceEscrowMerkle.BadProof.selector, escrow.remittanceId(elsewhere))
        );
        escrow.release(elsewhere, pre, 2, proof);
        // the padding positions 5..7 hold zero leaves: nothing real proves there
        vm.expectRevert(badProof);
        escrow.release(t, pre, 5, MerkleHelpers.proof(leaves, 5));
        // and the right proof works
        escrow.release(t, pre, 2, proof);
        assertEq(token.balanceOf(settlement), t.amount);
        assertEq(token.balanceOf(stranger), 0);
    }

    function test_releaseOnlyBeforeExpiry_refundOnlyAtOrAfter_byAnyone() public {
        IRemittanceEscrow.DepositItem[] memory items = _items(4, 0);
        bytes32[] memory leaves = _deposit(items);
        IRemittanceEscrow.Terms memory t = items[1].terms;
        bytes32[] memory proof = MerkleHelpers.proof(leaves, 1);
        vm.warp(t.expiry - 1);
        vm.expectRevert(abi.encodeWithSelector(RemittanceEscrowMerkle.NotExpired.selector, leaves[1], t.expiry));
        escrow.refund(t, 1, proof);
        vm.warp(t.expiry);
        vm.expectRevert(abi.encodeWithSelector(RemittanceEscrowMerkle.Expired.selector, leaves[1], t.expiry));
        escrow.release(t, _preimage(1), 1, proof);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(signerKey, escrow.declineDigest(leaves[1]));
        vm.expectRevert(abi.encodeWithSelector(RemittanceEscrowMerkle.Expired.selector, leaves[1], t.expiry));
        escrow.cancel(t, 1, proof, abi.encodePacked(r, s, v));
        uint256 before = token.balanceOf(t.sender);
        vm.prank(stranger);
        escrow.refund(t, 1, proof);
        assertEq(token.balanceOf(t.sender), before + t.amount);
        assertEq(token.balanceOf(stranger), 0);
    }

    /// A refund helper with no access to the node: finds BatchDeposited in the deposit transaction's logs, rebuilds
    /// every leaf from that transaction's calldata (the items' terms) and its Skipped events (zero leaves), and
    /// refunds after expiry.
    function test_refundRebuiltFromCalldataAndEvents_withoutTheNode() public {
        IRemittanceEscrow.DepositItem[] memory items = _items(6, 0);
        items[4].auth.s = bytes32(uint256(items[4].auth.s) ^ 1); // one bad signature: skipped, zero leaf
        bytes memory txData = abi.encodeCall(escrow.depositBatch, (items));
        vm.recordLogs();
        vm.prank(relayer);
        (bool ok,) = address(escrow).call(txData);
        assertTrue(ok);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        // --- what the helper sees: txData and logs only
        IRemittanceEscrow.DepositItem[] memory fromCalldata =
            abi.decode(_args(txData), (IRemittanceEscrow.DepositItem[]));
        bytes32[] memory leaves = new bytes32[](fromCalldata.length);
        for (uint256 i; i < leaves.length; ++i) {
            leaves[i] = escrow.remittanceId(fromCalldata[i].terms);
        }
        bytes32 root;
        for (uint256 k; k < logs.length; ++k) {
            if (logs[k].emitter != address(escrow)) continue;
            if (logs[k].topics[0] == RemittanceEscrowMerkle.Skipped.selector) {
                for (uint256 i; i < leaves.length; ++i) {
                    if (leaves[i] == logs[k].topics[1]) leaves[i] = bytes32(0);
                }
            } else if (logs[k].topics[0] == RemittanceEscrowMerkle.BatchDeposited.selector) {
                root = logs[k].topics[1];
            }
        }
        assertEq(MerkleHelpers.root(leaves), root, "rebuilt root");
        assertEq(leaves[4], bytes32(0));
        // --- refund item 2 after expiry, by a stranger
        vm.warp(fromCalldata[2].terms.expiry);
        uint256 before = token.balanceOf(fromCalldata[2].terms.sender);
        vm.prank(stranger);
        escrow.refund(fromCalldata[2].terms, 2, MerkleHelpers.proof(leaves, 2));
        assertEq(token.balanceOf(fromCalldata[2].terms.sender), before + fromCalldata[2].terms.amount);
        // the skipped item never deposited: it cannot be refunded
        bytes32 id4 = escrow.remittanceId(items[4].terms);
        vm.expectRevert(abi.encodeWithSelector(RemittanceEscrowMerkle.BadProof.selector, id4));
        escrow.refund(items[4].terms, 4, MerkleHelpers.proof(leaves, 4));
    }

    function _copy(IRemittanceEscrow.Terms memory t) internal pure returns (IRemittanceEscrow.Terms memory c) {
        c = abi.decode(abi.encode(t), (IRemittanceEscrow.Terms));
    }

    function _args(bytes memory data) internal pure returns (bytes memory out) {
        out = new bytes(data.length - 4);
        for (uint256 i; i < out.length; ++i) {
            out[i] = data[i + 4];
        }
    }

    function test_depositBatch_badItemsSkipped_notReverting() public {
        IRemittanceEscrow.DepositItem[] memory items = _items(6, 0);
        items[1].auth.r = bytes32(uint256(7)); // bad signature
        items[3].terms.expiry = uint64(block.timestamp + 60 days); // out of the lock bounds
        items[5] = items[0]; // duplicate id: USDC refuses the used nonce
        vm.prank(relayer);
        (uint256 done, bytes32 root) = escrow.depositBatch(items);
        assertEq(done, 3);
        bytes32[] memory leaves = _ids(items);
        leaves[1] = 0;
        leaves[3] = 0;
        leaves[5] = 0;
        assertEq(root, MerkleHelpers.root(leaves));
        assertEq(
            token.balanceOf(address(escrow)), items[0].terms.amount + items[2].terms.amount + items[4].terms.amount
        );
        // the duplicate cannot exit twice: it has one leaf (index 0) only
        escrow.release(items[0].terms, _preimage(0), 0, MerkleHelpers.proof(leaves, 0));
        vm.expectRevert(abi.encodeWithSelector(RemittanceEscrowMerkle.BadProof.selector, leaves[0]));
        escrow.release(items[5].terms, _preimage(0), 5, MerkleHelpers.proof(leaves, 5));
    }

    function test_releaseBatch_badItemsSkipped_othersPaid_exitOnce() public {
        IRemittanceEscrow.DepositItem[] memory items = _items(8, 0);
        bytes32[] memory leaves = _deposit(items);
        RemittanceEscrowMerkle.ReleaseItem[] memory rel = new RemittanceEscrowMerkle.ReleaseItem[](6);
        for (uint256 i; i < 6; ++i) {
            rel[i] = RemittanceEscrowMerkle.ReleaseItem({
                terms: items[i].terms, preimage: _preimage(i), index: i, proof: MerkleHelpers.proof(leaves, i)
            });
        }
        rel[1].proof[0] = bytes32(0); // bad proof
        rel[2].preimage = bytes32(0); // bad preimage
        rel[5] = rel[0]; // the same remittance twice in one batch
        vm.prank(relayer);
        uint256 done = escrow.releaseBatch(rel);
        assertEq(done, 3); // 0, 3, 4
        assertEq(token.balanceOf(settlement), items[0].terms.amount + items[3].terms.amount + items[4].terms.amount);
        (, uint256 bits) = escrow.batchOf(MerkleHelpers.root(leaves));
        assertEq(bits, (1 << 0) | (1 << 3) | (1 << 4));
    }

    function test_releaseBatch_blacklistedSettlement_staysOpen() public {
        IRemittanceEscrow.DepositItem[] memory items = _items(2, 0);
        bytes32[] memory leaves = _deposit(items);
        vm.prank(usdcAdmin);
        token.blacklist(settlement);
        RemittanceEscrowMerkle.ReleaseItem[] memory rel = new RemittanceEscrowMerkle.ReleaseItem[](2);
        for (uint256 i; i < 2; ++i) {
            rel[i] = RemittanceEscrowMerkle.ReleaseItem({
                terms: items[i].terms, preimage: _preimage(i), index: i, proof: MerkleHelpers.proof(leaves, i)
            });
        }
        assertEq(escrow.releaseBatch(rel), 0);
        (, uint256 bits) = escrow.batchOf(MerkleHelpers.root(leaves));
        assertEq(bits, 0, "still open");
        vm.warp(items[0].terms.expiry);
        escrow.refund(items[0].terms, 0, MerkleHelpers.proof(leaves, 0));
        assertEq(token.balanceOf(items[0].terms.sender), 10_000e6);
    }

    function test_cancel_needsPartnerSignature_paysSender() public {
        IRemittanceEscrow.DepositItem[] memory items = _items(3, 0);
        bytes32[] memory leaves = _deposit(items);
        bytes32[] memory proof = MerkleHelpers.proof(leaves, 2);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(signerKeyB, escrow.declineDigest(leaves[2])); // other partner
        vm.expectRevert(abi.encodeWithSelector(RemittanceEscrowMerkle.BadDeclineSignature.selector, leaves[2]));
        escrow.cancel(items[2].terms, 2, proof, abi.encodePacked(r, s, v));
        (v, r, s) = vm.sign(signerKey, escrow.declineDigest(leaves[2]));
        vm.prank(stranger);
        escrow.cancel(items[2].terms, 2, proof, abi.encodePacked(r, s, v));
        assertEq(token.balanceOf(items[2].terms.sender), 10_000e6);
        assertEq(token.balanceOf(stranger), 0);
    }

    function test_pauseStopsDepositsOnly() public {
        IRemittanceEscrow.DepositItem[] memory items = _items(2, 0);
        bytes32[] memory leaves = _deposit(items);
        vm.prank(owner);
        escrow.pause();
        IRemittanceEscrow.DepositItem[] memory more = _items(2, 10);
        vm.expectRevert();
        escrow.depositBatch(more);
        escrow.release(items[0].terms, _preimage(0), 0, MerkleHelpers.proof(leaves, 0));
        vm.warp(items[1].terms.expiry);
        escrow.refund(items[1].terms, 1, MerkleHelpers.proof(leaves, 1));
    }

    function test_releaseGroups_multiproof_badGroupSkippedOthersPaid() public {
        IRemittanceEscrow.DepositItem[] memory a = _items(8, 0);
        IRemittanceEscrow.DepositItem[] memory b = _items(8, 100);
        bytes32[] memory la = _deposit(a);
        bytes32[] memory lb = _deposit(b);
        uint256[] memory pick = new uint256[](3);
        pick[0] = 1;
        pick[1] = 2;
        pick[2] = 6;
        RemittanceEscrowMerkle.ReleaseGroup[] memory groups = new RemittanceEscrowMerkle.ReleaseGroup[](2);
        for (uint256 g; g < 2; ++g) {
            IRemittanceEscrow.DepositItem[] memory it = g == 0 ? a : b;
            groups[g].leaves = new RemittanceEscrowMerkle.GroupLeaf[](3);
            for (uint256 k; k < 3; ++k) {
                groups[g].leaves[k] = RemittanceEscrowMerkle.GroupLeaf({
                    terms: it[pick[k]].terms, preimage: _preimage(g * 100 + pick[k]), index: pick[k]
                });
            }
            groups[g].proof = MerkleHelpers.multiProof(g == 0 ? la : lb, pick);
        }
        groups[0].leaves[2].terms.amount += 1; // not a leaf: group 0's proof fails, group 0 skipped whole
        groups[1].leaves[1].preimage = bytes32(0); // bad preimage: only that leaf skipped
        uint256 done = escrow.releaseGroups(groups);
        assertEq(done, 2);
        assertEq(token.balanceOf(settlement), b[1].terms.amount + b[6].terms.amount);
        (, uint256 bitsA) = escrow.batchOf(MerkleHelpers.root(la));
        (, uint256 bitsB) = escrow.batchOf(MerkleHelpers.root(lb));
        assertEq(bitsA, 0);
        assertEq(bitsB, (1 << 1) | (1 << 6));
        // a second time: exited leaves are skipped
        groups[1].leaves[1].preimage = _preimage(102);
        assertEq(escrow.releaseGroups(groups), 1); // only leaf 2 of b is new
    }

    function test_packedPaths_sameIdsAsAbi_andExitOnce() public {
        IRemittanceEscrow.DepositItem[] memory items = _items(5, 0);
        bytes memory data = abi.encodePacked(bytes8(PARTNER), bytes20(settlement), bytes20(signer), uint8(5));
        for (uint256 i; i < 5; ++i) {
            IRemittanceEscrow.Terms memory t = items[i].terms;
            data = abi.encodePacked(
                data,
                bytes20(t.sender),
                uint96(t.amount),
                uint40(t.expiry),
                t.claimHash,
                uint40(0),
                uint40(items[i].auth.validBefore),
                items[i].auth.v,
                items[i].auth.r,
                items[i].auth.s
            );
        }
        (uint256 done, bytes32 root) = escrow.depositBatchPackedLean(data);
        assertEq(done, 5);
        bytes32[] memory leaves = _ids(items);
        assertEq(root, MerkleHelpers.root(leaves));
        // packed release of leaves 0 and 3 (multiproof), then again: both already exited
        uint256[] memory pick = new uint256[](2);
        pick[0] = 0;
        pick[1] = 3;
        bytes32[] memory proof = MerkleHelpers.multiProof(leaves, pick);
        bytes memory rel = abi.encodePacked(
            uint8(1), bytes8(PARTNER), bytes20(settlement), bytes20(signer), uint8(2), uint8(proof.length)
        );
        for (uint256 k; k < 2; ++k) {
            IRemittanceEscrow.Terms memory t = items[pick[k]].terms;
            rel = abi.encodePacked(
                rel, uint8(pick[k]), bytes20(t.sender), uint96(t.amount), uint40(t.expiry), _preimage(pick[k])
            );
        }
        for (uint256 k; k < proof.length; ++k) {
            rel = abi.encodePacked(rel, proof[k]);
        }
        assertEq(escrow.releaseGroupsPacked(rel), 2);
        assertEq(token.balanceOf(settlement), items[0].terms.amount + items[3].terms.amount);
        assertEq(escrow.releaseGroupsPacked(rel), 0);
        assertEq(token.balanceOf(settlement), items[0].terms.amount + items[3].terms.amount);
    }

    /// Any non-empty subset of any batch size verifies with the multiproof and exits exactly those leaves; a
    /// repeat releases nothing.
    function testFuzz_multiproof_anySubset(uint8 nRaw, uint64 maskRaw) public {
        uint256 n = 1 + uint256(nRaw) % 12;
        uint256 mask = uint256(maskRaw) & ((1 << n) - 1);
        if (mask == 0) mask = 1;
        IRemittanceEscrow.DepositItem[] memory items = _items(n, 0);
        bytes32[] memory leaves = _deposit(items);
        uint256 m;
        for (uint256 i; i < n; ++i) {
            if (mask & (1 << i) != 0) ++m;
        }
        uint256[] memory pick = new uint256[](m);
        RemittanceEscrowMerkle.ReleaseGroup[] memory groups = new RemittanceEscrowMerkle.ReleaseGroup[](1);
        groups[0].leaves = new RemittanceEscrowMerkle.GroupLeaf[](m);
        uint256 k;
        uint256 sum;
        for (uint256 i; i < n; ++i) {
            if (mask & (1 << i) == 0) continue;
            pick[k] = i;
            groups[0].leaves[k++] =
                RemittanceEscrowMerkle.GroupLeaf({terms: items[i].terms, preimage: _preimage(i), index: i});
            sum += items[i].terms.amount;
        }
        groups[0].proof = MerkleHelpers.multiProof(leaves, pick);
        assertEq(escrow.releaseGroups(groups), m);
        assertEq(token.balanceOf(settlement), sum);
        (, uint256 bits) = escrow.batchOf(MerkleHelpers.root(leaves));
        assertEq(bits, mask);
        assertEq(escrow.releaseGroups(groups), 0);
        // the single-proof path agrees: every picked leaf is now exited, every other one is still open
        for (uint256 i; i < n; ++i) {
            bytes32[] memory proof = MerkleHelpers.proof(leaves, i);
            if (mask & (1 << i) != 0) {
                vm.expectRevert(abi.encodeWithSelector(RemittanceEscrowMerkle.AlreadyExited.selector, leaves[i]));
            }
            escrow.release(items[i].terms, _preimage(i), i, proof);
        }
    }
}
