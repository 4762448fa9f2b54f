#!/usr/bin/env bash
# Runs every test Remesa has: artifact check, forge fmt + tests, cargo fmt + clippy, and the Rust test suites
# (unit, integration against a real anvil, end-to-end with the real binaries) on SQLite and PostgreSQL, then the
# benchmark and kill-and-restart smoke runs.
# Installs what it needs itself (the pinned devnet toolchain from contracts/package-lock.json).
#
#   scripts/test.sh            everything
#   scripts/test.sh --rust     only the Rust part (after the toolchain is installed)
#
# PostgreSQL: tests use REMESA_TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test). When it is
# unreachable, the PostgreSQL tests print why and skip; set REMESA_REQUIRE_POSTGRES=1 (CI does) to fail instead.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

only_rust=0
[[ "${1:-}" == "--rust" ]] && only_rust=1

# Each step prints the seconds since the start, so a slow step shows in CI's log.
started=$SECONDS
step() { printf '\n\033[1;34m==> [%4ds] %s\033[0m\n' "$((SECONDS - started))" "$*"; }

export REMESA_TEST_DATABASE_URL="${REMESA_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-always}"

step "devnet toolchain (pinned npm lock)"
"$root/scripts/install-toolchain.sh"
forge="$root/contracts/node_modules/.bin/forge"

if [[ $only_rust -eq 0 ]]; then
  step "contract artifacts match the sources"
  "$root/scripts/check-artifacts.sh"

  step "forge fmt --check"
  (cd contracts && "$forge" fmt --check)

  step "forge test (unit, fuzz, invariant)"
  (cd contracts && "$forge" test)

  step "gas snapshot is current (contracts/GAS.md, snapshots/)"
  "$root/scripts/gas-report.sh" --check

  step "cargo fmt --check"
  cargo fmt --all -- --check

  step "cargo clippy --all-targets -- -D warnings"
  cargo clippy --workspace --all-targets --locked -- -D warnings
fi

step "build the binaries the end-to-end tests run"
cargo build --workspace --bins --locked

step "Rust tests (SQLite + PostgreSQL, real anvil)"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
  # nextest does not run doctests
  cargo test --workspace --doc --locked
else
  cargo test --workspace --locked --no-fail-fast
fi

if [[ -x "$root/scripts/bench.sh" && $only_rust -eq 0 ]]; then
  step "benchmark smoke run"
  "$root/scripts/bench.sh" --smoke
fi

if [[ $only_rust -eq 0 ]]; then
  step "kill-and-restart smoke run (scripts/chaos/kill-restart.py --smoke)"
  python3 "$root/scripts/chaos/kill-restart.py" --smoke --seed 1
fi

step "all tests passed"
