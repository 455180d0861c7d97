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
    /* (added by the tokenizer work; zero/NULL when unused) */
    /* Hugging Face's Strip(start=1) / Metaspace decoders: drop one leading space of the decoded
     * text only where it begins (not after BOS: "<s> Hi" stays as it is). */
    int strip_leading_space;
    /* What KP_TOKENIZE_ADD_SPECIAL adds: BOS in front / EOS at the end. */
    int add_bos, add_eos;
    /* Chat template (NUL-terminated) from tokenizer_config.json or GGUF, NULL if none. Owned by
     * the implementation: kp_tokenizer_set_chat_template copies it and the destroy functions in
     * this directory free it. */
    char *chat_template;
    size_t chat_template_len;
};

/* Allocates the shared tables for n_vocab ids (pieces empty, types NORMAL, specials -1). */
kp_status kp_tokenizer_alloc(const kp_allocator *a, int32_t n_vocab, kp_tokenizer **out);
/* Grows the vocabulary to n_vocab ids (>= the current count) with empty, unused padding ids, for
 * models whose embedding has more rows than the tokenizer has ids (Qwen: 151936 vs 151669).
 * Encoding never produces them; decoding one gives no text. */
kp_status kp_tokenizer_pad(kp_tokenizer *t, int32_t n_vocab);
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
/* Entries of a llama2.c tokenizer.bin if they end exactly at the end of `data`, else -1. */
int32_t kp_llama2c_tokenizer_count(const uint8_t *data, size_t size);

/* Hugging Face tokenizer.json (+ tokenizer_config.json beside it, if present). */
kp_status kp_tokenizer_hf_json_new(const kp_allocator *a, const char *path, kp_tokenizer **out);
/* SentencePiece ModelProto (.model). */
kp_status kp_tokenizer_spm_model_new(const kp_allocator *a, const uint8_t *data, size_t size,
                                     kp_tokenizer **out);
/* The vocabulary stored in a GGUF file (implemented by the GGUF reader). */
kp_status kp_gguf_tokenizer_new(const kp_allocator *a, const uint8_t *data, size_t size, kp_tokenizer **out);
/* The same from memory: `json` is tokenizer.json, `config` (may be NULL) tokenizer_config.json;
 * `name` labels error messages. Neither buffer needs to outlive the call. */
kp_status kp_tokenizer_hf_json_from_memory(const kp_allocator *a, const char *json, size_t len, const char *config,
                                           size_t config_len, const char *name, kp_tokenizer **out);

/* GGUF vocabularies are built by the GGUF reader through constructors declared below this line
 * (SentencePiece-style scores for tokenizer.ggml.model "llama", byte-level BPE with merges for
 * "gpt2"). */

/* A vocabulary as GGUF stores it (tokenizer.ggml.*). All arrays are borrowed for the call only;
 * strings are length-delimited (no NUL needed). */
typedef struct kp_vocab_arrays {
    int32_t n;                      /* tokenizer.ggml.tokens: count */
    const char *const *tokens;      /*   n texts (U+2581 for spaces in "llama"; GPT-2 byte
                                         characters in "gpt2") */
    const uint32_t *token_lens;
    const float *scores;            /* tokenizer.ggml.scores: n, or NULL (all 0) */
    const int32_t *types;           /* tokenizer.ggml.token_type: n kp_token_type values, or NULL
                                       (all NORMAL) */
    int32_t n_merges;               /* tokenizer.ggml.merges ("gpt2" only): "a b" strings */
    const char *const *merges;
    const uint32_t *merge_lens;
    const char *pre;                /* tokenizer.ggml.pre ("gpt2" only), NUL-terminated; NULL =
                                       "default". Known: llama3/llama-v3/llama-bpe/falcon3,
                                       qwen2/deepseek-r1-qwen, smollm (and starcoder, refact,
                                       command-r, codeshell, exaone, minerva-7b), gpt-2/gpt2/mpt/
                                       olmo/jais, default; others give KP_ERR_UNSUPPORTED. */
    int32_t bos, eos, eot, unk, pad; /* tokenizer.ggml.*_token_id; -1 when absent */
    int add_bos;                    /* tokenizer.ggml.add_bos_token: 1, 0, or -1 when absent
                                       ("llama": counts as 1; "gpt2": 1 for the Llama 3 family) */
    int add_eos;                    /* tokenizer.ggml.add_eos_token: 1, 0, -1 (= 0) */
    int add_space_prefix;           /* tokenizer.ggml.add_space_prefix ("llama"): 1, 0, -1 (= 1) */
    const char *chat_template;      /* tokenizer.chat_template or NULL; copied */
    size_t chat_template_len;
} kp_vocab_arrays;

/* tokenizer.ggml.model "llama": SentencePiece-style BPE over scores, encoding like llama.cpp's
 * SPM tokenizer: a space is prepended (add_space_prefix) to each stretch of text that starts the
 * input or follows a special token, spaces become U+2581, the highest-scoring adjacent pair
 * that forms a token is merged first, and characters that end up in no token are written as
 * <0xXX> byte tokens (or unk). Requires scores for meaningful output. */
kp_status kp_tokenizer_spm_vocab_new(const kp_allocator *a, const kp_vocab_arrays *v, kp_tokenizer **out);

/* tokenizer.ggml.model "gpt2": byte-level BPE with merges, encoding like llama.cpp does for
 * these vocabularies (the same ids as Hugging Face for Llama 3, Qwen2 and SmolLM files): the
 * pre-tokenizer regexes of `pre`, then rank-ordered merges over the raw bytes; Llama 3 ("ignore
 * merges") takes a whole pre-token that is itself a token as is. */
kp_status kp_tokenizer_bpe_vocab_new(const kp_allocator *a, const kp_vocab_arrays *v, kp_tokenizer **out);

/* For both GGUF constructors, tokens of type CONTROL, USER_DEFINED or UNKNOWN are matched as
 * literal text in the input before anything else (longest token first, as llama.cpp does):
 * USER_DEFINED always, CONTROL and UNKNOWN only with KP_TOKENIZE_PARSE_SPECIAL. ADD_SPECIAL adds
 * BOS if add_bos and EOS if add_eos. `eog` is set for eos, eot and special tokens named
 * <|eot_id|>, <|im_end|>, <|end|>, <end_of_turn>, <|endoftext|>, <|eom_id|>, <EOT>,
 * <|end_of_text|>; t->eot is filled from those names when the file gives none. */

/* ---- the vocabulary as GGUF's tokenizer.ggml.* arrays, for writing GGUF files */

/* Score and text of a llama2.c tokenizer.bin entry as stored; 0 if `t` is not one. */
int kp_llama2c_token_text(const kp_tokenizer *t, int32_t id, float *score, const char **text, size_t *len);

typedef struct kp_vocab_export {
    const kp_allocator *alloc;
    const char *model;        /* "llama" (SentencePiece-style, scores) or "gpt2" (byte-level BPE) */
    const char *pre;          /* "gpt2": llama.cpp's pre-tokenizer name; NULL for "llama" */
    int32_t n;
    const char **tokens;      /* n texts in GGUF form, token_lens[i] bytes each */
    uint32_t *token_lens;
    float *scores;            /* n ("llama"), else NULL */
    int32_t *types;           /* n kp_token_type values */
    int32_t n_merges;         /* "gpt2": "a b" strings in rank order */
    const char **merges;
    uint32_t *merge_lens;
    int add_bos, add_eos, add_space_prefix;
    kp_buf blob;              /* backs every string above */
} kp_vocab_export;

/* Reconstructs the arrays a GGUF file needs to rebuild `t` (llama.cpp's encoding of them gives
 * the same ids as `t`). KP_ERR_UNSUPPORTED for a tokenizer kind that has no GGUF form. Free with
 * kp_vocab_export_free (also after a failure). */
kp_status kp_tokenizer_vocab_export(const kp_tokenizer *t, const kp_allocator *a, kp_vocab_export *out);
void kp_vocab_export_free(kp_vocab_export *v);

/* Copies a chat template into t->chat_template, replacing any previous one. */
kp_status kp_tokenizer_set_chat_template(kp_tokenizer *t, const char *s, size_t n);
void kp_tokenizer_free_chat_template(kp_tokenizer *t);

#endif
