// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {TestStablecoin} from "../src/TestStablecoin.sol";
import {RemittanceEscrow} from "../src/RemittanceEscrow.sol";
import {IRemittanceEscrow} from "../src/interfaces/IRemittanceEscrow.sol";

/// Shared fixture: a token, an escrow, a registered partner, and helpers to build terms and sign authorizations.
abstract contract EscrowBase is Test {
    bytes32 internal constant RECEIVE_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 internal constant TRANSFER_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 internal constant CANCEL_TYPEHASH = keccak256("CancelAuthorization(address authorizer,bytes32 nonce)");

    uint64 internal constant PARTNER = 1;
    uint64 internal constant PARTNER_B = 2;

    TestStablecoin internal token;
    RemittanceEscrow internal escrow;

    address internal owner = makeAddr("owner");
    address internal guardian = makeAddr("guardian");
    address internal relayer = makeAddr("relayer");
    address internal settlement = makeAddr("settlement");
    address internal settlementB = makeAddr("settlementB");

    uint256 internal senderKey;
    address internal sender;

    function setUp() public virtual {
        vm.warp(1_750_000_000);
        vm.prank(owner);
        token = new TestStablecoin();
        escrow = new RemittanceEscrow(address(token), owner, guardian);
        vm.startPrank(owner);
        escrow.setPartner(PARTNER, settlement);
        escrow.setPartner(PARTNER_B, settlementB);
        vm.stopPrank();
        (sender, senderKey) = makeAddrAndKey("sender");
        vm.prank(owner);
        token.mint(sender, 1_000_000e6);
    }

    function preimageOf(uint256 seed) internal pure returns (bytes32) {
        // 12 ASCII characters right-padded with zero bytes, like a pickup code.
        return bytes32(uint256(keccak256(abi.encode("pickup", seed))) << 160);
    }

    function termsFor(address from, uint256 amount, uint64 partnerId, uint256 seed)
        internal
        view
        returns (IRemittanceEscrow.Terms memory t)
    {
        t = IRemittanceEscrow.Terms({
            sender: from,
            amount: amount,
            partnerId: partnerId,
            expiry: uint64(block.timestamp + 1 days),
            claimHash: keccak256(abi.encodePacked(preimageOf(seed)))
        });
    }

    function idOf(IRemittanceEscrow.Terms memory t) internal view returns (bytes32) {
        return keccak256(abi.encode(address(escrow), t.sender, t.amount, t.partnerId, t.expiry, t.claimHash));
    }

    function digest(
        bytes32 typehash,
        address from,
        address to,
        uint256 value,
        uint256 after_,
        uint256 before_,
        bytes32 n
    ) internal view returns (bytes32) {
        bytes32 structHash = keccak256(abi.encode(typehash, from, to, value, after_, before_, n));
        return keccak256(abi.encodePacked(hex"1901", token.DOMAIN_SEPARATOR(), structHash));
    }

    function signAuth(uint256 key, IRemittanceEscrow.Terms memory t)
        internal
        view
        returns (IRemittanceEscrow.Authorization memory a)
    {
        a.validAfter = 0;
        a.validBefore = block.timestamp + 1 hours;
        (a.v, a.r, a.s) =
            vm.sign(key, digest(RECEIVE_TYPEHASH, t.sender, address(escrow), t.amount, 0, a.validBefore, idOf(t)));
    }

    function depositOne(uint256 amount, uint64 partnerId, uint256 seed)
        internal
        returns (IRemittanceEscrow.Terms memory t, bytes32 id)
    {
        t = termsFor(sender, amount, partnerId, seed);
        IRemittanceEscrow.Authorization memory a = signAuth(senderKey, t);
        vm.prank(relayer);
        id = escrow.deposit(t, a);
    }
}
