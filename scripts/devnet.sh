#!/usr/bin/env bash
# Local devnet: anvil on 127.0.0.1 with Circle's USDC (FiatTokenV2_2 behind FiatTokenProxy, from the committed
# artifacts of the pinned npm package) and RemittanceEscrow deployed from the committed artifacts, demo partner 1
# registered, USDC minted to anvil accounts 1..3; writes .devnet/deployment.json.
#
#   scripts/devnet.sh            run in the foreground until Ctrl-C (stops anvil cleanly)
#   scripts/devnet.sh --detach   leave anvil running in the background (pid in .devnet/anvil.pid)
#   scripts/devnet.sh --stop     stop a detached devnet
#
# Environment: REMESA_DEVNET_PORT (default 8545).
# Accounts are anvil's well-known development keys (public, never use them on a real network):
#   0 deployer, owner, minter and guardian (USDC: owner, master minter, minter, pauser, blacklister);
#   1..3 demo senders (10,000 USDC each); 9 partner 1's settlement address and EVM signer. USDC's proxy admin is 0xadad…ad.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
contracts="$root/contracts"
bin="$contracts/node_modules/.bin"
state="$root/.devnet"
pidfile="$state/anvil.pid"
port="${REMESA_DEVNET_PORT:-8545}"
rpc="http://127.0.0.1:$port"
mint_base_units=10000000000 # 10,000 USDC (6 decimals)
usdc_proxy_admin=0xadadadadadadadadadadadadadadadadadadadad # a transparent proxy's admin cannot use the token
partner_id=1

mode=foreground
case "${1:-}" in
  "") ;;
  --detach) mode=detach ;;
  --stop) mode=stop ;;
  -h | --help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: $0 [--detach | --stop]" >&2; exit 2 ;;
esac

running_pid() {
  [[ -f "$pidfile" ]] || return 1
  local pid
  pid="$(cat "$pidfile")"
  [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

if [[ $mode == stop ]]; then
  if pid="$(running_pid)"; then
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$pidfile" "$state/deployment.json"
    echo "devnet: stopped anvil (pid $pid)"
  else
    rm -f "$pidfile"
    echo "devnet: not running"
  fi
  exit 0
fi

if pid="$(running_pid)"; then
  echo "devnet: already running (pid $pid); stop it with: scripts/devnet.sh --stop" >&2
  exit 1
fi

# The pinned toolchain (installs it when missing; a no-op taking about a second otherwise).
"$root/scripts/install-toolchain.sh" >/dev/null
cast="$bin/cast"
for name in RemittanceEscrow usdc/FiatTokenV2_2 usdc/FiatTokenProxy usdc/SignatureChecker; do
  [[ -f "$contracts/artifacts/$name.json" ]] || { echo "devnet: missing contracts/artifacts/$name.json" >&2; exit 1; }
done
if "$cast" chain-id --rpc-url "$rpc" >/dev/null 2>&1; then
  echo "devnet: something already answers on $rpc; set REMESA_DEVNET_PORT to another port" >&2
  exit 1
fi

mkdir -p "$state"
rm -f "$state/deployment.json"
log="$state/anvil.log"
config="$state/anvil-accounts.json"
rm -f "$config"

if [[ $mode == detach ]]; then
  nohup "$bin/anvil" --host 127.0.0.1 --port "$port" --block-time 1 --config-out "$config" >"$log" 2>&1 </dev/null &
else
  "$bin/anvil" --host 127.0.0.1 --port "$port" --block-time 1 --config-out "$config" >"$log" 2>&1 </dev/null &
fi
anvil_pid=$!

stop_anvil() {
  if kill -0 "$anvil_pid" 2>/dev/null; then
    kill "$anvil_pid" 2>/dev/null || true
    wait "$anvil_pid" 2>/dev/null || true
  fi
  rm -f "$pidfile" "$state/deployment.json"
}
# Until deployment succeeds, any failure stops anvil again.
trap stop_anvil EXIT
echo "$anvil_pid" >"$pidfile"

for _ in $(seq 100); do
  if "$cast" chain-id --rpc-url "$rpc" >/dev/null 2>&1 && [[ -s "$config" ]]; then break; fi
  kill -0 "$anvil_pid" 2>/dev/null || { echo "devnet: anvil exited; its log:" >&2; cat "$log" >&2; exit 1; }
  sleep 0.1
done
"$cast" chain-id --rpc-url "$rpc" >/dev/null || { echo "devnet: anvil did not come up on $rpc" >&2; exit 1; }

account() { node -e 'const c=require(process.argv[1]);console.log(c[process.argv[2]][+process.argv[3]])' "$config" "$1" "$2"; }
deployer="$(account available_accounts 0)"
deployer_key="$(account private_keys 0)"
settlement="$(account available_accounts 9)"
bytecode() { node -e 'console.log(require(process.argv[1]).bytecode.object)' "$contracts/artifacts/$1.json"; }

# Sends a transaction from the deployer and waits for its receipt; prints the receipt as JSON.
send() { "$cast" send --rpc-url "$rpc" --private-key "$deployer_key" --json "$@"; }
field() { node -e 'const r=JSON.parse(require("fs").readFileSync(0,"utf8"));const v=r[process.argv[1]];if(r.status!=="0x1"&&r.status!==1&&r.status!=="1")process.exit(3);console.log(v)' "$1"; }

# Hardhat artifacts (USDC): creation bytecode with each library's address written over its link references.
linked() {
  node -e '
    const a = require(process.argv[1]);
    let hex = a.bytecode.replace(/^0x/, "");
    const libs = Object.fromEntries(process.argv.slice(2).map((kv) => kv.split("=")));
    for (const refs of Object.values(a.linkReferences || {}))
      for (const [lib, places] of Object.entries(refs)) {
        if (!libs[lib]) { console.error("no address for library " + lib); process.exit(1); }
        for (const p of places)
          hex = hex.slice(0, p.start * 2) + libs[lib].replace(/^0x/, "").toLowerCase() + hex.slice((p.start + p.length) * 2);
      }
    console.log("0x" + hex);
  ' "$contracts/artifacts/usdc/$1.json" "${@:2}"
}

chain_id="$("$cast" chain-id --rpc-url "$rpc")"
checker_receipt="$(send --create "$(linked SignatureChecker)")"
checker="$(field contractAddress <<<"$checker_receipt")"
deploy_block="$(( $(field blockNumber <<<"$checker_receipt") ))"
implementation="$(field contractAddress <<<"$(send --create "$(linked FiatTokenV2_2 "SignatureChecker=$checker")")")"
token="$(field contractAddress <<<"$(send --create "$(linked FiatTokenProxy)" "constructor(address)" "$implementation")")"
field status <<<"$(send "$token" "changeAdmin(address)" "$usdc_proxy_admin")" >/dev/null
field status <<<"$(send "$token" "initialize(string,string,string,uint8,address,address,address,address)" \
  "USD Coin" USDC USD 6 "$deployer" "$deployer" "$deployer" "$deployer")" >/dev/null
field status <<<"$(send "$token" "initializeV2(string)" "USD Coin")" >/dev/null
field status <<<"$(send "$token" "initializeV2_1(address)" "$deployer")" >/dev/null
field status <<<"$(send "$token" "initializeV2_2(address[],string)" "[]" USDC)" >/dev/null
field status <<<"$(send "$token" "configureMinter(address,uint256)" "$deployer" \
  115792089237316195423570985008687907853269984665640564039457584007913129639935)" >/dev/null
# Locks between a minute (so demos can expire quickly) and 30 days, as wallet::devnet::DEVNET_{MIN,MAX}_LOCK_S.
escrow_receipt="$(send --create "$(bytecode RemittanceEscrow)" "constructor(address,address,address,uint64,uint64)" \
  "$token" "$deployer" "$deployer" 60 2592000)"
escrow="$(field contractAddress <<<"$escrow_receipt")"
# The set-up transactions go into the same block; then every receipt must show success.
nonce="$("$cast" nonce --rpc-url "$rpc" "$deployer")"
hashes=("$("$cast" send --rpc-url "$rpc" --private-key "$deployer_key" --async --nonce "$nonce" \
  "$escrow" "setPartner(uint64,address,address)" "$partner_id" "$settlement" "$settlement")")
for i in 1 2 3; do
  hashes+=("$("$cast" send --rpc-url "$rpc" --private-key "$deployer_key" --async --nonce "$((nonce + i))" \
    "$token" "mint(address,uint256)" "$(account available_accounts "$i")" "$mint_base_units")")
done
for h in "${hashes[@]}"; do
  field status <<<"$("$cast" receipt --rpc-url "$rpc" --json "$h")" >/dev/null \
    || { echo "devnet: set-up transaction $h failed" >&2; exit 1; }
done
checksum() { "$cast" to-check-sum-address "$1"; }
token="$(checksum "$token")"
escrow="$(checksum "$escrow")"
deployer="$(checksum "$deployer")"
settlement="$(checksum "$settlement")"

tmp="$state/deployment.json.tmp"
node -e '
  const [chainId, rpc, token, escrow, deployer, block] = process.argv.slice(1);
  process.stdout.write(JSON.stringify({
    chain_id: Number(chainId), rpc_url: rpc, token, escrow, deployer, deploy_block: Number(block),
  }, null, 2) + "\n");
' "$chain_id" "$rpc" "$token" "$escrow" "$deployer" "$deploy_block" >"$tmp"
mv "$tmp" "$state/deployment.json"

cat <<EOF
Remesa devnet is up
  RPC URL          $rpc  (chain id $chain_id, 1 s blocks)
  USDC             $token  (FiatTokenV2_2 behind its proxy, 6 decimals)
  RemittanceEscrow $escrow
  deployer/owner   $deployer  (anvil account 0; also minter and guardian)
  partner $partner_id        settlement and signer $settlement  (anvil account 9)
  funded senders   anvil accounts 1..3, 10,000 USDC each
  deployment file  .devnet/deployment.json   anvil log .devnet/anvil.log
EOF

if [[ $mode == detach ]]; then
  trap - EXIT
  echo "running in the background (pid $anvil_pid); stop with: scripts/devnet.sh --stop"
  exit 0
fi

echo "press Ctrl-C to stop"
trap 'echo; echo "devnet: stopping anvil"; stop_anvil; exit 0' INT TERM
trap stop_anvil EXIT
wait "$anvil_pid" || true
echo "devnet: anvil exited; its log is .devnet/anvil.log" >&2
exit 1
