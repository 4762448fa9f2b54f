// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Script} from "forge-std/Script.sol";
import {RemittanceEscrow} from "../src/RemittanceEscrow.sol";
import {IRemittanceEscrow} from "../src/interfaces/IRemittanceEscrow.sol";
import {IFiatTokenV2_2, UsdcDeployer} from "../test/utils/Usdc.sol";
import {DepositItem, Packing} from "../test/utils/Batches.sol";

/// Cross-check of contracts/GAS.md on a real chain: deploys Circle's USDC from the committed artifacts (as
/// test/Gas.t.sol does) and sends the same operations as real transactions to an anvil node, so their receipts'
/// gasUsed (intrinsic, calldata and execution, as the chain charges them) can be compared with the forge-computed
/// all-in figures. Run by `scripts/gas-report.sh`, which starts anvil at the fixed timestamp GENESIS.
contract GasCheck is Script, UsdcDeployer {
    uint256 internal constant N = 32;
    uint64 internal constant PARTNER = 7;
    uint64 internal constant PARTNER_SINGLE = 8;
    /// anvil's genesis timestamp (scripts/gas-report.sh passes it with --timestamp).
    uint64 internal constant GENESIS = 1_750_000_000;
    /// Fixed (not derived from the clock), so the calldata and thus the receipts are the same on every run; within
    /// the escrow's lock bounds as long as the script runs within a day of GENESIS on the anvil clock.
    uint64 internal constant EXPIRY = GENESIS + 7 days;
    uint256 internal constant VALID_BEFORE = GENESIS + 1 days;
    bytes32 internal constant RECEIVE_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );

    IFiatTokenV2_2 internal token;
    RemittanceEscrow internal escrow;
    address[] internal senders;
    uint256[] internal keys;
    address internal signer;

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

    function _signed(uint256 s, uint256 i, uint64 partnerId, address settlement)
        internal
        view
        returns (IRemittanceEscrow.Terms memory t, IRemittanceEscrow.Authorization memory a)
    {
        t = IRemittanceEscrow.Terms({
            sender: senders[s],
            amount: 100e6 + i * 1_230_000,
            partnerId: partnerId,
            expiry: EXPIRY,
            settlement: settlement,
            partnerSigner: signer,
            claimHash: keccak256(abi.encodePacked(_preimage(i)))
        });
        a.validBefore = VALID_BEFORE;
        bytes32 structHash = keccak256(
            abi.encode(RECEIVE_TYPEHASH, t.sender, address(escrow), t.amount, 0, a.validBefore, escrow.remittanceId(t))
        );
        (a.v, a.r, a.s) = vm.sign(keys[s], keccak256(abi.encodePacked(hex"1901", token.DOMAIN_SEPARATOR(), structHash)));
    }

    function run() external {
        uint256 deployerKey = vm.envUint("DEPLOYER_KEY");
        address deployer = vm.addr(deployerKey);
        for (uint256 i; i < N + 2; ++i) {
            (address account, uint256 k) = makeAddrAndKey(string.concat("sender-", vm.toString(i)));
            senders.push(account);
            keys.push(k);
        }
        signer = makeAddr("partner-signer");
        // Two partners with fresh settlement addresses, so the batch and the single release each pay the first
        // (zero to non-zero) balance write, as in test/Gas.t.sol.
        address settlement = makeAddr("partner-settlement");
        address settlementSingle = makeAddr("partner-settlement-single");
        vm.startBroadcast(deployerKey);
        // The deployer holds every USDC role; the proxy admin is another address (it could not use the token).
        token = deployUsdc(
            UsdcRoles({
                owner: deployer,
                masterMinter: deployer,
                pauser: deployer,
                blacklister: deployer,
                lostAndFound: deployer,
                proxyAdmin: makeAddr("usdc-proxy-admin")
            })
        );
        token.configureMinter(deployer, type(uint128).max);
        escrow = new RemittanceEscrow(address(token), deployer, deployer, 1 hours, 30 days);
        escrow.setPartner(PARTNER, settlement, signer);
        escrow.setPartner(PARTNER_SINGLE, settlementSingle, signer);
        token.mint(deployer, 10_000e6);
        for (uint256 i; i < N + 2; ++i) {
            token.mint(senders[i], 10_000e6);
        }
        (IRemittanceEscrow.Terms memory seedT, IRemittanceEscrow.Authorization memory seedA) =
            _signed(N + 1, 999, PARTNER, settlement);
        escrow.deposit(seedT, seedA);

        // 1. plain USDC transfer to a fresh address (from the deployer, which keeps a balance, like the senders)
        require(token.transfer(makeAddr("fresh-recipient"), 100e6), "transfer");
        // 2. single deposit, 3. batch of 32 (senders 1..32), 4. batch release, 5. single release, in this order
        (IRemittanceEscrow.Terms memory t0, IRemittanceEscrow.Authorization memory a0) =
            _signed(0, 0, PARTNER_SINGLE, settlementSingle);
        escrow.deposit(t0, a0);
        DepositItem[] memory items = new DepositItem[](N);
        for (uint256 i; i < N; ++i) {
            (items[i].terms, items[i].auth) = _signed(i + 1, i + 1, PARTNER, settlement);
        }
        escrow.depositBatch(Packing.deposits(items, 0, N));
        // The whole batch in one group: every leaf given, so no proof hashes.
        bytes memory rel = bytes.concat(hex"01", Packing.groupHeader(items[0].terms, N, 0));
        for (uint256 i; i < N; ++i) {
            rel = bytes.concat(rel, Packing.groupLeaf(i, items[i].terms, _preimage(i + 1)));
        }
        escrow.releaseBatch(rel);
        escrow.release(t0, _preimage(0), 0, new bytes32[](0));
        vm.stopBroadcast();
    }
}
