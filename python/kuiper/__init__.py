"""Python bindings for libkuiper through ctypes (no compiled extension).

    import kuiper
    m = kuiper.Model("stories260K.bin", tokenizer="tok512.bin")
    for piece in m.session().generate("Once upon a time", max_new_tokens=50, temperature=0):
        print(piece, end="")

The library is found through $KUIPER_LIB (a path to the shared library), then
`pkg-config --variable=libdir kuiper`, then the standard search path (ctypes.util.find_library).
Failures raise KuiperError carrying the status name ("KP_ERR_IO") and libkuiper's message.
"""
import ctypes
import ctypes.util
import os
import queue
import subprocess
import sys
import threading

__all__ = ["KuiperError", "Model", "Session", "load_library"]

_c = ctypes
_size_t = _c.c_size_t


class KuiperError(Exception):
    """A libkuiper call failed: `status` (int), `name` ("KP_ERR_FORMAT") and `message`."""

    def __init__(self, status, name, message):
        super().__init__(f"{name}: {message}" if message else name)
        self.status, self.name, self.message = status, name, message


class _ModelParams(_c.Structure):
    _fields_ = [("struct_size", _size_t), ("allocator", _c.c_void_p), ("log", _c.c_void_p),
                ("log_user", _c.c_void_p), ("log_level", _c.c_int), ("tokenizer_path", _c.c_char_p),
                ("n_threads", _c.c_int), ("device", _c.c_int)]


class _SessionParams(_c.Structure):
    _fields_ = [("struct_size", _size_t), ("n_ctx", _c.c_int32), ("kv_type", _c.c_int)]


class _TokenEvent(_c.Structure):
    _fields_ = [("id", _c.c_int32), ("is_prompt", _c.c_int), ("piece", _c.POINTER(_c.c_char)),
                ("piece_len", _size_t), ("logits", _c.POINTER(_c.c_float)), ("n_vocab", _size_t)]


_TOKEN_CB = _c.CFUNCTYPE(_c.c_int, _c.c_void_p, _c.POINTER(_TokenEvent))


class _GenerateParams(_c.Structure):
    _fields_ = [("struct_size", _size_t), ("max_new_tokens", _c.c_int32), ("sampler", _c.c_void_p),
                ("on_token", _TOKEN_CB), ("user", _c.c_void_p), ("echo_prompt", _c.c_int)]


_TOKENIZE_ADD_SPECIAL, _TOKENIZE_PARSE_SPECIAL = 1, 2
_SAMPLER_TEMPERATURE, _SAMPLER_TOP_P, _SAMPLER_SEED = 0, 1, 2
_ERR_BUFFER_TOO_SMALL = 6


def _candidates():
    env = os.environ.get("KUIPER_LIB")
    if env:
        yield env
        return  # an explicit choice that fails should fail, not fall back silently
    try:
        libdir = subprocess.run(["pkg-config", "--variable=libdir", "kuiper"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
        if libdir:
            for name in ("libkuiper.so", "libkuiper.dylib", "kuiper.dll"):
                yield os.path.join(libdir, name)
    except (OSError, subprocess.SubprocessError):
        pass
    found = ctypes.util.find_library("kuiper")
    if found:
        yield found


def _declare(lib):
    p, i32, vp = _c.POINTER, _c.c_int32, _c.c_void_p
    sigs = {
        "kp_version": (_c.c_char_p, []),
        "kp_status_str": (_c.c_char_p, [_c.c_int]),
        "kp_last_error": (_c.c_char_p, []),
        "kp_model_params_init": (None, [p(_ModelParams)]),
        "kp_model_load": (_c.c_int, [_c.c_char_p, p(_ModelParams), p(vp)]),
        "kp_model_free": (None, [vp]),
        "kp_model_tokenizer_borrow": (vp, [vp]),
        "kp_tokenize": (_c.c_int, [vp, _c.c_char_p, _size_t, _c.c_uint32, p(i32), _size_t, p(_size_t)]),
        "kp_detokenize": (_c.c_int, [vp, p(i32), _size_t, _c.c_char_p, _size_t, p(_size_t)]),
        "kp_tokenizer_n_vocab": (i32, [vp]),
        "kp_sampler_new": (_c.c_int, [vp, p(vp)]),
        "kp_sampler_free": (None, [vp]),
        "kp_sampler_set": (_c.c_int, [vp, _c.c_int, _c.c_double]),
        "kp_session_params_init": (None, [p(_SessionParams)]),
        "kp_session_new": (_c.c_int, [vp, p(_SessionParams), p(vp)]),
        "kp_session_free": (None, [vp]),
        "kp_session_n_past": (i32, [vp]),
        "kp_session_n_ctx": (i32, [vp]),
        "kp_session_truncate": (_c.c_int, [vp, i32]),
        "kp_session_cancel": (None, [vp]),
        "kp_generate_params_init": (None, [p(_GenerateParams)]),
        "kp_generate": (_c.c_int, [vp, p(i32), _size_t, p(_GenerateParams), vp]),
    }
    for name, (res, args) in sigs.items():
        f = getattr(lib, name)
        f.restype, f.argtypes = res, args
    return lib


_lib = None


def load_library():
    """The loaded libkuiper (found on first use)."""
    global _lib
    if _lib is None:
        tried = []
        for path in _candidates():
            try:
                _lib = _declare(ctypes.CDLL(path))
                break
            except OSError as e:
                tried.append(f"{path}: {e}")
        if _lib is None:
            raise OSError("libkuiper not found (set KUIPER_LIB to the shared library's path, or install it "
                          "where pkg-config or the loader finds it)" + ("; tried " + "; ".join(tried) if tried else ""))
    return _lib


def _error(st):
    lib = load_library()
    name = (lib.kp_status_str(st) or b"").decode().split(":")[0]
    return KuiperError(st, name, (lib.kp_last_error() or b"").decode("utf-8", "replace"))


def _check(st):
    if st != 0:
        raise _error(st)


def _ids_array(ids):
    ids = list(ids)
    return (_c.c_int32 * max(1, len(ids)))(*ids), len(ids)


class Model:
    """A loaded model (immutable; usable from several threads). `tokenizer` is required for
    llama2.c checkpoints; `threads` 0 means one per CPU."""

    def __init__(self, path, tokenizer=None, threads=0):
        lib = load_library()
        self._lib, self._h = lib, None
        p = _ModelParams()
        lib.kp_model_params_init(_c.byref(p))
        if tokenizer is not None:
            p.tokenizer_path = os.fsencode(tokenizer)
        p.n_threads = int(threads)
        h = _c.c_void_p()
        _check(lib.kp_model_load(os.fsencode(path), _c.byref(p), _c.byref(h)))
        self._h = h
        self._tok = lib.kp_model_tokenizer_borrow(h)

    def close(self):
        if self._h:
            self._lib.kp_model_free(self._h)
            self._h = None

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def n_vocab(self):
        return self._lib.kp_tokenizer_n_vocab(self._tok)

    def tokenize(self, text, add_special=True, parse_special=True):
        """Token ids of `text` (str or bytes)."""
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        flags = (_TOKENIZE_ADD_SPECIAL if add_special else 0) | (_TOKENIZE_PARSE_SPECIAL if parse_special else 0)
        n = _size_t(0)
        cap = len(data) + 8
        while True:
            buf = (_c.c_int32 * cap)()
            st = self._lib.kp_tokenize(self._tok, data, len(data), flags, buf, cap, _c.byref(n))
            if st == _ERR_BUFFER_TOO_SMALL and n.value > cap:
                cap = n.value
                continue
            _check(st)
            return list(buf[:n.value])

    def detokenize(self, ids):
        """Text of a token sequence (invalid UTF-8 shown as U+FFFD)."""
        arr, n = _ids_array(ids)
        need = _size_t(0)
        cap = 16 * n + 16
        while True:
            buf = _c.create_string_buffer(cap)
            st = self._lib.kp_detokenize(self._tok, arr, n, buf, cap, _c.byref(need))
            if st == _ERR_BUFFER_TOO_SMALL and need.value > cap:
                cap = need.value
                continue
            _check(st)
            return buf.raw[:need.value].decode("utf-8", "replace")

    def session(self, n_ctx=0):
        """A new conversation state (KV cache) of `n_ctx` positions (0: the model's maximum)."""
        return Session(self, n_ctx)


class Session:
    """The KV cache of one token sequence; use from one thread at a time."""

    def __init__(self, model, n_ctx=0):
        lib = model._lib
        self._lib, self._model, self._h = lib, model, None
        p = _SessionParams()
        lib.kp_session_params_init(_c.byref(p))
        p.n_ctx = int(n_ctx)
        h = _c.c_void_p()
        _check(lib.kp_session_new(model._h, _c.byref(p), _c.byref(h)))
        self._h = h

    def close(self):
        if self._h:
            self._lib.kp_session_free(self._h)
            self._h = None

    def __del__(self):
        self.close()

    @property
    def n_past(self):
        return self._lib.kp_session_n_past(self._h)

    @property
    def n_ctx(self):
        return self._lib.kp_session_n_ctx(self._h)

    def reset(self):
        _check(self._lib.kp_session_truncate(self._h, 0))

    def _sampler(self, temperature, top_p, seed):
        lib = self._lib
        s = _c.c_void_p()
        _check(lib.kp_sampler_new(None, _c.byref(s)))
        try:
            for opt, v in ((_SAMPLER_TEMPERATURE, temperature), (_SAMPLER_TOP_P, top_p), (_SAMPLER_SEED, seed)):
                if v is not None:
                    _check(lib.kp_sampler_set(s, opt, float(v)))
        except BaseException:
            lib.kp_sampler_free(s)
            raise
        return s

    def generate(self, prompt, max_new_tokens=256, temperature=1.0, top_p=1.0, seed=None, echo=False):
        """Feeds `prompt` (text, tokenized with BOS and special tokens parsed, or a list of ids)
        after what the session holds, then yields the generated text piece by piece (UTF-8
        sequences are never split). temperature 0 is greedy. `echo` also yields the prompt's
        text first. Sampler options are checked before anything runs; closing the iterator early
        stops generation at the next token."""
        ids = self._model.tokenize(prompt) if isinstance(prompt, (str, bytes)) else [int(i) for i in prompt]
        sampler = self._sampler(temperature, top_p, seed)
        return _Stream(self, ids, int(max_new_tokens), sampler, bool(echo))


class _Stream:
    """Runs kp_generate on a worker thread and hands its pieces over through a queue, because a
    ctypes callback cannot yield to the consumer."""

    _END = object()

    def __init__(self, session, ids, max_new, sampler, echo):
        self._s, self._sampler = session, sampler
        self._q = queue.Queue(maxsize=64)
        self._stop = threading.Event()
        self._pending = b""
        lib = session._lib

        def on_token(user, ev):
            if self._stop.is_set():
                return 1
            e = ev.contents
            if e.piece_len and (echo or not e.is_prompt):
                self._q.put(_c.string_at(e.piece, e.piece_len))
            return 0

        self._cb = _TOKEN_CB(on_token)  # kept alive for the thread's whole run
        arr, n = _ids_array(ids)

        def run():
            p = _GenerateParams()
            lib.kp_generate_params_init(_c.byref(p))
            p.max_new_tokens, p.sampler, p.on_token, p.echo_prompt = max_new, sampler, self._cb, int(echo)
            st = lib.kp_generate(session._h, arr, n, _c.byref(p), None)
            # kp_last_error is per thread: read it here.
            self._q.put(_error(st) if st not in (0, 10) or (st == 10 and not self._stop.is_set()) else self._END)

        self._t = threading.Thread(target=run, daemon=True)
        self._t.start()

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            if self._t is None:
                raise StopIteration
            item = self._q.get()
            if item is self._END or isinstance(item, KuiperError):
                self._finish()
                if isinstance(item, KuiperError):
                    raise item
                if self._pending:  # a character cut by the end of generation
                    tail, self._pending = self._pending, b""
                    return tail.decode("utf-8", "replace")
                raise StopIteration
            data = self._pending + item
            cut = _utf8_complete(data)
            self._pending = data[cut:]
            if cut:
                return data[:cut].decode("utf-8", "replace")

    def close(self):
        """Stops generation early (the session keeps what was evaluated)."""
        if self._t is not None:
            self._stop.set()
            while self._t.is_alive():
                try:
                    self._q.get(timeout=0.05)
                except queue.Empty:
                    pass
            self._finish()

    def _finish(self):
        if self._t is not None:
            self._t.join()
            self._t = None
            self._s._lib.kp_sampler_free(self._sampler)
            self._sampler = None

    def __del__(self):
        self.close()


def _utf8_complete(b):
    """Length of the longest prefix of `b` that does not end inside a UTF-8 sequence (the library
    already holds back split characters; this guards the piece boundary on our side too)."""
    n = len(b)
    for k in range(1, min(4, n) + 1):
        c = b[n - k]
        if c & 0xC0 == 0x80:
            continue
        need = 1 if c < 0x80 else 2 if c >> 5 == 6 else 3 if c >> 4 == 14 else 4 if c >> 3 == 30 else 1
        return n if need <= k else n - k
    return n
