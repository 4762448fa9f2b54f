// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {TestStablecoin} from "../src/TestStablecoin.sol";
import {RemittanceEscrow} from "../src/RemittanceEscrow.sol";
import {IRemittanceEscrow} from "../src/interfaces/IRemittanceEscrow.sol";

/// All-in transaction gas of each escrow operation, side by side with a plain ERC-20 transfer; the source of
/// contracts/GAS.md. Regenerate with scripts/gas-report.sh, which runs this file with FOUNDRY_PROFILE=gas.
///
/// Method: the `gas` profile sets `isolate = true`, so forge executes every top-level call of a test as its own
/// transaction (fresh warm/cold access sets, intrinsic gas, calldata gas, refunds), and `vm.snapshotGasLastCall`
/// returns what the chain would charge for that transaction. scripts/gas-report.sh --anvil cross-checks these figures
/// against the receipts of the same transactions on a real anvil node. The report also splits each figure into
/// 21,000 intrinsic + calldata (4 gas per zero byte, 16 per non-zero byte of the exact calldata, EIP-2028) +
/// execution, and checks the EIP-7623 calldata floor (21,000 + 10 x (zero bytes + 4 x non-zero bytes)), which does
/// not bind for these operations.
/// (Without isolation the callee-frame gas from `vm.snapshotGasLastCall` misses the first, cold access to the token
/// account, 2,500 gas per transaction, because the test has touched it before.)
///
/// The state is the steady state of a running node: every sender is a distinct account that keeps a balance after
/// paying (cold non-zero to non-zero balance write), the escrow already holds other open remittances, and the
/// partner's settlement address and the plain transfer's recipient start with a zero balance (the expensive case).
/// Amounts (~100 USD in 6-decimal base units), expiries, 12-character pickup codes and signatures are realistic, so
/// the calldata has realistic zero / non-zero byte counts.
///
/// Under the default profile the same operations run as ordinary tests (they must succeed) and nothing is recorded.
contract GasTest is Test {
    string internal constant GROUP = "RemittanceGas";
    uint256 internal constant N = 32;
    uint64 internal constant PARTNER = 7;
    bytes32 internal constant RECEIVE_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );

    TestStablecoin internal token;
    RemittanceEscrow internal escrow;
    address internal owner = makeAddr("owner");
    address internal relayer = makeAddr("relayer");
    address internal settlement = makeAddr("partner-settlement");
    address[] internal senders;
    uint256[] internal keys;

    function setUp() public {
        vm.warp(1_750_000_000);
        vm.prank(owner);
        token = new TestStablecoin();
        escrow = new RemittanceEscrow(address(token), owner, owner);
        vm.prank(owner);
        escrow.setPartner(PARTNER, settlement);
        for (uint256 i; i < N + 2; ++i) {
            (address account, uint256 k) = makeAddrAndKey(string.concat("sender-", vm.toString(i)));
            senders.push(account);
            keys.push(k);
            vm.prank(owner);
            token.mint(account, 10_000e6);
        }
        // The escrow already holds an open remittance (its balance slot is non-zero, as in steady state).
        (IRemittanceEscrow.Terms memory t, IRemittanceEscrow.Authorization memory a) = _signed(N + 1, 999);
        escrow.deposit(t, a);
    }

    // ---------------------------------------------------------------- helpers

    function _preimage(uint256 i) internal pure returns (bytes32) {
        // A 12-character Crockford base32 pickup code, ASCII, right-padded with zero bytes.
        bytes memory alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
        bytes memory code = new bytes(12);
        uint256 x = uint256(keccak256(abi.encode("code", i)));
        for (uint256 j; j < 12; ++j) {
            code[j] = alphabet[x % 32];
            x /= 32;
        }
        // forge-lint: disable-next-line(unsafe-typecast)
        return bytes32(code);
    }

    function _terms(uint256 s, uint256 i) internal view returns (IRemittanceEscrow.Terms memory) {
        return IRemittanceEscrow.Terms({
            sender: senders[s],
            amount: 100e6 + i * 1_230_000,
            partnerId: PARTNER,
            expiry: uint64(block.timestamp + 7 days),
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

    function test_gas_plainTransfer() public {
        address fresh = makeAddr("fresh-recipient");
        _cold();
        vm.prank(senders[0]);
        bool ok = token.transfer(fresh, 100e6);
        _record("erc20_transfer_fresh", abi.encodeCall(token.transfer, (fresh, 100e6)), 1);
        assertTrue(ok);
    }

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
        uint256 done = escrow.depositBatch(items);
        assertEq(done, N);
        _record("deposit_batch_32", abi.encodeCall(escrow.depositBatch, (items)), N);
    }

    function test_gas_release() public {
        (IRemittanceEscrow.Terms memory t, IRemittanceEscrow.Authorization memory a) = _signed(0, 0);
        escrow.deposit(t, a);
        _cold();
        vm.prank(relayer);
        escrow.release(t, _preimage(0));
        _record("release_1", abi.encodeCall(escrow.release, (t, _preimage(0))), 1);
    }

    function test_gas_releaseBatch32() public {
        IRemittanceEscrow.DepositItem[] memory deposits = _depositItems(N, 0);
        escrow.depositBatch(deposits);
        IRemittanceEscrow.ReleaseItem[] memory items = new IRemittanceEscrow.ReleaseItem[](N);
        for (uint256 i; i < N; ++i) {
            items[i] = IRemittanceEscrow.ReleaseItem({terms: deposits[i].terms, preimage: _preimage(i)});
        }
        _cold();
        vm.prank(relayer);
        uint256 done = escrow.releaseBatch(items);
        _record("release_batch_32", abi.encodeCall(escrow.releaseBatch, (items)), N);
        assertEq(done, N);
        assertEq(token.balanceOf(settlement), 32 * 100e6 + 1_230_000 * (31 * 32 / 2));
    }

    function test_gas_refund() public {
        (IRemittanceEscrow.Terms memory t, IRemittanceEscrow.Authorization memory a) = _signed(0, 0);
        escrow.deposit(t, a);
        vm.warp(t.expiry);
        _cold();
        vm.prank(relayer);
        escrow.refund(t);
        _record("refund_1", abi.encodeCall(escrow.refund, (t)), 1);
    }
}
