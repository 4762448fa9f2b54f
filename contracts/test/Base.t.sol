// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Test} from "forge-std/Test.sol";
import {Vm} from "forge-std/Vm.sol";
import {RemittanceEscrow} from "../src/RemittanceEscrow.sol";
import {IRemittanceEscrow} from "../src/interfaces/IRemittanceEscrow.sol";
import {IFiatTokenV2_2, UsdcDeployer} from "./utils/Usdc.sol";
import {DepositItem, ReleaseItem, Merkle, Packing, BatchBook} from "./utils/Batches.sol";

/// Shared fixture: Circle's USDC (FiatTokenV2_2 behind FiatTokenProxy, from the committed artifacts) with its own
/// master minter, minter, pauser and blacklister, so tests can pause USDC and blacklist parties; an escrow with
/// lock bounds; two registered partners (settlement address + signer key each); helpers to build terms, sign
/// EIP-3009 authorizations and partner Decline signatures; and the off-chain side of the deposit batches (where each
/// id sits, its proofs, the packed layouts) behind helpers named like the escrow's functions, so tests read as the
/// node drives the escrow.
abstract contract EscrowBase is Test, UsdcDeployer, BatchBook {
    bytes32 internal constant RECEIVE_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 internal constant TRANSFER_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 internal constant CANCEL_TYPEHASH = keccak256("CancelAuthorization(address authorizer,bytes32 nonce)");

    uint64 internal constant PARTNER = 1;
    uint64 internal constant PARTNER_B = 2;
    uint64 internal constant MIN_LOCK = 1 hours;
    uint64 internal constant MAX_LOCK = 30 days;
    uint256 internal constant INITIAL = 1_000_000e6;

    IFiatTokenV2_2 internal token;
    RemittanceEscrow internal escrow;

    // USDC's roles (none of them is the proxy admin, which cannot use the token).
    address internal usdcOwner = makeAddr("usdc-owner");
    address internal masterMinter = makeAddr("usdc-master-minter");
    address internal minter = makeAddr("usdc-minter");
    address internal pauser = makeAddr("usdc-pauser");
    address internal blacklister = makeAddr("usdc-blacklister");
    address internal proxyAdmin = makeAddr("usdc-proxy-admin");

    address internal owner = makeAddr("owner");
    address internal guardian = makeAddr("guardian");
    address internal relayer = makeAddr("relayer");
    address internal settlement = makeAddr("settlement");
    address internal settlementB = makeAddr("settlementB");
    address internal partnerSigner;
    uint256 internal partnerSignerKey;
    address internal partnerSignerB;
    uint256 internal partnerSignerKeyB;

    uint256 internal senderKey;
    address internal sender;

    function setUp() public virtual {
        vm.warp(1_750_000_000);
        token = deployUsdc(
            UsdcRoles({
                owner: usdcOwner,
                masterMinter: masterMinter,
                pauser: pauser,
                blacklister: blacklister,
                lostAndFound: usdcOwner,
                proxyAdmin: proxyAdmin
            })
        );
        vm.prank(masterMinter);
        token.configureMinter(minter, type(uint128).max);
        escrow = new RemittanceEscrow(address(token), owner, guardian, MIN_LOCK, MAX_LOCK);
        (partnerSigner, partnerSignerKey) = makeAddrAndKey("partner-signer");
        (partnerSignerB, partnerSignerKeyB) = makeAddrAndKey("partner-signer-B");
        vm.startPrank(owner);
        escrow.setPartner(PARTNER, settlement, partnerSigner);
        escrow.setPartner(PARTNER_B, settlementB, partnerSignerB);
        vm.stopPrank();
        (sender, senderKey) = makeAddrAndKey("sender");
        mint(sender, INITIAL);
    }

    // ---------------------------------------------------------------- USDC roles

    function mint(address to, uint256 amount) internal {
        vm.prank(minter);
        token.mint(to, amount);
    }

    function pauseUsdc() internal {
        vm.prank(pauser);
        token.pause();
    }

    function unpauseUsdc() internal {
        vm.prank(pauser);
        token.unpause();
    }

    function blacklist(address account) internal {
        vm.prank(blacklister);
        token.blacklist(account);
    }

    function unBlacklist(address account) internal {
        vm.prank(blacklister);
        token.unBlacklist(account);
    }

    /// USDC's revert data for a failed `require(cond, reason)`.
    function usdcError(string memory reason) internal pure returns (bytes memory) {
        return abi.encodeWithSignature("Error(string)", reason);
    }

    // ---------------------------------------------------------------- terms

    /// Remesa's claim preimage: 16 secret random salt bytes, the 12-character pickup code's ASCII, 4 zero bytes.
    function preimageFor(bytes16 salt, bytes12 code) internal pure returns (bytes32) {
        return bytes32(abi.encodePacked(salt, code, bytes4(0)));
    }

    function preimageOf(uint256 seed) internal pure returns (bytes32) {
        bytes32 r = keccak256(abi.encode("pickup", seed));
        bytes memory alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"; // Crockford base32
        bytes12 code;
        uint256 x = uint256(r);
        for (uint256 j; j < 12; ++j) {
            code |= bytes12(alphabet[x % 32]) >> (8 * j);
            x >>= 5;
        }
        return preimageFor(bytes16(keccak256(abi.encode("salt", seed))), code);
    }

    function settlementOf(uint64 partnerId) internal view returns (address) {
        return partnerId == PARTNER_B ? settlementB : settlement;
    }

    function signerOf(uint64 partnerId) internal view returns (address) {
        return partnerId == PARTNER_B ? partnerSignerB : partnerSigner;
    }

    function signerKeyOf(uint64 partnerId) internal view returns (uint256) {
        return partnerId == PARTNER_B ? partnerSignerKeyB : partnerSignerKey;
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
            settlement: settlementOf(partnerId),
            partnerSigner: signerOf(partnerId),
            claimHash: keccak256(abi.encodePacked(preimageOf(seed)))
        });
    }

    /// The documented id (IRemittanceEscrow): computed here independently of the contract.
    function idOf(IRemittanceEscrow.Terms memory t) internal view returns (bytes32) {
        return keccak256(
            abi.encode(
                address(escrow), t.sender, t.amount, t.partnerId, t.expiry, t.settlement, t.partnerSigner, t.claimHash
            )
        );
    }

    // ---------------------------------------------------------------- signatures

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

    /// `authorizer` (key `key`) cancels its unused EIP-3009 authorization `nonce` on the token itself.
    function cancelOnToken(uint256 key, address authorizer, bytes32 nonce) internal {
        bytes32 structHash = keccak256(abi.encode(CANCEL_TYPEHASH, authorizer, nonce));
        (uint8 v, bytes32 r, bytes32 s) =
            vm.sign(key, keccak256(abi.encodePacked(hex"1901", token.DOMAIN_SEPARATOR(), structHash)));
        token.cancelAuthorization(authorizer, nonce, v, r, s);
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

    /// The escrow's EIP-712 domain ("Remesa Escrow", "3"), computed here independently of the contract.
    function escrowDomainSeparator() internal view returns (bytes32) {
        return keccak256(
            abi.encode(
                keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
                keccak256("Remesa Escrow"),
                keccak256("3"),
                block.chainid,
                address(escrow)
            )
        );
    }

    function declineDigestOf(bytes32 id) internal view returns (bytes32) {
        return keccak256(
            abi.encodePacked(
                hex"1901", escrowDomainSeparator(), keccak256(abi.encode(keccak256("Decline(bytes32 id)"), id))
            )
        );
    }

    /// A partner signer's Decline(id) signature, 65 bytes r ‖ s ‖ v.
    function signDecline(uint256 key, bytes32 id) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, declineDigestOf(id));
        return abi.encodePacked(r, s, v);
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

    // ---------------------------------------------------------------- deposit batches

    /// Deposits `items` with one packed `depositBatch` call (a section per run of items with equal partner terms)
    /// and records where each id landed.
    function depositBatch(DepositItem[] memory items) internal returns (uint256 deposited) {
        if (items.length == 0) return depositPacked(hex"00");
        return depositPacked(Packing.depositSections(items));
    }

    /// All of `items` (one partner) in one packed depositBatch call with this gas limit.
    function depositBatchGas(DepositItem[] memory items, uint256 gas) internal returns (uint256 deposited) {
        bytes memory packed = Packing.deposits(items, 0, items.length);
        vm.recordLogs();
        (deposited,) = escrow.depositBatch{gas: gas}(packed);
        recordBatches(vm.getRecordedLogs());
    }

    /// The Deposited event's leaves of a batch of one (`deposit`): root = id.
    function singleLeaf(bytes32 id) internal pure returns (bytes32[] memory leaves) {
        leaves = new bytes32[](1);
        leaves[0] = id;
    }

    /// The Deposited event's sender-amount words of a batch of one.
    function singleItem(IRemittanceEscrow.Terms memory t) internal pure returns (uint256[] memory items) {
        items = new uint256[](1);
        items[0] = Packing.senderAmount(t);
    }

    /// One packed depositBatch call; records the batch. Returns how many were deposited.
    function depositPacked(bytes memory packed) internal returns (uint256 deposited) {
        (deposited,,) = depositPackedLogs(packed);
    }

    /// One packed depositBatch call: deposited count, root, and every log it emitted (recorded here, so a test
    /// that wants the logs takes them from this return value, not from vm.getRecordedLogs).
    function depositPackedLogs(bytes memory packed)
        internal
        returns (uint256 deposited, bytes32 root, Vm.Log[] memory logs)
    {
        vm.recordLogs();
        (deposited, root) = escrow.depositBatch(packed);
        logs = vm.getRecordedLogs();
        recordBatches(logs);
    }

    function statusOf(bytes32 id) internal view returns (IRemittanceEscrow.Status) {
        (uint256 index, bytes32[] memory proof) = proofOf(id);
        return escrow.statusOf(id, index, proof);
    }

    function release(IRemittanceEscrow.Terms memory t, bytes32 preimage) internal {
        (uint256 index, bytes32[] memory proof) = proofOf(idOf(t));
        escrow.release(t, preimage, index, proof);
    }

    function refund(IRemittanceEscrow.Terms memory t) internal {
        (uint256 index, bytes32[] memory proof) = proofOf(idOf(t));
        escrow.refund(t, index, proof);
    }

    function cancel(IRemittanceEscrow.Terms memory t, bytes memory declineSignature) internal {
        (uint256 index, bytes32[] memory proof) = proofOf(idOf(t));
        escrow.cancel(t, index, proof, declineSignature);
    }

    function refundBatch(IRemittanceEscrow.Terms[] memory items) internal returns (uint256) {
        return escrow.refundBatch(exitItems(items));
    }

    function releaseBatch(ReleaseItem[] memory items) internal returns (uint256) {
        return escrow.releaseBatch(packReleases(items));
    }

    function _bookEscrow() internal view override returns (address) {
        return address(escrow);
    }

    function _bookId(IRemittanceEscrow.Terms memory t) internal view override returns (bytes32) {
        return idOf(t);
    }
}
