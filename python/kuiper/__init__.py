"""Python bindings for libkuiper through ctypes (no compiled extension).

    import kuiper
    m = kuiper.Model("stories260K.bin", tokenizer="tok512.bin")
    for piece in m.session().generate("Once upon a time", max_new_tokens=50, temperature=0):
        print(piece, end="")

    m = kuiper.Model("SmolLM2-135M-Instruct.Q4_1.gguf")
    s = m.session()
    for piece in s.chat("What is the capital of France?", temperature=0):
        print(piece, end="")

    m.create_chat_completion(messages=[{"role": "user", "content": "Hi"}], stream=True)

The shared library is looked for beside this package (a copy installed with it), then at
$KUIPER_LIB (a path to the shared library), then in `pkg-config --variable=libdir kuiper`, then
on the loader's search path (ctypes.util.find_library); LibraryNotFoundError (an ImportError)
names every place tried. Failures of the library raise KuiperError carrying the status name
("KP_ERR_IO") and libkuiper's message. Defaults follow kuiper-chat: temperature 0.8, top-k 40,
top-p 0.95, min-p 0.05, a clock seed, sessions of min(4096, the model's context) positions
(chat and create_chat_completion; generate keeps the library's sampler defaults, as
kuiper-generate's llama2.c-style options do).
"""
import ctypes
import ctypes.util
import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
import weakref

try:
    import numpy as _np
except ImportError:  # optional: logits are lists without it
    _np = None

# The version of the bindings, kept equal to libkuiper's (meson.build checks it).
__version__ = "0.1.0"

__all__ = ["KuiperError", "LibraryNotFoundError", "Model", "Session", "load_library", "__version__"]

_c = ctypes
_size_t = _c.c_size_t


class KuiperError(Exception):
    """A libkuiper call failed: `status` (int), `name` ("KP_ERR_FORMAT") and `message`."""

    def __init__(self, status, name, message):
        super().__init__(f"{name}: {message}" if message else name)
        self.status, self.name, self.message = status, name, message


class LibraryNotFoundError(ImportError):
    """libkuiper's shared library could not be loaded; the message lists every place tried."""


class _ModelParams(_c.Structure):
    _fields_ = [("struct_size", _size_t), ("allocator", _c.c_void_p), ("log", _c.c_void_p),
                ("log_user", _c.c_void_p), ("log_level", _c.c_int), ("tokenizer_path", _c.c_char_p),
                ("n_threads", _c.c_int), ("device", _c.c_int), ("family", _c.c_char_p)]


class _SessionParams(_c.Structure):
    _fields_ = [("struct_size", _size_t), ("n_ctx", _c.c_int32), ("kv_type", _c.c_int)]


class _TokenEvent(_c.Structure):
    _fields_ = [("id", _c.c_int32), ("is_prompt", _c.c_int), ("piece", _c.POINTER(_c.c_char)),
                ("piece_len", _size_t), ("logits", _c.POINTER(_c.c_float)), ("n_vocab", _size_t)]


_TOKEN_CB = _c.CFUNCTYPE(_c.c_int, _c.c_void_p, _c.POINTER(_TokenEvent))


class _GenerateParams(_c.Structure):
    _fields_ = [("struct_size", _size_t), ("max_new_tokens", _c.c_int32), ("sampler", _c.c_void_p),
                ("on_token", _TOKEN_CB), ("user", _c.c_void_p), ("echo_prompt", _c.c_int),
                ("stop_strings", _c.POINTER(_c.c_char_p)), ("n_stop_strings", _size_t),
                ("context_policy", _c.c_int), ("n_keep", _c.c_int32)]


class _GenerateStats(_c.Structure):
    _fields_ = [("n_prompt", _c.c_int32), ("n_generated", _c.c_int32), ("prompt_seconds", _c.c_double),
                ("generate_seconds", _c.c_double), ("stop_id", _c.c_int32), ("reason", _c.c_int),
                ("stop_string", _c.c_int32)]


class _ChatMsg(_c.Structure):
    _fields_ = [("role", _c.c_char_p), ("content", _c.c_char_p)]


_TOKENIZE_ADD_SPECIAL, _TOKENIZE_PARSE_SPECIAL = 1, 2
# Keyword arguments of generate() and chat() -> kp_sampler_opt values (kuiper.h).
_SAMPLER_OPTS = {"temperature": 0, "top_p": 1, "seed": 2, "top_k": 3, "min_p": 4, "repeat_penalty": 5,
                 "frequency_penalty": 6, "presence_penalty": 7, "penalty_window": 8}
_STOP_REASONS = {0: "none", 1: "eog", 2: "max_tokens", 3: "stop_string", 4: "callback", 5: "context"}
_CONTEXT_POLICIES = {"error": 0, "slide": 1}
_DEVICES = {"cpu": 0, "cuda": 1}
_KV_TYPES = {"f32": 0, "f16": 1}
_DEFAULT_N_CTX = 4096  # sessions hold min(this, the model's context), as kuiper-chat's do
_ERR_BUFFER_TOO_SMALL = 6
_ERR_CANCELLED = 10
# The sidecar of Session.save: the conversation, in the form kuiper-chat's /save writes.
_SIDECAR_FORMAT = "kuiper-chat conversation"


_LIB_NAMES = ("libkuiper.so", "libkuiper.so.0", "libkuiper.dylib", "kuiper.dll")


def _candidates(tried):
    """(where, path) pairs to try, in order; places with nothing to try are noted in `tried`."""
    here = os.path.dirname(os.path.abspath(__file__))
    beside = [os.path.join(here, n) for n in _LIB_NAMES if os.path.exists(os.path.join(here, n))]
    if not beside:
        tried.append(f"beside the package: no libkuiper.so in {here}")
    for path in beside:
        yield "beside the package", path
    env = os.environ.get("KUIPER_LIB")
    if env:
        yield "$KUIPER_LIB", env
    else:
        tried.append("$KUIPER_LIB: not set")
    try:
        libdir = subprocess.run(["pkg-config", "--variable=libdir", "kuiper"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        libdir = ""
    in_libdir = [os.path.join(libdir, n) for n in _LIB_NAMES[:3] if libdir and os.path.exists(os.path.join(libdir, n))]
    if not in_libdir:
        tried.append(f"pkg-config: no libkuiper.so in {libdir}" if libdir else
                     "pkg-config: no kuiper.pc (pkg-config --variable=libdir kuiper)")
    for path in in_libdir:
        yield "pkg-config", path
    found = ctypes.util.find_library("kuiper")
    if found:
        yield "the loader's search path", found
    else:
        tried.append("the loader's search path: no libkuiper")


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
        "kp_tokenizer_bos": (i32, [vp]),
        "kp_tokenizer_eos": (i32, [vp]),
        "kp_tokenizer_is_eog": (_c.c_int, [vp, i32]),
        "kp_token_to_piece": (_c.c_int, [vp, i32, _c.c_char_p, _size_t, p(_size_t)]),
        "kp_model_info_get": (_c.c_int64, [vp, _c.c_int]),
        "kp_model_arch_borrow": (_c.c_char_p, [vp]),
        "kp_sampler_new": (_c.c_int, [vp, p(vp)]),
        "kp_sampler_free": (None, [vp]),
        "kp_sampler_set": (_c.c_int, [vp, _c.c_int, _c.c_double]),
        "kp_chat_format": (_c.c_int, [vp, p(_ChatMsg), _size_t, _c.c_int, _c.c_char_p, _size_t, p(_size_t)]),
        "kp_chat_format_template": (_c.c_int, [_c.c_char_p, p(_ChatMsg), _size_t, _c.c_int, _c.c_char_p,
                                               _size_t, p(_size_t)]),
        "kp_session_save": (_c.c_int, [vp, _c.c_char_p]),
        "kp_session_load": (_c.c_int, [vp, _c.c_char_p]),
        "kp_session_tokens_borrow": (p(i32), [vp]),
        "kp_session_eval": (_c.c_int, [vp, p(i32), _size_t, _c.c_uint32]),
        "kp_session_logits_borrow": (p(_c.c_float), [vp, _size_t]),
        "kp_session_params_init": (None, [p(_SessionParams)]),
        "kp_session_new": (_c.c_int, [vp, p(_SessionParams), p(vp)]),
        "kp_session_free": (None, [vp]),
        "kp_session_n_past": (i32, [vp]),
        "kp_session_n_ctx": (i32, [vp]),
        "kp_session_truncate": (_c.c_int, [vp, i32]),
        "kp_session_cancel": (None, [vp]),
        "kp_generate_params_init": (None, [p(_GenerateParams)]),
        "kp_generate": (_c.c_int, [vp, p(i32), _size_t, p(_GenerateParams), p(_GenerateStats)]),
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
        for where, path in _candidates(tried):
            try:
                _lib = _declare(ctypes.CDLL(path))
                break
            except (OSError, AttributeError) as e:  # AttributeError: a library without our symbols
                tried.append(f"{where}: {path}: {e}")
        if _lib is None:
            raise LibraryNotFoundError("libkuiper's shared library could not be loaded; tried " + "; ".join(tried) +
                                       ". Set KUIPER_LIB to its path (e.g. build/libkuiper.so), or install it "
                                       "(meson install) where pkg-config or the loader finds it.")
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


def _messages_array(messages):
    """A kp_chat_msg array for `messages` (dicts with "role" and "content", or (role, content) pairs)."""
    items = []
    for m in messages:
        role, content = (m.get("role"), m.get("content")) if isinstance(m, dict) else tuple(m)
        if not isinstance(role, str) or not isinstance(content, str):
            raise TypeError("a message is {'role': str, 'content': str}")
        items.append(_ChatMsg(role.encode("utf-8"), content.encode("utf-8")))  # the structs keep the bytes
    return (_ChatMsg * max(1, len(items)))(*items), len(items)


def _status_error(status, message):
    """A KuiperError for a failure detected on the Python side, named like the library's."""
    name = (load_library().kp_status_str(status) or b"").decode().split(":")[0]
    return KuiperError(status, name, message)


class Model:
    """A loaded model (immutable; usable from several threads). `tokenizer` is required for
    llama2.c checkpoints; `threads` 0 means one per CPU. `device` is "cpu" or "cuda" (the CUDA
    backend reports KP_ERR_UNSUPPORTED until it has kernels). `family` ("llama2", "llama3",
    "qwen2") is for KuiperLLama .bin files, which do not store their architecture."""

    # Class-level defaults: __del__ must work on an object whose __init__ failed early (for
    # instance when the library is missing).
    _h = None
    _live_sessions = 0
    _close_pending = False
    _chat_session = None

    def __init__(self, path, tokenizer=None, threads=0, *, device="cpu", family=None):
        if device not in _DEVICES:
            raise ValueError(f"device must be one of {sorted(_DEVICES)}, not {device!r}")
        lib = load_library()
        self._lib = lib
        self._path = os.fspath(path)
        p = _ModelParams()
        lib.kp_model_params_init(_c.byref(p))
        if tokenizer is not None:
            p.tokenizer_path = os.fsencode(tokenizer)
        if family is not None:
            p.family = family.encode("utf-8")
        p.n_threads = int(threads)
        p.device = _DEVICES[device]
        h = _c.c_void_p()
        _check(lib.kp_model_load(os.fsencode(path), _c.byref(p), _c.byref(h)))
        self._h = h
        self._tok = lib.kp_model_tokenizer_borrow(h)

    def close(self):
        """Frees the model; while sessions made from it are open, that waits for the last one."""
        if self._chat_session is not None:
            s, self._chat_session = self._chat_session, None
            s.close()
        if self._live_sessions:
            self._close_pending = True
        elif self._h:
            self._lib.kp_model_free(self._h)
            self._h = None

    def _session_closed(self):
        self._live_sessions -= 1
        if self._close_pending and not self._live_sessions:
            self.close()

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def n_vocab(self):
        return self._lib.kp_tokenizer_n_vocab(self._tok)

    @property
    def n_ctx(self):
        """Positions the model was trained for (the largest session it allows)."""
        return self._lib.kp_model_info_get(self._h, 1)

    @property
    def arch(self):
        return (self._lib.kp_model_arch_borrow(self._h) or b"").decode()

    @property
    def bos(self):
        """The BOS id, or -1."""
        return self._lib.kp_tokenizer_bos(self._tok)

    @property
    def eos(self):
        """The EOS id, or -1."""
        return self._lib.kp_tokenizer_eos(self._tok)

    def is_eog(self, token):
        """Whether generation stops at `token` (EOS, EOT and the like)."""
        return bool(self._lib.kp_tokenizer_is_eog(self._tok, int(token)))

    def token_to_piece(self, token):
        """The raw bytes of one token."""
        need = _size_t(0)
        buf = _c.create_string_buffer(64)
        st = self._lib.kp_token_to_piece(self._tok, int(token), buf, 64, _c.byref(need))
        if st == _ERR_BUFFER_TOO_SMALL:
            buf = _c.create_string_buffer(need.value)
            st = self._lib.kp_token_to_piece(self._tok, int(token), buf, need.value, _c.byref(need))
        _check(st)
        return buf.raw[:need.value]

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

    def chat_format(self, messages, add_assistant=True, template=None):
        """The prompt text of a conversation, rendered with the model's chat template (or with
        `template`: a family name "chatml", "llama3", "llama2", or a Jinja template string).
        `messages` are dicts {"role": ..., "content": ...} or (role, content) pairs."""
        arr, n = _messages_array(messages)
        need = _size_t(0)
        tpl = template.encode("utf-8") if template is not None else None

        def fmt(buf, cap):
            if tpl is not None:
                return self._lib.kp_chat_format_template(tpl, arr, n, int(bool(add_assistant)), buf, cap,
                                                         _c.byref(need))
            return self._lib.kp_chat_format(self._h, arr, n, int(bool(add_assistant)), buf, cap, _c.byref(need))

        st = fmt(None, 0)
        if st == _ERR_BUFFER_TOO_SMALL:
            buf = _c.create_string_buffer(need.value + 1)
            st = fmt(buf, need.value + 1)
            _check(st)
            return buf.raw[:need.value].decode("utf-8", "replace")
        _check(st)
        return ""

    def chat_tokens(self, text):
        """Ids of rendered chat text: special-token text parsed, and BOS added only when the text
        does not already begin with it (Llama-family templates write it themselves)."""
        bos = self.bos
        starts_with_bos = bos >= 0 and text.encode("utf-8").startswith(self.token_to_piece(bos) or b"\0")
        return self.tokenize(text, add_special=not starts_with_bos, parse_special=True)

    def session(self, n_ctx=None, kv_type="f32"):
        """A new conversation state (KV cache) of `n_ctx` positions (None: min(4096, the model's
        context), as kuiper-chat; 0: the model's maximum). `kv_type` is "f32" or "f16" (half
        the memory)."""
        return Session(self, n_ctx, kv_type)

    def create_chat_completion(self, messages, stream=False, max_tokens=None, temperature=0.8, top_p=0.95,
                               seed=None, stop=None, *, top_k=40, min_p=0.05, repeat_penalty=None,
                               frequency_penalty=None, presence_penalty=None, template=None, model=None):
        """An answer to `messages` (a list of {"role", "content"} dicts), in the shape of OpenAI's
        chat completions API as llama-cpp-python returns it: a "chat.completion" dict, or with
        `stream=True` an iterator of "chat.completion.chunk" dicts whose "delta"s concatenate to
        the answer. `max_tokens` None: until an end token or a full context. `seed` None: from
        the clock. `model` is the name reported (default: the model file's name). The model keeps
        one session for these calls and reuses the KV cache of the longest common prefix."""
        if self._chat_session is None or not self._chat_session._h:
            self._chat_session = Session(self)
        s = self._chat_session
        msgs = [dict(m) for m in messages]
        _messages_array(msgs)  # type checks before anything runs
        run = s._run_options(0 if max_tokens is None else max_tokens, stop, "error", 0)
        if max_tokens is not None and run["max_new"] <= 0:
            raise _status_error(1, f"max_tokens must be positive or None, not {max_tokens!r}")
        sampler = s._sampler(dict(temperature=temperature, top_p=top_p, seed=0 if seed is None else seed,
                                  top_k=top_k, min_p=min_p, repeat_penalty=repeat_penalty,
                                  frequency_penalty=frequency_penalty, presence_penalty=presence_penalty))
        try:
            ids, keep = s._prepare(msgs, template)
        except BaseException:
            self._lib.kp_sampler_free(sampler)
            raise
        stream_obj = s._start(_Stream(s, ids[keep:], run, sampler, False, n_reused=keep))
        meta = {"id": "chatcmpl-" + uuid.uuid4().hex, "created": int(time.time()),
                "model": model if model is not None else os.path.basename(self._path)}
        if stream:
            return _completion_chunks(stream_obj, meta, len(ids))
        text = stream_obj.text()
        return dict(meta, object="chat.completion",
                    choices=[{"index": 0, "message": {"role": "assistant", "content": text},
                              "finish_reason": _finish_reason(stream_obj.stats)}],
                    usage=_usage(stream_obj.stats, len(ids)))


def _finish_reason(stats):
    return "length" if stats and stats["reason"] in ("max_tokens", "context") else "stop"


def _usage(stats, n_prompt):
    n = stats["n_generated"] if stats else 0
    return {"prompt_tokens": n_prompt, "completion_tokens": n, "total_tokens": n_prompt + n}


def _completion_chunks(stream, meta, n_prompt):
    """The "chat.completion.chunk" dicts of a streamed completion: the role first, then one
    chunk per piece of text, then an empty delta with the finish reason (and the usage)."""
    def chunk(delta, finish=None):
        return dict(meta, object="chat.completion.chunk",
                    choices=[{"index": 0, "delta": delta, "finish_reason": finish}])

    try:
        yield chunk({"role": "assistant"})
        for piece in stream:
            yield chunk({"content": piece})
        last = chunk({}, _finish_reason(stream.stats))
        last["usage"] = _usage(stream.stats, n_prompt)
        yield last
    finally:
        stream.close()  # an iterator dropped early stops generation


class Session:
    """The KV cache of one token sequence, plus the conversation chat() keeps; use from one
    thread at a time. Starting a new generate/chat, save, load or reset first stops a stream
    that is still running on this session."""

    _h = None  # see Model: __del__ after a failed __init__
    _active = None

    def __init__(self, model, n_ctx=None, kv_type="f32"):
        lib = model._lib
        self._lib, self._model = lib, model
        self._messages = []
        if not model._h:
            raise _status_error(1, "the model is closed")
        if kv_type not in _KV_TYPES:
            raise _status_error(1, f"kv_type must be one of {sorted(_KV_TYPES)}, not {kv_type!r}")
        if n_ctx is None:
            n_ctx = min(_DEFAULT_N_CTX, model.n_ctx)
        p = _SessionParams()
        lib.kp_session_params_init(_c.byref(p))
        p.n_ctx = int(n_ctx)
        p.kv_type = _KV_TYPES[kv_type]
        h = _c.c_void_p()
        _check(lib.kp_session_new(model._h, _c.byref(p), _c.byref(h)))
        self._h = h
        model._live_sessions += 1  # the model outlives its sessions, whatever order the GC picks

    def close(self):
        self._stop_active()
        if self._h:
            self._lib.kp_session_free(self._h)
            self._h = None
            self._model._session_closed()

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _stop_active(self):
        # A weak reference: a stream nobody holds any more is freed (and stopped) at once.
        stream = self._active() if self._active is not None else None
        self._active = None
        if stream is not None:
            stream.close()

    def _start(self, stream):
        self._active = weakref.ref(stream)
        return stream

    @property
    def n_past(self):
        return self._lib.kp_session_n_past(self._h)

    @property
    def n_ctx(self):
        return self._lib.kp_session_n_ctx(self._h)

    @property
    def tokens(self):
        """The ids the session holds (a stream still running on the session is stopped first)."""
        self._stop_active()
        n = self.n_past
        ptr = self._lib.kp_session_tokens_borrow(self._h)
        return list(ptr[:n]) if n else []

    def eval(self, ids, logits="last"):
        """Evaluates `ids` after what the session holds, as one batch. `logits`: "last" (the
        usual), "all" (one row per id) or None."""
        flags = {"last": 1, "all": 2, None: 0}
        if logits not in flags:
            raise _status_error(1, f"logits must be 'last', 'all' or None, not {logits!r}")
        self._stop_active()
        arr, n = _ids_array([int(i) for i in ids])
        _check(self._lib.kp_session_eval(self._h, arr, n, flags[logits]))

    def logits(self, row=0):
        """The logits of row `row` of the last eval, or None: a numpy float32 array of n_vocab
        values (a copy) when numpy is installed, else a list of floats."""
        self._stop_active()
        ptr = self._lib.kp_session_logits_borrow(self._h, int(row))
        if not ptr:
            return None
        n = self._model.n_vocab
        if _np is not None:
            return _np.ctypeslib.as_array(ptr, shape=(n,)).copy()
        return list(ptr[:n])

    @property
    def messages(self):
        """The conversation chat() has built (a copy: list of {"role", "content"} dicts)."""
        return [dict(m) for m in self._messages]

    def reset(self):
        """Forgets everything: the KV cache and the conversation."""
        self._stop_active()
        _check(self._lib.kp_session_truncate(self._h, 0))
        self._messages = []

    def save(self, path):
        """Writes the session's state (tokens, KV cache) to `path` and the conversation to
        `path` + ".json" (the sidecar format of kuiper-chat's /save)."""
        self._stop_active()
        _check(self._lib.kp_session_save(self._h, os.fsencode(path)))
        with open(os.fsencode(path) + b".json", "w", encoding="utf-8") as f:
            json.dump({"format": _SIDECAR_FORMAT, "version": 1, "messages": self._messages}, f, ensure_ascii=False,
                      indent=1)
            f.write("\n")

    def load(self, path):
        """Restores a state written by save() (or by kuiper-chat's /save). The conversation comes
        from `path` + ".json" when that exists, else it is empty. On failure nothing changes."""
        self._stop_active()
        side = os.fsencode(path) + b".json"
        messages = []
        if os.path.exists(side):
            try:
                with open(side, encoding="utf-8") as f:
                    doc = json.load(f)
                messages = [{"role": m["role"], "content": m["content"]} for m in doc["messages"]]
                _messages_array(messages)  # the same checks chat() will make
            except (ValueError, KeyError, TypeError) as e:
                raise _status_error(4, f"{os.fsdecode(side)}: not a conversation ({e})") from None
        _check(self._lib.kp_session_load(self._h, os.fsencode(path)))
        self._messages = messages

    def _prepare(self, msgs, template):
        """(ids, keep): the prompt of conversation `msgs`, with the session cut back to the
        `keep` leading ids it already holds, so only ids[keep:] need evaluating."""
        self._stop_active()
        ids = self._model.chat_tokens(self._model.chat_format(msgs, True, template))
        if len(ids) >= self.n_ctx:
            raise _status_error(8, f"the conversation takes {len(ids)} tokens; the session holds {self.n_ctx}")
        held = self.tokens
        lcp = 0
        while lcp < len(held) and lcp < len(ids) and held[lcp] == ids[lcp]:
            lcp += 1
        keep = min(lcp, len(ids) - 1)  # the last prompt token is evaluated again for its logits
        _check(self._lib.kp_session_truncate(self._h, keep))
        return ids, keep

    def _sampler(self, options):
        lib = self._lib
        s = _c.c_void_p()
        _check(lib.kp_sampler_new(None, _c.byref(s)))
        try:
            for name, v in options.items():
                if v is not None:
                    if isinstance(v, bool) or not isinstance(v, (int, float)):
                        raise TypeError(f"{name} must be a number, not {type(v).__name__}")
                    _check(lib.kp_sampler_set(s, _SAMPLER_OPTS[name], float(v)))
        except BaseException:
            lib.kp_sampler_free(s)
            raise
        return s

    @staticmethod
    def _run_options(max_new_tokens, stop, context_policy, n_keep):
        if isinstance(stop, (str, bytes)):
            stop = [stop]
        stop = [x.encode("utf-8") if isinstance(x, str) else bytes(x) for x in (stop or [])]
        if context_policy not in _CONTEXT_POLICIES:
            raise _status_error(1, f"context_policy must be one of {sorted(_CONTEXT_POLICIES)}, not {context_policy!r}")
        return {"max_new": int(max_new_tokens), "stop": stop, "policy": _CONTEXT_POLICIES[context_policy],
                "n_keep": int(n_keep)}

    def generate(self, prompt, max_new_tokens=256, temperature=1.0, top_p=1.0, seed=None, echo=False, *,
                 top_k=None, min_p=None, repeat_penalty=None, frequency_penalty=None, presence_penalty=None,
                 penalty_window=None, stop=None, context_policy="error", n_keep=0):
        """Feeds `prompt` (text, tokenized with BOS and special tokens parsed, or a list of ids)
        after what the session holds, then yields the generated text piece by piece (UTF-8
        sequences are never split). temperature 0 is greedy; the other sampler options are
        those of kuiper.h (None: the library's default), so that temperature, top_p and seed
        alone reproduce llama2.c's sampling. `stop` is a string or a list of
        strings that end generation (not included in the output). `context_policy` is "error"
        or "slide" (keeping the first `n_keep` positions). `echo` also yields the prompt's text
        first. Options are checked before anything runs; closing the iterator early stops
        generation at the next token. After the end, the iterator's `stats` holds the counts,
        timings and stop reason."""
        ids = self._model.tokenize(prompt) if isinstance(prompt, (str, bytes)) else [int(i) for i in prompt]
        run = self._run_options(max_new_tokens, stop, context_policy, n_keep)
        sampler = self._sampler(dict(temperature=temperature, top_p=top_p, seed=seed,
                                     top_k=top_k, min_p=min_p, repeat_penalty=repeat_penalty,
                                     frequency_penalty=frequency_penalty, presence_penalty=presence_penalty,
                                     penalty_window=penalty_window))
        self._stop_active()
        return self._start(_Stream(self, ids, run, sampler, bool(echo)))

    def chat(self, message, system=None, max_new_tokens=1024, *, template=None, temperature=0.8, top_p=0.95,
             seed=None, top_k=40, min_p=0.05, repeat_penalty=None, frequency_penalty=None, presence_penalty=None,
             penalty_window=None, stop=None):
        """Adds `message` as the user's turn of the conversation this session keeps and yields the
        assistant's answer piece by piece. `system` (when given) sets the system message; ""
        removes it. The whole conversation is rendered with the chat template each time and only
        the tokens after the longest prefix the session already holds are evaluated. When the
        iterator ends (or is closed early) the answer so far becomes the assistant's turn; a
        question stopped before any answer, or a failure, takes the question back. Sampler
        options as generate(), with kuiper-chat's defaults (temperature 0.8, top-k 40, top-p
        0.95, min-p 0.05; seed None: from the clock)."""
        if not isinstance(message, str) or (system is not None and not isinstance(system, str)):
            raise TypeError("message and system must be str")
        run = self._run_options(max_new_tokens, stop, "error", 0)
        sampler = self._sampler(dict(temperature=temperature, top_p=top_p, seed=0 if seed is None else seed,
                                     top_k=top_k, min_p=min_p, repeat_penalty=repeat_penalty,
                                     frequency_penalty=frequency_penalty, presence_penalty=presence_penalty,
                                     penalty_window=penalty_window))
        try:
            self._stop_active()
            msgs = [dict(m) for m in self._messages]
            if system is not None:
                if msgs and msgs[0]["role"] == "system":
                    msgs.pop(0)
                if system:
                    msgs.insert(0, {"role": "system", "content": system})
            msgs.append({"role": "user", "content": message})
            ids, keep = self._prepare(msgs, template)
        except BaseException:
            self._lib.kp_sampler_free(sampler)
            raise
        self._messages = msgs

        def on_end(text, status):
            if self._messages is not msgs:
                return  # reset or load replaced the conversation meanwhile
            if text and status in (0, _ERR_CANCELLED, 8):
                msgs.append({"role": "assistant", "content": text})
            elif status == 0 and not text:
                msgs.append({"role": "assistant", "content": ""})
            else:
                msgs.pop()

        return self._start(_Stream(self, ids[keep:], run, sampler, False, on_end=on_end, n_reused=keep))


class _Stream:
    """Runs kp_generate on a worker thread and hands its pieces over through a queue, because a
    ctypes callback cannot yield to the consumer."""

    _END = object()
    _t = None  # see Model: __del__ after a failed __init__

    def __init__(self, session, ids, run, sampler, echo, on_end=None, n_reused=0):
        self._s, self._sampler, self._on_end = session, sampler, on_end
        # The callback and the worker capture these, never `self`: no reference cycle, so a
        # stream nobody holds is stopped and finished at once.
        self._q = q = queue.Queue(maxsize=64)
        self._stop = stop = threading.Event()
        self._generated = generated = []  # every generated piece, consumed or not (it is in the session)
        self._result = result = {}
        self._pending = b""
        lib = session._lib

        def on_token(user, ev):
            if stop.is_set():
                return 1
            e = ev.contents
            if e.piece_len and (echo or not e.is_prompt):
                piece = _c.string_at(e.piece, e.piece_len)
                if not e.is_prompt:
                    generated.append(piece)
                q.put(piece)
            return 0

        self._cb = cb = _TOKEN_CB(on_token)  # kept alive for the thread's whole run
        arr, n = _ids_array(ids)
        stops = (_c.c_char_p * max(1, len(run["stop"])))(*run["stop"])
        h = session._h

        def run_thread():
            gs = _GenerateStats()
            p = _GenerateParams()
            lib.kp_generate_params_init(_c.byref(p))
            p.max_new_tokens, p.sampler, p.on_token, p.echo_prompt = run["max_new"], sampler, cb, int(echo)
            p.stop_strings, p.n_stop_strings = stops, len(run["stop"])
            p.context_policy, p.n_keep = run["policy"], run["n_keep"]
            st = lib.kp_generate(h, arr, n, _c.byref(p), _c.byref(gs))
            result["status"] = st
            result["stats"] = {"n_prompt": gs.n_prompt, "n_reused": n_reused, "n_generated": gs.n_generated,
                               "prompt_seconds": gs.prompt_seconds, "generate_seconds": gs.generate_seconds,
                               "stop_id": gs.stop_id, "reason": _STOP_REASONS.get(gs.reason, str(gs.reason)),
                               "stop_string": gs.stop_string}
            # kp_last_error is per thread: read it here.
            q.put(_error(st) if st not in (0, 10) or (st == 10 and not stop.is_set()) else _Stream._END)

        self._t = threading.Thread(target=run_thread, daemon=True)
        self._t.start()

    @property
    def stats(self):
        """After the end: {"n_prompt", "n_reused", "n_generated", "prompt_seconds",
        "generate_seconds", "stop_id", "reason", "stop_string"}; None before."""
        return self._result.get("stats")

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

    def text(self):
        """Consumes the rest of the stream and returns the whole generated text."""
        for _ in self:
            pass
        return b"".join(self._generated).decode("utf-8", "replace")

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
            if self._on_end is not None:
                # A stop asked for by close() counts as a cancellation, not as an error.
                st = self._result.get("status")
                if st == 0 and self.stats["reason"] == "callback":
                    st = _ERR_CANCELLED
                self._on_end(b"".join(self._generated).decode("utf-8", "replace"), st)
                self._on_end = None

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
