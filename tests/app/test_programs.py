#!/usr/bin/env python3
"""The command-line conventions kuiper-generate, kuiper-tokenize and kuiper-chat share (--help on
stdout with exit 0, --version, one stderr line naming the bad option with exit 1, the model path
named once), kuiper-tokenize's plain-text and decode modes against Hugging Face's ids for the
Llama 3.1 tokenizer, and kuiper-generate's session options."""
import json
import os
import subprocess

from apptest import CHAT, main, shared

GENERATE = os.environ.get("KUIPER_GENERATE", "")
TOKENIZE = os.environ.get("KUIPER_TOKENIZE", "")
PROGRAMS = {"kuiper-generate": GENERATE, "kuiper-tokenize": TOKENIZE, "kuiper-chat": CHAT}
STORIES = ["-m", "models/stories260K/stories260K.bin", "-z", "models/stories260K/tok512.bin"]
LLAMA31 = "tokenizers/llama3_1/tokenizer.json"


def run(prog, *args, input=None):
    return subprocess.run([PROGRAMS[prog], *args], input=input, capture_output=True, timeout=120)


def stories():
    return [shared(a) if a.startswith("models/") else a for a in STORIES]


def one_line_error(r, prog, *needles):
    err = r.stderr.decode()
    assert r.returncode == 1, f"{prog}: exit {r.returncode}, stderr {err!r}"
    assert r.stdout == b"", f"{prog}: stdout not empty: {r.stdout[:200]!r}"
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prog + ": "), f"{prog}: not one line: {err!r}"
    for n in needles:
        assert n in lines[0], f"{prog}: {n!r} not in {lines[0]!r}"


def test_help_and_version():
    for prog in PROGRAMS:
        for flag in ("--help", "-h"):
            r = run(prog, flag)
            out = r.stdout.decode()
            assert r.returncode == 0 and out.startswith("usage: " + prog), (prog, flag, r)
            assert "--version" in out and r.stderr == b"", (prog, out, r.stderr)
        r = run(prog, "--version")
        assert r.returncode == 0 and r.stderr == b"", (prog, r)
        words = r.stdout.decode().split()
        assert words[0] == prog and len(words[1].split(".")) == 3 and all(p.isdigit() for p in words[1].split(".")), r


def test_bad_options_name_the_option():
    model = shared(STORIES[1])
    cases = {
        "kuiper-generate": [
            (["--bogus"], "unknown option '--bogus'"),
            (["-q"], "unknown option '-q'"),
            (["-m", model, "-t", "500"], "-t/--temperature '500' must be a number in [0, 100]"),
            (["-m", model, "--temperature", "x"], "-t/--temperature 'x'"),
            (["-m", model, "--top-p", "2"], "--top-p '2' must be a number in [0, 1]"),
            (["-m", model, "-s", "1.5"], "-s/--seed '1.5' must be an integer"),
            (["-m", model, "-n", "-1"], "-n/--n-predict '-1' must be an integer"),
            (["-m", model, "-c", "x"], "-c/--ctx-size 'x' must be an integer"),
            (["-m", model, "--kv-type", "q4"], "--kv-type 'q4' must be f32 or f16"),
            (["-m", model, "--device", "tpu"], "--device 'tpu' must be cpu or cuda"),
            (["-m", model, "--threads", "-1"], "--threads '-1' must be an integer in [0, 1024]"),
            (["-m", model, "-t"], "option -t/--temperature needs a value"),
            (["-m", model, "--ids=1"], "option --ids takes no value"),
            (["-m", model, "stray"], "unexpected argument 'stray'"),
            (["-p", "hi"], "no model given"),
        ],
        "kuiper-tokenize": [
            (["--bogus"], "unknown option '--bogus'"),
            (["-m", model, "--n-vocab", "x"], "--n-vocab 'x' must be an integer"),
            (["-m", model, "-p"], "option -p/--prompt needs a value"),
            (["-m", model, "-d", "-p", "x"], "exclude each other"),
            (["-m", model, "stray"], "unexpected argument 'stray'"),
            (["-p", "hi"], "no tokenizer given"),
        ],
        "kuiper-chat": [
            (["--bogus"], "unknown option '--bogus'"),
            (["-m", model, "--top-k", "1.5"], "--top-k '1.5' must be an integer in [0, 2147483647]"),
            (["-m", model, "--kv-type", "f8"], "--kv-type 'f8' must be f32 or f16"),
            (["-m", model, "-c"], "option -c/--ctx-size needs a value"),
        ],
    }
    for prog, items in cases.items():
        for args, needle in items:
            one_line_error(run(prog, *args, input=b""), prog, needle)


def test_model_path_named_once():
    bad = "/nonexistent/dir/model.gguf"
    for prog, args in (("kuiper-generate", ["-m", bad]), ("kuiper-chat", ["-m", bad, "-p", "hi"]),
                       ("kuiper-tokenize", ["-m", bad, "-p", "hi"])):
        r = run(prog, *args)
        one_line_error(r, prog, bad)
        assert r.stderr.decode().count(bad) == 1, (prog, r.stderr)


def corpus():
    """(text, ids, roundtrip) of the shared corpus with Hugging Face's Llama 3.1 ids, for the texts
    that fit on one plain line."""
    cases = [json.loads(l) for l in open(shared("tokenizers/expected/corpus.jsonl"), encoding="utf-8")]
    exp = {j["id"]: j for j in map(json.loads, open(shared("tokenizers/expected/hf-llama3_1.jsonl"),
                                                       encoding="utf-8"))}
    out = []
    for c in cases:
        t = c["text"]
        if t and "\n" not in t and "\r" not in t and not t.lstrip(" \t").startswith("{"):
            out.append((t, exp[c["id"]]["ids"], exp[c["id"]].get("roundtrip", False)))
    assert len(out) > 100, len(out)
    return out


def ids_lines(stdout):
    return [[int(x) for x in ln.split()] for ln in stdout.decode().split("\n")[:-1]]


def test_tokenize_plain_text_and_decode_round_trip():
    tok = shared(LLAMA31)
    cases = corpus()
    # Plain lines on stdin: one line of ids each, as Hugging Face encodes them.
    r = run("kuiper-tokenize", "-m", tok, input="".join(t + "\n" for t, _, _ in cases).encode("utf-8"))
    assert r.returncode == 0, r.stderr
    got = ids_lines(r.stdout)
    assert len(got) == len(cases), (len(got), len(cases))
    for (t, want, _), g in zip(cases, got):
        assert g == want, (t, g, want)
    # -p gives the same ids; --add-special adds BOS.
    r = run("kuiper-tokenize", "-m", tok, "-p", "Hello, world!")
    assert r.returncode == 0 and r.stdout == b"9906 11 1917 0\n", r
    r = run("kuiper-tokenize", "-m", tok, "--add-special", "-p", "Hello, world!")
    assert r.stdout == b"128000 9906 11 1917 0\n", r
    # Decoding those ids gives the text back, from stdin lines and from arguments.
    trips = [(t, ids) for t, ids, rt in cases if rt]
    r = run("kuiper-tokenize", "-m", tok, "-d", input="".join(" ".join(map(str, ids)) + "\n" for _, ids in trips)
            .encode())
    assert r.returncode == 0, r.stderr
    texts = r.stdout.decode("utf-8").split("\n")[:-1]
    assert texts == [t for t, _ in trips], [(a, b) for a, (b, _) in zip(texts, trips) if a != b][:3]
    r = run("kuiper-tokenize", "-m", tok, "-d", "9906,11", "1917", "0")
    assert r.returncode == 0 and r.stdout == b"Hello, world!\n", r
    r = run("kuiper-tokenize", "-m", tok, "--decode", input=b"[9906, 11, 1917, 0]\n")
    assert r.stdout == b"Hello, world!\n", r


def test_tokenize_json_and_text_lines_mix():
    tok = shared(LLAMA31)
    lines = ['{"id": "a", "text": "Hello, world!"}', "Hello, world!", '{"text": "x", "id": 7}']
    r = run("kuiper-tokenize", "-m", tok, input=("\n".join(lines) + "\n").encode())
    assert r.returncode == 0, r.stderr
    assert r.stdout == b'{"id":"a","ids":[9906,11,1917,0]}\n9906 11 1917 0\n{"id":7,"ids":[87]}\n', r.stdout


def test_tokenize_explains_bad_lines():
    tok = shared(LLAMA31)
    for line, needle in (('{"text": "hi"}', 'line 1: the object has no "id"'),
                         ('{"id": 3}', 'line 1: the object has no "text"'),
                         ('{"id": 3, "text": 5}', '"text" must be a JSON string'),
                         ('{"id": 3, "text": "x"', "malformed JSON")):
        one_line_error(run("kuiper-tokenize", "-m", tok, input=(line + "\n").encode()), "kuiper-tokenize", needle)
    r = run("kuiper-tokenize", "-m", tok, "-d", input=b"12 x3\n")
    assert r.returncode == 1 and "line 1: 'x3' is not a token id" in r.stderr.decode(), r
    one_line_error(run("kuiper-tokenize", "-m", tok, "-d", "12", "abc"), "kuiper-tokenize", "'abc' is not a token id")


def test_generate_session_options():
    base = stories() + ["-p", "Once upon a time", "-n", "24", "-t", "0"]
    ref = run("kuiper-generate", *base)
    assert ref.returncode == 0 and len(ref.stdout) > 40, ref
    # The defaults are the ones given explicitly (context min(4096, the model's 256), F32 KV, CPU).
    same = run("kuiper-generate", *base, "--kv-type", "f32", "-c", "0", "--device", "cpu")
    assert same.stdout == ref.stdout, (same.stdout, ref.stdout)
    # An F16 cache rounds keys and values; on this model the first greedy steps do not change.
    f16 = run("kuiper-generate", *base, "--kv-type", "f16", "--ctx-size", "64", "--ids")
    f32 = run("kuiper-generate", *base, "--ids")
    assert f16.returncode == 0, f16.stderr
    assert f16.stdout.split()[:12] == f32.stdout.split()[:12], (f16.stdout, f32.stdout)
    # -n 0 runs until the context is full: 16 positions, plus the token sampled from the last one.
    small = run("kuiper-generate", *stories(), "-p", "Once upon a time", "-n", "0", "-t", "0", "-c", "16", "--ids")
    assert small.returncode == 0, small.stderr
    assert len(small.stdout.split()) == 17 and small.stdout.split()[:17] == f32.stdout.split()[:17], small.stdout
    r = run("kuiper-generate", *stories(), "-c", "100000")
    one_line_error(r, "kuiper-generate", "-c/--ctx-size 100000 exceeds the model's context")


if __name__ == "__main__":
    for name, path in PROGRAMS.items():
        if not path or not os.path.exists(path):
            raise SystemExit(f"{name} not found: set KUIPER_GENERATE, KUIPER_TOKENIZE and KUIPER_CHAT")
    main([test_help_and_version, test_bad_options_name_the_option, test_model_path_named_once,
          test_tokenize_plain_text_and_decode_round_trip, test_tokenize_json_and_text_lines_mix,
          test_tokenize_explains_bad_lines, test_generate_session_options])
