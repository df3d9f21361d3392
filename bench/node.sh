#!/usr/bin/env bash
# .js modules and `helo`: bgjobd (warm workers; and one process per request)
# against the old Node.js service answering in process (bench/oldservice.js),
# in one run on loopback, with classic clients (write, then wait without
# half-closing, as the seed's PHP clients do) and half-closing ones; the
# classic clients also against a listener with the old service's framing
# ("framing": "first-read").
#
#   bench/node.sh [REQUESTS] [ROUNDS]   (defaults 3000 and 3; cold mode runs a tenth)
#
# Then ROUNDS rounds of the first-read rows alone, the servers alternating,
# with medians and the ratio to the old service per round; with
# BGJOBD_BEFORE=PATH, that bgjobd binary (an earlier build) is measured in
# them too, on a listener of its own with the same settings.
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-3000}
rounds=${2:-3}
cargo build --release -q --features bench --bin bgjobd --bin bgjob-bench
bench=$PWD/target/release/bgjob-bench
work=$(mktemp -d)
chmod 755 "$work"   # modules of a root daemon run as nobody
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

mkdir "$work/modules"
chmod 755 "$work/modules"
echo "exports.TExecute = function (parts, client) { client.end('Test'); };" > "$work/modules/test.js"
start() { # name, json settings
  echo "$2" > "$work/$1.config"
  target/release/bgjobd -c "$work/$1.config" -m "$work/modules" --state none -l 127.0.0.1:0 -1 > "$work/$1.addr" 2>/dev/null &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$work/$1.addr" ] && break; sleep 0.05; done
}
start warm '{"node_workers": 2}'
# The old service's framing: its classic clients' requests end with their
# first read, with no quiet gap (a listener of its own: --listen would
# replace the config's listeners).
echo '{"node_workers": 2, "listen": [{"address": "127.0.0.1", "port": 0, "framing": "first-read"}]}' > "$work/seed.config"
target/release/bgjobd -c "$work/seed.config" -m "$work/modules" --state none -1 > "$work/seed.addr" 2>/dev/null &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/seed.addr" ] && break; sleep 0.05; done
if [ -n "${BGJOBD_BEFORE:-}" ]; then
  "$BGJOBD_BEFORE" -c "$work/seed.config" -m "$work/modules" --state none -1 > "$work/before.addr" 2>/dev/null &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$work/before.addr" ] && break; sleep 0.05; done
fi
start cold '{"node_workers": 0, "max_jobs": 8}'
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
node bench/oldservice.js "$port" "$work/modules" & pids+=($!)
sleep 0.5
warm=$(head -n1 "$work/warm.addr"); seed=$(head -n1 "$work/seed.addr"); cold=$(head -n1 "$work/cold.addr"); old=127.0.0.1:$port
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p"; }
run() { # addr, requests, request, expected, clients, client mode flag
  "$bench" --server "$1" -n "$2" -r "$3" --expect "$4" -c "$5" $6 --duration 30 || true
}
echo "node -e 0: $( { /usr/bin/time -f %e node -e 0; } 2>&1 ) s; $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r)"
echo
echo "| request | clients | client | bgjobd req/s | old service req/s | bgjobd/old | p50 ms bgjobd / old | errors, wrong |"
echo "|---|---|---|---|---|---|---|---|"
for c in 1 8 64; do
  for r in "test:hello|Test" "helo|oleh"; do
    IFS='|' read -r req expect <<<"$r"
    for mode in classic half-closing; do
      flag=""; [ "$mode" = half-closing ] && flag=--half-close
      a=$(run "$warm" "$requests" "$req" "$expect" "$c" "$flag")
      b=$(run "$old" "$requests" "$req" "$expect" "$c" "$flag")
      ra=$(field req_per_sec <<<"$a"); rb=$(field req_per_sec <<<"$b")
      ratio=$(awk -v a="$ra" -v b="$rb" 'BEGIN{printf (b>0 ? "%.2f" : "-"), a/b}')
      name=$req; [ "$req" = test:hello ] && name="test.js (warm)"
      echo "| $name | $c | $mode | $ra | $rb | $ratio | $(field p50_ms <<<"$a") / $(field p50_ms <<<"$b") | $(field errors <<<"$a")+$(field errors <<<"$b"), $(field wrong <<<"$a")+$(field wrong <<<"$b") |"
      if [ "$mode" = classic ]; then
        s=$(run "$seed" "$requests" "$req" "$expect" "$c" "")
        b=$(run "$old" "$requests" "$req" "$expect" "$c" "")
        rs=$(field req_per_sec <<<"$s"); rb=$(field req_per_sec <<<"$b")
        ratio=$(awk -v a="$rs" -v b="$rb" 'BEGIN{printf (b>0 ? "%.2f" : "-"), a/b}')
        echo "| $name, first-read framing | $c | $mode | $rs | $rb | $ratio | $(field p50_ms <<<"$s") / $(field p50_ms <<<"$b") | $(field errors <<<"$s")+$(field errors <<<"$b"), $(field wrong <<<"$s")+$(field wrong <<<"$b") |"
      fi
    done
  done
  a=$(run "$cold" "$((requests / 10))" test:hello Test "$c" --half-close)
  echo "| test.js (cold, a process per request) | $c | half-closing | $(field req_per_sec <<<"$a") | | | $(field p50_ms <<<"$a") | $(field errors <<<"$a"), $(field wrong <<<"$a") |"
done

# First-read rows alone, in rounds, alternating (the build before too, if
# given): requests/s, p50, and each round's ratio to the old service.
targets=("first-read|$seed")
[ -n "${BGJOBD_BEFORE:-}" ] && targets+=("before|$(head -n1 "$work/before.addr")")
targets+=("old|$old")
: > "$work/rounds"
for round in $(seq "$rounds"); do
  for c in 1 8 64; do
    for t in "${targets[@]}"; do
      line=$(run "${t#*|}" "$requests" test:hello Test "$c" "")
      echo "$round ${t%%|*} $c $(field req_per_sec <<<"$line") $(field p50_ms <<<"$line") $(field errors <<<"$line") $(field wrong <<<"$line")" >> "$work/rounds"
    done
  done
done
echo
echo "## test.js (warm), classic clients, first-read framing: $rounds rounds, alternating"
echo
python3 - "$work/rounds" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
names = []
for r in rows:
    if r[1] not in names:
        names.append(r[1])
def cell(name, c, k):
    return [float(r[k]) for r in rows if r[1] == name and r[2] == c]
bgjobd = [n for n in names if n != "old"]
head = ["clients"] + ["%s req/s" % n for n in names] + ["%s/old per round" % n for n in bgjobd]
head += ["%s/old median" % n for n in bgjobd] + ["p50 ms " + " / ".join(names), "errors, wrong"]
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for c in ("1", "8", "64"):
    old = cell("old", c, 3)
    line = [c] + ["%.0f" % statistics.median(cell(n, c, 3)) for n in names]
    ratios = {n: [a / b for a, b in zip(cell(n, c, 3), old) if b > 0] for n in bgjobd}
    line += [" ".join("%.2f" % x for x in ratios[n]) for n in bgjobd]
    line += ["%.2f" % statistics.median(ratios[n]) if ratios[n] else "-" for n in bgjobd]
    line += [" / ".join("%.2f" % statistics.median(cell(n, c, 4)) for n in names)]
    errors = sum(int(r[5]) for r in rows if r[2] == c)
    wrong = sum(int(r[6]) for r in rows if r[2] == c)
    line += ["%d, %d" % (errors, wrong)]
    print("| " + " | ".join(line) + " |")
PY
