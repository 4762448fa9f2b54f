#!/usr/bin/env bash
# API fuzzing with schemathesis (pinned in requirements-api-fuzz.txt) against the served /openapi.json of a fresh
# `remesa dev`: every operation, `--checks all`, the stateful phase where the document has links; one pass with the
# operator bearer token, one without credentials, and one over the partner routes signed as demo partner 1 (through
# scripts/faults/sign_proxy.py, which signs each request the way partners do: schemathesis cannot sign RFC 9421).
#
#   scripts/faults/api-fuzz.sh [--smoke|--full] [--max-examples N] [--seed N]
#
#   --smoke   a few examples per operation, with a fixed seed unless --seed is given (CI: about 2 minutes)
#   --full    the default: schemathesis' own example counts (about 20 minutes on 2 cores)
#
# Environment: REMESA_BIN (default ${CARGO_TARGET_DIR:-<repo>/target}/debug/remesa), API_FUZZ_VENV (default
# ${CARGO_TARGET_DIR:-<repo>/target}/faults-venv), API_FUZZ_WORKERS (default 2).
#
# Prints one line per pass:
#   API-FUZZ auth=<operator|none|partner> operations=<n> cases=<n> failures=<n> server_errors=<n>
#            auth_refused=<n> stated_rule_refusals=<n> tool_errors=<n> seconds=<s>
# (auth_refused: operations that answered only 401/403 to a pass's own credentials, so nothing past authentication
# was tested: a failure; stated_rule_refusals: schema-valid requests refused with 422 for a rule the operation's
# document states, see api_fuzz_hooks.py; not failures; tool_errors: errors of schemathesis or Hypothesis itself,
# not of the node, which cut an operation's run short: reported in the report's rows, not counted as failures),
# keeps schemathesis' reports (JUnit, NDJSON, JSON) in a temporary directory whose path it prints, and exits
# non-zero when a pass has a failure, a 5xx or an error.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
venv="${API_FUZZ_VENV:-$target/faults-venv}"
bin="${REMESA_BIN:-$target/debug/remesa}"
workers="${API_FUZZ_WORKERS:-2}"
requirements="$repo/scripts/faults/requirements-api-fuzz.txt"

mode=full
max_examples=""
seed=""
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) mode=smoke ;;
        --full) mode=full ;;
        --max-examples) max_examples="$2"; shift ;;
        --seed) seed="$2"; shift ;;
        -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "api-fuzz: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
if [ "$mode" = smoke ]; then
    [ -n "$max_examples" ] || max_examples=4
    # CI's smoke pass draws the same cases every time (a regression check); the full run draws new ones each time.
    [ -n "$seed" ] || seed=20261207
fi

if [ ! -x "$bin" ]; then
    echo "api-fuzz: no node binary at $bin (cargo build -p remesa, or set REMESA_BIN)" >&2
    exit 2
fi

# The pinned schemathesis, in a venv outside the repository (reinstalled when the pins change).
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
stamp="$venv/.api-fuzz-requirements"
if ! cmp -s "$requirements" "$stamp" 2>/dev/null; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$stamp"
fi
st="$venv/bin/schemathesis"
echo "api-fuzz: $("$st" --version)"

work="$(mktemp -d "${TMPDIR:-/tmp}/remesa-api-fuzz.XXXXXX")"
echo "api-fuzz: reports and node log in $work"

node_pid=""
stop_node() {
    if [ -n "$node_pid" ] && kill -0 "$node_pid" 2>/dev/null; then
        kill -TERM "$node_pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$node_pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -KILL "$node_pid" 2>/dev/null || true
        wait "$node_pid" 2>/dev/null || true
    fi
    node_pid=""
    rm -rf "$work/data"
}
trap stop_node EXIT
trap 'exit 130' INT TERM

# A node of our own: its own data directory, a free HTTP port and a free anvil port, so it never collides with
# another run (or with `scripts/dev.sh` on 8080/8545). The operator token is the one `remesa dev` prints.
mkdir -p "$work/data"
anvil="${REMESA_ANVIL:-$repo/contracts/node_modules/.bin/anvil}"
[ -x "$anvil" ] || anvil="$(command -v anvil || true)"
if [ -z "$anvil" ]; then
    echo "api-fuzz: no anvil (run scripts/dev.sh once to install it, or set REMESA_ANVIL)" >&2
    exit 2
fi
(
    cd "$work"
    exec env -u REMESA_DATABASE_URL REMESA_ANVIL="$anvil" REMESA_DATA_DIR="$work/data" REMESA_HTTP_ADDR=127.0.0.1:0 \
        "$bin" dev --anvil-port 0 --dev-dir "$work/data/dev" --no-partner-sim
) >"$work/node.log" 2>&1 &
node_pid=$!

url=""
token=""
for _ in $(seq 1 600); do
    if ! kill -0 "$node_pid" 2>/dev/null; then
        echo "api-fuzz: remesa dev exited; its log:" >&2
        tail -n 40 "$work/node.log" >&2
        exit 1
    fi
    url="$(sed -n 's/^Remesa devnet node: \(http:\/\/[0-9.:]*\).*/\1/p' "$work/node.log" | head -n 1)"
    token="$(sed -n 's/^operator token: *//p' "$work/node.log" | head -n 1)"
    if [ -n "$url" ] && [ -n "$token" ] && curl -fsS -o /dev/null "$url/readyz" 2>/dev/null; then
        break
    fi
    url=""
    sleep 0.2
done
if [ -z "$url" ]; then
    echo "api-fuzz: the node did not become ready in 120 s; its log:" >&2
    tail -n 40 "$work/node.log" >&2
    exit 1
fi
echo "api-fuzz: node $url ready (pid $node_pid)"

status=0
run_pass() {
    local auth="$1"
    local dir="$work/$auth"
    mkdir -p "$dir"
    local args=(run "$url/openapi.json" --checks all --workers "$workers" --request-timeout 30
        --report junit,ndjson,json --report-dir "$dir"
        --report-junit-path "$dir/junit.xml" --report-ndjson-path "$dir/events.ndjson"
        --report-json-path "$dir/report.json" --suppress-health-check all --no-color)
    [ -n "$max_examples" ] && args+=(--max-examples "$max_examples")
    [ -n "$seed" ] && args+=(--seed "$seed")
    [ "$auth" = operator ] && args+=(-H "Authorization: Bearer $token")
    # The proxy signs every request that names a Signature header, so schemathesis' own "bad credentials accepted"
    # check cannot hold there: refusing bad and missing signatures is checked by the unauthenticated pass (every
    # partner route) and the node's signature tests.
    # positive_data_acceptance runs as api_fuzz_hooks.py's positive_data_acceptance_or_stated_rule: the same check,
    # except that a 422 for a rule the operation's document states (`x-remesa-rules`) is counted, not failed.
    local exclude=positive_data_acceptance
    [ "$auth" = partner ] && args+=(--url "$proxy_url" --include-path-regex '^/v1/partner/') \
        && exclude="$exclude,ignored_auth"
    args+=(--exclude-checks "$exclude")
    local t0 t1 rc=0
    t0="$(date +%s)"
    # api_fuzz_hooks.py: a fresh Idempotency-Key per request, as a correct client sends (see the module).
    PYTHONPATH="$repo/scripts/faults${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=api_fuzz_hooks \
        API_FUZZ_RULE_LOG="$dir/stated-rules.ndjson" "$st" --config-file "$repo/scripts/faults/schemathesis.toml" \
        "${args[@]}" >"$dir/output.txt" 2>&1 || rc=$?
    t1="$(date +%s)"
    local line
    line="$("$venv/bin/python" - "$dir/report.json" "$auth" "$((t1 - t0))" "$dir/stated-rules.ndjson" <<'PY'
import collections, json, sys
path, auth, seconds, rules_path = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
# Refusals for a rule the document states (api_fuzz_hooks.py): counted and listed, not failures.
try:
    refusals = [json.loads(ln) for ln in open(rules_path) if ln.strip()]
except OSError:
    refusals = []
by_rule = collections.Counter((r["operation"], r["type"].rsplit("/", 1)[-1]) for r in refusals)
for (op, slug), n in sorted(by_rule.items()):
    print(f"api-fuzz:   {n} x refused for a stated rule ({slug}): {op}", file=sys.stderr)
try:
    doc = json.load(open(path))
except (OSError, ValueError):
    print(f"API-FUZZ auth={auth} operations=0 cases=0 failures=-1 server_errors=-1 auth_refused=-1 "
          f"stated_rule_refusals=0 tool_errors=-1 seconds={seconds}")
    sys.exit(0)
ops = (doc.get("operations") or {}).get("tested", 0)
cases = (doc.get("test_cases") or {}).get("generated", 0)
# Schema errors (an operation whose document schemathesis cannot use) count as conformance failures; other errors
# are the tool's own (e.g. a Hypothesis internal error) and are reported, not counted.
failures = sum(f.get("count", 0) for f in doc.get("failures", [])) + sum(
    e.get("count", 0) for e in doc.get("errors", []) if e.get("title") == "Schema Error")
tool_errors = sum(e.get("count", 0) for e in doc.get("errors", []) if e.get("title") != "Schema Error")
server = sum(f.get("count", 0) for f in doc.get("failures", []) if f.get("type") == "not_a_server_error"
             or "server error" in (f.get("title") or "").lower())
# A pass with credentials whose own operations all answered 401/403 tested nothing past authentication (e.g. the
# partner's key no longer known): it fails. The operator pass also reaches partner and chat routes, where the
# operator's token is not a credential.
missing_auth = (doc.get("warnings") or {}).get("missing_auth") or []
refused = [op for op in missing_auth if auth == "partner" or (auth == "operator" and " /v1/admin/" in op)]
for op in refused:
    print(f"api-fuzz:   only 401/403 with this pass's credentials: {op}", file=sys.stderr)
print(f"API-FUZZ auth={auth} operations={ops} cases={cases} failures={failures} server_errors={server} "
      f"auth_refused={len(refused)} stated_rule_refusals={len(refusals)} tool_errors={tool_errors} seconds={seconds}")
for f in doc.get("failures", []):
    print(f"api-fuzz:   {f.get('count')} x {f.get('title')} [{f.get('type')}]: {', '.join(f.get('operations', []))}",
          file=sys.stderr)
for e in doc.get("errors", []):
    print(f"api-fuzz:   error {e.get('count')} x {e.get('title')}", file=sys.stderr)
PY
)" || rc=$?
    echo "$line"
    case "$line" in
        *" failures=0 server_errors=0 auth_refused=0 "*) ;;
        *) rc=1 ;;
    esac
    if [ "$rc" -ne 0 ]; then
        echo "api-fuzz: pass auth=$auth failed (schemathesis output: $dir/output.txt)" >&2
        status=1
    fi
}

# The partner routes with a partner's credentials, first: the operator pass may replace or suspend demo partner 1
# (its key then is unknown to the node). schemathesis talks to the signing proxy, which signs as demo partner 1 with
# the seed `remesa dev` wrote into its data directory.
"$venv/bin/python" "$repo/scripts/faults/sign_proxy.py" --node "$url" --partner-id 1 --when-asked \
    --seed-file "$work/data/dev/demo-partner-1.seed" >"$work/sign-proxy.log" 2>&1 &
proxy_pid=$!
proxy_url=""
for _ in $(seq 1 100); do
    proxy_url="$(sed -n 's/^sign-proxy: listening on //p' "$work/sign-proxy.log" | head -n 1)"
    [ -n "$proxy_url" ] && break
    kill -0 "$proxy_pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$proxy_url" ]; then
    echo "api-fuzz: the signing proxy did not start; its log:" >&2
    cat "$work/sign-proxy.log" >&2
    status=1
else
    run_pass partner
fi
kill "$proxy_pid" 2>/dev/null || true
wait "$proxy_pid" 2>/dev/null || true

run_pass operator
run_pass none
stop_node
echo "api-fuzz: reports kept in $work"
exit "$status"
