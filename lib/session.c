/* Sessions: a KV cache and scratch buffers over a shared, immutable model. */
#include <stdio.h>
#include <string.h>

#include "session.h"

kp_status kp_session_fail(kp_session *s, kp_status st)
{
    if (s)
        snprintf(s->err, sizeof s->err, "%s", kp_error_text());
    return st;
}

void kp_session_params_init(kp_session_params *p)
{
    if (!p)
        return;
    memset(p, 0, sizeof *p);
    p->struct_size = sizeof *p;
    p->kv_type = KP_KV_F32;
}

static void *dev_alloc(kp_session *s, size_t n)
{
    kp_backend *be = s->m->be;
    void *p = be->ops->buf_alloc(be, n);
    if (!p)
        kp_fail(KP_ERR_OUT_OF_MEMORY, "out of %s memory allocating %zu bytes", be->ops->name, n);
    return p;
}

static void dev_free(kp_session *s, void *p, size_t n)
{
    if (p)
        s->m->be->ops->buf_free(s->m->be, p, n);
}

/* Sizes of the activation buffers, in floats, for KP_BATCH tokens. */
typedef struct act_sizes {
    size_t x, q, kv, hb, scratch, logits_row;
} act_sizes;

/* Attention score rows per head: 8 prompt tokens share each pass over K and V on the CPU (see
 * backends/cpu/attention.c), fewer where that would pass 16 MiB; other devices keep their own. */
static int32_t scratch_tokens_of(const kp_session *s)
{
    const size_t row = (size_t)s->m->cfg.n_head * (size_t)s->n_ctx * sizeof(float);
    int32_t t = s->m->be->device == KP_DEVICE_CPU ? 8 : 1;
    while (t > 1 && (size_t)t * row > ((size_t)16 << 20))
        t /= 2;
    return t;
}

static act_sizes sizes_of(const kp_session *s)
{
    const kp_model_config *c = &s->m->cfg;
    act_sizes z;
    z.x = (size_t)KP_BATCH * c->n_embd;
    z.q = (size_t)KP_BATCH * c->n_head * c->head_dim;
    z.kv = (size_t)KP_BATCH * c->n_head_kv * c->head_dim;
    z.hb = (size_t)KP_BATCH * c->n_ff;
    z.scratch = (size_t)c->n_head * s->n_ctx * (size_t)scratch_tokens_of(s);
    z.logits_row = (size_t)c->n_vocab;
    return z;
}

/* The largest activation workspace any matmul of this model asks for. */
static size_t work_size_of(const kp_model *m)
{
    size_t best = 0;
    for (size_t i = 0; i < m->tensors.n; i++) {
        const kp_tensor *t = &m->tensors.items[i];
        if (t->ndim < 2 || !m->be->ops->supports(m->be, t->dtype))
            continue;
        size_t w = m->be->ops->matmul_work_size(m->be, t->dtype, t->ne[0], KP_BATCH);
        if (w > best)
            best = w;
    }
    return best;
}

static void free_acts(kp_session *s)
{
    kp_acts *a = &s->a;
    act_sizes z = sizes_of(s);
    dev_free(s, a->x, z.x * 4);
    dev_free(s, a->xb, z.x * 4);
    dev_free(s, a->xb2, z.x * 4);
    dev_free(s, a->q, z.q * 4);
    dev_free(s, a->att, z.q * 4);
    dev_free(s, a->k, z.kv * 4);
    dev_free(s, a->v, z.kv * 4);
    dev_free(s, a->hb, z.hb * 4);
    dev_free(s, a->hb2, z.hb * 4);
    dev_free(s, a->attn_scratch, z.scratch * 4);
    dev_free(s, a->work, a->work_size);
    dev_free(s, a->logits_dev, (size_t)a->logit_rows * z.logits_row * 4);
    memset(a, 0, sizeof *a);
}

static kp_status alloc_acts(kp_session *s)
{
    kp_acts *a = &s->a;
    act_sizes z = sizes_of(s);
    a->work_size = work_size_of(s->m);
    a->logit_rows = 1;
    a->scratch_tokens = scratch_tokens_of(s);
    if (!(a->x = dev_alloc(s, z.x * 4)) || !(a->xb = dev_alloc(s, z.x * 4)) ||
        !(a->xb2 = dev_alloc(s, z.x * 4)) || !(a->q = dev_alloc(s, z.q * 4)) ||
        !(a->att = dev_alloc(s, z.q * 4)) || !(a->k = dev_alloc(s, z.kv * 4)) ||
        !(a->v = dev_alloc(s, z.kv * 4)) || !(a->hb = dev_alloc(s, z.hb * 4)) ||
        !(a->hb2 = dev_alloc(s, z.hb * 4)) || !(a->attn_scratch = dev_alloc(s, z.scratch * 4)) ||
        (a->work_size && !(a->work = dev_alloc(s, a->work_size))) ||
        !(a->logits_dev = dev_alloc(s, z.logits_row * 4)))
        return KP_ERR_OUT_OF_MEMORY;
    return KP_OK;
}

/* Makes room for `rows` rows of logits on the device and on the host. */
kp_status kp_session_reserve_logits(kp_session *s, int32_t rows)
{
    size_t V = (size_t)s->m->cfg.n_vocab;
    kp_acts *a = &s->a;
    int32_t dev_rows = rows < KP_BATCH ? rows : KP_BATCH;
    if (dev_rows > a->logit_rows) {
        float *d = dev_alloc(s, (size_t)dev_rows * V * 4);
        if (!d)
            return KP_ERR_OUT_OF_MEMORY;
        dev_free(s, a->logits_dev, (size_t)a->logit_rows * V * 4);
        a->logits_dev = d;
        a->logit_rows = dev_rows;
    }
    if ((size_t)rows > s->logits_cap_rows) {
        float *h = kp_alloc(s->alloc, (size_t)rows * V * 4);
        if (!h)
            return KP_ERR_OUT_OF_MEMORY;
        kp_dealloc(s->alloc, s->logits, s->logits_cap_rows * V * 4);
        s->logits = h;
        s->logits_cap_rows = (size_t)rows;
    }
    return KP_OK;
}

kp_status kp_session_new(kp_model *m, const kp_session_params *p, kp_session **out)
{
    kp_clear_error();
    if (!out)
        return kp_fail(KP_ERR_INVALID_ARG, "kp_session_new: out is NULL");
    *out = NULL;
    if (!m)
        return kp_fail(KP_ERR_INVALID_ARG, "kp_session_new: model is NULL");
    kp_session_params dp;
    kp_session_params_init(&dp);
    if (p) {
        if (p->struct_size < sizeof(size_t) || p->struct_size > sizeof dp)
            return kp_fail(KP_ERR_INVALID_ARG, "kp_session_params.struct_size %zu is not one this library knows",
                           p->struct_size);
        memcpy(&dp, p, p->struct_size);
    }
    if (dp.n_ctx < 0 || dp.n_ctx > m->cfg.n_ctx)
        return kp_fail(KP_ERR_INVALID_ARG, "n_ctx %d is outside [0, %d] (the model's maximum)", dp.n_ctx,
                       m->cfg.n_ctx);
    if (dp.kv_type != KP_KV_F32 && dp.kv_type != KP_KV_F16)
        return kp_fail(KP_ERR_INVALID_ARG, "unknown kv_type %d", (int)dp.kv_type);
    kp_session *s = kp_calloc(m->alloc, 1, sizeof *s);
    if (!s)
        return KP_ERR_OUT_OF_MEMORY;
    s->m = m;
    s->alloc = m->alloc;
    /* Models trained for long contexts would otherwise reserve their whole KV cache up front. */
    s->n_ctx = dp.n_ctx ? dp.n_ctx : (m->cfg.n_ctx < KP_DEFAULT_CTX ? m->cfg.n_ctx : KP_DEFAULT_CTX);
    s->kv_type = dp.kv_type;
    atomic_init(&s->cancel, 0);
    const kp_model_config *c = &m->cfg;
    s->kv_layer_bytes = (size_t)s->n_ctx * c->n_head_kv * c->head_dim * (s->kv_type == KP_KV_F16 ? 2 : 4);
    kp_status st = KP_ERR_OUT_OF_MEMORY;
    s->k_cache = kp_calloc(s->alloc, (size_t)c->n_layer, sizeof(void *));
    s->v_cache = kp_calloc(s->alloc, (size_t)c->n_layer, sizeof(void *));
    s->tokens = kp_calloc(s->alloc, (size_t)s->n_ctx, sizeof(int32_t));
    if (!s->k_cache || !s->v_cache || !s->tokens)
        goto fail;
    for (int l = 0; l < c->n_layer; l++)
        if (!(s->k_cache[l] = dev_alloc(s, s->kv_layer_bytes)) || !(s->v_cache[l] = dev_alloc(s, s->kv_layer_bytes)))
            goto fail;
    if ((st = alloc_acts(s)) || (st = kp_session_reserve_logits(s, 1)))
        goto fail;
    *out = s;
    return KP_OK;
fail:
    kp_session_free(s);
    return st;
}

void kp_session_free(kp_session *s)
{
    if (!s)
        return;
    const kp_model_config *c = &s->m->cfg;
    free_acts(s);
    for (int l = 0; l < c->n_layer; l++) {
        if (s->k_cache)
            dev_free(s, s->k_cache[l], s->kv_layer_bytes);
        if (s->v_cache)
            dev_free(s, s->v_cache[l], s->kv_layer_bytes);
    }
    kp_dealloc(s->alloc, s->k_cache, (size_t)c->n_layer * sizeof(void *));
    kp_dealloc(s->alloc, s->v_cache, (size_t)c->n_layer * sizeof(void *));
    kp_dealloc(s->alloc, s->tokens, (size_t)s->n_ctx * sizeof(int32_t));
    kp_dealloc(s->alloc, s->logits, s->logits_cap_rows * (size_t)c->n_vocab * 4);
    kp_dealloc(s->alloc, s, sizeof *s);
}

kp_status kp_session_check_idle(kp_session *s, const char *what)
{
    if (!s->in_callback)
        return KP_OK;
    return kp_session_fail(s, kp_fail(KP_ERR_BUSY, "%s: called from inside a kp_generate callback on the same "
                                                   "session", what));
}

kp_status kp_session_eval(kp_session *s, const int32_t *ids, size_t n, uint32_t flags)
{
    kp_clear_error();
    if (!s)
        return kp_fail(KP_ERR_INVALID_ARG, "kp_session_eval: session is NULL");
    s->err[0] = 0;
    if (kp_session_check_idle(s, "kp_session_eval"))
        return KP_ERR_BUSY;
    if (!ids && n)
        return kp_session_fail(s, kp_fail(KP_ERR_INVALID_ARG, "kp_session_eval: ids is NULL"));
    if (flags & ~(KP_EVAL_LOGITS_LAST | KP_EVAL_LOGITS_ALL))
        return kp_session_fail(s, kp_fail(KP_ERR_INVALID_ARG, "kp_session_eval: unknown flags 0x%x", flags));
    if (n > (size_t)(s->n_ctx - s->n_past))
        return kp_session_fail(s, kp_fail(KP_ERR_CONTEXT_FULL,
                                          "evaluating %zu tokens after %d would exceed the context of %d",
                                          n, s->n_past, s->n_ctx));
    int32_t V = s->m->cfg.n_vocab;
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V)
            return kp_session_fail(s, kp_fail(KP_ERR_TOKEN_OUT_OF_RANGE,
                                              "token id %d at index %zu is outside [0, %d)", ids[i], i, V));
    s->n_logits = 0;
    if (n == 0)
        return KP_OK;
    kp_status st = kp_session_reserve_logits(s, (flags & KP_EVAL_LOGITS_ALL) ? (int32_t)n : 1);
    if (st)
        return kp_session_fail(s, st);
    st = kp_decoder_forward(s, ids, (int32_t)n, flags);
    if (st == KP_ERR_CANCELLED) { /* the request is consumed by the call it stopped */
        atomic_store(&s->cancel, 0);
        kp_fail(st, "evaluation cancelled after %d positions", s->n_past);
    }
    return st ? kp_session_fail(s, st) : KP_OK;
}

const float *kp_session_logits_borrow(const kp_session *s, size_t i)
{
    if (!s || i >= (size_t)s->n_logits)
        return NULL;
    return s->logits + i * (size_t)s->m->cfg.n_vocab;
}

int32_t kp_session_n_past(const kp_session *s) { return s ? s->n_past : 0; }
int32_t kp_session_n_ctx(const kp_session *s) { return s ? s->n_ctx : 0; }

kp_status kp_session_truncate(kp_session *s, int32_t n_keep)
{
    kp_clear_error();
    if (!s)
        return kp_fail(KP_ERR_INVALID_ARG, "kp_session_truncate: session is NULL");
    if (kp_session_check_idle(s, "kp_session_truncate"))
        return KP_ERR_BUSY;
    if (n_keep < 0 || n_keep > s->n_past)
        return kp_session_fail(s, kp_fail(KP_ERR_INVALID_ARG, "n_keep %d is outside [0, %d]", n_keep, s->n_past));
    s->n_past = n_keep; /* later positions are overwritten before they are read again */
    s->n_logits = 0;
    return KP_OK;
}

void kp_session_cancel(kp_session *s)
{
    if (s)
        atomic_store(&s->cancel, 1);
}

const char *kp_session_last_error(const kp_session *s) { return s ? s->err : ""; }
