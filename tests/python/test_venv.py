"""`pip install ./python` into a fresh virtual environment (no system site-packages, no network:
the build requirements come from Debian's /usr/share/python-wheels), then a streamed and a
whole create_chat_completion through the installed package, first with $KUIPER_LIB pointing at
the built library, then with the library copied beside the installed package."""
import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WHEELS = "/usr/share/python-wheels"  # python3-setuptools-whl, python3-wheel-whl

SCRIPT = r'''
import json, os, sys
import kuiper
m = kuiper.Model(sys.argv[1], threads=1)
msgs = [{"role": "user", "content": "What is the capital of France?"}]
whole = m.create_chat_completion(messages=msgs, temperature=0, max_tokens=16)
chunks = list(m.create_chat_completion(messages=msgs, stream=True, temperature=0, max_tokens=16))
s = m.session()
s.eval(m.tokenize("Hello"))
print(json.dumps({"file": kuiper.__file__, "lib": kuiper.load_library()._name, "version": kuiper.__version__,
                  "lib_version": kuiper.load_library().kp_version().decode(), "whole": whole, "chunks": chunks,
                  "logits_type": type(s.logits()).__name__}))
'''


def _env(**extra):
    # No pip configuration or PYTHON* variables of the caller; LD_PRELOAD (sanitizer runtimes)
    # only for running the sanitized library, not for pip.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV")) and k not in ("KUIPER_LIB", "LD_PRELOAD")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env.update(extra)
    return env


def _run(cmd, env, timeout=300):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r.stdout


def _check(out, venv, model):
    res = json.loads(out.strip().splitlines()[-1])
    assert res["file"].startswith(venv), f"imported {res['file']}, not the installed package"
    assert res["version"] == res["lib_version"] == _meson_version()
    assert res["logits_type"] == "list"  # no numpy in the fresh environment
    whole = res["whole"]
    text = whole["choices"][0]["message"]["content"]
    assert whole["object"] == "chat.completion" and text
    assert whole["choices"][0]["finish_reason"] in ("stop", "length")
    assert whole["model"] == os.path.basename(model)
    chunks = res["chunks"]
    assert chunks and all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"].get("role") == "assistant"
    streamed = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert streamed == text, (streamed, text)
    assert chunks[-1]["choices"][0]["finish_reason"] == whole["choices"][0]["finish_reason"]
    assert chunks[-1]["usage"] == whole["usage"]
    return res


def _meson_version():
    for line in open(os.path.join(ROOT, "meson.build"), encoding="utf-8"):
        if line.strip().startswith("version :"):
            return line.split("'")[1]
    raise AssertionError("no version in meson.build")


def test_pip_install_into_fresh_venv(tmp_path, shared_file):
    model = shared_file("models/gguf/kp-qwen2-tiny.gguf")
    lib = os.environ.get("KUIPER_LIB")
    assert lib and os.path.exists(lib), "KUIPER_LIB must name the built libkuiper.so (meson sets it)"
    for whl in ("setuptools", "wheel"):
        assert any(f.startswith(whl + "-") for f in os.listdir(WHEELS)) if os.path.isdir(WHEELS) else False, \
            f"no {whl} wheel in {WHEELS}: install python3-setuptools-whl and python3-wheel-whl"
    # A copy: pip's in-tree build writes build/ and *.egg-info next to pyproject.toml.
    src = tmp_path / "python"
    shutil.copytree(os.path.join(ROOT, "python"), src,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", "libkuiper*.so*"))
    venv = str(tmp_path / "venv")
    _run([sys.executable, "-m", "venv", venv], _env())
    py = os.path.join(venv, "bin", "python")
    r = subprocess.run([py, "-c", "import sys; print(sys.flags.no_site, sys.prefix != sys.base_prefix)"],
                       capture_output=True, text=True, env=_env())
    assert r.stdout.split() == ["0", "True"]
    _run([py, "-m", "pip", "install", "--no-index", "--find-links", WHEELS, str(src)], _env(), timeout=600)

    preload = {"LD_PRELOAD": os.environ["LD_PRELOAD"]} if os.environ.get("LD_PRELOAD") else {}
    workdir = str(tmp_path)  # not the source tree, so `import kuiper` must find the installed one
    script = str(tmp_path / "chat.py")
    with open(script, "w", encoding="utf-8") as f:
        f.write(SCRIPT)

    res = _check(_run([py, script, model], _env(KUIPER_LIB=lib, **preload)), venv, model)
    assert os.path.samefile(res["lib"], lib)

    # The library copied beside the installed package is found first, without $KUIPER_LIB.
    pkg_dir = os.path.dirname(res["file"])
    shutil.copy(os.path.realpath(lib), os.path.join(pkg_dir, "libkuiper.so"))
    res2 = _check(_run([py, script, model], _env(PKG_CONFIG_LIBDIR=workdir, **preload)), venv, model)
    assert res2["lib"] == os.path.join(pkg_dir, "libkuiper.so")
    assert res2["whole"]["choices"][0]["message"] == res["whole"]["choices"][0]["message"]
