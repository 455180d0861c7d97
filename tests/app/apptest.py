"""Shared helpers of the kuiper-chat tests: locating the programs and the model, an independent
prompt renderer (Jinja2 over the chat template stored in the GGUF file), the plain-library
reference answer (chat-reference), a pseudo-terminal driver, and a tiny test runner.

Environment (meson sets it): KUIPER_CHAT, KUIPER_CHAT_REFERENCE (programs), KP_SOURCE_ROOT,
KP_TEST_DATA (shared data), optionally KP_SMOLLM2 (a SmolLM2 GGUF to use instead of fetching one).
"""
import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
import traceback

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("KP_SOURCE_ROOT") or os.path.dirname(os.path.dirname(HERE))
SHARED = os.environ.get("KP_TEST_DATA") or os.path.join(ROOT, "..", "shared")
CHAT = os.environ.get("KUIPER_CHAT", "")
REFERENCE = os.environ.get("KUIPER_CHAT_REFERENCE", "")
# Greedy answers of a bounded length: what every comparison uses.
N_NEW = 24
GREEDY = ["-t", "0"]


def skip(why):
    print(f"*** SKIP: {why} ***", file=sys.stderr)
    sys.exit(SKIP)


def shared(rel):
    path = os.path.join(SHARED, rel)
    if not os.path.exists(path):
        skip(f"test data '{path}' not found (set KP_TEST_DATA to the shared/ folder)")
    return path


def smollm2():
    """Path of SmolLM2-135M-Instruct (fetched and cached by scripts/get-models.sh)."""
    if os.environ.get("KP_SMOLLM2"):
        return os.environ["KP_SMOLLM2"]
    r = subprocess.run([os.path.join(ROOT, "scripts", "get-models.sh"), "smollm2"], capture_output=True, text=True,
                       timeout=900)
    if r.returncode == 2:
        skip("SmolLM2 could not be obtained: the package registry is unreachable (scripts/get-models.sh exit 2)")
    if r.returncode != 0 or not r.stdout.strip():
        raise SystemExit(f"scripts/get-models.sh smollm2 failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout.strip().splitlines()[-1]


# ---- the model's own chat template, rendered with Jinja2 as Hugging Face does

def gguf_string(path, key):
    """One string value of a GGUF file's metadata (None if absent); arrays are skipped over."""
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    with open(path, "rb") as f:
        magic, _version, _n_tensors, n_kv = struct.unpack("<IIQQ", f.read(24))
        assert magic == 0x46554747, f"{path} is not GGUF"

        def read_str():
            (n,) = struct.unpack("<Q", f.read(8))
            return f.read(n)

        def skip_value(t):
            if t == 8:
                read_str()
            elif t == 9:
                et, n = struct.unpack("<IQ", f.read(12))
                if et == 8:
                    for _ in range(n):
                        read_str()
                else:
                    f.seek(sizes[et] * n, 1)
            else:
                f.seek(sizes[t], 1)

        for _ in range(n_kv):
            k = read_str().decode()
            (t,) = struct.unpack("<I", f.read(4))
            if k == key and t == 8:
                return read_str().decode("utf-8")
            skip_value(t)
    return None


def render(template, messages, add_generation_prompt=True):
    """Hugging Face apply_chat_template's rendering (the environment transformers builds)."""
    try:
        import jinja2
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError:
        skip("python3 jinja2 is not installed (the independent prompt renderer)")

    def raise_exception(msg):
        raise jinja2.exceptions.TemplateError(msg)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(messages=messages, add_generation_prompt=add_generation_prompt,
                                            bos_token="", eos_token="")


# ---- running the programs

def chat(model, *args, input=None, timeout=300):
    """kuiper-chat through pipes; returns the CompletedProcess (text)."""
    return subprocess.run([CHAT, "-m", model, *args], input=input, capture_output=True, text=True, timeout=timeout)


class Answer:
    """A greedy answer of the plain library: text, prompt ids, and per generated token its id,
    its bytes and the top-1/top-2 logit gap of the step that chose it."""

    def __init__(self, prompt_ids, ids, pieces, gaps):
        self.prompt_ids, self.ids, self.pieces, self.gaps = prompt_ids, ids, pieces, gaps
        self.text = b"".join(pieces).decode("utf-8")


def reference(model, prompt, n_new=N_NEW):
    """The plain library's greedy continuation of `prompt` in a fresh session
    (tests/app/chat-reference.c)."""
    r = subprocess.run([REFERENCE, "-m", model, "-n", str(n_new)], input=prompt.encode("utf-8"),
                       capture_output=True, timeout=300)
    assert r.returncode == 0, f"chat-reference failed: {r.stderr.decode(errors='replace')}"
    prompt_ids, ids, pieces, gaps = [], [], [], []
    for line in r.stdout.decode().splitlines():
        f = line.split(" ")
        if f[0] == "prompt_ids":
            prompt_ids = [int(x) for x in f[1:]]
        elif f[0] == "step":
            ids.append(int(f[1]))
            gaps.append(float(f[2]))
            pieces.append(bytes.fromhex(f[3]) if len(f) > 3 else b"")
    return Answer(prompt_ids, ids, pieces, gaps)


def from_scratch(model, messages, n_new=N_NEW):
    """The greedy answer to `messages` evaluated whole in a fresh session."""
    return reference(model, render(gguf_string(model, "tokenizer.chat_template"), messages), n_new)


# Evaluating tokens one at a time (as an answer is generated) and in one batch (as a from-scratch
# prompt is) rounds differently; with quantized weights and activations the logits of the two can
# differ by some tenths. A KV-reuse answer therefore equals the from-scratch one token for token
# until, at most, a step where the reference's top two candidates are this close.
NEAR_TIE = 0.5


def assert_same_greedy(got, ref, what):
    """`got` (text) equals the reference answer, or first departs from it at a near tie."""
    if got == ref.text:
        return
    data, pos = got.encode("utf-8"), 0
    for i, (piece, gap) in enumerate(zip(ref.pieces, ref.gaps)):
        if data[pos:pos + len(piece)] != piece:
            assert gap < NEAR_TIE, (f"{what}: differs from the from-scratch answer at step {i}, where its top-1/top-2 "
                                    f"gap is {gap:.3f} (not a near tie)\n got: {got!r}\nwant: {ref.text!r}")
            print(f"  note: {what}: departs from the from-scratch answer at step {i}/{len(ref.ids)}, a near tie "
                  f"(gap {gap:.3f})", flush=True)
            return
        pos += len(piece)
    raise AssertionError(f"{what}: goes on after the from-scratch answer ended\n got: {got!r}\nwant: {ref.text!r}")


class Pty:
    """kuiper-chat on a pseudo-terminal of its own (it is the foreground process, so "\\x03"
    typed there becomes SIGINT as from a keyboard)."""

    def __init__(self, args, columns=1000):
        pid, fd = pty.fork()
        if pid == 0:
            try:
                # A known terminal, wide enough that line editing never wraps what the tests type.
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
                os.environ["TERM"] = "xterm"
                os.execv(args[0], args)
            finally:
                os._exit(127)
        self.pid, self.fd, self.buf, self.status = pid, fd, b"", None

    def _fill(self, deadline, what):
        left = deadline - time.monotonic()
        r = select.select([self.fd], [], [], max(0.0, left))[0] if left > 0 else []
        if not r:
            raise AssertionError(f"timed out waiting for {what}; last output: {self.buf[-400:]!r}")
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the program has gone
            data = b""
        if not data:
            raise AssertionError(f"end of output waiting for {what}; last output: {self.buf[-400:]!r}")
        self.buf += data

    def expect(self, marker, timeout=120):
        """Output up to and including `marker` (bytes)."""
        deadline = time.monotonic() + timeout
        while marker not in self.buf:
            self._fill(deadline, repr(marker))
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def wait_bytes(self, n, timeout=120):
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            self._fill(deadline, f"{n} bytes")

    def send(self, data, timeout=120):
        """Writes all of `data`, reading output meanwhile: a terminal takes only so much input
        before its reader catches up, and the reader may be waiting for its echo to be read."""
        deadline = time.monotonic() + timeout
        while data:
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out writing input; last output: {self.buf[-400:]!r}")
            r, w, _ = select.select([self.fd], [self.fd], [], 1.0)
            if r:
                try:
                    self.buf += os.read(self.fd, 65536)
                except OSError:
                    pass
            if w:
                data = data[os.write(self.fd, data[:4096]):]

    def ask(self, text, timeout=120):
        """Types one line and returns the answer shown before the next prompt."""
        self.send(text.encode("utf-8") + b"\n")
        out = self.expect(b"\r\n> ", timeout)
        echo = text.encode("utf-8") + b"\r\n"
        assert out.startswith(echo), f"no echo of {text!r}: {out[:200]!r}"
        return out[len(echo):-len(b"\r\n> ")].replace(b"\r\n", b"\n").decode("utf-8")

    def command(self, text, timeout=120):
        """Types a /command and returns what it printed before the next prompt."""
        return self.ask(text, timeout)

    def wait(self, timeout=60):
        """The exit status (negative: the signal that ended it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                self.status = os.waitstatus_to_exitcode(st)
                return self.status
            try:  # keep draining so the program never blocks on a full terminal
                if select.select([self.fd], [], [], 0.05)[0]:
                    self.buf += os.read(self.fd, 65536)
            except OSError:
                pass
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self.fd)
        raise AssertionError(f"kuiper-chat did not exit; last output: {self.buf[-400:]!r}")

    def kill(self):
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                os.close(self.fd)
            except OSError:
                pass
            self.status = -9


def read_sidecar(path):
    with open(path + ".json", encoding="utf-8") as f:
        doc = json.load(f)
    return [{"role": m["role"], "content": m["content"]} for m in doc["messages"]]


def tmpdir():
    return tempfile.mkdtemp(prefix="kuiper-chat-test-")


def main(tests):
    """Runs each (name, function); exit 0, 1 on a failure, 77 when a function skipped them all."""
    if not CHAT or not os.path.exists(CHAT):
        raise SystemExit("KUIPER_CHAT does not name the kuiper-chat program")
    failed = 0
    for fn in tests:
        t0 = time.monotonic()
        try:
            fn()
            print(f"ok   {fn.__name__} ({time.monotonic() - t0:.1f} s)", flush=True)
        except SystemExit as e:
            if e.code == SKIP:
                raise
            failed += 1
            print(f"FAIL {fn.__name__}: exited {e.code}", flush=True)
        except Exception:  # noqa: BLE001 - report every failure, then go on
            failed += 1
            print(f"FAIL {fn.__name__}", flush=True)
            traceback.print_exc()
    print(f"{len(tests) - failed}/{len(tests)} passed", flush=True)
    sys.exit(1 if failed else 0)
