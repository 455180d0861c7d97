#!/usr/bin/env python3
"""ABI surface of libkuiper.so: its SONAME, that every dynamic symbol it defines starts with kp_
(visibility is hidden everywhere else), and that every KP_API function declared in the public
header is exported.

usage: check_exports.py LIBKUIPER_SO HEADER
"""
import re, subprocess, sys

# Symbols the linker defines in every shared object; they are not ours to hide.
LINKER_SYMBOLS = {"_init", "_fini", "_edata", "_end", "__bss_start"}
SONAME = "libkuiper.so.0"


def exported(lib):
    out = subprocess.run(["nm", "-D", "--defined-only", lib], check=True, capture_output=True,
                         text=True).stdout
    names = {line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip()}
    return names - LINKER_SYMBOLS


def soname(lib):
    out = subprocess.run(["readelf", "-d", lib], check=True, capture_output=True, text=True).stdout
    m = re.search(r"\(SONAME\).*\[(.*)\]", out)
    return m.group(1) if m else None


def declared(header):
    text = open(header, encoding="utf-8").read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", " ", text, flags=re.M)
    # KP_API <return type> name( ... ); the name is the last identifier before the '('.
    return set(re.findall(r"\bKP_API\b[^;(]*?\b([A-Za-z_]\w*)\s*\(", text))


def main():
    lib, header = sys.argv[1], sys.argv[2]
    failed = False
    so = soname(lib)
    if so != SONAME:
        print(f"abi: FAIL: SONAME is {so!r}, expected {SONAME}")
        failed = True
    else:
        print(f"abi: SONAME {so}")
    exp, decl = exported(lib), declared(header)
    stray = sorted(s for s in exp if not s.startswith("kp_"))
    if stray or not exp:
        print(f"abi: FAIL: {len(stray)} exported symbols lack the kp_ prefix: {' '.join(stray[:50])}")
        failed = True
    else:
        print(f"abi: all {len(exp)} exported symbols start with kp_")
    missing = sorted(decl - exp)
    if missing or not decl:
        print(f"abi: FAIL: declared KP_API in {header} but not exported: {' '.join(missing) or '(no KP_API found)'}")
        failed = True
    else:
        print(f"abi: all {len(decl)} KP_API functions of the header are exported")
    extra = sorted(exp - decl)
    if extra:
        print(f"abi: note: exported but not declared KP_API in the header: {' '.join(extra)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
