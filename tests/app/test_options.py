#!/usr/bin/env python3
"""kuiper-chat's command line and bad input: each mistake is one clear line on stderr, nothing
on stdout, exit status 1. Uses stories260K (llama2.c, no chat template) and the Qwen2 fixture
(random weights, real Qwen vocabulary and ChatML template) from the shared data."""
import json
import subprocess

from apptest import CHAT, chat, main, shared

STORIES = "models/stories260K/stories260K.bin"
TOK = "models/stories260K/tok512.bin"
QWEN = "models/gguf/kp-qwen2-tiny.gguf"


def one_line_error(r, *needles):
    assert r.returncode == 1, f"exit {r.returncode}, stderr {r.stderr!r}"
    assert r.stdout == "", f"stdout not empty: {r.stdout!r}"
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kuiper-chat: "), f"not one line: {r.stderr!r}"
    for n in needles:
        assert n in lines[0], f"{n!r} not in {lines[0]!r}"


def test_bad_values():
    model = shared(QWEN)
    q = ["-p", "hello"]
    cases = [
        (["-t", "-1"] + q, "-t/--temperature '-1' must be a number in [0, 100]"),
        (["--temperature", "abc"] + q, "-t/--temperature 'abc'"),
        (["--top-p", "1.5"] + q, "--top-p '1.5' must be a number in [0, 1]"),
        (["--top-k", "2.5"] + q, "--top-k '2.5' must be an integer"),
        (["--top-k", "-1"] + q, "--top-k '-1'"),
        (["--min-p", "x"] + q, "--min-p 'x'"),
        (["--min-p", "nan"] + q, "--min-p 'nan'"),
        (["--repeat-penalty", "0"] + q, "--repeat-penalty '0' must be a number in [0.01, 100]"),
        (["--frequency-penalty", "101"] + q, "--frequency-penalty '101'"),
        (["--presence-penalty", "-101"] + q, "--presence-penalty '-101'"),
        (["--penalty-window", "70000"] + q, "--penalty-window '70000'"),
        (["-s", "-3"] + q, "-s/--seed '-3' must be an integer"),
        (["--seed", "1.5"] + q, "-s/--seed '1.5'"),
        (["-n", "-1"] + q, "-n/--n-predict '-1' must be an integer in [0, 2147483647]"),
        (["-n", "10x"] + q, "-n/--n-predict '10x'"),
        (["-c", "abc"] + q, "-c/--ctx-size 'abc'"),
        (["--threads", "-2"] + q, "--threads '-2' must be an integer in [0, 1024]"),
        (["--bogus"] + q, "unknown option '--bogus'"),
        (["--kv-type", "q8"] + q, "--kv-type 'q8' must be f32 or f16"),
        (["--device", "tpu"] + q, "--device 'tpu' must be cpu or cuda"),
        (["-c", "-5"] + q, "-c/--ctx-size '-5' must be an integer"),
        (["--json=1"], "option --json takes no value"),
        (q + ["extra"], "unexpected argument 'extra'"),
        (q + ["-t"], "option -t/--temperature needs a value"),
        (q + ["--json"], "exclude each other"),
        (["--dump-prompt", "--json"], "exclude each other"),
    ]
    for args, needle in cases:
        one_line_error(chat(model, *args, input=""), needle)


def test_no_model():
    r = subprocess.run([CHAT, "-p", "hi"], capture_output=True, text=True, timeout=60)
    one_line_error(r, "no model given")


def test_missing_model_file():
    r = chat("/nonexistent/model.gguf", "-p", "hi")
    one_line_error(r, "/nonexistent/model.gguf", "KP_ERR_IO")
    assert r.stderr.count("/nonexistent/model.gguf") == 1, f"the path is named more than once: {r.stderr!r}"


def test_context_larger_than_the_model():
    r = chat(shared(QWEN), "-c", "100000000", "-p", "hi")
    one_line_error(r, "-c/--ctx-size 100000000 exceeds the model's context")


def test_model_without_template():
    r = chat(shared(STORIES), "-z", shared(TOK), "-p", "hi")
    one_line_error(r, "formatting the conversation", "KP_ERR_NOT_FOUND")
    # A forced family works on any model.
    r = chat(shared(STORIES), "-z", shared(TOK), "--template", "chatml", "-p", "hi", "-t", "0", "-n", "5")
    assert r.returncode == 0, r.stderr
    r = chat(shared(STORIES), "-z", shared(TOK), "--template", "nonsense", "-p", "hi")
    one_line_error(r, "KP_ERR_UNSUPPORTED")


def test_bad_conversations():
    model = shared(QWEN)
    cases = [
        ("", "stdin is not a conversation"),
        ("[]", "expected a JSON object"),
        ('{"messages": [}', "stdin is not a conversation"),
        ('{"messages": [{"role": "user"}]}', "needs \\\"role\\\" and \\\"content\\\""),
        ('{"messages": [{"role": "user", "content": 5}]}', "must be strings"),
        ('{"messages": [{"role": "user", "content": "hi"}]} trailing', "text after the JSON object"),
        ('{"messages": []}', "KP_ERR_INVALID_ARG"),
        ('{"messages": [{"role": "wizard", "content": "hi"}]}', "KP_ERR_INVALID_ARG"),
    ]
    for doc, needle in cases:
        for mode in ("--json", "--dump-prompt"):
            r = chat(model, mode, input=doc)
            one_line_error(r, needle.replace("\\\"", "\""))


def test_message_larger_than_the_context():
    msg = "word " * 400
    r = chat(shared(QWEN), "-c", "64", "--json", input=json.dumps({"messages": [{"role": "user", "content": msg}]}))
    one_line_error(r, "the message takes", "the context holds 64")


def test_help():
    r = subprocess.run([CHAT, "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("usage: kuiper-chat"), r


if __name__ == "__main__":
    main([test_bad_values, test_no_model, test_missing_model_file, test_context_larger_than_the_model,
          test_model_without_template, test_bad_conversations, test_message_larger_than_the_context, test_help])
