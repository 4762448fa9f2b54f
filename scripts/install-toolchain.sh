#!/usr/bin/env bash
# Installs the pinned devnet toolchain into contracts/node_modules from contracts/package-lock.json:
# Foundry (anvil, forge, cast), solc-js behind the contracts/tools/solc wrapper, OpenZeppelin, forge-std.
# Idempotent: when node_modules already matches the lock it installs nothing and only checks the tools run.
# Needs node and npm. Usable from any directory.
#
#   scripts/install-toolchain.sh           install if needed, then verify
#   scripts/install-toolchain.sh --force   reinstall (npm ci) even if node_modules matches the lock
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
contracts="$root/contracts"

force=0
[[ "${1:-}" == "--force" ]] && force=1

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "install-toolchain: '$tool' is required (Node.js 18 or newer) but was not found on PATH" >&2
    exit 1
  fi
done

# Does contracts/node_modules hold exactly what the lock pins? npm writes node_modules/.package-lock.json on install;
# every locked package must be there with the same version and integrity (optional packages for other platforms
# are allowed to be absent).
lock_matches() {
  [[ -f "$contracts/node_modules/.package-lock.json" ]] || return 1
  node -e '
    const path = require("path");
    const dir = process.argv[1];
    const lock = require(path.join(dir, "package-lock.json")).packages || {};
    const have = require(path.join(dir, "node_modules", ".package-lock.json")).packages || {};
    for (const [name, want] of Object.entries(lock)) {
      if (name === "") continue;
      const got = have[name];
      if (!got) { if (want.optional) continue; process.exit(1); }
      if (got.version !== want.version || (want.integrity && got.integrity !== want.integrity)) process.exit(1);
    }
    for (const name of Object.keys(have)) if (!lock[name]) process.exit(1);
  ' "$contracts"
}

if [[ $force -eq 1 ]] || ! lock_matches; then
  echo "install-toolchain: npm ci in contracts/ (pinned by package-lock.json)"
  (cd "$contracts" && npm ci --no-audit --no-fund --loglevel=error)
else
  echo "install-toolchain: contracts/node_modules matches package-lock.json"
fi

# npm's .bin/{anvil,forge,cast} are small node launchers that always exit 0 (the child's exit status is dropped)
# and that leave anvil orphaned when they are killed with SIGKILL. Point them at the platform's native binaries
# (installed by the same packages), so `forge test` failures fail scripts and a killed anvil really stops.
bin="$contracts/node_modules/.bin"
for tool in anvil forge cast; do
  native="$(cd "$contracts" && node --input-type=module -e '
    import { createRequire } from "node:module";
    import { pathToFileURL } from "node:url";
    import path from "node:path";
    const tool = process.argv[1];
    const dir = path.join(process.cwd(), "node_modules", "@foundry-rs", tool);
    const c = await import(pathToFileURL(path.join(dir, "const.mjs")).href);
    const pkg = c.PLATFORM_SPECIFIC_PACKAGE_NAME(tool);
    if (!pkg) { console.error(`no ${tool} binary for ${process.platform}/${process.arch}`); process.exit(1); }
    const require = createRequire(path.join(dir, "package.json"));
    const bin = path.join(process.cwd(), "node_modules", ".bin");
    console.log(path.relative(bin, require.resolve(`${pkg}/bin/${c.BINARY_NAME(tool)}`)));
  ' "$tool")"
  [[ -x "$bin/$native" ]] || chmod +x "$bin/$native"
  if [[ "$(readlink "$bin/$tool")" != "$native" ]]; then
    ln -s "$native" "$bin/.$tool.tmp.$$"
    mv -f "$bin/.$tool.tmp.$$" "$bin/$tool"
    echo "install-toolchain: $tool -> native binary ($native)"
  fi
done
if "$bin/forge" no-such-subcommand >/dev/null 2>&1; then
  echo "install-toolchain: $bin/forge does not report failures (exit status 0 for a bad command)" >&2
  exit 1
fi

# Verify every tool actually runs on this machine.
for tool in anvil forge cast; do
  if ! out="$("$bin/$tool" --version 2>&1 | head -n 1)"; then
    echo "install-toolchain: $bin/$tool does not run: $out" >&2
    exit 1
  fi
  echo "  $tool: $out"
done
if ! out="$("$contracts/tools/solc" --version 2>&1 | sed -n 2p)"; then
  echo "install-toolchain: the solc-js wrapper contracts/tools/solc does not run: $out" >&2
  exit 1
fi
echo "  solc (solc-js wrapper): $out"
for lib in "@openzeppelin/contracts/token/ERC20/ERC20.sol" "@layerzerolabs/toolbox-foundry/lib/forge-std/Test.sol"; do
  if [[ ! -f "$contracts/node_modules/$lib" ]]; then
    echo "install-toolchain: missing contracts/node_modules/$lib" >&2
    exit 1
  fi
done
