#include "minijson.h"

#include <string.h>

void mj_ws(mj_cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n'))
        c->p++;
}

int mj_lit(mj_cursor *c, const char *w)
{
    size_t k = strlen(w);
    if ((size_t)(c->end - c->p) < k || memcmp(c->p, w, k) != 0)
        return 0;
    c->p += k;
    return 1;
}

/* Advances digit by digit, so a failure leaves the cursor on the offending byte. */
static int hex4(mj_cursor *c, unsigned *v)
{
    *v = 0;
    for (int k = 0; k < 4; k++, c->p++) {
        if (c->p >= c->end)
            return 0;
        char ch = *c->p;
        unsigned d = ch >= '0' && ch <= '9'   ? (unsigned)(ch - '0')
                     : ch >= 'a' && ch <= 'f' ? (unsigned)(ch - 'a' + 10)
                     : ch >= 'A' && ch <= 'F' ? (unsigned)(ch - 'A' + 10)
                                              : 16u;
        if (d == 16)
            return 0;
        *v = *v * 16 + d;
    }
    return 1;
}

static char *put_utf8(char *w, unsigned u)
{
    if (u < 0x80) {
        *w++ = (char)u;
    } else if (u < 0x800) {
        *w++ = (char)(0xc0 | (u >> 6));
        *w++ = (char)(0x80 | (u & 0x3f));
    } else if (u < 0x10000) {
        *w++ = (char)(0xe0 | (u >> 12));
        *w++ = (char)(0x80 | ((u >> 6) & 0x3f));
        *w++ = (char)(0x80 | (u & 0x3f));
    } else {
        *w++ = (char)(0xf0 | (u >> 18));
        *w++ = (char)(0x80 | ((u >> 12) & 0x3f));
        *w++ = (char)(0x80 | ((u >> 6) & 0x3f));
        *w++ = (char)(0x80 | (u & 0x3f));
    }
    return w;
}

/* Every byte is read before its decoded form is written, which is what lets `out` overlay the
 * source (see the header). */
long mj_string(mj_cursor *c, char *out)
{
    if (c->p >= c->end || *c->p != '"')
        return -1;
    c->p++;
    long o = 0;
    char u8[4];
    while (c->p < c->end) {
        char ch = *c->p++;
        if (ch == '"') {
            if (out)
                out[o] = '\0';
            return o;
        }
        if ((unsigned char)ch < 0x20 && !c->lenient)
            return -1;
        if (ch != '\\') {
            if (out)
                out[o] = ch;
            o++;
            continue;
        }
        if (c->p >= c->end)
            return -1;
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t", *hit = *c->p ? strchr(from, *c->p) : NULL;
        if (hit) {
            c->p++;
            if (out)
                out[o] = to[hit - from];
            o++;
            continue;
        }
        unsigned cp, lo;
        if (*c->p++ != 'u' || !hex4(c, &cp))
            return -1;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            const char *after_high = c->p;
            if (mj_lit(c, "\\u") && hex4(c, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (c->lenient) {
                c->p = after_high;
                cp = 0xFFFD;
            } else {
                return -1;
            }
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            if (!c->lenient)
                return -1;
            cp = 0xFFFD;
        }
        size_t n = (size_t)(put_utf8(u8, cp) - u8);
        if (out)
            memcpy(out + o, u8, n);
        o += (long)n;
    }
    return -1;
}

/* A NUL byte does not end a bare word: lines from getline may carry one. */
static int is_end_of_word(char ch) { return ch && strchr(",}] \t\r\n", ch); }

int mj_skip_value(mj_cursor *c, int depth)
{
    mj_ws(c);
    if (c->p >= c->end || depth > 64)
        return 0;
    char open = *c->p;
    if (open == '"')
        return mj_string(c, NULL) >= 0;
    if (open == '{' || open == '[') {
        const char *close = open == '{' ? "}" : "]";
        c->p++;
        mj_ws(c);
        if (mj_lit(c, close))
            return 1;
        for (;;) {
            if (open == '{') {
                mj_ws(c);
                if (mj_string(c, NULL) < 0)
                    return 0;
                mj_ws(c);
                if (!mj_lit(c, ":"))
                    return 0;
            }
            if (!mj_skip_value(c, depth + 1))
                return 0;
            mj_ws(c);
            if (mj_lit(c, ","))
                continue;
            return mj_lit(c, close);
        }
    }
    if (!c->lenient && (mj_lit(c, "true") || mj_lit(c, "false") || mj_lit(c, "null")))
        return 1;
    const char *s = c->p;
    while (c->p < c->end && (c->lenient ? !is_end_of_word(*c->p) : *c->p && strchr("+-0123456789.eE", *c->p)))
        c->p++;
    return c->p > s;
}

/* Length of the valid UTF-8 sequence at `q` (1-4), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *q)
{
    size_t n = q[0] < 0x80 ? 1 : (q[0] & 0xe0) == 0xc0 ? 2 : (q[0] & 0xf0) == 0xe0 ? 3 : (q[0] & 0xf8) == 0xf0 ? 4 : 0;
    for (size_t k = 1; k < n; k++)
        if ((q[k] & 0xc0) != 0x80)
            return 0;
    if ((n == 2 && q[0] < 0xc2) || (n == 3 && q[0] == 0xe0 && q[1] < 0xa0) ||
        (n == 3 && q[0] == 0xed && q[1] >= 0xa0) || (n == 4 && q[0] == 0xf0 && q[1] < 0x90) ||
        (n == 4 && (q[0] > 0xf4 || (q[0] == 0xf4 && q[1] >= 0x90))))
        return 0; /* overlong, surrogate or beyond U+10FFFF */
    return n;
}

int mj_put_string(FILE *f, const char *s)
{
    if (fputc('"', f) == EOF)
        return -1;
    for (const unsigned char *q = (const unsigned char *)s; *q;) {
        size_t n = utf8_len(q);
        int rc;
        if (n == 0)
            rc = fputs("\\ufffd", f);
        else if (*q == '"' || *q == '\\')
            rc = fprintf(f, "\\%c", *q);
        else if (*q == '\n')
            rc = fputs("\\n", f);
        else if (*q == '\t')
            rc = fputs("\\t", f);
        else if (*q < 0x20 || *q == 0x7f)
            rc = fprintf(f, "\\u%04x", *q);
        else
            rc = fwrite(q, 1, n, f) == n ? 0 : -1;
        if (rc < 0)
            return -1;
        q += n ? n : 1;
    }
    return fputc('"', f) == EOF ? -1 : 0;
}
