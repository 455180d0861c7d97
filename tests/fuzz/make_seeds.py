#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into corpus/<target>/ from the shared test data
(../shared, or $KP_TEST_DATA) and hand-made structures. Deterministic; small files only (the
models are crafted here with tiny shapes, never copied). Run from anywhere:
    python3 tests/fuzz/make_seeds.py
Existing files in corpus/ that this script does not write (regression inputs found by fuzzing)
are kept."""
import json, os, random, struct, sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SHARED = os.environ.get("KP_TEST_DATA") or os.path.join(REPO, "..", "shared")
rng = random.Random(13)

TEXTS = [b"Hello world", b"Once upon a time, there was a little dog named Tom.",
         "caf\u00e9 na\u00efve \u00fcber 123 4567 \u6f22\u5b57 \U0001F642\n\n  \ttabs".encode(),
         b"<s>[INST] hi [/INST]</s><unk>", b"<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>",
         b"<|im_start|>user\nhi<|im_end|>\n", b"  leading and trailing   ", b"\xff\xfe invalid \xc3( utf8 \x00 nul"]


def shared(rel):
    with open(os.path.join(SHARED, rel), "rb") as f:
        return f.read()


def out(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def split_input(text, file):
    """The layout of tests/fuzz/fuzz_util.h's kp_fuzz_split."""
    return struct.pack("<H", len(text)) + text + file


# ---- tokenizer.bin, .model and tokenizer.json

def tokbin_pieces(data):
    n, off, pieces = 0, 4, []
    while off < len(data):
        score, ln = struct.unpack_from("<fi", data, off)
        pieces.append((score, data[off + 8:off + 8 + ln]))
        off += 8 + ln
    return pieces


def tokbin(pieces):
    b = struct.pack("<i", max(len(p) for _, p in pieces))
    for s, p in pieces:
        b += struct.pack("<fi", s, len(p)) + p
    return b


def mini_llama3():
    """A byte-level BPE with Llama 3's pre-tokenizer, post-processor and decoder, cut down to
    its first 600 tokens (plus every byte) and the merges among them, renumbered."""
    t = json.loads(shared("tokenizers/llama3/tokenizer.json"))
    vocab = t["model"]["vocab"]
    by_id = sorted(vocab.items(), key=lambda kv: kv[1])
    keep = [tok for tok, i in by_id if i < 600 or len(tok) == 1]
    new = {tok: i for i, tok in enumerate(keep)}
    merges = []
    for m in t["model"]["merges"]:
        a, b = m.split(" ") if isinstance(m, str) else m
        if a in new and b in new and a + b in new:
            merges.append(f"{a} {b}")
    t["model"]["vocab"] = new
    t["model"]["merges"] = merges
    n = len(new)
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    t["added_tokens"] = [dict(a, id=n + k) for k, a in
                         enumerate(a for s in specials for a in t["added_tokens"] if a["content"] == s)]
    pp = t["post_processor"]
    if pp.get("type") == "Sequence":
        for p in pp["processors"]:
            if p.get("type") == "TemplateProcessing":
                p["special_tokens"] = {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [n], "tokens": ["<|begin_of_text|>"]}}
    return json.dumps(t, ensure_ascii=False, separators=(",", ":")).encode()


def tokenizer_seeds():
    tb = shared("models/stories260K/tok512.bin")
    tiny = [(0.0, b"<unk>"), (0.0, b"\n<s>\n"), (0.0, b"\n</s>\n"), (0.0, b" "), (0.0, b"a"), (0.0, b"b"),
            (1.0, b"ab"), (0.0, b"c")]
    for i, text in enumerate(TEXTS[:4]):
        out("tokenizer_bin", f"tok512-{i}", split_input(text, tb))
    out("tokenizer_bin", "tiny8", split_input(b"zzz hello ab c", tokbin(tiny)))
    out("tokenizer_bin", "tiny1", split_input(b"zzz hello", tokbin(tiny[:1])))
    out("tokenizer_bin", "forced-count", split_input(b"\x01\x07abc zz", tokbin(tiny)))
    sp = shared("models/stories260K/tok512.model")
    for i, text in enumerate(TEXTS[:4]):
        out("spm_model", f"tok512-{i}", split_input(text, sp))
    feats = json.loads(open(os.path.join(REPO, "tests", "tokenizer", "hf_features.json")).read())
    jsons = {"tok512-sp": shared("tokenizers/tok512-sp/tokenizer.json"), "mini-llama3": mini_llama3()}
    for k, v in feats.items():
        if isinstance(v, dict) and "json" in v:
            jsons["features-" + k] = v["json"].encode()
    for name, j in sorted(jsons.items()):
        for i, text in enumerate((TEXTS[1], TEXTS[2], TEXTS[4])):
            out("tokenizer_json", f"{name}-{i}", split_input(text, j))
    return tb


# ---- GGUF

def gstr(s):
    s = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(s)) + s


def gkv(key, typ, val):
    return gstr(key) + struct.pack("<I", typ) + val


def garr(elem, items):
    if elem == 8:
        body = b"".join(gstr(x) for x in items)
    else:
        body = b"".join(struct.pack({4: "<I", 5: "<i", 6: "<f"}[elem], x) for x in items)
    return struct.pack("<IQ", elem, len(items)) + body


def gguf(kvs, tensors=()):
    """tensors: (name, dims, f32 values)."""
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs)
    infos, data = b"", b""
    for name, dims, vals in tensors:
        infos += gstr(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        infos += struct.pack("<IQ", 0, len(data))
        data += struct.pack(f"<{len(vals)}f", *vals)
        data += b"\0" * (-len(data) % 32)
    b = head + infos
    return b + b"\0" * (-len(b) % 32) + data


def gguf_seeds(tb):
    pieces = tokbin_pieces(tb)
    toks, scores, types = [], [], []
    for i, (s, p) in enumerate(pieces):
        txt = p.decode("utf-8", "replace").replace(" ", "\u2581")
        if i == 1:
            txt = "<s>"
        if i == 2:
            txt = "</s>"
        toks.append(txt)
        scores.append(s)
        types.append(2 if i == 0 else 3 if i in (1, 2) else 6 if txt.startswith("<0x") else 1)
    spm = [gkv("general.architecture", 8, gstr("llama")), gkv("tokenizer.ggml.model", 8, gstr("llama")),
           gkv("tokenizer.ggml.tokens", 9, garr(8, toks)), gkv("tokenizer.ggml.scores", 9, garr(6, scores)),
           gkv("tokenizer.ggml.token_type", 9, garr(5, types)), gkv("tokenizer.ggml.bos_token_id", 4, struct.pack("<I", 1)),
           gkv("tokenizer.ggml.eos_token_id", 4, struct.pack("<I", 2))]
    t = json.loads(mini_llama3())
    vocab = sorted(t["model"]["vocab"].items(), key=lambda kv: kv[1]) + [(a["content"], a["id"]) for a in t["added_tokens"]]
    n_plain = len(t["model"]["vocab"])
    bpe = [gkv("general.architecture", 8, gstr("llama")), gkv("tokenizer.ggml.model", 8, gstr("gpt2")),
           gkv("tokenizer.ggml.pre", 8, gstr("llama-bpe")),
           gkv("tokenizer.ggml.tokens", 9, garr(8, [v for v, _ in vocab])),
           gkv("tokenizer.ggml.token_type", 9, garr(5, [1 if i < n_plain else 3 for i in range(len(vocab))])),
           gkv("tokenizer.ggml.merges", 9, garr(8, t["model"]["merges"])),
           gkv("tokenizer.ggml.bos_token_id", 4, struct.pack("<I", n_plain)),
           gkv("tokenizer.ggml.eos_token_id", 4, struct.pack("<I", n_plain + 4)),
           gkv("tokenizer.chat_template", 8, gstr("{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>{% endfor %}"))]
    files = {"spm": gguf(spm), "bpe": gguf(bpe)}
    for name, g in files.items():
        for i, text in enumerate((TEXTS[1], TEXTS[2], TEXTS[4])):
            out("gguf_vocab", f"{name}-{i}", split_input(text, g))
    tensors = [("token_embd.weight", [4, 2], [0.5] * 8), ("output_norm.weight", [4], [1.0] * 4)]
    out("gguf", "tensors", gguf([gkv("general.architecture", 8, gstr("llama")),
                                 gkv("general.alignment", 4, struct.pack("<I", 32)),
                                 gkv("llama.context_length", 4, struct.pack("<I", 8))], tensors))
    out("gguf", "vocab-spm", files["spm"])
    out("gguf", "vocab-bpe", files["bpe"])


# ---- llama2.c checkpoints: dim 8, hidden 16, 1 layer, 2 heads, vocab 512 (tok512.bin), seq_len 8

def l2c_seeds():
    dim, hid, L, H, KV, V, S = 8, 16, 1, 2, 2, 512, 8
    hs, kvd = dim // H, dim // H * KV
    def f32(n, scale=0.2):
        return struct.pack(f"<{n}f", *[rng.uniform(-scale, scale) for _ in range(n)])
    ones = lambda n: struct.pack(f"<{n}f", *([1.0] * n))
    mats = [dim * dim, dim * kvd, dim * kvd, dim * dim, dim * hid, hid * dim, dim * hid]
    # v0: emb, attn norms, wq wk wv wo, ffn norms, w1 w2 w3, final norm, RoPE tables, [wcls]
    v0 = struct.pack("<7i", dim, hid, L, H, KV, V, S) + f32(V * dim) + ones(L * dim)
    v0 += b"".join(f32(L * m) for m in mats[:4]) + ones(L * dim) + b"".join(f32(L * m) for m in mats[4:])
    v0 += ones(dim) + f32(S * hs)
    out("llama2c", "v0", v0)
    out("llama2c", "v0-unshared", struct.pack("<7i", dim, hid, L, H, KV, -V, S) + v0[28:] + f32(V * dim))
    def header(version, shared, gs=None):
        h = struct.pack("<Ii7iB", 0x616b3432, version, dim, hid, L, H, KV, V, S, shared)
        if gs:
            h += struct.pack("<i", gs)
        return h + b"\0" * (256 - len(h))
    norms = ones(L * dim) + ones(L * dim) + ones(dim)
    v1 = header(1, 1) + norms + f32(V * dim) + b"".join(f32(L * m) for m in mats)
    out("llama2c", "v1", v1)
    out("llama2c", "v1-unshared", header(1, 0) + v1[256:] + f32(V * dim))
    gs = 8
    def q8(n):
        q = bytes(rng.randrange(256) for _ in range(n))
        return q + struct.pack(f"<{n // gs}f", *([0.01] * (n // gs)))
    v2 = header(2, 1, gs) + norms + q8(V * dim) + b"".join(q8(L * m) for m in mats)
    out("llama2c", "v2", v2)


# ---- session states for stories260K (see fuzz_session_state.c for the flag byte)

def state_seeds():
    dim, hid, L, H, KV, V, S = struct.unpack("<7i", shared("models/stories260K/stories260K.bin")[:28])
    kvd = dim // H * KV
    def state(flags, n_past, half, logits, poison=None):
        toks = struct.pack(f"<{n_past}i", *[rng.randrange(V) for _ in range(n_past)])
        n = 2 * L * n_past * kvd
        if half:
            kv = struct.pack(f"<{n}e", *[rng.uniform(-2, 2) for _ in range(n)])
        else:
            kv = struct.pack(f"<{n}f", *[rng.uniform(-2, 2) for _ in range(n)])
        lg = struct.pack(f"<{V}f", *[rng.uniform(-5, 5) for _ in range(V)]) if logits else b""
        body = bytearray(b"\0" * 64 + toks + kv + lg + b"\0" * 8)
        if poison is not None:
            body[poison:poison + 4] = struct.pack("<f", float("nan"))
        return bytes([flags]) + bytes(body)
    out("session_state", "f32-logits", state(1 | 4 | 8, 3, False, True))
    out("session_state", "f32-nologits", state(1 | 4, 5, False, False))
    out("session_state", "f16", state(1 | 2 | 4 | 8, 2, True, True))
    out("session_state", "empty", state(1 | 4, 0, False, False))
    out("session_state", "nan-kv", state(1 | 4, 2, False, False, poison=64 + 8 + 4))
    out("session_state", "bad-checksum", state(1, 2, False, True))
    out("session_state", "raw", state(0, 1, False, False))


# ---- chat conversations (see fuzz_chat.c): template pick, add_assistant, NUL-separated messages

def chat_seeds():
    roles = {"system": 0, "user": 1, "assistant": 2, "tool": 3, "empty": 4, "User": 5}
    convs = [[("system", "You are terse."), ("user", "Hi!"), ("assistant", "Hello."), ("user", "Bye")],
             [("user", "What is 2+2?")],
             [("user", "a"), ("user", "b")],
             [("tool", "x"), ("user", "{{ raise_exception('no') }} <|eot_id|> [INST]")],
             [("system", "\u00e9\u6f22 \U0001F642"), ("assistant", "")]]
    for pick in range(11):
        for k, conv in enumerate(convs):
            if (pick + k) % 3:
                continue
            msgs = b"\0".join(bytes([6 + roles[r]]) + c.encode() for r, c in conv)  # never a NUL role byte
            head = bytes([pick, k & 1])
            if pick == 10:
                head += b"{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}\0"
            out("chat", f"t{pick}-c{k}", head + msgs)


# ---- JSON documents

def json_seeds():
    docs = {
        "config": shared("tokenizers/tok512-sp/tokenizer_config.json"),
        "escapes": br'{"a":"\u00e9\ud83d\ude42\n\t\"\\\/","b":[1,-2.5e-3,1E+2,0,true,false,null],"":{}}',
        "nested": b"[" * 40 + b"{}" + b"]" * 40,
        "dupkeys": b'{"k":1,"k":2,"k":{"k":[]}}',
        "numbers": b"[0,-0,1e308,-1e308,1e-320,123456789012345678901234567890,0.1,2.5e+10]",
        "nul": b'["a\\u0000b", "\\u0000"]',
        "ws": b' \n\t{ "x" : [ 1 , 2 ] } \r\n',
        "bad-surrogate": b'"\\ud800"',
        "bad-utf8": b'"\xc3("',
        "truncated": b'{"a":[1,2',
    }
    feats = json.loads(open(os.path.join(REPO, "tests", "tokenizer", "hf_features.json")).read())
    docs["hf-features-t2"] = feats["t2"]["json"].encode() if "t2" in feats else b"{}"
    for k, v in docs.items():
        out("json", k, v)


# ---- detokenization: vocabulary pick + 16-bit ids (see fuzz_detok_stream.c)

def detok_seeds():
    for pick in range(6):
        ids = [rng.randrange(512 if pick < 3 else 32000 if pick == 3 else 65536) for _ in range(48)]
        out("detok_stream", f"random-{pick}", bytes([pick]) + b"".join(struct.pack("<H", i) for i in ids))
    # byte tokens of a multi-byte character spread over ids, for the 512-token vocabularies
    for pick in (0, 1, 2):
        ids = [1, 0xE6 + 3, 0xBC + 3, 0xA2 + 3, 300, 0xF0 + 3, 0x9F + 3, 400, 0x99 + 3, 0x82 + 3]
        out("detok_stream", f"split-bytes-{pick}", bytes([pick]) + b"".join(struct.pack("<H", i) for i in ids))
    try:
        from tokenizers import Tokenizer
    except ImportError:
        return
    for pick, rel in ((4, "llama3"), (5, "qwen3")):
        t = Tokenizer.from_file(os.path.join(SHARED, "tokenizers", rel, "tokenizer.json"))
        ids = t.encode(TEXTS[2].decode()).ids
        out("detok_stream", f"text-{rel}", bytes([pick | 0x80]) + b"".join(struct.pack("<I", i)[:3] for i in ids))


# ---- safetensors: the tiny Qwen2 of fuzz_safetensors.c (hidden 8, 1 layer, 2 heads, 1 kv head,
# ffn 16, vocab 512, tied, F16), then broken variants

def safetensors_file(tensors, pad=8):
    """tensors: (name, dtype, shape, bytes); the header padded with spaces as safetensors does."""
    header, off = {"__metadata__": {"format": "pt"}}, 0
    for name, dt, shape, data in tensors:
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % pad)
    return struct.pack("<Q", len(h)) + h + b"".join(t[3] for t in tensors)


def safetensors_seeds():
    def f16(n, scale=0.3):
        return struct.pack(f"<{n}e", *[rng.gauss(0, scale) for _ in range(n)])

    def ones(n):
        return struct.pack(f"<{n}e", *[1.0] * n)
    L = "model.layers.0."
    ts = [("model.embed_tokens.weight", "F16", [512, 8], f16(512 * 8)), ("model.norm.weight", "F16", [8], ones(8)),
          (L + "input_layernorm.weight", "F16", [8], ones(8)),
          (L + "self_attn.q_proj.weight", "F16", [8, 8], f16(64)), (L + "self_attn.q_proj.bias", "F16", [8], f16(8)),
          (L + "self_attn.k_proj.weight", "F16", [4, 8], f16(32)), (L + "self_attn.k_proj.bias", "F16", [4], f16(4)),
          (L + "self_attn.v_proj.weight", "F16", [4, 8], f16(32)), (L + "self_attn.v_proj.bias", "F16", [4], f16(4)),
          (L + "self_attn.o_proj.weight", "F16", [8, 8], f16(64)),
          (L + "post_attention_layernorm.weight", "F16", [8], ones(8)),
          (L + "mlp.gate_proj.weight", "F16", [16, 8], f16(128)), (L + "mlp.up_proj.weight", "F16", [16, 8], f16(128)),
          (L + "mlp.down_proj.weight", "F16", [8, 16], f16(128))]
    out("safetensors", "valid", safetensors_file(ts))
    out("safetensors", "valid-unpadded", safetensors_file(ts, pad=1))
    out("safetensors", "untied", safetensors_file(ts + [("lm_head.weight", "F16", [512, 8], f16(512 * 8))]))
    out("safetensors", "bf16", safetensors_file([(n, "BF16", s, d) for n, _, s, d in ts]))
    out("safetensors", "missing-tensor", safetensors_file(ts[:-1]))
    out("safetensors", "extra-dims", safetensors_file(ts[:1] + [("x", "F32", [1, 1, 1, 1, 1], b"\0" * 4)]))
    out("safetensors", "odd-dtype", safetensors_file([("x", "I8", [3], b"abc"), ("y", "F8_E4M3", [1], b"z")]))
    whole = safetensors_file(ts)
    out("safetensors", "truncated", whole[:len(whole) // 3])
    out("safetensors", "empty-header", struct.pack("<Q", 2) + b"{}")


# ---- kuiper-server request bodies (see fuzz_server_request.c): 1 chat, 0 completions, then JSON

def server_seeds():
    chat = [
        {"model": "m", "messages": [{"role": "user", "content": "Hi"}]},
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"},
                      {"role": "assistant", "content": "Hi!"}, {"role": "user", "content": "Bye"}],
         "stream": True, "stream_options": {"include_usage": True}, "max_tokens": 8, "temperature": 0,
         "top_p": 0.5, "seed": 42, "stop": ["\n", "END"]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "parts"}]}], "n": 1, "stop": "x"},
        {"messages": [], "max_tokens": -1},
        {"messages": [{"role": "tool", "content": 3}], "temperature": 1e308},
    ]
    for i, body in enumerate(chat):
        out("server_request", f"chat-{i}", b"\x01" + json.dumps(body).encode())
    comp = [{"prompt": "Once upon a time", "max_tokens": 4},
            {"prompt": "", "ignore_eos": True, "max_completion_tokens": 2, "stop": ["a", "b", "c", "d", "e"]},
            {"prompt": ["list", "of", "prompts"]}, {"prompt": "x" * 600}]
    for i, body in enumerate(comp):
        out("server_request", f"completion-{i}", b"\x00" + json.dumps(body).encode())
    out("server_request", "bad-json", b"\x01{\"messages\": [")
    out("server_request", "bad-utf8", b"\x00{\"prompt\": \"\xff\xfe\"}")


def main():
    tb = tokenizer_seeds()
    gguf_seeds(tb)
    l2c_seeds()
    state_seeds()
    chat_seeds()
    json_seeds()
    detok_seeds()
    safetensors_seeds()
    server_seeds()
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(os.path.join(HERE, "corpus")) for f in fs)
    print(f"corpus: {total} bytes")


if __name__ == "__main__":
    sys.exit(main())
