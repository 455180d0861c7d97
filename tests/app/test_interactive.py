#!/usr/bin/env python3
"""kuiper-chat's interactive mode with SmolLM2-135M-Instruct, on a pseudo-terminal (prompt,
Ctrl-C, Ctrl-D) and through pipes (plain lines). Every answer is compared with a from-scratch
greedy evaluation of the whole conversation by the plain library (chat-reference): KV reuse
across turns, /save + /load in a new process, /reset, /system, and the turn after a Ctrl-C.
Answers that reuse the cache are compared with assert_same_greedy (equal, or departing only at a
near tie: see apptest.NEAR_TIE); the others must be equal."""
import os
import shutil
import subprocess

from apptest import (CHAT, GREEDY, N_NEW, Pty, assert_same_greedy, chat, from_scratch, main, read_sidecar, shared,
                     skip, smollm2, tmpdir)

MODEL = smollm2()
ARGS = [CHAT, "-m", MODEL, *GREEDY, "-n", str(N_NEW)]
Q1, Q2, Q3 = "What is the capital of France?", "Name one famous building there.", "What is 2+2?"
LONG = "Write a very long story about a dragon who learns to fly. Use at least 800 words."
TMP = tmpdir()
N_LONG = 160


def user(t):
    return {"role": "user", "content": t}


def assistant(t):
    return {"role": "assistant", "content": t}


def started(args=ARGS):
    p = Pty(args)
    banner = p.expect(b"\r\n> ", 120)
    assert b"/help for commands" in banner, banner
    return p


def test_two_turns_reuse_the_cache():
    p = started()
    try:
        a1 = p.ask(Q1)
        a2 = p.ask(Q2)
        stats = p.command("/stats")
        save = p.command("/save " + os.path.join(TMP, "two"))
        p.send(b"/quit\n")
        assert p.wait() == 0
    finally:
        p.kill()
    # The second turn evaluated only what was new.
    reused = int(stats.split("(")[1].split(" reused")[0])
    n_prompt = int(stats.split("prompt: ")[1].split(" tokens")[0])
    assert reused > 20 and 0 < n_prompt < 30, stats
    assert "[saved" in save
    conv = read_sidecar(os.path.join(TMP, "two"))
    assert conv == [user(Q1), assistant(a1), user(Q2), assistant(a2)], conv
    assert a1 == from_scratch(MODEL, conv[:1]).text
    assert_same_greedy(a2, from_scratch(MODEL, conv[:3]), "second turn")


def test_ctrl_c_stops_an_answer_and_the_next_turn_works():
    # Long enough to be stopped surely, short enough for the next (unstopped) answer.
    p = started([*ARGS[:-1], str(N_LONG)])
    try:
        p.send(LONG.encode() + b"\n")
        p.expect(LONG.encode() + b"\r\n")
        p.wait_bytes(12)  # some of the answer is on the screen
        p.send(b"\x03")
        after = p.expect(b"\r\n> ", 60)
        assert b"[stopped]" in after, after
        a2 = p.ask(Q3)
        p.command("/save " + os.path.join(TMP, "cancel"))
        p.send(b"\x03")  # Ctrl-C at the prompt leaves
        assert p.wait() == 0
    finally:
        p.kill()
    conv = read_sidecar(os.path.join(TMP, "cancel"))
    assert [m["role"] for m in conv] == ["user", "assistant", "user", "assistant"], conv
    partial = conv[1]["content"]
    assert partial, "the partial answer is kept"
    # What was kept is the start of the full answer...
    full = from_scratch(MODEL, conv[:1], len(partial.encode()) + 4).text
    assert full.startswith(partial), (partial, full)
    # ... and the next turn is what evaluating the conversation from scratch gives.
    assert a2 == conv[3]["content"]
    assert_same_greedy(a2, from_scratch(MODEL, conv[:3], N_LONG), "turn after Ctrl-C")


def test_ctrl_d_at_the_prompt_exits():
    p = started()
    try:
        p.send(b"\x04")
        assert p.wait() == 0
    finally:
        p.kill()


def test_save_then_load_in_a_new_process_continues_identically():
    state = os.path.join(TMP, "state")
    r = subprocess.run(ARGS, input=f"{Q1}\n/save {state}\n{Q2}\n", capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    conv = read_sidecar(state)
    assert conv[0] == user(Q1) and len(conv) == 2
    assert r.stdout.startswith(conv[1]["content"] + "\n")
    a2 = r.stdout[len(conv[1]["content"]) + 1:-1]
    r2 = subprocess.run(ARGS, input=f"/load {state}\n{Q2}\n/stats\n", capture_output=True, text=True, timeout=300)
    assert r2.returncode == 0, r2.stderr
    assert "[loaded" in r2.stderr
    assert r2.stdout.startswith(a2 + "\n"), (r2.stdout, a2)
    # Only the new question was evaluated: the loaded state was reused.
    assert "prompt: " in r2.stdout and "(0 reused)" not in r2.stdout, r2.stdout


def test_load_rejects_foreign_and_broken_states():
    good = os.path.join(TMP, "good")
    r = subprocess.run(ARGS, input=f"{Q3}\n/save {good}\n", capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    # A state of another model.
    qwen = shared("models/gguf/kp-qwen2-tiny.gguf")
    foreign = os.path.join(TMP, "foreign")
    r = subprocess.run([CHAT, "-m", qwen, *GREEDY, "-n", "4"], input=f"hi\n/save {foreign}\n", capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    # A truncated one, and one without its conversation.
    broken = os.path.join(TMP, "broken")
    with open(good, "rb") as f:
        data = f.read()
    with open(broken, "wb") as f:
        f.write(data[:len(data) // 2])
    shutil.copy(good + ".json", broken + ".json")
    lonely = os.path.join(TMP, "lonely")
    shutil.copy(good, lonely)
    badside = os.path.join(TMP, "badside")
    shutil.copy(good, badside)
    with open(badside + ".json", "w") as f:
        f.write('{"messages": [{"role": "user"}]}')
    after = os.path.join(TMP, "after")
    script = (f"{Q1}\n/load {foreign}\n/load {broken}\n/load {lonely}\n/load {badside}\n/load\n/nonsense\n"
              f"/save {after}\n")
    r = subprocess.run(ARGS, input=script, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    err = r.stderr.splitlines()
    assert any("KP_ERR_MODEL_MISMATCH" in e for e in err), err
    assert any("KP_ERR_FORMAT" in e for e in err), err
    assert any("lonely.json" in e for e in err), err
    assert any("badside.json is not a conversation" in e for e in err), err
    assert any("/load needs a file name" in e for e in err), err
    assert any("unknown command /nonsense" in e for e in err), err
    # Nothing of that changed the conversation.
    conv = read_sidecar(after)
    assert [m["role"] for m in conv] == ["user", "assistant"] and conv[0] == user(Q1), conv


def test_reset_system_and_continuation_lines():
    side = os.path.join(TMP, "reset")
    script = (f"{Q1}\n/system You are a pirate. Answer like one.\n/reset\n"
              f"Tell me about\\\nthe sea.\n/save {side}\n")
    r = subprocess.run(ARGS, input=script, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "[conversation cleared]" in r.stderr and "[system message set]" in r.stderr
    conv = read_sidecar(side)
    sys_msg = {"role": "system", "content": "You are a pirate. Answer like one."}
    assert conv[:2] == [sys_msg, user("Tell me about\nthe sea.")], conv
    assert conv[2]["content"] == from_scratch(MODEL, conv[:2]).text  # after /reset nothing is reused
    # '//' sends a literal '/'; /system without text removes the system message.
    side2 = os.path.join(TMP, "slash")
    r = subprocess.run(ARGS, input=f"/system\n//etc/hosts is what?\n/save {side2}\n", capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and "[system message removed]" in r.stderr, r.stderr
    assert read_sidecar(side2)[0] == user("/etc/hosts is what?")


def test_full_context_drops_old_turns():
    side = os.path.join(TMP, "small")
    qs = [Q1, Q2, Q3, "Tell me a joke."]
    r = subprocess.run([CHAT, "-m", MODEL, *GREEDY, "-n", "16", "-c", "128"],
                       input="".join(q + "\n" for q in qs) + f"/save {side}\n", capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert "old messages dropped to fit the context]" in r.stderr, r.stderr
    conv = read_sidecar(side)
    assert conv[0]["role"] == "user" and conv[-2] == user(qs[-1]) and len(conv) < 2 * len(qs), conv
    assert_same_greedy(conv[-1]["content"], from_scratch(MODEL, conv[:-1], 16), "turn after dropping")
    # An unbounded answer stops at the end of the context, and is kept.
    r = subprocess.run([CHAT, "-m", MODEL, *GREEDY, "-n", "0", "-c", "64", "-p", "Tell me a long story."],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "[the context is full: the answer was cut]" in r.stderr, r.stderr
    assert r.stdout.strip()


def test_sidecar_round_trip():
    # Quotes, backslashes, tabs, control characters and non-ASCII text survive /save and /load.
    qwen = shared("models/gguf/kp-qwen2-tiny.gguf")
    tricky = 'He said "hi"\tand \\ back \x01 café 🙂 <|im_end|>'
    a, b = os.path.join(TMP, "trip_a"), os.path.join(TMP, "trip_b")
    r = subprocess.run([CHAT, "-m", qwen, *GREEDY, "-n", "3", "--system", "sys \"x\""],
                       input=f"{tricky}\n/save {a}\n".encode(), capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr
    conv = read_sidecar(a)
    assert conv[0] == {"role": "system", "content": 'sys "x"'} and conv[1] == user(tricky), conv
    r = subprocess.run([CHAT, "-m", qwen, *GREEDY, "-n", "3"], input=f"/load {a}\n/save {b}\n".encode(),
                       capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert read_sidecar(b) == conv
    with open(a + ".json", "rb") as fa, open(b + ".json", "rb") as fb:
        assert fa.read() == fb.read()


def test_verbose_prints_speed_after_each_answer():
    r = subprocess.run([*ARGS, "--verbose"], input=f"{Q3}\n{Q1}\n", capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("prompt: ")]
    assert len(lines) == 2 and all("tokens/s" in ln for ln in lines), r.stderr
    assert "(0 reused)" in lines[0] and "(0 reused)" not in lines[1]


def test_plain_stdin_without_commands():
    r = chat(MODEL, *GREEDY, "-n", str(N_NEW), input=f"{Q1}\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == from_scratch(MODEL, [user(Q1)]).text + "\n"


if __name__ == "__main__":
    if not hasattr(os, "openpty"):
        skip("no pseudo-terminals here")
    try:
        main([test_two_turns_reuse_the_cache, test_ctrl_c_stops_an_answer_and_the_next_turn_works,
              test_ctrl_d_at_the_prompt_exits, test_save_then_load_in_a_new_process_continues_identically,
              test_load_rejects_foreign_and_broken_states, test_reset_system_and_continuation_lines,
              test_full_context_drops_old_turns, test_sidecar_round_trip,
              test_verbose_prints_speed_after_each_answer, test_plain_stdin_without_commands])
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
