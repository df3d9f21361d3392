#!/usr/bin/env bash
# The soak and fault test at a larger scale (the suite runs scale 1):
# good requests, garbage, slow and vanishing clients, hanging, crashing,
# forking, flooding and non-reading modules, a UDP flood and (from scale 10)
# 10,000 idle connections at once, then the checks. Loopback only, bounded.
#
#   bench/soak.sh [SCALE]      (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
BGJOB_SOAK_SCALE=${1:-10} cargo test --release --test integration soak -- --nocapture 2>&1 \
  | grep -E '^soak|^test soak|^(uptime|jobs|total|connections|datagrams)'
