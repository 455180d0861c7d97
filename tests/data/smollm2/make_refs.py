#!/usr/bin/env python3
"""Reference outputs of llama.cpp (through llama-cpp-python) for SmolLM2-135M-Instruct Q4_1.

usage: make_refs.py MODEL.gguf [OUT_DIR]

For each prompt: the prompt ids from llama.cpp's tokenizer (add_special and parse_special, as
llama.cpp's own tools do), 32 greedy ids (argmax of the raw logits, end-of-generation not
special), the top-1/top-2 logit gap at every step, and the full logits of the first step
(the last prompt position) as little-endian float32 in <name>.f32. The prompt goes in as one
batch, then one token per decode; one thread; F32 KV cache.

llama-cpp-python was built without AMX (-DGGML_NATIVE=OFF, AVX2/AVX-512 on, AMX off): the
llama.cpp build of February 2025 gave wrong Q4_0/Q4_1 results on AMX for batches of 32 tokens
or more, and this model is Q4_1.
"""
import hashlib, json, os, struct, sys

import llama_cpp
import numpy as np

STEPS = 32
SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def chatml(user, system=SYSTEM):
    # what the file's chat template renders with add_generation_prompt
    return (f"<|im_start|>system\n{system}<|im_end|>\n"
            f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n")


PROMPTS = [
    ("once", "Once upon a time"),
    ("capital", "The capital of France is"),
    ("code", "def fibonacci(n):\n    "),
    ("unicode", "Café au lait costs 3€ — naïve résumé, 你好 🙂"),
    ("chat_capital", chatml("What is the capital of France?")),
    ("chat_haiku", chatml("Write a haiku about the sea.")),
    ("chat_long", chatml("Explain in two sentences why the sky is blue, and then list three colours of the rainbow.")),
]


def last_logits(llm):
    # Llama.scores is only filled with logits_all; read the context's last row directly
    ptr = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
    return np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),)).astype(np.float32)


def main():
    model = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.dirname(os.path.abspath(__file__))
    # F32 KV cache (type 0 = GGML_TYPE_F32), as libkuiper's default and the shared references
    llm = llama_cpp.Llama(model_path=model, n_ctx=512, n_batch=512, n_ubatch=512, n_threads=1,
                          n_threads_batch=1, logits_all=False, type_k=0, type_v=0, verbose=False)
    sha = hashlib.sha256(open(model, "rb").read()).hexdigest()
    refs = []
    for name, text in PROMPTS:
        ids = llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)
        llm.reset()
        llm.eval(ids)
        greedy, gaps, first = [], [], None
        for step in range(STEPS):
            row = last_logits(llm)
            if step == 0:
                first = row.copy()
            order = np.argsort(-row, kind="stable")
            tok = int(order[0])
            greedy.append(tok)
            gaps.append(float(row[order[0]] - row[order[1]]))
            llm.eval([tok])
        first.astype("<f4").tofile(os.path.join(out, f"{name}.f32"))
        refs.append({"name": name, "prompt": text, "prompt_ids": [int(i) for i in ids],
                     "greedy_ids": greedy, "top1_top2_gap": gaps, "n_vocab": int(first.size),
                     "logits_file": f"{name}.f32"})
        print(f"{name}: {len(ids)} prompt ids, first gap {gaps[0]:.3f}, "
              f"text {llm.detokenize(greedy).decode('utf-8', 'replace')!r}")
    meta = {"model": os.path.basename(model), "model_sha256": sha,
            "llama_cpp_python": llama_cpp.__version__, "n_threads": 1, "kv_cache": "f32",
            "steps": STEPS, "prompts": refs}
    with open(os.path.join(out, "refs.json"), "w") as f:
        json.dump(meta, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
