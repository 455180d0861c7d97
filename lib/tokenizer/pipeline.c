/* Encoding through the Hugging Face pipeline. Each stretch of plain text between added tokens is
 * normalized, pre-tokenized and run through BPE on its own, as Hugging Face does. */
#include "pipeline.h"

#include <string.h>

static void bpe_tok_destroy(kp_tokenizer *t)
{
    kp_bpe_tok *p = t->impl;
    kp_tokenizer_free_chat_template(t);
    if (!p)
        return;
    const kp_allocator *a = p->a;
    kp_added_free(&p->added);
    kp_added_free(&p->added_norm);
    for (int i = 0; i < p->n_norm; i++)
        kp_norm_step_free(a, &p->norm[i]);
    kp_dealloc(a, p->norm, (size_t)p->cap_norm * sizeof *p->norm);
    for (int i = 0; i < p->n_pre; i++)
        kp_pre_step_free(a, &p->pre[i]);
    kp_dealloc(a, p->pre, (size_t)p->cap_pre * sizeof *p->pre);
    kp_bpe_free(&p->bpe);
    kp_dealloc(a, p->prefix, (size_t)p->n_prefix * sizeof *p->prefix);
    kp_dealloc(a, p->suffix, (size_t)p->n_suffix * sizeof *p->suffix);
    kp_dealloc(a, p, sizeof *p);
    t->impl = NULL;
}

/* Per-call cache of the ids of words seen before. Long texts repeat most of their words, and a
 * lookup is much cheaper than merging again; short texts skip it (see KP_WCACHE_MIN_TEXT). */
#define KP_WCACHE_MIN_TEXT 4096
#define KP_WCACHE_MAX_WORD 48

typedef struct wc_entry {
    uint64_t hash;
    uint32_t key_off, key_len, ids_off, ids_n;
} wc_entry;

typedef struct wcache {
    const kp_allocator *a;
    uint32_t *slot; /* entry index + 1; 0 = empty */
    size_t mask;
    wc_entry *ent;
    size_t n_ent, cap_ent;
    kp_buf keys;
    kp_ivec ids;
} wcache;

static void wc_free(wcache *c)
{
    if (c->slot)
        kp_dealloc(c->a, c->slot, (c->mask + 1) * sizeof *c->slot);
    kp_dealloc(c->a, c->ent, c->cap_ent * sizeof *c->ent);
    kp_buf_free(&c->keys);
    kp_ivec_free(&c->ids);
    memset(c, 0, sizeof *c);
}

static kp_status wc_grow(wcache *c)
{
    size_t ncap = c->slot ? (c->mask + 1) * 2 : 4096;
    uint32_t *ns = kp_calloc(c->a, ncap, sizeof *ns);
    if (!ns)
        return KP_ERR_OUT_OF_MEMORY;
    for (size_t e = 0; e < c->n_ent; e++) {
        size_t i = (size_t)c->ent[e].hash & (ncap - 1);
        while (ns[i])
            i = (i + 1) & (ncap - 1);
        ns[i] = (uint32_t)e + 1;
    }
    if (c->slot)
        kp_dealloc(c->a, c->slot, (c->mask + 1) * sizeof *c->slot);
    c->slot = ns;
    c->mask = ncap - 1;
    return KP_OK;
}

/* Appends the ids of word w[0..n), from the cache or by running BPE and remembering them. */
static kp_status wc_word(const kp_bpe *m, wcache *c, kp_bpe_scratch *bs, const char *w, size_t n, kp_ivec *out)
{
    uint64_t h = kp_hash_bytes(w, n);
    size_t i = (size_t)h & c->mask;
    for (uint32_t e; (e = c->slot[i]) != 0; i = (i + 1) & c->mask) {
        const wc_entry *en = &c->ent[e - 1];
        if (en->hash == h && en->key_len == n && memcmp(c->keys.data + en->key_off, w, n) == 0) {
            kp_status st = kp_ivec_reserve(out, out->len + en->ids_n);
            if (st)
                return st;
            memcpy(out->data + out->len, c->ids.data + en->ids_off, en->ids_n * sizeof *out->data);
            out->len += en->ids_n;
            return KP_OK;
        }
    }
    size_t before = out->len;
    kp_status st = kp_bpe_word(m, w, n, bs, out);
    if (st)
        return st;
    if ((c->n_ent + 1) * 2 > c->mask + 1 || c->n_ent == c->cap_ent) {
        if ((c->n_ent + 1) * 2 > c->mask + 1 && (st = wc_grow(c)))
            return st;
        if (c->n_ent == c->cap_ent) {
            size_t nc = c->cap_ent ? c->cap_ent * 2 : 1024;
            wc_entry *d = kp_realloc(c->a, c->ent, c->cap_ent * sizeof *d, nc * sizeof *d);
            if (!d)
                return KP_ERR_OUT_OF_MEMORY;
            c->ent = d;
            c->cap_ent = nc;
        }
        i = (size_t)h & c->mask;
        while (c->slot[i])
            i = (i + 1) & c->mask;
    }
    size_t k = out->len - before;
    wc_entry en = {h, (uint32_t)c->keys.len, (uint32_t)n, (uint32_t)c->ids.len, (uint32_t)k};
    if ((st = kp_buf_append(&c->keys, w, n)) || (st = kp_ivec_reserve(&c->ids, c->ids.len + k)))
        return st;
    memcpy(c->ids.data + c->ids.len, out->data + before, k * sizeof *out->data);
    c->ids.len += k;
    c->ent[c->n_ent++] = en;
    c->slot[i] = (uint32_t)c->n_ent;
    return KP_OK;
}

typedef struct enc_work {
    kp_buf na, nb; /* normalizer buffers */
    kp_pretok_scratch pre;
    kp_bpe_scratch bpe;
    kp_seg_vec segs;
    wcache cache;
    int use_cache;
} enc_work;

static kp_status run_words(const kp_bpe_tok *p, enc_work *w, const char *s, size_t n, int at_start, kp_ivec *out)
{
    kp_status st = kp_pretokenize(p->pre, p->n_pre, s, n, at_start, &w->pre);
    if (!st && w->use_cache && !w->cache.slot)
        st = wc_grow(&w->cache);
    for (size_t i = 0; i < w->pre.cur.len && !st; i++) {
        kp_span sp = w->pre.cur.data[i];
        size_t len = sp.end - sp.start;
        const char *word = w->pre.text.data + sp.start;
        if (w->use_cache && len <= KP_WCACHE_MAX_WORD && len > 1)
            st = wc_word(&p->bpe, &w->cache, &w->bpe, word, len, out);
        else
            st = kp_bpe_word(&p->bpe, word, len, &w->bpe, out);
    }
    return st;
}

static kp_status run_plain(const kp_bpe_tok *p, enc_work *w, const char *s, size_t n, int at_start, int parse,
                           kp_ivec *out)
{
    const char *ns;
    size_t nn;
    kp_status st = kp_normalize(p->norm, p->n_norm, s, n, &w->na, &w->nb, &ns, &nn);
    if (st)
        return st;
    if (!p->added_norm.n)
        return run_words(p, w, ns, nn, at_start, out);
    kp_seg_vec segs = {NULL, 0, 0, p->a};
    st = kp_added_split(&p->added_norm, ns, nn, parse, &segs);
    for (size_t i = 0; i < segs.len && !st; i++) {
        const kp_added_seg *g = &segs.data[i];
        if (g->id >= 0)
            st = kp_ivec_push(out, g->id);
        else
            st = run_words(p, w, ns + g->start, g->end - g->start, at_start && g->start == 0, out);
    }
    kp_seg_vec_free(&segs);
    return st;
}

/* Replaces each byte that starts no valid UTF-8 sequence with U+FFFD. */
static kp_status sanitize(const char *s, size_t n, kp_buf *o)
{
    kp_status st = KP_OK;
    size_t i = 0;
    while (i < n && !st) {
        size_t v = kp_utf8_valid_prefix(s + i, n - i);
        st = kp_buf_append(o, s + i, v);
        i += v;
        if (i < n && !st) {
            st = kp_buf_append(o, "\xEF\xBF\xBD", 3);
            i++;
        }
    }
    return st;
}

static kp_status bpe_tok_encode(const kp_tokenizer *t, const char *text, size_t len, uint32_t flags, kp_ivec *out)
{
    const kp_bpe_tok *p = t->impl;
    const kp_allocator *a = t->alloc;
    kp_status st = KP_OK;
    int parse = (flags & KP_TOKENIZE_PARSE_SPECIAL) != 0;
    kp_buf clean;
    kp_buf_init(&clean, a);
    if (p->valid_utf8_only && kp_utf8_valid_prefix(text, len) != len) {
        if ((st = sanitize(text, len, &clean)))
            return st;
        text = clean.data;
        len = clean.len;
    }
    enc_work w;
    memset(&w, 0, sizeof w);
    kp_buf_init(&w.na, a);
    kp_buf_init(&w.nb, a);
    kp_pretok_scratch_init(&w.pre, a);
    kp_bpe_scratch_init(&w.bpe, a);
    w.segs.alloc = a;
    w.cache.a = a;
    kp_buf_init(&w.cache.keys, a);
    kp_ivec_init(&w.cache.ids, a);
    w.use_cache = len >= KP_WCACHE_MIN_TEXT;
    if (flags & KP_TOKENIZE_ADD_SPECIAL)
        for (int i = 0; i < p->n_prefix && !st; i++)
            st = kp_ivec_push(out, p->prefix[i]);
    if (!st)
        st = kp_added_split(&p->added, text, len, parse, &w.segs);
    for (size_t i = 0; i < w.segs.len && !st; i++) {
        const kp_added_seg *g = &w.segs.data[i];
        if (g->id >= 0)
            st = kp_ivec_push(out, g->id);
        else
            st = run_plain(p, &w, text + g->start, g->end - g->start, g->start == 0, parse, out);
    }
    if (flags & KP_TOKENIZE_ADD_SPECIAL)
        for (int i = 0; i < p->n_suffix && !st; i++)
            st = kp_ivec_push(out, p->suffix[i]);
    kp_seg_vec_free(&w.segs);
    wc_free(&w.cache);
    kp_bpe_scratch_free(&w.bpe);
    kp_pretok_scratch_free(&w.pre);
    kp_buf_free(&w.na);
    kp_buf_free(&w.nb);
    kp_buf_free(&clean);
    return st;
}

static const kp_tokenizer_vtbl bpe_tok_vtbl = {"bpe", bpe_tok_encode, bpe_tok_destroy};

kp_status kp_bpe_tok_new(const kp_allocator *a, int32_t n_vocab, kp_tokenizer **out)
{
    *out = NULL;
    a = kp_allocator_or_default(a);
    kp_tokenizer *t;
    kp_status st = kp_tokenizer_alloc(a, n_vocab, &t);
    if (st)
        return st;
    kp_bpe_tok *p = kp_calloc(a, 1, sizeof *p);
    if (!p) {
        kp_tokenizer_free(t);
        return KP_ERR_OUT_OF_MEMORY;
    }
    p->a = a;
    kp_added_init(&p->added, a, KP_ADDED_LEFTMOST_LONGEST);
    kp_added_init(&p->added_norm, a, KP_ADDED_LEFTMOST_LONGEST);
    p->bpe.a = a;
    p->bpe.unk = -1;
    for (int i = 0; i < 256; i++)
        p->bpe.byte_ids[i] = -1;
    t->impl = p;
    t->vt = &bpe_tok_vtbl;
    *out = t;
    return KP_OK;
}

kp_status kp_bpe_tok_add_norm(kp_bpe_tok *p, const kp_norm_step *s)
{
    if (p->n_norm == p->cap_norm) {
        int nc = p->cap_norm ? p->cap_norm * 2 : 4;
        kp_norm_step *d = kp_realloc(p->a, p->norm, (size_t)p->cap_norm * sizeof *d, (size_t)nc * sizeof *d);
        if (!d)
            return KP_ERR_OUT_OF_MEMORY;
        p->norm = d;
        p->cap_norm = nc;
    }
    p->norm[p->n_norm++] = *s;
    return KP_OK;
}

kp_status kp_bpe_tok_add_pre(kp_bpe_tok *p, const kp_pre_step *s)
{
    if (p->n_pre == p->cap_pre) {
        int nc = p->cap_pre ? p->cap_pre * 2 : 4;
        kp_pre_step *d = kp_realloc(p->a, p->pre, (size_t)p->cap_pre * sizeof *d, (size_t)nc * sizeof *d);
        if (!d)
            return KP_ERR_OUT_OF_MEMORY;
        p->pre = d;
        p->cap_pre = nc;
    }
    p->pre[p->n_pre++] = *s;
    return KP_OK;
}

kp_status kp_bpe_tok_add_post(kp_bpe_tok *p, int where, int32_t id)
{
    int32_t **arr = where ? &p->suffix : &p->prefix;
    int *n = where ? &p->n_suffix : &p->n_prefix;
    int32_t *d = kp_realloc(p->a, *arr, (size_t)*n * sizeof *d, ((size_t)*n + 1) * sizeof *d);
    if (!d)
        return KP_ERR_OUT_OF_MEMORY;
    d[(*n)++] = id;
    *arr = d;
    return KP_OK;
}

static int32_t find_special(const kp_tokenizer *t, const char *text)
{
    size_t n = strlen(text);
    for (int32_t i = 0; i < t->n_vocab; i++) {
        if (t->type[i] != KP_TOKEN_CONTROL && t->type[i] != KP_TOKEN_USER_DEFINED)
            continue;
        size_t l;
        const char *p = kp_tokenizer_piece(t, i, &l);
        if (l == n && memcmp(p, text, n) == 0)
            return i;
    }
    return -1;
}

void kp_tokenizer_mark_eog(kp_tokenizer *t)
{
    static const char *const eot_names[] = {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>"};
    static const char *const eog_names[] = {"<|eot_id|>",    "<|im_end|>", "<|end|>", "<end_of_turn>",
                                            "<|endoftext|>", "<|eom_id|>", "<EOT>",   "<|end_of_text|>"};
    if (t->eot < 0)
        for (size_t i = 0; i < sizeof eot_names / sizeof eot_names[0] && t->eot < 0; i++)
            t->eot = find_special(t, eot_names[i]);
    for (size_t i = 0; i < sizeof eog_names / sizeof eog_names[0]; i++) {
        int32_t id = find_special(t, eog_names[i]);
        if (id >= 0)
            t->eog[id] = 1;
    }
    if (t->eos >= 0 && t->eos < t->n_vocab)
        t->eog[t->eos] = 1;
    if (t->eot >= 0 && t->eot < t->n_vocab)
        t->eog[t->eot] = 1;
}

kp_status kp_tokenizer_set_chat_template(kp_tokenizer *t, const char *s, size_t n)
{
    kp_tokenizer_free_chat_template(t);
    t->chat_template = kp_strndup(t->alloc, s, n);
    if (!t->chat_template)
        return KP_ERR_OUT_OF_MEMORY;
    t->chat_template_len = n;
    return KP_OK;
}

void kp_tokenizer_free_chat_template(kp_tokenizer *t)
{
    if (t->chat_template)
        kp_dealloc(t->alloc, t->chat_template, t->chat_template_len + 1);
    t->chat_template = NULL;
    t->chat_template_len = 0;
}
