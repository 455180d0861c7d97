/* Saving and restoring a session: token ids, the used part of the KV cache and the last
 * logits, behind a versioned header with the model's fingerprint and a trailing checksum.
 * Loading validates the whole file before touching the session. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "kv_rows.h"
#include "session.h"

#define STATE_MAGIC "KPSS"
#define STATE_VERSION 1u
#define STATE_HEADER 64
#define CHUNK (1u << 20)

typedef struct state_header {
    char magic[4];
    uint32_t version;
    uint64_t fingerprint;
    int32_t n_vocab, n_layer, kv_dim;
    uint32_t kv_type;
    int32_t n_past, has_logits;
    uint8_t reserved[STATE_HEADER - 40];
} state_header;

_Static_assert(sizeof(state_header) == STATE_HEADER, "state header is 64 bytes");

static size_t kv_row_bytes(const kp_session *s)
{
    const kp_model_config *c = &s->m->cfg;
    return (size_t)c->n_head_kv * c->head_dim * (s->kv_type == KP_KV_F16 ? 2 : 4);
}

static kp_kv_shape kv_shape(const kp_session *s)
{
    return (kp_kv_shape){s->kv_type, s->n_ctx, s->m->cfg.n_head_kv, s->m->cfg.head_dim};
}

typedef struct writer {
    FILE *f;
    uint64_t sum;
    int err;
} writer;

static void put(writer *w, const void *p, size_t n)
{
    if (w->err || !n)
        return;
    w->sum = kp_fnv1a64(w->sum, p, n);
    if (fwrite(p, 1, n, w->f) != n)
        w->err = errno ? errno : EIO;
}

kp_status kp_session_save(const kp_session *s, const char *path)
{
    kp_clear_error();
    if (!s || !path)
        return kp_fail(KP_ERR_INVALID_ARG, "kp_session_save: NULL argument");
    const kp_model *m = s->m;
    const kp_model_config *c = &m->cfg;
    const kp_kv_shape shape = kv_shape(s);
    size_t layer_bytes = (size_t)s->n_past * kv_row_bytes(s);
    void *stage = kp_alloc(s->alloc, layer_bytes ? 2 * layer_bytes : 1); /* rows, then kv_rows' tmp */
    if (!stage)
        return KP_ERR_OUT_OF_MEMORY;
    state_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, STATE_MAGIC, 4);
    h.version = STATE_VERSION;
    h.fingerprint = m->fingerprint;
    h.n_vocab = c->n_vocab;
    h.n_layer = c->n_layer;
    h.kv_dim = c->n_head_kv * c->head_dim;
    h.kv_type = (uint32_t)s->kv_type;
    h.n_past = s->n_past;
    h.has_logits = s->n_logits > 0;
    kp_status st = KP_OK;
    writer w = {fopen(path, "wb"), KP_FNV64_INIT, 0};
    if (!w.f) {
        st = kp_fail(KP_ERR_IO, "cannot create '%s': %s", path, strerror(errno));
        goto done;
    }
    put(&w, &h, sizeof h);
    put(&w, s->tokens, (size_t)s->n_past * sizeof *s->tokens);
    for (int l = 0; l < c->n_layer && !w.err && !st; l++) {
        for (int kv = 0; kv < 2 && !st; kv++) {
            st = kp_kv_rows_download(m->be, stage, kv ? s->v_cache[l] : s->k_cache[l], &shape, s->n_past,
                                     (char *)stage + layer_bytes);
            put(&w, stage, layer_bytes);
        }
    }
    if (h.has_logits)
        put(&w, s->logits + (size_t)(s->n_logits - 1) * c->n_vocab, (size_t)c->n_vocab * sizeof(float));
    uint64_t sum = w.sum;
    put(&w, &sum, sizeof sum);
    if (fclose(w.f) != 0 && !w.err)
        w.err = errno ? errno : EIO;
    if (!st && w.err)
        st = kp_fail(KP_ERR_IO, "cannot write '%s': %s", path, strerror(w.err));
done:
    kp_dealloc(s->alloc, stage, layer_bytes ? 2 * layer_bytes : 1);
    return st ? kp_session_fail((kp_session *)s, st) : KP_OK;
}

/* Index of the first NaN or infinity among the n floats (f16 when `half`) at p, or -1. The
 * checksum only proves the file is what was saved; a session that held such values (or a
 * forged file) must not load and poison every later logit. */
static long first_non_finite(const unsigned char *p, size_t n, int half)
{
    for (size_t i = 0; i < n; i++) {
        if (half) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            if ((h & 0x7c00u) == 0x7c00u)
                return (long)i;
        } else {
            uint32_t w;
            memcpy(&w, p + 4 * i, 4);
            if ((w & 0x7f800000u) == 0x7f800000u)
                return (long)i;
        }
    }
    return -1;
}

/* Checks the part [lo, hi) of the body chunk that starts at body offset `at` (n bytes at p). */
static kp_status check_finite(const unsigned char *p, size_t at, size_t n, size_t lo, size_t hi, int half,
                              const char *what, const char *path)
{
    size_t b = at > lo ? at : lo, e = at + n < hi ? at + n : hi;
    if (b >= e)
        return KP_OK;
    size_t es = half ? 2 : 4;
    long i = first_non_finite(p + (b - at), (e - b) / es, half);
    if (i >= 0)
        return kp_fail(KP_ERR_FORMAT, "session state '%s' holds a non-finite %s value (element %zu)", path, what,
                       (b - lo) / es + (size_t)i);
    return KP_OK;
}

/* Reads exactly n bytes, or fails with a message naming the file. */
static kp_status get(FILE *f, void *p, size_t n, const char *path)
{
    if (n && fread(p, 1, n, f) != n)
        return kp_fail(KP_ERR_FORMAT, "session state '%s' is truncated", path);
    return KP_OK;
}

static kp_status check_header(const kp_session *s, const state_header *h, size_t file_size, const char *path)
{
    const kp_model_config *c = &s->m->cfg;
    if (memcmp(h->magic, STATE_MAGIC, 4) != 0)
        return kp_fail(KP_ERR_FORMAT, "'%s' is not a libkuiper session state", path);
    if (h->version != STATE_VERSION)
        return kp_fail(KP_ERR_UNSUPPORTED, "session state '%s' has version %u; this library reads %u", path,
                       h->version, STATE_VERSION);
    if (h->fingerprint != s->m->fingerprint || h->n_vocab != c->n_vocab || h->n_layer != c->n_layer ||
        h->kv_dim != c->n_head_kv * c->head_dim)
        return kp_fail(KP_ERR_MODEL_MISMATCH, "session state '%s' was saved with another model", path);
    if (h->kv_type != (uint32_t)s->kv_type)
        return kp_fail(KP_ERR_INVALID_ARG, "session state '%s' has another KV cache type than this session", path);
    if (h->n_past < 0 || h->n_past > s->n_ctx)
        return kp_fail(h->n_past < 0 ? KP_ERR_FORMAT : KP_ERR_CONTEXT_FULL,
                       "session state '%s' holds %d positions; this session has room for %d", path, h->n_past,
                       s->n_ctx);
    size_t want = sizeof *h + (size_t)h->n_past * 4 + 2 * (size_t)c->n_layer * h->n_past * kv_row_bytes(s) +
                  (h->has_logits ? (size_t)c->n_vocab * 4 : 0) + 8;
    if (file_size != want)
        return kp_fail(KP_ERR_FORMAT, "session state '%s' is %zu bytes, its header says %zu", path, file_size, want);
    return KP_OK;
}

kp_status kp_session_load(kp_session *s, const char *path)
{
    kp_clear_error();
    if (!s || !path)
        return kp_fail(KP_ERR_INVALID_ARG, "kp_session_load: NULL argument");
    s->err[0] = 0;
    if (kp_session_check_idle(s, "kp_session_load"))
        return KP_ERR_BUSY;
    const kp_model *m = s->m;
    const int32_t V = m->cfg.n_vocab;
    FILE *f = fopen(path, "rb");
    if (!f)
        return kp_session_fail(s, kp_fail(KP_ERR_IO, "cannot open '%s': %s", path, strerror(errno)));
    struct stat fs;
    if (fstat(fileno(f), &fs) == 0 && S_ISDIR(fs.st_mode)) {
        fclose(f);
        return kp_session_fail(s, kp_fail(KP_ERR_IO, "session state '%s' is a directory, not a file", path));
    }
    state_header h;
    kp_status st = KP_OK;
    void *buf = NULL;
    size_t buf_size = 0;
    long size_l = (fseek(f, 0, SEEK_END) == 0) ? ftell(f) : -1;
    if (size_l < 0 || fseek(f, 0, SEEK_SET) != 0) {
        st = kp_fail(KP_ERR_IO, "cannot read '%s'", path);
        goto done;
    }
    if ((st = get(f, &h, sizeof h, path)) || (st = check_header(s, &h, (size_t)size_l, path)))
        goto done;
    /* Pass 1: checksum, token range and finite values, nothing changed yet. The body is token
     * ids, then the KV cache, then the logits; chunks are a multiple of 4 bytes, so no value
     * straddles two of them. */
    size_t body = (size_t)size_l - sizeof h - 8;
    buf_size = body < CHUNK ? (body + 3) & ~(size_t)3 : CHUNK; /* a short state needs no 1 MiB buffer */
    if (!buf_size)
        buf_size = 4;
    if (!(buf = kp_alloc(s->alloc, buf_size))) {
        st = KP_ERR_OUT_OF_MEMORY;
        goto done;
    }
    uint64_t sum = kp_fnv1a64(KP_FNV64_INIT, &h, sizeof h);
    size_t kv_lo = (size_t)h.n_past * 4, kv_hi = kv_lo + 2 * (size_t)m->cfg.n_layer * h.n_past * kv_row_bytes(s);
    int half = s->kv_type == KP_KV_F16;
    for (size_t done_b = 0; done_b < body;) {
        size_t n = body - done_b < buf_size ? body - done_b : buf_size;
        if ((st = get(f, buf, n, path)))
            goto done;
        if (done_b < (size_t)h.n_past * 4) { /* token ids come first */
            size_t lim = (size_t)h.n_past * 4 - done_b;
            const int32_t *ids = buf;
            for (size_t i = 0; i < (n < lim ? n : lim) / 4; i++)
                if (ids[i] < 0 || ids[i] >= V) {
                    st = kp_fail(KP_ERR_FORMAT, "session state '%s' holds an out-of-range token id %d", path, ids[i]);
                    goto done;
                }
        }
        if ((st = check_finite(buf, done_b, n, kv_lo, kv_hi, half, "KV cache", path)) ||
            (st = check_finite(buf, done_b, n, kv_hi, body, 0, "logit", path)))
            goto done;
        sum = kp_fnv1a64(sum, buf, n);
        done_b += n;
    }
    uint64_t stored;
    if ((st = get(f, &stored, 8, path)))
        goto done;
    if (stored != sum) {
        st = kp_fail(KP_ERR_FORMAT, "session state '%s' is corrupt (checksum mismatch)", path);
        goto done;
    }
    /* Pass 2: upload. The session only changes from here on, and nothing below can fail on a
     * valid file except the backend itself. */
    const kp_kv_shape shape = kv_shape(s);
    size_t layer_bytes = (size_t)h.n_past * kv_row_bytes(s);
    if (2 * layer_bytes > buf_size) { /* rows, then kv_rows' tmp */
        kp_dealloc(s->alloc, buf, buf_size);
        buf_size = 2 * layer_bytes;
        if (!(buf = kp_alloc(s->alloc, buf_size))) {
            st = KP_ERR_OUT_OF_MEMORY;
            goto done;
        }
    }
    if (fseek(f, (long)sizeof h, SEEK_SET) != 0 ||
        (st = get(f, s->tokens, (size_t)h.n_past * sizeof *s->tokens, path)))
        goto done;
    s->n_past = 0;
    s->n_logits = 0;
    for (int l = 0; l < m->cfg.n_layer; l++)
        for (int kv = 0; kv < 2; kv++)
            if ((st = get(f, buf, layer_bytes, path)) ||
                (st = kp_kv_rows_upload(m->be, kv ? s->v_cache[l] : s->k_cache[l], buf, &shape, h.n_past,
                                        (char *)buf + layer_bytes)))
                goto done;
    if (h.has_logits) {
        if ((st = get(f, s->logits, (size_t)V * sizeof(float), path)))
            goto done;
        s->n_logits = 1;
    }
    s->n_past = h.n_past;
done:
    fclose(f);
    kp_dealloc(s->alloc, buf, buf_size);
    return st ? kp_session_fail(s, st) : KP_OK;
}

const int32_t *kp_session_tokens_borrow(const kp_session *s) { return s ? s->tokens : NULL; }
