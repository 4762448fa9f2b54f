#!/usr/bin/env bash
# The README's "run" command: a complete local Remesa on a fresh machine.
# Installs the pinned devnet toolchain (contracts/package-lock.json), builds the binaries, then runs `remesa dev`:
# anvil with 1-second blocks, both contracts deployed from the committed artifacts, the node's keystore, a demo
# partner with rates and its simulator, two funded demo chat users, the chain workers and the HTTP API on
# 127.0.0.1:8080. Ctrl-C stops everything. Extra arguments go to `remesa dev` (see `remesa dev --help`).
#
#   scripts/dev.sh                      # node on http://127.0.0.1:8080, anvil on 127.0.0.1:8545
#   REMESA_HTTP_ADDR=127.0.0.1:9090 scripts/dev.sh --anvil-port 9545
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

"$root/scripts/install-toolchain.sh" >/dev/null
cargo build --locked --bin remesa --bin remesa-wallet
exec "$root/target/debug/remesa" dev "$@"
