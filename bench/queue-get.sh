#!/usr/bin/env bash
# queue:get throughput of this build against another bgjobd binary (e.g.
# one built from an older commit), alternately, in the same run: each
# round queues REQUESTS jobs (untimed), waits until they are done, then
# times fetching them at each concurrency. Prints the medians and the
# ratio. Loopback only; each server is stopped at the end of its round.
#
#   bench/queue-get.sh OTHER_BGJOBD [REQUESTS] [ROUNDS] [CONCURRENCY...]
set -euo pipefail
cd "$(dirname "$0")/.."
other=$1
requests=${2:-2000}
rounds=${3:-5}
shift 3 || shift $#
concurrencies=("${@:-8 32}")
cargo build --release -q --features bench --bin bgjobd --bin bgjob-bench
bench=target/release/bgjob-bench
work=$(mktemp -d)
chmod 755 "$work"   # modules of a root daemon run as nobody
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir "$work/modules"
printf '#!/bin/sh\nprintf ok\n' > "$work/modules/ok"
chmod +x "$work/modules/ok"
echo '{"max_waiting": 1000000, "max_waiting_per_client": 1000000}' > "$work/config"

run() { # BINARY CONCURRENCY -> gets/s
  rm -rf "$work/state" "$work/addr"
  "$1" -c "$work/config" -m "$work/modules" --state "$work/state" -l 127.0.0.1:0 -1 \
    > "$work/addr" 2>"$work/log" &
  local pid=$!
  for _ in $(seq 50); do [ -s "$work/addr" ] && break; sleep 0.1; done
  sleep 0.1
  local line
  line=$($bench --server "$(head -n1 "$work/addr")" --mode queue-get -c "$2" -n "$requests" -r ok: --expect ok)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  sed -n 's/.*req_per_sec=\([^ ]*\).*/\1/p' <<<"$line"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf '%-6s %12s %12s %8s\n' conc 'this gets/s' 'other gets/s' ratio
for c in ${concurrencies[*]}; do
  mine=(); theirs=()
  for _ in $(seq "$rounds"); do
    theirs+=("$(run "$other" "$c")")
    mine+=("$(run target/release/bgjobd "$c")")
  done
  m=$(printf '%s\n' "${mine[@]}" | median)
  t=$(printf '%s\n' "${theirs[@]}" | median)
  printf '%-6s %12s %12s %8.2f\n' "$c" "$m" "$t" "$(echo "$m / $t" | bc -l)"
done
