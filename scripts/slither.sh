#!/usr/bin/env bash
# Static analysis of the escrow with Slither (crytic/slither), offline, through the pinned forge.
#   1. installs slither-analyzer (pinned) into a virtualenv under ${XDG_CACHE_HOME:-~/.cache} if it is not there;
#   2. runs it on contracts/ (sources only, not tests or scripts) with contracts/node_modules/.bin (forge) on PATH,
#      building into a throw-away directory (slither runs `forge clean`, which must not wipe contracts/out);
#   3. fails when a finding on RemittanceEscrow (src/RemittanceEscrow.sol, src/interfaces/IRemittanceEscrow.sol) has
#      no answer in contracts/SECURITY.md: every finding is keyed `check:element` (e.g. `timestamp:release`) and the
#      table under "## Slither" must list that key. Findings on other contracts (TestStablecoin) are printed only.
#
#   scripts/slither.sh           install if needed, analyse, check every RemittanceEscrow finding is answered
# Needs python3 (with venv) and node. scripts/test.sh runs it (about a minute, after installing slither from PyPI
# once into the cache directory).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
contracts="$root/contracts"
version="0.11.6"
venv="${XDG_CACHE_HOME:-$HOME/.cache}/remesa-slither-$version"
[[ -x "$contracts/node_modules/.bin/forge" ]] || "$root/scripts/install-toolchain.sh" >/dev/null

if [[ ! -x "$venv/bin/slither" ]]; then
  echo "slither: installing slither-analyzer==$version into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "slither-analyzer==$version"
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
export PATH="$contracts/node_modules/.bin:$PATH"
# slither exits non-zero whenever it finds anything; the gate below decides.
(cd "$contracts" && FOUNDRY_OUT="$tmp/out" FOUNDRY_CACHE_PATH="$tmp/cache" \
  "$venv/bin/slither" . --filter-paths "node_modules" --json "$tmp/slither.json" >"$tmp/slither.log" 2>&1) || true
[[ -s "$tmp/slither.json" ]] || { echo "slither: no results; its log:" >&2; cat "$tmp/slither.log" >&2; exit 1; }

node - "$tmp/slither.json" "$contracts/SECURITY.md" <<'JS'
const fs = require("fs");
const [jsonPath, mdPath] = process.argv.slice(2);
const out = JSON.parse(fs.readFileSync(jsonPath, "utf8"));
if (!out.success) { console.error("slither failed:", out.error); process.exit(1); }
const md = fs.readFileSync(mdPath, "utf8");
const section = md.split(/^## Slither\b/m)[1] || "";
const answered = new Set([...section.matchAll(/^\|\s*`([^`]+)`/gm)].map((m) => m[1]));
const escrowFiles = ["src/RemittanceEscrow.sol", "src/interfaces/IRemittanceEscrow.sol"];
const onEscrow = (el) => escrowFiles.some((f) => ((el.source_mapping || {}).filename_relative || "").endsWith(f));
let missing = 0;
for (const d of (out.results || {}).detectors || []) {
  const first = d.elements[0] || {};
  const key = `${d.check}:${first.name}`;
  const where = `${(first.source_mapping || {}).filename_relative || "?"}#${((first.source_mapping || {}).lines || [])[0] || "?"}`;
  if (!d.elements.some(onEscrow)) { console.log(`  (other)     ${key}  ${where}  [${d.impact}]`); continue; }
  const ok = answered.has(key);
  if (!ok) missing++;
  console.log(`  ${ok ? "answered  " : "UNANSWERED"}  ${key}  ${where}  [${d.impact}]`);
}
if (missing) {
  console.error(`slither: ${missing} RemittanceEscrow finding(s) have no answer in contracts/SECURITY.md (## Slither)`);
  process.exit(1);
}
console.log("slither: every RemittanceEscrow finding is answered in contracts/SECURITY.md");
JS
