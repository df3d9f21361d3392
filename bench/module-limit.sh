#!/usr/bin/env bash
# What a module at its own max_jobs costs the others: direct calls of
# `test` (printf Test) with an empty waiting line, then with JOBS queued jobs
# of `hold` waiting behind its one slot (module_policy max_jobs 1). The
# waiting line looks at each module's head, never at the jobs, so the two
# should match. Loopback only; the server is stopped at the end.
#
#   bench/module-limit.sh [JOBS] [REQUESTS] [CONCURRENCY]
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${1:-100000}
requests=${2:-3000}
conc=${3:-8}
cargo build --release -q --features bench --bin bgjobd --bin bgjob-bench
bench=target/release/bgjob-bench
work=$(mktemp -d)
chmod 755 "$work"   # modules of a root daemon run as nobody
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

mkdir "$work/modules"
printf '#!/bin/sh\nexec sleep 1000\n' > "$work/modules/hold"
printf '#!/bin/sh\nprintf Test\n' > "$work/modules/test"
chmod +x "$work/modules/hold" "$work/modules/test"
cat > "$work/config" <<EOF
{"max_jobs": 8, "max_waiting": 1000000, "max_waiting_per_client": 1000000,
 "journal_sync": "never", "module_policy": {"hold": {"max_jobs": 1}}}
EOF
target/release/bgjobd -c "$work/config" -m "$work/modules" --state "$work/state" \
  -l 127.0.0.1:0 -1 > "$work/addr" 2>"$work/log" &
pid=$!
for _ in $(seq 50); do [ -s "$work/addr" ] && break; sleep 0.1; done
addr=$(head -n1 "$work/addr")
get() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$2"; }
row() {
  printf '%-34s %10s %8s %8s\n' "$1" "$(get req_per_sec "$2")" "$(get p50_ms "$2")" "$(get p99_ms "$2")"
}
calls() { $bench --server "$addr" -c "$conc" -n "$requests" -r 'test:hello' --half-close --expect Test; }

printf '%-34s %10s %8s %8s\n' '' 'req/s' p50_ms p99_ms
row "calls, nothing waiting" "$(calls)"
line=$($bench --server "$addr" -c "$conc" -n "$jobs" -r 'queue:add:hold:{i}' --half-close --expect-prefix id:)
row "queue:add of $jobs hold jobs" "$line"
# One of them runs and holds the module's one slot; the rest wait.
row "calls, $((jobs - 1)) hold jobs waiting" "$(calls)"
# Its module processes die with it (they get SIGKILL when it goes).
kill -9 "$pid"; wait "$pid" 2>/dev/null || true
