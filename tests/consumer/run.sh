#!/usr/bin/env bash
# Installs this build into a temporary DESTDIR, then builds tests/consumer's C and C++ programs
# against that tree exactly as docs/building.md says (PKG_CONFIG_PATH, then nothing but
# `pkg-config --cflags --libs kuiper`, and `pkg-config --cflags --libs kuiper-static` for a
# static link), the way a third-party program would, and runs them on stories260K. Exit 77 (meson's "skipped") only when the model files are absent.
#
# usage: run.sh BUILD_DIR SOURCE_DIR "CC..." "CXX..." SANITIZE DEFAULT_TEST_DATA
set -euo pipefail

build=$1 src=$2 cc=$3 cxx=$4 sanitize=$5 default_data=$6
data=${KP_TEST_DATA:-$default_data}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kp-consumer.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

fail() { echo "consumer: FAIL: $*" >&2; exit 1; }

meson install -C "$build" --destdir "$tmp/dest" --no-rebuild --quiet >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log" >&2; fail "meson install --destdir failed"; }

pc=$(find "$tmp/dest" -name kuiper.pc -print -quit)
[ -n "$pc" ] || fail "kuiper.pc was not installed"
[ -f "$(dirname "$pc")/kuiper-static.pc" ] || fail "kuiper-static.pc was not installed"
# docs/building.md's recipe, as written there: PKG_CONFIG_PATH alone makes the staged tree
# usable, because kuiper.pc's prefix is relative to its own folder.
export PKG_CONFIG_PATH=$(dirname "$pc")
unset PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_LIBDIR
prefix=$(sed -n 's/^prefix=//p' "$pc")
case $prefix in '${pcfiledir}'/*) ;; *) fail "kuiper.pc's prefix '$prefix' is not relative to the file" ;; esac
prefix=$(cd "$(pkg-config --variable=prefix kuiper)" && pwd)
libdir=$(cd "$(pkg-config --variable=libdir kuiper)" && pwd)
includedir=$(pkg-config --variable=includedir kuiper)
for f in "$includedir/kuiper/kuiper.h" "$libdir/libkuiper.a" "$libdir/libkuiper.so" "$libdir/libkuiper.so.0"; do
    [ -e "$f" ] || fail "not installed: $f"
done
for p in kuiper-generate kuiper-chat kuiper-tokenize; do
    [ -x "$prefix/bin/$p" ] || fail "$p was not installed"
done
[ "$(pkg-config --modversion kuiper)" = "$(pkg-config --modversion kuiper-static)" ] || fail "kuiper.pc and kuiper-static.pc disagree on the version"
if [ -e "$build/libkuiper-cuda.so" ]; then
    [ -e "$libdir/libkuiper-cuda.so" ] || fail "the CUDA module was not installed beside libkuiper.so"
fi
soname=$(readelf -d "$libdir/libkuiper.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libkuiper.so.0 ] || fail "SONAME is '$soname', expected libkuiper.so.0"
echo "installed: $(cd "$tmp/dest" && find . -path '*kuiper*' -not -type d | sort | tr '\n' ' ')"

cflags=$(pkg-config --cflags kuiper)
libs=$(pkg-config --libs kuiper)
static_flags=$(pkg-config --cflags --libs kuiper-static)
echo "pkg-config --cflags --libs kuiper: $cflags $libs"
echo "pkg-config --cflags --libs kuiper-static: $static_flags"
# Consumers get our include folder and nothing of our private dependencies' build flags.
[ "$cflags" = "-I$includedir" ] || [ "$cflags" = "-I$includedir " ] ||
    fail "pkg-config --cflags kuiper is '$cflags'; expected only -I$includedir"
for f in "$libs $(pkg-config --static --libs kuiper)" "$static_flags"; do
    ! grep -q cudart <<<"$f" || fail "the .pc files list the CUDA runtime: $f"
done
# A sanitized library needs the sanitizer runtime in the program too.
san=()
[ -n "$sanitize" ] && [ "$sanitize" != none ] && san=(-fsanitize="$sanitize")
warn=(-Wall -Wextra -Wpedantic -Werror)

# shellcheck disable=SC2086  # the compiler and pkg-config outputs are word lists
{
    $cc -std=c11 "${warn[@]}" "${san[@]}" -o "$tmp/consumer-c" "$src/consumer.c" $cflags $libs
    $cxx -std=c++11 "${warn[@]}" "${san[@]}" -o "$tmp/consumer-cpp" "$src/consumer.cpp" $cflags $libs
    $cc -std=c11 "${warn[@]}" "${san[@]}" -o "$tmp/consumer-c-static" "$src/consumer.c" $static_flags
    # `pkg-config --static` on kuiper.pc: every Libs.private flag must resolve (the linker still
    # picks libkuiper.so here; kuiper-static.pc is the way to libkuiper.a).
    $cc -std=c11 "${warn[@]}" "${san[@]}" -o "$tmp/consumer-c-private" "$src/consumer.c" \
        $(pkg-config --static --cflags --libs kuiper)
} || fail "could not build the consumer programs from pkg-config flags"

export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# The dynamic programs must resolve libkuiper from the installed tree; the static one not at all.
# (ldd's output is captured first: `ldd | grep -q` fails under pipefail when grep quits early.)
for p in consumer-c consumer-cpp; do
    deps=$(ldd "$tmp/$p")
    grep -q "libkuiper.so.0 => $libdir/" <<<"$deps" ||
        { echo "$deps" >&2; fail "$p does not load the installed libkuiper.so.0"; }
done
deps=$(ldd "$tmp/consumer-c-static")
! grep -q libkuiper <<<"$deps" || fail "consumer-c-static still needs libkuiper.so"

model=$data/models/stories260K/stories260K.bin
tokenizer=$data/models/stories260K/tok512.bin
reference=$data/reference/stories260K/greedy_p1.txt
if [ ! -f "$model" ] || [ ! -f "$tokenizer" ]; then
    echo "*** SKIP: test data '$model' not found (set KP_TEST_DATA to the shared/ folder) ***" >&2
    exit 77
fi
ref=()
[ -f "$reference" ] && ref=("$reference")
for p in consumer-c consumer-cpp consumer-c-static; do
    "$tmp/$p" "$model" "$tokenizer" "${ref[@]}" || fail "$p"
done
echo "consumer: OK (C, C++, C static)"
