"""pytest setup for the converter tests: the in-tree bindings, the built kuiper-quantize, the
shared test data, and a scratch folder per test."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))


def skip_loudly(msg):
    print(f"\n*** SKIP: {msg} ***", file=sys.stderr)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def shared():
    base = os.environ.get("KP_TEST_DATA") or os.path.join(ROOT, "..", "shared")

    def get(rel):
        path = os.path.join(base, rel)
        if not os.path.exists(path):
            skip_loudly(f"test data '{path}' not found (set KP_TEST_DATA to the shared/ folder)")
        return path
    return get


@pytest.fixture(scope="session")
def quantize_tool():
    exe = os.environ.get("KUIPER_QUANTIZE")
    if not exe or not os.path.exists(exe):
        skip_loudly("KUIPER_QUANTIZE does not name the built kuiper-quantize")

    def run(*args, check=True):
        r = subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=600)
        if check and r.returncode != 0:
            raise AssertionError(f"kuiper-quantize {' '.join(map(str, args))} failed ({r.returncode}): {r.stderr}")
        return r
    return run


@pytest.fixture(scope="session")
def outdir(tmp_path_factory):
    return tmp_path_factory.mktemp("quantize")
