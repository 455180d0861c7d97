/* Oniguruma-syntax regexes (as tokenizer.json files carry them) run on PCRE2 with UTF, UCP and
 * JIT. The pattern is translated first so that the classes mean what they mean to Oniguruma
 * in Hugging Face tokenizers:
 *   \s, \S   the White_Space property (PCRE2 10.42 also counts U+180E as \s; Oniguruma does not)
 *   \p{L}, \p{N} (and \pL, \pN, \P{L}, \P{N} outside classes)  extended with the Unicode 15-16
 *            letters and numbers that PCRE2's Unicode 14 tables lack
 *   \h, \H   hexadecimal digits (PCRE2's \h is horizontal space)
 * Not translated (none of the supported tokenizers uses them): \P{..} inside a class, \w/\d
 * differences for combining marks. Invalid UTF-8 in the subject never matches anything
 * (PCRE2_MATCH_INVALID_UTF), so such bytes end up between matches. */
#ifndef KP_TOK_REGEX_H
#define KP_TOK_REGEX_H

#include <stddef.h>

#include "../internal.h"

typedef struct kp_regex kp_regex;

/* Compiles `pat` (len bytes, Oniguruma syntax). A pattern PCRE2 rejects gives KP_ERR_FORMAT
 * with PCRE2's message and the offset. */
kp_status kp_regex_compile(const kp_allocator *a, const char *pat, size_t len, kp_regex **out);
void kp_regex_free(kp_regex *re);

/* One match position. */
typedef struct kp_span {
    size_t start, end;
} kp_span;

typedef struct kp_span_vec {
    kp_span *data;
    size_t len, cap;
    const kp_allocator *alloc;
} kp_span_vec;

kp_status kp_span_grow(kp_span_vec *v);

static inline kp_status kp_span_push(kp_span_vec *v, size_t start, size_t end)
{
    if (v->len == v->cap) {
        kp_status st = kp_span_grow(v);
        if (st)
            return st;
    }
    v->data[v->len].start = start;
    v->data[v->len].end = end;
    v->len++;
    return KP_OK;
}
void kp_span_vec_free(kp_span_vec *v);

/* Appends every non-overlapping match of `re` in s[0..n) to `out` in order, scanning like
 * Oniguruma's find_iter: after an empty match the search resumes one character later (empty
 * matches are not reported). */
kp_status kp_regex_find_all(const kp_regex *re, const char *s, size_t n, kp_span_vec *out);

#endif
