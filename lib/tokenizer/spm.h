/* SentencePiece-style BPE over piece scores: the adjacent pair whose concatenation is a piece
 * with the highest score is merged first (leftmost on ties). Two flavours share the engine:
 *   KP_SPM_SENTENCEPIECE  the SentencePiece library (.model files): its normalizer (dummy prefix,
 *                         extra-whitespace removal, U+2581 escaping), only NORMAL/USER_DEFINED/
 *                         UNUSED pieces can be merge results, USER_DEFINED pieces stay whole,
 *                         UNUSED results are split back, malformed UTF-8 becomes U+FFFD;
 *   KP_SPM_LLAMACPP       llama.cpp's "llama" vocabularies from GGUF: a space is prepended to
 *                         each stretch of text that starts the input or follows a special token,
 *                         spaces become U+2581, any piece can be a merge result. */
#ifndef KP_TOK_SPM_H
#define KP_TOK_SPM_H

#include "added.h"
#include "hashmap.h"
#include "tokenizer.h"

typedef enum kp_spm_mode {
    KP_SPM_SENTENCEPIECE = 0,
    KP_SPM_LLAMACPP = 1
} kp_spm_mode;

typedef struct kp_spm {
    const kp_allocator *a;
    kp_spm_mode mode;
    kp_strmap all;       /* every piece -> id */
    uint8_t *mergeable;  /* per id */
    float *score;        /* per id */
    int32_t n;
    int32_t byte_ids[256]; /* <0xXX> pieces; -1 absent */
    int32_t unk;
    kp_added_set user;    /* SentencePiece mode: USER_DEFINED pieces (kept whole) */
    kp_added_set special; /* text matched as special tokens (see kp_spm_encode) */
    uint8_t add_dummy_prefix, remove_extra_ws, escape_ws, ws_suffix, byte_fallback;
    uint8_t add_bos, add_eos;
} kp_spm;

/* Builds the engine from per-id pieces (UTF-8 with U+2581 for spaces), scores and kinds
 * (kp_token_type). Sets the byte table, unk, the special-text sets, and the decode pieces
 * and types of `t` (which must have n_vocab == n). Flags are set by the caller afterwards. */
kp_status kp_spm_build(kp_spm *m, kp_tokenizer *t, kp_spm_mode mode, int32_t n, const char *const *pieces,
                       const uint32_t *lens, const float *scores, const uint8_t *types);
void kp_spm_free(kp_spm *m);

/* The encode entry for kp_tokenizer_vtbl (impl is a kp_spm). With PARSE_SPECIAL, CONTROL and
 * UNKNOWN piece texts (and USER_DEFINED ones in llama.cpp mode, where they are always matched)
 * split the input first; each stretch between them is normalized and encoded separately. */
kp_status kp_spm_encode(const kp_tokenizer *t, const char *text, size_t len, uint32_t flags, kp_ivec *out);
void kp_spm_destroy(kp_tokenizer *t);

#endif
