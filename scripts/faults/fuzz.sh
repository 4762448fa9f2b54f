#!/usr/bin/env bash
# Fuzzes the node's parsers of untrusted input with cargo-fuzz (libFuzzer): the chat intent parser, WhatsApp and
# Telegram webhook bodies, RFC 9421 Signature-Input/Signature headers, money amounts and phone numbers. The targets
# live in node/fuzz/ (its own workspace, nightly only); each calls one function of `remesa::fuzzing`, which also
# states its input format and the properties it checks. node/tests/fuzz_corpus.rs replays the committed corpora
# in the ordinary test suite.
#
#   scripts/faults/fuzz.sh [--execs N] [--target NAME]... [--parallel P] [--sanitizer none|address]
#                          [--cmin [--max-files M]]
#
#   --execs N       executions per target (libFuzzer -runs=N), default 1000000
#   --target NAME   only this target (repeatable); default every target of node/fuzz/Cargo.toml
#   --parallel P    run P targets at once (default 1)
#   --sanitizer S   default none: the node forbids `unsafe`, so AddressSanitizer would only slow the runs down
#   --cmin          afterwards, minimise each corpus in place: the fewest files that cover the same code edges
#                   (libFuzzer's merge, -use_counters=0), at most M of them (default 300, the ones covering most)
#
# New inputs found during a run are written to node/fuzz/corpus/<target>/ (libFuzzer's default), ready to commit;
# a crashing input to node/fuzz/artifacts/<target>/ (ignored by git: fix the bug, then copy it into the corpus).
# Builds use nightly in FUZZ_TARGET_DIR (default node/fuzz/target, apart from the stable builds' target directory:
# the instrumented nightly artifacts would only evict theirs); FUZZ_BUILD_LOCK=<file> serialises the
# build with other builds on a shared machine (flock). One line per target, then exit 1 if any target crashed:
#
#   FUZZ target=<name> execs=<n> crashes=<k> seconds=<s> corpus=<files>
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
fuzz_dir="$root/node/fuzz"

execs=1000000
parallel=1
sanitizer=none
cmin=0
max_files=300
targets=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --execs) execs="$2"; shift 2 ;;
    --target) targets+=("$2"); shift 2 ;;
    --parallel) parallel="$2"; shift 2 ;;
    --sanitizer) sanitizer="$2"; shift 2 ;;
    --cmin) cmin=1; shift ;;
    --max-files) max_files="$2"; shift 2 ;;
    -h | --help) sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fuzz.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$execs" =~ ^[0-9]+$ && "$execs" -gt 0 ]] || { echo "fuzz.sh: --execs needs a positive number" >&2; exit 2; }
[[ "$parallel" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: --parallel needs a positive number" >&2; exit 2; }

export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$fuzz_dir/target}"
# The repository's lint set-up (scripts/test.sh) wraps its crates' rustc in the stable clippy-driver,
# which cannot build with nightly.
unset RUSTC_WORKSPACE_WRAPPER CLIPPY_ARGS

if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

all_targets=()
while IFS= read -r t; do all_targets+=("$t"); done < <(cargo +nightly fuzz list --fuzz-dir "$fuzz_dir")
if [[ ${#targets[@]} -eq 0 ]]; then
  targets=("${all_targets[@]}")
fi
for t in "${targets[@]}"; do
  printf '%s\n' "${all_targets[@]}" | grep -qx -- "$t" || {
    echo "fuzz.sh: no target $t (targets: ${all_targets[*]})" >&2
    exit 2
  }
done

build=(cargo +nightly fuzz build --fuzz-dir "$fuzz_dir" --sanitizer "$sanitizer")
echo "fuzz.sh: building ${targets[*]} (nightly, sanitizer $sanitizer, CARGO_TARGET_DIR=$CARGO_TARGET_DIR)" >&2
# One cargo invocation for every target (all of them, or the one asked for); the runs below then only check it.
if [[ ${#targets[@]} -eq 1 ]]; then
  build+=("${targets[0]}")
fi
if [[ -n "${FUZZ_BUILD_LOCK:-}" ]]; then
  flock "$FUZZ_BUILD_LOCK" "${build[@]}"
else
  "${build[@]}"
fi

logs="$(mktemp -d "${TMPDIR:-/tmp}/remesa-fuzz.XXXXXX")"
count_files() { find "$1" -maxdepth 1 -type f 2>/dev/null | wc -l | tr -d ' '; }

# One target: libFuzzer's own corpus handling (reads node/fuzz/corpus/<t>, adds what it finds there), then the
# summary line from its final stats.
run_target() {
  local t="$1" log="$logs/$1.log" artifacts="$fuzz_dir/artifacts/$1"
  mkdir -p "$fuzz_dir/corpus/$t" "$artifacts"
  local before start status=0
  before="$(count_files "$artifacts")"
  start=$SECONDS
  cargo +nightly fuzz run --fuzz-dir "$fuzz_dir" --sanitizer "$sanitizer" "$t" -- \
    -runs="$execs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 >"$log" 2>&1 || status=$?
  local seconds=$((SECONDS - start))
  local done_execs crashes
  done_execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -n1 || true)"
  crashes=$(($(count_files "$artifacts") - before))
  if [[ $status -ne 0 && $crashes -eq 0 ]]; then
    crashes=1 # died without writing an artifact (e.g. the build failed): still a failure
  fi
  if [[ $crashes -gt 0 ]]; then
    echo "fuzz.sh: $t failed (exit $status); the end of its log ($log):" >&2
    tail -n 40 "$log" >&2
  fi
  if [[ $cmin -eq 1 && $crashes -eq 0 ]]; then
    minimise "$t" >>"$log" 2>&1 || echo "fuzz.sh: minimising the $t corpus failed (see $log)" >&2
  fi
  echo "FUZZ target=$t execs=${done_execs:-0} crashes=$crashes seconds=$seconds corpus=$(count_files "$fuzz_dir/corpus/$t")" \
    >"$logs/$t.result"
}

# The corpus of one target, minimised: libFuzzer's set-cover merge records the edges each file covers
# (-use_counters=0: edges, not hit counts) in its control file; a greedy set cover over them keeps the files that
# add most, up to max_files.
minimise() {
  local t="$1" corpus="$fuzz_dir/corpus/$1" work
  local bin="$CARGO_TARGET_DIR/$(rustc -vV | sed -n 's/^host: //p')/release/$t"
  work="$(mktemp -d "${TMPDIR:-/tmp}/remesa-fuzz-cmin.XXXXXX")"
  mkdir "$work/merged"
  "$bin" -merge=1 -set_cover_merge=1 -use_counters=0 -merge_control_file="$work/control" "$work/merged" "$corpus"
  python3 - "$work/control" "$max_files" <<'PY'
import heapq, os, sys
control, limit = sys.argv[1], int(sys.argv[2])
lines = open(control).read().splitlines()
n = int(lines[0])
files = lines[2:2 + n]
features = {}
for line in lines[2 + n:]:
    parts = line.split()
    if parts and parts[0] == "FT":
        features[int(parts[1])] = set(parts[2:])
# Lazy greedy set cover: a file's gain only shrinks as others are kept.
covered, keep = set(), []
heap = [(-len(f), os.path.getsize(files[i]), i) for i, f in features.items()]
heapq.heapify(heap)
while heap and len(keep) < limit:
    _, size, i = heapq.heappop(heap)
    gain = len(features[i] - covered)
    if gain == 0:
        continue
    if heap and gain < -heap[0][0]:
        heapq.heappush(heap, (-gain, size, i))
        continue
    keep.append(i)
    covered |= features[i]
kept = {files[i] for i in keep}
for f in files:
    if f not in kept:
        os.remove(f)
print(f"cmin: kept {len(kept)} of {n} files, {len(covered)} features")
PY
  rm -rf "$work"
}

running=0
for t in "${targets[@]}"; do
  run_target "$t" &
  running=$((running + 1))
  if [[ $running -ge $parallel ]]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

failed=0
for t in "${targets[@]}"; do
  line="$(cat "$logs/$t.result" 2>/dev/null || echo "FUZZ target=$t execs=0 crashes=1 seconds=0 corpus=0")"
  echo "$line"
  [[ "$line" == *" crashes=0 "* ]] || failed=1
done
exit "$failed"
