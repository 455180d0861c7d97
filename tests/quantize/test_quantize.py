"""kuiper-quantize end to end: the files it writes load (in libkuiper and, where installed, in
llama.cpp's gguf-py and llama-cpp-python), F32 output reproduces the source exactly, the legacy
block types are byte-identical to llama.cpp's reference quantizer, the tensor types follow
llama-quantize's choices, and the K-quants lose no more accuracy than llama.cpp's own."""
import os
import subprocess

import numpy as np
import pytest

import kuiper
from conftest import skip_loudly

TYPES = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q4_K", "Q5_K", "Q6_K", "Q4_K_M", "Q5_K_M"]
LEGACY = ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"]
PROMPTS = ["Once upon a time there was a little girl who loved to play in the park with her dog and",
           "The quick brown fox jumps over the lazy dog. Then it ran into the forest to find",
           "Tom and Lily went to the beach. They built a big sand castle and",
           "In a small town, a boy named Sam found a shiny red ball under the old tree."]
TEXTS = PROMPTS + ["Hello, world! 12345 numbers\nnew line\ttab  double  space", "naïve café — “quotes” 日本語 🙂",
                   "  leading spaces and trailing  ", "<s> not special </s> <|im_start|>user\nhi<|im_end|>"]


def gguf_py():
    try:
        import gguf  # llama.cpp's own Python package (PyPI "gguf")
        return gguf
    except ImportError:
        skip_loudly("the gguf Python package (llama.cpp's gguf-py) is not installed: pip install gguf")


def logits(path, idss, tokenizer=None):
    m = kuiper.Model(path, tokenizer=tokenizer, threads=1)
    rows = []
    for ids in idss:
        s = m.session()
        s.eval(ids, logits="all")
        rows += [s.logits(i) for i in range(len(ids))]
        s.close()
    m.close()
    return np.array(rows, dtype=np.float64)


def rel_err(a, ref):
    """Per row: the largest |difference| relative to the row's largest |logit|."""
    return np.max(np.abs(a - ref), axis=1) / np.max(np.abs(ref), axis=1)


def convert(quantize_tool, outdir, src, typ, tag, *extra):
    out = os.path.join(outdir, f"{tag}-{typ}.gguf")
    if not os.path.exists(out):
        quantize_tool(*extra, src, out, typ)
    return out


# ---------------------------------------------------------------- F32 round trips

def check_same_model(src, out, tok, specials):
    """Same hyperparameters, vocabulary, tokenization, chat prompt and logits (<= 1e-5 of each
    row's largest |logit|)."""
    a, b = kuiper.Model(src, tokenizer=tok, threads=1), kuiper.Model(out, threads=1)
    try:
        assert (a.n_vocab, a.n_ctx, a.arch, a.bos, a.eos) == (b.n_vocab, b.n_ctx, b.arch, b.bos, b.eos)
        for text in TEXTS:
            for add in (True, False):
                for parse in ((True, False) if specials else (False,)):
                    assert a.tokenize(text, add, parse) == b.tokenize(text, add, parse), (text, add, parse)
        for i in range(a.n_vocab):
            pa, pb = a.token_to_piece(i), b.token_to_piece(i)
            if not specials:  # llama2.c wraps <s> and </s> in newlines; GGUF has the bare tag
                pa, pb = pa.strip(b"\n"), pb.strip(b"\n")
            assert pa == pb, i
            assert a.is_eog(i) == b.is_eog(i), i
        msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}]
        try:
            want = a.chat_format(msgs)
        except kuiper.KuiperError:
            want = None
        if want is not None:
            assert b.chat_format(msgs) == want
        idss = [a.tokenize(p)[: a.n_ctx] for p in PROMPTS]
    finally:
        a.close()
        b.close()
    ref, got = logits(src, idss, tok), logits(out, idss)
    assert np.max(rel_err(got, ref)) <= 1e-5


def test_f32_roundtrip_llama2c(shared, quantize_tool, outdir):
    src, tok = shared("models/stories260K/stories260K.bin"), shared("models/stories260K/tok512.bin")
    out = convert(quantize_tool, outdir, src, "F32", "st", "--tokenizer", tok)
    # llama2.c's tokenizer has no special-token parsing; GGUF vocabularies do, so compare
    # plain-text tokenization here and the special handling against llama.cpp's own file below
    check_same_model(src, out, tok, specials=False)


def test_llama2c_vocab_matches_llama_cpp_conversion(shared, quantize_tool, outdir):
    """llama.cpp converted the same stories260K: same tokens, scores, types and special ids,
    and the two files tokenize alike with special parsing on."""
    gguf = gguf_py()
    src, tok = shared("models/stories260K/stories260K.bin"), shared("models/stories260K/tok512.bin")
    ref = shared("models/stories260K/stories260K.gguf")
    out = convert(quantize_tool, outdir, src, "F32", "st", "--tokenizer", tok)
    fa, fb = gguf.GGUFReader(ref).fields, gguf.GGUFReader(out).fields
    for key in ["tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"]:
        assert fa[key].contents() == fb[key].contents(), key
    for key in ["tokenizer.ggml.model", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                "tokenizer.ggml.unknown_token_id"]:
        assert fa[key].contents() == fb[key].contents(), key
    a, b = kuiper.Model(ref, threads=1), kuiper.Model(out, threads=1)
    try:
        for text in TEXTS:
            assert a.tokenize(text) == b.tokenize(text), text
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("name", ["kp-llama3-tiny", "kp-qwen2-tiny"])
def test_gguf_roundtrip(shared, quantize_tool, outdir, name):
    """COPY keeps every tensor as it is: the same bytes, metadata and logits."""
    src = shared(f"models/gguf/{name}.gguf")
    out = convert(quantize_tool, outdir, src, "COPY", name)
    check_same_model(src, out, None, specials=True)
    gguf = gguf_py()
    want = {t.name: (t.tensor_type, np.array(t.data).tobytes()) for t in gguf.GGUFReader(src).tensors}
    got = {t.name: (t.tensor_type, np.array(t.data).tobytes()) for t in gguf.GGUFReader(out).tensors}
    assert got == want
    fa, fb = gguf.GGUFReader(src).fields, gguf.GGUFReader(out).fields
    for key in fa:
        if key.startswith("tokenizer.") and key in fb:
            assert fa[key].contents() == fb[key].contents(), key


# ---------------------------------------------------------------- every type

@pytest.mark.parametrize("typ", TYPES)
def test_every_type_loads_and_generates(shared, quantize_tool, outdir, typ):
    for src, tok, tag in [(shared("models/gguf/kp-llama-small.gguf"), None, "small"),
                          # rows of 64: the K types fall back to legacy blocks here
                          (shared("models/stories260K/stories260K.bin"), shared("models/stories260K/tok512.bin"), "st")]:
        extra = ("--tokenizer", tok) if tok else ()
        out = convert(quantize_tool, outdir, src, typ, tag, *extra)
        m = kuiper.Model(out, threads=1)
        ids = m.tokenize(PROMPTS[0])
        text = m.generate(ids, max_new_tokens=8, temperature=0) if hasattr(m, "generate") else None
        m.close()
        ref, got = logits(src, [ids], tok), logits(out, [ids])
        assert np.all(np.isfinite(got))
        # loose: catches a wrong layout (errors of order 1), not quantization noise
        assert np.mean(rel_err(got, ref)) < {"F32": 1e-5, "F16": 1e-2, "BF16": 5e-2}.get(typ, 0.8), typ
        del text


def tensor_types(gguf, path):
    return {t.name: t.tensor_type.name for t in gguf.GGUFReader(path).tensors}


@pytest.mark.parametrize("typ", ["Q4_K_M", "Q6_K", "Q4_0", "Q4_1", "Q5_0", "Q8_0"])
def test_tensor_types_match_llama_quantize(shared, quantize_tool, outdir, typ):
    """The same tensors get the same types as in the files llama-quantize made."""
    gguf = gguf_py()
    ref = shared(f"models/gguf/kp-llama-small-{typ}.gguf")
    ours = convert(quantize_tool, outdir, shared("models/gguf/kp-llama-small.gguf"), typ, "small")
    assert tensor_types(gguf, ours) == tensor_types(gguf, ref)


@pytest.mark.parametrize("typ", LEGACY)
def test_legacy_blocks_bit_identical(shared, quantize_tool, outdir, typ):
    gguf = gguf_py()
    src_path = shared("models/gguf/kp-llama-small.gguf")
    src = {t.name: np.array(t.data, dtype=np.float32) for t in gguf.GGUFReader(src_path).tensors}
    out = convert(quantize_tool, outdir, src_path, typ, "small")
    n = 0
    for t in gguf.GGUFReader(out).tensors:
        if t.tensor_type.name != typ:
            continue
        x = src[t.name].reshape(-1, int(t.shape[0]))
        want = gguf.quants.quantize(x, t.tensor_type).reshape(-1).view(np.uint8)
        got = np.array(t.data).reshape(-1).view(np.uint8)
        assert np.array_equal(got, want), f"{typ} {t.name}"
        n += 1
    assert n >= 27  # every weight matrix but the classifier


def test_legacy_rows_bit_identical_edge_values():
    """Rows built to hit rounding ties, all-zero and constant blocks, sign choices and tiny
    values, through the library's row quantizers (tests/quantize/quantize-rows) against gguf-py."""
    gguf = gguf_py()
    exe = os.environ.get("KUIPER_QUANTIZE_ROWS")
    if not exe or not os.path.exists(exe):
        skip_loudly("KUIPER_QUANTIZE_ROWS does not name the built quantize-rows helper")
    rng = np.random.default_rng(7)
    ramp = np.arange(256, dtype=np.float32) - 128
    rows = [np.zeros(256), np.full(256, -3.0), np.full(256, 2.5), ramp, ramp / 8, ramp / 16 + 0.25,
            rng.integers(-8, 8, 256) * 0.5, rng.integers(-16, 16, 256) / 31.0, rng.standard_normal(256) * 1e-6,
            rng.standard_normal(256) * 1e4, rng.standard_normal(256), np.where(np.arange(256) % 2, 1.0, -1.0)]
    rows += [rng.standard_normal(256) * s for s in rng.uniform(0.001, 10, 200)]
    x = np.stack(rows).astype(np.float32)
    for typ in LEGACY:
        r = subprocess.run([exe, typ], input=x.tobytes(), capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr
        want = gguf.quants.quantize(x, getattr(gguf.GGMLQuantizationType, typ)).reshape(-1).view(np.uint8)
        got = np.frombuffer(r.stdout, dtype=np.uint8)
        assert got.size == want.size and np.array_equal(got, want), typ
    for typ in ["Q4_K", "Q5_K", "Q6_K"]:  # our own fit: only the read-back bound applies
        r = subprocess.run([exe, typ], input=x.tobytes(), capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr


# ---------------------------------------------------------------- K-quant accuracy

@pytest.mark.parametrize("typ", ["Q4_K_M", "Q6_K"])
def test_kquants_no_worse_than_llama_cpp(shared, quantize_tool, outdir, typ):
    src = shared("models/gguf/kp-llama-small.gguf")
    theirs = shared(f"models/gguf/kp-llama-small-{typ}.gguf")
    ours = convert(quantize_tool, outdir, src, typ, "small")
    m = kuiper.Model(src, threads=1)
    idss = [m.tokenize(p) for p in PROMPTS]
    m.close()
    ref = logits(src, idss)
    e_ours, e_theirs = logits(ours, idss) - ref, logits(theirs, idss) - ref
    rms_ours, rms_theirs = np.sqrt(np.mean(e_ours ** 2)), np.sqrt(np.mean(e_theirs ** 2))
    rel_ours, rel_theirs = np.mean(rel_err(ref + e_ours, ref)), np.mean(rel_err(ref + e_theirs, ref))
    print(f"\n{typ}: logit rms ours {rms_ours:.4f} llama.cpp {rms_theirs:.4f}; "
          f"mean row max-rel ours {rel_ours:.4f} llama.cpp {rel_theirs:.4f}")
    assert rms_ours <= rms_theirs
    assert rel_ours <= rel_theirs


# ---------------------------------------------------------------- bad input

def test_bad_input(shared, quantize_tool, outdir):
    src = shared("models/gguf/kp-llama-small.gguf")
    r = quantize_tool(src, os.path.join(outdir, "x.gguf"), "Q3_K", check=False)
    assert r.returncode == 1 and "Q3_K" in r.stderr and "Q4_K_M" in r.stderr
    r = quantize_tool(src, "/nonexistent-dir/x.gguf", "Q8_0", check=False)
    assert r.returncode == 1 and "/nonexistent-dir/x.gguf" in r.stderr
    missing = os.path.join(outdir, "missing.gguf")
    r = quantize_tool(missing, os.path.join(outdir, "y.gguf"), "Q8_0", check=False)
    assert r.returncode == 1 and "missing.gguf" in r.stderr
    assert not os.path.exists(os.path.join(outdir, "y.gguf"))
    r = quantize_tool(shared("models/stories260K/stories260K.bin"), os.path.join(outdir, "z.gguf"), "F32",
                      check=False)
    assert r.returncode == 1 and "tokenizer" in r.stderr
    assert not [f for f in os.listdir(outdir) if f.endswith(".kp-partial")]
    r = quantize_tool(src, check=False)
    assert r.returncode == 1 and "IN OUT TYPE" in r.stderr
    assert quantize_tool("--help").stdout.startswith("usage:")
    assert "kuiper-quantize" in quantize_tool("--version").stdout
