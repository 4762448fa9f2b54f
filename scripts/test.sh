#!/usr/bin/env bash
# Runs every test Remesa has: artifact check, forge fmt + tests, the gas report check, Slither, cargo fmt, clippy
# (-D warnings, inside the one build), and the Rust test suites
# (unit, integration against a real anvil, end-to-end with the real binaries) on SQLite and PostgreSQL, then the
# browser tests (the web consoles in Chromium) and the benchmark and fault-suite smoke runs.
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

# A step that ran in the background (NAME PID LOG): waits for it, shows its output, and stops the run if it failed.
background_result() {
  local ok=0
  wait "$2" || ok=$?
  trap - EXIT
  cat "$3"
  rm -f "$3"
  if [[ $ok -ne 0 ]]; then
    echo "$1 failed (exit $ok)" >&2
    exit "$ok"
  fi
}

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

  # forge's fuzz and invariant runs use about one core for ~90 s; they run beside the build, which leaves a core
  # idle in its long single-crate phases. The output is shown (and a failure stops the run) after the build.
  step "forge test (unit, fuzz, invariant), in the background beside the build"
  forge_log="$(mktemp "${TMPDIR:-/tmp}/remesa-forge-test.XXXXXX.log")"
  (cd contracts && "$forge" test) >"$forge_log" 2>&1 &
  forge_pid=$!
  trap 'kill "$forge_pid" 2>/dev/null || true' EXIT

  step "cargo fmt --check"
  cargo fmt --all -- --check
fi

# clippy in the build: `cargo clippy` is `cargo check` with clippy-driver as the rustc of the workspace's crates
# (RUSTC_WORKSPACE_WRAPPER; its arguments in CLIPPY_ARGS). Building with the same wrapper runs the same lints with
# `-D warnings` (what `cargo clippy --workspace --all-targets -- -D warnings` reports) inside the one compilation
# the tests, the binaries and the benchmark smoke run use; a separate clippy run compiled every dependency a
# second time (~7 of the 14 minutes CI took). Every cargo command below inherits the two variables, so nothing
# is rebuilt. A probe first checks that the driver really denies a warning.
clippy_driver="$(rustc --print sysroot)/bin/clippy-driver"
clippy_args="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
probe_dir="$(mktemp -d "${TMPDIR:-/tmp}/remesa-clippy-probe.XXXXXX")"
printf 'pub fn probe() -> u32 {\n    return 1;\n}\n' >"$probe_dir/probe.rs"
probe() {
  "$clippy_driver" rustc --edition 2021 --crate-type lib --emit=metadata --out-dir "$probe_dir" \
    "$probe_dir/probe.rs" >/dev/null 2>&1
}
if ! probe || CLIPPY_ARGS="$clippy_args" probe; then
  echo "clippy-driver ($clippy_driver) did not lint as expected (a needless return must pass, and fail with -D warnings); run cargo clippy --workspace --all-targets -- -D warnings instead" >&2
  exit 1
fi
rm -rf "$probe_dir"
export RUSTC_WORKSPACE_WRAPPER="$clippy_driver" CLIPPY_ARGS="$clippy_args"

# Every target at once (binaries for the end-to-end tests, test binaries): one feature set, so the test run and
# the benchmark smoke run below find everything built. Building only `--bins` unifies fewer features (no
# dev-dependencies) and made the test step compile alloy, reqwest and the node a second time.
step "build every target with clippy's lints denied (= cargo clippy --workspace --all-targets -- -D warnings)"
cargo build --workspace --all-targets --locked

if [[ $only_rust -eq 0 ]]; then
  step "forge test result"
  background_result "forge test" "$forge_pid" "$forge_log"

  step "gas snapshot is current (contracts/GAS.md, snapshots/)"
  "$root/scripts/gas-report.sh" --check

  step "Slither: every finding on the escrow is answered in contracts/SECURITY.md"
  "$root/scripts/slither.sh"
fi

# The end-to-end tests run the node binary just built instead of bringing it up to date with a nested
# `cargo build` (a no-op, but a few seconds per test binary).
export REMESA_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/remesa"

step "Rust tests (SQLite + PostgreSQL, real anvil)"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
  # nextest does not run doctests; `cargo test --doc` costs ~35 s even when there are none (none today), so it
  # runs when a doc comment opens a Rust code block (a fence with no info string, or rust/no_run/should_panic/…).
  if ! find node wallet tests scripts -name '*.rs' -not -path '*/target/*' -print0 | xargs -0 awk '
      FNR == 1 { open = 0 }
      /^[[:space:]]*\/\/[\/!][[:space:]]*```/ {
        info = $0; sub(/^[[:space:]]*\/\/[\/!][[:space:]]*```/, "", info)
        if (!open) { open = 1; if (info ~ /^[[:space:]]*$/ || info ~ /rust|no_run|should_panic|compile_fail|edition/) found = 1 }
        else open = 0
      }
      END { exit found ? 1 : 0 }'; then
    cargo test --workspace --doc --locked
  fi
else
  cargo test --workspace --locked --no-fail-fast
fi

if [[ $only_rust -eq 0 ]]; then
  # The fault suite's smoke run mostly waits for blocks and timers (about a third of a core over four minutes): it
  # runs in the background beside the browser tests and the benchmark smoke run, its output kept in a file and shown
  # (and a failure stops the run) when it ends. Every fault scenario at small sizes, four at a time, then
  # schemathesis against /openapi.json (the parser fuzz targets are not built here: their committed corpora were
  # replayed by the Rust tests above).
  step "fault suite smoke run (scripts/faults.sh --smoke), in the background"
  faults_log="$(mktemp "${TMPDIR:-/tmp}/remesa-faults-smoke.XXXXXX.log")"
  "$root/scripts/faults.sh" --smoke --jobs 4 --seed 1 >"$faults_log" 2>&1 &
  faults_pid=$!
  trap 'kill -TERM "$faults_pid" 2>/dev/null || true' EXIT

  # The consoles in real Chromium against a real `remesa dev` (about 40 s). CI may still be installing Chromium
  # in the background (.ci/run): wait for it here.
  step "browser tests: the web consoles in Chromium (scripts/browser-test.sh)"
  if [[ -n "${REMESA_CHROMIUM_INSTALL_DONE:-}" ]]; then
    for _ in $(seq 1 600); do [[ -f "$REMESA_CHROMIUM_INSTALL_DONE" ]] && break; sleep 1; done
    cat "${REMESA_CHROMIUM_INSTALL_DONE%.done}.log" 2>/dev/null | tail -n 3 || true
  fi
  "$root/scripts/browser-test.sh"

  if [[ -x "$root/scripts/bench.sh" ]]; then
    step "benchmark smoke run"
    "$root/scripts/bench.sh" --smoke
  fi

  step "fault suite smoke run: result"
  background_result "fault suite smoke run" "$faults_pid" "$faults_log"
fi

step "all tests passed"
