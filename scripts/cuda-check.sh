#!/usr/bin/env bash
# Everything that needs an NVIDIA GPU, in one go (about 5 minutes on an H200): the tests/cuda
# programs, conformance with --device cuda on the stories, gguf and hf areas, and the speed
# benchmark. Logs and results.md (the table) go to OUTDIR; the table is printed last.
#
# usage: scripts/cuda-check.sh OUTDIR
#
# What the GPU machine needs: an NVIDIA driver for CUDA 13 (580 or newer), python3 with numpy
# (conformance and the random benchmark models) and PyTorch (the device-copy bandwidth; without
# it the HBM-bound column is left empty), about 6 GB of disk under $TMPDIR, and the bundle that
# scripts/cuda-fixtures.sh made on a build machine in .gpu-fixtures/ (carry it: it is
# git-ignored). Nothing is built or installed here; no meson, no registry, no ../shared.
#
# KP_CHECK_DEVICE=cpu KP_CHECK_SPEED=0 runs the same plumbing on a machine without a GPU (the
# tests/cuda programs then skip, exit 77), to check a bundle before spending GPU time on it.
set -uo pipefail
device=${KP_CHECK_DEVICE:-cuda}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:?usage: scripts/cuda-check.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
F=$root/.gpu-fixtures
tmp=${TMPDIR:-/tmp}/kp-cuda-check
mkdir -p "$tmp"
[ -x "$F/bin/kuiper-generate" ] || { echo "cuda-check: no bundle in $F: run scripts/cuda-fixtures.sh on a build machine and carry .gpu-fixtures" >&2; exit 1; }
export LD_LIBRARY_PATH=$F/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export KP_TEST_DATA=$F KP_CUDA_MODULE=$F/lib/libkuiper-cuda.so
results=$out/results.md
echo "| check | result |" > "$results"
echo "| --- | --- |" >> "$results"
row() { echo "| $1 | $2 |" >> "$results"; }
fails=0
step() { # name timeout_s log command...
    local name=$1 t=$2 log=$3; shift 3
    echo "== $name" >&2
    local t0=$SECONDS
    timeout "$t" "$@" > "$out/$log" 2>&1
    local rc=$?
    local res="rc $rc, $((SECONDS - t0)) s, log $log"
    if [ $rc -eq 0 ]; then res="PASS ($res)"
    elif [ $rc -eq 77 ]; then res="SKIP ($res)"
    else res="FAIL ($res)"; fails=$((fails + 1)); fi
    row "$name" "$res"
    tail -3 "$out/$log" >&2
}

nvidia-smi > "$out/nvidia-smi.txt" 2>&1
row "GPU" "$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)"

# 1. the cuda suite (the programs meson's `cuda` suite runs), against the CPU scalar path
KP_ISA=scalar step "tests/cuda ops vs CPU scalar" 240 cuda-ops.log "$F/bin/test-cuda-ops"
step "tests/cuda allocation-failure injection" 240 cuda-alloc.log "$F/bin/test-cuda-alloc"

# 2. conformance with --device cuda (the reference tool's criteria, unchanged)
for area in stories gguf hf; do
    step "conformance $area --device $device" 300 "conformance-$area.log" \
        python3 "$F/tools/conformance.py" "$F/bin" --shared "$F" --only "$area" --gen-args "--device $device"
    row "  $area summary" "$(grep -E '^[A-Za-z].*: [0-9]+/[0-9]+' "$out/conformance-$area.log" | tail -1)"
done

if [ "${KP_CHECK_SPEED:-1}" = 0 ]; then
    cat "$results" | tee "$out/summary.md"
    [ $fails -eq 0 ]
    exit
fi
# 3. speed: device copy bandwidth (bytes read + written), then decode / 512-token prefill
bw=$(timeout 120 python3 - 2>"$out/bandwidth.log" <<'PY'
import torch
n = 1 << 31
x = torch.empty(n, dtype=torch.uint8, device="cuda"); y = torch.empty_like(x)
for _ in range(3): y.copy_(x)
torch.cuda.synchronize()
ts = []
for _ in range(10):
    s = torch.cuda.Event(enable_timing=True); e = torch.cuda.Event(enable_timing=True)
    s.record(); y.copy_(x); e.record(); e.synchronize(); ts.append(s.elapsed_time(e) / 1e3)
ts.sort()
print(f"{2 * n / ts[len(ts) // 2]:.4e}")
PY
)
row "device copy bandwidth (read+write)" "${bw:-unmeasured} B/s"
echo "| model | prefill tok/s (512) | decode tok/s | weight GB | decode % of HBM bound |" > "$out/speed.md"
echo "| --- | --- | --- | --- | --- |" >> "$out/speed.md"
for spec in "smollm2-135m Q4_1" "llama32-1b F16" "llama32-1b Q8_0" "llama32-1b Q4_K_M"; do
    set -- $spec
    m=$tmp/$1-$2.gguf
    [ -f "$m" ] || timeout 240 python3 "$root/benchmarks/cuda-speed/make_random_gguf.py" "$1" "$2" "$m" >> "$out/speed.log" 2>&1
    line=$(timeout 240 "$F/bin/cuda-speed" "$m" "$m.tok.bin" cuda 512 128 2>> "$out/speed.log")
    echo "$spec: $line" >> "$out/speed.log"
    read -r _ _ pre dec bytes <<< "$line"
    pct=""
    if [ -n "${bw:-}" ] && [ -n "${dec:-}" ]; then
        # the bound: every weight byte moved once per token at the measured copy rate
        pct=$(python3 -c "print(f'{100 * $dec * $bytes / $bw:.0f}%')")
    fi
    gb=$(python3 -c "print(f'{${bytes:-0} / 1e9:.2f}')")
    echo "| $1 $2 (random weights) | ${pre:-FAIL} | ${dec:-FAIL} | $gb | ${pct:-?} |" >> "$out/speed.md"
done
rm -rf "$tmp"
{ cat "$results"; echo; cat "$out/speed.md"; } | tee "$out/summary.md"
[ $fails -eq 0 ]
