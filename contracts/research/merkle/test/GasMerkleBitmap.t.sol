// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {RemittanceEscrowMerkleBitmap} from "../src/RemittanceEscrowMerkleBitmap.sol";
import {IRemittanceEscrow} from "../src/interfaces/IRemittanceEscrow.sol";
import {IFiatTokenV2_2, UsdcDeployer} from "./utils/Usdc.sol";
import {MerkleHelpers} from "./MerkleHelpers.sol";

/// Variant G (global leaf counter + global exit bitmap), lean packed paths, measured as test/Gas.t.sol measures v2
/// (FOUNDRY_PROFILE=gas, isolate = true; same state, amounts, expiries, preimages, real signatures).
contract GasMerkleBitmapTest is Test, UsdcDeployer {
    string internal constant GROUP = "MerkleGas_bitmap";
    uint256 internal constant N = 32;
    uint64 internal constant PARTNER = 7;
    bytes32 internal constant RECEIVE_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );

    IFiatTokenV2_2 internal token;
    RemittanceEscrowMerkleBitmap internal escrow;
    address internal usdcAdmin = makeAddr("usdc-admin");
    address internal owner = makeAddr("owner");
    address internal relayer = makeAddr("relayer");
    address internal settlement = makeAddr("partner-settlement");
    address internal partnerSigner;
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
        escrow = new RemittanceEscrowMerkleBitmap(address(token), owner, 1 hours, 30 days);
        (partnerSigner,) = makeAddrAndKey("partner-signer");
        vm.prank(owner);
        escrow.setPartner(PARTNER, settlement, partnerSigner);
        for (uint256 i; i < N + 2; ++i) {
            (address account, uint256 k) = makeAddrAndKey(string.concat("sender-", vm.toString(i)));
            senders.push(account);
            keys.push(k);
            vm.prank(usdcAdmin);
            token.mint(account, 200_000e6);
        }
        // The escrow already holds open remittances (a batch of one: balance and counter non-zero).
        IRemittanceEscrow.DepositItem[] memory one = new IRemittanceEscrow.DepositItem[](1);
        (one[0].terms, one[0].auth) = _signed(N + 1, 999);
        (uint256 done,,) = escrow.depositBatchPackedLean(_packed(one));
        assertEq(done, 1);
    }

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

    function _signed(uint256 s, uint256 i)
        internal
        view
        returns (IRemittanceEscrow.Terms memory t, IRemittanceEscrow.Authorization memory a)
    {
        t = IRemittanceEscrow.Terms({
            sender: senders[s],
            amount: 100e6 + i * 1_230_000,
            partnerId: PARTNER,
            expiry: uint64(block.timestamp + 7 days),
            settlement: settlement,
            partnerSigner: partnerSigner,
            claimHash: keccak256(abi.encodePacked(_preimage(i)))
        });
        bytes32 id = escrow.remittanceId(t);
        a.validBefore = block.timestamp + 1 hours;
        bytes32 structHash =
            keccak256(abi.encode(RECEIVE_TYPEHASH, t.sender, address(escrow), t.amount, 0, a.validBefore, id));
        (a.v, a.r, a.s) = vm.sign(keys[s], keccak256(abi.encodePacked(hex"1901", token.DOMAIN_SEPARATOR(), structHash)));
    }

    function _items(uint256 b) internal view returns (IRemittanceEscrow.DepositItem[] memory items) {
        items = new IRemittanceEscrow.DepositItem[](N);
        for (uint256 i; i < N; ++i) {
            (items[i].terms, items[i].auth) = _signed(i, b * N + i);
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

    function _deposit(uint256 b)
        internal
        returns (IRemittanceEscrow.DepositItem[] memory items, bytes32[] memory leaves, uint256 first)
    {
        items = _items(b);
        uint256 done;
        (done,, first) = escrow.depositBatchPackedLean(_packed(items));
        assertEq(done, N);
        leaves = _leaves(items);
    }

    function _group(
        IRemittanceEscrow.DepositItem[] memory items,
        uint256[] memory picks,
        uint256 termOffset,
        bytes32[] memory proof,
        uint256 first
    ) internal view returns (bytes memory g) {
        g = abi.encodePacked(
            bytes8(PARTNER),
            bytes20(settlement),
            bytes20(partnerSigner),
            uint8(picks.length),
            uint8(proof.length),
            uint40(first)
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

    function _record(string memory name, bytes memory data, uint256 count) internal {
        if (keccak256(bytes(vm.envOr("FOUNDRY_PROFILE", string("default")))) != keccak256("gas")) return;
        uint256 txGas = vm.snapshotGasLastCall(GROUP, string.concat(name, ".tx"));
        uint256 zeros;
        for (uint256 i; i < data.length; ++i) {
            if (data[i] == 0) ++zeros;
        }
        uint256 nonZeros = data.length - zeros;
        uint256 calldataGas = zeros * 4 + nonZeros * 16;
        assertGt(txGas, 21_000 + calldataGas, "not isolated");
        vm.snapshotValue(GROUP, string.concat(name, ".calldata"), calldataGas);
        vm.snapshotValue(GROUP, string.concat(name, ".floor"), 21_000 + 10 * (zeros + 4 * nonZeros));
        vm.snapshotValue(GROUP, string.concat(name, ".count"), count);
    }

    function test_gas_depositBatchPackedLean32() public {
        bytes memory data = _packed(_items(0));
        _cold();
        vm.prank(relayer);
        (uint256 done,,) = escrow.depositBatchPackedLean(data);
        _record("deposit_batch_packed_lean_32", abi.encodeCall(escrow.depositBatchPackedLean, (data)), N);
        assertEq(done, N);
    }

    /// Whole batch; the batch's exit word already has bits of earlier exits (not the first exit in its word).
    function test_gas_releaseGroupsPacked32_wholeBatch() public {
        (IRemittanceEscrow.DepositItem[] memory items,, uint256 first) = _deposit(0);
        uint256[] memory all = new uint256[](N);
        for (uint256 i; i < N; ++i) {
            all[i] = i;
        }
        _preExit(first);
        bytes memory data = abi.encodePacked(uint8(1), _group(items, all, 0, new bytes32[](0), first));
        _cold();
        vm.prank(relayer);
        uint256 done = escrow.releaseGroupsPacked(data);
        _record("release_groups_packed_32_whole_batch", abi.encodeCall(escrow.releaseGroupsPacked, (data)), N);
        assertEq(done, N);
    }

    function test_gas_releaseGroupsPacked32_fourBatches() public {
        bytes memory data = abi.encodePacked(uint8(4));
        for (uint256 b; b < 4; ++b) {
            (IRemittanceEscrow.DepositItem[] memory items, bytes32[] memory leaves, uint256 first) = _deposit(b);
            uint256[] memory picks = _pick8(b);
            data = abi.encodePacked(data, _group(items, picks, b * N, MerkleHelpers.multiProof(leaves, picks), first));
        }
        _preExit(1);
        _cold();
        vm.prank(relayer);
        uint256 done = escrow.releaseGroupsPacked(data);
        _record("release_groups_packed_32_4batches", abi.encodeCall(escrow.releaseGroupsPacked, (data)), N);
        assertEq(done, N);
    }

    /// One leaf from each of 32 consecutive deposit batches (1,024 leaves: 4-5 exit words).
    function test_gas_releaseGroupsPacked32_thirtyTwoBatches() public {
        bytes memory data = abi.encodePacked(uint8(32));
        for (uint256 b; b < 32; ++b) {
            (IRemittanceEscrow.DepositItem[] memory items, bytes32[] memory leaves, uint256 first) = _deposit(b);
            uint256[] memory one = new uint256[](1);
            one[0] = (b * 7) % 32;
            data = abi.encodePacked(data, _group(items, one, b * N, MerkleHelpers.proof(leaves, one[0]), first));
            if (b % 8 == 0) _preExit(first);
        }
        _cold();
        vm.prank(relayer);
        uint256 done = escrow.releaseGroupsPacked(data);
        _record("release_groups_packed_32_32batches", abi.encodeCall(escrow.releaseGroupsPacked, (data)), N);
        assertEq(done, N);
    }

    /// Steady state: some other leaf of the word holding `g` has exited already (its word is non-zero), as for
    /// all but the first exit of each 256 leaves (that one pays 17,100 more: ~67 per remittance amortised). A
    /// storage poke (bit 255, an unrelated leaf) stands in for that earlier exit.
    function _preExit(uint256 g) internal {
        bytes32 slot = keccak256(abi.encode(g >> 8, uint256(_exitedSlot())));
        if (uint256(vm.load(address(escrow), slot)) == 0) {
            vm.store(address(escrow), slot, bytes32(uint256(1) << 255)); // an unrelated earlier exit (bit 255)
        }
    }

    function _exitedSlot() internal pure returns (uint256) {
        // forge inspect ... storageLayout: _owner and _paused (0), leafCount (1), _partnerKey (2), _root (3), _exited (4).
        return 4;
    }
}
