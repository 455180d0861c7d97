"""The chat side of the bindings: Model.chat_format / chat_tokens, Session.chat with KV reuse,
save/load/reset, eval/logits, every sampler keyword and the error paths. References: Jinja2
renderings of the model's own template, and greedy evaluations of the whole conversation from
scratch in a fresh session."""
import heapq
import json
import os
import sys

import pytest

import kuiper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "app"))

Q1, Q2 = "What is the capital of France?", "Name one famous building there."
# Tokens one at a time (answers) and in a batch (prompts) round differently; with SmolLM2's
# quantized weights a KV-reuse answer may part from the from-scratch one at a near tie only.
NEAR_TIE = 0.5


def user(t):
    return {"role": "user", "content": t}


def assistant(t):
    return {"role": "assistant", "content": t}


def jinja(model_path, messages, add=True):
    pytest.importorskip("jinja2")
    from apptest import gguf_string, render
    return render(gguf_string(model_path, "tokenizer.chat_template"), messages, add)


def scratch(model, messages, n, template=None):
    """(ids, gaps): greedy ids of a fresh session fed the whole conversation, with the top-1/top-2
    logit gap of each step (eval + logits; no chat, no KV reuse, no sampler)."""
    s = model.session(n_ctx=min(2048, model.n_ctx))
    s.eval(model.chat_tokens(model.chat_format(messages, True, template)))
    ids, gaps = [], []
    for _ in range(n):
        row = s.logits()
        a, b = heapq.nlargest(2, range(len(row)), key=row.__getitem__)
        if model.is_eog(a):
            break
        ids.append(a)
        gaps.append(row[a] - row[b])
        s.eval([a])
    s.close()
    return ids, gaps


def assert_same_greedy(model, got, ids, gaps):
    want = model.detokenize(ids)
    if got == want:
        return
    for i in range(len(ids)):
        if not got.startswith(model.detokenize(ids[:i + 1]).rstrip("\ufffd")):
            assert gaps[i] < NEAR_TIE, f"parts from the from-scratch answer at step {i} (gap {gaps[i]:.3f})"
            return
    raise AssertionError(f"goes on after the from-scratch answer: {got!r} vs {want!r}")


# ---- Model

def test_model_facts(smollm2, stories):
    assert smollm2.arch == "llama" and smollm2.n_ctx == 8192 and smollm2.n_vocab == 49152
    assert smollm2.bos == 1 and smollm2.eos == 2 and smollm2.is_eog(2) and not smollm2.is_eog(1)
    assert smollm2.token_to_piece(1) == b"<|im_start|>"
    assert stories.n_ctx == 512 and stories.bos == 1 and stories.token_to_piece(403) == b" Once"  # raw: SentencePiece space kept
    with pytest.raises(kuiper.KuiperError) as e:
        stories.token_to_piece(100000)
    assert e.value.name == "KP_ERR_TOKEN_OUT_OF_RANGE"


def test_chat_format_equals_jinja(smollm2, smollm2_path):
    convs = [[user(Q1)], [{"role": "system", "content": "Be brief."}, user(Q1), assistant("Paris."), user(Q2)],
             [user("你好 🙂 <|im_start|>")]]
    for msgs in convs:
        for add in (True, False):
            assert smollm2.chat_format(msgs, add_assistant=add) == jinja(smollm2_path, msgs, add)
    # (role, content) pairs work too
    assert smollm2.chat_format([("user", Q1)]) == smollm2.chat_format([user(Q1)])


def test_chat_format_forced_template(stories, smollm2):
    text = stories.chat_format([user("hi")], template="chatml")
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert smollm2.chat_format([user("hi")], template="llama3").startswith("<|begin_of_text|>")


def test_chat_tokens_add_no_second_bos(smollm2, stories):
    ids = smollm2.chat_tokens(smollm2.chat_format([user(Q1)]))
    assert ids[0] == 1 and ids.count(1) == 3  # the three <|im_start|> of the text, nothing added
    # Text not starting with BOS gets the tokenizer's BOS (stories260K's is 1).
    assert stories.chat_tokens("hello")[0] == 1


def test_chat_format_errors(stories, smollm2):
    for msgs, name in (([], "KP_ERR_INVALID_ARG"), ([{"role": "wizard", "content": "x"}], "KP_ERR_INVALID_ARG")):
        with pytest.raises(kuiper.KuiperError) as e:
            smollm2.chat_format(msgs)
        assert e.value.name == name and e.value.message
    with pytest.raises(kuiper.KuiperError) as e:
        stories.chat_format([user("hi")])  # llama2.c checkpoints carry no template
    assert e.value.name == "KP_ERR_NOT_FOUND"
    with pytest.raises(kuiper.KuiperError) as e:
        stories.chat_format([user("hi")], template="nonsense")
    assert e.value.name == "KP_ERR_UNSUPPORTED"
    with pytest.raises(TypeError):
        smollm2.chat_format([{"role": "user", "content": 5}])


# ---- Session.chat

def test_chat_two_turns_reuse_the_cache(smollm2):
    s = smollm2.session(n_ctx=2048)
    st = s.chat(Q1, temperature=0, max_new_tokens=24)
    a1 = "".join(st)
    assert st.stats["n_reused"] == 0 and st.stats["n_generated"] > 0
    ids, _ = scratch(smollm2, [user(Q1)], 24)
    assert a1 == smollm2.detokenize(ids)  # nothing reused: the same computation
    st = s.chat(Q2, temperature=0, max_new_tokens=24)
    a2 = "".join(st)
    # Only what the first turn did not hold was evaluated.
    assert st.stats["n_reused"] > 30 and st.stats["n_prompt"] < 30, st.stats
    assert st.stats["reason"] in ("eog", "max_tokens")
    assert s.messages == [user(Q1), assistant(a1), user(Q2), assistant(a2)]
    ids, gaps = scratch(smollm2, s.messages[:3], 24)
    assert_same_greedy(smollm2, a2, ids, gaps)
    assert s.tokens[:st.stats["n_reused"]] == smollm2.chat_tokens(smollm2.chat_format(s.messages[:3]))[
        :st.stats["n_reused"]]


def test_chat_reuse_equals_scratch_exactly_on_f32(stories):
    # stories260K's float weights: reuse and from-scratch agree token for token.
    s = stories.session()
    a1 = "".join(s.chat("Once upon a time", template="chatml", temperature=0, max_new_tokens=20))
    st = s.chat("The dog", template="chatml", temperature=0, max_new_tokens=20)
    a2 = "".join(st)
    assert st.stats["n_reused"] > 0
    assert s.messages == [user("Once upon a time"), assistant(a1), user("The dog"), assistant(a2)]
    ids, _ = scratch(stories, s.messages[:3], 20, template="chatml")
    assert a2 == stories.detokenize(ids)


def test_chat_system_message(smollm2):
    s = smollm2.session(n_ctx=1024)
    s.chat(Q1, system="You are a pirate.", temperature=0, max_new_tokens=4).text()
    assert s.messages[0] == {"role": "system", "content": "You are a pirate."}
    s.chat(Q2, system="", temperature=0, max_new_tokens=4).text()
    assert [m["role"] for m in s.messages] == ["user", "assistant", "user", "assistant"]


def test_chat_closed_early_keeps_the_partial_answer(smollm2):
    s = smollm2.session(n_ctx=2048)
    st = s.chat("Tell me a long story about a dragon.", temperature=0, max_new_tokens=200)
    first = next(st)
    st.close()
    assert s.messages[-1]["role"] == "assistant" and s.messages[-1]["content"].startswith(first)
    assert len(s.messages) == 2
    # The next question builds on it.
    s.chat(Q1, temperature=0, max_new_tokens=4).text()
    assert len(s.messages) == 4


def test_a_new_call_stops_the_running_stream(smollm2):
    s = smollm2.session(n_ctx=2048)
    st = s.chat("Tell me a long story.", temperature=0, max_new_tokens=200)
    next(st)
    s.chat(Q1, temperature=0, max_new_tokens=4).text()  # stops `st` first
    assert list(st) == [] and len(s.messages) == 4


def test_chat_errors_leave_the_conversation(smollm2, stories):
    s = smollm2.session(n_ctx=32)
    with pytest.raises(kuiper.KuiperError) as e:
        s.chat("word " * 100)
    assert e.value.name == "KP_ERR_CONTEXT_FULL" and "32" in e.value.message
    assert s.messages == [] and s.n_past == 0
    with pytest.raises(kuiper.KuiperError) as e:
        stories.session().chat("hi")
    assert e.value.name == "KP_ERR_NOT_FOUND"
    with pytest.raises(TypeError):
        s.chat(42)


# ---- sampler options, stop strings, context policy

def test_every_sampler_option(stories):
    s = stories.session()
    kw = dict(temperature=0.8, top_p=0.9, top_k=40, min_p=0.05, repeat_penalty=1.1, frequency_penalty=0.1,
              presence_penalty=0.1, penalty_window=32, seed=7)
    a = s.generate("Once upon a time", max_new_tokens=30, **kw).text()
    s.reset()
    b = s.generate("Once upon a time", max_new_tokens=30, **kw).text()
    assert a == b and a  # seeded: reproducible


@pytest.mark.parametrize("kw", [{"temperature": -1.0}, {"top_p": 1.5}, {"top_k": -1}, {"top_k": 2.5},
                                {"min_p": 2.0}, {"repeat_penalty": 0.0}, {"frequency_penalty": 1000.0},
                                {"presence_penalty": -1000.0}, {"penalty_window": 1e6}, {"seed": -3},
                                {"seed": 0.5}])
def test_bad_sampler_values(stories, smollm2, kw):
    for call in (lambda: stories.session().generate("Once", **kw),
                 lambda: smollm2.session(n_ctx=256).chat("hi", **kw)):
        with pytest.raises(kuiper.KuiperError) as e:
            call()
        assert e.value.name == "KP_ERR_INVALID_ARG" and e.value.message


def test_bad_option_types(stories):
    s = stories.session()
    with pytest.raises(TypeError):
        s.generate("Once", temperature="hot")
    with pytest.raises(TypeError):
        s.generate("Once", no_such_option=1)
    with pytest.raises(kuiper.KuiperError) as e:
        s.generate("Once", context_policy="wrap")
    assert e.value.name == "KP_ERR_INVALID_ARG"
    with pytest.raises(kuiper.KuiperError) as e:
        s.generate("Once", stop=[""]).text()
    assert e.value.name == "KP_ERR_INVALID_ARG"


def test_stop_strings(stories):
    s = stories.session()
    full = s.generate("Once upon a time", max_new_tokens=60, temperature=0).text()
    assert "." in full
    s.reset()
    st = s.generate("Once upon a time", max_new_tokens=60, temperature=0, stop=["."])
    text = st.text()
    assert text == full[:full.index(".")]
    assert st.stats["reason"] == "stop_string" and st.stats["stop_string"] == 0
    s.reset()
    assert s.generate("Once upon a time", max_new_tokens=60, temperature=0, stop=".").text() == text


def test_context_policies(stories):
    s = stories.session(n_ctx=32)
    with pytest.raises(kuiper.KuiperError) as e:
        s.generate("Once upon a time", max_new_tokens=60, temperature=0).text()
    assert e.value.name == "KP_ERR_CONTEXT_FULL"
    s.reset()
    st = s.generate("Once upon a time", max_new_tokens=60, temperature=0, context_policy="slide", n_keep=1)
    st.text()
    assert st.stats["n_generated"] == 60 and st.stats["reason"] == "max_tokens" and s.n_past <= 32


# ---- eval / logits / tokens

def test_eval_logits_tokens(stories):
    s = stories.session()
    assert s.logits() is None
    s.eval([1, 403, 407], logits="all")
    rows = [s.logits(i) for i in range(3)]
    assert all(len(r) == 512 for r in rows) and s.logits(3) is None
    assert s.tokens == [1, 403, 407] and s.n_past == 3
    s.eval([261], logits=None)
    assert s.logits() is None and s.n_past == 4
    with pytest.raises(kuiper.KuiperError) as e:
        s.eval([9999])
    assert e.value.name == "KP_ERR_TOKEN_OUT_OF_RANGE" and s.n_past == 4
    with pytest.raises(kuiper.KuiperError):
        s.eval([1], logits="some")


# ---- save / load / reset

def test_save_load_continues_identically(smollm2, tmp_path):
    path = str(tmp_path / "state")
    s = smollm2.session(n_ctx=1024)
    s.chat(Q1, temperature=0, max_new_tokens=12).text()
    s.save(path)
    doc = json.load(open(path + ".json", encoding="utf-8"))
    assert doc["messages"] == s.messages and doc["format"] == "kuiper-chat conversation"
    a2 = s.chat(Q2, temperature=0, max_new_tokens=12).text()
    t = smollm2.session(n_ctx=1024)
    t.load(path)
    assert t.messages == s.messages[:2] and t.n_past == len(t.tokens) > 0
    st = t.chat(Q2, temperature=0, max_new_tokens=12)
    assert st.text() == a2 and st.stats["n_reused"] > 0


def test_load_errors_change_nothing(smollm2, stories, shared_file, tmp_path):
    good = str(tmp_path / "good")
    s = smollm2.session(n_ctx=1024)
    s.chat(Q1, temperature=0, max_new_tokens=4).text()
    s.save(good)
    qwen = kuiper.Model(shared_file("models/gguf/kp-qwen2-tiny.gguf"))
    foreign = str(tmp_path / "foreign")
    q = qwen.session(n_ctx=64)
    q.generate("hello", max_new_tokens=2, temperature=0).text()
    q.save(foreign)
    broken = str(tmp_path / "broken")
    data = open(good, "rb").read()
    open(broken, "wb").write(data[:len(data) // 2])
    badside = str(tmp_path / "badside")
    open(badside, "wb").write(data)
    open(badside + ".json", "w").write('{"messages": [{"role": "user"}]}')
    t = smollm2.session(n_ctx=1024)
    t.chat(Q2, temperature=0, max_new_tokens=4).text()
    before, tokens = t.messages, t.tokens
    for path, name in ((foreign, "KP_ERR_MODEL_MISMATCH"), (broken, "KP_ERR_FORMAT"), (badside, "KP_ERR_FORMAT"),
                       (str(tmp_path / "missing"), "KP_ERR_IO")):
        with pytest.raises(kuiper.KuiperError) as e:
            t.load(path)
        assert e.value.name == name, (path, e.value)
        assert t.messages == before and t.tokens == tokens
    # A state without its sidecar loads with an empty conversation.
    lonely = str(tmp_path / "lonely")
    open(lonely, "wb").write(data)
    t.load(lonely)
    assert t.messages == [] and t.n_past > 0
    q.close()
    qwen.close()


def test_reset(smollm2):
    s = smollm2.session(n_ctx=512)
    s.chat(Q1, temperature=0, max_new_tokens=4).text()
    s.reset()
    assert s.messages == [] and s.n_past == 0 and s.tokens == []


def test_model_outlives_its_sessions(stories_path):
    m = kuiper.Model(*stories_path, threads=1)
    s = m.session(n_ctx=64)
    m.close()  # deferred: the session still needs it
    assert s.generate("Once", max_new_tokens=3, temperature=0).text()
    s.close()
    assert m._h is None
    with pytest.raises(kuiper.KuiperError):
        m.session()
