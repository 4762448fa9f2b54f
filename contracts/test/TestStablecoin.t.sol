// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {TestStablecoin} from "../src/TestStablecoin.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {IERC3009, IERC3009Cancel} from "@openzeppelin/contracts/interfaces/draft-IERC3009.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// A smart-contract wallet that accepts signatures by its owner key (ERC-1271).
contract OwnerWallet is IERC1271 {
    address public immutable owner;

    constructor(address owner_) {
        owner = owner_;
    }

    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, signature);
        return err == ECDSA.RecoverError.NoError && signer == owner ? IERC1271.isValidSignature.selector : bytes4(0);
    }
}

contract TestStablecoinTest is Test {
    // USDC's type hashes, as literals (FiatTokenV2 / EIP-3009).
    bytes32 constant USDC_TRANSFER = 0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267;
    bytes32 constant USDC_RECEIVE = 0xd099cc98ef71107a616c4f0f941f04c322d8e254fe26b3c6668db87aae413de8;
    bytes32 constant USDC_CANCEL = 0x158b0a9edf7a828aad02f63cd515c68ef2f50ba807396f6d12842833a1597429;
    bytes32 constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");

    TestStablecoin token;
    address owner = makeAddr("owner");
    address alice;
    uint256 aliceKey;
    address bob = makeAddr("bob");

    function setUp() public {
        vm.warp(1_750_000_000);
        vm.prank(owner);
        token = new TestStablecoin();
        (alice, aliceKey) = makeAddrAndKey("alice");
        vm.prank(owner);
        token.mint(alice, 1_000e6);
    }

    function _digest(bytes32 structHash) internal view returns (bytes32) {
        return keccak256(abi.encodePacked(hex"1901", token.DOMAIN_SEPARATOR(), structHash));
    }

    function _sign(
        uint256 key,
        bytes32 typehash,
        address from,
        address to,
        uint256 value,
        uint256 a,
        uint256 b,
        bytes32 n
    ) internal view returns (uint8 v, bytes32 r, bytes32 s) {
        return vm.sign(key, _digest(keccak256(abi.encode(typehash, from, to, value, a, b, n))));
    }

    // ---------------------------------------------------------------- metadata

    function test_metadata() public view {
        assertEq(token.name(), "Test Dollar");
        assertEq(token.symbol(), "TUSD");
        assertEq(token.decimals(), 6);
        assertEq(token.owner(), owner);
        assertEq(token.minter(), owner);
        assertEq(token.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(), USDC_TRANSFER);
        assertEq(token.RECEIVE_WITH_AUTHORIZATION_TYPEHASH(), USDC_RECEIVE);
        assertEq(token.CANCEL_AUTHORIZATION_TYPEHASH(), USDC_CANCEL);
    }

    function test_eip712Domain() public view {
        (bytes1 fields, string memory name, string memory version, uint256 chainId, address verifying,,) =
            token.eip712Domain();
        assertEq(fields, hex"0f");
        assertEq(name, "Test Dollar");
        assertEq(version, "1");
        assertEq(chainId, block.chainid);
        assertEq(verifying, address(token));
        bytes32 expected = keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("Test Dollar"),
                keccak256("1"),
                block.chainid,
                address(token)
            )
        );
        assertEq(token.DOMAIN_SEPARATOR(), expected);
    }

    // ---------------------------------------------------------------- minting

    function test_mint_onlyMinter() public {
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.NotMinter.selector, bob));
        vm.prank(bob);
        token.mint(bob, 1);
    }

    function test_setMinter() public {
        vm.expectEmit(address(token));
        emit TestStablecoin.MinterSet(bob);
        vm.prank(owner);
        token.setMinter(bob);
        vm.prank(bob);
        token.mint(bob, 5);
        assertEq(token.balanceOf(bob), 5);
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.NotMinter.selector, owner));
        vm.prank(owner);
        token.mint(owner, 1);
    }

    function test_setMinter_onlyOwner() public {
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, bob));
        vm.prank(bob);
        token.setMinter(bob);
    }

    function test_ownable2Step() public {
        vm.prank(owner);
        token.transferOwnership(bob);
        assertEq(token.owner(), owner);
        assertEq(token.pendingOwner(), bob);
        vm.prank(bob);
        token.acceptOwnership();
        assertEq(token.owner(), bob);
    }

    // ---------------------------------------------------------------- EIP-2612

    function test_permit() public {
        uint256 deadline = block.timestamp + 1 hours;
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(
            aliceKey, _digest(keccak256(abi.encode(PERMIT_TYPEHASH, alice, bob, 7e6, token.nonces(alice), deadline)))
        );
        token.permit(alice, bob, 7e6, deadline, v, r, s);
        assertEq(token.allowance(alice, bob), 7e6);
        assertEq(token.nonces(alice), 1);
    }

    // ---------------------------------------------------------------- EIP-3009

    function test_transferWithAuthorization() public {
        bytes32 nonce = keccak256("n1");
        uint256 before_ = block.timestamp + 60;
        (uint8 v, bytes32 r, bytes32 s) = _sign(aliceKey, USDC_TRANSFER, alice, bob, 10e6, 0, before_, nonce);
        vm.expectEmit(address(token));
        emit IERC3009.AuthorizationUsed(alice, nonce);
        vm.prank(makeAddr("anyone"));
        token.transferWithAuthorization(alice, bob, 10e6, 0, before_, nonce, v, r, s);
        assertEq(token.balanceOf(bob), 10e6);
        assertTrue(token.authorizationState(alice, nonce));
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.AuthorizationUsedOrCanceled.selector, alice, nonce));
        token.transferWithAuthorization(alice, bob, 10e6, 0, before_, nonce, v, r, s);
    }

    function test_receiveWithAuthorization() public {
        bytes32 nonce = keccak256("n2");
        uint256 before_ = block.timestamp + 60;
        (uint8 v, bytes32 r, bytes32 s) = _sign(aliceKey, USDC_RECEIVE, alice, bob, 3e6, 0, before_, nonce);
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.CallerNotPayee.selector, address(this), bob));
        token.receiveWithAuthorization(alice, bob, 3e6, 0, before_, nonce, v, r, s);
        vm.prank(bob);
        token.receiveWithAuthorization(alice, bob, 3e6, 0, before_, nonce, v, r, s);
        assertEq(token.balanceOf(bob), 3e6);
        assertTrue(token.authorizationState(alice, nonce));
    }

    function test_receiveSignature_notUsableAsTransfer() public {
        bytes32 nonce = keccak256("n3");
        uint256 before_ = block.timestamp + 60;
        (uint8 v, bytes32 r, bytes32 s) = _sign(aliceKey, USDC_RECEIVE, alice, bob, 3e6, 0, before_, nonce);
        vm.expectRevert(TestStablecoin.InvalidSignature.selector);
        token.transferWithAuthorization(alice, bob, 3e6, 0, before_, nonce, v, r, s);
    }

    function test_authorization_window() public {
        bytes32 nonce = keccak256("n4");
        uint256 after_ = block.timestamp + 10;
        uint256 before_ = block.timestamp + 20;
        (uint8 v, bytes32 r, bytes32 s) = _sign(aliceKey, USDC_TRANSFER, alice, bob, 1, after_, before_, nonce);
        vm.warp(after_); // not yet: valid only strictly after validAfter
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.AuthorizationNotYetValid.selector, after_));
        token.transferWithAuthorization(alice, bob, 1, after_, before_, nonce, v, r, s);
        vm.warp(before_); // too late: valid only strictly before validBefore
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.AuthorizationExpired.selector, before_));
        token.transferWithAuthorization(alice, bob, 1, after_, before_, nonce, v, r, s);
        vm.warp(after_ + 1);
        token.transferWithAuthorization(alice, bob, 1, after_, before_, nonce, v, r, s);
        assertEq(token.balanceOf(bob), 1);
    }

    function test_authorization_wrongSigner() public {
        (, uint256 malloryKey) = makeAddrAndKey("mallory");
        bytes32 nonce = keccak256("n5");
        (uint8 v, bytes32 r, bytes32 s) = _sign(malloryKey, USDC_TRANSFER, alice, bob, 1, 0, type(uint256).max, nonce);
        vm.expectRevert(TestStablecoin.InvalidSignature.selector);
        token.transferWithAuthorization(alice, bob, 1, 0, type(uint256).max, nonce, v, r, s);
        // Garbage signature (ecrecover fails).
        vm.expectRevert(TestStablecoin.InvalidSignature.selector);
        token.transferWithAuthorization(alice, bob, 1, 0, type(uint256).max, nonce, 27, bytes32(0), bytes32(0));
    }

    function test_authorization_zeroFromRejected() public {
        vm.expectRevert(TestStablecoin.InvalidSignature.selector);
        token.transferWithAuthorization(address(0), bob, 0, 0, type(uint256).max, bytes32(0), 27, bytes32(0), 0);
    }

    function test_cancelAuthorization() public {
        bytes32 nonce = keccak256("n6");
        (uint8 cv, bytes32 cr, bytes32 cs) =
            vm.sign(aliceKey, _digest(keccak256(abi.encode(USDC_CANCEL, alice, nonce))));
        vm.expectEmit(address(token));
        emit IERC3009Cancel.AuthorizationCanceled(alice, nonce);
        token.cancelAuthorization(alice, nonce, cv, cr, cs);
        assertTrue(token.authorizationState(alice, nonce));
        (uint8 v, bytes32 r, bytes32 s) = _sign(aliceKey, USDC_TRANSFER, alice, bob, 1, 0, type(uint256).max, nonce);
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.AuthorizationUsedOrCanceled.selector, alice, nonce));
        token.transferWithAuthorization(alice, bob, 1, 0, type(uint256).max, nonce, v, r, s);
        vm.expectRevert(abi.encodeWithSelector(TestStablecoin.AuthorizationUsedOrCanceled.selector, alice, nonce));
        token.cancelAuthorization(alice, nonce, cv, cr, cs);
    }

    function test_cancelAuthorization_badSignature() public {
        bytes32 nonce = keccak256("n7");
        (, uint256 malloryKey) = makeAddrAndKey("mallory");
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(malloryKey, _digest(keccak256(abi.encode(USDC_CANCEL, alice, nonce))));
        vm.expectRevert(TestStablecoin.InvalidSignature.selector);
        token.cancelAuthorization(alice, nonce, v, r, s);
        assertFalse(token.authorizationState(alice, nonce));
    }

    function test_erc1271Authorizer() public {
        OwnerWallet wallet = new OwnerWallet(alice);
        vm.prank(owner);
        token.mint(address(wallet), 5e6);
        bytes32 nonce = keccak256("n8");
        (uint8 v, bytes32 r, bytes32 s) =
            _sign(aliceKey, USDC_TRANSFER, address(wallet), bob, 5e6, 0, type(uint256).max, nonce);
        token.transferWithAuthorization(address(wallet), bob, 5e6, 0, type(uint256).max, nonce, v, r, s);
        assertEq(token.balanceOf(bob), 5e6);
        // A signature the wallet rejects.
        (, uint256 malloryKey) = makeAddrAndKey("mallory");
        bytes32 nonce2 = keccak256("n9");
        (v, r, s) = _sign(malloryKey, USDC_TRANSFER, address(wallet), bob, 0, 0, type(uint256).max, nonce2);
        vm.expectRevert(TestStablecoin.InvalidSignature.selector);
        token.transferWithAuthorization(address(wallet), bob, 0, 0, type(uint256).max, nonce2, v, r, s);
    }

    function testFuzz_transferWithAuthorization(uint256 value, uint256 validAfter, uint256 validBefore, bytes32 nonce)
        public
    {
        value = bound(value, 0, token.balanceOf(alice));
        validAfter = bound(validAfter, 0, block.timestamp - 1);
        validBefore = bound(validBefore, block.timestamp + 1, type(uint256).max);
        (uint8 v, bytes32 r, bytes32 s) =
            _sign(aliceKey, USDC_TRANSFER, alice, bob, value, validAfter, validBefore, nonce);
        // Any other value is rejected.
        vm.expectRevert(TestStablecoin.InvalidSignature.selector);
        token.transferWithAuthorization(alice, bob, value + 1, validAfter, validBefore, nonce, v, r, s);
        token.transferWithAuthorization(alice, bob, value, validAfter, validBefore, nonce, v, r, s);
        assertEq(token.balanceOf(bob), value);
        assertTrue(token.authorizationState(alice, nonce));
    }
}
