/* Running the normalizer and pre-tokenizer steps. Pieces are spans into one text buffer;
 * steps that change text (prefix space, Metaspace) append the new text to that buffer. */
#include "pretok.h"

#include <string.h>

/* ---- normalizers */

static const char *find_lit(const char *h, size_t hn, const char *nd, size_t nn)
{
    if (!nn || nn > hn)
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

static kp_status apply_norm(const kp_norm_step *st, const char *s, size_t n, kp_buf *o)
{
    kp_status r = KP_OK;
    switch (st->kind) {
    case KP_NORM_NF:
        return kp_unicode_normalize(st->nf, s, n, o);
    case KP_NORM_LOWER:
        return kp_unicode_lower(s, n, o);
    case KP_NORM_PREPEND:
        if (n && (r = kp_buf_append(o, st->s1, st->n1)))
            return r;
        return kp_buf_append(o, s, n);
    case KP_NORM_STRIP: {
        const unsigned char *u = (const unsigned char *)s;
        size_t b = 0, e = n;
        if (st->left) {
            while (b < e) {
                size_t l;
                int32_t cp = kp_utf8_decode(u + b, e - b, &l);
                if (cp < 0 || !(kp_uclass((uint32_t)cp) & KP_UC_S))
                    break;
                b += l;
            }
        }
        if (st->right) {
            while (e > b) {
                size_t q = e - 1;
                while (q > b && (u[q] & 0xC0) == 0x80 && e - q < 4)
                    q--;
                size_t l;
                int32_t cp = kp_utf8_decode(u + q, e - q, &l);
                if (cp < 0 || q + l != e || !(kp_uclass((uint32_t)cp) & KP_UC_S))
                    break;
                e = q;
            }
        }
        return kp_buf_append(o, s + b, e - b);
    }
    case KP_NORM_REPLACE: {
        size_t pos = 0;
        if (st->re) {
            kp_span_vec m = {NULL, 0, 0, o->alloc};
            r = kp_regex_find_all(st->re, s, n, &m);
            for (size_t i = 0; i < m.len && !r; i++) {
                if (!(r = kp_buf_append(o, s + pos, m.data[i].start - pos)))
                    r = kp_buf_append(o, st->s2, st->n2);
                pos = m.data[i].end;
            }
            kp_span_vec_free(&m);
        } else {
            const char *q;
            while (!r && (q = find_lit(s + pos, n - pos, st->s1, st->n1)) != NULL) {
                size_t at = (size_t)(q - s);
                if (!(r = kp_buf_append(o, s + pos, at - pos)))
                    r = kp_buf_append(o, st->s2, st->n2);
                pos = at + st->n1;
            }
        }
        if (!r)
            r = kp_buf_append(o, s + pos, n - pos);
        return r;
    }
    }
    return kp_fail(KP_ERR_INTERNAL, "unknown normalizer step %d", (int)st->kind);
}

kp_status kp_normalize(const kp_norm_step *steps, int n_steps, const char *s, size_t n, kp_buf *a, kp_buf *b,
                       const char **out, size_t *out_len)
{
    const char *cur = s;
    size_t cn = n;
    kp_buf *dst = a;
    for (int i = 0; i < n_steps; i++) {
        dst->len = 0;
        kp_status st = apply_norm(&steps[i], cur, cn, dst);
        if (!st && !dst->data)
            st = kp_buf_append(dst, "", 0);
        if (st)
            return st;
        cur = dst->data;
        cn = dst->len;
        dst = dst == a ? b : a;
    }
    *out = cur;
    *out_len = cn;
    return KP_OK;
}

void kp_norm_step_free(const kp_allocator *a, kp_norm_step *st)
{
    if (st->s1)
        kp_dealloc(a, st->s1, st->n1 + 1);
    if (st->s2)
        kp_dealloc(a, st->s2, st->n2 + 1);
    kp_regex_free(st->re);
    memset(st, 0, sizeof *st);
}

/* ---- pre-tokenizers */

void kp_pretok_scratch_init(kp_pretok_scratch *s, const kp_allocator *a)
{
    memset(s, 0, sizeof *s);
    kp_buf_init(&s->text, a);
    kp_buf_init(&s->seg_match, a);
    s->cur.alloc = s->next.alloc = s->matches.alloc = s->segs.alloc = kp_allocator_or_default(a);
}

void kp_pretok_scratch_free(kp_pretok_scratch *s)
{
    kp_buf_free(&s->text);
    kp_span_vec_free(&s->cur);
    kp_span_vec_free(&s->next);
    kp_span_vec_free(&s->matches);
    kp_span_vec_free(&s->segs);
    kp_buf_free(&s->seg_match);
}

/* Appends the pieces of [off, off+len) given the match list (offsets relative to off), arranged
 * the way Hugging Face's SplitDelimiterBehavior treats matches and the text between them. */
static kp_status split_piece(kp_pretok_scratch *sc, size_t off, size_t len, kp_split_behavior beh, int invert)
{
    const kp_span_vec *m = &sc->matches;
    kp_span_vec *out = &sc->next;
    kp_span_vec *seg = &sc->segs;
    kp_buf *flag = &sc->seg_match;
    seg->len = 0;
    flag->len = 0;
    kp_status st = KP_OK;
    size_t pos = 0;
    for (size_t i = 0; i <= m->len && !st; i++) {
        size_t e = i < m->len ? m->data[i].start : len;
        char f = (char)(invert ? 1 : 0);
        if (e > pos && !(st = kp_span_push(seg, off + pos, off + e)))
            st = kp_buf_append(flag, &f, 1);
        if (i < m->len && !st) {
            f = (char)(invert ? 0 : 1);
            if (!(st = kp_span_push(seg, off + m->data[i].start, off + m->data[i].end)))
                st = kp_buf_append(flag, &f, 1);
            pos = m->data[i].end;
        }
    }
    if (st)
        return st;
    size_t k = seg->len, first = out->len;
    const kp_span *g = seg->data;
    const char *is = flag->data;
    int prev = 0;
    switch (beh) {
    case KP_SPLIT_REMOVED:
        for (size_t i = 0; i < k && !st; i++)
            if (!is[i])
                st = kp_span_push(out, g[i].start, g[i].end);
        return st;
    case KP_SPLIT_ISOLATED:
        for (size_t i = 0; i < k && !st; i++)
            st = kp_span_push(out, g[i].start, g[i].end);
        return st;
    case KP_SPLIT_MERGED_PREV:
        for (size_t i = 0; i < k && !st; i++) {
            if (is[i] && !prev && out->len > first)
                out->data[out->len - 1].end = g[i].end;
            else
                st = kp_span_push(out, g[i].start, g[i].end);
            prev = is[i];
        }
        return st;
    case KP_SPLIT_CONTIGUOUS:
        for (size_t i = 0; i < k && !st; i++) {
            if (i > 0 && is[i] == prev)
                out->data[out->len - 1].end = g[i].end;
            else
                st = kp_span_push(out, g[i].start, g[i].end);
            prev = is[i];
        }
        return st;
    case KP_SPLIT_MERGED_NEXT:
        /* a match followed by a non-match starts that non-match's piece */
        for (size_t i = 0; i < k && !st; i++) {
            if (is[i] && i + 1 < k && !is[i + 1]) {
                st = kp_span_push(out, g[i].start, g[i + 1].end);
                i++;
            } else {
                st = kp_span_push(out, g[i].start, g[i].end);
            }
        }
        return st;
    }
    return st;
}

static kp_status find_matches(const kp_pre_step *ps, const char *s, size_t n, kp_span_vec *m)
{
    m->len = 0;
    if (ps->fast)
        return kp_fast_find_all(ps->fast, ps->fold_long_s, s, n, m);
    if (ps->re)
        return kp_regex_find_all(ps->re, s, n, m);
    size_t pos = 0;
    const char *q;
    while ((q = find_lit(s + pos, n - pos, ps->s, ps->ns)) != NULL) {
        size_t at = (size_t)(q - s);
        kp_status st = kp_span_push(m, at, at + ps->ns);
        if (st)
            return st;
        pos = at + ps->ns;
    }
    return KP_OK;
}

static kp_status step_piece(const kp_pre_step *ps, kp_pretok_scratch *sc, size_t off, size_t len, int first_piece,
                            int at_start)
{
    kp_status st;
    switch (ps->kind) {
    case KP_PRE_SPLIT:
        if ((st = find_matches(ps, sc->text.data + off, len, &sc->matches)))
            return st;
        return split_piece(sc, off, len, ps->behavior, ps->invert);
    case KP_PRE_BYTELEVEL: {
        if (ps->add_prefix_space && (len == 0 || sc->text.data[off] != ' ')) {
            size_t noff = sc->text.len;
            if ((st = kp_buf_append(&sc->text, " ", 1)))
                return st;
            if ((st = kp_buf_append_own(&sc->text, off, len)))
                return st;
            off = noff;
            len++;
        }
        if (!ps->use_regex)
            return kp_span_push(&sc->next, off, off + len);
        sc->matches.len = 0;
        if ((st = kp_fast_find_all(KP_FAST_GPT2, 0, sc->text.data + off, len, &sc->matches)))
            return st;
        return split_piece(sc, off, len, KP_SPLIT_ISOLATED, 0);
    }
    case KP_PRE_METASPACE: {
        size_t noff = sc->text.len;
        const char *rep = ps->s;
        size_t rn = ps->ns;
        int starts_rep = len >= rn && memcmp(sc->text.data + off, rep, rn) == 0;
        int starts_space = len && sc->text.data[off] == ' ';
        int prepend = !starts_rep && !starts_space &&
                      (ps->prepend == 2 || (ps->prepend == 1 && first_piece && at_start));
        /* a leading space becomes the replacement, so it counts as already starting with it */
        if (prepend && (st = kp_buf_append(&sc->text, rep, rn)))
            return st;
        for (size_t i = 0; i < len; i++) {
            char c = sc->text.data[off + i];
            st = c == ' ' ? kp_buf_append(&sc->text, rep, rn) : kp_buf_append(&sc->text, &c, 1);
            if (st)
                return st;
        }
        size_t nlen = sc->text.len - noff;
        if (!ps->split)
            return nlen ? kp_span_push(&sc->next, noff, noff + nlen) : KP_OK;
        kp_pre_step lit = *ps;
        lit.fast = KP_FAST_NONE;
        lit.re = NULL;
        if ((st = find_matches(&lit, sc->text.data + noff, nlen, &sc->matches)))
            return st;
        return split_piece(sc, noff, nlen, KP_SPLIT_MERGED_NEXT, 0);
    }
    }
    return kp_fail(KP_ERR_INTERNAL, "unknown pre-tokenizer step %d", (int)ps->kind);
}

kp_status kp_pretokenize(const kp_pre_step *steps, int n_steps, const char *s, size_t n, int at_start,
                         kp_pretok_scratch *sc)
{
    sc->text.len = 0;
    sc->cur.len = 0;
    kp_status st = kp_buf_append(&sc->text, s, n);
    if (st || !n)
        return st;
    if ((st = kp_span_push(&sc->cur, 0, n)))
        return st;
    for (int k = 0; k < n_steps; k++) {
        sc->next.len = 0;
        for (size_t i = 0; i < sc->cur.len; i++) {
            kp_span p = sc->cur.data[i];
            if ((st = step_piece(&steps[k], sc, p.start, p.end - p.start, i == 0, at_start)))
                return st;
        }
        kp_span_vec t = sc->cur;
        sc->cur = sc->next;
        sc->next = t;
    }
    return KP_OK;
}

void kp_pre_step_free(const kp_allocator *a, kp_pre_step *st)
{
    if (st->s)
        kp_dealloc(a, st->s, st->ns + 1);
    kp_regex_free(st->re);
    memset(st, 0, sizeof *st);
}
