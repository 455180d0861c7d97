#!/usr/bin/env python3
"""libkuiper.so must load on a machine without CUDA: none of its NEEDED entries may be a CUDA
library (the CUDA backend is the separate module libkuiper-cuda.so, loaded at run time). When
the module was built, it must export its entry point and need no shared CUDA runtime either
(it links the runtime statically, so only the driver is needed, and only once it is loaded).

usage: check_needed.py LIBKUIPER_SO [LIBKUIPER_CUDA_SO]
"""
import re, subprocess, sys

CUDA = re.compile(r"^lib(cuda|cudart|cublas|cublasLt|nvrtc)\b")


def needed(lib):
    out = subprocess.run(["readelf", "-d", lib], check=True, capture_output=True, text=True).stdout
    return re.findall(r"\(NEEDED\).*\[(.*)\]", out)


def main():
    bad = [n for n in needed(sys.argv[1]) if CUDA.match(n)]
    ok = True
    if bad:
        print(f"FAIL: {sys.argv[1]} needs {', '.join(bad)}: it would not load without CUDA", file=sys.stderr)
        ok = False
    if len(sys.argv) > 2:
        mod = sys.argv[2]
        bad = [n for n in needed(mod) if CUDA.match(n)]
        if bad:
            print(f"FAIL: {mod} needs {', '.join(bad)} (the runtime should be linked statically)", file=sys.stderr)
            ok = False
        syms = subprocess.run(["nm", "-D", "--defined-only", mod], check=True, capture_output=True,
                              text=True).stdout.split()
        if "kp_cuda_module_get" not in syms:
            print(f"FAIL: {mod} does not export kp_cuda_module_get", file=sys.stderr)
            ok = False
    print(f"NEEDED of {sys.argv[1]}: {', '.join(needed(sys.argv[1]))}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
