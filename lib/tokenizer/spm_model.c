/* SentencePiece ModelProto (.model) reader: just the fields that encoding needs, read from the
 * protobuf wire format directly. Every length is checked against the buffer. */
#include <string.h>

#include "pipeline.h"
#include "spm.h"

typedef struct pb {
    const uint8_t *p, *end, *base;
} pb;

typedef struct pb_field {
    uint32_t num;
    int wire;
    uint64_t v;           /* varint / fixed value */
    const uint8_t *data;  /* length-delimited payload */
    size_t len;
    size_t at;            /* offset of the field in the file */
} pb_field;

static kp_status pb_varint(pb *r, uint64_t *out)
{
    uint64_t v = 0;
    for (int s = 0; s < 64; s += 7) {
        if (r->p >= r->end)
            return kp_fail(KP_ERR_FORMAT, "SentencePiece model truncated at byte %zu (inside a varint)",
                           (size_t)(r->p - r->base));
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7F) << s;
        if (!(b & 0x80)) {
            *out = v;
            return KP_OK;
        }
    }
    return kp_fail(KP_ERR_FORMAT, "SentencePiece model: overlong varint at byte %zu", (size_t)(r->p - r->base));
}

/* Reads the next field; returns 0 at the end of the message, 1 with a field, <0 on error
 * (status in *st). */
static int pb_next(pb *r, pb_field *f, kp_status *st)
{
    if (r->p >= r->end)
        return 0;
    f->at = (size_t)(r->p - r->base);
    uint64_t key = 0;
    if ((*st = pb_varint(r, &key)))
        return -1;
    f->num = (uint32_t)(key >> 3);
    f->wire = (int)(key & 7);
    f->data = NULL;
    f->len = 0;
    f->v = 0;
    switch (f->wire) {
    case 0:
        if ((*st = pb_varint(r, &f->v)))
            return -1;
        return 1;
    case 1:
    case 5: {
        size_t n = f->wire == 1 ? 8 : 4;
        if ((size_t)(r->end - r->p) < n) {
            *st = kp_fail(KP_ERR_FORMAT, "SentencePiece model truncated at byte %zu (field %u)", f->at, f->num);
            return -1;
        }
        for (size_t i = 0; i < n; i++)
            f->v |= (uint64_t)r->p[i] << (8 * i);
        r->p += n;
        return 1;
    }
    case 2: {
        uint64_t n = 0;
        if ((*st = pb_varint(r, &n)))
            return -1;
        if (n > (uint64_t)(r->end - r->p)) {
            *st = kp_fail(KP_ERR_FORMAT, "SentencePiece model truncated: field %u at byte %zu claims %llu bytes, %zu left",
                          f->num, f->at, (unsigned long long)n, (size_t)(r->end - r->p));
            return -1;
        }
        f->data = r->p;
        f->len = (size_t)n;
        r->p += n;
        return 1;
    }
    default:
        *st = kp_fail(KP_ERR_FORMAT, "SentencePiece model: unsupported protobuf wire type %d at byte %zu", f->wire,
                      f->at);
        return -1;
    }
}

static float f32_of(uint64_t v)
{
    uint32_t u = (uint32_t)v;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

typedef struct spm_spec {
    int model_type; /* 1 unigram, 2 bpe, 3 word, 4 char */
    int byte_fallback, ws_suffix;
    int add_dummy_prefix, remove_extra_ws, escape_ws;
    const uint8_t *charsmap;
    size_t charsmap_len;
    const uint8_t *bos_piece, *eos_piece, *pad_piece;
    size_t bos_len, eos_len, pad_len;
} spm_spec;

static kp_status read_sub(const uint8_t *base, const uint8_t *d, size_t n, int which, spm_spec *sp)
{
    pb r = {d, d + n, base};
    pb_field f;
    kp_status st = KP_OK;
    int k;
    while ((k = pb_next(&r, &f, &st)) > 0) {
        if (which == 2) { /* TrainerSpec */
            if (f.num == 3 && f.wire == 0)
                sp->model_type = (int)f.v;
            else if (f.num == 35 && f.wire == 0)
                sp->byte_fallback = f.v != 0;
            else if (f.num == 24 && f.wire == 0)
                sp->ws_suffix = f.v != 0;
            else if (f.num == 46 && f.wire == 2)
                sp->bos_piece = f.data, sp->bos_len = f.len;
            else if (f.num == 47 && f.wire == 2)
                sp->eos_piece = f.data, sp->eos_len = f.len;
            else if (f.num == 48 && f.wire == 2)
                sp->pad_piece = f.data, sp->pad_len = f.len;
        } else { /* NormalizerSpec */
            if (f.num == 2 && f.wire == 2)
                sp->charsmap = f.data, sp->charsmap_len = f.len;
            else if (f.num == 3 && f.wire == 0)
                sp->add_dummy_prefix = f.v != 0;
            else if (f.num == 4 && f.wire == 0)
                sp->remove_extra_ws = f.v != 0;
            else if (f.num == 5 && f.wire == 0)
                sp->escape_ws = f.v != 0;
        }
    }
    return k < 0 ? st : KP_OK;
}

static int32_t find_piece(const kp_spm *m, const uint8_t *s, size_t n, const char *dflt)
{
    if (!s) {
        s = (const uint8_t *)dflt;
        n = strlen(dflt);
    }
    return kp_strmap_get(&m->all, (const char *)s, n);
}

static const kp_tokenizer_vtbl spm_vtbl = {"spm", kp_spm_encode, kp_spm_destroy};

kp_status kp_tokenizer_spm_model_new(const kp_allocator *a, const uint8_t *data, size_t size, kp_tokenizer **out)
{
    *out = NULL;
    a = kp_allocator_or_default(a);
    spm_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.model_type = 1;
    sp.add_dummy_prefix = sp.remove_extra_ws = sp.escape_ws = 1;
    /* first pass: count pieces and read the specs */
    pb r = {data, data + size, data};
    pb_field f;
    kp_status st = KP_OK;
    int k;
    size_t n = 0;
    while ((k = pb_next(&r, &f, &st)) > 0) {
        if (f.num == 1 && f.wire == 2)
            n++;
        else if ((f.num == 2 || f.num == 3) && f.wire == 2 && (st = read_sub(data, f.data, f.len, (int)f.num, &sp)))
            return st;
    }
    if (k < 0)
        return st;
    if (!n)
        return kp_fail(KP_ERR_FORMAT, "SentencePiece model has no pieces");
    if (n > (1u << 24))
        return kp_fail(KP_ERR_FORMAT, "SentencePiece model has %zu pieces, more than 2^24", n);
    if (sp.model_type != 2)
        return kp_fail(KP_ERR_UNSUPPORTED, "SentencePiece model type %d is not supported (only BPE, type 2)",
                       sp.model_type);
    if (sp.charsmap_len)
        return kp_fail(KP_ERR_UNSUPPORTED,
                       "SentencePiece model with a precompiled normalization map is not supported (only identity)");

    const char **pieces = kp_calloc(a, n, sizeof *pieces);
    uint32_t *lens = kp_calloc(a, n, sizeof *lens);
    float *scores = kp_calloc(a, n, sizeof *scores);
    uint8_t *types = kp_alloc(a, n);
    kp_tokenizer *t = NULL;
    if (!pieces || !lens || !scores || !types) {
        st = KP_ERR_OUT_OF_MEMORY;
        goto done;
    }
    /* second pass: the pieces */
    r.p = data;
    size_t i = 0;
    while (!st && (k = pb_next(&r, &f, &st)) > 0) {
        if (f.num != 1 || f.wire != 2)
            continue;
        pb q = {f.data, f.data + f.len, data};
        pb_field g;
        int kk, have_piece = 0;
        types[i] = KP_TOKEN_NORMAL;
        while ((kk = pb_next(&q, &g, &st)) > 0) {
            if (g.num == 1 && g.wire == 2) {
                pieces[i] = (const char *)g.data;
                lens[i] = (uint32_t)g.len;
                have_piece = 1;
            } else if (g.num == 2 && g.wire == 5) {
                scores[i] = f32_of(g.v);
            } else if (g.num == 3 && g.wire == 0) {
                types[i] = g.v >= 1 && g.v <= 6 ? (uint8_t)g.v : KP_TOKEN_NORMAL;
            }
        }
        if (kk < 0)
            break;
        if (!have_piece) {
            st = kp_fail(KP_ERR_FORMAT, "SentencePiece piece %zu (byte %zu) has no text", i, f.at);
            break;
        }
        i++;
    }
    if (st)
        goto done;
    if ((st = kp_tokenizer_alloc(a, (int32_t)n, &t)))
        goto done;
    kp_spm *m = kp_calloc(a, 1, sizeof *m);
    if (!m) {
        st = KP_ERR_OUT_OF_MEMORY;
        goto done;
    }
    t->impl = m;
    t->vt = &spm_vtbl;
    if ((st = kp_spm_build(m, t, KP_SPM_SENTENCEPIECE, (int32_t)n, pieces, lens, scores, types)))
        goto done;
    m->byte_fallback = (uint8_t)sp.byte_fallback;
    m->ws_suffix = (uint8_t)sp.ws_suffix;
    m->add_dummy_prefix = (uint8_t)sp.add_dummy_prefix;
    m->remove_extra_ws = (uint8_t)sp.remove_extra_ws;
    m->escape_ws = (uint8_t)sp.escape_ws;
    t->bos = find_piece(m, sp.bos_piece, sp.bos_len, "<s>");
    t->eos = find_piece(m, sp.eos_piece, sp.eos_len, "</s>");
    t->pad = find_piece(m, sp.pad_piece, sp.pad_len, "<pad>");
    /* like the Llama tokenizers built on these files: BOS with ADD_SPECIAL, no EOS */
    m->add_bos = t->bos >= 0;
    t->add_bos = m->add_bos;
    t->strip_space_after_bos = m->add_dummy_prefix;
    kp_tokenizer_mark_eog(t);
done:
    kp_dealloc(a, (void *)pieces, n * sizeof *pieces);
    kp_dealloc(a, lens, n * sizeof *lens);
    kp_dealloc(a, scores, n * sizeof *scores);
    kp_dealloc(a, types, n);
    if (st) {
        kp_tokenizer_free(t);
        return st;
    }
    *out = t;
    return KP_OK;
}
