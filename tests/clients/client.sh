#!/bin/sh
# Shell clients of bgjobd: the bgjob command, nc and socat.
# Usage: client.sh PORT   (bgjob must be on PATH)
set -eu
port=$1
export BGJOB_SERVER=127.0.0.1:$port

# bgjob: run a module, queue a job and fetch its answer, branch on errors.
bgjob run upper 'hello from bgjob'; echo
id=$(bgjob add upper 'queued')
bgjob get "$id"; echo
bgjob run nosuchmodule x 2>/dev/null || echo "unknown module: exit $?"

# nc: -N half-closes after stdin ends, so the answer comes at once.
printf 'upper:hello from nc' | nc -N 127.0.0.1 "$port"; echo

# socat: shut-down after EOF on stdin half-closes too.
printf 'upper:hello from socat' | socat - "TCP:127.0.0.1:$port"; echo
