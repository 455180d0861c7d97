/* The merge loop. Short words scan for the best pair (ranks of all current pairs are kept, so
 * each merge costs two map lookups); long words use a min-heap of (rank, position) with lazy
 * deletion. Both pick the lowest rank and, among equal ranks (the same pair), the leftmost. */
#include "bpe.h"

#include "unicode.h"

#define KP_BPE_HEAP_MIN 48

void kp_bpe_scratch_init(kp_bpe_scratch *s, const kp_allocator *a)
{
    memset(s, 0, sizeof *s);
    s->a = a;
}

void kp_bpe_scratch_free(kp_bpe_scratch *s)
{
    kp_dealloc(s->a, s->sym, s->sym_cap * sizeof *s->sym);
    kp_dealloc(s->a, s->heap, s->heap_cap * sizeof *s->heap);
    s->sym = NULL;
    s->heap = NULL;
    s->sym_cap = s->heap_cap = 0;
}

static kp_status sym_reserve(kp_bpe_scratch *s, size_t n)
{
    if (n <= s->sym_cap)
        return KP_OK;
    size_t nc = s->sym_cap ? s->sym_cap : 64;
    while (nc < n)
        nc *= 2;
    kp_bpe_sym *d = kp_realloc(s->a, s->sym, s->sym_cap * sizeof *d, nc * sizeof *d);
    if (!d)
        return KP_ERR_OUT_OF_MEMORY;
    s->sym = d;
    s->sym_cap = nc;
    return KP_OK;
}

static inline void set_rank(const kp_bpe *m, kp_bpe_sym *sym, int32_t i)
{
    int32_t j = sym[i].next;
    sym[i].rank = j < 0 ? UINT32_MAX : kp_pairmap_get(&m->merges, sym[i].id, sym[j].id, &sym[i].nid);
}

/* Merges i with its next symbol. */
static inline void merge_at(kp_bpe_sym *sym, int32_t i)
{
    int32_t j = sym[i].next;
    sym[i].id = sym[i].nid;
    sym[i].next = sym[j].next;
    if (sym[j].next >= 0)
        sym[sym[j].next].prev = i;
    sym[j].id = -1;
    sym[j].rank = UINT32_MAX;
}

static void heap_push(uint64_t *h, size_t *n, uint64_t v)
{
    size_t i = (*n)++;
    while (i) {
        size_t p = (i - 1) / 2;
        if (h[p] <= v)
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static uint64_t heap_pop(uint64_t *h, size_t *n)
{
    uint64_t top = h[0], v = h[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m)
            break;
        if (c + 1 < m && h[c + 1] < h[c])
            c++;
        if (h[c] >= v)
            break;
        h[i] = h[c];
        i = c;
    }
    if (m)
        h[i] = v;
    return top;
}

kp_status kp_bpe_merge(const kp_bpe *m, kp_bpe_scratch *s, int32_t k, kp_ivec *out)
{
    kp_bpe_sym *sym = s->sym;
    if (k > 1 && m->merges.n) {
        for (int32_t i = 0; i < k; i++)
            set_rank(m, sym, i);
        if (k < KP_BPE_HEAP_MIN) {
            for (;;) {
                uint32_t best = UINT32_MAX;
                int32_t bi = -1;
                for (int32_t i = 0; i >= 0; i = sym[i].next) {
                    if (sym[i].rank < best) {
                        best = sym[i].rank;
                        bi = i;
                    }
                }
                if (bi < 0)
                    break;
                merge_at(sym, bi);
                set_rank(m, sym, bi);
                if (sym[bi].prev >= 0)
                    set_rank(m, sym, sym[bi].prev);
            }
        } else {
            if ((size_t)k * 3 > s->heap_cap) {
                size_t nc = (size_t)k * 3;
                uint64_t *h = kp_alloc(s->a, nc * sizeof *h); /* the old contents are not needed */
                if (!h)
                    return KP_ERR_OUT_OF_MEMORY;
                kp_dealloc(s->a, s->heap, s->heap_cap * sizeof *s->heap);
                s->heap = h;
                s->heap_cap = nc;
            }
            uint64_t *h = s->heap;
            size_t hn = 0;
            for (int32_t i = 0; i < k; i++)
                if (sym[i].rank != UINT32_MAX)
                    heap_push(h, &hn, (uint64_t)sym[i].rank << 32 | (uint32_t)i);
            while (hn) {
                uint64_t top = heap_pop(h, &hn);
                int32_t i = (int32_t)(uint32_t)top;
                uint32_t r = (uint32_t)(top >> 32);
                if (sym[i].id < 0 || sym[i].rank != r)
                    continue; /* stale: the pair changed since it was queued */
                merge_at(sym, i);
                set_rank(m, sym, i);
                /* each merge adds at most two entries; the buffer holds 3k */
                if (sym[i].rank != UINT32_MAX && hn < s->heap_cap)
                    heap_push(h, &hn, (uint64_t)sym[i].rank << 32 | (uint32_t)i);
                int32_t p = sym[i].prev;
                if (p >= 0) {
                    set_rank(m, sym, p);
                    if (sym[p].rank != UINT32_MAX && hn < s->heap_cap)
                        heap_push(h, &hn, (uint64_t)sym[p].rank << 32 | (uint32_t)p);
                }
            }
        }
    }
    kp_status st = kp_ivec_reserve(out, out->len + (size_t)k);
    if (st)
        return st;
    for (int32_t i = k ? 0 : -1; i >= 0; i = sym[i].next)
        out->data[out->len++] = sym[i].id;
    return KP_OK;
}

static inline void add_sym(kp_bpe_sym *sym, int32_t *k, int32_t id)
{
    int32_t i = (*k)++;
    sym[i].id = id;
    sym[i].prev = i - 1;
    sym[i].next = -1;
    if (i)
        sym[i - 1].next = i;
}

kp_status kp_bpe_word(const kp_bpe *m, const char *w, size_t n, kp_bpe_scratch *s, kp_ivec *out)
{
    if (!n)
        return KP_OK;
    if (n > (size_t)INT32_MAX / 4)
        return kp_fail(KP_ERR_INVALID_ARG, "a single pre-tokenized word of %zu bytes is too long to encode", n);
    if (m->ignore_merges) {
        int32_t id = kp_strmap_get(&m->vocab, w, n);
        if (id >= 0)
            return kp_ivec_push(out, id);
    }
    /* at most one symbol per byte, also with byte fallback */
    kp_status st = sym_reserve(s, n);
    if (st)
        return st;
    kp_bpe_sym *sym = s->sym;
    int32_t k = 0;
    int32_t unk_pending = 0; /* fused unknowns are one symbol, added when a known one follows */
    const unsigned char *u = (const unsigned char *)w;
    for (size_t i = 0; i < n;) {
        size_t l = 1;
        int32_t id;
        if (m->byte_level) {
            id = m->byte_ids[u[i]];
        } else {
            if (u[i] >= 0x80)
                kp_utf8_decode(u + i, n - i, &l);
            id = kp_strmap_get(&m->vocab, w + i, l);
        }
        if (id >= 0) {
            if (unk_pending) {
                add_sym(sym, &k, m->unk);
                unk_pending = 0;
            }
            add_sym(sym, &k, id);
        } else {
            int done = 0;
            if (m->byte_fallback) {
                size_t b = 0;
                while (b < l && m->byte_ids[u[i + b]] >= 0)
                    b++;
                if (b == l) {
                    if (unk_pending) {
                        add_sym(sym, &k, m->unk);
                        unk_pending = 0;
                    }
                    for (b = 0; b < l; b++)
                        add_sym(sym, &k, m->byte_ids[u[i + b]]);
                    done = 1;
                }
            }
            if (!done && m->unk >= 0) {
                if (unk_pending && !m->fuse_unk)
                    add_sym(sym, &k, m->unk);
                unk_pending = 1;
            }
        }
        i += l;
    }
    if (unk_pending)
        add_sym(sym, &k, m->unk);
    return kp_bpe_merge(m, s, k, out);
}

void kp_bpe_free(kp_bpe *m)
{
    kp_strmap_free(&m->vocab);
    kp_pairmap_free(&m->merges);
}

/* The 68 bytes that are not printable Latin-1 (0x00-0x20, 0x7F-0xA0, 0xAD) take code points
 * 256, 257, ... in byte order. */
uint32_t kp_byte_to_cp(unsigned b)
{
    if (b <= 0x20)
        return 256 + b;
    if (b >= 0x7F && b <= 0xA0)
        return 256 + 33 + (b - 0x7F);
    if (b == 0xAD)
        return 256 + 67;
    return b;
}

long kp_bytelevel_decode(const char *s, size_t n, char *out)
{
    /* every character of the alphabet is U+0021..U+0143: one or two UTF-8 bytes */
    const unsigned char *u = (const unsigned char *)s;
    long o = 0;
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        if (c < 0x80) {
            if (c < 0x21 || c > 0x7E)
                return -1;
            out[o++] = (char)c;
            i++;
            continue;
        }
        if (c < 0xC2 || c > 0xC5 || i + 1 >= n || (u[i + 1] & 0xC0) != 0x80)
            return -1;
        int b = kp_cp_to_byte(((c & 0x1Fu) << 6) | (u[i + 1] & 0x3Fu));
        if (b < 0)
            return -1;
        out[o++] = (char)b;
        i += 2;
    }
    return o;
}
