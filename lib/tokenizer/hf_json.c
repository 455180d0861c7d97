/* Hugging Face tokenizer.json (model type BPE) and the tokenizer_config.json beside it. */
#include <stdio.h>
#include <string.h>

#include "../json.h"
#include "../mapfile.h"
#include "pipeline.h"

typedef struct loader {
    const kp_allocator *a;
    const char *what; /* file name for messages */
    kp_tokenizer *t;
    kp_bpe_tok *p;
    int byte_level;
    int has_bytelevel_pre;
    /* byte-level files: tokens as spelled in the file -> id, built only if some token in the
     * file is not valid byte-level text (normally everything goes through the raw-byte map) */
    kp_strmap by_key;
    int by_key_built;
    const char **keys;
    const uint32_t *key_lens;
    const uint8_t *key_in;
} loader;

/* Id of a model token as the file spells it; -1 if there is none. */
static int32_t spell_get(loader *L, const char *s, size_t n, kp_status *st)
{
    kp_bpe *b = &L->p->bpe;
    *st = KP_OK;
    if (!L->byte_level)
        return kp_strmap_get(&b->vocab, s, n);
    char small[256];
    kp_buf big;
    kp_buf_init(&big, L->a);
    char *buf = small;
    if (n > sizeof small) {
        if ((*st = kp_buf_append(&big, s, n)))
            return -1;
        buf = big.data;
    }
    long m = kp_bytelevel_decode(s, n, buf);
    int32_t id = m >= 0 ? kp_strmap_get(&b->vocab, buf, (size_t)m) : -1;
    kp_buf_free(&big);
    if (m >= 0)
        return id;
    if (!L->by_key_built) {
        if ((*st = kp_strmap_build(&L->by_key, L->a, L->t->n_vocab, L->keys, L->key_lens, L->key_in)))
            return -1;
        L->by_key_built = 1;
    }
    return kp_strmap_get(&L->by_key, s, n);
}

static kp_status unsupported(const loader *L, const char *where, const kp_json *type)
{
    if (type && type->type == KP_JSON_STRING)
        return kp_fail(KP_ERR_UNSUPPORTED, "%s: %s type '%.*s' is not supported", L->what, where, (int)type->len,
                       type->u.str);
    return kp_fail(KP_ERR_FORMAT, "%s: %s has no \"type\"", L->what, where);
}

static char *dup_str(const loader *L, const kp_json *s)
{
    return kp_strndup(L->a, s->u.str, s->len);
}

/* ---- normalizer */

static kp_status add_norm(loader *L, const kp_json *n)
{
    if (!n || n->type == KP_JSON_NULL)
        return KP_OK;
    const kp_json *ty = kp_json_get_type(n, "type", KP_JSON_STRING);
    kp_norm_step s;
    memset(&s, 0, sizeof s);
    kp_status st = KP_OK;
    if (kp_json_str_eq(ty, "Sequence")) {
        const kp_json *list = kp_json_get_type(n, "normalizers", KP_JSON_ARRAY);
        if (!list)
            return kp_fail(KP_ERR_FORMAT, "%s: normalizer Sequence without a \"normalizers\" list", L->what);
        for (uint32_t i = 0; i < list->len && !st; i++)
            st = add_norm(L, &list->u.kids[i]);
        return st;
    }
    if (kp_json_str_eq(ty, "NFC") || kp_json_str_eq(ty, "NFD") || kp_json_str_eq(ty, "NFKC") ||
        kp_json_str_eq(ty, "NFKD")) {
        s.kind = KP_NORM_NF;
        s.nf = kp_json_str_eq(ty, "NFC")    ? KP_NF_NFC
               : kp_json_str_eq(ty, "NFD")  ? KP_NF_NFD
               : kp_json_str_eq(ty, "NFKC") ? KP_NF_NFKC
                                            : KP_NF_NFKD;
    } else if (kp_json_str_eq(ty, "Lowercase")) {
        s.kind = KP_NORM_LOWER;
    } else if (kp_json_str_eq(ty, "Strip")) {
        s.kind = KP_NORM_STRIP;
        s.left = kp_json_bool(kp_json_get(n, "strip_left"), 1);
        s.right = kp_json_bool(kp_json_get(n, "strip_right"), 1);
    } else if (kp_json_str_eq(ty, "Prepend")) {
        const kp_json *pp = kp_json_get_type(n, "prepend", KP_JSON_STRING);
        if (!pp)
            return kp_fail(KP_ERR_FORMAT, "%s: Prepend normalizer without a \"prepend\" string", L->what);
        s.kind = KP_NORM_PREPEND;
        if (!(s.s1 = dup_str(L, pp)))
            return KP_ERR_OUT_OF_MEMORY;
        s.n1 = pp->len;
    } else if (kp_json_str_eq(ty, "Replace")) {
        const kp_json *pat = kp_json_get_type(n, "pattern", KP_JSON_OBJECT);
        const kp_json *content = kp_json_get_type(n, "content", KP_JSON_STRING);
        const kp_json *ps = kp_json_get_type(pat, "String", KP_JSON_STRING);
        const kp_json *pr = kp_json_get_type(pat, "Regex", KP_JSON_STRING);
        if (!content || (!ps && !pr))
            return kp_fail(KP_ERR_FORMAT, "%s: Replace normalizer needs a pattern and a content string", L->what);
        s.kind = KP_NORM_REPLACE;
        if (!(s.s2 = dup_str(L, content)))
            return KP_ERR_OUT_OF_MEMORY;
        s.n2 = content->len;
        if (ps) {
            if (!ps->len) {
                kp_norm_step_free(L->a, &s);
                return kp_fail(KP_ERR_FORMAT, "%s: Replace normalizer with an empty pattern", L->what);
            }
            if (!(s.s1 = dup_str(L, ps))) {
                kp_norm_step_free(L->a, &s);
                return KP_ERR_OUT_OF_MEMORY;
            }
            s.n1 = ps->len;
        } else if ((st = kp_regex_compile(L->a, pr->u.str, pr->len, &s.re))) {
            kp_norm_step_free(L->a, &s);
            return st;
        }
    } else if (kp_json_str_eq(ty, "Precompiled")) {
        /* an empty character map (as converters write for "identity" SentencePiece models)
         * changes nothing */
        const kp_json *cm = kp_json_get(n, "precompiled_charsmap");
        if (cm && cm->type != KP_JSON_NULL && !(cm->type == KP_JSON_STRING && cm->len == 0))
            return kp_fail(KP_ERR_UNSUPPORTED, "%s: Precompiled normalizer with a character map is not supported",
                           L->what);
        return KP_OK;
    } else {
        return unsupported(L, "normalizer", ty);
    }
    st = kp_bpe_tok_add_norm(L->p, &s);
    if (st)
        kp_norm_step_free(L->a, &s);
    return st;
}

/* ---- pre-tokenizer */

static kp_status pre_regex(loader *L, kp_pre_step *s, const char *pat, size_t n)
{
    kp_status st = kp_regex_compile(L->a, pat, n, &s->re);
    if (st)
        return st;
    s->fast = kp_fast_detect(pat, n, &s->fold_long_s);
    return KP_OK;
}

static kp_status add_pre(loader *L, const kp_json *n)
{
    if (!n || n->type == KP_JSON_NULL)
        return KP_OK;
    const kp_json *ty = kp_json_get_type(n, "type", KP_JSON_STRING);
    kp_status st = KP_OK;
    if (kp_json_str_eq(ty, "Sequence")) {
        const kp_json *list = kp_json_get_type(n, "pretokenizers", KP_JSON_ARRAY);
        if (!list)
            return kp_fail(KP_ERR_FORMAT, "%s: pre_tokenizer Sequence without a \"pretokenizers\" list", L->what);
        for (uint32_t i = 0; i < list->len && !st; i++)
            st = add_pre(L, &list->u.kids[i]);
        return st;
    }
    /* The byte mapping is implicit (vocabularies are kept in raw bytes), which is only right if
     * nothing after ByteLevel looks at the mapped text. */
    if (L->has_bytelevel_pre)
        return kp_fail(KP_ERR_UNSUPPORTED, "%s: a pre-tokenizer after ByteLevel is not supported", L->what);
    kp_pre_step s;
    memset(&s, 0, sizeof s);
    if (kp_json_str_eq(ty, "Split")) {
        const kp_json *pat = kp_json_get_type(n, "pattern", KP_JSON_OBJECT);
        const kp_json *ps = kp_json_get_type(pat, "String", KP_JSON_STRING);
        const kp_json *pr = kp_json_get_type(pat, "Regex", KP_JSON_STRING);
        const kp_json *beh = kp_json_get_type(n, "behavior", KP_JSON_STRING);
        if (!ps && !pr)
            return kp_fail(KP_ERR_FORMAT, "%s: Split pre-tokenizer without a String or Regex pattern", L->what);
        s.kind = KP_PRE_SPLIT;
        if (kp_json_str_eq(beh, "Removed"))
            s.behavior = KP_SPLIT_REMOVED;
        else if (kp_json_str_eq(beh, "Isolated"))
            s.behavior = KP_SPLIT_ISOLATED;
        else if (kp_json_str_eq(beh, "MergedWithPrevious"))
            s.behavior = KP_SPLIT_MERGED_PREV;
        else if (kp_json_str_eq(beh, "MergedWithNext"))
            s.behavior = KP_SPLIT_MERGED_NEXT;
        else if (kp_json_str_eq(beh, "Contiguous"))
            s.behavior = KP_SPLIT_CONTIGUOUS;
        else
            return kp_fail(KP_ERR_FORMAT, "%s: Split pre-tokenizer with unknown behavior", L->what);
        s.invert = kp_json_bool(kp_json_get(n, "invert"), 0);
        if (ps) {
            if (!ps->len)
                return kp_fail(KP_ERR_FORMAT, "%s: Split pre-tokenizer with an empty pattern", L->what);
            if (!(s.s = dup_str(L, ps)))
                return KP_ERR_OUT_OF_MEMORY;
            s.ns = ps->len;
        } else if ((st = pre_regex(L, &s, pr->u.str, pr->len))) {
            return st;
        }
    } else if (kp_json_str_eq(ty, "Digits")) {
        s.kind = KP_PRE_SPLIT;
        s.behavior = KP_SPLIT_ISOLATED;
        const char *pat = kp_json_bool(kp_json_get(n, "individual_digits"), 0) ? "\\p{N}" : "\\p{N}+";
        if ((st = pre_regex(L, &s, pat, strlen(pat))))
            return st;
    } else if (kp_json_str_eq(ty, "ByteLevel")) {
        s.kind = KP_PRE_BYTELEVEL;
        s.add_prefix_space = kp_json_bool(kp_json_get(n, "add_prefix_space"), 1);
        s.use_regex = kp_json_bool(kp_json_get(n, "use_regex"), 1);
        L->has_bytelevel_pre = 1;
    } else if (kp_json_str_eq(ty, "Metaspace")) {
        const kp_json *rep = kp_json_get_type(n, "replacement", KP_JSON_STRING);
        const kp_json *scheme = kp_json_get_type(n, "prepend_scheme", KP_JSON_STRING);
        s.kind = KP_PRE_METASPACE;
        if (rep && rep->len) {
            s.s = dup_str(L, rep);
            s.ns = rep->len;
        } else {
            s.s = kp_strndup(L->a, "\xe2\x96\x81", 3);
            s.ns = 3;
        }
        if (!s.s)
            return KP_ERR_OUT_OF_MEMORY;
        if (scheme)
            s.prepend = kp_json_str_eq(scheme, "always") ? 2 : kp_json_str_eq(scheme, "first") ? 1 : 0;
        else
            s.prepend = kp_json_bool(kp_json_get(n, "add_prefix_space"), 1) ? 2 : 0;
        s.split = kp_json_bool(kp_json_get(n, "split"), 1);
    } else {
        return unsupported(L, "pre_tokenizer", ty);
    }
    st = kp_bpe_tok_add_pre(L->p, &s);
    if (st)
        kp_pre_step_free(L->a, &s);
    return st;
}

static int has_bytelevel(const kp_json *n)
{
    if (!n || n->type != KP_JSON_OBJECT)
        return 0;
    const kp_json *ty = kp_json_get_type(n, "type", KP_JSON_STRING);
    if (kp_json_str_eq(ty, "ByteLevel"))
        return 1;
    const kp_json *list = kp_json_get_type(n, "pretokenizers", KP_JSON_ARRAY);
    for (uint32_t i = 0; list && i < list->len; i++)
        if (has_bytelevel(&list->u.kids[i]))
            return 1;
    return 0;
}

/* ---- vocabulary */

/* Raw bytes of a model token: byte-level tokens are unmapped, others used as they are. Returns
 * the length, or -1 if a byte-level token has a character outside the mapping. */
static long token_bytes(const loader *L, const char *s, size_t n, char *out)
{
    if (!L->byte_level) {
        memcpy(out, s, n);
        return (long)n;
    }
    return kp_bytelevel_decode(s, n, out);
}

typedef struct vocab_tmp {
    const char **key;  /* per id: the token as written in the file (NULL: none) */
    uint32_t *klen;
    const char **raw;  /* per id: raw bytes for the BPE map */
    uint32_t *rlen;
    uint8_t *in_model;
    char *raw_blob;
    size_t raw_blob_size;
    int32_t n;
} vocab_tmp;

static void vocab_tmp_free(const kp_allocator *a, vocab_tmp *v)
{
    size_t n = (size_t)v->n;
    kp_dealloc(a, (void *)v->key, n * sizeof *v->key);
    kp_dealloc(a, v->klen, n * sizeof *v->klen);
    kp_dealloc(a, (void *)v->raw, n * sizeof *v->raw);
    kp_dealloc(a, v->rlen, n * sizeof *v->rlen);
    kp_dealloc(a, v->in_model, n);
    kp_dealloc(a, v->raw_blob, v->raw_blob_size);
}

static kp_status merge_side(loader *L, const char *s, size_t n, uint32_t idx, int32_t *id)
{
    kp_status st;
    *id = spell_get(L, s, n, &st);
    if (st)
        return st;
    if (*id < 0)
        return kp_fail(KP_ERR_FORMAT, "%s: merges entry %u names token '%.*s' that is not in the vocabulary", L->what,
                       idx, (int)(n > 60 ? 60 : n), s);
    return KP_OK;
}

typedef struct merge_rec {
    int32_t a, b, c;
} merge_rec;

/* Where a merge's two halves sit, in raw form and side by side, in the work buffer. */
typedef struct merge_loc {
    uint64_t h[3]; /* hashes of the left, right and merged token */
    uint32_t off;
    uint16_t la, lb; /* la == UINT16_MAX: resolve the slow way */
} merge_loc;

/* Splits merges entry i into its two tokens as written. */
static kp_status merge_parts(loader *L, const kp_json *e, uint32_t i, const char **l, size_t *ln, const char **r,
                             size_t *rn)
{
    if (e->type == KP_JSON_STRING) {
        const char *sp = memchr(e->u.str, ' ', e->len);
        /* "a b": the first space separates (tokens never contain a plain space) */
        if (!sp)
            return kp_fail(KP_ERR_FORMAT, "%s: merges entry %u ('%.*s') is not two tokens separated by a space",
                           L->what, i, (int)(e->len > 60 ? 60 : e->len), e->u.str);
        *l = e->u.str;
        *ln = (size_t)(sp - e->u.str);
        *r = sp + 1;
        *rn = e->len - *ln - 1;
        return KP_OK;
    }
    if (e->type == KP_JSON_ARRAY && e->len == 2 && e->u.kids[0].type == KP_JSON_STRING &&
        e->u.kids[1].type == KP_JSON_STRING) {
        *l = e->u.kids[0].u.str;
        *ln = e->u.kids[0].len;
        *r = e->u.kids[1].u.str;
        *rn = e->u.kids[1].len;
        return KP_OK;
    }
    return kp_fail(KP_ERR_FORMAT, "%s: merges entry %u is neither \"a b\" nor [\"a\", \"b\"]", L->what, i);
}

/* The slow path for one merge: tokens that are not byte-level text, and the error message. */
static kp_status merge_slow(loader *L, const kp_json *e, uint32_t i, merge_rec *m)
{
    const char *l = NULL, *r = NULL;
    size_t ln = 0, rn = 0;
    kp_status st = merge_parts(L, e, i, &l, &ln, &r, &rn);
    if (st || (st = merge_side(L, l, ln, i, &m->a)) || (st = merge_side(L, r, rn, i, &m->b)))
        return st;
    kp_buf cat;
    kp_buf_init(&cat, L->a);
    if (!(st = kp_buf_append(&cat, l, ln)) && !(st = kp_buf_append(&cat, r, rn))) {
        m->c = spell_get(L, cat.data, ln + rn, &st);
        if (!st && m->c < 0)
            st = kp_fail(KP_ERR_FORMAT, "%s: merges entry %u gives '%.*s', which is not in the vocabulary", L->what, i,
                         (int)((ln + rn) > 60 ? 60 : (ln + rn)), cat.data);
    }
    kp_buf_free(&cat);
    return st;
}

/* Loads the merges into the model's pair map. At 280k merges this is bound by cache misses in
 * the vocabulary map and the pair map, so it runs in passes: raw bytes and hashes first, then
 * the lookups with slots prefetched a few entries ahead, then the inserts, likewise. */
static kp_status load_merges(loader *L, const kp_json *merges)
{
    kp_bpe *b = &L->p->bpe;
    kp_status st = kp_pairmap_init(&b->merges, L->a, merges->len);
    if (st)
        return st;
    size_t nrec = merges->len, work_size = 0;
    for (size_t i = 0; i < nrec; i++) {
        const kp_json *e = &merges->u.kids[i];
        work_size += e->type == KP_JSON_STRING ? e->len : e->type == KP_JSON_ARRAY && e->len == 2
                                                             ? (size_t)e->u.kids[0].len + e->u.kids[1].len
                                                             : 0;
    }
    merge_rec *rec = kp_alloc(L->a, (nrec ? nrec : 1) * sizeof *rec);
    merge_loc *loc = kp_alloc(L->a, (nrec ? nrec : 1) * sizeof *loc);
    char *work = kp_alloc(L->a, work_size ? work_size : 1);
    if (!rec || !loc || !work) {
        st = KP_ERR_OUT_OF_MEMORY;
        goto out;
    }
    size_t wo = 0;
    for (uint32_t i = 0; i < nrec && !st; i++) {
        const char *l = NULL, *r = NULL;
        size_t ln = 0, rn = 0;
        if ((st = merge_parts(L, &merges->u.kids[i], i, &l, &ln, &r, &rn)))
            break;
        char *buf = work + wo;
        long la, lb;
        if (L->byte_level) {
            la = kp_bytelevel_decode(l, ln, buf);
            lb = la >= 0 ? kp_bytelevel_decode(r, rn, buf + la) : -1;
        } else {
            memcpy(buf, l, ln);
            memcpy(buf + ln, r, rn);
            la = (long)ln;
            lb = (long)rn;
        }
        loc[i].off = (uint32_t)wo;
        if (la < 0 || lb < 0 || la >= UINT16_MAX || lb >= UINT16_MAX) {
            loc[i].la = UINT16_MAX;
            continue;
        }
        loc[i].la = (uint16_t)la;
        loc[i].lb = (uint16_t)lb;
        loc[i].h[0] = kp_hash_bytes(buf, (size_t)la);
        loc[i].h[1] = kp_hash_bytes(buf + la, (size_t)lb);
        loc[i].h[2] = kp_hash_bytes(buf, (size_t)(la + lb));
        wo += (size_t)(la + lb);
    }
    /* lookups, with the slots of the entry AHEAD places on prefetched */
    enum { AHEAD = 8 };
    for (size_t i = 0; i < nrec && !st; i++) {
        if (i + AHEAD < nrec && loc[i + AHEAD].la != UINT16_MAX) {
            const uint64_t *h = loc[i + AHEAD].h;
            kp_strmap_prefetch(&b->vocab, h[0]);
            kp_strmap_prefetch(&b->vocab, h[1]);
            kp_strmap_prefetch(&b->vocab, h[2]);
        }
        merge_rec *m = &rec[i];
        if (loc[i].la == UINT16_MAX) {
            st = merge_slow(L, &merges->u.kids[i], (uint32_t)i, m);
            continue;
        }
        const uint64_t *h = loc[i].h;
        const char *buf = work + loc[i].off;
        m->a = kp_strmap_get_h(&b->vocab, buf, loc[i].la, h[0]);
        m->b = kp_strmap_get_h(&b->vocab, buf + loc[i].la, loc[i].lb, h[1]);
        m->c = kp_strmap_get_h(&b->vocab, buf, (size_t)loc[i].la + loc[i].lb, h[2]);
        if (m->a < 0 || m->b < 0 || m->c < 0)
            st = merge_slow(L, &merges->u.kids[i], (uint32_t)i, m);
    }
    if (!st) {
        for (size_t i = 0; i < nrec; i++) {
            if (i + 16 < nrec) {
                uint64_t key = ((uint64_t)(uint32_t)rec[i + 16].a << 32) | (uint32_t)rec[i + 16].b;
                __builtin_prefetch(&b->merges.slots[kp_pair_hash(key, b->merges.mask)], 1);
            }
            kp_pairmap_put(&b->merges, rec[i].a, rec[i].b, (uint32_t)i, rec[i].c);
        }
    }
out:
    kp_dealloc(L->a, rec, (nrec ? nrec : 1) * sizeof *rec);
    kp_dealloc(L->a, loc, (nrec ? nrec : 1) * sizeof *loc);
    kp_dealloc(L->a, work, work_size ? work_size : 1);
    return st;
}

static int32_t added_id(const kp_json *added, const char *text, size_t n)
{
    for (uint32_t i = 0; added && i < added->len; i++) {
        const kp_json *c = kp_json_get_type(&added->u.kids[i], "content", KP_JSON_STRING);
        int64_t id;
        if (c && c->len == n && memcmp(c->u.str, text, n) == 0 &&
            kp_json_int(kp_json_get(&added->u.kids[i], "id"), 0, INT32_MAX, &id))
            return (int32_t)id;
    }
    return -1;
}

/* Id of a token written as in the file: added tokens first, then the model vocabulary. */
static int32_t lookup_text(loader *L, const kp_json *added, const char *s, size_t n)
{
    int32_t id = added_id(added, s, n);
    kp_status st;
    return id >= 0 ? id : spell_get(L, s, n, &st);
}

/* ---- post-processor */

static kp_status add_post(loader *L, const kp_json *pp)
{
    if (!pp || pp->type == KP_JSON_NULL)
        return KP_OK;
    const kp_json *ty = kp_json_get_type(pp, "type", KP_JSON_STRING);
    kp_status st = KP_OK;
    if (kp_json_str_eq(ty, "Sequence")) {
        const kp_json *list = kp_json_get_type(pp, "processors", KP_JSON_ARRAY);
        for (uint32_t i = 0; list && i < list->len && !st; i++)
            st = add_post(L, &list->u.kids[i]);
        return st;
    }
    if (kp_json_str_eq(ty, "ByteLevel"))
        return KP_OK; /* offsets only */
    if (kp_json_str_eq(ty, "TemplateProcessing")) {
        const kp_json *single = kp_json_get_type(pp, "single", KP_JSON_ARRAY);
        const kp_json *sp = kp_json_get_type(pp, "special_tokens", KP_JSON_OBJECT);
        if (!single)
            return kp_fail(KP_ERR_FORMAT, "%s: TemplateProcessing without a \"single\" template", L->what);
        int where = 0;
        for (uint32_t i = 0; i < single->len && !st; i++) {
            const kp_json *it = &single->u.kids[i];
            if (kp_json_get(it, "Sequence")) {
                where = 1;
                continue;
            }
            const kp_json *tok = kp_json_get_type(kp_json_get(it, "SpecialToken"), "id", KP_JSON_STRING);
            if (!tok)
                return kp_fail(KP_ERR_FORMAT, "%s: TemplateProcessing item %u is not a SpecialToken or Sequence",
                               L->what, i);
            const kp_json *ids = NULL;
            for (uint32_t k = 0; sp && k < sp->len; k++)
                if (sp->u.kids[k].key_len == tok->len && memcmp(sp->u.kids[k].key, tok->u.str, tok->len) == 0)
                    ids = kp_json_get_type(&sp->u.kids[k], "ids", KP_JSON_ARRAY);
            if (!ids)
                return kp_fail(KP_ERR_FORMAT, "%s: TemplateProcessing names special token '%.*s' with no ids",
                               L->what, (int)tok->len, tok->u.str);
            for (uint32_t k = 0; k < ids->len && !st; k++) {
                int64_t id;
                if (!kp_json_int(&ids->u.kids[k], 0, L->t->n_vocab - 1, &id))
                    return kp_fail(KP_ERR_FORMAT, "%s: TemplateProcessing id of '%.*s' is out of range", L->what,
                                   (int)tok->len, tok->u.str);
                st = kp_bpe_tok_add_post(L->p, where, (int32_t)id);
            }
        }
        return st;
    }
    if (kp_json_str_eq(ty, "RobertaProcessing") || kp_json_str_eq(ty, "BertProcessing")) {
        const kp_json *cls = kp_json_get_type(pp, "cls", KP_JSON_ARRAY);
        const kp_json *sep = kp_json_get_type(pp, "sep", KP_JSON_ARRAY);
        int64_t c, s;
        if (!cls || !sep || cls->len != 2 || sep->len != 2 || !kp_json_int(&cls->u.kids[1], 0, L->t->n_vocab - 1, &c) ||
            !kp_json_int(&sep->u.kids[1], 0, L->t->n_vocab - 1, &s))
            return kp_fail(KP_ERR_FORMAT, "%s: %.*s needs cls and sep as [token, id]", L->what, (int)ty->len,
                           ty->u.str);
        if (!(st = kp_bpe_tok_add_post(L->p, 0, (int32_t)c)))
            st = kp_bpe_tok_add_post(L->p, 1, (int32_t)s);
        return st;
    }
    return unsupported(L, "post_processor", ty);
}

/* ---- decoder: per-token text transforms folded into the piece table */

typedef struct dec_rules {
    int bytelevel, bytefallback;
    const kp_json *replace[8]; /* Replace decoders in order (String patterns only) */
    int n_replace;
    const kp_json *metaspace_rep;
} dec_rules;

static kp_status read_decoder(loader *L, const kp_json *d, dec_rules *r)
{
    if (!d || d->type == KP_JSON_NULL)
        return KP_OK;
    const kp_json *ty = kp_json_get_type(d, "type", KP_JSON_STRING);
    kp_status st = KP_OK;
    if (kp_json_str_eq(ty, "Sequence")) {
        const kp_json *list = kp_json_get_type(d, "decoders", KP_JSON_ARRAY);
        for (uint32_t i = 0; list && i < list->len && !st; i++)
            st = read_decoder(L, &list->u.kids[i], r);
        return st;
    }
    if (kp_json_str_eq(ty, "ByteLevel")) {
        r->bytelevel = 1;
    } else if (kp_json_str_eq(ty, "ByteFallback")) {
        r->bytefallback = 1;
    } else if (kp_json_str_eq(ty, "Fuse")) {
        /* joining is what the table-driven decoder does anyway */
    } else if (kp_json_str_eq(ty, "Strip")) {
        const kp_json *c = kp_json_get_type(d, "content", KP_JSON_STRING);
        int64_t start = 0, stop = 0;
        kp_json_int(kp_json_get(d, "start"), 0, 1 << 20, &start);
        kp_json_int(kp_json_get(d, "stop"), 0, 1 << 20, &stop);
        if (!kp_json_str_eq(c, " ") || start > 1 || stop != 0)
            return kp_fail(KP_ERR_UNSUPPORTED, "%s: Strip decoder other than one leading space is not supported",
                           L->what);
        if (start == 1)
            L->t->strip_leading_space = 1;
    } else if (kp_json_str_eq(ty, "Replace")) {
        const kp_json *ps = kp_json_get_type(kp_json_get(d, "pattern"), "String", KP_JSON_STRING);
        if (!ps || !kp_json_get_type(d, "content", KP_JSON_STRING) || !ps->len ||
            r->n_replace == (int)(sizeof r->replace / sizeof r->replace[0]))
            return kp_fail(KP_ERR_UNSUPPORTED, "%s: only Replace decoders with a String pattern are supported",
                           L->what);
        r->replace[r->n_replace++] = d;
    } else if (kp_json_str_eq(ty, "Metaspace")) {
        const kp_json *rep = kp_json_get_type(d, "replacement", KP_JSON_STRING);
        const kp_json *scheme = kp_json_get_type(d, "prepend_scheme", KP_JSON_STRING);
        r->metaspace_rep = rep;
        int prep = scheme ? !kp_json_str_eq(scheme, "never") : kp_json_bool(kp_json_get(d, "add_prefix_space"), 1);
        if (prep)
            L->t->strip_leading_space = 1;
    } else {
        return unsupported(L, "decoder", ty);
    }
    return KP_OK;
}

static kp_status apply_replace(kp_buf *o, const char *s, size_t n, const char *pat, size_t pn, const char *rep,
                               size_t rn)
{
    kp_status st = KP_OK;
    size_t i = 0;
    while (i < n && !st) {
        if (i + pn <= n && memcmp(s + i, pat, pn) == 0) {
            st = kp_buf_append(o, rep, rn);
            i += pn;
        } else {
            st = kp_buf_append(o, s + i, 1);
            i++;
        }
    }
    return st;
}

static int byte_token(const char *p, size_t n)
{
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
        else
            return -1;
    }
    return v;
}

/* The decoded bytes of one token text under the decoder rules, into `o` (reset first). */
static kp_status decode_piece(const dec_rules *r, const char *s, size_t n, kp_buf *o, kp_buf *tmp)
{
    kp_status st;
    o->len = 0;
    if (r->bytefallback) {
        int b = byte_token(s, n);
        if (b >= 0) {
            char c = (char)b;
            return kp_buf_append(o, &c, 1);
        }
    }
    if ((st = kp_buf_append(o, s, n)))
        return st;
    if (r->bytelevel) {
        if ((st = kp_buf_append(tmp, o->data, o->len)))
            return st;
        tmp->len = 0;
        long m = kp_bytelevel_decode(o->data, o->len, tmp->data);
        if (m >= 0) {
            memcpy(o->data, tmp->data, (size_t)m);
            o->len = (size_t)m;
        }
    }
    for (int i = 0; i < r->n_replace; i++) {
        const kp_json *ps = kp_json_get_type(kp_json_get(r->replace[i], "pattern"), "String", KP_JSON_STRING);
        const kp_json *c = kp_json_get_type(r->replace[i], "content", KP_JSON_STRING);
        tmp->len = 0;
        if ((st = apply_replace(tmp, o->data, o->len, ps->u.str, ps->len, c->u.str, c->len)))
            return st;
        o->len = 0;
        if ((st = kp_buf_append(o, tmp->data, tmp->len)))
            return st;
    }
    if (r->metaspace_rep && r->metaspace_rep->len) {
        tmp->len = 0;
        if ((st = apply_replace(tmp, o->data, o->len, r->metaspace_rep->u.str, r->metaspace_rep->len, " ", 1)))
            return st;
        o->len = 0;
        if ((st = kp_buf_append(o, tmp->data, tmp->len)))
            return st;
    }
    return KP_OK;
}

/* ---- tokenizer_config.json */

static const kp_json *config_token(const kp_json *cfg, const char *key)
{
    const kp_json *v = kp_json_get(cfg, key);
    if (v && v->type == KP_JSON_OBJECT)
        v = kp_json_get(v, "content");
    return v && v->type == KP_JSON_STRING ? v : NULL;
}

static kp_status read_config(loader *L, const kp_json *cfg, const kp_json *added)
{
    kp_tokenizer *t = L->t;
    const kp_json *v;
    if ((v = config_token(cfg, "bos_token")))
        t->bos = lookup_text(L, added, v->u.str, v->len);
    if ((v = config_token(cfg, "eos_token")))
        t->eos = lookup_text(L, added, v->u.str, v->len);
    if ((v = config_token(cfg, "pad_token")))
        t->pad = lookup_text(L, added, v->u.str, v->len);
    const kp_json *ct = kp_json_get(cfg, "chat_template");
    if (ct && ct->type == KP_JSON_ARRAY) {
        /* named templates: take "default", else the first */
        const kp_json *pick = NULL;
        for (uint32_t i = 0; i < ct->len; i++) {
            const kp_json *tpl = kp_json_get_type(&ct->u.kids[i], "template", KP_JSON_STRING);
            if (tpl && (!pick || kp_json_str_eq(kp_json_get(&ct->u.kids[i], "name"), "default")))
                pick = tpl;
        }
        ct = pick;
    }
    if (ct && ct->type == KP_JSON_STRING)
        return kp_tokenizer_set_chat_template(t, ct->u.str, ct->len);
    return KP_OK;
}

/* ---- the loader */

static kp_status load(loader *L, const kp_json *root, const kp_json *cfg)
{
    const kp_allocator *a = L->a;
    kp_status st = KP_OK;
    if (!root || root->type != KP_JSON_OBJECT)
        return kp_fail(KP_ERR_FORMAT, "%s: not a JSON object", L->what);
    const kp_json *model = kp_json_get_type(root, "model", KP_JSON_OBJECT);
    if (!model)
        return kp_fail(KP_ERR_FORMAT, "%s: no \"model\" object", L->what);
    const kp_json *mtype = kp_json_get_type(model, "type", KP_JSON_STRING);
    if (mtype && !kp_json_str_eq(mtype, "BPE"))
        return unsupported(L, "model", mtype);
    const kp_json *vocab = kp_json_get_type(model, "vocab", KP_JSON_OBJECT);
    const kp_json *merges = kp_json_get_type(model, "merges", KP_JSON_ARRAY);
    if (!vocab || !merges)
        return kp_fail(KP_ERR_FORMAT, "%s: BPE model needs a \"vocab\" object and a \"merges\" list", L->what);
    const kp_json *cwp = kp_json_get_type(model, "continuing_subword_prefix", KP_JSON_STRING);
    const kp_json *eow = kp_json_get_type(model, "end_of_word_suffix", KP_JSON_STRING);
    if ((cwp && cwp->len) || (eow && eow->len))
        return kp_fail(KP_ERR_UNSUPPORTED, "%s: BPE with continuing_subword_prefix/end_of_word_suffix is not supported",
                       L->what);
    const kp_json *dropout = kp_json_get(model, "dropout");
    if (dropout && dropout->type == KP_JSON_NUMBER && dropout->u.num > 0)
        return kp_fail(KP_ERR_UNSUPPORTED, "%s: BPE dropout is not supported (encoding would not be deterministic)",
                       L->what);
    const kp_json *added = kp_json_get(root, "added_tokens");
    if (added && added->type != KP_JSON_ARRAY && added->type != KP_JSON_NULL)
        return kp_fail(KP_ERR_FORMAT, "%s: \"added_tokens\" is not a list", L->what);
    if (added && added->type == KP_JSON_NULL)
        added = NULL;

    /* ids: the model vocabulary plus added tokens */
    int64_t max_id = -1;
    for (uint32_t i = 0; i < vocab->len; i++) {
        int64_t id;
        if (!kp_json_int(&vocab->u.kids[i], 0, (1 << 24) - 1, &id))
            return kp_fail(KP_ERR_FORMAT, "%s: vocab entry '%.*s' has no valid id", L->what,
                           (int)(vocab->u.kids[i].key_len > 60 ? 60 : vocab->u.kids[i].key_len), vocab->u.kids[i].key);
        if (id > max_id)
            max_id = id;
    }
    for (uint32_t i = 0; added && i < added->len; i++) {
        int64_t id;
        const kp_json *c = kp_json_get_type(&added->u.kids[i], "content", KP_JSON_STRING);
        if (!c || !kp_json_int(kp_json_get(&added->u.kids[i], "id"), 0, (1 << 24) - 1, &id))
            return kp_fail(KP_ERR_FORMAT, "%s: added_tokens entry %u needs a \"content\" string and an id", L->what, i);
        if (id > max_id)
            max_id = id;
    }
    if (max_id < 0)
        return kp_fail(KP_ERR_FORMAT, "%s: empty vocabulary", L->what);
    int32_t n = (int32_t)max_id + 1;

    L->byte_level = has_bytelevel(kp_json_get(root, "pre_tokenizer"));
    if ((st = kp_bpe_tok_new(a, n, &L->t)))
        return st;
    L->p = L->t->impl;
    kp_tokenizer *t = L->t;
    kp_bpe *b = &L->p->bpe;
    b->byte_level = (uint8_t)L->byte_level;
    b->byte_fallback = (uint8_t)kp_json_bool(kp_json_get(model, "byte_fallback"), 0);
    b->fuse_unk = (uint8_t)kp_json_bool(kp_json_get(model, "fuse_unk"), 0);
    b->ignore_merges = (uint8_t)kp_json_bool(kp_json_get(model, "ignore_merges"), 0);
    L->p->valid_utf8_only = !L->byte_level;

    vocab_tmp v;
    memset(&v, 0, sizeof v);
    v.n = n;
    v.key = kp_calloc(a, (size_t)n, sizeof *v.key);
    v.klen = kp_calloc(a, (size_t)n, sizeof *v.klen);
    v.raw = kp_calloc(a, (size_t)n, sizeof *v.raw);
    v.rlen = kp_calloc(a, (size_t)n, sizeof *v.rlen);
    v.in_model = kp_calloc(a, (size_t)n, 1);
    size_t blob = 0;
    for (uint32_t i = 0; i < vocab->len; i++)
        blob += vocab->u.kids[i].key_len;
    v.raw_blob_size = blob ? blob : 1;
    v.raw_blob = kp_alloc(a, v.raw_blob_size);
    kp_buf piece, tmp;
    kp_buf_init(&piece, a);
    kp_buf_init(&tmp, a);
    const char **dp = NULL;
    uint32_t *dl = NULL;
    if (!v.key || !v.klen || !v.raw || !v.rlen || !v.in_model || !v.raw_blob) {
        st = KP_ERR_OUT_OF_MEMORY;
        goto done;
    }
    size_t ro = 0;
    for (uint32_t i = 0; i < vocab->len; i++) {
        const kp_json *e = &vocab->u.kids[i];
        int32_t id = (int32_t)e->u.num;
        v.key[id] = e->key;
        v.klen[id] = e->key_len;
        v.in_model[id] = 1;
        long m = token_bytes(L, e->key, e->key_len, v.raw_blob + ro);
        if (m < 0) {
            v.in_model[id] = 2; /* reachable by its spelling only, never from raw bytes */
            m = 0;
        }
        v.raw[id] = v.raw_blob + ro;
        v.rlen[id] = (uint32_t)m;
        ro += (size_t)m;
    }
    L->keys = v.key;
    L->key_lens = v.klen;
    L->key_in = v.in_model;
    {
        uint8_t *raw_in = kp_alloc(a, (size_t)n);
        if (!raw_in) {
            st = KP_ERR_OUT_OF_MEMORY;
            goto done;
        }
        for (int32_t i = 0; i < n; i++)
            raw_in[i] = v.in_model[i] == 1;
        st = kp_strmap_build(&b->vocab, a, n, v.raw, v.rlen, raw_in);
        kp_dealloc(a, raw_in, (size_t)n);
        if (st)
            goto done;
    }
    if ((st = load_merges(L, merges)))
        goto done;

    /* single bytes, byte fallback, unk */
    for (int i = 0; i < 256; i++) {
        if (L->byte_level) {
            char c = (char)i;
            b->byte_ids[i] = kp_strmap_get(&b->vocab, &c, 1);
        } else if (b->byte_fallback) {
            char name[8];
            snprintf(name, sizeof name, "<0x%02X>", i);
            b->byte_ids[i] = kp_strmap_get(&b->vocab, name, 6);
        }
    }
    const kp_json *unk = kp_json_get_type(model, "unk_token", KP_JSON_STRING);
    if (unk) {
        b->unk = spell_get(L, unk->u.str, unk->len, &st);
        if (st)
            goto done;
        if (b->unk < 0) {
            st = kp_fail(KP_ERR_FORMAT, "%s: unk_token '%.*s' is not in the vocabulary", L->what, (int)unk->len,
                         unk->u.str);
            goto done;
        }
        t->unk = b->unk;
    }

    /* added tokens */
    for (uint32_t i = 0; added && i < added->len && !st; i++) {
        const kp_json *e = &added->u.kids[i];
        const kp_json *c = kp_json_get_type(e, "content", KP_JSON_STRING);
        int32_t id = (int32_t)kp_json_get(e, "id")->u.num;
        int special = kp_json_bool(kp_json_get(e, "special"), 0);
        int normalized = kp_json_bool(kp_json_get(e, "normalized"), !special);
        /* text that the model vocabulary already has keeps the model's id (Hugging Face's
         * AddedVocabulary does the same); the listed id then stays a plain entry */
        int32_t in_vocab = spell_get(L, c->u.str, c->len, &st);
        if (st)
            break;
        if (in_vocab >= 0 && in_vocab != id) {
            id = in_vocab;
        } else {
            v.key[id] = c->u.str;
            v.klen[id] = c->len;
        }
        t->type[id] = special ? KP_TOKEN_CONTROL : KP_TOKEN_USER_DEFINED;
        st = kp_added_add(normalized ? &L->p->added_norm : &L->p->added, c->u.str, c->len, id, special,
                          kp_json_bool(kp_json_get(e, "lstrip"), 0), kp_json_bool(kp_json_get(e, "rstrip"), 0),
                          kp_json_bool(kp_json_get(e, "single_word"), 0));
    }
    if (st || (st = kp_added_finish(&L->p->added)) || (st = kp_added_finish(&L->p->added_norm)))
        goto done;

    /* pipeline */
    if ((st = add_norm(L, kp_json_get(root, "normalizer"))) || (st = add_pre(L, kp_json_get(root, "pre_tokenizer"))) ||
        (st = add_post(L, kp_json_get(root, "post_processor"))))
        goto done;

    /* decode pieces */
    dec_rules dr;
    memset(&dr, 0, sizeof dr);
    if ((st = read_decoder(L, kp_json_get(root, "decoder"), &dr)))
        goto done;
    dp = kp_calloc(a, (size_t)n, sizeof *dp);
    dl = kp_calloc(a, (size_t)n, sizeof *dl);
    if (!dp || !dl) {
        st = KP_ERR_OUT_OF_MEMORY;
        goto done;
    }
    kp_buf all;
    kp_buf_init(&all, a);
    uint32_t *offs = kp_alloc(a, ((size_t)n + 1) * sizeof *offs);
    if (!offs) {
        st = KP_ERR_OUT_OF_MEMORY;
        goto done;
    }
    /* a plain ByteLevel decoder gives each model token's raw bytes, which are at hand already */
    int raw_ok = L->byte_level && dr.bytelevel && !dr.bytefallback && !dr.n_replace && !dr.metaspace_rep;
    for (int32_t i = 0; i < n && !st; i++) {
        offs[i] = (uint32_t)all.len;
        if (!v.key[i])
            continue;
        if (raw_ok && v.in_model[i] == 1 && t->type[i] == KP_TOKEN_NORMAL) {
            dp[i] = v.raw[i];
            dl[i] = v.rlen[i];
            continue;
        }
        if (!(st = decode_piece(&dr, v.key[i], v.klen[i], &piece, &tmp)))
            st = kp_buf_append(&all, piece.data, piece.len);
        if (dr.bytefallback && t->type[i] == KP_TOKEN_NORMAL && byte_token(v.key[i], v.klen[i]) >= 0)
            t->type[i] = KP_TOKEN_BYTE;
    }
    offs[n] = (uint32_t)all.len;
    if (!st && !all.data)
        st = kp_buf_append(&all, "", 0);
    for (int32_t i = 0; i < n && !st; i++) {
        if (dp[i])
            continue;
        dp[i] = all.data + offs[i];
        dl[i] = offs[i + 1] - offs[i];
    }
    if (!st)
        st = kp_tokenizer_set_pieces(t, dp, dl);
    kp_dealloc(a, offs, ((size_t)n + 1) * sizeof *offs);
    kp_buf_free(&all);
    if (st)
        goto done;
    if (t->unk >= 0 && t->type[t->unk] == KP_TOKEN_NORMAL)
        t->type[t->unk] = KP_TOKEN_UNKNOWN;

    /* special ids: tokenizer_config.json, else what the post-processor adds */
    if (cfg && (st = read_config(L, cfg, added)))
        goto done;
    if (t->bos < 0 && L->p->n_prefix)
        t->bos = L->p->prefix[0];
    if (t->eos < 0 && L->p->n_suffix)
        t->eos = L->p->suffix[L->p->n_suffix - 1];
    t->add_bos = L->p->n_prefix > 0 && L->p->prefix[0] == t->bos;
    t->add_eos = L->p->n_suffix > 0 && L->p->suffix[L->p->n_suffix - 1] == t->eos;
    kp_tokenizer_mark_eog(t);
done:
    kp_dealloc(a, (void *)dp, (size_t)n * sizeof *dp);
    kp_dealloc(a, dl, (size_t)n * sizeof *dl);
    kp_buf_free(&piece);
    kp_buf_free(&tmp);
    kp_strmap_free(&L->by_key);
    L->by_key_built = 0;
    vocab_tmp_free(a, &v);
    return st;
}

kp_status kp_tokenizer_hf_json_from_memory(const kp_allocator *a, const char *json, size_t len, const char *config,
                                           size_t config_len, const char *name, kp_tokenizer **out)
{
    *out = NULL;
    a = kp_allocator_or_default(a);
    loader L;
    memset(&L, 0, sizeof L);
    L.a = a;
    L.what = name ? name : "tokenizer.json";
    kp_json_doc *doc = NULL, *cdoc = NULL;
    kp_status st = kp_json_parse(a, json, len, L.what, &doc);
    if (!st && config)
        st = kp_json_parse(a, config, config_len, "tokenizer_config.json", &cdoc);
    if (!st)
        st = load(&L, kp_json_root(doc), cdoc ? kp_json_root(cdoc) : NULL);
    kp_json_free(doc);
    kp_json_free(cdoc);
    if (st) {
        kp_tokenizer_free(L.t);
        return st;
    }
    *out = L.t;
    return KP_OK;
}

kp_status kp_tokenizer_hf_json_new(const kp_allocator *a, const char *path, kp_tokenizer **out)
{
    *out = NULL;
    kp_mapped_file f, c = {NULL, 0};
    kp_status st = kp_file_map(path, &f);
    if (st)
        return st;
    /* tokenizer_config.json in the same folder, when there is one */
    char cpath[4096];
    const char *slash = strrchr(path, '/');
    size_t dir = slash ? (size_t)(slash - path + 1) : 0;
    int have_cfg = 0;
    if (dir + sizeof "tokenizer_config.json" <= sizeof cpath) {
        memcpy(cpath, path, dir);
        memcpy(cpath + dir, "tokenizer_config.json", sizeof "tokenizer_config.json");
        if (strcmp(cpath, path) != 0 && kp_file_map(cpath, &c) == KP_OK)
            have_cfg = 1;
        kp_clear_error();
    }
    const char *base = slash ? slash + 1 : path;
    st = kp_tokenizer_hf_json_from_memory(a, (const char *)f.data, f.size, have_cfg ? (const char *)c.data : NULL,
                                          c.size, base, out);
    kp_file_unmap(&f);
    if (have_cfg)
        kp_file_unmap(&c);
    return st;
}
