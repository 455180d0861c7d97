"""Our GGUF files read back by llama.cpp itself (llama-cpp-python), and llama.cpp's quantizer
run on the same F32 file. Skipped loudly when llama_cpp is not installed."""
import ctypes
import os

import numpy as np
import pytest

import kuiper
from conftest import skip_loudly
from test_quantize import PROMPTS, convert, gguf_py, logits, rel_err


def llama_cpp():
    try:
        import llama_cpp as lc
        return lc
    except ImportError:
        skip_loudly("llama_cpp (llama-cpp-python) is not installed: pip install llama-cpp-python")


def their_logits(lc, path, idss):
    # F32 KV cache (llama.cpp defaults to F16, which alone moves logits by ~1e-3)
    llm = lc.Llama(model_path=str(path), n_ctx=256, n_threads=1, logits_all=True, verbose=False, type_k=0, type_v=0)
    rows = []
    for ids in idss:
        llm.reset()
        llm.eval(ids)
        rows.append(np.array(llm.scores[: len(ids)], dtype=np.float64))
    llm.close()
    return np.concatenate(rows)


# tolerances of tools/conformance.py: F32 arithmetic within 1e-4 of each row's largest
# |logit|; quantized files within 5% (llama.cpp's own kernels round differently)
@pytest.mark.parametrize("typ,tol", [("F32", 1e-4), ("Q8_0", 0.05), ("Q4_K_M", 0.05)])
def test_llama_cpp_reads_our_files(shared, quantize_tool, outdir, typ, tol):
    lc = llama_cpp()
    src = shared("models/gguf/kp-llama-small.gguf")
    out = convert(quantize_tool, outdir, src, typ, "small")
    m = kuiper.Model(out, threads=1)
    idss = [m.tokenize(p) for p in PROMPTS]
    m.close()
    ours, theirs = logits(out, idss), their_logits(lc, out, idss)
    err = rel_err(ours, theirs)
    print(f"\n{typ}: llama.cpp vs libkuiper on our file: max row rel err {err.max():.2e}")
    assert err.max() <= tol
    assert np.array_equal(ours.argmax(axis=1), theirs.argmax(axis=1)) or typ != "F32"


def llama_quantize(lc, src, dst, ftype):
    p = lc.llama_model_quantize_default_params()
    p.ftype = ftype
    p.nthread = 1
    rc = lc.llama_model_quantize(os.fsencode(src), os.fsencode(dst), ctypes.byref(p))
    assert rc == 0, f"llama_model_quantize returned {rc}"


@pytest.mark.parametrize("typ,ftype", [("Q8_0", 7), ("Q4_0", 2), ("Q4_1", 3), ("Q5_0", 8), ("Q5_1", 9)])
def test_bytes_equal_llama_model_quantize(shared, quantize_tool, outdir, typ, ftype):
    """Q8_0: every tensor byte-identical to llama.cpp's quantizer; the other legacy types:
    every tensor of that type (their classifier is Q6_K, a fit of our own)."""
    lc = llama_cpp()
    gguf = gguf_py()
    src = shared("models/gguf/kp-llama-small.gguf")
    ref = os.path.join(outdir, f"llamacpp-{typ}.gguf")
    llama_quantize(lc, src, ref, ftype)
    ours = convert(quantize_tool, outdir, src, typ, "small")
    a = {t.name: t for t in gguf.GGUFReader(ref).tensors}
    b = {t.name: t for t in gguf.GGUFReader(ours).tensors}
    assert sorted(a) == sorted(b)
    n = 0
    for name, t in a.items():
        assert t.tensor_type == b[name].tensor_type, name
        if typ == "Q8_0" or t.tensor_type.name == typ:
            assert np.array(t.data).tobytes() == np.array(b[name].data).tobytes(), name
            n += 1
    assert n >= 27


@pytest.mark.parametrize("name", ["kp-llama3-tiny", "kp-qwen2-tiny", "stories260K"])
def test_llama_cpp_tokenizes_our_vocabulary_alike(shared, quantize_tool, outdir, name):
    """llama.cpp's tokenizer on the vocabulary we wrote gives what it gives on the file
    llama.cpp's tools made (for stories260K: its own conversion of the same checkpoint)."""
    from test_quantize import TEXTS
    lc = llama_cpp()
    if name == "stories260K":
        ref = shared("models/stories260K/stories260K.gguf")
        ours = convert(quantize_tool, outdir, shared("models/stories260K/stories260K.bin"), "F32", "st",
                       "--tokenizer", shared("models/stories260K/tok512.bin"))
    else:
        ref = shared(f"models/gguf/{name}.gguf")
        ours = convert(quantize_tool, outdir, ref, "COPY", name)
    a = lc.Llama(model_path=str(ref), vocab_only=True, verbose=False)
    b = lc.Llama(model_path=str(ours), vocab_only=True, verbose=False)
    for text in TEXTS:
        for special in (True, False):
            assert a.tokenize(text.encode(), add_bos=True, special=special) == \
                b.tokenize(text.encode(), add_bos=True, special=special), (text, special)
    a.close()
    b.close()
