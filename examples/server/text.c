/* UTF-8 cleaning and stop strings for kuiper-server's streamed text. */
#include <stdlib.h>
#include <string.h>

#include "server.h"

int ks_buf_reserve(ks_buf *b, size_t n)
{
    if (n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    return 0;
}

int ks_buf_add(ks_buf *b, const char *s, size_t n)
{
    if (ks_buf_reserve(b, b->len + n))
        return -1;
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

void ks_buf_free(ks_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* Length of the valid sequence at s (1..4), 0 if it is cut off by the end, -1 if invalid. */
static int seq_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    int len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, min = 0x10000;
    else
        return -1;
    unsigned cp = c & (0x3f >> (len - 1));
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n)
            return 0;
        if ((s[i] & 0xc0) != 0x80)
            return -1;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    return len;
}

int ks_utf8_clean(const char *s, size_t n, int final, ks_buf *out)
{
    static const char fffd[] = "\xef\xbf\xbd";
    out->len = 0;
    if (ks_buf_add(out, "", 0))
        return -1;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        int l = seq_len(u + i, n - i);
        if (l == 0 && !final)
            break; /* the rest of this character comes with the next token */
        if (l <= 0) {
            if (ks_buf_add(out, fffd, 3))
                return -1;
            i++;
            continue;
        }
        if (ks_buf_add(out, s + i, (size_t)l))
            return -1;
        i += (size_t)l;
    }
    return 0;
}

int ks_stop_scan(const char *t, size_t n, char *const *stop, size_t n_stop, size_t *at, size_t *safe)
{
    int found = -1;
    size_t first = n;
    for (size_t k = 0; k < n_stop; k++) {
        size_t sl = strlen(stop[k]);
        if (!sl || sl > n)
            continue;
        for (size_t i = 0; i + sl <= n && i < first; i++)
            if (!memcmp(t + i, stop[k], sl)) {
                first = i;
                found = (int)k;
                break;
            }
    }
    if (found >= 0) {
        *at = *safe = first;
        return found;
    }
    /* hold back the longest tail that a stop string starts with */
    size_t hold = 0;
    for (size_t k = 0; k < n_stop; k++) {
        size_t sl = strlen(stop[k]);
        if (!sl)
            continue;
        for (size_t h = sl > n ? n : sl - 1; h > hold; h--)
            if (!memcmp(t + n - h, stop[k], h)) {
                hold = h;
                break;
            }
    }
    *at = n;
    *safe = n - hold;
    return -1;
}
