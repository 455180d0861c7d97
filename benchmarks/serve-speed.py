#!/usr/bin/env python3
"""Aggregate generation speed of kuiper-server: S concurrent streaming clients, each asking for
N tokens (ignore_eos, so every stream runs to N), for each S. Reports generated tokens/s over
all streams (from each reply's usage) and the wall time. A benchmark, not a test: it asserts
nothing, and numbers from a shared machine are only indicative.

usage: benchmarks/serve-speed.py [-b BUILD] [-m MODEL [-z TOKENIZER]] [-s "1 4 8"] [-n 128]
                                 [-r REPS] [--threads T]
Defaults: build/, ../shared's stories260K, streams "1 4 8", 128 tokens, 3 repetitions (best).
"""
import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("KP_TEST_DATA", os.path.join(ROOT, "..", "shared"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stream(port, prompt, n, out, i):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    body = json.dumps({"prompt": prompt, "max_tokens": n, "temperature": 0, "stream": True, "ignore_eos": True,
                       "stream_options": {"include_usage": True}})
    c.request("POST", "/v1/completions", body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    got = 0
    for line in r:
        line = line.strip()
        if line.startswith(b"data: {"):
            ev = json.loads(line[6:])
            if ev.get("usage"):
                got = ev["usage"]["completion_tokens"]
    c.close()
    out[i] = got


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-b", default=os.path.join(ROOT, "build"))
    ap.add_argument("-m", default=os.path.join(DATA, "models/stories260K/stories260K.bin"))
    ap.add_argument("-z", default=None)
    ap.add_argument("-s", default="1 4 8")
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-r", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.z is None and a.m.endswith("stories260K.bin"):
        a.z = os.path.join(DATA, "models/stories260K/tok512.bin")
    streams = [int(x) for x in a.s.split()]
    port = free_port()
    cmd = [os.path.join(a.b, "examples", "kuiper-server"), "-m", a.m, "--port", str(port), "-np", str(max(streams)),
           "--threads", str(a.threads)] + (["-z", a.z] if a.z else [])
    srv = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        print(f"model {os.path.basename(a.m)}, {a.n} tokens per stream, best of {a.r}")
        base = None
        for s in streams:
            best = None
            for _ in range(a.r):
                out = [0] * s
                th = [threading.Thread(target=stream, args=(port, "Once upon a time", a.n, out, i)) for i in range(s)]
                t0 = time.perf_counter()
                for t in th:
                    t.start()
                for t in th:
                    t.join()
                dt = time.perf_counter() - t0
                rate = sum(out) / dt
                best = rate if best is None or rate > best else best
            base = base or best
            print(f"  {s:2d} streams: {best:9.1f} generated tok/s aggregate ({best / base:.2f}x one stream)")
    finally:
        srv.terminate()
        srv.wait()


if __name__ == "__main__":
    sys.exit(main())
