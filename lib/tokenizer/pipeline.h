/* The Hugging Face encode pipeline around a rank-BPE model: added tokens, normalizer,
 * pre-tokenizer, model, post-processor. tokenizer.json files and GGUF "gpt2" vocabularies both
 * load into it. */
#ifndef KP_TOK_PIPELINE_H
#define KP_TOK_PIPELINE_H

#include "added.h"
#include "bpe.h"
#include "pretok.h"
#include "tokenizer.h"

typedef struct kp_bpe_tok {
    const kp_allocator *a;
    kp_added_set added;      /* matched in the raw input */
    kp_added_set added_norm; /* matched after normalization ("normalized": true) */
    kp_norm_step *norm;
    int n_norm, cap_norm;
    kp_pre_step *pre;
    int n_pre, cap_pre;
    kp_bpe bpe;
    int32_t *prefix, *suffix; /* ids the post-processor adds with KP_TOKENIZE_ADD_SPECIAL */
    int n_prefix, n_suffix;
    int valid_utf8_only; /* non-byte-level model: malformed input bytes become U+FFFD first */
} kp_bpe_tok;

/* Allocates a kp_tokenizer of n_vocab ids with an empty kp_bpe_tok behind it. */
kp_status kp_bpe_tok_new(const kp_allocator *a, int32_t n_vocab, kp_tokenizer **out);

kp_status kp_bpe_tok_add_norm(kp_bpe_tok *p, const kp_norm_step *s);
kp_status kp_bpe_tok_add_pre(kp_bpe_tok *p, const kp_pre_step *s);
/* Appends one id to the post-processor's prefix (where = 0) or suffix (1). */
kp_status kp_bpe_tok_add_post(kp_bpe_tok *p, int where, int32_t id);

/* Marks the ids whose text ends generation: eos, eot, and well-known end-of-turn texts among
 * the special tokens. */
void kp_tokenizer_mark_eog(kp_tokenizer *t);

#endif
