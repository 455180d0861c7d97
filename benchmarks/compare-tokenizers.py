#!/usr/bin/env python3
"""Tokenizer speed: libkuiper (bench-tokenizer) against Hugging Face `tokenizers`, same run.

usage: compare-tokenizers.py BUILD_DIR [--shared DIR] [--repeat N]

Needs `pip install tokenizers` and a build with -Dbenchmarks=true. Both sides encode
shared/tokenizers/bench_1mb.txt on one thread (Hugging Face with RAYON_NUM_THREADS=1) and are
timed in CPU seconds, best of N, so that other load on the machine counts as little as possible.
Also checks that both produce the same ids for the whole text (through kuiper-tokenize), and
compares tokenizer.json load times.
"""
import argparse, json, os, subprocess, sys, time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

VOCABS = ["llama3", "qwen3"]
LOADS = ["llama3", "llama3_1", "qwen3", "llama2-sp", "tok512-sp"]


def find(build, name):
    for root, _, files in os.walk(build):
        if name in files and os.access(os.path.join(root, name), os.X_OK):
            return os.path.join(root, name)
    sys.exit(f"{name} not found under {build} (configure with -Dbenchmarks=true and build it)")


def best_cpu(fn, repeat):
    best = None
    for _ in range(repeat):
        t0 = time.process_time()
        out = fn()
        dt = time.process_time() - t0
        best = dt if best is None or dt < best else best
    return best, out


def hf_numbers(shared, text, repeat):
    from tokenizers import Tokenizer, __version__
    enc, load, ids = {}, {}, {}
    for v in LOADS:
        path = f"{shared}/tokenizers/{v}/tokenizer.json"
        load[v], tok = best_cpu(lambda: Tokenizer.from_file(path), repeat)
        if v in VOCABS:
            tok.encode(text, add_special_tokens=False)  # warm-up (caches, allocations)
            enc[v], e = best_cpu(lambda: tok.encode(text, add_special_tokens=False), repeat)
            ids[v] = e.ids
    return __version__, enc, load, ids


def kp_numbers(build, shared, repeat):
    exe = find(build, "bench-tokenizer")
    env = dict(os.environ, KP_TEST_DATA=shared)
    out = subprocess.run([exe, "--benchmark_format=json", f"--benchmark_repetitions={repeat}",
                          "--benchmark_report_aggregates_only=false"],
                         capture_output=True, text=True, env=env, check=True).stdout
    res = json.loads(out)
    enc, load = {}, {}
    for b in res["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        name = b["name"].split("/")
        kind, vocab = name[0], name[1].replace("_sp", "-sp")
        cpu_s = b["cpu_time"] / {"ms": 1e3, "us": 1e6, "ns": 1e9, "s": 1.0}[b["time_unit"]]
        table = enc if kind == "BM_Encode" else load
        table[vocab] = min(table.get(vocab, cpu_s), cpu_s)
    return enc, load


def kp_ids(build, shared, vocab, text):
    exe = find(build, "kuiper-tokenize")
    line = json.dumps({"id": 1, "text": text}) + "\n"
    out = subprocess.run([exe, "-m", f"{shared}/tokenizers/{vocab}/tokenizer.json"],
                         input=line.encode(), capture_output=True, check=True).stdout
    return json.loads(out.decode().splitlines()[0])["ids"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared"))
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    shared = os.path.abspath(a.shared)
    text = open(f"{shared}/tokenizers/bench_1mb.txt", encoding="utf-8").read()
    nbytes = len(text.encode("utf-8"))
    version, hf_enc, hf_load, hf_ids = hf_numbers(shared, text, a.repeat)
    kp_enc, kp_load = kp_numbers(a.build, shared, a.repeat)
    print(f"bench_1mb.txt: {nbytes} bytes; Hugging Face tokenizers {version}, one thread; CPU time, best of {a.repeat}")
    print(f"{'encode':12} {'libkuiper MB/s':>15} {'HF MB/s':>10} {'ratio':>8}  same ids")
    for v in VOCABS:
        k = nbytes / kp_enc[v] / 1e6
        h = nbytes / hf_enc[v] / 1e6
        # both parse special-token text (the file has some, e.g. "<|eot_id|>")
        same = kp_ids(a.build, shared, v, text) == hf_ids[v]
        print(f"{v:12} {k:15.1f} {h:10.2f} {k / h:7.1f}x  {'yes' if same else 'NO'}")
    print(f"{'load':12} {'libkuiper ms':>15} {'HF ms':>10} {'ratio':>8}")
    for v in LOADS:
        if v in kp_load and v in hf_load:
            print(f"{v:12} {kp_load[v] * 1e3:15.1f} {hf_load[v] * 1e3:10.1f} {hf_load[v] / kp_load[v]:7.1f}x")


if __name__ == "__main__":
    main()
