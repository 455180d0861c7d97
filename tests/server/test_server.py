"""kuiper-server against the official `openai` Python client, on 127.0.0.1 with free ports.

Expected texts come from kuiper-generate (kp_generate on one session, greedy), never from the
server itself, so the batched scheduler is checked against the plain single-session path.
Exit status 77 (meson's skip) when the openai package or the test data is missing.

Environment (meson sets it): KUIPER_SERVER, KUIPER_GENERATE, KP_TEST_DATA.
"""
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import traceback

SKIP = 77
SHARED = os.environ.get("KP_TEST_DATA", "../shared")
SERVER = os.environ.get("KUIPER_SERVER", "")
GENERATE = os.environ.get("KUIPER_GENERATE", "")


def skip(why):
    print(f"*** SKIP: {why} ***", file=sys.stderr)
    sys.exit(SKIP)


try:
    import openai
except ImportError:
    skip("the 'openai' Python package is not installed (pip install openai)")

STORIES = os.path.join(SHARED, "models/stories260K/stories260K.bin")
TOK512 = os.path.join(SHARED, "models/stories260K/tok512.bin")
QWEN = os.path.join(SHARED, "models/gguf/kp-qwen2-tiny.gguf")
for p in (STORIES, TOK512, QWEN):
    if not os.path.exists(p):
        skip(f"test data '{p}' not found (set KP_TEST_DATA to the shared/ folder)")
if not os.access(SERVER, os.X_OK) or not os.access(GENERATE, os.X_OK):
    skip("KUIPER_SERVER / KUIPER_GENERATE not set to built programs")

PROMPTS = ["Once upon a time", "The cat sat on", "Lily went to the park and", "One day a little",
           "Tom had a big red", "The sun was", "Sara and Ben", "A bird"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, *args):
        self.port = free_port()
        self.proc = subprocess.Popen([SERVER, "--host", "127.0.0.1", "--port", str(self.port), "--threads", "1",
                                      *args], stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 30
        while True:
            try:
                if self.get("/health")[0] == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"kuiper-server did not start: {self.proc.stderr.read()}")
            time.sleep(0.05)

    def client(self, key="unused"):
        return openai.OpenAI(base_url=f"http://127.0.0.1:{self.port}/v1", api_key=key, max_retries=0, timeout=60)

    def request(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def get(self, path):
        return self.request("GET", path)

    def health(self):
        return json.loads(self.get("/health")[1])

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        assert self.proc.returncode == 0, f"server exited with {self.proc.returncode}: {self.proc.stderr.read()}"


_expected = {}


def expected(prompt, n):
    """Greedy continuation of `prompt` by kuiper-generate (its stdout is prompt + text + newline),
    with the server's default F16 KV cache."""
    key = (prompt, n)
    if key not in _expected:
        out = subprocess.run([GENERATE, "-m", STORIES, "-z", TOK512, "-p", prompt, "-n", str(n), "-t", "0",
                              "--kv-type", "f16"],
                             capture_output=True, check=True).stdout.decode()
        assert out.startswith(prompt) and out.endswith("\n"), out
        _expected[key] = out[len(prompt):-1]
    return _expected[key]


# ---------------------------------------------------------------- completions (stories260K)

def t_models_and_health(s):
    models = s.client().models.list()
    assert [m.id for m in models.data] == ["stories260K.bin"]
    h = s.health()
    assert h["status"] == "ok" and h["slots_idle"] == 4 and h["slots_busy"] == 0, h


def t_completion(s):
    r = s.client().completions.create(model="x", prompt=PROMPTS[0], max_tokens=40, temperature=0)
    assert r.choices[0].text == expected(PROMPTS[0], 40), r.choices[0].text
    assert r.choices[0].finish_reason == "length"
    # "Once upon a time" is BOS + 4 pieces in tok512
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (5, 40, 45), r.usage


def t_completion_stream(s):
    chunks = list(s.client().completions.create(model="x", prompt=PROMPTS[1], max_tokens=30, temperature=0,
                                                stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == expected(PROMPTS[1], 30), text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 30, chunks[-1]


def t_stop_strings(s):
    full = expected(PROMPTS[0], 40)
    stop = "Lily"
    assert stop in full, full
    want = full[:full.index(stop)]
    c = s.client()
    r = c.completions.create(model="x", prompt=PROMPTS[0], max_tokens=40, temperature=0, stop=[stop, "zzz"])
    assert r.choices[0].text == want and r.choices[0].finish_reason == "stop", r.choices[0]
    assert r.usage.completion_tokens < 40
    text = "".join(ch.choices[0].text for ch in c.completions.create(
        model="x", prompt=PROMPTS[0], max_tokens=40, temperature=0, stop=stop, stream=True))
    assert text == want, text


def t_seeded(s):
    c = s.client()
    a, b, d = (c.completions.create(model="x", prompt=PROMPTS[2], max_tokens=30, temperature=1.0, seed=k).choices[0].text
               for k in (7, 7, 8))
    assert a == b, (a, b)
    assert a != d, "different seeds gave the same sample"


def t_disconnect(s):
    before = s.health()["cancelled"]
    c = s.client()
    stream = c.completions.create(model="x", prompt=PROMPTS[3], max_tokens=100000, temperature=0.8, stream=True,
                                extra_body={"ignore_eos": True})
    it = iter(stream)
    next(it)
    next(it)
    stream.response.close()  # hang up mid-stream
    deadline = time.time() + 10
    while time.time() < deadline:
        h = s.health()
        if h["cancelled"] > before and h["slots_busy"] == 0:
            break
        time.sleep(0.05)
    assert h["cancelled"] == before + 1 and h["slots_busy"] == 0, h
    # the freed slot serves the next request
    r = c.completions.create(model="x", prompt=PROMPTS[0], max_tokens=10, temperature=0)
    assert r.choices[0].text == expected(PROMPTS[0], 10)


BAD = [
    # (path, body bytes, status)
    ("/v1/completions", b"{", 400),
    ("/v1/completions", b"", 400),
    ("/v1/completions", b"not json", 400),
    ("/v1/completions", b"[1, 2]", 400),
    ("/v1/completions", b"null", 400),
    ("/v1/completions", b"{}", 400),
    ("/v1/completions", b'{"prompt": 5}', 400),
    ("/v1/completions", b'{"prompt": ["a", "b"]}', 400),
    ("/v1/completions", b'{"prompt": null}', 400),
    ("/v1/completions", b'{"prompt": ""}', 200),  # BOS alone is a valid prompt
    ("/v1/completions", b'{"prompt": "a", "max_tokens": "5"}', 400),
    ("/v1/completions", b'{"prompt": "a", "max_tokens": 0}', 400),
    ("/v1/completions", b'{"prompt": "a", "max_tokens": -3}', 400),
    ("/v1/completions", b'{"prompt": "a", "max_tokens": 1e30}', 400),
    ("/v1/completions", b'{"prompt": "a", "max_tokens": 99999999999999999999999}', 400),
    ("/v1/completions", b'{"prompt": "a", "max_tokens": 2.5}', 400),
    ("/v1/completions", b'{"prompt": "a", "temperature": 5}', 400),
    ("/v1/completions", b'{"prompt": "a", "temperature": -1}', 400),
    ("/v1/completions", b'{"prompt": "a", "temperature": "hot"}', 400),
    ("/v1/completions", b'{"prompt": "a", "temperature": 1e400}', 400),
    ("/v1/completions", b'{"prompt": "a", "top_p": 1.5}', 400),
    ("/v1/completions", b'{"prompt": "a", "seed": -1}', 400),
    ("/v1/completions", b'{"prompt": "a", "seed": 1e20}', 400),
    ("/v1/completions", b'{"prompt": "a", "seed": 18446744073709551615}', 400),
    ("/v1/completions", b'{"prompt": "a", "stop": 5}', 400),
    ("/v1/completions", b'{"prompt": "a", "stop": [1]}', 400),
    ("/v1/completions", b'{"prompt": "a", "stop": ["a","b","c","d","e"]}', 400),
    ("/v1/completions", b'{"prompt": "a", "stream": "yes"}', 400),
    ("/v1/completions", b'{"prompt": "a", "n": 3}', 400),
    ("/v1/completions", b'{"prompt": "a", "model": 7}', 400),
    ("/v1/completions", b'{"prompt": "a", "ignore_eos": 1}', 400),
    ("/v1/completions", b'{"prompt": "\xff\xfe"}', 400),           # invalid UTF-8
    ("/v1/completions", b'{"prompt": "a\xc3"}', 400),              # truncated UTF-8
    ("/v1/completions", b'{"prompt": "\xed\xa0\x80"}', 400),       # a UTF-16 surrogate
    ("/v1/completions", b'{"prompt": "' + b"a" * 20000 + b'"}', 400),  # longer than the context
    ("/v1/completions", b"x" * (10 << 20), 413),                   # 10 MB body
    ("/v1/completions", b'{"prompt": "a"' + b" " * (2 << 20) + b"}", 413),
    ("/v1/completions", b'{"prompt": "a", "prompt": 1}', 400),     # the last duplicate wins
    ("/v1/completions", b'{"prompt": "a"} trailing', 400),
    ("/v1/completions", b'{"prompt": "a\\u0000b"}', 200),          # an escaped NUL is a byte
    ("/v1/chat/completions", b'{"messages": []}', 400),
    ("/v1/chat/completions", b'{"messages": "hi"}', 400),
    ("/v1/chat/completions", b'{"messages": [{"role": "user", "content": "hi"}]}', 400),  # no template
    ("/v1/chat/completions", b'{"messages": [{"content": "hi"}]}', 400),
    ("/v1/chat/completions", b'{"messages": [{"role": "robot", "content": "hi"}]}', 400),
    ("/v1/chat/completions", b'{"messages": [{"role": "user", "content": 5}]}', 400),
    ("/v1/chat/completions", b'{"messages": [{"role": "user"}]}', 400),
    ("/v1/nothing", b"{}", 404),
    ("/v2/completions", b"{}", 404),
    ("/", b"", 404),
    ("/v1/models", b"{}", 405),
]


def check_error(status, body, want):
    if want == 200:
        assert status == 200, (status, body[:200])
        return
    assert status == want, (want, status, body[:200])
    err = json.loads(body)["error"]
    assert isinstance(err["message"], str) and err["message"] and "type" in err, err


def t_malformed_during_stream(s):
    want = expected(PROMPTS[4], 200)
    got = {}

    def good():
        c = s.client()
        got["text"] = "".join(ch.choices[0].text for ch in c.completions.create(
            model="x", prompt=PROMPTS[4], max_tokens=200, temperature=0, stream=True))

    t = threading.Thread(target=good)
    t.start()
    assert len(BAD) >= 50, len(BAD)
    for path, body, status in BAD:
        st, resp = s.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        check_error(st, resp, status)
    st, resp = s.request("DELETE", "/v1/completions")
    check_error(st, resp, 405)
    t.join(60)
    assert got.get("text") == want, got
    assert s.health()["status"] == "ok"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def t_load(s):
    """16 clients x 10 requests, twice: all checked, and the second round leaves RSS where the
    first did (no growth per request)."""
    load_round(s)
    first = rss_kib(s.proc.pid)
    load_round(s)
    second = rss_kib(s.proc.pid)
    print(f"  server RSS after round 1: {first} KiB, after round 2: {second} KiB")
    ldd = subprocess.run(["ldd", SERVER], capture_output=True, text=True).stdout
    if "libasan" in ldd:  # ASan holds freed memory in quarantine: RSS says nothing there
        print("  (RSS not compared: the server is built with AddressSanitizer)")
        return
    assert second - first < 4096, (first, second)


PER_CLIENT = 10  # the load: 16 clients x 10 requests


def load_round(s):
    errors = []

    def client(k):
        c = s.client()
        for r in range(PER_CLIENT):
            p, n = PROMPTS[(k + r) % 8], 10 + 7 * ((k * 3 + r) % 5)
            try:
                if (k + r) % 2:
                    text = "".join(ch.choices[0].text for ch in c.completions.create(
                        model="x", prompt=p, max_tokens=n, temperature=0, stream=True))
                else:
                    text = c.completions.create(model="x", prompt=p, max_tokens=n, temperature=0).choices[0].text
                if text != expected(p, n):
                    errors.append((k, r, p, n, text, expected(p, n)))
            except Exception as e:  # noqa: BLE001 - every failure is collected and reported
                errors.append((k, r, repr(e)))

    for k in range(16):  # fill the cache of expected texts before the clock starts
        for r in range(PER_CLIENT):
            expected(PROMPTS[(k + r) % 8], 10 + 7 * ((k * 3 + r) % 5))
    threads = [threading.Thread(target=client, args=(k,)) for k in range(16)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    print(f"  load: {16 * PER_CLIENT} requests from 16 clients in {time.time() - t0:.2f}s")
    assert not errors, errors[:3]
    h = s.health()
    assert h["slots_busy"] == 0 and h["queued"] == 0, h


# ---------------------------------------------------------------- other servers

def t_chat_qwen():
    s = Server("-m", QWEN, "-np", "2", "-c", "256", "--api-key", "sesame")
    try:
        c = s.client("sesame")
        msgs = [{"role": "system", "content": "You are brief."}, {"role": "user", "content": "Say hello."}]
        r = c.chat.completions.create(model="x", messages=msgs, max_tokens=24, temperature=0)
        text = r.choices[0].message.content
        assert r.choices[0].message.role == "assistant" and r.choices[0].finish_reason in ("stop", "length")
        assert r.usage.prompt_tokens > 10 and r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
        chunks = list(c.chat.completions.create(model="x", messages=msgs, max_tokens=24, temperature=0, stream=True))
        assert chunks[0].choices[0].delta.role == "assistant"
        assert "".join(ch.choices[0].delta.content or "" for ch in chunks) == text
        assert chunks[-1].choices[0].finish_reason == r.choices[0].finish_reason
        # the API key
        for key in ("wrong", ""):
            try:
                s.client(key or "x" * 0 or "nokey").chat.completions.create(model="x", messages=msgs, max_tokens=2)
                raise AssertionError("a wrong key was accepted")
            except openai.AuthenticationError as e:
                assert e.status_code == 401
        st, body = s.request("GET", "/v1/models")
        check_error(st, body, 401)
        assert s.get("/health")[0] == 200  # health needs no key
    finally:
        s.stop()


def t_queue_full():
    s = Server("-m", STORIES, "-z", TOK512, "-np", "1", "--queue", "0")
    try:
        c = s.client()
        stream = c.completions.create(model="x", prompt=PROMPTS[0], max_tokens=100000, temperature=0.8, stream=True,
                                extra_body={"ignore_eos": True})
        it = iter(stream)
        next(it)  # the only slot is now busy
        try:
            c.completions.create(model="x", prompt=PROMPTS[1], max_tokens=5)
            raise AssertionError("a request beyond the queue was accepted")
        except openai.RateLimitError as e:
            assert e.status_code == 429
        stream.response.close()
    finally:
        s.stop()


def t_load_balanced():
    """Two servers behind HAProxy (Debian's): 16 clients x 10 requests through it, all checked,
    and both servers took a share."""
    import shutil
    haproxy = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
    if not haproxy:
        print("*** SKIP: t_load_balanced: haproxy is not installed (apt-get install haproxy) ***")
        return
    servers = [Server("-m", STORIES, "-z", TOK512, "-np", "2") for _ in range(2)]
    port = free_port()
    import tempfile
    cfg = tempfile.NamedTemporaryFile("w", suffix=".cfg", delete=False)
    cfg.write(f"""defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend api
  bind 127.0.0.1:{port}
  default_backend kuiper
backend kuiper
  balance roundrobin
  server a 127.0.0.1:{servers[0].port}
  server b 127.0.0.1:{servers[1].port}
""")
    cfg.close()
    lb = subprocess.Popen([haproxy, "-db", "-f", cfg.name], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if lb.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"haproxy did not start: {lb.stderr.read()}")
                time.sleep(0.05)
        errors = []

        def client(k):
            c = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0, timeout=60)
            for r in range(PER_CLIENT):
                p, n = PROMPTS[(k + r) % 8], 12 + k % 5
                try:
                    if r % 2:
                        text = "".join(ch.choices[0].text for ch in c.completions.create(
                            model="x", prompt=p, max_tokens=n, temperature=0, stream=True))
                    else:
                        text = c.completions.create(model="x", prompt=p, max_tokens=n, temperature=0).choices[0].text
                    if text != expected(p, n):
                        errors.append((k, r, text))
                except Exception as e:  # noqa: BLE001
                    errors.append((k, r, repr(e)))

        for k in range(16):
            for r in range(PER_CLIENT):
                expected(PROMPTS[(k + r) % 8], 12 + k % 5)
        threads = [threading.Thread(target=client, args=(k,)) for k in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors[:3]
        served = [sv.health()["served"] for sv in servers]
        assert sum(served) == 16 * PER_CLIENT and min(served) > 0, served
    finally:
        lb.terminate()
        lb.wait()
        os.unlink(cfg.name)
        for sv in servers:
            sv.stop()


def main():
    failed = 0
    s = Server("-m", STORIES, "-z", TOK512, "-np", "4")
    try:
        tests = [t_models_and_health, t_completion, t_completion_stream, t_stop_strings, t_seeded, t_disconnect,
                 t_malformed_during_stream, t_load]
        for t in tests:
            try:
                t(s)
                print(f"ok   {t.__name__}")
            except Exception:  # noqa: BLE001
                failed += 1
                print(f"FAIL {t.__name__}")
                traceback.print_exc()
    finally:
        s.stop()
    for t in (t_chat_qwen, t_queue_full, t_load_balanced):
        try:
            t()
            print(f"ok   {t.__name__}")
        except Exception:  # noqa: BLE001
            failed += 1
            print(f"FAIL {t.__name__}")
            traceback.print_exc()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
