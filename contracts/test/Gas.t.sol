// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {RemittanceEscrow} from "../src/RemittanceEscrow.sol";
import {IRemittanceEscrow} from "../src/interfaces/IRemittanceEscrow.sol";
import {IFiatTokenV2_2, UsdcDeployer} from "./utils/Usdc.sol";
import {DepositItem, ReleaseItem, Merkle, Packing} from "./utils/Batches.sol";

/// All-in transaction gas of each escrow operation on Circle's USDC (FiatTokenV2_2 behind FiatTokenProxy, deployed
/// from the committed artifacts), side by side with a plain USDC transfer; the source of contracts/GAS.md.
/// Regenerate with scripts/gas-report.sh, which runs this file with FOUNDRY_PROFILE=gas.
///
/// Method: the `gas` profile sets `isolate = true`, so forge executes every top-level call of a test as its own
/// transaction (fresh warm/cold access sets, intrinsic gas, calldata gas, refunds), and `vm.snapshotGasLastCall`
/// returns what the chain would charge for that transaction. scripts/gas-report.sh cross-checks these figures against
/// the receipts of the same transactions on a real anvil node (script/GasCheck.s.sol). The report also splits each
/// figure into 21,000 intrinsic + calldata (4 gas per zero byte, 16 per non-zero byte of the exact calldata,
/// EIP-2028) + execution, and checks the EIP-7623 calldata floor (21,000 + 10 x (zero bytes + 4 x non-zero bytes)).
///
/// The state is the steady state of a running node: every sender is a distinct account that keeps a balance after
/// paying (cold non-zero to non-zero balance write), the escrow already holds other open remittances, and the
/// partner's settlement address and the plain transfer's recipient start with a zero balance (the expensive case).
/// Amounts (~100 USD in 6-decimal base units), expiries, salted pickup-code preimages and signatures are realistic,
/// so the calldata has realistic zero / non-zero byte counts.
///
/// Under the default profile the same operations run as ordinary tests (they must succeed) and nothing is recorded.
contract GasTest is Test, UsdcDeployer {
    string internal constant GROUP = "RemittanceGas";
    uint256 internal constant N = 32;
    uint64 internal constant PARTNER = 7;
    bytes32 internal constant RECEIVE_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );

    IFiatTokenV2_2 internal token;
    RemittanceEscrow internal escrow;
    address internal usdcAdmin = makeAddr("usdc-admin");
    address internal owner = makeAddr("owner");
    address internal relayer = makeAddr("relayer");
    address internal settlement = makeAddr("partner-settlement");
    address internal partnerSigner;
    uint256 internal partnerSignerKey;
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
        escrow = new RemittanceEscrow(address(token), owner, owner, 1 hours, 30 days);
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
        // The escrow already holds an open remittance (its balance slot is non-zero, as in steady state).
        (IRemittanceEscrow.Terms memory t, IRemittanceEscrow.Authorization memory a) = _signed(N + 1, 999);
        escrow.deposit(t, a);
    }

    // ---------------------------------------------------------------- helpers

    /// Remesa's preimage: 16 random salt bytes, a 12-character Crockford base32 pickup code's ASCII, 4 zero bytes.
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

    function _depositItems(uint256 n, uint256 offset) internal view returns (DepositItem[] memory items) {
        items = new DepositItem[](n);
        for (uint256 i; i < n; ++i) {
            (items[i].terms, items[i].auth) = _signed(i, offset + i);
        }
    }

    /// Deposits n remittances (senders 0.., preimages offset..) in one packed batch; returns the batch's leaves.
    function _depositBatch(uint256 n, uint256 offset)
        internal
        returns (DepositItem[] memory items, bytes32[] memory leaves)
    {
        items = _depositItems(n, offset);
        (uint256 done, bytes32 root) = escrow.depositBatch(Packing.deposits(items, 0, n));
        assertEq(done, n);
        leaves = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            leaves[i] = escrow.remittanceId(items[i].terms);
        }
        assertEq(root, Merkle.root(leaves));
    }

    /// One packed release group: leaves `indexes` of the batch `leaves` (terms from `items`, preimages offset..).
    function _group(DepositItem[] memory items, bytes32[] memory leaves, uint256[] memory indexes, uint256 offset)
        internal
        pure
        returns (bytes memory g)
    {
        bytes32[] memory proof = Merkle.multiProof(leaves, indexes);
        g = Packing.groupHeader(items[0].terms, indexes.length, proof.length);
        for (uint256 k; k < indexes.length; ++k) {
            uint256 i = indexes[k];
            g = bytes.concat(g, Packing.groupLeaf(i, items[i].terms, _preimage(offset + i)));
        }
        g = bytes.concat(g, abi.encodePacked(proof));
    }

    function _range(uint256 from, uint256 count, uint256 stride) internal pure returns (uint256[] memory r) {
        r = new uint256[](count);
        for (uint256 k; k < count; ++k) {
            r[k] = from + k * stride;
        }
    }

    function _cold() internal {
        vm.cool(address(escrow));
        vm.cool(address(token));
    }

    function _reporting() internal view returns (bool) {
        return keccak256(bytes(vm.envOr("FOUNDRY_PROFILE", string("default")))) == keccak256("gas");
    }

    /// Under the gas profile: records the last call's transaction gas, its calldata gas and EIP-7623 floor.
    function _record(string memory name, bytes memory data, uint256 count) internal {
        if (!_reporting()) return;
        uint256 txGas = vm.snapshotGasLastCall(GROUP, string.concat(name, ".tx"));
        uint256 zeros;
        for (uint256 i; i < data.length; ++i) {
            if (data[i] == 0) ++zeros;
        }
        uint256 nonZeros = data.length - zeros;
        uint256 calldataGas = zeros * 4 + nonZeros * 16;
        uint256 floor = 21_000 + 10 * (zeros + 4 * nonZeros);
        assertGt(txGas, 21_000 + calldataGas, "not run isolated: use FOUNDRY_PROFILE=gas (isolate = true)");
        vm.snapshotValue(GROUP, string.concat(name, ".calldata"), calldataGas);
        vm.snapshotValue(GROUP, string.concat(name, ".floor"), floor);
        vm.snapshotValue(GROUP, string.concat(name, ".count"), count);
    }

    // ---------------------------------------------------------------- measurements

    /// The baseline: a plain USDC transfer to a fresh address, from an account that keeps a balance.
    function test_gas_usdcTransfer() public {
        address fresh = makeAddr("fresh-recipient");
        _cold();
        vm.prank(senders[0]);
        bool ok = token.transfer(fresh, 100e6);
        _record("usdc_transfer_fresh", abi.encodeCall(token.transfer, (fresh, 100e6)), 1);
        assertTrue(ok);
    }

    function test_gas_deposit() public {
        (IRemittanceEscrow.Terms memory t, IRemittanceEscrow.Authorization memory a) = _signed(0, 0);
        _cold();
        vm.prank(relayer);
        escrow.deposit(t, a);
        _record("usdc_deposit_1", abi.encodeCall(escrow.deposit, (t, a)), 1);
    }

    function test_gas_depositBatch32() public {
        DepositItem[] memory items = _depositItems(N, 0);
        bytes memory packed = Packing.deposits(items, 0, N);
        _cold();
        vm.prank(relayer);
        (uint256 done,) = escrow.depositBatch(packed);
        assertEq(done, N);
        _record("usdc_deposit_batch_32", abi.encodeCall(escrow.depositBatch, (packed)), N);
    }

    function test_gas_release() public {
        (IRemittanceEscrow.Terms memory t, IRemittanceEscrow.Authorization memory a) = _signed(0, 0);
        escrow.deposit(t, a);
        bytes32[] memory none = new bytes32[](0);
        _cold();
        vm.prank(relayer);
        escrow.release(t, _preimage(0), 0, none);
        _record("usdc_release_1", abi.encodeCall(escrow.release, (t, _preimage(0), 0, none)), 1);
        assertEq(token.balanceOf(settlement), t.amount);
    }

    /// One remittance of a deposit batch of 32 released alone (a proof of 5 sibling hashes).
    function test_gas_releaseOneOfBatch() public {
        (DepositItem[] memory items, bytes32[] memory leaves) = _depositBatch(N, 0);
        bytes32[] memory proof = Merkle.proof(leaves, 5);
        IRemittanceEscrow.Terms memory t = items[5].terms;
        _cold();
        vm.prank(relayer);
        escrow.release(t, _preimage(5), 5, proof);
        _record("usdc_release_1_of_batch_32", abi.encodeCall(escrow.release, (t, _preimage(5), 5, proof)), 1);
        assertEq(token.balanceOf(settlement), t.amount);
    }

    /// The whole deposit batch of 32 released in one transaction: one group, no proof hashes, one transfer.
    function test_gas_releaseBatch32() public {
        (DepositItem[] memory items, bytes32[] memory leaves) = _depositBatch(N, 0);
        bytes memory packed = bytes.concat(hex"01", _group(items, leaves, _range(0, N, 1), 0));
        _cold();
        vm.prank(relayer);
        uint256 done = escrow.releaseBatch(packed);
        _record("usdc_release_batch_32", abi.encodeCall(escrow.releaseBatch, (packed)), N);
        assertEq(done, N);
        assertEq(token.balanceOf(settlement), 32 * 100e6 + 1_230_000 * (31 * 32 / 2));
    }

    /// 32 releases drawn from 4 deposit batches of 32 (every fourth remittance of each): 4 groups with multiproofs.
    function test_gas_releaseBatch32From4() public {
        bytes memory packed = hex"04";
        for (uint256 b; b < 4; ++b) {
            (DepositItem[] memory items, bytes32[] memory leaves) = _depositBatch(N, 100 * (b + 1));
            packed = bytes.concat(packed, _group(items, leaves, _range(b, 8, 4), 100 * (b + 1)));
            if (b < 3) vm.warp(block.timestamp + 1); // other expiries, so other ids
        }
        _cold();
        vm.prank(relayer);
        uint256 done = escrow.releaseBatch(packed);
        _record("usdc_release_batch_32_from_4", abi.encodeCall(escrow.releaseBatch, (packed)), N);
        assertEq(done, N);
    }

    function test_gas_refund() public {
        (IRemittanceEscrow.Terms memory t, IRemittanceEscrow.Authorization memory a) = _signed(0, 0);
        escrow.deposit(t, a);
        bytes32[] memory none = new bytes32[](0);
        vm.warp(t.expiry);
        _cold();
        vm.prank(relayer);
        escrow.refund(t, 0, none);
        _record("usdc_refund_1", abi.encodeCall(escrow.refund, (t, 0, none)), 1);
    }

    /// A refund of one remittance of a deposit batch of 32 (a proof of 5 hashes), as a sender's wallet sends it.
    function test_gas_refundOneOfBatch() public {
        (DepositItem[] memory items, bytes32[] memory leaves) = _depositBatch(N, 0);
        bytes32[] memory proof = Merkle.proof(leaves, 9);
        IRemittanceEscrow.Terms memory t = items[9].terms;
        vm.warp(t.expiry);
        _cold();
        vm.prank(relayer);
        escrow.refund(t, 9, proof);
        _record("usdc_refund_1_of_batch_32", abi.encodeCall(escrow.refund, (t, 9, proof)), 1);
    }

    function test_gas_cancel() public {
        (IRemittanceEscrow.Terms memory t, IRemittanceEscrow.Authorization memory a) = _signed(0, 0);
        bytes32 id = escrow.deposit(t, a);
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(partnerSignerKey, escrow.declineDigest(id));
        bytes memory sig = abi.encodePacked(r, s, v);
        bytes32[] memory none = new bytes32[](0);
        _cold();
        vm.prank(relayer);
        escrow.cancel(t, 0, none, sig);
        _record("usdc_cancel_1", abi.encodeCall(escrow.cancel, (t, 0, none, sig)), 1);
    }
}
