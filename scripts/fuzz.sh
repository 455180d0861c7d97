#!/usr/bin/env bash
# Runs one libFuzzer target of tests/fuzz for a while, from its committed seed corpus.
#   scripts/fuzz.sh TARGET SECONDS [libFuzzer options...]   e.g. scripts/fuzz.sh tokenizer_json 600
#   scripts/fuzz.sh --list      the targets
#   scripts/fuzz.sh --build     only (re)build them
# The build (clang, -Dfuzz=true, ASan+UBSan with every finding fatal) lives in $KP_FUZZ_BUILD
# (default build-fuzz) and is configured on first use. New inputs go to
# $KP_FUZZ_BUILD/fuzz-work/TARGET/corpus, crashes to .../TARGET/ (crash-*, leak-*, timeout-*);
# to keep a finding as a regression test, minimise it (-minimize_crash=1) and copy it into
# tests/fuzz/corpus/TARGET/. Exit status: libFuzzer's (0: nothing found).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
B=${KP_FUZZ_BUILD:-build-fuzz}

build() {
    if [ ! -f "$B/meson-private/coredata.dat" ]; then
        CC=clang CXX=clang++ meson setup "$B" -Dfuzz=true -Dcuda=disabled -Dbenchmarks=false \
            -Db_sanitize=address,undefined -Db_lundef=false -Dwerror=false \
            -Dc_args=-fno-sanitize-recover=all -Dcpp_args=-fno-sanitize-recover=all >/dev/null
    fi
    ninja -C "$B" -j"${KP_CI_JOBS:-2}" fuzz-targets >/dev/null
}

# Every target named in tests/fuzz/meson.build (server_request only where kuiper-server builds).
targets() { sed -n "s/^ *\(kp_fuzz_targets += {\)\{0,1\}'\([a-z0-9_]*\)' : files(.*/\2/p" tests/fuzz/meson.build; }

case "${1:-}" in
--list) targets; exit 0 ;;
--build) build; exit 0 ;;
""|-h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
T=$1 S=${2:?usage: scripts/fuzz.sh TARGET SECONDS}
shift 2
targets | grep -qx "$T" || { echo "unknown target '$T' (scripts/fuzz.sh --list)" >&2; exit 2; }
build
W=$B/fuzz-work/$T
mkdir -p "$W/corpus"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}
# -rss_limit_mb and -malloc_limit_mb: a hostile length may ask for a huge allocation, which the
# library must refuse cleanly; 2 GB in one go is treated as a finding.
exec "$B/tests/fuzz/fuzz-$T" -max_total_time="$S" -print_final_stats=1 -rss_limit_mb=4096 -malloc_limit_mb=2048 \
    -timeout=30 -artifact_prefix="$W/" "$@" "$W/corpus" "tests/fuzz/corpus/$T"
