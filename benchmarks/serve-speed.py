#!/usr/bin/env python3
"""Aggregate generation speed of kuiper-server: S concurrent streaming clients, each asking for
N tokens (ignore_eos, so every stream runs to N), for each S. Reports generated tokens/s over
all streams (from each reply's usage) and the wall time. A benchmark, not a test: it asserts
nothing, and numbers from a shared machine are only indicative.

usage: benchmarks/serve-speed.py [-b BUILD] [-m MODEL [-z TOKENIZER]] [-s "1 4 8"] [-n 128]
                                 [-r REPS] [--threads T] [--peer]
Defaults: build/, ../shared's stories260K, streams "1 4 8", 128 tokens, 3 repetitions (best).
--peer also runs llama-cpp-python's own OpenAI server (`python3 -m llama_cpp.server`, from
`pip install 'llama-cpp-python[server]'`) on the same GGUF, threads and load, one after the other,
and prints the ratio. It does not support ignore_eos, so both get the end-of-text id biased away
(the model's EOS must not end a stream early for the counts to compare).
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


def stream(port, prompt, n, out, i, peer=False):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    req = {"prompt": prompt, "max_tokens": n, "temperature": 0, "stream": True}
    if peer:
        req["logit_bias"] = {str(EOS[0]): -100.0} if EOS else {}
    else:
        req.update({"ignore_eos": True, "stream_options": {"include_usage": True}})
    body = json.dumps(req)
    c.request("POST", "/v1/completions", body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    got = 0
    for line in r:
        line = line.strip()
        if line.startswith(b"data: {"):
            ev = json.loads(line[6:])
            if ev.get("usage"):
                got = ev["usage"]["completion_tokens"]
            elif peer and ev.get("choices") and ev["choices"][0].get("text"):
                got += 1  # llama_cpp.server streams one chunk per generated token
    c.close()
    out[i] = got


EOS = []


def wait_ready(port, path):
    for _ in range(600):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", path)
            if c.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server on port {port} did not come up")


def run_load(port, streams, a, peer):
    """Best aggregate tok/s per stream count. The counts take turns within each repetition, so
    that a slow spell of a shared machine (minutes long on the VMs measured) costs every count
    alike instead of the whole of one, which would skew the ratios."""
    rates = {}
    for _ in range(a.r):
        for s in streams:
            out = [0] * s
            th = [threading.Thread(target=stream, args=(port, "Once upon a time", a.n, out, i, peer)) for i in range(s)]
            t0 = time.perf_counter()
            for t in th:
                t.start()
            for t in th:
                t.join()
            rate = sum(out) / (time.perf_counter() - t0)
            rates[s] = max(rates.get(s, rate), rate)
    return rates


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-b", default=os.path.join(ROOT, "build"))
    ap.add_argument("-m", default=os.path.join(DATA, "models/stories260K/stories260K.bin"))
    ap.add_argument("-z", default=None)
    ap.add_argument("-s", default="1 4 8")
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-r", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--peer", action="store_true")
    a = ap.parse_args()
    if a.z is None and a.m.endswith("stories260K.bin"):
        a.z = os.path.join(DATA, "models/stories260K/tok512.bin")
    streams = [int(x) for x in a.s.split()]
    threads = a.threads or os.cpu_count()
    print(f"model {os.path.basename(a.m)}, {a.n} tokens per stream, best of {a.r}, {threads} threads")
    print(f"CPU: {cpu_name()}")
    if a.peer:
        import importlib.util
        import llama_cpp
        missing = [m for m in ("uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")
                   if importlib.util.find_spec(m) is None]
        if missing:
            sys.exit(f"--peer needs llama_cpp.server's extras ({', '.join(missing)} missing): "
                     "pip install 'llama-cpp-python[server]'")
        lm = llama_cpp.Llama(model_path=a.m, vocab_only=True, verbose=False)
        EOS.append(lm.token_eos())
        lm.close()
    port = free_port()
    cmd = [os.path.join(a.b, "examples", "kuiper-server"), "-m", a.m, "--port", str(port), "-np", str(max(streams)),
           "--threads", str(threads)] + (["-z", a.z] if a.z else [])
    srv = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port, "/health")
        ours = run_load(port, streams, a, False)
    finally:
        srv.terminate()
        srv.wait()
    theirs = {}
    if a.peer:
        import llama_cpp
        port = free_port()
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", a.m, "--port", str(port), "--host", "127.0.0.1",
               "--n_threads", str(threads), "--n_ctx", str(max(512, a.n + 64))]
        srv = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ready(port, "/v1/models")
            theirs = run_load(port, streams, a, True)
        finally:
            srv.terminate()
            srv.wait()
        print(f"peer: llama-cpp-python {llama_cpp.__version__} server (llama_cpp.server)")
    base = ours[streams[0]]
    for s in streams:
        line = f"  {s:2d} streams: {ours[s]:9.1f} tok/s aggregate ({ours[s] / base:.2f}x one stream)"
        if s in theirs:
            line += f"; llama_cpp.server {theirs[s]:9.1f} tok/s, ratio {ours[s] / theirs[s]:.2f}x"
        print(line)


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
