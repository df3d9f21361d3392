#!/usr/bin/env bash
# Durable queue:add throughput: group commit (journal_sync "always", the
# default) against one fsync per add ("each") and no fsync ("never"), in the
# same run. Loopback only; each server is stopped at the end.
#
#   bench/queue-add.sh [REQUESTS] [CONCURRENCY...]
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-20000}
shift || true
concurrencies=("${@:-1 8 64}")
cargo build --release -q --features bench --bin bgjobd --bin bgjob-bench
bench=target/release/bgjob-bench
work=$(mktemp -d)
chmod 755 "$work"   # modules of a root daemon run as nobody
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

mkdir "$work/modules"
printf '#!/bin/sh\nexec sleep 1000\n' > "$work/modules/hold"
chmod +x "$work/modules/hold"

printf '%-8s %-6s %10s %8s %8s\n' sync conc 'adds/s' p50_ms p99_ms
for sync in always each never; do
  for c in ${concurrencies[*]}; do
    state="$work/state-$sync-$c"
    config="$work/$sync.config"
    # One job runs (and holds); the rest wait, so only the adds are measured.
    echo "{\"max_jobs\": 1, \"max_waiting\": 1000000, \"max_waiting_per_client\": 1000000, \"journal_sync\": \"$sync\"}" > "$config"
    target/release/bgjobd -c "$config" -m "$work/modules" --state "$state" -l 127.0.0.1:0 -1 \
      > "$work/addr" 2>"$work/log" &
    pid=$!
    for _ in $(seq 50); do [ -s "$work/addr" ] && break; sleep 0.1; done
    addr=$(head -n1 "$work/addr")
    line=$($bench --server "$addr" -c "$c" -n "$requests" -r 'queue:add:hold:{i}' --half-close --expect-prefix id:)
    kill -9 "$pid"; wait "$pid" 2>/dev/null || true
    pkill -9 -f "$work/modules/hold" 2>/dev/null || true
    get() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$line"; }
    printf '%-8s %-6s %10s %8s %8s\n' "$sync" "$c" "$(get req_per_sec)" "$(get p50_ms)" "$(get p99_ms)"
  done
done
