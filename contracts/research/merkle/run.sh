#!/usr/bin/env bash
# Runs the Merkle-batch escrow prototype's tests in a scratch copy of contracts/ (the prototype's files overlay it),
# so nothing here is compiled by the project's own forge runs. Needs the pinned toolchain (scripts/install-toolchain.sh).
#
#   contracts/research/merkle/run.sh                 correctness tests (test/MerkleEscrow.t.sol)
#   contracts/research/merkle/run.sh gas             the gas figures of MERKLE_GAS.md (profile gas; uses many GB of RAM)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
contracts="$(cd "$here/../.." && pwd)"
scratch="$(mktemp -d "${TMPDIR:-/tmp}/remesa-merkle.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
cp -r "$contracts"/{src,test,artifacts,foundry.toml,tools} "$scratch/"
ln -s "$contracts/node_modules" "$scratch/node_modules"
# Only the prototype's tests (and the fixtures they import) are compiled.
rm -rf "$scratch/test/invariant" "$scratch/test/v1" "$scratch"/test/*.t.sol
cp "$here"/src/*.sol "$scratch/src/"
cp "$here"/test/*.sol "$scratch/test/"
cd "$scratch"
if [[ "${1:-}" == "gas" ]]; then
  FOUNDRY_PROFILE=gas ./node_modules/.bin/forge test --match-path "test/Gas*.t.sol"
else
  ./node_modules/.bin/forge test --match-path test/MerkleEscrow.t.sol
fi
