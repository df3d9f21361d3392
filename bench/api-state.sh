#!/usr/bin/env bash
# The dashboard's cost. 1) `/api/state` latency with 10,000 jobs held:
# one job runs, 10,000 wait in the line behind it, 2,000 are scheduled for
# later and 300 failed results are held; bgjob-bench asks `/api/state`
# (a new connection each time, as the page does) with 1 and 4 clients and
# prints the percentiles. 2) The CPU the daemon spends at idle while the
# page polls it once a second, from utime+stime in /proc/PID/stat over
# SECS seconds (default 60), against the same time unpolled.
# Loopback only; everything started here is stopped by its pid at the end.
#
#   bench/api-state.sh [SECS]     (FAILED=N: that many failed results, default 300)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
failed=${FAILED:-300}
cargo build --release -q --features bench --bin bgjobd --bin bgjob-bench
bench=target/release/bgjob-bench
work=$(mktemp -d)
chmod 755 "$work"
daemons=()
cleanup() {
  for pid in "${daemons[@]}"; do { kill -9 "$pid"; wait "$pid"; } 2>/dev/null || true; done
  if [ -s "$work/hold.pids" ]; then
    while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done < "$work/hold.pids"
  fi
  rm -rf "$work"
}
trap cleanup EXIT

mkdir "$work/modules"
printf '#!/bin/sh\necho $$ >> %s/hold.pids\necho 1/2 >&"$BGJOB_PROGRESS_FD"\nexec sleep 1000\n' "$work" > "$work/modules/hold"
printf '#!/bin/sh\necho "no such invoice" >&2\nexit 3\n' > "$work/modules/fail"
chmod +x "$work/modules/hold" "$work/modules/fail"
big=4000000000
echo "{\"max_jobs\": 1, \"max_waiting\": 100000, \"max_waiting_per_client\": 100000,
  \"max_waiting_bytes\": $big, \"max_waiting_bytes_per_client\": $big,
  \"web\": {\"listen\": \"127.0.0.1:0\"}}" > "$work/config"

start() {
  : > "$work/addr"
  target/release/bgjobd -c "$work/config" -m "$work/modules" --state "$work/state-$1" \
    -l 127.0.0.1:0 -1 > "$work/addr" 2> "$work/log-$1" &
  daemons+=($!)
  pid=$!
  for _ in $(seq 100); do [ -s "$work/addr" ] && grep -q "dashboard on" "$work/log-$1" && break; sleep 0.1; done
  addr=$(head -n1 "$work/addr")
  web=$(sed -n 's|.*dashboard on http://\([^/]*\)/.*|\1|p' "$work/log-$1" | head -n1)
}
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$2"; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
state() { curl -s --max-time 5 "http://$web/api/state"; }

echo "api-state, $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r), load $(cut -d' ' -f1 /proc/loadavg)"
echo "== /api/state with 10,000 jobs held"
start held
$bench --server "$addr" -c 4 -n "$failed" -r "queue:add:fail:{i}" --half-close --expect-prefix id: > /dev/null
for _ in $(seq 1200); do
  [ "$(state | grep -o '"failed_total":[0-9]*' | cut -d: -f2)" = "$failed" ] && break
  sleep 0.1
done
$bench --server "$addr" -c 8 -n 10001 -r "queue:add:hold:{i}" --half-close --expect-prefix id: > /dev/null
$bench --server "$addr" -c 8 -n 2000 -r "queue:add?delay=3600:hold:{i}" --half-close --expect-prefix id: > /dev/null
sleep 1
counts=$(state | grep -o '"counts":{[^}]*}')
bytes=$(state | wc -c)
echo "held: $counts; the document is $bytes bytes"
request=$'GET /api/state HTTP/1.1\r\nHost: '"$web"$'\r\n\r\n'
line=$($bench --server "$web" -c 1 -n 3000 -r "${request/api\/state/healthz}" --expect-prefix "HTTP/1.1 200 OK")
echo "/healthz, for the cost of the connection alone: $line"
for c in 1 4; do
  line=$($bench --server "$web" -c "$c" -n 3000 -r "$request" --expect-prefix "HTTP/1.1 200 OK")
  echo "clients=$c: $line"
done

echo "== CPU at idle over $secs s, unpolled and polled once a second"
start idle
sleep 2
t0=$(ticks "$pid")
sleep "$secs"
t1=$(ticks "$pid")
curl -s "http://$web/" > /dev/null
curl -s "http://$web/app.js" > /dev/null
curl -s "http://$web/app.css" > /dev/null
end=$(( $(date +%s) + secs ))
t2=$(ticks "$pid")
polls=0
while [ "$(date +%s)" -lt "$end" ]; do
  state > /dev/null
  polls=$((polls + 1))
  sleep 1
done
t3=$(ticks "$pid")
hz=$(getconf CLK_TCK)
awk -v a=$((t1 - t0)) -v b=$((t3 - t2)) -v hz="$hz" -v s="$secs" -v n="$polls" 'BEGIN {
  printf "unpolled: %d ticks = %.3f%% of a core\n", a, 100 * a / hz / s
  printf "polled (%d fetches of /api/state): %d ticks = %.3f%% of a core\n", n, b, 100 * b / hz / s
}'
