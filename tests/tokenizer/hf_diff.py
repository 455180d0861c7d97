#!/usr/bin/env python3
"""Differential test of kuiper-tokenize against Hugging Face `tokenizers` on random strings.

For each vocabulary in ../shared/tokenizers (llama3, llama3_1, qwen3, llama2-sp, tok512-sp) it
generates COUNT strings (random Unicode from many scripts, random bytes read as UTF-8 with
U+FFFD for what is not, whitespace runs, fragments of the vocabulary's special tokens,
word/number/punctuation mixes, and longer strings mixing them all), encodes them with both in
the three modes conformance.py uses (default; --add-special; --no-parse-special = Hugging
Face's encode_special_tokens) and reports every difference. Strings that ever differed are kept
in hf_diff_regressions.jsonl beside this script and checked first on every run (--record adds
new ones there).

    python3 tests/tokenizer/hf_diff.py --build build --count 2000 [--vocab llama3] [--seed N]

Exit status 0 when there is no difference. Needs `pip install tokenizers`."""
import argparse, json, os, random, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
VOCABS = ["llama3", "llama3_1", "qwen3", "llama2-sp", "tok512-sp"]
MODES = [("default", []), ("add-special", ["--add-special"]), ("no-parse-special", ["--no-parse-special"])]
REGRESSIONS = os.path.join(HERE, "hf_diff_regressions.jsonl")

RANGES = [  # (weight, lo, hi): scripts, marks, spaces, symbols, emoji, astral, private use
    (30, 0x20, 0x7E), (4, 0x00, 0x1F), (6, 0xA0, 0xFF), (3, 0x100, 0x24F), (2, 0x370, 0x3FF), (3, 0x400, 0x4FF),
    (2, 0x590, 0x5FF), (2, 0x600, 0x6FF), (2, 0x900, 0x97F), (2, 0xE00, 0xE7F), (3, 0x300, 0x36F),
    (2, 0x1100, 0x11FF), (4, 0x2000, 0x206F), (2, 0x2100, 0x23FF), (1, 0x2460, 0x24FF), (2, 0x3000, 0x303F),
    (2, 0x3040, 0x30FF), (6, 0x4E00, 0x9FFF), (3, 0xAC00, 0xD7A3), (1, 0xE000, 0xF8FF), (1, 0xFB00, 0xFB4F),
    (2, 0xFE00, 0xFE0F), (2, 0xFF00, 0xFFEF), (1, 0xFFF0, 0xFFFF), (4, 0x1F300, 0x1FAFF), (1, 0x1D400, 0x1D7FF),
    (1, 0x10000, 0x10FFFF),
]
RW = [w for w, _, _ in RANGES]
WORDS = ["the", "The", "THE", "hello", "Hello", "world", "don't", "I'm", "we'll", "they've", "she'd", "it's",
         "IT'S", "you're", "café", "naïve", "über", "日本語", "中文", "한국어", "Привет", "مرحبا", "שלום",
         "नमस्ते", "ไทย", "emoji🙂", "👍🏽", "🇫🇷", "a", "I", "x", "http://x.y/z?q=1", "foo_bar", "fooBar",
         "e.g.", "1,000", "3.14", "-42", "0x1F", "1234567", "2024-01-01"]
PUNCT = list(".,;:!?'\"()[]{}<>-_=+*/\\|@#$%^&~`") + ["...", "--", "''", "``", "’", "“", "”", "…", "—"]
SPACES = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\r", "\u00a0", "\u3000", "\u2009", "\u200b", "\v", "\f",
          " \n", "\n ", "\t\t", " " * 8]


def rand_char(r):
    _, lo, hi = r.choices(RANGES, RW)[0]
    c = r.randint(lo, hi)
    if 0xD800 <= c <= 0xDFFF:  # no lone surrogates: neither side can take them as text
        c = 0xFFFD
    return chr(c)


def gen(r, specials):
    kind = r.randrange(7)
    if kind == 6:  # a longer string mixing the other kinds
        return "".join(gen(r, specials)[0] for _ in range(r.randint(2, 8))), "long"
    n = r.choice((0, 1, 2, 3, 5, 8, 13, 21, 40)) if kind != 5 else r.randint(1, 12)
    if kind == 0:  # random Unicode
        return "".join(rand_char(r) for _ in range(n)), "unicode"
    if kind == 1:  # random bytes, as UTF-8 text with replacement characters
        b = bytes(r.randrange(256) if r.random() < 0.5 else r.randrange(0x20, 0x7F) for _ in range(n * 2))
        return b.decode("utf-8", "replace"), "bytes"
    if kind == 2:  # whitespace runs between words
        return "".join(r.choice(SPACES) + (r.choice(WORDS) if r.random() < 0.6 else "") for _ in range(n)), "space"
    if kind == 3 and specials:  # fragments of special tokens
        out = []
        for _ in range(n or 1):
            s = r.choice(specials)
            i, j = sorted((r.randint(0, len(s)), r.randint(0, len(s))))
            frag = s if r.random() < 0.5 else s[i:j] if r.random() < 0.5 else s[:j] + s[i:]
            out.append(frag + (r.choice(SPACES) if r.random() < 0.3 else "") + (r.choice(WORDS) if r.random() < 0.3 else ""))
        return "".join(out), "special"
    # words, numbers and punctuation
    parts = []
    for _ in range(n):
        x = r.random()
        parts.append(r.choice(WORDS) if x < 0.5 else r.choice(PUNCT) if x < 0.7 else str(r.randrange(10 ** r.randint(1, 9)))
                     if x < 0.8 else rand_char(r))
        parts.append(r.choice(SPACES) if r.random() < 0.3 else " " if r.random() < 0.7 else "")
    return "".join(parts), "mixed"


def find_tool(build):
    for p in (os.path.join(build, "examples", "kuiper-tokenize"), os.path.join(build, "kuiper-tokenize")):
        if os.access(p, os.X_OK):
            return p
    sys.exit(f"hf_diff: no kuiper-tokenize under {build}")


def run_ours(tool, path, flags, texts):
    inp = "".join(json.dumps({"id": str(i), "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(texts))
    p = subprocess.run([tool, "-m", path] + flags, input=inp.encode(), capture_output=True, timeout=3600)
    got = {}
    for line in p.stdout.decode("utf-8", "replace").splitlines():
        j = json.loads(line)
        got[int(j["id"])] = j.get("ids", ("error", j.get("error")))
    return got


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--shared", default=os.environ.get("KP_TEST_DATA") or os.path.join(REPO, "..", "shared"))
    ap.add_argument("--count", type=int, default=2000, help="random strings per vocabulary")
    ap.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    ap.add_argument("--vocab", action="append", choices=VOCABS)
    ap.add_argument("--record", action="store_true", help=f"append new differing strings to {os.path.basename(REGRESSIONS)}")
    a = ap.parse_args()
    try:
        from tokenizers import Tokenizer, __version__ as hf_version
    except ImportError:
        sys.exit("hf_diff: needs the Hugging Face tokenizers package (pip install tokenizers)")
    seed = a.seed if a.seed is not None else random.SystemRandom().randrange(1 << 31)
    tool = find_tool(a.build)
    regress = [json.loads(l) for l in open(REGRESSIONS, encoding="utf-8")] if os.path.exists(REGRESSIONS) else []
    print(f"hf_diff: tokenizers {hf_version}, seed {seed}, {a.count} strings per vocabulary, "
          f"{len(regress)} regression strings")
    total_diff, new = 0, []
    for v in a.vocab or VOCABS:
        path = os.path.join(a.shared, "tokenizers", v, "tokenizer.json")
        if not os.path.exists(path):
            print(f"SKIP {v}: {path} not found")
            continue
        hf = Tokenizer.from_file(path)
        specials = [t.content for t in hf.get_added_tokens_decoder().values()]
        r = random.Random(f"{seed}-{v}")
        texts = [c["text"] for c in regress if c["vocab"] == v] + [t for t, _ in (gen(r, specials) for _ in range(a.count))]
        t0 = time.time()
        n_diff = 0
        for mode, flags in MODES:
            hf.encode_special_tokens = mode == "no-parse-special"
            want = [e.ids for e in hf.encode_batch(texts, add_special_tokens=mode == "add-special")]
            got = run_ours(tool, path, flags, texts)
            for i, t in enumerate(texts):
                if got.get(i) != want[i]:
                    n_diff += 1
                    if n_diff <= 20:
                        print(f"DIFF {v} {mode}: {json.dumps(t, ensure_ascii=False)}\n  hf   {want[i]}\n  ours {got.get(i)}")
                    if not any(c["vocab"] == v and c["text"] == t for c in regress + new):
                        new.append({"vocab": v, "text": t, "mode": mode})
        hf.encode_special_tokens = False
        print(f"{v}: {len(texts)} strings x {len(MODES)} modes, {n_diff} differences ({time.time() - t0:.1f}s)")
        total_diff += n_diff
    if new and a.record:
        with open(REGRESSIONS, "a", encoding="utf-8") as f:
            for c in new:
                f.write(json.dumps(c, ensure_ascii=False) + "\n")
        print(f"recorded {len(new)} new regression strings in {REGRESSIONS}")
    print(f"hf_diff: {total_diff} differences")
    return 1 if total_diff else 0


if __name__ == "__main__":
    sys.exit(main())
