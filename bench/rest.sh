#!/usr/bin/env bash
# bgjobd's RSS at rest, by mapping: fresh, and after a few jobs and a
# quiet spell; two builds alternating, several fresh starts each.
#
#   bench/rest.sh BEFORE AFTER [ROUNDS] [JOBS] [QUIET_SECS]
#       (defaults: 3 rounds, 200 jobs, 20 s)
#
# Each start: a state folder, the shipped-style config (one listener from
# the config file) and the shipped `test` module. RSS 2 s after it is
# ready ("fresh"), right after JOBS `test:` requests from one client
# ("load"), and QUIET_SECS later ("rest"), with its breakdown from
# /proc/PID/smaps (KiB): the binary, libc, ld.so, libgcc_s, the heap,
# the main stack, other anonymous memory (thread stacks, TLS), other files.
set -euo pipefail
cd "$(dirname "$0")/.."
builds=("$1" "$2")
rounds=${3:-3}
jobs=${4:-200}
quiet=${5:-20}
cargo build --release -q --features bench --bin bgjob-bench
bench=$PWD/target/release/bgjob-bench
pid=
work=$(mktemp -d)
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
chmod 755 "$work"
mkdir "$work/modules"
cp modules/test "$work/modules/test"
chmod 755 "$work/modules" "$work/modules/test"
echo '[{"server": "background", "address": "127.0.0.1", "port": 0}]' > "$work/config"
breakdown() {
  awk '/^[0-9a-f]+-[0-9a-f]+ /{n=$6; if(n=="")n="anon"; else if(n ~ /bgjobd/)n="binary"; else if(n ~ /libc\.so/)n="libc"; else if(n ~ /ld-linux/)n="ld.so"; else if(n ~ /libgcc/)n="libgcc_s"; else if(n=="[heap]")n="heap"; else if(n=="[stack]")n="stack"; else n="other"}
       /^Rss:/{t[n]+=$2} END{printf "binary=%d libc=%d ld.so=%d libgcc_s=%d heap=%d stack=%d anon=%d other=%d", t["binary"],t["libc"],t["ld.so"],t["libgcc_s"],t["heap"],t["stack"],t["anon"],t["other"]}' "/proc/$pid/smaps"
}
state() {
  echo "rss=$(awk '/^VmRSS/{print $2}' "/proc/$pid/status") threads=$(awk '/^Threads/{print $2}' "/proc/$pid/status") $(breakdown)"
}
for round in $(seq "$rounds"); do
  for build in "${builds[@]}"; do
    rm -rf "$work/state"
    "$build" -c "$work/config" -m "$work/modules" --state "$work/state" -1 > "$work/addr" 2>/dev/null &
    pid=$!
    for _ in $(seq 100); do [ -s "$work/addr" ] && break; sleep 0.05; done
    addr=$(head -n1 "$work/addr")
    name="$(basename "$build") ($(stat -c %s "$build") bytes) round $round"
    sleep 2
    echo "$name fresh $(state)"
    "$bench" --server "$addr" -c 1 -n "$jobs" -r test: --expect Test > /dev/null
    echo "$name load $(state)"
    sleep "$quiet"
    echo "$name rest $(state)"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    pid=
  done
done
