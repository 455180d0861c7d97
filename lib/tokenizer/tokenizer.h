/* The pluggable tokenizer seam. Every tokenizer (llama2.c tokenizer.bin, SentencePiece BPE,
 * byte-level BPE from tokenizer.json or GGUF) fills one struct kp_tokenizer: the shared
 * tables below plus an encode function behind `vt`. Decoding is table-driven and shared:
 * each id maps to the bytes it contributes to decoded text. */
#ifndef KP_TOKENIZER_H
#define KP_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "../internal.h"

/* Token kinds, numbered as GGUF's tokenizer.ggml.token_type. */
typedef enum kp_token_type {
    KP_TOKEN_UNDEFINED = 0,
    KP_TOKEN_NORMAL = 1,
    KP_TOKEN_UNKNOWN = 2,
    KP_TOKEN_CONTROL = 3,
    KP_TOKEN_USER_DEFINED = 4,
    KP_TOKEN_UNUSED = 5,
    KP_TOKEN_BYTE = 6
} kp_token_type;

typedef struct kp_tokenizer_vtbl {
    const char *name; /* "llama2c", "spm", "bpe", ... */
    /* Appends the ids of `text` to `out`. `flags` are KP_TOKENIZE_*; the implementation applies
     * ADD_SPECIAL itself since where BOS/EOS go is its post-processor's business. */
    kp_status (*encode)(const kp_tokenizer *t, const char *text, size_t len, uint32_t flags,
                        kp_ivec *out);
    /* Releases `impl` (the shared tables are freed by kp_tokenizer_free). May be NULL. */
    void (*destroy)(kp_tokenizer *t);
} kp_tokenizer_vtbl;

struct kp_tokenizer {
    const kp_tokenizer_vtbl *vt;
    const kp_allocator *alloc;
    int32_t n_vocab;
    int32_t bos, eos, eot, pad, unk; /* -1 when absent */
    /* Decoded bytes of token i: piece_blob[piece_off[i] .. piece_off[i+1]). Byte-fallback tokens
     * hold their one raw byte, byte-level tokens their original bytes, SentencePiece pieces have
     * U+2581 replaced by a space. Special (control) tokens hold their text. */
    char *piece_blob;
    uint32_t *piece_off;   /* n_vocab + 1 entries */
    size_t piece_blob_size;
    uint8_t *type;         /* kp_token_type per id */
    uint8_t *eog;          /* non-zero: generation stops at this id */
    /* Decoder rule: drop one leading space of the piece that follows BOS (or that starts the
     * text), as SentencePiece-style decoders do. */
    int strip_space_after_bos;
    /* Bytes produced by decode of control tokens: 1 renders their text (HF decode with
     * skip_special_tokens=false), 0 renders nothing. */
    int render_control;
    void *impl;
};

/* Allocates the shared tables for n_vocab ids (pieces empty, types NORMAL, specials -1). */
kp_status kp_tokenizer_alloc(const kp_allocator *a, int32_t n_vocab, kp_tokenizer **out);
/* Sets the pieces from a builder: call with each id's bytes in order 0..n_vocab-1. */
kp_status kp_tokenizer_set_pieces(kp_tokenizer *t, const char *const *bytes, const uint32_t *lens);

/* The decoded bytes of `id` (no stripping); NULL/0 for an id out of range. */
static inline const char *kp_tokenizer_piece(const kp_tokenizer *t, int32_t id, size_t *len)
{
    if (id < 0 || id >= t->n_vocab) {
        *len = 0;
        return NULL;
    }
    *len = t->piece_off[id + 1] - t->piece_off[id];
    return t->piece_blob + t->piece_off[id];
}

/* Streaming decoder state: holds back an incomplete UTF-8 sequence so each emitted chunk is
 * whole characters, and applies the leading-space rule. */
typedef struct kp_detok_stream {
    int32_t prev;        /* previous id fed, -1 at start */
    unsigned char pend[4];
    int n_pend;
} kp_detok_stream;

void kp_detok_stream_init(kp_detok_stream *st);
/* Appends to `out` the text that `id` completes. */
kp_status kp_detok_stream_push(const kp_tokenizer *t, kp_detok_stream *st, int32_t id, kp_buf *out);
/* Appends whatever is still held back (as raw bytes). */
kp_status kp_detok_stream_flush(kp_detok_stream *st, kp_buf *out);

/* ---- constructors (one per implementation) */

/* llama2.c tokenizer.bin held in memory; the file stores no count, so n_vocab is required. */
kp_status kp_tokenizer_llama2c_new(const kp_allocator *a, const uint8_t *data, size_t size,
                                   int32_t n_vocab, kp_tokenizer **out);

/* Hugging Face tokenizer.json (+ tokenizer_config.json beside it, if present). */
kp_status kp_tokenizer_hf_json_new(const kp_allocator *a, const char *path, kp_tokenizer **out);
/* SentencePiece ModelProto (.model). */
kp_status kp_tokenizer_spm_model_new(const kp_allocator *a, const uint8_t *data, size_t size,
                                     kp_tokenizer **out);
/* The vocabulary stored in a GGUF file (implemented by the GGUF reader). */
kp_status kp_gguf_tokenizer_new(const kp_allocator *a, const uint8_t *data, size_t size, kp_tokenizer **out);
/* GGUF vocabularies are built by the GGUF reader through constructors declared below this line
 * (SentencePiece-style scores for tokenizer.ggml.model "llama", byte-level BPE with merges for
 * "gpt2"). */

#endif
