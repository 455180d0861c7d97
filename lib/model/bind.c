/* Binds canonical tensor names to the decoder's slots and checks every shape against the
 * config, so a bad file fails at load with the tensor's name, never in the middle of a decode. */
#include <stdio.h>
#include <string.h>

#include "model.h"

enum { NORM_VEC = 0, MATRIX = 1 };

/* Finds `name`, checks its shape (ne0 x ne1) and type class. optional: a missing tensor is OK. */
static kp_status bind_one(kp_model *m, const char *name, int64_t ne0, int64_t ne1, int kind,
                          int optional, const kp_tensor **out)
{
    *out = NULL;
    const kp_tensor *t = kp_tensor_list_find(&m->tensors, name);
    if (!t)
        return optional ? KP_OK : kp_fail(KP_ERR_FORMAT, "model has no tensor '%s'", name);
    if (t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != 1 || t->ne[3] != 1)
        return kp_fail(KP_ERR_FORMAT,
                       "tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]", name,
                       (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                       (long long)t->ne[3], (long long)ne0, (long long)ne1);
    if (kind == NORM_VEC && t->dtype != KP_DTYPE_F32)
        return kp_fail(KP_ERR_UNSUPPORTED, "tensor '%s' is %s; norms, biases and rope factors must be f32",
                       name, kp_dtype_name(t->dtype));
    if (kind == MATRIX && !m->be->ops->supports(m->be, t->dtype))
        return kp_fail(KP_ERR_UNSUPPORTED, "tensor '%s' has type %s, which the %s backend cannot multiply",
                       name, kp_dtype_name(t->dtype), m->be->ops->name);
    *out = t;
    return KP_OK;
}

static kp_status check_config(const kp_model_config *c)
{
    if (c->n_vocab <= 0 || c->n_embd <= 0 || c->n_layer <= 0 || c->n_head <= 0 || c->n_head_kv <= 0 ||
        c->head_dim <= 0 || c->n_ff <= 0 || c->n_ctx <= 0)
        return kp_fail(KP_ERR_FORMAT, "model config has a non-positive size");
    if (c->n_head % c->n_head_kv || c->head_dim % 2)
        return kp_fail(KP_ERR_FORMAT, "model config: %d heads cannot share %d kv heads, or head size %d is odd",
                       c->n_head, c->n_head_kv, c->head_dim);
    if (!(c->rms_eps > 0.0f) || !(c->rope_theta > 0.0f))
        return kp_fail(KP_ERR_FORMAT, "model config: rms epsilon and rope theta must be positive");
    return KP_OK;
}

/* Config, every tensor's name, type and shape, and a sample of its bytes: cheap to compute at
 * load, and different for any two models a user is likely to confuse. */
static uint64_t fingerprint(const kp_model *m)
{
    const kp_model_config *c = &m->cfg;
    /* Field by field: struct padding is not guaranteed to be zero. */
    const int32_t ints[] = {c->n_vocab, c->n_embd, c->n_layer, c->n_head, c->n_head_kv, c->head_dim,
                            c->n_ff, c->n_ctx, (int32_t)c->rope_style, c->qkv_bias, c->tied_output};
    const float floats[] = {c->rms_eps, c->rope_theta};
    uint64_t h = kp_fnv1a64(KP_FNV64_INIT, c->arch, strnlen(c->arch, sizeof c->arch));
    h = kp_fnv1a64(h, ints, sizeof ints);
    h = kp_fnv1a64(h, floats, sizeof floats);
    if (c->qk_norm) /* only when set, so fingerprints saved before the field existed still match */
        h = kp_fnv1a64(h, &c->qk_norm, sizeof c->qk_norm);
    for (size_t i = 0; i < m->tensors.n; i++) {
        const kp_tensor *t = &m->tensors.items[i];
        h = kp_fnv1a64(h, t->name, strlen(t->name));
        h = kp_fnv1a64(h, &t->dtype, sizeof t->dtype);
        h = kp_fnv1a64(h, t->ne, sizeof t->ne);
        if (t->f32_acts)
            h = kp_fnv1a64(h, &t->f32_acts, sizeof t->f32_acts);
        if (t->device == KP_DEVICE_CPU && t->data && t->nbytes) {
            size_t k = t->nbytes < 64 ? t->nbytes : 64;
            h = kp_fnv1a64(h, t->data, k);
            h = kp_fnv1a64(h, (const char *)t->data + t->nbytes - k, k);
            h = kp_fnv1a64(h, (const char *)t->data + t->nbytes / 2 - k / 2, k);
        }
    }
    return h;
}

kp_status kp_model_bind(kp_model *m)
{
    const kp_model_config *c = &m->cfg;
    kp_status st = check_config(c);
    if (st)
        return st;
    int64_t E = c->n_embd, q_dim = (int64_t)c->n_head * c->head_dim,
            kv_dim = (int64_t)c->n_head_kv * c->head_dim, F = c->n_ff, V = c->n_vocab;
    if ((st = bind_one(m, "token_embd.weight", E, V, MATRIX, 0, &m->tok_embd)) ||
        (st = bind_one(m, "output_norm.weight", E, 1, NORM_VEC, 0, &m->output_norm)) ||
        (st = bind_one(m, "rope_freqs.weight", c->head_dim / 2, 1, NORM_VEC, 1, &m->rope_freqs)))
        return st;
    if (c->tied_output)
        m->output = m->tok_embd;
    else if ((st = bind_one(m, "output.weight", E, V, MATRIX, 0, &m->output)))
        return st;
    m->layers = kp_calloc(m->alloc, (size_t)c->n_layer, sizeof *m->layers);
    if (!m->layers)
        return KP_ERR_OUT_OF_MEMORY;
    char name[96];
#define BIND(field, suffix, ne0, ne1, kind, opt)                                     \
    do {                                                                              \
        snprintf(name, sizeof name, "blk.%d." suffix, l);                            \
        if ((st = bind_one(m, name, ne0, ne1, kind, opt, &lw->field)))               \
            return st;                                                                \
    } while (0)
    for (int l = 0; l < c->n_layer; l++) {
        kp_layer_weights *lw = &m->layers[l];
        BIND(attn_norm, "attn_norm.weight", E, 1, NORM_VEC, 0);
        BIND(wq, "attn_q.weight", E, q_dim, MATRIX, 0);
        BIND(wk, "attn_k.weight", E, kv_dim, MATRIX, 0);
        BIND(wv, "attn_v.weight", E, kv_dim, MATRIX, 0);
        BIND(wo, "attn_output.weight", q_dim, E, MATRIX, 0);
        BIND(ffn_norm, "ffn_norm.weight", E, 1, NORM_VEC, 0);
        BIND(w_gate, "ffn_gate.weight", E, F, MATRIX, 0);
        BIND(w_up, "ffn_up.weight", E, F, MATRIX, 0);
        BIND(w_down, "ffn_down.weight", F, E, MATRIX, 0);
        if (c->qk_norm) {
            BIND(q_norm, "attn_q_norm.weight", c->head_dim, 1, NORM_VEC, 0);
            BIND(k_norm, "attn_k_norm.weight", c->head_dim, 1, NORM_VEC, 0);
        }
        if (c->qkv_bias) {
            BIND(bq, "attn_q.bias", q_dim, 1, NORM_VEC, 0);
            BIND(bk, "attn_k.bias", kv_dim, 1, NORM_VEC, 0);
            BIND(bv, "attn_v.bias", kv_dim, 1, NORM_VEC, 0);
        }
    }
#undef BIND
    m->n_params = 0;
    m->n_bytes = 0;
    for (size_t i = 0; i < m->tensors.n; i++) {
        m->n_params += kp_tensor_nelems(&m->tensors.items[i]);
        m->n_bytes += m->tensors.items[i].nbytes;
    }
    m->fingerprint = fingerprint(m);
    return KP_OK;
}
