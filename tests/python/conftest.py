"""pytest setup: import the in-tree bindings and find the shared test data."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))


def _shared():
    return os.environ.get("KP_TEST_DATA") or os.path.join(ROOT, "..", "shared")


@pytest.fixture(scope="session")
def shared_file():
    def get(rel):
        path = os.path.join(_shared(), rel)
        if not os.path.exists(path):
            msg = f"*** SKIP: test data '{path}' not found (set KP_TEST_DATA to the shared/ folder) ***"
            print("\n" + msg, file=sys.stderr)
            pytest.skip(msg)
        return path
    return get


@pytest.fixture(scope="session")
def stories(shared_file):
    import kuiper
    return kuiper.Model(shared_file("models/stories260K/stories260K.bin"),
                        tokenizer=shared_file("models/stories260K/tok512.bin"), threads=1)
