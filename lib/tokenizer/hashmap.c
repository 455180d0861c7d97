/* Vocabulary maps: built once at load time, read-only afterwards (so any number of threads may
 * encode at once). */
#include "hashmap.h"

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n)
        c *= 2;
    return c;
}

kp_status kp_strmap_build(kp_strmap *m, const kp_allocator *a, int32_t n_ids, const char *const *keys,
                          const uint32_t *lens, const uint8_t *include)
{
    memset(m, 0, sizeof *m);
    m->a = a;
    m->n_ids = n_ids;
    if (n_ids < 0 || n_ids > (1 << 24))
        return kp_fail(KP_ERR_FORMAT, "vocabulary of %d ids is outside [0, 2^24]", n_ids);
    size_t total = 0;
    for (int32_t i = 0; i < n_ids; i++)
        total += lens[i];
    if (total > UINT32_MAX)
        return kp_fail(KP_ERR_FORMAT, "vocabulary strings take %zu bytes, more than 4 GiB", total);
    m->blob_size = total ? total : 1;
    m->blob = kp_alloc(a, m->blob_size);
    m->off = kp_alloc(a, ((size_t)n_ids + 1) * sizeof *m->off);
    size_t cap = pow2_at_least((size_t)n_ids * 2 + 1);
    m->slots = kp_calloc(a, cap, sizeof *m->slots);
    m->mask = cap - 1;
    if (!m->blob || !m->off || !m->slots) {
        kp_strmap_free(m);
        return KP_ERR_OUT_OF_MEMORY;
    }
    uint32_t o = 0;
    for (int32_t i = 0; i < n_ids; i++) {
        m->off[i] = o;
        if (lens[i])
            memcpy(m->blob + o, keys[i], lens[i]);
        o += lens[i];
    }
    m->off[n_ids] = o;
    for (int32_t id = 0; id < n_ids; id++) {
        if (include && !include[id])
            continue;
        const char *s = m->blob + m->off[id];
        size_t n = lens[id];
        uint64_t h = kp_hash_bytes(s, n);
        uint32_t tag = (uint32_t)(h >> 32);
        uint64_t head = kp_key_head(s, n);
        uint32_t meta = 0x80000000u | (uint32_t)(n < 127 ? n : 127) << 24 | (uint32_t)id;
        size_t i = (size_t)h & m->mask;
        for (;;) {
            kp_strmap_slot *sl = &m->slots[i];
            if (!(sl->meta & 0x80000000u) || kp_strmap_slot_is(m, sl, tag, head, s, n)) {
                sl->head = head;
                sl->tag = tag;
                sl->meta = meta;
                break;
            }
            i = (i + 1) & m->mask;
        }
    }
    return KP_OK;
}

void kp_strmap_free(kp_strmap *m)
{
    if (!m->a)
        return;
    kp_dealloc(m->a, m->slots, (m->mask + 1) * sizeof *m->slots);
    kp_dealloc(m->a, m->blob, m->blob_size);
    kp_dealloc(m->a, m->off, ((size_t)m->n_ids + 1) * sizeof *m->off);
    memset(m, 0, sizeof *m);
}

kp_status kp_pairmap_init(kp_pairmap *m, const kp_allocator *a, size_t expect)
{
    memset(m, 0, sizeof *m);
    m->a = a;
    /* at most 3/4 full: 280k merges fit in 512k slots (8 MiB), which matters for load time */
    size_t cap = pow2_at_least(expect + expect / 3 + 1);
    m->slots = kp_alloc(a, cap * sizeof *m->slots);
    if (!m->slots)
        return KP_ERR_OUT_OF_MEMORY;
    for (size_t i = 0; i < cap; i++)
        m->slots[i].rank = UINT32_MAX;
    m->mask = cap - 1;
    return KP_OK;
}

void kp_pairmap_put(kp_pairmap *m, int32_t a, int32_t b, uint32_t rank, int32_t id)
{
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t i = kp_pair_hash(key, m->mask);
    for (;;) {
        kp_pair_slot *s = &m->slots[i];
        if (s->rank == UINT32_MAX) {
            s->key = key;
            s->rank = rank;
            s->id = id;
            m->n++;
            return;
        }
        if (s->key == key) {
            s->rank = rank;
            s->id = id;
            return;
        }
        i = (i + 1) & m->mask;
    }
}

void kp_pairmap_free(kp_pairmap *m)
{
    if (m->a && m->slots)
        kp_dealloc(m->a, m->slots, (m->mask + 1) * sizeof *m->slots);
    memset(m, 0, sizeof *m);
}
