// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {Vm} from "forge-std/Vm.sol";
import {IRemittanceEscrow} from "../../src/interfaces/IRemittanceEscrow.sol";

/// One deposit: terms and the sender's EIP-3009 authorization (the unpacked form tests build).
struct DepositItem {
    IRemittanceEscrow.Terms terms;
    IRemittanceEscrow.Authorization auth;
}

/// One release: terms and the claim preimage.
struct ReleaseItem {
    IRemittanceEscrow.Terms terms;
    bytes32 preimage;
}

/// The off-chain side of the escrow's deposit batches, as the node computes it (node/src/chain/merkle.rs): the
/// positional tree (leaf i = id of item i if deposited, else zero; zero-padded to a power of two; node =
/// keccak256(left ‖ right)), a single-leaf proof and the multiproof `releaseBatch` consumes.
library Merkle {
    function hashPair(bytes32 a, bytes32 b) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(a, b));
    }

    /// levels[0] = padded leaves, levels[last] = [root].
    function levels(bytes32[] memory leaves) internal pure returns (bytes32[][] memory lv) {
        uint256 width = 1;
        uint256 depth;
        while (width < leaves.length) {
            width <<= 1;
            ++depth;
        }
        lv = new bytes32[][](depth + 1);
        lv[0] = new bytes32[](width);
        for (uint256 i; i < leaves.length; ++i) {
            lv[0][i] = leaves[i];
        }
        for (uint256 d = 1; d <= depth; ++d) {
            uint256 w = lv[d - 1].length / 2;
            lv[d] = new bytes32[](w);
            for (uint256 i; i < w; ++i) {
                lv[d][i] = hashPair(lv[d - 1][2 * i], lv[d - 1][2 * i + 1]);
            }
        }
    }

    function root(bytes32[] memory leaves) internal pure returns (bytes32) {
        bytes32[][] memory lv = levels(leaves);
        return lv[lv.length - 1][0];
    }

    /// Sibling hashes of leaf `index`, leaf level first.
    function proof(bytes32[] memory leaves, uint256 index) internal pure returns (bytes32[] memory p) {
        bytes32[][] memory lv = levels(leaves);
        p = new bytes32[](lv.length - 1);
        for (uint256 d; d < p.length; ++d) {
            p[d] = lv[d][index ^ 1];
            index >>= 1;
        }
    }

    /// Multiproof for strictly ascending `indexes`, in the order the contract consumes hashes.
    function multiProof(bytes32[] memory leaves, uint256[] memory indexes) internal pure returns (bytes32[] memory) {
        bytes32[][] memory lv = levels(leaves);
        bytes32[] memory out = new bytes32[](64);
        uint256 p;
        uint256[] memory idx = new uint256[](indexes.length);
        for (uint256 k; k < idx.length; ++k) {
            idx[k] = indexes[k];
        }
        uint256 count = idx.length;
        for (uint256 d; d + 1 < lv.length; ++d) {
            uint256 o;
            uint256 k;
            while (k < count) {
                uint256 ix = idx[k];
                if (ix & 1 == 0 && k + 1 < count && idx[k + 1] == ix + 1) {
                    k += 2;
                } else {
                    out[p++] = lv[d][ix ^ 1];
                    ++k;
                }
                idx[o++] = ix >> 1;
            }
            count = o;
        }
        bytes32[] memory res = new bytes32[](p);
        for (uint256 k; k < p; ++k) {
            res[k] = out[k];
        }
        return res;
    }
}

/// The escrow's packed batch layouts (IRemittanceEscrow.depositBatch / releaseBatch).
library Packing {
    /// items[from..to) as a packed deposit batch of one section: its header (partner, settlement, signer) is
    /// items[from]'s.
    function deposits(DepositItem[] memory items, uint256 from, uint256 to) internal pure returns (bytes memory) {
        return bytes.concat(hex"01", section(items, from, to));
    }

    /// All of `items` as one packed deposit batch, a new section wherever the partner terms change.
    function depositSections(DepositItem[] memory items) internal pure returns (bytes memory out) {
        uint256 sections;
        uint256 from;
        while (from < items.length) {
            uint256 to = from + 1;
            while (to < items.length && samePartner(items[from].terms, items[to].terms)) ++to;
            out = bytes.concat(out, section(items, from, to));
            ++sections;
            from = to;
        }
        out = bytes.concat(abi.encodePacked(uint8(sections)), out);
    }

    function section(DepositItem[] memory items, uint256 from, uint256 to) internal pure returns (bytes memory out) {
        IRemittanceEscrow.Terms memory h = items[from].terms;
        out = abi.encodePacked(h.partnerId, h.settlement, h.partnerSigner, uint8(to - from));
        for (uint256 i = from; i < to; ++i) {
            out = bytes.concat(out, depositItem(items[i]));
        }
    }

    function samePartner(IRemittanceEscrow.Terms memory a, IRemittanceEscrow.Terms memory b)
        internal
        pure
        returns (bool)
    {
        return a.partnerId == b.partnerId && a.settlement == b.settlement && a.partnerSigner == b.partnerSigner;
    }

    /// The `Deposited` event's word for a leaf: sender << 96 | amount.
    function senderAmount(IRemittanceEscrow.Terms memory t) internal pure returns (uint256) {
        return (uint256(uint160(t.sender)) << 96) | t.amount;
    }

    function depositItem(DepositItem memory it) internal pure returns (bytes memory) {
        IRemittanceEscrow.Terms memory t = it.terms;
        IRemittanceEscrow.Authorization memory a = it.auth;
        require(t.amount <= type(uint96).max && t.expiry <= type(uint40).max, "test: terms do not fit the layout");
        require(a.validAfter <= type(uint40).max && a.validBefore <= type(uint40).max, "test: window too wide");
        return abi.encodePacked(
            t.sender,
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

    function groupHeader(IRemittanceEscrow.Terms memory t, uint256 m, uint256 proofLen)
        internal
        pure
        returns (bytes memory)
    {
        return abi.encodePacked(t.partnerId, t.settlement, t.partnerSigner, uint8(m), uint8(proofLen));
    }

    function groupLeaf(uint256 index, IRemittanceEscrow.Terms memory t, bytes32 preimage)
        internal
        pure
        returns (bytes memory)
    {
        require(t.amount <= type(uint96).max && t.expiry <= type(uint40).max, "test: terms do not fit the layout");
        return abi.encodePacked(uint8(index), t.sender, uint96(t.amount), uint40(t.expiry), preimage);
    }
}

/// Where each deposited id sits (its batch root, leaf index and the batch's leaves), learnt from the escrow's
/// `Deposited` events as the node's indexer learns it, and the exits built from that: single proofs, refund items,
/// packed grouped releases.
abstract contract BatchBook {
    bytes32 internal constant DEPOSITED_TOPIC = keccak256("Deposited(bytes32,bytes32[],uint256[])");

    function _bookEscrow() internal view virtual returns (address);

    function _bookId(IRemittanceEscrow.Terms memory t) internal view virtual returns (bytes32);

    /// Batch root and leaf index of ids deposited by a batch (a single deposit is its own root, index 0: unset).
    mapping(bytes32 id => bytes32 root) internal batchRootOf;
    mapping(bytes32 id => uint256 index) internal leafIndexOf;
    mapping(bytes32 root => bytes32[] leaves) internal batchLeaves;

    /// Where `id` sits: its batch root, leaf index and the batch's leaves. An id no batch deposited is placed as a
    /// batch of one (what `deposit` makes); the escrow answers None / BadProof for one never deposited.
    function locate(bytes32 id) internal view returns (bytes32 root, uint256 index, bytes32[] memory leaves) {
        root = batchRootOf[id];
        if (root == bytes32(0)) {
            leaves = new bytes32[](1);
            leaves[0] = id;
            return (id, 0, leaves);
        }
        return (root, leafIndexOf[id], batchLeaves[root]);
    }

    function proofOf(bytes32 id) internal view returns (uint256 index, bytes32[] memory proof) {
        bytes32[] memory leaves;
        (, index, leaves) = locate(id);
        proof = Merkle.proof(leaves, index);
    }

    /// Registers every `Deposited` batch event of the escrow in `logs` (as the node's indexer does).
    function recordBatches(Vm.Log[] memory logs) internal {
        for (uint256 i; i < logs.length; ++i) {
            Vm.Log memory l = logs[i];
            if (l.emitter != _bookEscrow() || l.topics.length != 2 || l.topics[0] != DEPOSITED_TOPIC) continue;
            bytes32 root = l.topics[1];
            (bytes32[] memory leaves,) = abi.decode(l.data, (bytes32[], uint256[]));
            if (leaves.length == 1) continue; // a batch of one: its own root, index 0
            delete batchLeaves[root];
            for (uint256 k; k < leaves.length; ++k) {
                batchLeaves[root].push(leaves[k]);
                if (leaves[k] != bytes32(0)) {
                    batchRootOf[leaves[k]] = root;
                    leafIndexOf[leaves[k]] = k;
                }
            }
        }
    }

    function samePartnerTerms(IRemittanceEscrow.Terms memory a, IRemittanceEscrow.Terms memory b)
        internal
        pure
        returns (bool)
    {
        return Packing.samePartner(a, b);
    }

    function exitItems(IRemittanceEscrow.Terms[] memory items)
        internal
        view
        returns (IRemittanceEscrow.ExitItem[] memory exits)
    {
        exits = new IRemittanceEscrow.ExitItem[](items.length);
        for (uint256 i; i < items.length; ++i) {
            (uint256 index, bytes32[] memory proof) = proofOf(_bookId(items[i]));
            exits[i] = IRemittanceEscrow.ExitItem(items[i], index, proof);
        }
    }

    /// The packed releaseBatch of `items` in their order: a new group starts where the deposit batch or the partner
    /// terms change or the leaf index does not ascend (a repeated item lands in a group of its own).
    function packReleases(ReleaseItem[] memory items) internal view returns (bytes memory out) {
        uint256 groups;
        uint256 i;
        while (i < items.length) {
            (bytes memory group, uint256 next) = packGroup(items, i);
            out = bytes.concat(out, group);
            ++groups;
            i = next;
        }
        out = bytes.concat(abi.encodePacked(uint8(groups)), out);
    }

    /// The group that starts at items[i], and the index of the first item after it.
    function packGroup(ReleaseItem[] memory items, uint256 i) internal view returns (bytes memory group, uint256 j) {
        (bytes32 root, uint256 index, bytes32[] memory leaves) = locate(_bookId(items[i].terms));
        uint256[] memory indexes = new uint256[](items.length - i);
        bytes memory leafBytes = Packing.groupLeaf(index, items[i].terms, items[i].preimage);
        indexes[0] = index;
        uint256 m = 1;
        for (j = i + 1; j < items.length; ++j) {
            (bytes32 r, uint256 ix,) = locate(_bookId(items[j].terms));
            if (r != root || ix <= indexes[m - 1] || !samePartnerTerms(items[i].terms, items[j].terms)) break;
            indexes[m++] = ix;
            leafBytes = bytes.concat(leafBytes, Packing.groupLeaf(ix, items[j].terms, items[j].preimage));
        }
        assembly ("memory-safe") {
            mstore(indexes, m)
        }
        bytes32[] memory proof = Merkle.multiProof(leaves, indexes);
        group = bytes.concat(Packing.groupHeader(items[i].terms, m, proof.length), leafBytes, abi.encodePacked(proof));
    }
}
