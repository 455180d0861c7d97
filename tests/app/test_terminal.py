#!/usr/bin/env python3
"""kuiper-chat as a user at a terminal sees it, on a pseudo-terminal: line editing keys (Left,
Up for history, Ctrl-A, Ctrl-R) edit the line instead of reaching the model, a multi-line paste
is one message, a 10,000-character line pasted while an answer is still streaming is kept whole,
and a 2,000-token prompt shows its progress while /stats reports prompt and answer speed. What
the model received is read back from the /save sidecar. Uses the Qwen2 fixture (random weights,
real vocabulary and ChatML template) from the shared data, so the answers are noise but quick."""
import os
import re
import shutil
import subprocess

from apptest import CHAT, Pty, main, read_sidecar, shared, skip, tmpdir

QWEN = shared("models/gguf/kp-qwen2-tiny.gguf")
ARGS = [CHAT, "-m", QWEN, "-t", "0", "-n", "2"]
TMP = tmpdir()
PROMPT = b"\r\n> "


def libedit():
    r = subprocess.run([CHAT, "--help"], capture_output=True, text=True, timeout=60)
    return "Line editing and history: libedit" in r.stdout


HAVE_LIBEDIT = libedit()


def started(args=ARGS):
    p = Pty(args)
    p.expect(PROMPT, 120)
    return p


def saved_users(p, name):
    path = os.path.join(TMP, name)
    p.send(f"/save {path}\r".encode())
    out = p.expect(PROMPT, 60)
    assert b"[saved" in out, out
    p.send(b"\x04")
    assert p.wait() == 0
    return [m["content"] for m in read_sidecar(path) if m["role"] == "user"]


def test_editing_keys_do_not_reach_the_model():
    p = started()
    try:
        p.send(b"helo\x1b[D\x1b[Dl\r")  # Left twice, insert the missing 'l'
        p.expect(PROMPT)
        p.send(b"\x1b[A\r")  # Up: the previous line again
        p.expect(PROMPT)
        p.send(b"ld\x01wor\r")  # Ctrl-A: to the start of the line
        p.expect(PROMPT)
        p.send(b"\x12hel\r")  # Ctrl-R: search the history backwards
        p.expect(PROMPT)
        users = saved_users(p, "keys")
    finally:
        p.kill()
    assert users == ["hello", "hello", "world", "hello"], users


def test_multi_line_paste_is_one_message():
    p = started()
    try:
        # Terminals wrap a paste in bracketed-paste markers and send its line breaks as CR.
        p.send(b"\x1b[200~first line\rsecond line\rthird\x1b[201~\r")
        p.expect(PROMPT)
        users = saved_users(p, "paste")
    finally:
        p.kill()
    assert users == ["first line\nsecond line\nthird"], users


def test_long_line_pasted_during_an_answer_is_kept_whole():
    # 10,000 characters, more than twice the 4095 a terminal's canonical mode keeps; sent while
    # the previous answer is still being generated.
    parts = [f"<{i:04d}>" + "-" * 994 for i in range(10)]
    line = "".join(parts)
    assert len(line) == 10000
    p = started([*ARGS[:-1], "24"])
    try:
        p.send(b"hi\r" + line.encode() + b"\r")
        p.expect(PROMPT)
        out = p.expect(PROMPT, 120)
        if not HAVE_LIBEDIT:
            assert b"terminal's limit of 4095 bytes" in out, out[-400:]
        users = saved_users(p, "long")
    finally:
        p.kill()
    if HAVE_LIBEDIT:
        assert users == ["hi", line], [len(u) for u in users]
    else:  # nothing cut was sent
        assert users == ["hi"], [len(u) for u in users]


def test_long_prompt_shows_progress_and_stats_speed():
    text = ("the quick brown fox jumps over the lazy dog " * 230)[:9900]
    if not HAVE_LIBEDIT:  # a canonical terminal takes it in lines ending with '\'
        text = text[:3300] + "\n" + text[3300:6600] + "\n" + text[6600:]
    p = started([*ARGS[:-1], "1"])
    try:
        p.send(text.replace("\n", "\\\r").encode() + b"\r")
        out = p.expect(PROMPT, 300).decode("utf-8", "replace")
        p.send(b"/stats\r")
        stats = p.expect(PROMPT, 60).decode("utf-8", "replace")
        users = saved_users(p, "progress")
    finally:
        p.kill()
    assert users == [text], [len(u) for u in users]
    steps = [(int(a), int(b)) for a, b in re.findall(r"\[reading the prompt: (\d+)/(\d+) tokens\]", out)]
    assert steps, out[-300:]
    total = steps[0][1]
    assert total >= 2000, total
    chunk = 256  # the library's prompt batch (KP_BATCH), which kuiper-chat feeds in
    assert [d for d, _ in steps] == list(range(chunk, (total - 1) // chunk * chunk + 1, chunk)), steps
    m = re.search(r"prompt: (\d+) tokens \(0 reused\) in [\d.]+ s, ([\d.]+) tokens/s \| answer: (\d+) tokens in "
                  r"[\d.]+ s, ([\d.]+) tokens/s", stats)
    assert m, stats
    assert int(m.group(1)) == total and float(m.group(2)) > 0 and int(m.group(3)) == 1, stats


if __name__ == "__main__":
    if not hasattr(os, "openpty"):
        skip("no pseudo-terminals here")
    try:
        tests = [test_long_line_pasted_during_an_answer_is_kept_whole, test_long_prompt_shows_progress_and_stats_speed]
        if HAVE_LIBEDIT:
            tests = [test_editing_keys_do_not_reach_the_model, test_multi_line_paste_is_one_message, *tests]
        else:
            print("note: kuiper-chat was built without libedit: no editing keys or bracketed paste to test")
        main(tests)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
