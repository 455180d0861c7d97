#!/usr/bin/env python3
"""kuiper-chat -p agrees with llama.cpp on SmolLM2-135M-Instruct: for each chat prompt in
tests/data/smollm2/refs.json (made by make_refs.py with llama-cpp-python: prompt ids, 32 greedy
ids, the top-1/top-2 logit gap at every step), the prompt our chat path tokenizes equals
llama.cpp's, and the greedy ids agree up to the first step where llama.cpp's gap falls below
0.5 (later choices may legitimately differ in rounding) or its first end-of-generation id; past
that, the first step where the two part must also be one where llama.cpp's gap is below 0.5.
kuiper-chat -p prints exactly the text of that same greedy run."""
import json
import os

from apptest import GREEDY, ROOT, chat, gguf_string, main, reference, render, skip, smollm2

MIN_GAP = 0.5
REFS = os.path.join(ROOT, "tests", "data", "smollm2", "refs.json")
if not os.path.exists(REFS):
    skip(f"{REFS} not found: the llama.cpp references for SmolLM2 are not in the tree yet")
MODEL = smollm2()
META = json.load(open(REFS, encoding="utf-8"))
TEMPLATE = gguf_string(MODEL, "tokenizer.chat_template")
# SmolLM2's end-of-generation ids: <|endoftext|> 0 and <|im_end|> 2 (llama.cpp went on past them).
EOG = {0, 2}
USER_OPEN, USER_CLOSE = "<|im_start|>user\n", "<|im_end|>"


def chat_cases():
    for p in META["prompts"]:
        text = p["prompt"]
        if USER_OPEN in text:
            user = text[text.index(USER_OPEN) + len(USER_OPEN):]
            yield p, user[:user.index(USER_CLOSE)]


def agreed_length(ref):
    cut = len(ref["greedy_ids"])
    for i, gap in enumerate(ref["top1_top2_gap"]):
        if gap < MIN_GAP:
            cut = i
            break
    eog = next((i for i, t in enumerate(ref["greedy_ids"]) if t in EOG), None)
    return (eog, True) if eog is not None and eog <= cut else (cut, False)


def test_model_is_the_reference_model():
    import hashlib
    h = hashlib.sha256()
    with open(MODEL, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    assert h.hexdigest() == META["model_sha256"], "refs.json was made with another file"


def test_prompts_render_and_tokenize_like_llamacpp():
    n = 0
    for ref, user in chat_cases():
        prompt = render(TEMPLATE, [{"role": "user", "content": user}])
        assert prompt == ref["prompt"], (prompt, ref["prompt"])
        dumped = chat(MODEL, "--dump-prompt", input=json.dumps({"messages": [{"role": "user", "content": user}]}))
        assert dumped.stdout == ref["prompt"]
        prompt_ids = reference(MODEL, prompt, 1).prompt_ids
        assert prompt_ids == ref["prompt_ids"], (ref["name"], prompt_ids, ref["prompt_ids"])
        n += 1
    assert n > 0, "refs.json holds no chat prompt"


def test_greedy_ids_agree_with_llamacpp():
    compared = 0
    for ref, user in chat_cases():
        cut, ends = agreed_length(ref)
        ours = reference(MODEL, ref["prompt"], len(ref["greedy_ids"]))
        text, ids = ours.text, ours.ids
        assert ids[:cut] == ref["greedy_ids"][:cut], (ref["name"], cut, ids, ref["greedy_ids"])
        if ends:
            assert len(ids) == cut, f"{ref['name']}: llama.cpp ends after {cut} ids, we went on: {ids}"
        r = chat(MODEL, *GREEDY, "-n", str(len(ref["greedy_ids"])), "-p", user)
        assert r.returncode == 0, r.stderr
        assert r.stdout == text + "\n", (r.stdout, text)
        # Beyond the leading run: wherever the two first part, llama.cpp itself was near a tie.
        theirs = ref["greedy_ids"]
        eog = next((i for i, t in enumerate(theirs) if t in EOG), len(theirs))
        same = next((i for i, (a, b) in enumerate(zip(ids, theirs[:eog])) if a != b), min(len(ids), eog))
        if same < min(len(theirs), eog):
            assert ref["top1_top2_gap"][same] < MIN_GAP, (f"{ref['name']}: first differs from llama.cpp at step {same}, "
                                                         f"where its gap is {ref['top1_top2_gap'][same]:.3f}")
        elif len(ids) > eog:  # llama.cpp ended there and we went on
            assert ref["top1_top2_gap"][eog] < MIN_GAP, f"{ref['name']}: goes on past llama.cpp's end at step {eog}"
        print(f"  {ref['name']}: first {cut} ids compared{' (then end of generation)' if ends else ''}; "
              f"{same} leading ids equal in all: {r.stdout.strip()[:60]!r}")
        compared += cut
    assert compared > 0, "no id was compared: every first gap is below the threshold"


if __name__ == "__main__":
    main([test_model_is_the_reference_model, test_prompts_render_and_tokenize_like_llamacpp,
          test_greedy_ids_agree_with_llamacpp])
