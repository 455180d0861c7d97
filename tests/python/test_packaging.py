"""The bindings' user-facing defaults and failure modes: kuiper-chat's defaults, kv_type, device,
numpy logits, create_chat_completion's OpenAI shapes, and a clean error when the library is
missing. (test_venv.py covers `pip install ./python` in a fresh virtual environment.)"""
import os
import subprocess
import sys

import pytest

import kuiper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = "models/gguf/kp-qwen2-tiny.gguf"  # random weights, but a real ChatML template
MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name three colours."}]


@pytest.fixture(scope="module")
def tiny(shared_file):
    return kuiper.Model(shared_file(TINY), threads=1)


def test_version_matches_the_library():
    assert kuiper.__version__ == kuiper.load_library().kp_version().decode()


def test_session_defaults_follow_kuiper_chat(stories, tiny):
    # kuiper-chat: min(4096, the model's context).
    assert stories.n_ctx == 512 and stories.session().n_ctx == 512
    assert tiny.n_ctx > 0 and tiny.session().n_ctx == min(4096, tiny.n_ctx)
    assert stories.session(n_ctx=0).n_ctx == stories.n_ctx


def test_logits_are_numpy_when_available(stories):
    np = pytest.importorskip("numpy")
    s = stories.session()
    s.eval(stories.tokenize("Once upon a time"))
    row = s.logits()
    assert isinstance(row, np.ndarray) and row.dtype == np.float32 and row.shape == (stories.n_vocab,)
    assert np.isfinite(row).all() and float(row.max()) > float(row.min())


def test_kv_f16_is_close_to_f32(stories):
    ids = stories.tokenize("Once upon a time, there was a")
    rows = []
    for kv in ("f32", "f16"):
        s = stories.session(kv_type=kv)
        s.eval(ids)
        rows.append([float(x) for x in s.logits()])
    a, b = rows
    assert max(abs(x - y) for x, y in zip(a, b)) < 0.05
    assert a.index(max(a)) == b.index(max(b))
    with pytest.raises(kuiper.KuiperError, match="kv_type"):
        stories.session(kv_type="q8")


def test_cuda_device_is_unsupported_with_a_reason(shared_file):
    with pytest.raises(kuiper.KuiperError) as e:
        kuiper.Model(shared_file("models/stories260K/stories260K.bin"),
                     tokenizer=shared_file("models/stories260K/tok512.bin"), device="cuda")
    assert e.value.name == "KP_ERR_UNSUPPORTED"
    # Either this libkuiper was built without CUDA, or its module, driver or device is missing
    # (CI machines have no GPU); the message says which.
    assert "no CUDA device" in e.value.message, e.value.message
    with pytest.raises(ValueError, match="device"):
        kuiper.Model("x", device="tpu")


def test_chat_completion_shapes_and_stream_equals_whole(tiny):
    whole = tiny.create_chat_completion(messages=MSGS, temperature=0, max_tokens=12)
    assert whole["object"] == "chat.completion" and whole["id"].startswith("chatcmpl-")
    assert whole["model"] == os.path.basename(TINY) and isinstance(whole["created"], int)
    (choice,) = whole["choices"]
    assert choice["index"] == 0 and choice["message"]["role"] == "assistant"
    text = choice["message"]["content"]
    u = whole["usage"]
    assert u["completion_tokens"] == 12 and choice["finish_reason"] == "length"
    assert u["prompt_tokens"] == len(tiny.chat_tokens(tiny.chat_format(MSGS)))
    assert u["total_tokens"] == u["prompt_tokens"] + 12

    chunks = list(tiny.create_chat_completion(messages=MSGS, stream=True, temperature=0, max_tokens=12))
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"] != whole["id"]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    assert chunks[-1]["choices"][0]["delta"] == {} and chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == text

    # Greedy by hand (eval + argmax of the logits, no sampler, no KV reuse) gives the same text.
    s = tiny.session()
    s.eval(tiny.chat_tokens(tiny.chat_format(MSGS)))
    ids = []
    for _ in range(12):
        row = [float(x) for x in s.logits()]
        ids.append(row.index(max(row)))
        s.eval(ids[-1:])
    assert tiny.detokenize(ids) == text


def test_chat_completion_stop_and_seed(tiny):
    a = tiny.create_chat_completion(messages=MSGS, max_tokens=8, seed=7)["choices"][0]["message"]["content"]
    b = tiny.create_chat_completion(messages=MSGS, max_tokens=8, seed=7)["choices"][0]["message"]["content"]
    assert a == b  # same seed, same sampled answer (the KV cache reuse must not change it)
    whole = tiny.create_chat_completion(messages=MSGS, temperature=0, max_tokens=12)["choices"][0]
    text = whole["message"]["content"]
    assert len(text) >= 7
    stop = text[4:7]  # stop at text from inside the greedy answer: it must end just before it
    cut = tiny.create_chat_completion(messages=MSGS, temperature=0, max_tokens=12, stop=[stop])["choices"][0]
    assert cut["message"]["content"] == text[:text.index(stop)] and cut["finish_reason"] == "stop"
    with pytest.raises(kuiper.KuiperError, match="max_tokens"):
        tiny.create_chat_completion(messages=MSGS, max_tokens=0)


def test_missing_library_is_one_clear_error(tmp_path):
    """No library anywhere: LibraryNotFoundError naming each place tried, one traceback only
    (Model.__del__ must not raise on the half-made object)."""
    import ctypes.util
    if ctypes.util.find_library("kuiper"):
        pytest.skip("a libkuiper is installed on the loader's path; cannot hide it")
    env = {k: v for k, v in os.environ.items() if k not in ("KUIPER_LIB", "LD_PRELOAD")}
    env.update(KUIPER_LIB=str(tmp_path / "nothing.so"), PKG_CONFIG_LIBDIR=str(tmp_path), PKG_CONFIG_PATH="",
               PYTHONPATH=os.path.join(ROOT, "python"))
    code = "import kuiper\ntry:\n    kuiper.Model('m.gguf')\nexcept ImportError as e:\n    print('CAUGHT', e)\nkuiper.Model('m.gguf')\n"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1
    assert "CAUGHT libkuiper's shared library could not be loaded" in r.stdout
    for place in ("beside the package", "$KUIPER_LIB: " + str(tmp_path / "nothing.so"), "pkg-config",
                  "the loader's search path"):
        assert place in r.stdout, place
    assert r.stderr.count("Traceback") == 1, r.stderr
    assert "Exception ignored" not in r.stderr and "AttributeError" not in r.stderr, r.stderr
    assert "kuiper.LibraryNotFoundError" in r.stderr
