#!/usr/bin/env bash
# What the loop pays per request to look a module up: one stat(2) of a
# known module's file (is it still there?), or two for a name the index does
# not know (NAME, then NAME.js). Runs a C loop of the same calls on a file
# in a fresh modules folder and prints microseconds per lookup, 3 rounds.
#
#   bench/lookup.sh [COUNT]      (default 200000 lookups a round)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-200000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/modules"
printf '#!/bin/sh\nprintf Test\n' > "$work/modules/test"
chmod 755 "$work/modules/test"
cat > "$work/lookup.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}
int main(int argc, char **argv) {
  const char *known = argv[1], *missing = argv[2], *missing_js = argv[3];
  long n = atol(argv[4]);
  struct stat st;
  for (int round = 0; round < 3; round++) {
    double a = now();
    for (long i = 0; i < n; i++) stat(known, &st);
    double b = now();
    for (long i = 0; i < n; i++) { stat(missing, &st); stat(missing_js, &st); }
    double c = now();
    printf("known_us=%.2f unknown_us=%.2f\n", (b - a) / n, (c - b) / n);
  }
  return 0;
}
C
cc -O2 -o "$work/lookup" "$work/lookup.c"
echo "module lookups, $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r), load $(cut -d' ' -f1 /proc/loadavg), $(df -T "$work" | awk 'NR==2{print $2}'):"
"$work/lookup" "$work/modules/test" "$work/modules/nosuch" "$work/modules/nosuch.js" "$count"
