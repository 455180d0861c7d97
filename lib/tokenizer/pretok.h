/* Normalizers and pre-tokenizers of the Hugging Face pipeline, as steps that a loader fills in
 * and the encoder runs over each stretch of text between added tokens. */
#ifndef KP_TOK_PRETOK_H
#define KP_TOK_PRETOK_H

#include "regex.h"
#include "unicode.h"

/* ---- regex fast paths */

typedef enum kp_fast_kind {
    KP_FAST_NONE = 0,
    KP_FAST_LLAMA3, /* Llama 3: \p{N}{1,3} */
    KP_FAST_QWEN2,  /* Qwen2: \p{N} */
    KP_FAST_GPT2    /* GPT-2 / ByteLevel(use_regex) */
} kp_fast_kind;

/* Which fast path, if any, implements `pat` exactly (by string comparison). fold_long_s says
 * whether the contractions are case-insensitive the Unicode way ((?i:...), where U+017F folds
 * to 's') rather than with ASCII classes as llama.cpp writes them. */
kp_fast_kind kp_fast_detect(const char *pat, size_t n, int *fold_long_s);
/* The pattern text a fast path implements. */
const char *kp_fast_pattern(kp_fast_kind k, int fold_long_s);
/* Same matches as kp_regex_find_all on kp_fast_pattern(k, fold_long_s). */
kp_status kp_fast_find_all(kp_fast_kind k, int fold_long_s, const char *s, size_t n, kp_span_vec *out);

/* ---- normalizers */

typedef enum kp_norm_kind {
    KP_NORM_NF = 1,    /* nf */
    KP_NORM_LOWER,
    KP_NORM_PREPEND,   /* s1, when the text is not empty */
    KP_NORM_REPLACE,   /* every match of s1 (literal) or re -> s2 */
    KP_NORM_STRIP      /* left/right: remove leading/trailing White_Space */
} kp_norm_kind;

typedef struct kp_norm_step {
    kp_norm_kind kind;
    kp_nf nf;
    char *s1, *s2;
    size_t n1, n2;
    kp_regex *re;
    int left, right;
} kp_norm_step;

/* Applies the steps in order to s[0..n). The result (*out, *out_len) is s itself when there
 * are no steps, else it lives in one of the two work buffers. */
kp_status kp_normalize(const kp_norm_step *steps, int n_steps, const char *s, size_t n, kp_buf *a, kp_buf *b,
                       const char **out, size_t *out_len);
void kp_norm_step_free(const kp_allocator *a, kp_norm_step *st);

/* ---- pre-tokenizers */

typedef enum kp_split_behavior {
    KP_SPLIT_REMOVED = 0,
    KP_SPLIT_ISOLATED,
    KP_SPLIT_MERGED_PREV,
    KP_SPLIT_MERGED_NEXT,
    KP_SPLIT_CONTIGUOUS
} kp_split_behavior;

typedef enum kp_pre_kind {
    KP_PRE_SPLIT = 1, /* re (or fast) or literal s; behavior; invert */
    KP_PRE_BYTELEVEL, /* add_prefix_space; use_regex (GPT-2 pattern). The byte mapping itself is
                         implicit: vocabularies are stored in raw bytes. */
    KP_PRE_METASPACE  /* s = replacement; prepend (0 never, 1 first, 2 always); split */
} kp_pre_kind;

typedef struct kp_pre_step {
    kp_pre_kind kind;
    kp_regex *re;
    kp_fast_kind fast;
    int fold_long_s;
    char *s;
    size_t ns;
    kp_split_behavior behavior;
    int invert;
    int add_prefix_space, use_regex;
    int prepend, split;
} kp_pre_step;

/* Working memory for one encode call. */
typedef struct kp_pretok_scratch {
    kp_buf text;          /* pieces point into this */
    kp_span_vec cur, next, matches, segs;
    kp_buf seg_match;     /* per segment: 1 if it is a match */
} kp_pretok_scratch;

void kp_pretok_scratch_init(kp_pretok_scratch *s, const kp_allocator *a);
void kp_pretok_scratch_free(kp_pretok_scratch *s);

/* Splits s[0..n) into pieces: afterwards the pieces are sc->cur (spans into sc->text.data).
 * `at_start`: the text begins the input (Metaspace's "first" scheme). */
kp_status kp_pretokenize(const kp_pre_step *steps, int n_steps, const char *s, size_t n, int at_start,
                         kp_pretok_scratch *sc);
void kp_pre_step_free(const kp_allocator *a, kp_pre_step *st);

#endif
