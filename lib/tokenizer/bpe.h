/* Rank-based BPE as Hugging Face `tokenizers` (model type "BPE") and llama.cpp's byte-level BPE
 * run it: a word starts as one symbol per character (per byte for byte-level vocabularies),
 * then the adjacent pair with the lowest merge rank is merged, leftmost first, until no pair
 * has a merge. */
#ifndef KP_TOK_BPE_H
#define KP_TOK_BPE_H

#include "hashmap.h"

typedef struct kp_bpe {
    const kp_allocator *a;
    kp_strmap vocab;  /* token -> id; byte-level vocabularies are keyed by their raw bytes */
    kp_pairmap merges;
    int32_t byte_ids[256]; /* byte-level: the id of each single byte; byte_fallback: <0xXX> */
    int32_t unk;           /* -1: none (unknown characters are dropped, as Hugging Face does) */
    uint8_t byte_level, byte_fallback, fuse_unk, ignore_merges;
} kp_bpe;

typedef struct kp_bpe_sym {
    int32_t id, prev, next, nid; /* nid: the id that merging with `next` gives */
    uint32_t rank;               /* rank of the pair (this, next); UINT32_MAX: none */
} kp_bpe_sym;

/* Per-call working memory (the model itself stays read-only). */
typedef struct kp_bpe_scratch {
    const kp_allocator *a;
    kp_bpe_sym *sym;
    size_t sym_cap;
    uint64_t *heap;
    size_t heap_cap;
} kp_bpe_scratch;

void kp_bpe_scratch_init(kp_bpe_scratch *s, const kp_allocator *a);
void kp_bpe_scratch_free(kp_bpe_scratch *s);

/* Appends the ids of one pre-tokenized word w[0..n). */
kp_status kp_bpe_word(const kp_bpe *m, const char *w, size_t n, kp_bpe_scratch *s, kp_ivec *out);

/* Runs the merges over symbols already placed in s->sym[0..k) (linked in order) and appends
 * the resulting ids. Exposed so that other front ends can seed the symbols themselves. */
kp_status kp_bpe_merge(const kp_bpe *m, kp_bpe_scratch *s, int32_t k, kp_ivec *out);

void kp_bpe_free(kp_bpe *m);

/* GPT-2's byte-to-character table: byte b is written as code point kp_byte_to_cp(b) in
 * byte-level vocabularies. kp_cp_to_byte is its inverse (-1 for other code points). */
uint32_t kp_byte_to_cp(unsigned b);
static inline int kp_cp_to_byte(uint32_t cp)
{
    if ((cp >= 0x21 && cp <= 0x7E) || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF))
        return (int)cp;
    if (cp < 256 || cp >= 256 + 68)
        return -1;
    unsigned n = cp - 256;
    return n <= 32 ? (int)n : n <= 66 ? (int)(0x7F + n - 33) : 0xAD;
}

/* Converts a byte-level token (UTF-8 text of mapped characters) into raw bytes in `out`
 * (capacity >= n). Returns the byte count, or -1 if a character is outside the mapping. */
long kp_bytelevel_decode(const char *s, size_t n, char *out);

#endif
