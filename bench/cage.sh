#!/usr/bin/env bash
# What the module cage costs, in one run, alternating: bgjobd with modules
# run as the shared module user (nobody, the root default) against bgjobd
# with a uid of their own per job (`module_uids`, which adds a clearing
# child per job), and optionally an older bgjobd binary on the same modules
# (BGJOBD_BEFORE=path) for a before/after ratio. Root only (user switch).
#
#   bench/cage.sh [ROUNDS] [REQUESTS]      (defaults: 3 rounds, 3000 requests)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
requests=${2:-3000}
[ "$(id -u)" = 0 ] || { echo "bench/cage.sh: run as root (modules switch users)" >&2; exit 1; }
cargo build --release -q --features bench --bin bgjobd --bin bgjob-bench
bench=$PWD/target/release/bgjob-bench
work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p"; }
mkdir "$work/modules"
printf '#!/bin/sh\nprintf Test\n' > "$work/modules/test"
chmod 755 "$work/modules" "$work/modules/test"
echo '{"max_waiting": 100000, "max_connections": 4096}' > "$work/shared.config"
echo '{"max_waiting": 100000, "max_connections": 4096, "module_uids": "62000-62063"}' > "$work/uids.config"

start() { # name binary config
  "$2" -c "$3" -m "$work/modules" --state none -l 127.0.0.1:0 -1 > "$work/$1.addr" 2>/dev/null &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$work/$1.addr" ] && break; sleep 0.05; done
  head -n1 "$work/$1.addr"
}
targets=("shared-user|$(start shared "$PWD/target/release/bgjobd" "$work/shared.config")")
targets+=("uid-per-job|$(start uids "$PWD/target/release/bgjobd" "$work/uids.config")")
if [ -n "${BGJOBD_BEFORE:-}" ]; then
  targets+=("before|$(start before "$BGJOBD_BEFORE" "$work/shared.config")")
fi
results="$work/results"
: > "$results"
for round in $(seq "$rounds"); do
  for c in 1 8; do
    for t in "${targets[@]}"; do
      line=$("$bench" --server "${t#*|}" -r test:hello --expect Test -c "$c" -n "$requests" --duration 20 || true)
      echo "${t%%|*} $c $(field req_per_sec <<<"$line") $(field p50_ms <<<"$line") $(field p99_ms <<<"$line")" >> "$results"
    done
  done
  echo "round $round done" >&2
done
median() { sort -n | awk '{v[NR]=$1} END{if(NR%2){print v[(NR+1)/2]} else {print (v[NR/2]+v[NR/2+1])/2}}'; }
stat() { awk -v n="$1" -v c="$2" -v k="$3" '$1==n && $2==c {print $k}' "$results" | median; }
echo
echo "## The cage's cost, requests/s, medians of $rounds rounds ($(date -u +%Y-%m-%d), $(nproc) cores)"
echo
echo "| bgjobd | 1 client | 8 clients | 8: p50 / p99 ms | ratio to shared-user at 1 / 8 |"
echo "|---|---|---|---|---|"
s1=$(stat shared-user 1 3); s8=$(stat shared-user 8 3)
for t in "${targets[@]}"; do
  n=${t%%|*}
  r1=$(stat "$n" 1 3); r8=$(stat "$n" 8 3)
  printf '| %s | %.0f | %.0f | %s / %s | %.2f / %.2f |\n' "$n" "$r1" "$r8" "$(stat "$n" 8 4)" "$(stat "$n" 8 5)" \
    "$(echo "$r1 / $s1" | bc -l)" "$(echo "$r8 / $s8" | bc -l)"
done
