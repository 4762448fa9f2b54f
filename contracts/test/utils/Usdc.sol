// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {CommonBase} from "forge-std/Base.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// The FiatTokenV2_2 (Circle's USDC) calls the tests use: set-up, minting, pause, blacklist and EIP-3009.
interface IFiatTokenV2_2 is IERC20 {
    function initialize(
        string calldata tokenName,
        string calldata tokenSymbol,
        string calldata tokenCurrency,
        uint8 tokenDecimals,
        address newMasterMinter,
        address newPauser,
        address newBlacklister,
        address newOwner
    ) external;
    function initializeV2(string calldata newName) external;
    function initializeV2_1(address lostAndFound) external;
    function initializeV2_2(address[] calldata accountsToBlacklist, string calldata newSymbol) external;
    function configureMinter(address minter, uint256 minterAllowedAmount) external returns (bool);
    function mint(address to, uint256 amount) external returns (bool);
    function pause() external;
    function unpause() external;
    function paused() external view returns (bool);
    function blacklist(address account) external;
    function unBlacklist(address account) external;
    function isBlacklisted(address account) external view returns (bool);
    function name() external view returns (string memory);
    function version() external view returns (string memory);
    function decimals() external view returns (uint8);
    function DOMAIN_SEPARATOR() external view returns (bytes32);
    function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;
    function cancelAuthorization(address authorizer, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external;
}

interface IFiatTokenProxy {
    function changeAdmin(address newAdmin) external;
}

/// Deploys Circle's USDC from the committed artifacts (contracts/artifacts/usdc, the pinned npm package's compiled
/// output; FiatTokenV2_2 is Solidity 0.6.12 and never compiled here), as wallet/src/usdc.rs does: the
/// SignatureChecker library, FiatTokenV2_2 with the library's address written over its link references, the
/// FiatTokenProxy in front of it, the admin handed to `proxyAdmin` (a transparent proxy's admin cannot use the
/// token), then initialize, initializeV2, initializeV2_1 and initializeV2_2. The caller (the test contract, or a
/// script's broadcaster) deploys and initializes; it then configures the minter as the master minter.
/// Needs read access to ./artifacts/usdc (foundry.toml fs_permissions).
abstract contract UsdcDeployer is CommonBase {
    string internal constant USDC_NAME = "USD Coin";
    string internal constant USDC_SYMBOL = "USDC";
    string internal constant USDC_ARTIFACTS = "artifacts/usdc/";

    struct UsdcRoles {
        address owner;
        address masterMinter;
        address pauser;
        address blacklister;
        address lostAndFound;
        address proxyAdmin;
    }

    function deployUsdc(UsdcRoles memory roles) internal returns (IFiatTokenV2_2 usdc) {
        address checker = _create(_creationCode("SignatureChecker", address(0)));
        address implementation = _create(_creationCode("FiatTokenV2_2", checker));
        address proxy =
            _create(abi.encodePacked(_creationCode("FiatTokenProxy", address(0)), abi.encode(implementation)));
        IFiatTokenProxy(proxy).changeAdmin(roles.proxyAdmin);
        usdc = IFiatTokenV2_2(proxy);
        usdc.initialize(
            USDC_NAME, USDC_SYMBOL, "USD", 6, roles.masterMinter, roles.pauser, roles.blacklister, roles.owner
        );
        usdc.initializeV2(USDC_NAME);
        usdc.initializeV2_1(roles.lostAndFound);
        usdc.initializeV2_2(new address[](0), USDC_SYMBOL);
    }

    /// An artifact's creation code, with `library` written over each of its link references (FiatTokenV2_2 has
    /// two, to SignatureChecker; the others have none).
    function _creationCode(string memory name, address library_) internal view returns (bytes memory) {
        string memory json = vm.readFile(string.concat(USDC_ARTIFACTS, name, ".json"));
        bytes memory hexCode = bytes(vm.parseJsonString(json, ".bytecode"));
        string memory refs = ".linkReferences['contracts/util/SignatureChecker.sol'].SignatureChecker";
        if (vm.keyExistsJson(json, refs)) {
            require(library_ != address(0), "UsdcDeployer: the library's address is needed");
            bytes memory addr = bytes(vm.toString(library_)); // "0x" + 40 hex digits
            for (uint256 k; vm.keyExistsJson(json, string.concat(refs, "[", vm.toString(k), "]")); ++k) {
                string memory place = string.concat(refs, "[", vm.toString(k), "]");
                require(vm.parseJsonUint(json, string.concat(place, ".length")) == 20, "UsdcDeployer: bad link");
                uint256 at = 2 + vm.parseJsonUint(json, string.concat(place, ".start")) * 2; // after "0x"
                for (uint256 j; j < 40; ++j) {
                    hexCode[at + j] = addr[2 + j];
                }
            }
        }
        return vm.parseBytes(string(hexCode));
    }

    function _create(bytes memory code) internal returns (address deployed) {
        assembly ("memory-safe") {
            deployed := create(0, add(code, 0x20), mload(code))
        }
        require(deployed != address(0), "UsdcDeployer: deployment failed");
    }
}
