/* Added-token matching over a byte trie (a few hundred tokens at most in practice). */
#include "added.h"

#include <string.h>

#include "unicode.h"

typedef struct kp_trie_node {
    int32_t child, sibling; /* first child, next sibling; -1: none */
    int32_t tok;            /* index into set->tok ending here; -1: none */
    unsigned char byte;
} kp_trie_node;

void kp_added_init(kp_added_set *s, const kp_allocator *a, kp_added_mode mode)
{
    memset(s, 0, sizeof *s);
    s->a = kp_allocator_or_default(a);
    s->mode = mode;
}

kp_status kp_added_add(kp_added_set *s, const char *text, size_t len, int32_t id, int special, int lstrip,
                       int rstrip, int single_word)
{
    if (!len)
        return KP_OK;
    if (len > UINT32_MAX)
        return kp_fail(KP_ERR_FORMAT, "added token %d is longer than 4 GiB", id);
    if (s->n == s->cap) {
        int32_t nc = s->cap ? s->cap * 2 : 32;
        kp_added_tok *d = kp_realloc(s->a, s->tok, (size_t)s->cap * sizeof *d, (size_t)nc * sizeof *d);
        if (!d)
            return KP_ERR_OUT_OF_MEMORY;
        s->tok = d;
        s->cap = nc;
    }
    char *t = kp_strndup(s->a, text, len);
    if (!t)
        return KP_ERR_OUT_OF_MEMORY;
    kp_added_tok *k = &s->tok[s->n++];
    k->text = t;
    k->len = (uint32_t)len;
    k->id = id;
    k->special = (uint8_t)!!special;
    k->lstrip = (uint8_t)!!lstrip;
    k->rstrip = (uint8_t)!!rstrip;
    k->single_word = (uint8_t)!!single_word;
    return KP_OK;
}

static int32_t new_node(kp_added_set *s, unsigned char b)
{
    if (s->n_node == s->node_cap) {
        int32_t nc = s->node_cap ? s->node_cap * 2 : 256;
        kp_trie_node *d = kp_realloc(s->a, s->node, (size_t)s->node_cap * sizeof *d, (size_t)nc * sizeof *d);
        if (!d)
            return -1;
        s->node = d;
        s->node_cap = nc;
    }
    kp_trie_node *n = &s->node[s->n_node];
    n->child = n->sibling = n->tok = -1;
    n->byte = b;
    return s->n_node++;
}

static int32_t find_child(const kp_added_set *s, int32_t at, unsigned char b)
{
    for (int32_t c = s->node[at].child; c >= 0; c = s->node[c].sibling)
        if (s->node[c].byte == b)
            return c;
    return -1;
}

/* Longest first, then by id: the order llama.cpp tries special tokens in. */
static int by_len_desc(const kp_added_tok *a, const kp_added_tok *b)
{
    if (a->len != b->len)
        return a->len > b->len ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

kp_status kp_added_finish(kp_added_set *s)
{
    if (s->mode == KP_ADDED_LONGEST_FIRST) {
        /* insertion sort is plenty for a few hundred tokens and keeps equal keys stable */
        for (int32_t i = 1; i < s->n; i++) {
            kp_added_tok t = s->tok[i];
            int32_t j = i - 1;
            while (j >= 0 && by_len_desc(&s->tok[j], &t) > 0) {
                s->tok[j + 1] = s->tok[j];
                j--;
            }
            s->tok[j + 1] = t;
        }
    }
    if (new_node(s, 0) < 0)
        return KP_ERR_OUT_OF_MEMORY;
    for (int32_t i = 0; i < s->n; i++) {
        const kp_added_tok *t = &s->tok[i];
        int32_t at = 0;
        for (uint32_t j = 0; j < t->len; j++) {
            unsigned char b = (unsigned char)t->text[j];
            int32_t c = find_child(s, at, b);
            if (c < 0) {
                if ((c = new_node(s, b)) < 0)
                    return KP_ERR_OUT_OF_MEMORY;
                s->node[c].sibling = s->node[at].child;
                s->node[at].child = c;
            }
            at = c;
        }
        /* the same text twice: Hugging Face keeps the later definition */
        s->node[at].tok = i;
        s->first[(unsigned char)t->text[0]] = 1;
    }
    return KP_OK;
}

void kp_added_free(kp_added_set *s)
{
    for (int32_t i = 0; i < s->n; i++)
        kp_dealloc(s->a, s->tok[i].text, s->tok[i].len + 1);
    kp_dealloc(s->a, s->tok, (size_t)s->cap * sizeof *s->tok);
    kp_dealloc(s->a, s->node, (size_t)s->node_cap * sizeof *s->node);
    memset(s, 0, sizeof *s);
}

void kp_seg_vec_free(kp_seg_vec *v)
{
    kp_dealloc(v->alloc, v->data, v->cap * sizeof *v->data);
    v->data = NULL;
    v->len = v->cap = 0;
}

static kp_status seg_push(kp_seg_vec *v, size_t start, size_t end, int32_t id)
{
    if (v->len == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 16;
        kp_added_seg *d = kp_realloc(v->alloc, v->data, v->cap * sizeof *d, nc * sizeof *d);
        if (!d)
            return KP_ERR_OUT_OF_MEMORY;
        v->data = d;
        v->cap = nc;
    }
    v->data[v->len].start = start;
    v->data[v->len].end = end;
    v->data[v->len].id = id;
    v->len++;
    return KP_OK;
}

int32_t kp_added_longest_at(const kp_added_set *set, const unsigned char *s, size_t n, size_t i, size_t *end)
{
    if (!set->n_node || !set->first[s[i]])
        return -1;
    int32_t at = 0, best = -1;
    for (size_t j = i; j < n; j++) {
        at = find_child(set, at, s[j]);
        if (at < 0)
            break;
        if (set->node[at].tok >= 0) {
            best = set->node[at].tok;
            *end = j + 1;
        }
    }
    return best;
}

static int is_word_char(int32_t cp) { return cp == '_' || (cp >= 0 && (kp_uclass((uint32_t)cp) & (KP_UC_L | KP_UC_N))); }

/* The last character of s[0..n), or -1. */
static int32_t last_cp(const unsigned char *s, size_t n, size_t *start)
{
    if (!n)
        return -1;
    size_t q = n - 1;
    while (q > 0 && (s[q] & 0xC0) == 0x80 && n - q < 4)
        q--;
    size_t l;
    int32_t cp = kp_utf8_decode(s + q, n - q, &l);
    if (q + l != n)
        cp = -1, q = n - 1;
    *start = q;
    return cp;
}

static kp_status split_leftmost(const kp_added_set *set, const unsigned char *s, size_t n, int parse_special,
                                kp_seg_vec *out)
{
    size_t seg = 0, i = 0;
    kp_status st = KP_OK;
    while (i < n && !st) {
        if (!set->first[s[i]]) {
            i++;
            continue;
        }
        size_t end = 0;
        int32_t k = kp_added_longest_at(set, s, n, i, &end);
        if (k < 0) {
            i++;
            continue;
        }
        const kp_added_tok *t = &set->tok[k];
        size_t start = i;
        i = end;
        if (t->special && !parse_special)
            continue;
        if (t->single_word) {
            size_t q, l;
            int before = start > 0 && is_word_char(last_cp(s, start, &q));
            int after = end < n && is_word_char(kp_utf8_decode(s + end, n - end, &l));
            if (before || after)
                continue;
        }
        if (t->lstrip) {
            while (start > seg) {
                size_t q;
                int32_t cp = last_cp(s, start, &q);
                if (cp < 0 || !(kp_uclass((uint32_t)cp) & KP_UC_S) || q < seg)
                    break;
                start = q;
            }
        }
        if (t->rstrip) {
            while (end < n) {
                size_t l;
                int32_t cp = kp_utf8_decode(s + end, n - end, &l);
                if (cp < 0 || !(kp_uclass((uint32_t)cp) & KP_UC_S))
                    break;
                end += l;
            }
            i = end;
        }
        if (start > seg)
            st = seg_push(out, seg, start, -1);
        if (!st)
            st = seg_push(out, start, end, t->id);
        seg = end;
    }
    if (!st && seg < n)
        st = seg_push(out, seg, n, -1);
    return st;
}

static const char *find_bytes(const char *h, size_t hn, const char *nd, size_t nn)
{
    if (nn > hn)
        return NULL;
    const char *end = h + hn - nn;
    for (const char *p = h; p <= end;) {
        const char *q = memchr(p, nd[0], (size_t)(end - p) + 1);
        if (!q)
            return NULL;
        if (memcmp(q, nd, nn) == 0)
            return q;
        p = q + 1;
    }
    return NULL;
}

static kp_status split_longest_first(const kp_added_set *set, const char *s, size_t n, int parse_special,
                                     kp_seg_vec *out)
{
    kp_seg_vec a = {NULL, 0, 0, set->a}, b = {NULL, 0, 0, set->a};
    kp_status st = seg_push(&a, 0, n, -1);
    for (int32_t k = 0; k < set->n && !st; k++) {
        const kp_added_tok *t = &set->tok[k];
        if (t->special && !parse_special)
            continue;
        b.len = 0;
        for (size_t i = 0; i < a.len && !st; i++) {
            kp_added_seg g = a.data[i];
            if (g.id >= 0) {
                st = seg_push(&b, g.start, g.end, g.id);
                continue;
            }
            size_t pos = g.start;
            const char *q;
            while (!st && (q = find_bytes(s + pos, g.end - pos, t->text, t->len)) != NULL) {
                size_t at = (size_t)(q - s);
                if (at > pos)
                    st = seg_push(&b, pos, at, -1);
                if (!st)
                    st = seg_push(&b, at, at + t->len, t->id);
                pos = at + t->len;
            }
            if (!st && pos < g.end)
                st = seg_push(&b, pos, g.end, -1);
        }
        kp_seg_vec tmp = a;
        a = b;
        b = tmp;
    }
    for (size_t i = 0; i < a.len && !st; i++)
        st = seg_push(out, a.data[i].start, a.data[i].end, a.data[i].id);
    kp_seg_vec_free(&a);
    kp_seg_vec_free(&b);
    return st;
}

kp_status kp_added_split(const kp_added_set *set, const char *s, size_t n, int parse_special, kp_seg_vec *out)
{
    if (!n)
        return KP_OK;
    if (!set->n)
        return seg_push(out, 0, n, -1);
    if (set->mode == KP_ADDED_LONGEST_FIRST)
        return split_longest_first(set, s, n, parse_special, out);
    return split_leftmost(set, (const unsigned char *)s, n, parse_special, out);
}
