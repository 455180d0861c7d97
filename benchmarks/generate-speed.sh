#!/usr/bin/env bash
# End-to-end speed of kuiper-generate on stories260K: prompt (batched prefill) and generation
# tokens/s for each thread count, best of several runs. A benchmark, not a test: it asserts nothing.
#
# usage: benchmarks/generate-speed.sh [-b BUILD_DIR] [-r REPS] [-n NEW_TOKENS] [-T "1 2"]
#                                     [-m MODEL -z TOKENIZER] [-p PROMPT]
# Defaults: build/, 5 repetitions, 200 new tokens, threads "1 2", ../shared's stories260K.
#
# No peer engine is timed here: llama2.c would be the natural one, but it cannot be fetched on
# the build machines (only Debian and PyPI are reachable), and its source is not vendored.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
data=${KP_TEST_DATA:-$root/../shared}
build=$root/build reps=5 n_new=200 threads="1 2"
model=$data/models/stories260K/stories260K.bin
tokenizer=$data/models/stories260K/tok512.bin
prompt="Once upon a time, there was a little girl named Lily. She loved to play outside in the park."

while getopts "b:r:n:T:m:z:p:h" opt; do
    case $opt in
    b) build=$OPTARG ;;
    r) reps=$OPTARG ;;
    n) n_new=$OPTARG ;;
    T) threads=$OPTARG ;;
    m) model=$OPTARG ;;
    z) tokenizer=$OPTARG ;;
    p) prompt=$OPTARG ;;
    *) sed -n '2,8s/^# \{0,1\}//p' "$0"; exit 2 ;;
    esac
done

gen=$build/examples/kuiper-generate
[ -x "$gen" ] || { echo "generate-speed: $gen not found; build first (ninja -C $build)" >&2; exit 1; }
[ -f "$model" ] || { echo "generate-speed: model $model not found (set KP_TEST_DATA)" >&2; exit 1; }

echo "model: $model"
echo "kuiper-generate: $gen, greedy, -n $n_new, best of $reps runs; CPU: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) online"
printf '%-8s %8s %14s %10s %14s\n' threads prompt "prompt tok/s" generated "gen tok/s"
for t in $threads; do
    best_p=0 best_g=0 np=0 ng=0 g=
    for ((i = 0; i < reps; i++)); do
        # stderr's last line: "prompt: N tokens, X tok/s; generated: M tokens, Y tok/s"
        err=$("$gen" -m "$model" -z "$tokenizer" -p "$prompt" -n "$n_new" -t 0 --threads "$t" 2>&1 >/dev/null) || true
        line=$(grep '^prompt: ' <<<"$err" | tail -n 1) || true
        read -r np p ng g < <(sed -E 's/^prompt: ([0-9]+) tokens, ([0-9.]+) tok\/s; generated: ([0-9]+) tokens, ([0-9.]+) tok\/s$/\1 \2 \3 \4/' <<<"$line") || true
        [ -n "${g:-}" ] || { echo "generate-speed: no timing line from kuiper-generate: $err" >&2; exit 1; }
        best_p=$(awk -v a="$best_p" -v b="$p" 'BEGIN { print (b > a) ? b : a }')
        best_g=$(awk -v a="$best_g" -v b="$g" 'BEGIN { print (b > a) ? b : a }')
    done
    printf '%-8s %8s %14.1f %10s %14.1f\n' "$t" "$np" "$best_p" "$ng" "$best_g"
done
