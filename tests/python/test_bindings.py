"""The ctypes bindings against the real library on stories260K, compared with llama2.c's outputs
in shared/reference/stories260K."""
import os

import pytest

import kuiper

PROMPT_IDS = [1, 403, 407, 261, 378]  # "Once upon a time" with BOS (greedy_p1.ids)


def test_tokenize_known_ids(stories):
    assert stories.tokenize("Once upon a time") == PROMPT_IDS
    assert stories.tokenize("Once upon a time", add_special=False) == PROMPT_IDS[1:]
    assert stories.tokenize(b"Once upon a time") == PROMPT_IDS


def test_detokenize_roundtrip(stories):
    assert stories.detokenize(PROMPT_IDS[1:]) == "Once upon a time"
    # Special tokens are rendered as their text; llama2.c's tok512 spells BOS "\n<s>\n".
    assert stories.detokenize(PROMPT_IDS) == "\n<s>\nOnce upon a time"
    assert stories.detokenize([]) == ""


def test_greedy_equals_llama2c(stories, shared_file):
    want = open(shared_file("reference/stories260K/greedy_p1.txt"), encoding="utf-8").read()
    s = stories.session()
    # llama2.c's run -n 256 runs 256 forward passes; the last 252 of them (after the 4 forced prompt
    # tokens) each print a sampled token. Its text ends with a newline.
    pieces = list(s.generate("Once upon a time", max_new_tokens=256 - 4, temperature=0, echo=True))
    assert len(pieces) > 10
    assert "".join(pieces) + "\n" == want


def test_greedy_from_ids_without_echo(stories, shared_file):
    want = open(shared_file("reference/stories260K/greedy_p1.txt"), encoding="utf-8").read()
    s = stories.session()
    text = "".join(s.generate(PROMPT_IDS, max_new_tokens=252, temperature=0))
    assert "Once upon a time" + text + "\n" == want


def test_seeded_sampling_equals_llama2c(stories, shared_file):
    want = open(shared_file("reference/stories260K/sample_t1.0_p0.9_s42.txt"), encoding="utf-8").read()
    s = stories.session()
    text = "".join(s.generate("Once upon a time", max_new_tokens=252, temperature=1.0, top_p=0.9, seed=42,
                              echo=True))
    assert text + "\n" == want


def test_stream_to_the_end_and_session_state(stories):
    s = stories.session(n_ctx=64)
    assert s.n_ctx == 64
    stream = s.generate("Once upon a time", max_new_tokens=10, temperature=0)
    pieces = [p for p in stream]
    assert all(isinstance(p, str) for p in pieces)
    assert list(stream) == []  # exhausted stays exhausted
    assert s.n_past >= 5
    s.reset()
    assert s.n_past == 0


def test_stream_closed_early(stories):
    s = stories.session()
    stream = s.generate("Once upon a time", max_new_tokens=200, temperature=0)
    first = next(stream)
    stream.close()
    assert isinstance(first, str)
    assert s.n_past < 5 + 200


def test_missing_file():
    with pytest.raises(kuiper.KuiperError) as e:
        kuiper.Model("/nonexistent/model.bin")
    assert e.value.name == "KP_ERR_IO"
    assert "/nonexistent/model.bin" in e.value.message


def test_bad_option_values(stories):
    s = stories.session()
    for kw in ({"temperature": -1.0}, {"top_p": 1.5}, {"seed": -3}):
        with pytest.raises(kuiper.KuiperError) as e:
            s.generate("Once", max_new_tokens=1, **kw)
        assert e.value.name == "KP_ERR_INVALID_ARG"
        assert e.value.message
    assert s.n_past == 0  # nothing ran


def test_token_out_of_range(stories):
    with pytest.raises(kuiper.KuiperError) as e:
        stories.detokenize([1, 100000])
    assert e.value.name == "KP_ERR_TOKEN_OUT_OF_RANGE"
    s = stories.session()
    with pytest.raises(kuiper.KuiperError) as e:
        list(s.generate([1, 99999], max_new_tokens=1, temperature=0))
    assert e.value.name == "KP_ERR_TOKEN_OUT_OF_RANGE"


def test_library_from_env():
    lib = kuiper.load_library()
    assert lib.kp_version().decode().count(".") == 2
    if os.environ.get("KUIPER_LIB"):
        assert os.path.exists(os.environ["KUIPER_LIB"])
