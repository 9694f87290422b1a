#!/usr/bin/env python3
"""Cold start of `ledge serve`: spawn on a fresh data directory, poll GET /health every 0.5 ms on
fresh connections until it answers 200, N times; prints each time and the median.

usage: scripts/bench-cold-start.py [path/to/ledge] [N]   (default target/release/ledge, 10)
"""
import os
import socket
import subprocess
import sys
import tempfile
import time

def probe(port):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=0.05)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = s.recv(100); s.close()
        return data.startswith(b"HTTP/1.1 200")
    except OSError:
        return False
res = []
binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "target", "release", "ledge")
for i in range(int(sys.argv[2]) if len(sys.argv) > 2 else 10):
    d = tempfile.mkdtemp()
    env = dict(os.environ, PORT="18811", LEDGE_DATA_DIR=d, LEDGE_LOG="warn", LEDGE_GITHUB_WEBHOOK_SECRET="x")
    t0 = time.perf_counter()
    p = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not probe(18811):
        time.sleep(0.0005)
    res.append((time.perf_counter() - t0) * 1000)
    p.terminate(); p.wait()
print(" ".join(f"{r:.1f}" for r in res), " median", sorted(res)[len(res)//2])
