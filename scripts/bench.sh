#!/usr/bin/env bash
# Runs Remesa's benchmark figures, each beside its baseline, and writes the report.
#
#   scripts/bench.sh            full run: release build, 3 runs per figure, writes BENCHMARKS.md (takes ~45 min;
#                               run it on a quiet machine)
#   scripts/bench.sh --smoke    tiny sizes, one run, dev build: checks every figure can still be measured (CI);
#                               writes a temporary report and exits non-zero if a figure could not be measured
#   scripts/bench.sh [--smoke] -- ARGS   extra arguments for remesa-bench run (e.g. `-- --only 2,2b,3 --runs 5`)
#
# The report records the machine (cores, memory, OS, rustc and anvil versions, date, commit).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

smoke=0
extra=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --smoke) smoke=1; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,10p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

"$root/scripts/install-toolchain.sh" >/dev/null

if [[ $smoke -eq 1 ]]; then
  profile=debug
  # The same build as scripts/test.sh (every target of the workspace, so the same features): nothing to rebuild
  # there. `-p remesa -p remesa-bench` alone unifies other features and recompiles alloy, reqwest and the node.
  cargo build --locked --workspace --all-targets
  out="$(mktemp "${TMPDIR:-/tmp}/remesa-bench-smoke.XXXXXX.md")"
  args=(--smoke --profile dev --out "$out" --command "scripts/bench.sh --smoke")
else
  profile=release
  cargo build --locked --release -p remesa -p remesa-bench
  out="$root/BENCHMARKS.md"
  args=(--profile release --out "$out" --command "scripts/bench.sh")
fi

target="${CARGO_TARGET_DIR:-$root/target}"
work="$target/bench-work"
mkdir -p "$work"
status=0
"$target/$profile/remesa-bench" run \
  --repo "$root" \
  --remesa-bin "$target/$profile/remesa" \
  --anvil-bin "$root/contracts/node_modules/.bin/anvil" \
  --work-dir "$work" \
  "${args[@]}" ${extra[@]+"${extra[@]}"} || status=$?
echo "report: $out"
exit $status
