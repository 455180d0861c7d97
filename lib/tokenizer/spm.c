/* Score-driven BPE (SentencePiece's bpe_model and llama.cpp's SPM tokenizer behave alike here;
 * the differences are confined to normalization and which pieces may result from a merge). */
#include "spm.h"

#include <stdio.h>
#include <string.h>

#include "unicode.h"

static const char ws_sym[] = "\xe2\x96\x81"; /* U+2581 */

static int parse_byte_piece(const char *p, size_t n)
{
    /* "<0xAB>" */
    if (n != 6 || p[0] != '<' || p[1] != '0' || p[2] != 'x' || p[5] != '>')
        return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else
            return -1;
    }
    return v;
}

kp_status kp_spm_build(kp_spm *m, kp_tokenizer *t, kp_spm_mode mode, int32_t n, const char *const *pieces,
                       const uint32_t *lens, const float *scores, const uint8_t *types)
{
    memset(m, 0, sizeof *m);
    m->a = t->alloc;
    m->mode = mode;
    m->n = n;
    m->unk = -1;
    m->add_dummy_prefix = 1;
    m->escape_ws = 1;
    for (int i = 0; i < 256; i++)
        m->byte_ids[i] = -1;
    kp_added_init(&m->user, m->a, KP_ADDED_LONGEST_FIRST);
    kp_added_init(&m->special, m->a, KP_ADDED_LONGEST_FIRST);
    m->mergeable = kp_alloc(m->a, (size_t)n);
    m->score = kp_alloc(m->a, (size_t)n * sizeof *m->score);
    if (!m->mergeable || !m->score)
        return KP_ERR_OUT_OF_MEMORY;
    kp_status st = kp_strmap_build(&m->all, m->a, n, pieces, lens, NULL);
    if (st)
        return st;
    /* decode pieces: U+2581 -> ' ', byte pieces -> their byte */
    size_t total = 0;
    for (int32_t i = 0; i < n; i++)
        total += lens[i];
    char *blob = kp_alloc(m->a, total ? total : 1);
    const char **dp = kp_alloc(m->a, (size_t)n * sizeof *dp);
    uint32_t *dl = kp_alloc(m->a, (size_t)n * sizeof *dl);
    if (!blob || !dp || !dl) {
        kp_dealloc(m->a, blob, total ? total : 1);
        kp_dealloc(m->a, (void *)dp, (size_t)n * sizeof *dp);
        kp_dealloc(m->a, dl, (size_t)n * sizeof *dl);
        return KP_ERR_OUT_OF_MEMORY;
    }
    size_t o = 0;
    for (int32_t i = 0; i < n && !st; i++) {
        uint8_t ty = types ? types[i] : KP_TOKEN_NORMAL;
        if (ty == KP_TOKEN_UNDEFINED || ty > KP_TOKEN_BYTE)
            ty = KP_TOKEN_NORMAL;
        t->type[i] = ty;
        m->score[i] = scores ? scores[i] : 0.0f;
        m->mergeable[i] = mode == KP_SPM_LLAMACPP || ty == KP_TOKEN_NORMAL || ty == KP_TOKEN_USER_DEFINED ||
                          ty == KP_TOKEN_UNUSED;
        const char *p = pieces[i];
        size_t l = lens[i];
        dp[i] = blob + o;
        if (ty == KP_TOKEN_BYTE) {
            int b = parse_byte_piece(p, l);
            if (b < 0) {
                st = kp_fail(KP_ERR_FORMAT, "byte piece %d is '%.*s', not <0xXX>", i, (int)(l > 40 ? 40 : l), p);
                break;
            }
            m->byte_ids[b] = i;
            blob[o++] = (char)b;
        } else if (ty == KP_TOKEN_CONTROL || ty == KP_TOKEN_UNKNOWN ||
                   (ty == KP_TOKEN_USER_DEFINED && mode == KP_SPM_LLAMACPP)) {
            memcpy(blob + o, p, l);
            o += l;
        } else {
            for (size_t j = 0; j < l;) {
                if (j + 3 <= l && memcmp(p + j, ws_sym, 3) == 0) {
                    blob[o++] = ' ';
                    j += 3;
                } else {
                    blob[o++] = p[j++];
                }
            }
        }
        dl[i] = (uint32_t)(blob + o - dp[i]);
        if (ty == KP_TOKEN_UNKNOWN && m->unk < 0)
            m->unk = i;
        if (ty == KP_TOKEN_USER_DEFINED && mode == KP_SPM_SENTENCEPIECE)
            st = kp_added_add(&m->user, p, l, i, 0, 0, 0, 0);
        if (!st && (ty == KP_TOKEN_CONTROL || ty == KP_TOKEN_UNKNOWN))
            st = kp_added_add(&m->special, p, l, i, 1, 0, 0, 0);
        if (!st && ty == KP_TOKEN_USER_DEFINED && mode == KP_SPM_LLAMACPP)
            st = kp_added_add(&m->special, p, l, i, 0, 0, 0, 0);
    }
    if (!st)
        st = kp_tokenizer_set_pieces(t, dp, dl);
    kp_dealloc(m->a, blob, total ? total : 1);
    kp_dealloc(m->a, (void *)dp, (size_t)n * sizeof *dp);
    kp_dealloc(m->a, dl, (size_t)n * sizeof *dl);
    if (!st)
        st = kp_added_finish(&m->user);
    if (!st)
        st = kp_added_finish(&m->special);
    if (!st && m->unk >= 0)
        t->unk = m->unk;
    return st;
}

void kp_spm_free(kp_spm *m)
{
    if (!m->a)
        return;
    kp_strmap_free(&m->all);
    kp_dealloc(m->a, m->mergeable, (size_t)m->n);
    kp_dealloc(m->a, m->score, (size_t)m->n * sizeof *m->score);
    kp_added_free(&m->user);
    kp_added_free(&m->special);
    memset(m, 0, sizeof *m);
}

/* ---- normalization */

/* SentencePiece's normalizer without a character map: one character at a time (a user-defined
 * piece counts as one), malformed bytes become U+FFFD, then the whitespace rules. */
static kp_status spm_normalize(const kp_spm *m, const char *s, size_t n, kp_buf *o)
{
    static const char fffd[] = "\xEF\xBF\xBD";
    const unsigned char *u = (const unsigned char *)s;
    const char *ws = m->escape_ws ? ws_sym : " ";
    size_t wsn = m->escape_ws ? 3 : 1;
    size_t i = 0;
    kp_status st = KP_OK;
    o->len = 0;
    if (m->remove_extra_ws)
        while (i < n && s[i] == ' ')
            i++;
    if (i == n)
        return kp_buf_append(o, "", 0);
    if (!m->ws_suffix && m->add_dummy_prefix && (st = kp_buf_append(o, ws, wsn)))
        return st;
    int prev_space = m->remove_extra_ws;
    while (i < n && !st) {
        const char *p = s + i;
        size_t pn, consumed;
        size_t end;
        if (m->user.n && kp_added_longest_at(&m->user, u, n, i, &end) >= 0) {
            pn = consumed = end - i;
        } else if (u[i] < 0x80) {
            pn = consumed = 1;
        } else if (kp_utf8_decode(u + i, n - i, &consumed) < 0) {
            p = fffd;
            pn = 3;
            consumed = 1;
        } else {
            pn = consumed;
        }
        while (prev_space && pn && p[0] == ' ') {
            p++;
            pn--;
        }
        if (pn) {
            for (size_t j = 0; j < pn && !st; j++)
                st = (p[j] == ' ' && m->escape_ws) ? kp_buf_append(o, ws_sym, 3) : kp_buf_append(o, p + j, 1);
            prev_space = p[pn - 1] == ' ';
        }
        i += consumed;
        if (!m->remove_extra_ws)
            prev_space = 0;
    }
    if (st)
        return st;
    if (m->remove_extra_ws)
        while (o->len >= wsn && memcmp(o->data + o->len - wsn, ws, wsn) == 0)
            o->len -= wsn;
    if (m->ws_suffix && m->add_dummy_prefix)
        st = kp_buf_append(o, ws, wsn);
    return st;
}

/* llama.cpp: optional leading space, then every space becomes U+2581; malformed UTF-8 becomes
 * U+FFFD first (the documented behaviour for non-byte-level vocabularies). */
static kp_status cpp_normalize(const char *s, size_t n, int prefix, kp_buf *o)
{
    const unsigned char *u = (const unsigned char *)s;
    kp_status st = KP_OK;
    o->len = 0;
    if (prefix)
        st = kp_buf_append(o, ws_sym, 3);
    for (size_t i = 0; i < n && !st;) {
        size_t l = 1;
        if (u[i] == ' ')
            st = kp_buf_append(o, ws_sym, 3);
        else if (u[i] < 0x80)
            st = kp_buf_append(o, s + i, 1);
        else if (kp_utf8_decode(u + i, n - i, &l) < 0)
            st = kp_buf_append(o, "\xEF\xBF\xBD", 3);
        else
            st = kp_buf_append(o, s + i, l);
        i += l;
    }
    if (!st && !o->data)
        st = kp_buf_append(o, "", 0);
    return st;
}

/* ---- the merge engine */

typedef struct sym {
    uint32_t start, len;
    int32_t prev, next;
    uint8_t frozen;
} sym;

typedef struct cand {
    float score;
    int32_t left, right;
    uint32_t size;
} cand;

typedef struct rev_rec {
    uint32_t start, len, left_len;
} rev_rec;

typedef struct spm_work {
    const kp_allocator *a;
    sym *sy;
    size_t sy_cap;
    cand *heap;
    size_t hn, h_cap;
    rev_rec *rev;
    size_t rn, r_cap;
} spm_work;

static int better(const cand *x, const cand *y)
{
    return x->score > y->score || (x->score == y->score && x->left < y->left);
}

static kp_status heap_push(spm_work *w, cand c)
{
    if (w->hn == w->h_cap) {
        size_t nc = w->h_cap ? w->h_cap * 2 : 64;
        cand *d = kp_realloc(w->a, w->heap, w->h_cap * sizeof *d, nc * sizeof *d);
        if (!d)
            return KP_ERR_OUT_OF_MEMORY;
        w->heap = d;
        w->h_cap = nc;
    }
    size_t i = w->hn++;
    while (i) {
        size_t p = (i - 1) / 2;
        if (!better(&c, &w->heap[p]))
            break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = c;
    return KP_OK;
}

static cand heap_pop(spm_work *w)
{
    cand top = w->heap[0], v = w->heap[--w->hn];
    size_t i = 0, n = w->hn;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && better(&w->heap[c + 1], &w->heap[c]))
            c++;
        if (!better(&w->heap[c], &v))
            break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n)
        w->heap[i] = v;
    return top;
}

static kp_status try_pair(const kp_spm *m, const kp_tokenizer *t, spm_work *w, const char *txt, int32_t l,
                          int32_t r)
{
    if (l < 0 || r < 0 || w->sy[l].frozen || w->sy[r].frozen)
        return KP_OK;
    uint32_t start = w->sy[l].start, size = w->sy[l].len + w->sy[r].len;
    int32_t id = kp_strmap_get(&m->all, txt + start, size);
    if (id < 0 || !m->mergeable[id])
        return KP_OK;
    cand c = {m->score[id], l, r, size};
    kp_status st = heap_push(w, c);
    if (!st && m->mode == KP_SPM_SENTENCEPIECE && t->type[id] == KP_TOKEN_UNUSED) {
        if (w->rn == w->r_cap) {
            size_t nc = w->r_cap ? w->r_cap * 2 : 16;
            rev_rec *d = kp_realloc(w->a, w->rev, w->r_cap * sizeof *d, nc * sizeof *d);
            if (!d)
                return KP_ERR_OUT_OF_MEMORY;
            w->rev = d;
            w->r_cap = nc;
        }
        rev_rec rr = {start, size, w->sy[l].len};
        w->rev[w->rn++] = rr;
    }
    return st;
}

static kp_status emit_unknown(const kp_spm *m, const char *p, size_t n, kp_ivec *out)
{
    kp_status st = KP_OK;
    if (m->byte_fallback || m->mode == KP_SPM_LLAMACPP) {
        size_t b = 0;
        while (b < n && m->byte_ids[(unsigned char)p[b]] >= 0)
            b++;
        if (b == n) {
            for (b = 0; b < n && !st; b++)
                st = kp_ivec_push(out, m->byte_ids[(unsigned char)p[b]]);
            return st;
        }
    }
    return m->unk >= 0 ? kp_ivec_push(out, m->unk) : KP_OK;
}

/* SentencePiece splits an UNUSED result back into the pair that formed it (the latest pair seen
 * with that text); llama.cpp emits any known piece as it is. */
static kp_status resegment(const kp_spm *m, const kp_tokenizer *t, const spm_work *w, const char *txt,
                           uint32_t start, uint32_t len, int depth, kp_ivec *out)
{
    int32_t id = kp_strmap_get(&m->all, txt + start, len);
    if (id < 0)
        return emit_unknown(m, txt + start, len, out);
    if (m->mode == KP_SPM_SENTENCEPIECE && t->type[id] == KP_TOKEN_UNUSED && depth < 64) {
        for (size_t k = w->rn; k-- > 0;) {
            const rev_rec *r = &w->rev[k];
            if (r->len == len && memcmp(txt + r->start, txt + start, len) == 0) {
                kp_status st = resegment(m, t, w, txt, start, r->left_len, depth + 1, out);
                if (!st)
                    st = resegment(m, t, w, txt, start + r->left_len, len - r->left_len, depth + 1, out);
                return st;
            }
        }
    }
    if (id == m->unk && m->mode == KP_SPM_SENTENCEPIECE)
        return emit_unknown(m, txt + start, len, out);
    return kp_ivec_push(out, id);
}

static kp_status spm_run(const kp_spm *m, const kp_tokenizer *t, spm_work *w, const char *txt, size_t n,
                         kp_ivec *out)
{
    if (!n)
        return KP_OK;
    if (n > UINT32_MAX / 2)
        return kp_fail(KP_ERR_INVALID_ARG, "text of %zu bytes is too long to encode at once", n);
    if (n > w->sy_cap) {
        sym *d = kp_alloc(w->a, n * sizeof *d); /* the old contents are not needed */
        if (!d)
            return KP_ERR_OUT_OF_MEMORY;
        kp_dealloc(w->a, w->sy, w->sy_cap * sizeof *w->sy);
        w->sy = d;
        w->sy_cap = n;
    }
    const unsigned char *u = (const unsigned char *)txt;
    int32_t k = 0;
    w->hn = 0;
    w->rn = 0;
    for (size_t i = 0; i < n;) {
        size_t l = 1, end;
        uint8_t frozen = 0;
        if (m->user.n && kp_added_longest_at(&m->user, u, n, i, &end) >= 0) {
            l = end - i;
            frozen = 1;
        } else if (u[i] >= 0x80) {
            kp_utf8_decode(u + i, n - i, &l);
        }
        sym *s = &w->sy[k];
        s->start = (uint32_t)i;
        s->len = (uint32_t)l;
        s->prev = k - 1;
        s->next = i + l < n ? k + 1 : -1;
        s->frozen = frozen;
        k++;
        i += l;
    }
    kp_status st = KP_OK;
    for (int32_t i = 1; i < k && !st; i++)
        st = try_pair(m, t, w, txt, i - 1, i);
    while (w->hn && !st) {
        cand c = heap_pop(w);
        sym *l = &w->sy[c.left], *r = &w->sy[c.right];
        if (!l->len || !r->len || l->len + r->len != c.size)
            continue; /* one side changed since this pair was queued */
        l->len += r->len;
        l->next = r->next;
        if (r->next >= 0)
            w->sy[r->next].prev = c.left;
        r->len = 0;
        st = try_pair(m, t, w, txt, l->prev, c.left);
        if (!st)
            st = try_pair(m, t, w, txt, c.left, l->next);
    }
    for (int32_t i = 0; i >= 0 && !st; i = w->sy[i].next)
        st = resegment(m, t, w, txt, w->sy[i].start, w->sy[i].len, 0, out);
    return st;
}

kp_status kp_spm_encode(const kp_tokenizer *t, const char *text, size_t len, uint32_t flags, kp_ivec *out)
{
    const kp_spm *m = t->impl;
    spm_work w;
    memset(&w, 0, sizeof w);
    w.a = t->alloc;
    kp_buf norm;
    kp_buf_init(&norm, t->alloc);
    kp_seg_vec segs = {NULL, 0, 0, t->alloc};
    kp_status st = KP_OK;
    int add = (flags & KP_TOKENIZE_ADD_SPECIAL) != 0;
    if (add && m->add_bos && t->bos >= 0)
        st = kp_ivec_push(out, t->bos);
    int parse = (flags & KP_TOKENIZE_PARSE_SPECIAL) != 0;
    if (!st && (parse || m->mode == KP_SPM_LLAMACPP) && m->special.n)
        st = kp_added_split(&m->special, text, len, parse, &segs);
    else if (!st && len) {
        kp_added_seg g = {0, len, -1};
        segs.data = kp_alloc(t->alloc, sizeof g);
        if (!segs.data)
            st = KP_ERR_OUT_OF_MEMORY;
        else {
            segs.data[0] = g;
            segs.len = segs.cap = 1;
        }
    }
    int prev_special = 1;
    for (size_t i = 0; i < segs.len && !st; i++) {
        const kp_added_seg *g = &segs.data[i];
        if (g->id >= 0) {
            st = kp_ivec_push(out, g->id);
            prev_special = 1;
            continue;
        }
        if (m->mode == KP_SPM_LLAMACPP)
            st = cpp_normalize(text + g->start, g->end - g->start, m->add_dummy_prefix && prev_special, &norm);
        else
            st = spm_normalize(m, text + g->start, g->end - g->start, &norm);
        if (!st)
            st = spm_run(m, t, &w, norm.data, norm.len, out);
        prev_special = 0;
    }
    if (!st && add && m->add_eos && t->eos >= 0)
        st = kp_ivec_push(out, t->eos);
    kp_seg_vec_free(&segs);
    kp_buf_free(&norm);
    kp_dealloc(w.a, w.sy, w.sy_cap * sizeof *w.sy);
    kp_dealloc(w.a, w.heap, w.h_cap * sizeof *w.heap);
    kp_dealloc(w.a, w.rev, w.r_cap * sizeof *w.rev);
    return st;
}

void kp_spm_destroy(kp_tokenizer *t)
{
    kp_tokenizer_free_chat_template(t);
    kp_spm *m = t->impl;
    if (!m)
        return;
    const kp_allocator *a = m->a ? m->a : t->alloc;
    kp_spm_free(m);
    kp_dealloc(a, m, sizeof *m);
    t->impl = NULL;
}
