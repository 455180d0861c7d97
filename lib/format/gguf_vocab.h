/* The vocabulary stored in GGUF metadata (tokenizer.ggml.*), validated and gathered in one
 * place, and the tokenizer built from it. */
#ifndef KP_GGUF_VOCAB_H
#define KP_GGUF_VOCAB_H

#include "../tokenizer/tokenizer.h"
#include "gguf.h"

typedef enum kp_gguf_vocab_kind {
    KP_GGUF_VOCAB_SPM = 0, /* tokenizer.ggml.model "llama": SentencePiece pieces with scores */
    KP_GGUF_VOCAB_BPE = 1  /* "gpt2": byte-level BPE with merges */
} kp_gguf_vocab_kind;

/* Views into the file plus arrays owned by the struct (free with kp_gguf_vocab_free). */
typedef struct kp_gguf_vocab {
    const kp_allocator *alloc;
    kp_gguf_vocab_kind kind;
    kp_gguf_str pre;        /* tokenizer.ggml.pre ("default" when absent) */
    int32_t n_vocab;
    kp_gguf_str *tokens;    /* n_vocab token texts as stored (▁ / byte-level characters) */
    float *scores;          /* n_vocab, or NULL when the file has none */
    uint8_t *types;         /* n_vocab kp_token_type values (NORMAL when the file has none) */
    kp_gguf_str *merges;    /* "a b" pairs in rank order; BPE only */
    size_t n_merges;
    /* special ids, -1 when absent or out of range */
    int32_t bos, eos, eot, eom, unk, pad, sep, nl;
    int add_bos, add_eos;   /* -1: the file does not say */
    int add_space_prefix;   /* -1: the file does not say */
} kp_gguf_vocab;

/* Gathers and validates tokenizer.ggml.* from an opened file. */
kp_status kp_gguf_vocab_read(const kp_allocator *a, const kp_gguf *g, kp_gguf_vocab *v);
void kp_gguf_vocab_free(kp_gguf_vocab *v);

/* Builds the tokenizer for the vocabulary stored in `g`. */
kp_status kp_gguf_vocab_tokenizer(const kp_allocator *a, const kp_gguf *g, kp_tokenizer **out);

#endif
