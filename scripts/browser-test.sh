#!/usr/bin/env bash
# The web consoles in real Chromium: starts a throw-away `remesa dev` (its own anvil and data directory, free
# ports), then runs tests/browser/console.test.mjs (node:test + playwright-core driving Debian's Chromium, axe-core
# for accessibility). Screenshots of every page at 360 and 1280 px land in target/browser-screenshots/ (not
# committed), the node's log in target/browser-screenshots/remesa-dev.log.
#
#   scripts/browser-test.sh
#
# Needs: Chromium (Debian: `apt-get install chromium`; or REMESA_CHROMIUM=/path/to/chrome), node 20+ and npm, the
# devnet toolchain (scripts/install-toolchain.sh) and the node binary (REMESA_BIN, default target/debug/remesa,
# built when missing).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

chromium="${REMESA_CHROMIUM:-/usr/bin/chromium}"
if [[ ! -x "$chromium" ]]; then
  echo "browser-test: no Chromium at $chromium (Debian: apt-get install chromium; or set REMESA_CHROMIUM)" >&2
  exit 1
fi

# Playwright's own browser download is not used: playwright-core drives the installed Chromium.
browser_dir="$root/tests/browser"
if ! cmp -s "$browser_dir/package-lock.json" "$browser_dir/node_modules/.remesa-lock" 2>/dev/null; then
  (cd "$browser_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  cp "$browser_dir/package-lock.json" "$browser_dir/node_modules/.remesa-lock"
fi

"$root/scripts/install-toolchain.sh" >/dev/null
export PATH="$root/contracts/node_modules/.bin:$PATH"
target="${CARGO_TARGET_DIR:-$root/target}"
bin="${REMESA_BIN:-$target/debug/remesa}"
if [[ ! -x "$bin" ]]; then
  cargo build -p remesa --bin remesa
fi

shots="$target/browser-screenshots"
rm -rf "$shots"
mkdir -p "$shots"
work="$(mktemp -d "${TMPDIR:-/tmp}/remesa-browser.XXXXXX")"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
anvil_port="$(free_port)"
log="$shots/remesa-dev.log"

REMESA_DATA_DIR="$work" REMESA_HTTP_ADDR=127.0.0.1:0 REMESA_OPERATOR_TOKEN=browser-test-operator-token \
  RUST_LOG="${RUST_LOG:-info}" "$bin" dev --anvil-port "$anvil_port" >"$log" 2>&1 &
dev_pid=$!
cleanup() {
  kill "$dev_pid" 2>/dev/null || true
  wait "$dev_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

url=""
for _ in $(seq 1 120); do
  url="$(sed -n 's/^Remesa devnet node: \(http:[^ ]*\).*/\1/p' "$log" | head -n1)"
  if [[ -n "$url" ]] && curl -fsS "$url/readyz" >/dev/null 2>&1; then
    break
  fi
  if ! kill -0 "$dev_pid" 2>/dev/null; then
    echo "browser-test: remesa dev exited; its log:" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
  url=""
  sleep 0.5
done
if [[ -z "$url" ]]; then
  echo "browser-test: remesa dev did not become ready in 60 s; its log:" >&2
  tail -n 40 "$log" >&2
  exit 1
fi
echo "browser-test: remesa dev at $url; Chromium $("$chromium" --version 2>/dev/null | head -n1)"

status=0
REMESA_URL="$url" REMESA_OPERATOR_TOKEN=browser-test-operator-token REMESA_CHROMIUM="$chromium" \
  REMESA_SCREENSHOTS="$shots" node --test --test-concurrency=1 "$browser_dir/console.test.mjs" || status=$?
echo "browser-test: screenshots in $shots ($(find "$shots" -name '*.png' | wc -l) pages)"
if [[ $status -ne 0 ]]; then
  echo "browser-test: the node's log is $log" >&2
fi
exit "$status"
