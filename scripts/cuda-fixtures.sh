#!/usr/bin/env bash
# Fills .gpu-fixtures/ (git-ignored) with everything scripts/cuda-check.sh needs on a GPU
# machine that has no ../shared, no package registry and none of our -dev packages:
#   bin/    kuiper-generate, kuiper-tokenize, kuiper-chat, the tests/cuda programs, cuda-speed
#   lib/    libkuiper.so.0, libkuiper-cuda.so, and the two shared libraries they need that a
#           CUDA image may lack (libutf8proc, libpcre2-8)
#   models/, reference/, tools/conformance.py   a subset of ../shared in its own layout:
#           stories260K, the kp-llama-small GGUF family, kp-qwen2-tiny-Q8_0 (biases, NEOX rope),
#           two small Hugging Face folders
# About 56 MiB; the device tool carries 64 MiB with the repository (4 MiB).
#
# usage: scripts/cuda-fixtures.sh [BUILD_DIR]
#   BUILD_DIR (default build-gpu/) must be configured with -Dcuda=enabled -Dblas=disabled (no
#   OpenBLAS to carry) and built; e.g.
#   meson setup build-gpu -Dcuda=enabled -Dblas=disabled -Dbuildtype=release && ninja -C build-gpu
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(cd "${1:-$root/build-gpu}" && pwd)
shared=${KP_TEST_DATA:-$root/../shared}
F=$root/.gpu-fixtures

[ -f "$build/libkuiper-cuda.so" ] || { echo "cuda-fixtures: $build has no libkuiper-cuda.so (configure it with -Dcuda=enabled)" >&2; exit 1; }
if ldd "$build/libkuiper.so.0" | grep -q openblas; then
    echo "cuda-fixtures: $build links OpenBLAS; configure it with -Dblas=disabled" >&2
    exit 1
fi
rm -rf "$F"
mkdir -p "$F/bin" "$F/lib" "$F/tools" "$F/models/stories260K" "$F/reference" "$F/models/gguf" "$F/models/hf" \
    "$F/reference/gguf" "$F/reference/hf"

for p in examples/kuiper-generate examples/kuiper-tokenize examples/kuiper-chat tests/cuda/test-cuda-ops \
         tests/cuda/test-cuda-alloc; do
    cp "$build/$p" "$F/bin/"
done
cp -L "$build/libkuiper.so.0" "$F/lib/libkuiper.so.0"
cp "$build/libkuiper-cuda.so" "$F/lib/"
for l in libutf8proc.so.2 libpcre2-8.so.0; do
    cp -L "$(ldd "$build/libkuiper.so.0" | awk -v l=$l '$1 == l {print $3}')" "$F/lib/$l"
done
cc -O2 -I"$root/include" "$root/benchmarks/cuda-speed/cuda_speed.c" -L"$F/lib" -l:libkuiper.so.0 -o "$F/bin/cuda-speed"

cp "$shared/tools/conformance.py" "$F/tools/"
cp "$shared/models/stories260K/stories260K.bin" "$shared/models/stories260K/tok512.bin" "$F/models/stories260K/"
cp -r "$shared/reference/stories260K" "$F/reference/"
for d in "$shared"/reference/gguf/kp-llama-small*/ "$shared"/reference/gguf/kp-qwen2-tiny-Q8_0/; do
    name=$(basename "$d")
    cp -r "$d" "$F/reference/gguf/"
    cp "$shared/models/gguf/$name.gguf" "$F/models/gguf/"
done
for name in kp-hf-llama-f32-sharded kp-hf-qwen25-f16-small; do
    cp -r "$shared/models/hf/$name" "$F/models/hf/"
    cp -r "$shared/reference/hf/$name" "$F/reference/hf/"
done
chmod -R u+w "$F"
du -sh "$F"
