#!/usr/bin/env python3
"""Writes a GGUF model of a real model's shape with random weights, for speed measurements only
(the numbers in it mean nothing; every quantized block gets a small positive scale so the
values are finite). Needs numpy only. The file stores no vocabulary; a llama2.c tokenizer.bin
of the model's size is written beside it as OUT.tok.bin (placeholder pieces) for -z.

usage: make_random_gguf.py SHAPE TYPE OUT
  SHAPE: llama32-1b (Llama-3.2-1B: 16 layers, 2048 wide, GQA 32:8, ff 8192, vocab 128256, tied)
         smollm2-135m (SmolLM2-135M: 30 layers, 576 wide, GQA 9:3, ff 1536, vocab 49152, tied)
  TYPE:  F16, Q8_0, Q4_1, Q4_K_M (Q4_K, with Q6_K for attn_v, ffn_down and the embedding, as
         llama.cpp's Q4_K_M mostly does)
"""
import struct, sys
import numpy as np

SHAPES = {
    "llama32-1b": dict(n_vocab=128256, n_embd=2048, n_layer=16, n_head=32, n_head_kv=8, n_ff=8192, theta=500000.0),
    "smollm2-135m": dict(n_vocab=49152, n_embd=576, n_layer=30, n_head=9, n_head_kv=3, n_ff=1536, theta=100000.0),
}
# ggml type id, elements per block, bytes per block, byte offsets of F16 scales in a block
TYPES = {"F32": (0, 1, 4, ()), "F16": (1, 1, 2, ()), "Q4_1": (3, 32, 20, (0, 2)), "Q8_0": (8, 32, 34, (0,)),
         "Q4_K": (12, 256, 144, (0, 2)), "Q6_K": (14, 256, 210, (208,))}

rng = np.random.default_rng(1)
POOL = rng.integers(0, 256, size=1 << 24, dtype=np.uint8)
F16_POOL = (rng.standard_normal(1 << 23) * 0.02).astype(np.float16).view(np.uint8)

def tensor_bytes(tname, n):
    tid, be, bb, offs = TYPES[tname]
    nbytes = n // be * bb
    if tname == "F32":
        return np.ones(n, dtype=np.float32).tobytes()
    src = F16_POOL if tname == "F16" else POOL
    reps = -(-nbytes // src.size)
    buf = np.tile(src, reps)[:nbytes].copy()
    if offs:
        blocks = buf.reshape(-1, bb)
        scale = np.frombuffer(np.float16(0.002).tobytes(), dtype=np.uint8)
        for o in offs:
            blocks[:, o:o + 2] = scale
    return buf.tobytes()

def s(x):
    b = x.encode()
    return struct.pack("<Q", len(b)) + b

def kv_u32(k, v): return s(k) + struct.pack("<II", 4, v)
def kv_f32(k, v): return s(k) + struct.pack("<If", 6, v)
def kv_str(k, v): return s(k) + struct.pack("<I", 8) + s(v)

def main():
    shape, qtype, out = sys.argv[1], sys.argv[2], sys.argv[3]
    c = SHAPES[shape]
    E, F, V, hd = c["n_embd"], c["n_ff"], c["n_vocab"], c["n_embd"] // c["n_head"]
    kv = c["n_head_kv"] * hd
    def wt(role):
        if qtype == "Q4_K_M":
            return "Q6_K" if role in ("attn_v", "ffn_down", "token_embd") else "Q4_K"
        return qtype
    tensors = [("token_embd.weight", (E, V), wt("token_embd")), ("output_norm.weight", (E,), "F32")]
    for l in range(c["n_layer"]):
        p = f"blk.{l}."
        tensors += [(p + "attn_norm.weight", (E,), "F32"), (p + "attn_q.weight", (E, E), wt("attn_q")),
                    (p + "attn_k.weight", (E, kv), wt("attn_k")), (p + "attn_v.weight", (E, kv), wt("attn_v")),
                    (p + "attn_output.weight", (E, E), wt("attn_output")), (p + "ffn_norm.weight", (E,), "F32"),
                    (p + "ffn_gate.weight", (E, F), wt("ffn_gate")), (p + "ffn_up.weight", (E, F), wt("ffn_up")),
                    (p + "ffn_down.weight", (F, E), wt("ffn_down"))]
    a = "llama"
    kvs = [kv_str("general.architecture", a), kv_u32(f"{a}.embedding_length", E), kv_u32(f"{a}.block_count", c["n_layer"]),
           kv_u32(f"{a}.feed_forward_length", F), kv_u32(f"{a}.attention.head_count", c["n_head"]),
           kv_u32(f"{a}.attention.head_count_kv", c["n_head_kv"]), kv_u32(f"{a}.context_length", 8192),
           kv_f32(f"{a}.rope.freq_base", c["theta"]), kv_f32(f"{a}.attention.layer_norm_rms_epsilon", 1e-5)]
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs)
    off, infos = 0, []
    for name, ne, t in tensors:
        n = int(np.prod(ne))
        infos.append(s(name) + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}Q", *ne) +
                     struct.pack("<IQ", TYPES[t][0], off))
        off += n // TYPES[t][1] * TYPES[t][2]
        off = (off + 31) // 32 * 32
    head += b"".join(infos)
    write_tokenizer(out + ".tok.bin", V)
    with open(out, "wb") as f:
        f.write(head)
        f.write(b"\0" * ((32 - len(head) % 32) % 32))
        for name, ne, t in tensors:
            data = tensor_bytes(t, int(np.prod(ne)))
            f.write(data)
            f.write(b"\0" * ((32 - len(data) % 32) % 32))

def write_tokenizer(path, n):
    with open(path, "wb") as f:
        f.write(struct.pack("<i", 16))
        for i in range(n):
            piece = ["<unk>", "<s>", "</s>"][i] if i < 3 else f"<0x{i - 3:02X}>" if i < 259 else f"t{i}"
            b = piece.encode()
            f.write(struct.pack("<fi", 0.0, len(b)) + b)

if __name__ == "__main__":
    main()
