#!/usr/bin/env bash
# bgjobd's memory at rest and after load: the RSS curve of a helo load and
# of a queue load, sampled while they run and for a minute after each.
#
#   bench/memory.sh [BGJOBD] [HELOS] [JOBS] [AFTER_SECS]
#       (defaults: target/release/bgjobd, 60000 helos, 10000 jobs, 60 s)
#
# One fresh bgjobd with a state folder (journal_sync "always"): RSS idle
# with its breakdown (/proc/PID/smaps: the binary, libc, the dynamic
# loader, anonymous memory); then HELOS `helo`s from 64 classic clients,
# RSS every 2 s until AFTER_SECS after the load ended; then JOBS
# `queue:add`s of a one-line module, waited for and fetched with
# `queue:get` (bgjob-bench --mode queue-get, 8 clients), RSS the same way.
# Prints `t_secs phase rss_kib` lines, then a summary line per load.
set -euo pipefail
cd "$(dirname "$0")/.."
bgjobd=${1:-$PWD/target/release/bgjobd}
helos=${2:-60000}
jobs=${3:-10000}
after=${4:-60}
if [ -z "${1:-}" ]; then
  cargo build --release -q --features bench --bin bgjobd --bin bgjob-bench
fi
cargo build --release -q --features bench --bin bgjob-bench
bench=$PWD/target/release/bgjob-bench
work=$(mktemp -d)
chmod 755 "$work"   # modules of a root daemon run as nobody
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
mkdir "$work/modules"
printf '#!/bin/sh\nprintf Test\n' > "$work/modules/test"
chmod 755 "$work/modules" "$work/modules/test"
echo '{"max_waiting": 20000, "max_waiting_per_client": 20000, "max_connections": 4096}' > "$work/config"
"$bgjobd" -c "$work/config" -m "$work/modules" --state "$work/state" -l 127.0.0.1:0 -1 > "$work/addr" 2>/dev/null &
pid=$!
for _ in $(seq 100); do [ -s "$work/addr" ] && break; sleep 0.05; done
addr=$(head -n1 "$work/addr")
rss() { awk '/^VmRSS/{print $2}' "/proc/$pid/status"; }
t0=$(date +%s.%N)
now() { awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN{printf "%.0f", a-b}'; }
breakdown() {
  awk '/^[0-9a-f]+-[0-9a-f]+ /{n=$6; if(n=="")n="anonymous"; else if(n ~ /bgjobd/)n="binary"; else if(n ~ /libc\.so/)n="libc"; else if(n ~ /ld-linux/)n="ld.so"; else if(n ~ /libgcc/)n="libgcc_s"; else if(n=="[heap]"||n=="[stack]")n="anonymous"; else n="other"}
       /^Rss:/{t[n]+=$2} END{for(k in t) if(t[k]) printf " %s=%d", k, t[k]}' "/proc/$pid/smaps"
}
sleep 1
idle=$(rss)
echo "idle rss_kib=$idle threads=$(awk '/^Threads/{print $2}' "/proc/$pid/status"):$(breakdown)"
echo "t_secs phase rss_kib"
# Samples RSS every 2 s while the command runs and for $after s after it.
curve() { # phase, command...
  local phase=$1; shift
  "$@" > "$work/load.out" &
  local load=$!
  while kill -0 "$load" 2>/dev/null; do echo "$(now) $phase $(rss)"; sleep 2; done
  wait "$load" || true
  local peak at_end
  peak=$(awk '/^VmHWM/{print $2}' "/proc/$pid/status")
  at_end=$(rss)
  for _ in $(seq $((after / 2))); do echo "$(now) after-$phase $(rss)"; sleep 2; done
  echo "summary $phase: $(head -c 200 "$work/load.out" | tr '\n' ' ')"
  echo "summary $phase: idle $idle KiB, at the end of the load $at_end KiB, peak (VmHWM so far) $peak KiB, ${after} s after $(rss) KiB ($(awk -v a="$(rss)" -v b="$idle" 'BEGIN{printf "%.2f", a/b}')x idle)"
}
curve helo "$bench" --server "$addr" -c 64 -n "$helos" -r helo --expect oleh --duration 120
curve queue "$bench" --server "$addr" --mode queue-get -c 8 -n "$jobs" -r test: --expect Test --duration 300 --timeout 30
