#!/usr/bin/env python3
"""The loop and memory during a compaction of large live results.

Queues LIVE results of 4 MiB each (kept unfetched), then adds and fetches
4 MiB jobs until the journal compacts, while a second thread sends `helo`
every 2 ms. Prints the helo latencies (the loop's stalls) and the peak RSS
of the daemon. Run it against this build and another (e.g. one built from
an older commit):

    bench/compaction.py target/release/bgjobd [LIVE]
"""
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

binary = os.path.abspath(sys.argv[1])
live_count = int(sys.argv[2]) if len(sys.argv) > 2 else 32
work = tempfile.mkdtemp(prefix="bgjob-compaction")
os.chmod(work, 0o755)  # modules of a root daemon run as nobody
os.mkdir(work + "/modules")
with open(work + "/modules/echo", "w") as f:
    f.write("#!/bin/sh\ncat\n")
os.chmod(work + "/modules/echo", 0o755)
big_limits = 256 << 20
with open(work + "/c.json", "w") as f:
    f.write(
        '{"max_request_bytes": %d, "max_output_bytes": %d, "max_waiting_bytes": %d,'
        ' "max_waiting_bytes_per_client": %d, "result_retention_bytes": %d,'
        ' "result_retention_bytes_per_client": %d}'
        % ((8 << 20), (8 << 20), big_limits, big_limits, big_limits, big_limits)
    )
log = open(work + "/log", "w")
daemon = subprocess.Popen(
    [binary, "-v", "-1", "--listen", "127.0.0.1:0", "-m", "modules", "-c", "c.json"],
    cwd=work, stdout=subprocess.PIPE, stderr=log,
)
host, port = daemon.stdout.readline().decode().strip().rsplit(":", 1)


def ask(request):
    with socket.create_connection((host, int(port))) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        return b"".join(iter(lambda: s.recv(1 << 20), b""))


try:
    data = b"x" * (4 << 20)
    ids = [ask(b"queue:add:echo:" + data).decode() for _ in range(live_count)]
    for i in ids:
        while ask(("queue:check:" + i).encode()) != b"2":
            time.sleep(0.01)
    latencies, stop = [], False

    def ping():
        while not stop:
            t = time.perf_counter()
            ask(b"helo")
            latencies.append(time.perf_counter() - t)
            time.sleep(0.002)

    pinger = threading.Thread(target=ping)
    pinger.start()
    started = time.time()
    while "compacted" not in open(work + "/log").read() and time.time() - started < 300:
        i = ask(b"queue:add:echo:" + data).decode()
        ask(("queue:get:" + i).encode())
    time.sleep(0.5)
    stop = True
    pinger.join()
    with open("/proc/%d/status" % daemon.pid) as f:
        peak = [l.split()[1] for l in f if l.startswith("VmHWM")][0]
    latencies.sort()
    n = len(latencies)
    print(
        "%d live MiB: helo p50 %.2f ms, p99 %.2f ms, max %.1f ms (%d); peak RSS %d MiB"
        % (4 * live_count, latencies[n // 2] * 1e3, latencies[int(n * 0.99)] * 1e3,
           latencies[-1] * 1e3, n, int(peak) // 1024)
    )
finally:
    daemon.kill()
    daemon.wait()
    subprocess.run(["rm", "-rf", work])
