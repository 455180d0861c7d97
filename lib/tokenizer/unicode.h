/* UTF-8 decoding, the character classes that pre-tokenizer regexes use (\p{L}, \p{N}, \s), and
 * Unicode normalization forms, all over utf8proc without its allocating entry points. */
#ifndef KP_TOK_UNICODE_H
#define KP_TOK_UNICODE_H

#include <stddef.h>
#include <stdint.h>

#include "../internal.h"

/* Class bits of one code point, as Hugging Face's Oniguruma sees them (Unicode 16.0):
 * L = general category L*, N = N*, S = \s (the White_Space property, which includes U+0085
 * and excludes U+FEFF and U+180E). */
enum {
    KP_UC_L = 1,
    KP_UC_N = 2,
    KP_UC_S = 4,
    KP_UC_CRLF = 8 /* \r or \n */
};

/* Decodes one UTF-8 sequence at s[0..n) (n >= 1). Returns the code point and sets *len; for
 * bytes that do not start a valid, shortest-form sequence, returns -1 with *len = 1. */
static inline int32_t kp_utf8_decode(const unsigned char *s, size_t n, size_t *len)
{
    unsigned c = s[0];
    if (c < 0x80) {
        *len = 1;
        return (int32_t)c;
    }
    *len = 1;
    if (c < 0xC2)
        return -1;
    if (c < 0xE0) {
        if (n < 2 || (s[1] & 0xC0) != 0x80)
            return -1;
        *len = 2;
        return (int32_t)(((c & 0x1F) << 6) | (s[1] & 0x3F));
    }
    if (c < 0xF0) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return -1;
        uint32_t cp = ((c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        if (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))
            return -1;
        *len = 3;
        return (int32_t)cp;
    }
    if (c < 0xF5) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return -1;
        uint32_t cp = ((c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) | ((uint32_t)(s[2] & 0x3F) << 6) |
                      (s[3] & 0x3F);
        if (cp < 0x10000 || cp > 0x10FFFF)
            return -1;
        *len = 4;
        return (int32_t)cp;
    }
    return -1;
}

/* Writes the UTF-8 form of `cp` (valid scalar value) to o; returns the byte count. */
size_t kp_utf8_encode(uint32_t cp, char *o);

/* Length of the valid UTF-8 prefix of s[0..n). */
size_t kp_utf8_valid_prefix(const char *s, size_t n);

extern const uint8_t kp_uclass_ascii[128];
unsigned kp_uclass_slow(uint32_t cp);

/* KP_UC_* bits of `cp`. */
static inline unsigned kp_uclass(uint32_t cp)
{
    return cp < 128 ? kp_uclass_ascii[cp] : kp_uclass_slow(cp);
}

/* Ranges of code points that are letters or numbers in Unicode 16.0 but unassigned in the
 * Unicode 14.0 tables that PCRE2 10.42 ships; the regex translator adds them to \p{L}/\p{N}. */
typedef struct kp_uc_range {
    uint32_t lo, hi;
    unsigned cls;
} kp_uc_range;
extern const kp_uc_range kp_uc_extra[];
extern const size_t kp_uc_n_extra;

typedef enum kp_nf {
    KP_NF_NFC = 1,
    KP_NF_NFD,
    KP_NF_NFKC,
    KP_NF_NFKD
} kp_nf;

/* Appends the normalization form `nf` of s[0..n) to `out`. Invalid UTF-8 bytes are copied
 * through unchanged and act as boundaries. */
kp_status kp_unicode_normalize(kp_nf nf, const char *s, size_t n, kp_buf *out);

/* Simple lowercase mapping of every code point (invalid bytes copied). */
kp_status kp_unicode_lower(const char *s, size_t n, kp_buf *out);

#endif
