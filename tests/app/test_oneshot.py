#!/usr/bin/env python3
"""kuiper-chat's non-interactive modes with SmolLM2-135M-Instruct: --dump-prompt equals the
model's own Jinja template rendered by Jinja2; -p and --json answers (greedy) equal the plain
library's greedy continuation of that rendering in a fresh session (chat-reference)."""
import json

from apptest import GREEDY, N_NEW, chat, gguf_string, main, reference, render, skip, smollm2

MODEL = smollm2()
TEMPLATE = gguf_string(MODEL, "tokenizer.chat_template")
if not TEMPLATE:
    skip(f"{MODEL} carries no chat template")

CONVERSATION = [
    {"role": "system", "content": "You are a concise assistant. Answer in one sentence."},
    {"role": "user", "content": "What is the largest planet?"},
    {"role": "assistant", "content": "Jupiter is the largest planet in our solar system."},
    {"role": "user", "content": "And the smallest one?"},
]


def test_dump_prompt_equals_jinja():
    for msgs, add in ((CONVERSATION, True), (CONVERSATION[1:], True), (CONVERSATION[:3], False)):
        r = chat(MODEL, "--dump-prompt", input=json.dumps({"messages": msgs, "add_assistant": add}))
        assert r.returncode == 0, r.stderr
        assert r.stdout == render(TEMPLATE, msgs, add), (r.stdout, render(TEMPLATE, msgs, add))


def test_p_answer_equals_library_greedy():
    for q in ("What is the capital of France?", "Write a haiku about the sea.", "Café, naïve, 你好 🙂 — what language?"):
        r = chat(MODEL, *GREEDY, "-n", str(N_NEW), "-p", q)
        assert r.returncode == 0, r.stderr
        ref = reference(MODEL, render(TEMPLATE, [{"role": "user", "content": q}]))
        want = ref.text
        assert len(ref.ids) > 0 and want
        assert r.stdout == want + "\n", (q, r.stdout, want)


def test_p_with_system():
    sys_msg = "You are a pirate. Answer like one."
    q = "Where is the treasure?"
    r = chat(MODEL, *GREEDY, "-n", str(N_NEW), "--system", sys_msg, "-p", q)
    assert r.returncode == 0, r.stderr
    msgs = [{"role": "system", "content": sys_msg}, {"role": "user", "content": q}]
    assert r.stdout == reference(MODEL, render(TEMPLATE, msgs)).text + "\n"


def test_json_answer_equals_library_greedy():
    r = chat(MODEL, *GREEDY, "-n", str(N_NEW), "--json", input=json.dumps({"messages": CONVERSATION}))
    assert r.returncode == 0, r.stderr
    want = reference(MODEL, render(TEMPLATE, CONVERSATION)).text
    assert want and r.stdout == want + "\n", (r.stdout, want)
    # Unknown members are ignored; "add_assistant": false is overridden (an answer is wanted).
    doc = {"model": "x", "messages": CONVERSATION, "add_assistant": False, "extra": [1, {"a": None}]}
    r2 = chat(MODEL, *GREEDY, "-n", str(N_NEW), "--json", input=json.dumps(doc))
    assert r2.returncode == 0 and r2.stdout == r.stdout, r2


def test_max_tokens_and_verbose():
    r = chat(MODEL, *GREEDY, "-n", "3", "--verbose", "-p", "Tell me a long story about a dragon.")
    assert r.returncode == 0, r.stderr
    want = reference(MODEL, render(TEMPLATE, [{"role": "user", "content": "Tell me a long story about a dragon."}]),
                     3).text
    assert r.stdout == want + "\n"
    stats = r.stderr.strip().splitlines()[-1]
    assert stats.startswith("prompt: ") and "| answer: 3 tokens in" in stats and "tokens/s" in stats, stats


def test_seeded_sampling_is_reproducible():
    args = ["-t", "0.9", "--top-k", "40", "--top-p", "0.9", "--min-p", "0.02", "--repeat-penalty", "1.1",
            "-s", "1234", "-n", "20", "-p", "Tell me something about cats."]
    a, b = chat(MODEL, *args), chat(MODEL, *args, "--threads", "1")
    assert a.returncode == 0 and a.stdout == b.stdout and a.stdout.strip(), (a, b)


if __name__ == "__main__":
    main([test_dump_prompt_equals_jinja, test_p_answer_equals_library_greedy, test_p_with_system,
          test_json_answer_equals_library_greedy, test_max_tokens_and_verbose, test_seeded_sampling_is_reproducible])
