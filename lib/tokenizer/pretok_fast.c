/* Hand-written matchers for the three pre-tokenizer regexes that nearly every byte-level BPE
 * vocabulary uses. Each follows its pattern's alternatives in order, with the backtracking that
 * the regex engine would do spelled out, so the matches are the same as kp_regex_find_all's
 * on the same pattern (tests/tokenizer checks this on the corpus and on random strings).
 *
 * Invalid UTF-8 bytes match nothing, as with PCRE2_MATCH_INVALID_UTF: they are skipped, and a
 * lookahead (?!\S) succeeds in front of them. */
#include <string.h>

#include "pretok.h"
#include "unicode.h"

static const char pat_llama3[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
                                 "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char pat_qwen2[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
                                "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/* llama.cpp spells the case-insensitive contractions with ASCII classes */
static const char pat_llama3_cpp[] = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?"
                                     "\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char pat_qwen2_cpp[] = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?"
                                    "\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char pat_gpt2[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

const char *kp_fast_pattern(kp_fast_kind k, int fold_long_s)
{
    switch (k) {
    case KP_FAST_LLAMA3: return fold_long_s ? pat_llama3 : pat_llama3_cpp;
    case KP_FAST_QWEN2: return fold_long_s ? pat_qwen2 : pat_qwen2_cpp;
    case KP_FAST_GPT2: return pat_gpt2;
    default: return NULL;
    }
}

kp_fast_kind kp_fast_detect(const char *pat, size_t n, int *fold_long_s)
{
    static const struct {
        const char *p;
        kp_fast_kind k;
        int fold;
    } known[] = {
        {pat_llama3, KP_FAST_LLAMA3, 1}, {pat_qwen2, KP_FAST_QWEN2, 1},     {pat_llama3_cpp, KP_FAST_LLAMA3, 0},
        {pat_qwen2_cpp, KP_FAST_QWEN2, 0}, {pat_gpt2, KP_FAST_GPT2, 0},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strlen(known[i].p) == n && memcmp(known[i].p, pat, n) == 0) {
            *fold_long_s = known[i].fold;
            return known[i].k;
        }
    }
    *fold_long_s = 0;
    return KP_FAST_NONE;
}

#define INVALID 0x80u /* class bit for a byte that starts no valid character */

/* Class of the character at s[i] (i < n) and its length. */
static inline unsigned cls_at(const unsigned char *s, size_t n, size_t i, size_t *len)
{
    unsigned c = s[i];
    if (c < 0x80) {
        *len = 1;
        return kp_uclass_ascii[c];
    }
    int32_t cp = kp_utf8_decode(s + i, n - i, len);
    return cp < 0 ? INVALID : kp_uclass_slow((uint32_t)cp);
}

/* 's 't 're 've 'm 'll 'd after an apostrophe at s[i]; returns the end or 0. `ci`: ASCII case
 * folding; `long_s`: U+017F also folds to s (Unicode case folding, as Oniguruma's (?i) does). */
static size_t contraction(const unsigned char *s, size_t n, size_t i, int ci, int long_s)
{
    if (i + 1 >= n)
        return 0;
    unsigned a = s[i + 1];
    if (ci && a >= 'A' && a <= 'Z')
        a += 32;
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return i + 2;
    if (long_s && a == 0xC5 && i + 2 < n && s[i + 2] == 0xBF)
        return i + 3;
    if (i + 2 >= n)
        return 0;
    unsigned b = s[i + 2];
    if (ci && b >= 'A' && b <= 'Z')
        b += 32;
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
        return i + 3;
    return 0;
}

/* End of the run of characters from i whose class has any of `any` and none of `none`. */
static inline size_t run_of(const unsigned char *s, size_t n, size_t i, unsigned any, unsigned none)
{
    while (i < n) {
        size_t l;
        unsigned k = cls_at(s, n, i, &l);
        if ((k & INVALID) || !(k & any) || (k & none))
            break;
        i += l;
    }
    return i;
}

/* End of the run of valid characters that are not \s, \p{L} or \p{N}. */
static inline size_t run_other(const unsigned char *s, size_t n, size_t i)
{
    while (i < n) {
        size_t l;
        unsigned k = cls_at(s, n, i, &l);
        if (k & (INVALID | KP_UC_S | KP_UC_L | KP_UC_N))
            break;
        i += l;
    }
    return i;
}

/* Whitespace alternatives shared by the patterns, at a \s character at i:
 *   crlf: \s*[\r\n]+  (the match ends after the last \r or \n of the run)
 *   then \s+(?!\S) and \s+. */
static size_t match_space(const unsigned char *s, size_t n, size_t i, int crlf)
{
    size_t j = i, last_nl = 0, last_start = i;
    int have_nl = 0;
    while (j < n) {
        size_t l;
        unsigned k = cls_at(s, n, j, &l);
        if ((k & INVALID) || !(k & KP_UC_S))
            break;
        if (k & KP_UC_CRLF) {
            have_nl = 1;
            last_nl = j + 1;
        }
        last_start = j;
        j += l;
    }
    if (crlf && have_nl)
        return last_nl;
    /* \s+(?!\S): the whole run if nothing or an invalid byte follows; else all but the last
     * character, if that leaves something */
    if (j >= n)
        return j;
    size_t l;
    if (cls_at(s, n, j, &l) & INVALID)
        return j;
    if (last_start > i)
        return last_start;
    return j; /* \s+ */
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,max_digits}|
 *  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t match_llama3(const unsigned char *s, size_t n, size_t i, unsigned k, size_t l, int max_digits,
                           int long_s)
{
    if (s[i] == '\'') {
        size_t e = contraction(s, n, i, 1, long_s);
        if (e)
            return e;
    }
    if (k & KP_UC_L)
        return run_of(s, n, i + l, KP_UC_L, 0);
    if (!(k & (KP_UC_N | KP_UC_CRLF)) && i + l < n) {
        size_t l2;
        unsigned k2 = cls_at(s, n, i + l, &l2);
        if (!(k2 & INVALID) && (k2 & KP_UC_L))
            return run_of(s, n, i + l + l2, KP_UC_L, 0);
    }
    if (k & KP_UC_N) {
        size_t j = i + l;
        for (int d = 1; d < max_digits && j < n; d++) {
            size_t l2;
            unsigned k2 = cls_at(s, n, j, &l2);
            if ((k2 & INVALID) || !(k2 & KP_UC_N))
                break;
            j += l2;
        }
        return j;
    }
    size_t j = s[i] == ' ' ? i + 1 : i;
    size_t e = run_other(s, n, j);
    if (e > j) {
        while (e < n && (s[e] == '\r' || s[e] == '\n'))
            e++;
        return e;
    }
    /* only \s is left */
    return match_space(s, n, i, 1);
}

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static size_t match_gpt2(const unsigned char *s, size_t n, size_t i, unsigned k, size_t l)
{
    if (s[i] == '\'') {
        size_t e = contraction(s, n, i, 0, 0);
        if (e)
            return e;
    }
    size_t j = i;
    unsigned kj = k;
    size_t lj = l;
    if (s[i] == ' ' && i + 1 < n) {
        j = i + 1;
        kj = cls_at(s, n, j, &lj);
        if (kj & INVALID)
            j = i, kj = k, lj = l;
    }
    if (!(kj & INVALID)) {
        if (kj & KP_UC_L)
            return run_of(s, n, j + lj, KP_UC_L, 0);
        if (kj & KP_UC_N)
            return run_of(s, n, j + lj, KP_UC_N, 0);
        if (!(kj & KP_UC_S))
            return run_other(s, n, j);
    }
    return match_space(s, n, i, 0);
}

kp_status kp_fast_find_all(kp_fast_kind kind, int fold_long_s, const char *text, size_t n, kp_span_vec *out)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < n) {
        size_t l;
        unsigned k = cls_at(s, n, i, &l);
        if (k & INVALID) {
            i++;
            continue;
        }
        size_t e;
        switch (kind) {
        case KP_FAST_LLAMA3: e = match_llama3(s, n, i, k, l, 3, fold_long_s); break;
        case KP_FAST_QWEN2: e = match_llama3(s, n, i, k, l, 1, fold_long_s); break;
        default: e = match_gpt2(s, n, i, k, l); break;
        }
        kp_status st = kp_span_push(out, i, e);
        if (st)
            return st;
        i = e;
    }
    return KP_OK;
}
