// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// An ERC-1271 wallet owned by a key: a signature is valid when the owner signed the hash. `burn` loop iterations
/// (~25 gas each) run first, so a test can make the check as expensive as it likes (0: a plain contract wallet).
/// `valid` can be switched off to make every signature invalid (a revoked or misbehaving wallet).
contract KeyWallet {
    address public immutable owner;
    uint256 public immutable burn;
    bool public valid = true;

    constructor(address owner_, uint256 burn_) {
        owner = owner_;
        burn = burn_;
    }

    function setValid(bool valid_) external {
        require(msg.sender == owner, "KeyWallet: not the owner");
        valid = valid_;
    }

    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        uint256 x;
        for (uint256 i; i < burn; ++i) {
            unchecked {
                x = x * 31 + i;
            }
        }
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, signature);
        bool ok = valid && err == ECDSA.RecoverError.NoError && signer == owner && x != 1;
        return ok ? bytes4(0x1626ba7e) : bytes4(0xffffffff);
    }
}
