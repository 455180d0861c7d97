/* Open-addressing maps for vocabularies: byte string -> id, and id pair -> (merge rank, id). */
#ifndef KP_TOK_HASHMAP_H
#define KP_TOK_HASHMAP_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../internal.h"

static inline uint64_t kp_hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t k;
        memcpy(&k, s, 8);
        h = (h ^ k) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
        s += 8;
        n -= 8;
    }
    uint64_t k = 0;
    for (size_t i = 0; i < n; i++)
        k |= (uint64_t)(unsigned char)s[i] << (8 * i);
    h = (h ^ k) * 0x94d049bb133111ebull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h;
}

static inline uint64_t kp_key_head(const char *s, size_t n)
{
    uint64_t h = 0;
    memcpy(&h, s, n < 8 ? n : 8);
    return h;
}

/* A slot keeps the key's first 8 bytes and length, so that short keys (most tokens) are found
 * without touching the key storage. */
typedef struct kp_strmap_slot {
    uint64_t head;   /* first 8 bytes, zero padded */
    uint32_t tag;    /* high 32 bits of the hash */
    uint32_t meta;   /* bit 31: used; bits 24-30: min(len, 127); bits 0-23: id */
} kp_strmap_slot;

/* Keys are stored once in `blob` (key of id i: blob[off[i] .. off[i+1])); ids whose key is not
 * inserted simply never match. Ids must be below 2^24. */
typedef struct kp_strmap {
    const kp_allocator *a;
    kp_strmap_slot *slots;
    size_t mask;
    char *blob;
    uint32_t *off;
    int32_t n_ids;
    size_t blob_size;
} kp_strmap;

/* Builds a map over n_ids keys (key i = keys[i], lens[i]); ids with include[i] == 0 (when
 * include is not NULL) are left out. A key seen twice maps to the later id. */
kp_status kp_strmap_build(kp_strmap *m, const kp_allocator *a, int32_t n_ids, const char *const *keys,
                          const uint32_t *lens, const uint8_t *include);
void kp_strmap_free(kp_strmap *m);

static inline int kp_strmap_slot_is(const kp_strmap *m, const kp_strmap_slot *sl, uint32_t tag, uint64_t head,
                                    const char *s, size_t n)
{
    uint32_t l7 = (uint32_t)(n < 127 ? n : 127);
    if (sl->tag != tag || ((sl->meta >> 24) & 0x7F) != l7 || sl->head != head)
        return 0;
    if (n <= 8)
        return 1;
    int32_t id = (int32_t)(sl->meta & 0xFFFFFF);
    uint32_t o = m->off[id];
    return m->off[id + 1] - o == n && memcmp(m->blob + o + 8, s + 8, n - 8) == 0;
}

/* Lookup with the hash already computed (kp_hash_bytes(s, n)). */
static inline int32_t kp_strmap_get_h(const kp_strmap *m, const char *s, size_t n, uint64_t h)
{
    if (!m->slots)
        return -1;
    uint32_t tag = (uint32_t)(h >> 32);
    uint64_t head = kp_key_head(s, n);
    size_t i = (size_t)h & m->mask;
    for (;;) {
        const kp_strmap_slot *sl = &m->slots[i];
        if (!(sl->meta & 0x80000000u))
            return -1;
        if (kp_strmap_slot_is(m, sl, tag, head, s, n))
            return (int32_t)(sl->meta & 0xFFFFFF);
        i = (i + 1) & m->mask;
    }
}

static inline int32_t kp_strmap_get(const kp_strmap *m, const char *s, size_t n)
{
    return kp_strmap_get_h(m, s, n, kp_hash_bytes(s, n));
}

static inline void kp_strmap_prefetch(const kp_strmap *m, uint64_t h)
{
    if (m->slots)
        __builtin_prefetch(&m->slots[(size_t)h & m->mask]);
}

/* The stored key of `id` (valid for every id given to kp_strmap_build). */
static inline const char *kp_strmap_key(const kp_strmap *m, int32_t id, size_t *len)
{
    *len = m->off[id + 1] - m->off[id];
    return m->blob + m->off[id];
}

typedef struct kp_pair_slot {
    uint64_t key; /* (uint64)a << 32 | b */
    uint32_t rank; /* UINT32_MAX: empty */
    int32_t id;
} kp_pair_slot;

typedef struct kp_pairmap {
    const kp_allocator *a;
    kp_pair_slot *slots;
    size_t mask, n;
} kp_pairmap;

/* Room for `expect` pairs; putting more than that is not allowed (the table does not grow). */
kp_status kp_pairmap_init(kp_pairmap *m, const kp_allocator *a, size_t expect);
/* Inserts or overwrites (a later merge of the same pair replaces the earlier one, as in
 * Hugging Face's map built from the merges list). */
void kp_pairmap_put(kp_pairmap *m, int32_t a, int32_t b, uint32_t rank, int32_t id);
void kp_pairmap_free(kp_pairmap *m);

static inline size_t kp_pair_hash(uint64_t key, size_t mask)
{
    key *= 0x9E3779B97F4A7C15ull;
    return (size_t)(key >> 29) & mask;
}

/* Rank of the merge (a, b) and its result in *id; UINT32_MAX if there is none. */
static inline uint32_t kp_pairmap_get(const kp_pairmap *m, int32_t a, int32_t b, int32_t *id)
{
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t i = kp_pair_hash(key, m->mask);
    for (;;) {
        const kp_pair_slot *s = &m->slots[i];
        if (s->rank == UINT32_MAX)
            return UINT32_MAX;
        if (s->key == key) {
            *id = s->id;
            return s->rank;
        }
        i = (i + 1) & m->mask;
    }
}

#endif
