// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {RemittanceEscrowMerkle} from "../src/RemittanceEscrowMerkle.sol";
import {IRemittanceEscrow} from "../src/interfaces/IRemittanceEscrow.sol";
import {IFiatTokenV2_2, UsdcDeployer} from "./utils/Usdc.sol";
import {MerkleHelpers} from "./MerkleHelpers.sol";

/// Gas of the Merkle-batch prototype, measured exactly as test/Gas.t.sol measures v2 (FOUNDRY_PROFILE=gas,
/// isolate = true, vm.snapshotGasLastCall = all-in transaction gas; same state: distinct funded senders that keep a
/// balance, escrow already holding an open remittance, fresh settlement address; same amounts, expiries,
/// preimages, real signatures). Two concrete suites: per-item events as v2 (MerkleGas_events) and the light-event
/// lever (MerkleGas_light).
abstract contract GasMerkleBase is Test, UsdcDeployer {
    uint256 internal constant N = 32;
    uint64 internal constant PARTNER = 7;
    bytes32 internal constant RECEIVE_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );

    IFiatTokenV2_2 internal token;
    RemittanceEscrowMerkle internal escrow;
    address internal usdcAdmin = makeAddr("usdc-admin");
    address internal owner = makeAddr("owner");
    address internal relayer = makeAddr("relayer");
    address internal settlement = makeAddr("partner-settlement");
    address internal partnerSigner;
    uint256 internal partnerSignerKey;
    address[] internal senders;
    uint256[] internal keys;

    function itemEvents() internal pure virtual returns (bool);
    function group() internal pure virtual returns (string memory);

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
        escrow = new RemittanceEscrowMerkle(address(token), owner, owner, 1 hours, 30 days, itemEvents());
        (partnerSigner, partnerSignerKey) = makeAddrAndKey("partner-signer");
        vm.prank(owner);
        escrow.setPartner(PARTNER, settlement, partnerSigner);
        for (uint256 i; i < N + 2; ++i) {
            (address account, uint256 k) = makeAddrAndKey(string.concat("sender-", vm.toString(i)));
            senders.push(account);
            keys.push(k);
            vm.prank(usdcAdmin);
            token.mint(account, 10_000e6);
        }
        (IRemittanceEscrow.Terms memory t, IRemittanceEscrow.Authorization memory a) = _signed(N + 1, 999);
        escrow.deposit(t, a);
    }

    // ---------------------------------------------------------------- helpers (as Gas.t.sol)

    function _preimage(uint256 i) internal pure returns (bytes32) {
        bytes memory alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
        bytes memory code = new bytes(12);
        uint256 x = uint256(keccak256(abi.encode("code", i)));
        for (uint256 j; j < 12; ++j) {
            code[j] = alphabet[x % 32];
            x /= 32;
        }
        return bytes32(abi.encodePacked(bytes16(keccak256(abi.encode("salt", i))), code, bytes4(0)));
    }

    function _terms(uint256 s, uint256 i) internal view returns (IRemittanceEscrow.Terms memory) {
        return IRemittanceEscrow.Terms({
            sender: senders[s],
            amount: 100e6 + i * 1_230_000,
            partnerId: PARTNER,
            expiry: uint64(block.timestamp + 7 days),
            settlement: settlement,
            partnerSigner: partnerSigner,
            claimHash: keccak256(abi.encodePacked(_preimage(i)))
        });
    }

    function _signed(uint256 s, uint256 i)
        internal
        view
        returns (IRemittanceEscrow.Terms memory t, IRemittanceEscrow.Authorization memory a)
    {
        t = _terms(s, i);
        bytes32 id = escrow.remittanceId(t);
        a.validBefore = block.timestamp + 1 hours;
        bytes32 structHash =
            keccak256(abi.encode(RECEIVE_TYPEHASH, t.sender, address(escrow), t.amount, 0, a.validBefore, id));
        (a.v, a.r, a.s) = vm.sign(keys[s], keccak256(abi.encodePacked(hex"1901", token.DOMAIN_SEPARATOR(), structHash)));
    }

    function _depositItems(uint256 n, uint256 offset)
        internal
        view
        returns (IRemittanceEscrow.DepositItem[] memory items)
    {
        items = new IRemittanceEscrow.DepositItem[](n);
        for (uint256 i; i < n; ++i) {
            (items[i].terms, items[i].auth) = _signed(i, offset + i);
        }
    }

    function _packed(IRemittanceEscrow.DepositItem[] memory items) internal view returns (bytes memory data) {
        data = abi.encodePacked(bytes8(PARTNER), bytes20(settlement), bytes20(partnerSigner), uint8(items.length));
        for (uint256 i; i < items.length; ++i) {
            IRemittanceEscrow.Terms memory t = items[i].terms;
            IRemittanceEscrow.Authorization memory a = items[i].auth;
            data = abi.encodePacked(
                data,
                bytes20(t.sender),
                uint96(t.amount),
                uint40(t.expiry),
                t.claimHash,
                uint40(a.validAfter),
                uint40(a.validBefore),
                a.v,
                a.r,
                a.s
            );
        }
    }

    function _leaves(IRemittanceEscrow.DepositItem[] memory items) internal view returns (bytes32[] memory leaves) {
        leaves = new bytes32[](items.length);
        for (uint256 i; i < items.length; ++i) {
            leaves[i] = escrow.remittanceId(items[i].terms);
        }
    }

    /// Deposits batch `b` (32 items, terms offset b*32) and returns its items and leaves.
    function _depositBatch(uint256 b)
        internal
        returns (IRemittanceEscrow.DepositItem[] memory items, bytes32[] memory leaves)
    {
        items = _depositItems(N, b * N);
        (uint256 done,) = escrow.depositBatch(items);
        assertEq(done, N);
        leaves = _leaves(items);
    }

    /// 8 distinct pseudo-random indexes in [0, 32), ascending (the leaves of a batch a release run happens to hit).
    function _pick8(uint256 seed) internal pure returns (uint256[] memory idx) {
        bool[32] memory used;
        idx = new uint256[](8);
        uint256 got;
        uint256 x = uint256(keccak256(abi.encode("pick", seed)));
        while (got < 8) {
            uint256 c = x % 32;
            x = uint256(keccak256(abi.encode(x)));
            if (used[c]) continue;
            used[c] = true;
            ++got;
        }
        uint256 k;
        for (uint256 c; c < 32; ++c) {
            if (used[c]) idx[k++] = c;
        }
    }

    function _cold() internal {
        vm.cool(address(escrow));
        vm.cool(address(token));
    }

    function _reporting() internal view returns (bool) {
        return keccak256(bytes(vm.envOr("FOUNDRY_PROFILE", string("default")))) == keccak256("gas");
    }

    function _record(string memory name, bytes memory data, uint256 count) internal {
        if (!_reporting()) return;
        string memory g = group();
        uint256 txGas = vm.snapshotGasLastCall(g, string.concat(name, ".tx"));
        uint256 zeros;
        for (uint256 i; i < data.length; ++i) {
            if (data[i] == 0) ++zeros;
        }
        uint256 nonZeros = data.length - zeros;
        uint256 calldataGas = zeros * 4 + nonZeros * 16;
        uint256 floor = 21_000 + 10 * (zeros + 4 * nonZeros);
        assertGt(txGas, 21_000 + calldataGas, "not run isolated: use FOUNDRY_PROFILE=gas (isolate = true)");
        vm.snapshotValue(g, string.concat(name, ".calldata"), calldataGas);
        vm.snapshotValue(g, string.concat(name, ".floor"), floor);
        vm.snapshotValue(g, string.concat(name, ".count"), count);
    }

    // ---------------------------------------------------------------- deposits

    function test_gas_deposit() public {
        (IRemittanceEscrow.Terms memory t, IRemittanceEscrow.Authorization memory a) = _signed(0, 0);
        _cold();
        vm.prank(relayer);
        escrow.deposit(t, a);
        _record("deposit_1", abi.encodeCall(escrow.deposit, (t, a)), 1);
    }

    function test_gas_depositBatch32() public {
        IRemittanceEscrow.DepositItem[] memory items = _depositItems(N, 0);
        _cold();
        vm.prank(relayer);
        (uint256 done,) = escrow.depositBatch(items);
        assertEq(done, N);
        _record("deposit_batch_32", abi.encodeCall(escrow.depositBatch, (items)), N);
    }

    function test_gas_depositBatchPacked32() public {
        IRemittanceEscrow.DepositItem[] memory items = _depositItems(N, 0);
        bytes memory data = _packed(items);
        _cold();
        vm.prank(relayer);
        (uint256 done, bytes32 root) = escrow.depositBatchPacked(data);
        _record("deposit_batch_packed_32", abi.encodeCall(escrow.depositBatchPacked, (data)), N);
        assertEq(done, N);
        assertEq(root, MerkleHelpers.root(_leaves(items)), "packed: same ids, same root");
    }

    // ---------------------------------------------------------------- releases

    /// A remittance deposited alone (root = id, no proof).
    function test_gas_release_ofSingleDeposit() public {
        (IRemittanceEscrow.Terms memory t, IRemittanceEscrow.Authorization memory a) = _signed(0, 0);
        escrow.deposit(t, a);
        bytes32[] memory proof = new bytes32[](0);
        _cold();
        vm.prank(relayer);
        escrow.release(t, _preimage(0), 0, proof);
        _record("release_1_single_deposit", abi.encodeCall(escrow.release, (t, _preimage(0), 0, proof)), 1);
        assertEq(token.balanceOf(settlement), t.amount);
    }

    /// One remittance out of a batch of 32 (5 sibling hashes).
    function test_gas_release_fromBatch() public {
        (IRemittanceEscrow.DepositItem[] memory items, bytes32[] memory leaves) = _depositBatch(0);
        uint256 i = 13;
        bytes32[] memory proof = MerkleHelpers.proof(leaves, i);
        _cold();
        vm.prank(relayer);
        escrow.release(items[i].terms, _preimage(i), i, proof);
        _record("release_1_from_batch", abi.encodeCall(escrow.release, (items[i].terms, _preimage(i), i, proof)), 1);
        assertEq(token.balanceOf(settlement), items[i].terms.amount);
    }

    /// releaseBatch, per-item proofs, the 32 leaves of one deposit batch (one exit word).
    function test_gas_releaseBatch32_oneDepositBatch() public {
        (IRemittanceEscrow.DepositItem[] memory items, bytes32[] memory leaves) = _depositBatch(0);
        RemittanceEscrowMerkle.ReleaseItem[] memory rel = new RemittanceEscrowMerkle.ReleaseItem[](N);
        for (uint256 i; i < N; ++i) {
            rel[i] = RemittanceEscrowMerkle.ReleaseItem({
                terms: items[i].terms, preimage: _preimage(i), index: i, proof: MerkleHelpers.proof(leaves, i)
            });
        }
        _cold();
        vm.prank(relayer);
        uint256 done = escrow.releaseBatch(rel);
        _record("release_batch_32_proofs_1batch", abi.encodeCall(escrow.releaseBatch, (rel)), N);
        assertEq(done, N);
        assertEq(token.balanceOf(settlement), 32 * 100e6 + 1_230_000 * (31 * 32 / 2));
    }

    function _fourBatches()
        internal
        returns (IRemittanceEscrow.DepositItem[][] memory items, bytes32[][] memory leaves, uint256[][] memory picks)
    {
        items = new IRemittanceEscrow.DepositItem[][](4);
        leaves = new bytes32[][](4);
        picks = new uint256[][](4);
        for (uint256 b; b < 4; ++b) {
            (items[b], leaves[b]) = _depositBatch(b);
            picks[b] = _pick8(b);
        }
    }

    /// releaseBatch, per-item proofs, 8 random leaves from each of 4 deposit batches (sorted by batch: 4 words).
    function test_gas_releaseBatch32_fourDepositBatches() public {
        (IRemittanceEscrow.DepositItem[][] memory items, bytes32[][] memory leaves, uint256[][] memory picks) =
            _fourBatches();
        RemittanceEscrowMerkle.ReleaseItem[] memory rel = new RemittanceEscrowMerkle.ReleaseItem[](N);
        for (uint256 b; b < 4; ++b) {
            for (uint256 k; k < 8; ++k) {
                uint256 i = picks[b][k];
                rel[b * 8 + k] = RemittanceEscrowMerkle.ReleaseItem({
                    terms: items[b][i].terms,
                    preimage: _preimage(b * N + i),
                    index: i,
                    proof: MerkleHelpers.proof(leaves[b], i)
                });
            }
        }
        _cold();
        vm.prank(relayer);
        uint256 done = escrow.releaseBatch(rel);
        _record("release_batch_32_proofs_4batches", abi.encodeCall(escrow.releaseBatch, (rel)), N);
        assertEq(done, N);
    }

    /// releaseGroups: the whole deposit batch released together: no proof hashes at all.
    function test_gas_releaseGroups32_wholeBatch() public {
        (IRemittanceEscrow.DepositItem[] memory items,) = _depositBatch(0);
        RemittanceEscrowMerkle.ReleaseGroup[] memory groups = new RemittanceEscrowMerkle.ReleaseGroup[](1);
        groups[0].leaves = new RemittanceEscrowMerkle.GroupLeaf[](N);
        for (uint256 i; i < N; ++i) {
            groups[0].leaves[i] =
                RemittanceEscrowMerkle.GroupLeaf({terms: items[i].terms, preimage: _preimage(i), index: i});
        }
        groups[0].proof = new bytes32[](0);
        _cold();
        vm.prank(relayer);
        uint256 done = escrow.releaseGroups(groups);
        _record("release_groups_32_whole_batch", abi.encodeCall(escrow.releaseGroups, (groups)), N);
        assertEq(done, N);
        assertEq(token.balanceOf(settlement), 32 * 100e6 + 1_230_000 * (31 * 32 / 2));
    }

    /// releaseGroups: 8 random leaves from each of 4 deposit batches, one multiproof per batch.
    function test_gas_releaseGroups32_fourBatches() public {
        (IRemittanceEscrow.DepositItem[][] memory items, bytes32[][] memory leaves, uint256[][] memory picks) =
            _fourBatches();
        RemittanceEscrowMerkle.ReleaseGroup[] memory groups = new RemittanceEscrowMerkle.ReleaseGroup[](4);
        uint256 hashes;
        for (uint256 b; b < 4; ++b) {
            groups[b].leaves = new RemittanceEscrowMerkle.GroupLeaf[](8);
            for (uint256 k; k < 8; ++k) {
                uint256 i = picks[b][k];
                groups[b].leaves[k] = RemittanceEscrowMerkle.GroupLeaf({
                    terms: items[b][i].terms, preimage: _preimage(b * N + i), index: i
                });
            }
            groups[b].proof = MerkleHelpers.multiProof(leaves[b], picks[b]);
            hashes += groups[b].proof.length;
        }
        _cold();
        vm.prank(relayer);
        uint256 done = escrow.releaseGroups(groups);
        _record("release_groups_32_4batches", abi.encodeCall(escrow.releaseGroups, (groups)), N);
        assertEq(done, N);
        if (_reporting()) vm.snapshotValue(group(), "release_groups_32_4batches.proof_hashes", hashes);
    }

    // ---------------------------------------------------------------- refund, cancel

    function test_gas_refund() public {
        (IRemittanceEscrow.DepositItem[] memory items, bytes32[] memory leaves) = _depositBatch(0);
        uint256 i = 13;
        bytes32[] memory proof = MerkleHelpers.proof(leaves, i);
        vm.warp(items[i].terms.expiry);
        _cold();
        vm.prank(relayer);
        escrow.refund(items[i].terms, i, proof);
        _record("refund_1_from_batch", abi.encodeCall(escrow.refund, (items[i].terms, i, proof)), 1);
    }

    function test_gas_cancel() public {
        (IRemittanceEscrow.DepositItem[] memory items, bytes32[] memory leaves) = _depositBatch(0);
        uint256 i = 13;
        bytes32[] memory proof = MerkleHelpers.proof(leaves, i);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(partnerSignerKey, escrow.declineDigest(leaves[i]));
        bytes memory sig = abi.encodePacked(r, s, v);
        _cold();
        vm.prank(relayer);
        escrow.cancel(items[i].terms, i, proof, sig);
        _record("cancel_1_from_batch", abi.encodeCall(escrow.cancel, (items[i].terms, i, proof, sig)), 1);
    }

    // ---------------------------------------------------------------- lean / packed levers

    function test_gas_depositBatchPackedLean32() public {
        IRemittanceEscrow.DepositItem[] memory items = _depositItems(N, 0);
        bytes memory data = _packed(items);
        _cold();
        vm.prank(relayer);
        (uint256 done, bytes32 root) = escrow.depositBatchPackedLean(data);
        _record("deposit_batch_packed_lean_32", abi.encodeCall(escrow.depositBatchPackedLean, (data)), N);
        assertEq(done, N);
        assertEq(root, MerkleHelpers.root(_leaves(items)), "lean: same ids, same root");
    }

    /// Packed release group: header + leaves [index u8][sender 20][amount u96][expiry u40][preimage 32] + proof.
    function _packedGroup(
        IRemittanceEscrow.DepositItem[] memory items,
        uint256[] memory picks,
        uint256 termOffset,
        bytes32[] memory proof
    ) internal view returns (bytes memory g) {
        g = abi.encodePacked(
            bytes8(PARTNER), bytes20(settlement), bytes20(partnerSigner), uint8(picks.length), uint8(proof.length)
        );
        for (uint256 k; k < picks.length; ++k) {
            IRemittanceEscrow.Terms memory t = items[picks[k]].terms;
            g = abi.encodePacked(
                g,
                uint8(picks[k]),
                bytes20(t.sender),
                uint96(t.amount),
                uint40(t.expiry),
                _preimage(termOffset + picks[k])
            );
        }
        for (uint256 k; k < proof.length; ++k) {
            g = abi.encodePacked(g, proof[k]);
        }
    }

    function test_gas_releaseGroupsPacked32_wholeBatch() public {
        (IRemittanceEscrow.DepositItem[] memory items,) = _depositBatch(0);
        uint256[] memory all = new uint256[](N);
        for (uint256 i; i < N; ++i) {
            all[i] = i;
        }
        bytes memory data = abi.encodePacked(uint8(1), _packedGroup(items, all, 0, new bytes32[](0)));
        _cold();
        vm.prank(relayer);
        uint256 done = escrow.releaseGroupsPacked(data);
        _record("release_groups_packed_32_whole_batch", abi.encodeCall(escrow.releaseGroupsPacked, (data)), N);
        assertEq(done, N);
        assertEq(token.balanceOf(settlement), 32 * 100e6 + 1_230_000 * (31 * 32 / 2));
    }

    function test_gas_releaseGroupsPacked32_fourBatches() public {
        (IRemittanceEscrow.DepositItem[][] memory items, bytes32[][] memory leaves, uint256[][] memory picks) =
            _fourBatches();
        bytes memory data = abi.encodePacked(uint8(4));
        for (uint256 b; b < 4; ++b) {
            data = abi.encodePacked(
                data, _packedGroup(items[b], picks[b], b * N, MerkleHelpers.multiProof(leaves[b], picks[b]))
            );
        }
        _cold();
        vm.prank(relayer);
        uint256 done = escrow.releaseGroupsPacked(data);
        _record("release_groups_packed_32_4batches", abi.encodeCall(escrow.releaseGroupsPacked, (data)), N);
        assertEq(done, N);
    }

    /// Worst case for the per-item proof: 32 leaves from 32 different deposit batches (32 exit words).
    function test_gas_releaseGroupsPacked32_thirtyTwoBatches() public {
        for (uint256 i; i < N; ++i) {
            vm.prank(usdcAdmin);
            token.mint(senders[i], 100_000e6);
        }
        bytes memory data = abi.encodePacked(uint8(32));
        for (uint256 b; b < 32; ++b) {
            (IRemittanceEscrow.DepositItem[] memory items, bytes32[] memory leaves) = _depositBatch(b);
            uint256[] memory one = new uint256[](1);
            one[0] = (b * 7) % 32;
            data = abi.encodePacked(data, _packedGroup(items, one, b * N, MerkleHelpers.proof(leaves, one[0])));
        }
        _cold();
        vm.prank(relayer);
        uint256 done = escrow.releaseGroupsPacked(data);
        _record("release_groups_packed_32_32batches", abi.encodeCall(escrow.releaseGroupsPacked, (data)), N);
        assertEq(done, N);
    }

    /// Per-group cost: 1 vs 2 single-leaf groups (leaf 13 of batch 0, leaf 13 of batch 1), packed, 5-hash proofs.
    function _singleLeafGroups(uint256 groups) internal returns (bytes memory data) {
        data = abi.encodePacked(uint8(groups));
        for (uint256 b; b < groups; ++b) {
            (IRemittanceEscrow.DepositItem[] memory items, bytes32[] memory leaves) = _depositBatch(b);
            uint256[] memory one = new uint256[](1);
            one[0] = 13;
            data = abi.encodePacked(data, _packedGroup(items, one, b * N, MerkleHelpers.proof(leaves, 13)));
        }
    }

    function test_gas_releaseGroupsPacked_oneSingleLeafGroup() public {
        bytes memory data = _singleLeafGroups(1);
        _cold();
        vm.prank(relayer);
        assertEq(escrow.releaseGroupsPacked(data), 1);
        _record("release_groups_packed_1x1", abi.encodeCall(escrow.releaseGroupsPacked, (data)), 1);
    }

    function test_gas_releaseGroupsPacked_twoSingleLeafGroups() public {
        bytes memory data = _singleLeafGroups(2);
        _cold();
        vm.prank(relayer);
        assertEq(escrow.releaseGroupsPacked(data), 2);
        _record("release_groups_packed_2x1", abi.encodeCall(escrow.releaseGroupsPacked, (data)), 2);
    }

    function test_gas_depositBatchPackedLeanLogged32() public {
        IRemittanceEscrow.DepositItem[] memory items = _depositItems(N, 0);
        bytes memory data = _packed(items);
        _cold();
        vm.prank(relayer);
        (uint256 done,) = escrow.depositBatchPackedLeanLogged(data);
        _record("deposit_batch_packed_lean_logged_32", abi.encodeCall(escrow.depositBatchPackedLeanLogged, (data)), N);
        assertEq(done, N);
    }
}

contract GasMerkleEventsTest is GasMerkleBase {
    function itemEvents() internal pure override returns (bool) {
        return true;
    }

    function group() internal pure override returns (string memory) {
        return "MerkleGas_events";
    }
}

contract GasMerkleLightTest is GasMerkleBase {
    function itemEvents() internal pure override returns (bool) {
        return false;
    }

    function group() internal pure override returns (string memory) {
        return "MerkleGas_light";
    }
}
