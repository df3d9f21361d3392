#!/usr/bin/env bash
# Payloads through a streamed `cat` module (the module's stdout is the
# client's socket) against a plain pipe to cat (`bench/floor.c pipe`), on
# loopback: 1 client that half-closes and reads while it writes, MB/s of
# payload, and the daemon's peak RSS so far.
#
#   bench/payload.sh [ROUNDS]     (default 3; with BGJOBD_BEFORE=PATH, that
#                                  bgjobd binary too, alternately)
#
# Each measurement of a daemon is followed by one of the plain pipe, and
# its ratio is taken against that one: on a shared machine only ratios
# within a round mean much. Prints one line per round, size and daemon, then
# the medians of the per-round ratios. With socat, also the TCP floor: cat
# with the client's socket as its stdin and stdout (tcp_cat), which no
# daemon relaying over TCP can pass. bench/run.sh sources this file for
# its payload section (payload_measure), so both measure the same way.

# payload_measure ADDR PID SIZE [EXTRA]: prints "MB/s pipe-MB/s ratio
# peak-KiB" for SIZE bytes through cat at ADDR (a bgjobd with cat streamed,
# pid PID; `-` for a server whose memory is not asked), whose answer holds
# EXTRA bytes more than the payload (the head, from a server that echoes it).
# Needs $bench (bgjob-bench) and $work/floor (bench/floor.c).
payload_measure() {
  local addr=$1 pid=$2 size=$3 extra=${4:-0} n line mbs pipe peak=-
  n=$(( size >= 16777216 ? 10 : size >= 1048576 ? 50 : 500 ))
  line=$("$bench" --server "$addr" -c 1 -n "$n" -r cat: --payload-bytes "$size" --half-close --expect-len "$((size + extra))" || true)
  mbs=$(awk -v r="$(sed -n 's/.*req_per_sec=\([^ ]*\).*/\1/p' <<<"$line")" -v s="$size" 'BEGIN{printf "%.1f", r*s/1e6}')
  pipe=$("$work/floor" pipe "$size" "$n" | sed -n 's/.*mb_per_sec=\([^ ]*\).*/\1/p')
  [ "$pid" = - ] || peak=$(awk '/^VmHWM/{print $2}' "/proc/$pid/status")
  echo "$mbs $pipe $(awk -v a="$mbs" -v b="$pipe" 'BEGIN{printf "%.2f", a/b}') $peak"
}

# Run, not sourced: its own daemons, rounds and medians.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  cd "$(dirname "$0")/.."
  rounds=${1:-3}
  cargo build --release -q --features bench --bin bgjobd --bin bgjob-bench
  bench=$PWD/target/release/bgjob-bench
  work=$(mktemp -d)
  chmod 755 "$work"   # modules of a root daemon run as nobody
  pids=()
  trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
  cc -O2 -o "$work/floor" bench/floor.c
  mkdir "$work/modules"
  cp /bin/cat "$work/modules/cat"   # cat itself, as the plain pipe runs it
  cat > "$work/stream.config" <<'CONF'
{"max_request_bytes": 33554432, "max_output_bytes": 33554432, "idle_timeout_secs": 120,
 "module_policy": {"cat": {"answer": "stream"}}}
CONF
  start() { # NAME BINARY: starts it, sets $NAME_addr and $NAME_pid
    "$2" -c "$work/stream.config" -m "$work/modules" --state none -l 127.0.0.1:0 -1 > "$work/$1.addr" 2>/dev/null &
    pids+=($!); printf -v "${1}_pid" %s $!
    for _ in $(seq 100); do [ -s "$work/$1.addr" ] && break; sleep 0.05; done
    printf -v "${1}_addr" %s "$(head -n1 "$work/$1.addr")"
  }
  start after "$PWD/target/release/bgjobd"
  names=(after)
  if [ -n "${BGJOBD_BEFORE:-}" ]; then start before "$BGJOBD_BEFORE"; names+=(before); fi
  # The TCP floor: cat whose stdin and stdout are the client's socket itself
  # (socat forks and execs it per connection, nothing in between); it
  # echoes the head `cat:` too.
  if command -v socat >/dev/null; then
    tcp_cat_addr=127.0.0.1:$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    socat "TCP-LISTEN:${tcp_cat_addr#*:},bind=127.0.0.1,fork,reuseaddr,backlog=128" EXEC:/bin/cat,nofork 2>/dev/null &
    pids+=($!); tcp_cat_pid=-; names+=(tcp_cat); sleep 0.3
  fi
  echo "| round | size | bgjobd | MB/s | plain pipe MB/s | /pipe | peak RSS KiB |"
  echo "|---|---|---|---|---|---|---|"
  : > "$work/rows"
  for round in $(seq "$rounds"); do
    for size in 65536 1048576 16777216; do
      for name in "${names[@]}"; do
        addr_var=${name}_addr; pid_var=${name}_pid
        extra=0; [ "$name" = tcp_cat ] && extra=4
        read -r mbs pipe ratio peak <<<"$(payload_measure "${!addr_var}" "${!pid_var}" "$size" "$extra")"
        echo "| $round | $size | $name | $mbs | $pipe | $ratio | $peak |"
        echo "$name $size $ratio" >> "$work/rows"
      done
    done
  done
  echo
  echo "| size | bgjobd | median of per-round /pipe |"
  echo "|---|---|---|"
  for size in 65536 1048576 16777216; do
    for name in "${names[@]}"; do
      med=$(awk -v n="$name" -v s="$size" '$1==n && $2==s {print $3}' "$work/rows" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
      echo "| $size | $name | $med |"
    done
  done
fi
