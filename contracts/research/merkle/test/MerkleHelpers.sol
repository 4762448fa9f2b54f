// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// Off-chain side of the Merkle-batch escrow, as the node / a refund helper would compute it: the positional tree
/// (leaf i = id of calldata item i if deposited else 0, zero-padded to a power of two, node = keccak(l ‖ r)), a
/// single-leaf proof, and the multiproof consumed by RemittanceEscrowMerkle._locateMulti.
library MerkleHelpers {
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
