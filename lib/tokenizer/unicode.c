/* Character classes and normalization forms over utf8proc. utf8proc_map/utf8proc_NFC allocate
 * with malloc, so only its caller-buffer functions are used here. */
#include "unicode.h"

#include <string.h>
#include <utf8proc.h>

#define L_ KP_UC_L
#define N_ KP_UC_N
#define S_ KP_UC_S
#define R_ (KP_UC_S | KP_UC_CRLF)
const uint8_t kp_uclass_ascii[128] = {
    0,  0,  0,  0,  0,  0,  0,  0,  0,  S_, R_, S_, S_, R_, 0,  0,  /* 0x00 */
    0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0x10 */
    S_, 0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0x20 */
    N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, 0,  0,  0,  0,  0,  0,  /* 0x30 */
    0,  L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, /* 0x40 */
    L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, 0,  0,  0,  0,  0,  /* 0x50 */
    0,  L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, /* 0x60 */
    L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, 0,  0,  0,  0,  0,  /* 0x70 */
};
#undef L_
#undef N_
#undef S_
#undef R_

/* Measured against Hugging Face tokenizers 0.23 (Oniguruma, Unicode 16.0) over every code point:
 * these are the letters and numbers it knows that Unicode 14.0 leaves unassigned. */
const kp_uc_range kp_uc_extra[] = {
    {0x01C89, 0x01C8A, KP_UC_L}, {0x0A7CB, 0x0A7CD, KP_UC_L}, {0x0A7DA, 0x0A7DC, KP_UC_L},
    {0x105C0, 0x105F3, KP_UC_L}, {0x10D40, 0x10D49, KP_UC_N}, {0x10D4A, 0x10D65, KP_UC_L},
    {0x10D6F, 0x10D85, KP_UC_L}, {0x10EC2, 0x10EC4, KP_UC_L}, {0x1123F, 0x11240, KP_UC_L},
    {0x11380, 0x11389, KP_UC_L}, {0x1138B, 0x1138B, KP_UC_L}, {0x1138E, 0x1138E, KP_UC_L},
    {0x11390, 0x113B5, KP_UC_L}, {0x113B7, 0x113B7, KP_UC_L}, {0x113D1, 0x113D1, KP_UC_L},
    {0x113D3, 0x113D3, KP_UC_L}, {0x116D0, 0x116E3, KP_UC_N}, {0x11BC0, 0x11BE0, KP_UC_L},
    {0x11BF0, 0x11BF9, KP_UC_N}, {0x11F02, 0x11F02, KP_UC_L}, {0x11F04, 0x11F10, KP_UC_L},
    {0x11F12, 0x11F33, KP_UC_L}, {0x11F50, 0x11F59, KP_UC_N}, {0x1342F, 0x1342F, KP_UC_L},
    {0x13441, 0x13446, KP_UC_L}, {0x13460, 0x143FA, KP_UC_L}, {0x16100, 0x1611D, KP_UC_L},
    {0x16130, 0x16139, KP_UC_N}, {0x16D40, 0x16D6C, KP_UC_L}, {0x16D70, 0x16D79, KP_UC_N},
    {0x18CFF, 0x18CFF, KP_UC_L}, {0x1B132, 0x1B132, KP_UC_L}, {0x1B155, 0x1B155, KP_UC_L},
    {0x1CCF0, 0x1CCF9, KP_UC_N}, {0x1D2C0, 0x1D2D3, KP_UC_N}, {0x1DF25, 0x1DF2A, KP_UC_L},
    {0x1E030, 0x1E06D, KP_UC_L}, {0x1E4D0, 0x1E4EB, KP_UC_L}, {0x1E4F0, 0x1E4F9, KP_UC_N},
    {0x1E5D0, 0x1E5ED, KP_UC_L}, {0x1E5F0, 0x1E5F0, KP_UC_L}, {0x1E5F1, 0x1E5FA, KP_UC_N},
    {0x2B739, 0x2B739, KP_UC_L}, {0x2EBF0, 0x2EE5D, KP_UC_L}, {0x31350, 0x323AF, KP_UC_L},
};
const size_t kp_uc_n_extra = sizeof kp_uc_extra / sizeof kp_uc_extra[0];

static unsigned extra_class(uint32_t cp)
{
    size_t lo = 0, hi = kp_uc_n_extra;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < kp_uc_extra[mid].lo)
            hi = mid;
        else if (cp > kp_uc_extra[mid].hi)
            lo = mid + 1;
        else
            return kp_uc_extra[mid].cls;
    }
    return 0;
}

unsigned kp_uclass_slow(uint32_t cp)
{
    if (cp == 0x85)
        return KP_UC_S;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
        return KP_UC_L;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
        return KP_UC_N;
    case UTF8PROC_CATEGORY_ZS: /* every Z* character has the White_Space property */
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
        return KP_UC_S;
    case UTF8PROC_CATEGORY_CN:
        return extra_class(cp);
    default:
        return 0;
    }
}

size_t kp_utf8_encode(uint32_t cp, char *o)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t kp_utf8_valid_prefix(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        size_t l;
        if (kp_utf8_decode((const unsigned char *)s + i, n - i, &l) < 0)
            return i;
        i += l;
    }
    return n;
}

/* Normalizes one valid UTF-8 run through a code point buffer. */
static kp_status norm_run(utf8proc_option_t opt, const char *s, size_t n, kp_buf *out, utf8proc_int32_t **buf,
                          size_t *cap)
{
    for (;;) {
        utf8proc_ssize_t r =
            utf8proc_decompose((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, *buf, (utf8proc_ssize_t)*cap, opt);
        if (r < 0)
            return kp_fail(KP_ERR_INTERNAL, "unicode normalization failed: %s", utf8proc_errmsg(r));
        if ((size_t)r <= *cap) {
            r = utf8proc_normalize_utf32(*buf, r, opt);
            if (r < 0)
                return kp_fail(KP_ERR_INTERNAL, "unicode normalization failed: %s", utf8proc_errmsg(r));
            char tmp[256];
            size_t t = 0;
            for (utf8proc_ssize_t i = 0; i < r; i++) {
                if (t + 4 > sizeof tmp) {
                    kp_status st = kp_buf_append(out, tmp, t);
                    if (st)
                        return st;
                    t = 0;
                }
                t += kp_utf8_encode((uint32_t)(*buf)[i], tmp + t);
            }
            return kp_buf_append(out, tmp, t);
        }
        size_t nc = (size_t)r + 16;
        utf8proc_int32_t *nb = kp_realloc(out->alloc, *buf, *cap * sizeof **buf, nc * sizeof **buf);
        if (!nb)
            return KP_ERR_OUT_OF_MEMORY;
        *buf = nb;
        *cap = nc;
    }
}

/* Below U+0300 every character is its own NFC form and never combines with what precedes it
 * (all second elements of canonical compositions are U+0300 or above), so NFC only has to
 * look at the stretches that contain higher code points. */
static int nfc_boundary(const unsigned char *p, size_t n)
{
    if (p[0] < 0x80)
        return 1;
    size_t l;
    int32_t cp = kp_utf8_decode(p, n, &l);
    return cp >= 0 && cp < 0x300;
}

kp_status kp_unicode_normalize(kp_nf nf, const char *s, size_t n, kp_buf *out)
{
    utf8proc_option_t opt = UTF8PROC_STABLE;
    switch (nf) {
    case KP_NF_NFC: opt |= UTF8PROC_COMPOSE; break;
    case KP_NF_NFD: opt |= UTF8PROC_DECOMPOSE; break;
    case KP_NF_NFKC: opt |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    case KP_NF_NFKD: opt |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
    }
    const unsigned char *u = (const unsigned char *)s;
    utf8proc_int32_t *buf = NULL;
    size_t cap = 0;
    kp_status st = KP_OK;
    size_t i = 0;
    while (i < n && !st) {
        /* copy what needs no work */
        size_t j = i;
        if (nf == KP_NF_NFC) {
            while (j < n && nfc_boundary(u + j, n - j)) {
                size_t l = 1;
                if (u[j] >= 0x80)
                    kp_utf8_decode(u + j, n - j, &l);
                /* the last boundary character may start a composition with what follows */
                if (j + l < n && !nfc_boundary(u + j + l, n - j - l))
                    break;
                j += l;
            }
        } else {
            while (j < n && u[j] < 0x80 && (nf == KP_NF_NFD || nf == KP_NF_NFKD || j + 1 >= n || u[j + 1] < 0x80))
                j++;
        }
        if (j > i && (st = kp_buf_append(out, s + i, j - i)))
            break;
        i = j;
        if (i >= n)
            break;
        /* an invalid byte passes through */
        size_t l;
        int32_t cp = kp_utf8_decode(u + i, n - i, &l);
        if (cp < 0) {
            st = kp_buf_append(out, s + i, 1);
            i++;
            continue;
        }
        /* U+11A7 passes through on its own: utf8proc composes it into a preceding LV syllable
         * as if it were a trailing consonant (it is the base of those, not one), and so drops
         * it. It has no decomposition and composes with nothing, so the split is exact. */
        if (cp == 0x11A7) {
            st = kp_buf_append(out, s + i, l);
            i += l;
            continue;
        }
        /* a run of valid characters up to the next safe boundary or invalid byte */
        j = i + l;
        while (j < n) {
            cp = kp_utf8_decode(u + j, n - j, &l);
            if (cp < 0 || cp == 0x11A7)
                break;
            if (nf == KP_NF_NFC ? nfc_boundary(u + j, n - j) : u[j] < 0x80)
                break;
            j += l;
        }
        st = norm_run(opt, s + i, j - i, out, &buf, &cap);
        i = j;
    }
    kp_dealloc(out->alloc, buf, cap * sizeof *buf);
    return st;
}

kp_status kp_unicode_lower(const char *s, size_t n, kp_buf *out)
{
    const unsigned char *u = (const unsigned char *)s;
    char tmp[260];
    size_t t = 0;
    for (size_t i = 0; i < n;) {
        size_t l;
        int32_t cp = kp_utf8_decode(u + i, n - i, &l);
        if (cp < 0) {
            tmp[t++] = s[i];
        } else {
            t += kp_utf8_encode((uint32_t)utf8proc_tolower(cp), tmp + t);
        }
        i += l;
        if (t > sizeof tmp - 8) {
            kp_status st = kp_buf_append(out, tmp, t);
            if (st)
                return st;
            t = 0;
        }
    }
    return kp_buf_append(out, tmp, t);
}
