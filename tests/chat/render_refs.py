#!/usr/bin/env python3
"""Renders the chat-template test cases with Jinja2, as Hugging Face's apply_chat_template does,
and writes tests/chat/expected.json for test_chat.c. The expected texts come from Jinja2 and the
real templates, never from libkuiper.

Templates: the real ones in shared/tokenizers/*/tokenizer_config.json (read at render time, never
copied here) and the small files in templates/ (public chat templates of Llama 2 Chat, SmolLM2,
Qwen2.5, plain ChatML, and the tool-free core of Llama 3.1 Instruct's template).
Usage: python3 render_refs.py [SHARED_DIR]   (default $KP_TEST_DATA or ../shared)
"""
import json
import os
import sys

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SHARED = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("KP_TEST_DATA", os.path.join(ROOT, "..", "shared"))


def raise_exception(msg):
    raise jinja2.exceptions.TemplateError(msg)


def render(template, messages, add_generation_prompt, bos, eos):
    # The environment transformers builds for chat templates.
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = lambda x, **kw: json.dumps(x, ensure_ascii=False, **kw)
    env.globals["raise_exception"] = raise_exception
    t = env.from_string(template)
    return t.render(messages=messages, tools=None, documents=None, add_generation_prompt=add_generation_prompt,
                    bos_token=bos, eos_token=eos)


def shared_template(name):
    rel = f"tokenizers/{name}/tokenizer_config.json"
    c = json.load(open(os.path.join(SHARED, rel), encoding="utf-8"))
    return {"shared": rel}, c["chat_template"], c.get("bos_token") or "", c.get("eos_token") or ""


def file_template(name, bos="", eos=""):
    rel = f"templates/{name}"
    return {"file": rel}, open(os.path.join(HERE, rel), encoding="utf-8").read(), bos, eos


S = {"role": "system", "content": "You are a terse assistant."}
U1 = {"role": "user", "content": "Hi there!"}
A1 = {"role": "assistant", "content": "Hello! How can I help?"}
U2 = {"role": "user", "content": "Tell me a joke."}
A2 = {"role": "assistant", "content": "Why did the chicken cross the road?"}
# Whitespace that Jinja's trim / str.strip() remove, including non-ASCII spaces, and text to keep.
UWS = {"role": "user", "content": "\u3000 \n\tWhat is 2+2?\u00a0\n "}
AWS = {"role": "assistant", "content": "  \n4\n\n"}
UNI = {"role": "user", "content": "你好，世界！ émigré 🙂 <|im_start|> [INST]"}
THINK = {"role": "assistant", "content": "<think>\nLet me think.\n</think>\n\nThe answer is 4."}

CONVS = {
    "system_first": [S, U1, A1, U2],
    "no_system": [U1, A1, U2],
    "single_user": [U1],
    "ends_assistant": [S, U1, A1],
    "three_turns": [S, U1, A1, U2, A2, UNI],
    "whitespace": [S, UWS, AWS, U2],
    "empty_system": [{"role": "system", "content": ""}, U1],
    "think": [U1, THINK, U2],
    "think_last": [UWS, THINK],
}

# (case-name prefix, how the C side gets the template, template source, bos, eos, conversations)
SETS = [
    ("llama3", "llama3", ["system_first", "no_system", "single_user", "ends_assistant", "three_turns", "whitespace"]),
    ("llama3_1", "llama3_1", list(CONVS)),
    ("qwen3", "qwen3", list(CONVS)),
    ("llama2", "llama2-chat.jinja", ["system_first", "no_system", "single_user", "ends_assistant", "three_turns",
                                     "whitespace", "empty_system"]),
    ("smollm2", "smollm2.jinja", list(CONVS)),
    ("qwen2.5", "qwen2.5.jinja", list(CONVS)),
    ("chatml", "chatml.jinja", list(CONVS)),
    ("llama3.1-instruct", "llama3.1-instruct-core.jinja", list(CONVS)),
]
FAMILY_OF = {"llama3_1": "llama3", "llama2-chat.jinja": "llama2", "chatml.jinja": "chatml"}
TOKENS = {"llama2-chat.jinja": ("<s>", "</s>"), "llama3.1-instruct-core.jinja": ("<|begin_of_text|>", "<|eot_id|>"),
          "smollm2.jinja": ("<|im_start|>", "<|im_end|>"), "qwen2.5.jinja": ("", "<|im_end|>"),
          "chatml.jinja": ("", "<|im_end|>")}


def main():
    cases = []
    for prefix, src, convs in SETS:
        if src.endswith(".jinja"):
            where, tmpl, bos, eos = file_template(src, *TOKENS[src])
        else:
            where, tmpl, bos, eos = shared_template(src)
        tmpl = tmpl.rstrip("\n")
        for conv in convs:
            for add in (True, False):
                out = render(tmpl, CONVS[conv], add, bos, eos)
                cases.append({"name": f"{prefix}/{conv}/{'add' if add else 'noadd'}", "template": where,
                              "messages": CONVS[conv], "add_assistant": add, "expected": out})
                if src in FAMILY_OF:  # the same text when the family is forced by name
                    cases.append({"name": f"{FAMILY_OF[src]}(name)/{conv}/{'add' if add else 'noadd'}",
                                  "template": {"family": FAMILY_OF[src]}, "messages": CONVS[conv],
                                  "add_assistant": add, "expected": out})
    # Sanity: our Jinja2 setup reproduces the shared references' jinja2 field.
    for name, cfg in (("kp-llama3-tiny", "llama3_1"), ("kp-qwen2-tiny", "qwen3")):
        ref = json.load(open(os.path.join(SHARED, "reference/chat", name + ".json"), encoding="utf-8"))
        _, tmpl, bos, eos = shared_template(cfg)
        assert render(tmpl, ref["messages"], True, bos, eos) == ref["jinja2"], name
    with open(os.path.join(HERE, "expected.json"), "w", encoding="utf-8") as f:
        json.dump({"generator": "tests/chat/render_refs.py, Jinja2 " + jinja2.__version__, "cases": cases}, f,
                  ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases")


if __name__ == "__main__":
    main()
