#!/usr/bin/env bash
# .js modules: warm workers against one process per request, and against
# the old Node.js service answering in-process, in one run on loopback.
#
#   bench/node.sh [REQUESTS]      (default 3000; cold mode runs a tenth)
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-3000}
cargo build --release -q --features bench --bin bgjobd --bin bgjob-bench
bench=$PWD/target/release/bgjob-bench
work=$(mktemp -d)
chmod 755 "$work"   # modules of a root daemon run as nobody
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

mkdir "$work/modules"
echo "exports.TExecute = function (parts, client) { client.end('Test'); };" > "$work/modules/test.js"
start() { # name, json settings
  echo "$2" > "$work/$1.config"
  target/release/bgjobd -c "$work/$1.config" -m "$work/modules" --state none -l 127.0.0.1:0 -1 > "$work/$1.addr" 2>/dev/null &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$work/$1.addr" ] && break; sleep 0.05; done
}
start warm '{"node_workers": 2}'
start cold '{"node_workers": 0, "max_jobs": 8}'
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
node bench/oldservice.js "$port" & pids+=($!)
sleep 0.5
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p"; }
echo "node -e 0: $( { /usr/bin/time -f %e node -e 0; } 2>&1 ) s"
echo
echo "| server | clients | req/s | p50 ms | p99 ms | errors, wrong |"
echo "|---|---|---|---|---|---|"
for c in 1 8 64; do
  for t in "bgjobd warm|$(head -n1 "$work/warm.addr")|$requests" "bgjobd cold|$(head -n1 "$work/cold.addr")|$((requests / 10))" "old Node.js service|127.0.0.1:$port|$requests"; do
    IFS='|' read -r name addr n <<<"$t"
    line=$("$bench" --server "$addr" -c "$c" -n "$n" -r test:hello --half-close --expect Test --duration 30 || true)
    echo "| $name | $c | $(field req_per_sec <<<"$line") | $(field p50_ms <<<"$line") | $(field p99_ms <<<"$line") | $(field errors <<<"$line"), $(field wrong <<<"$line") |"
  done
done
