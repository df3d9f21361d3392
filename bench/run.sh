#!/usr/bin/env bash
# bgjobd against its peers, in one run, on this machine, loopback only.
#
#   bench/run.sh [ROUNDS] [REQUESTS]      (defaults: 3 rounds, 3000 requests)
#
# Every server serves the same one-line shell module (printf Test) on its own
# loopback port: bgjobd, ucspi-tcp's tcpserver, socat fork EXEC, gearmand
# with 8 `gearman -w` workers, and a stand-in of the old Node.js service
# answering in-process. bgjobd and tcpserver also serve a compiled module.
# The clients keep their write side open, as the seed's PHP clients do.
# Each is measured at 1, 8 and 64 concurrent clients, alternately, for
# several rounds; the table shows medians and the ratio bgjobd/peer. Then
# the spawn floor (a C loop that only spawns the module with pipes),
# payload scaling through a `cat` module against a plain pipe, and memory.
# Also bgjobd with every answer streamed ("answer": "stream"), an earlier
# bgjobd binary given as BGJOBD_BEFORE=PATH, per-round ratios, voluntary
# context switches per request of each daemon thread (its hand-offs), and
# payloads through a streamed cat with the daemon's peak RSS.
# Then warm .js modules with the old service's framing against the old
# service's stand-in, and memory at rest and after load (with
# BGJOBD_BEFORE=PATH, for that binary too, alternately).
# Installs the peers from the distribution's packages when run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
requests=${2:-3000}

need=()
command -v tcpserver >/dev/null || need+=(ucspi-tcp)
command -v socat >/dev/null || need+=(socat)
command -v gearmand >/dev/null || [ -x /usr/sbin/gearmand ] || need+=(gearman-job-server)
command -v gearman >/dev/null || need+=(gearman-tools)
command -v node >/dev/null || need+=(nodejs)
command -v cc >/dev/null || need+=(gcc)
if ((${#need[@]})); then
  if [ "$(id -u)" != 0 ]; then echo "bench: install ${need[*]} first" >&2; exit 1; fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
gearmand=$(command -v gearmand || echo /usr/sbin/gearmand)

cargo build --release -q --features bench --bin bgjobd --bin bgjob-bench
bench=$PWD/target/release/bgjob-bench
bgjobd=$PWD/target/release/bgjobd
work=$(mktemp -d)
chmod 755 "$work"   # modules of a root daemon run as nobody
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  pkill -f "$work/" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p"; }
rss_kib() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }

mkdir "$work/modules"
printf '#!/bin/sh\nprintf Test\n' > "$work/test.sh"
cc -O2 -o "$work/testc" bench/testc.c
cc -O2 -o "$work/floor" bench/floor.c
cp "$work/test.sh" "$work/modules/test"
cp "$work/testc" "$work/modules/testc"
cp /bin/cat "$work/modules/cat"   # cat itself, as the plain pipe runs it
printf '#!/bin/sh\nexec sleep 1000\n' > "$work/modules/hold"
chmod +x "$work"/test.sh "$work"/modules/*
cat > "$work/bgjobd.config" <<'EOF'
{"max_connections": 20000, "max_connections_per_client": 20000, "max_waiting": 200000, "idle_timeout_secs": 120,
 "max_request_bytes": 33554432, "max_output_bytes": 33554432}
EOF

# --- servers ---
"$bgjobd" -c "$work/bgjobd.config" -m "$work/modules" --state none -l 127.0.0.1:0 -1 > "$work/bgjobd.addr" 2>/dev/null &
pids+=($!); bgjobd_pid=$!
for _ in $(seq 100); do [ -s "$work/bgjobd.addr" ] && break; sleep 0.05; done
bg=$(head -n1 "$work/bgjobd.addr")
p_tcp=$(free_port); tcpserver -c 200 -R -H -l 0 -b 1024 127.0.0.1 "$p_tcp" "$work/test.sh" 2>/dev/null & pids+=($!)
p_tcpc=$(free_port); tcpserver -c 200 -R -H -l 0 -b 1024 127.0.0.1 "$p_tcpc" "$work/testc" 2>/dev/null & pids+=($!)
p_socat=$(free_port); socat "TCP-LISTEN:$p_socat,bind=127.0.0.1,fork,reuseaddr,backlog=1024" "EXEC:$work/test.sh" 2>/dev/null & pids+=($!)
p_gear=$(free_port); "$gearmand" -L 127.0.0.1 -p "$p_gear" --log-file none 2>/dev/null & pids+=($!); gearmand_pid=$!
mkdir "$work/jsmodules"
echo "exports.TExecute = function (parts, client) { client.end('Test'); };" > "$work/jsmodules/test.js"
p_node=$(free_port); node bench/oldservice.js "$p_node" "$work/jsmodules" & pids+=($!); node_pid=$!
for p in "$p_tcp" "$p_tcpc" "$p_socat" "$p_gear" "$p_node"; do wait_port "$p"; done
for _ in $(seq 8); do gearman -h 127.0.0.1 -p "$p_gear" -w -f test -- "$work/test.sh" 2>/dev/null & pids+=($!); done
sleep 0.5

targets=(
  "bgjobd|--server $bg -r test:hello --expect Test"
  "tcpserver|--server 127.0.0.1:$p_tcp -r test:hello --expect Test"
  "socat|--server 127.0.0.1:$p_socat -r test:hello --expect Test"
  "gearman|--mode gearman --server 127.0.0.1:$p_gear -r hello --expect Test"
  "node-old-service|--server 127.0.0.1:$p_node -r test:hello --expect Test"
  "bgjobd-compiled|--server $bg -r testc:hello --expect Test"
  "tcpserver-compiled|--server 127.0.0.1:$p_tcpc -r test:hello --expect Test"
)

# --- streamed answers, and the build before (its own section) ---
# bgjobd-stream: the same daemon with "answer": "stream" for every module
# (the module's stdout is the client's socket). With BGJOBD_BEFORE=PATH, that
# bgjobd binary (an earlier build) is measured too, as bgjobd-before.
start_bgjobd() { # NAME BINARY CONFIG: starts it, sets $NAME_addr and $NAME_pid
  "$2" -c "$3" -m "$work/modules" --state none -l 127.0.0.1:0 -1 > "$work/$1.addr" 2>/dev/null &
  pids+=($!); printf -v "${1}_pid" %s $!
  for _ in $(seq 100); do [ -s "$work/$1.addr" ] && break; sleep 0.05; done
  printf -v "${1}_addr" %s "$(head -n1 "$work/$1.addr")"
}
sed 's/}$/, "module_policy": {"test": {"answer": "stream"}, "testc": {"answer": "stream"}, "cat": {"answer": "stream"}}}/' \
  "$work/bgjobd.config" > "$work/stream.config"
start_bgjobd bgs "$bgjobd" "$work/stream.config"
targets+=(
  "bgjobd-stream|--server $bgs_addr -r test:hello --expect Test"
  "bgjobd-stream-compiled|--server $bgs_addr -r testc:hello --expect Test"
)
if [ -n "${BGJOBD_BEFORE:-}" ]; then
  start_bgjobd bgb "$BGJOBD_BEFORE" "$work/bgjobd.config"
  targets+=("bgjobd-before|--server $bgb_addr -r test:hello --expect Test")
fi
results="$work/results"
: > "$results"
echo "measuring: $rounds rounds x ${#targets[@]} servers x 3 concurrencies, $requests requests each (at most 20 s)" >&2
for round in $(seq "$rounds"); do
  for c in 1 8 64; do
    for t in "${targets[@]}"; do
      name=${t%%|*}; args=${t#*|}
      # shellcheck disable=SC2086
      line=$("$bench" $args -c "$c" -n "$requests" --duration 20 || true)
      echo "$name $c $(field req_per_sec <<<"$line") $(field p50_ms <<<"$line") $(field p99_ms <<<"$line") $(field errors <<<"$line") $(field wrong <<<"$line")" >> "$results"
    done
  done
  for c in 1 2; do
    echo "spawn-floor $c $("$work/floor" spawn "$work/test.sh" "$c" "$requests" | field spawns_per_sec) 0 0 0 0" >> "$results"
  done
  echo "round $round done" >&2
done

median() { sort -n | awk '{v[NR]=$1} END{if(NR==0){print 0} else if(NR%2){print v[(NR+1)/2]} else {print (v[NR/2]+v[NR/2+1])/2}}'; }
stat() { awk -v n="$1" -v c="$2" -v k="$3" '$1==n && $2==c {print $k}' "$results" | median; }
total() { awk -v n="$1" -v k="$2" '$1==n {s+=$k} END{print s+0}' "$results"; }

echo
echo "## Requests/s, medians of $rounds rounds ($(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r))"
echo
echo "| server | 1 client | 8 clients | 64 clients | 64: p50 / p99 ms | errors, wrong | bgjobd/it at 8 | at 64 |"
echo "|---|---|---|---|---|---|---|---|"
b8=$(stat bgjobd 8 3); b64=$(stat bgjobd 64 3)
for t in "${targets[@]}"; do
  n=${t%%|*}
  r1=$(stat "$n" 1 3); r8=$(stat "$n" 8 3); r64=$(stat "$n" 64 3)
  base8=$b8; base64=$b64
  case $n in *-compiled) base8=$(stat bgjobd-compiled 8 3); base64=$(stat bgjobd-compiled 64 3);; esac
  ratio8=$(awk -v a="$base8" -v b="$r8" 'BEGIN{printf (b>0 ? "%.2f" : "-"), a/b}')
  ratio64=$(awk -v a="$base64" -v b="$r64" 'BEGIN{printf (b>0 ? "%.2f" : "-"), a/b}')
  echo "| $n | $r1 | $r8 | $r64 | $(stat "$n" 64 4) / $(stat "$n" 64 5) | $(total "$n" 6), $(total "$n" 7) | $ratio8 | $ratio64 |"
done
f1=$(stat spawn-floor 1 3); f2=$(stat spawn-floor 2 3)
echo "| spawn floor (C, posix_spawn + pipes + wait) | $f1 | $f2 (2 at once) | | | | $(awk -v a="$b8" -v b="$f2" 'BEGIN{printf "%.2f", a/b}') | $(awk -v a="$b64" -v b="$f2" 'BEGIN{printf "%.2f", a/b}') |"

echo
echo "## bgjobd's ways against tcpserver and the spawn floor, medians of per-round ratios"
echo
echo "| bgjobd | /tcpserver at 8 | at 64 | /spawn floor at 8 | at 64 |"
echo "|---|---|---|---|---|"
for n in bgjobd bgjobd-stream bgjobd-before; do
  grep -q "^$n " "$results" || continue
  python3 - "$results" "$n" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
def per_round(name, c):
    return [float(r[2]) for r in rows if r[0] == name and r[1] == c]
def ratio(a, b):
    pairs = [x / y for x, y in zip(a, b) if y > 0]
    return "%.2f" % statistics.median(pairs) if pairs else "-"
n = sys.argv[2]
floor = per_round("spawn-floor", "2")
print("| %s | %s | %s | %s | %s |" % (n,
    ratio(per_round(n, "8"), per_round("tcpserver", "8")),
    ratio(per_round(n, "64"), per_round("tcpserver", "64")),
    ratio(per_round(n, "8"), floor), ratio(per_round(n, "64"), floor)))
PY
done

echo
echo "## Hand-offs: voluntary context switches per request of the daemon's threads (8 classic clients)"
echo
echo "| bgjobd | req/s | switches per request, by thread |"
echo "|---|---|---|"
switches() { for t in /proc/"$1"/task/*; do echo "$(cat "$t/comm") $(awk '/^voluntary/{print $2}' "$t/status")"; done; }
handoffs() { # NAME PID ADDR
  switches "$2" > "$work/sw.0"
  line=$("$bench" --server "$3" -r test:hello --expect Test -c 8 -n "$requests" || true)
  switches "$2" > "$work/sw.1"
  per=$(paste "$work/sw.0" "$work/sw.1" | awk -v n="$requests" '{t+=$4-$2; printf "%s %.2f, ", $1, ($4-$2)/n} END{printf "all %.2f", t/n}')
  echo "| $1 | $(field req_per_sec <<<"$line") | $per |"
}
handoffs bgjobd "$bgjobd_pid" "$bg"
handoffs bgjobd-stream "$bgs_pid" "$bgs_addr"
if [ -n "${BGJOBD_BEFORE:-}" ]; then handoffs bgjobd-before "$bgb_pid" "$bgb_addr"; fi

echo
echo "## Payload through a streamed cat module (1 client, half-closing, writing while it reads), MB/s of payload"
echo
echo "| size | bgjobd streamed | plain pipe to cat | ratio | daemon's peak RSS after |"
echo "|---|---|---|---|---|"
# shellcheck source=bench/payload.sh
. bench/payload.sh
for size in 65536 1048576 16777216; do
  read -r mbs floor ratio peak <<<"$(payload_measure "$bgs_addr" "$bgs_pid" "$size")"
  echo "| $size | $mbs | $floor | $ratio | $peak KiB |"
done

echo
echo "## Payload through a cat module (1 client, half-closing), MB/s of payload"
echo
echo "| size | bgjobd | plain pipe to cat | ratio |"
echo "|---|---|---|---|"
for size in 1024 65536 1048576 16777216; do
  n=$(( size >= 16777216 ? 10 : size >= 1048576 ? 50 : 500 ))
  line=$("$bench" --server "$bg" -c 1 -n "$n" -r cat: --payload-bytes "$size" --half-close --expect-len "$size" || true)
  mbs=$(awk -v r="$(field req_per_sec <<<"$line")" -v s="$size" 'BEGIN{printf "%.1f", r*s/1e6}')
  floor=$("$work/floor" pipe "$size" "$n" | field mb_per_sec)
  echo "| $size | $mbs | $floor | $(awk -v a="$mbs" -v b="$floor" 'BEGIN{printf "%.2f", a/b}') |"
done
echo
echo "bgjobd (buffered) peak RSS after these payloads: $(awk '/^VmHWM/{print $2}' "/proc/$bgjobd_pid/status") KiB"

echo
echo "## Memory (RSS, a fresh bgjobd; the peers after their runs)"
echo
"$bgjobd" -c "$work/bgjobd.config" -m "$work/modules" --state none -l 127.0.0.1:0 -1 > "$work/m.addr" 2>/dev/null &
pids+=($!); m_pid=$!
for _ in $(seq 100); do [ -s "$work/m.addr" ] && break; sleep 0.05; done
m=$(head -n1 "$work/m.addr")
sleep 0.5
idle=$(rss_kib "$m_pid")
"$bench" --server "$m" --mode idle -c 10000 --duration 6 > "$work/idle.out" &
idle_pid=$!
sleep 4
held=$(rss_kib "$m_pid")
wait "$idle_pid" || true
echo "| what | bgjobd | gearmand | old Node.js service |"
echo "|---|---|---|---|"
echo "| idle | $idle KiB | $(rss_kib "$gearmand_pid") KiB | $(rss_kib "$node_pid") KiB |"
echo "| 10,000 idle connections ($(cat "$work/idle.out")) | $held KiB, $(( (held - idle) * 1024 / 10000 )) bytes each | | |"
# 100,000 queued jobs waiting behind one that holds the only running slot.
echo '{"max_jobs": 1, "max_waiting": 200000, "max_waiting_per_client": 200000}' > "$work/queue.config"
"$bgjobd" -c "$work/queue.config" -m "$work/modules" --state none -l 127.0.0.1:0 -1 > "$work/q.addr" 2>/dev/null &
pids+=($!); q_pid=$!
for _ in $(seq 100); do [ -s "$work/q.addr" ] && break; sleep 0.05; done
q=$(head -n1 "$work/q.addr")
before=$(rss_kib "$q_pid")
"$bench" --server "$q" -c 8 -n 100000 -r 'queue:add:hold:x' --half-close --expect-prefix id: > /dev/null
after=$(rss_kib "$q_pid")
echo "| 100,000 jobs waiting (1 byte of data each) | $after KiB, $(( (after - before) * 1024 / 100000 )) bytes each | | |"

# --- first-read framing: warm .js modules for the old service's clients ---
# Classic clients (write, wait, never half-close) of `test.js` on warm
# workers: a listener with the default framing and one with "framing":
# "first-read", against the old service's stand-in, alternately.
first_read_figures() {
  mkdir -p "$work/fr"
  echo '{"node_workers": 2}' > "$work/fr/quiet.config"
  echo '{"node_workers": 2, "listen": [{"address": "127.0.0.1", "port": 0, "framing": "first-read"}]}' > "$work/fr/seed.config"
  "$bgjobd" -c "$work/fr/quiet.config" -m "$work/jsmodules" --state none -l 127.0.0.1:0 -1 > "$work/fr/quiet.addr" 2>/dev/null &
  pids+=($!)
  "$bgjobd" -c "$work/fr/seed.config" -m "$work/jsmodules" --state none -1 > "$work/fr/seed.addr" 2>/dev/null &
  pids+=($!)
  for f in quiet seed; do for _ in $(seq 100); do [ -s "$work/fr/$f.addr" ] && break; sleep 0.05; done; done
  local quiet seed out="$work/fr/results"
  quiet=$(head -n1 "$work/fr/quiet.addr"); seed=$(head -n1 "$work/fr/seed.addr")
  : > "$out"
  for _ in $(seq "$rounds"); do
    for c in 1 8 64; do
      for t in "default|$quiet" "first-read|$seed" "old|127.0.0.1:$p_node"; do
        local line
        line=$("$bench" --server "${t#*|}" -r test:hello --expect Test -c "$c" -n "$requests" --duration 20 || true)
        echo "${t%%|*} $c $(field req_per_sec <<<"$line") $(field p50_ms <<<"$line") $(field errors <<<"$line") $(field wrong <<<"$line")" >> "$out"
      done
    done
  done
  local fr_stat
  fr_stat() { awk -v n="$1" -v c="$2" -v k="$3" '$1==n && $2==c {print $k}' "$out" | median; }
  echo
  echo "## Warm .js modules, classic clients: first-read framing against the old service (medians of $rounds rounds)"
  echo
  echo "| clients | bgjobd, default framing | bgjobd, first-read | old service | default/old | first-read/old | p50 ms first-read / old | errors, wrong |"
  echo "|---|---|---|---|---|---|---|---|"
  for c in 1 8 64; do
    local d f o
    d=$(fr_stat default "$c" 3); f=$(fr_stat first-read "$c" 3); o=$(fr_stat old "$c" 3)
    echo "| $c | $d | $f | $o | $(awk -v a="$d" -v b="$o" 'BEGIN{printf (b>0 ? "%.2f" : "-"), a/b}') | $(awk -v a="$f" -v b="$o" 'BEGIN{printf (b>0 ? "%.2f" : "-"), a/b}') | $(fr_stat first-read "$c" 4) / $(fr_stat old "$c" 4) | $(awk -v c="$c" '$2==c {e+=$5; w+=$6} END{print e+0", "w+0}' "$out") |"
  done
}

# --- memory at rest and after load ---
# The binary's size, a fresh daemon's RSS by mapping, and the RSS a helo
# load and a queue load leave a minute after they end (bench/memory.sh).
memory_figures() {
  local builds=("current|$bgjobd")
  [ -n "${BGJOBD_BEFORE:-}" ] && builds=("before|$BGJOBD_BEFORE" "${builds[@]}")
  echo
  echo "## Memory at rest and after load (bench/memory.sh: 60,000 helos from 64 clients, then 10,000 queue jobs added, done and fetched; RSS a minute after each)"
  echo
  echo "| build | binary bytes | idle RSS KiB, by mapping | after helos: peak / a minute later KiB | after queue jobs: peak / a minute later KiB |"
  echo "|---|---|---|---|---|"
  local b
  for b in "${builds[@]}"; do
    local out="$work/mem.${b%%|*}"
    bench/memory.sh "${b#*|}" 60000 10000 60 > "$out" 2>&1 || true
    local idle helo queue
    idle=$(sed -n 's/^idle rss_kib=\([0-9]*\) threads=\([0-9]*\):\(.*\)/\1 (\2 threads:\3)/p' "$out")
    helo=$(sed -n 's/^summary helo: .*at the end of the load \([0-9]*\) KiB.*after \([0-9]*\) KiB (\(.*\) idle)/\1 \/ \2 (\3)/p' "$out")
    queue=$(sed -n 's/^summary queue: .*at the end of the load \([0-9]*\) KiB.*after \([0-9]*\) KiB (\(.*\) idle)/\1 \/ \2 (\3)/p' "$out")
    echo "| ${b%%|*} | $(wc -c < "${b#*|}") | $idle | $helo | $queue |"
  done
}

first_read_figures
memory_figures
