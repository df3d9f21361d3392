#!/usr/bin/env bash
# Jobs held for later: N jobs (default 100,000) scheduled for the same
# second, the longest `helo` wait while they fall due (a client asking
# `helo` back to back throughout), and the RSS each scheduled job adds to
# the daemon; then queue:add with options against plain adds, each on a
# fresh daemon, in the same run. Loopback only; everything started here is
# stopped by its pid at the end.
#
#   bench/queue-schedule.sh [JOBS] [ADDS]
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${1:-100000}
adds=${2:-20000}
cargo build --release -q --features bench --bin bgjobd --bin bgjob-bench --bin bgjob
bench=target/release/bgjob-bench
work=$(mktemp -d)
chmod 755 "$work"
daemons=()
cleanup() {
  for pid in "${daemons[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  if [ -s "$work/hold.pids" ]; then
    while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done < "$work/hold.pids"
  fi
  rm -rf "$work"
}
trap cleanup EXIT

mkdir "$work/modules"
# One job runs (and holds, its pid noted); the rest wait in the line.
printf '#!/bin/sh\necho $$ >> %s/hold.pids\nexec sleep 1000\n' "$work" > "$work/modules/hold"
chmod +x "$work/modules/hold"
big=4000000000
echo "{\"max_jobs\": 1, \"max_waiting\": 1000000, \"max_waiting_per_client\": 1000000,
  \"max_waiting_bytes\": $big, \"max_waiting_bytes_per_client\": $big}" > "$work/config"

start() {
  : > "$work/addr"
  target/release/bgjobd -c "$work/config" -m "$work/modules" --state "$work/state-$1" \
    -l 127.0.0.1:0 -1 > "$work/addr" 2> "$work/log-$1" &
  daemons+=($!)
  pid=$!
  for _ in $(seq 100); do [ -s "$work/addr" ] && break; sleep 0.1; done
  addr=$(head -n1 "$work/addr")
}
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$2"; }

echo "== $jobs jobs scheduled for the same second"
start schedule
before=$(rss_kib "$pid")
due=$(( $(date +%s) + 40 ))
t0=$(date +%s.%N)
line=$($bench --server "$addr" -c 8 -n "$jobs" -r "queue:add?at=$due:hold:{i}" --half-close --expect-prefix id:)
t1=$(date +%s.%N)
# One more, to see it scheduled before and waiting after.
last=$(target/release/bgjob --server "$addr" add --at "$due" hold last)
echo "added: $(field req_per_sec "$line") adds/s, errors $(field errors "$line"), wrong $(field wrong "$line")"
sleep 1
after=$(rss_kib "$pid")
now=$(date +%s)
if [ "$now" -ge "$((due - 2))" ]; then
  echo "the adds took too long ($(echo "$t1 - $t0" | bc) s): the jobs fell due before the helo client started" >&2
  exit 1
fi
echo "rss: $before KiB before, $after KiB with $jobs scheduled: $(( (after - before) * 1024 / jobs )) bytes per scheduled job"
sleep $(( due - now - 2 ))
status() { target/release/bgjob --server "$addr" info "$last" | sed -n 's/^status: //p'; }
echo "the last job: $(status)"
probe=$($bench --server "$addr" -c 1 -n 1000000000 --duration 8 -r helo --half-close --expect oleh)
echo "helo while they fell due (from 2 s before to 6 s after): $(field requests "$probe") asked, p50 $(field p50_ms "$probe") ms, p99 $(field p99_ms "$probe") ms, longest $(field max_ms "$probe") ms"
echo "the last job, after: $(status); $(target/release/bgjob --server "$addr" stats | grep -E '^jobs_(waiting|running)' | tr '\n' ' ')"
kill -9 "$pid"; wait "$pid" 2>/dev/null || true

echo "== queue:add with options against plain adds ($adds each, 8 clients)"
printf '%-8s %10s %8s %8s\n' adds 'adds/s' p50_ms p99_ms
for kind in plain options plain options; do
  start "$kind-$RANDOM"
  case $kind in
    plain) request='queue:add:hold:{i}' ;;
    options) request='queue:add?priority=high&retries=3&timeout=30&key=k{i}:hold:{i}' ;;
  esac
  line=$($bench --server "$addr" -c 8 -n "$adds" -r "$request" --half-close --expect-prefix id:)
  printf '%-8s %10s %8s %8s\n' "$kind" "$(field req_per_sec "$line")" "$(field p50_ms "$line")" "$(field p99_ms "$line")"
  kill -9 "$pid"; wait "$pid" 2>/dev/null || true
done
