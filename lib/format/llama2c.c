/* llama2.c checkpoints: legacy v0 (bare 28-byte header), v1 (fp32, "ak42" header) and v2
 * (group-wise int8). Byte layouts: docs/formats.md. Tensors point into the mapping; the
 * names are the canonical GGUF ones so the model binds them like any other format. */
#include <stdio.h>
#include <string.h>

#include "llama2c.h"

#define L2C_MAGIC 0x616b3432u
#define L2C_HEADER_V12 256


kp_status kp_l2c_check_hparams(const l2c_hparams *h, int version)
{
    if (h->dim <= 0 || h->hidden <= 0 || h->n_layers <= 0 || h->n_heads <= 0 || h->n_kv_heads <= 0 ||
        h->vocab == 0 || h->vocab == INT32_MIN || h->seq_len <= 0)
        return kp_fail(KP_ERR_FORMAT,
                       "llama2.c v%d header has a non-positive size (dim %d, hidden %d, layers %d, "
                       "heads %d, kv heads %d, vocab %d, seq_len %d)",
                       version, h->dim, h->hidden, h->n_layers, h->n_heads, h->n_kv_heads, h->vocab,
                       h->seq_len);
    if (h->dim % h->n_heads || h->n_heads % h->n_kv_heads || (h->dim / h->n_heads) % 2)
        return kp_fail(KP_ERR_FORMAT,
                       "llama2.c header: dim %d, heads %d, kv heads %d do not give an even head size "
                       "shared by whole kv groups",
                       h->dim, h->n_heads, h->n_kv_heads);
    /* Bounds that keep every product below in 64-bit range; real models are far smaller. */
    if (h->dim > (1 << 16) || h->hidden > (1 << 18) || h->n_layers > 1024 || (h->vocab < 0 ? -h->vocab : h->vocab) > (1 << 22) ||
        h->seq_len > (1 << 22))
        return kp_fail(KP_ERR_FORMAT, "llama2.c header has absurd sizes (dim %d, hidden %d, layers %d, vocab %d, seq_len %d)",
                       h->dim, h->hidden, h->n_layers, h->vocab, h->seq_len);
    return KP_OK;
}

/* Takes `nbytes` at the cursor, failing with the tensor's name if the file is too short. */
kp_status kp_l2c_take(l2c_cursor *c, size_t nbytes, const char *what, const uint8_t **out)
{
    if (nbytes > c->size - c->off)
        return kp_fail(KP_ERR_FORMAT,
                       "llama2.c file truncated: %s needs %zu bytes at offset %zu, file has %zu",
                       what, nbytes, c->off, c->size);
    *out = c->base + c->off;
    c->off += nbytes;
    return KP_OK;
}

kp_status kp_l2c_add_f32(kp_model *m, l2c_cursor *c, const char *name, int64_t ne0, int64_t ne1)
{
    const uint8_t *p = NULL;
    int64_t ne[2] = {ne0, ne1};
    kp_status st = kp_l2c_take(c, (size_t)(ne0 * ne1) * 4, name, &p);
    if (st)
        return st;
    kp_tensor t;
    kp_tensor_init(&t, name, KP_DTYPE_F32, ne1 > 1 ? 2 : 1, ne, (void *)p);
    return kp_tensor_list_add(&m->tensors, &t) ? KP_OK : KP_ERR_OUT_OF_MEMORY;
}

/* v2: the int8 values of a tensor, then its float scales (one per `gs` flattened elements). */
kp_status kp_l2c_add_i8g(kp_model *m, l2c_cursor *c, const char *name, int64_t ne0, int64_t ne1, int32_t gs)
{
    size_t n = (size_t)(ne0 * ne1);
    if (n % (size_t)gs || ne0 % gs)
        return kp_fail(KP_ERR_UNSUPPORTED,
                       "llama2.c v2 tensor '%s' has rows of %lld, not a multiple of the group size %d",
                       name, (long long)ne0, gs);
    const uint8_t *q = NULL, *s = NULL;
    kp_status st = kp_l2c_take(c, n, name, &q);
    if (!st)
        st = kp_l2c_take(c, n / (size_t)gs * 4, name, &s);
    if (st)
        return st;
    if ((uintptr_t)s % 4)
        return kp_fail(KP_ERR_UNSUPPORTED, "llama2.c v2 tensor '%s' has misaligned scales at offset %zu",
                       name, (size_t)(s - c->base));
    int64_t ne[2] = {ne0, ne1};
    kp_tensor t;
    kp_tensor_init(&t, name, KP_DTYPE_I8G, 2, ne, (void *)q);
    t.scales = (const float *)(const void *)s;
    t.group = gs;
    return kp_tensor_list_add(&m->tensors, &t) ? KP_OK : KP_ERR_OUT_OF_MEMORY;
}

typedef kp_status (*add_fn)(kp_model *, l2c_cursor *, const char *, int64_t, int64_t, int32_t);

static kp_status add_f32_any(kp_model *m, l2c_cursor *c, const char *name, int64_t ne0, int64_t ne1,
                             int32_t gs)
{
    (void)gs;
    return kp_l2c_add_f32(m, c, name, ne0, ne1);
}

/* One tensor per layer: blk.<l>.<kind>.weight for l in 0..L-1, each (ne0 x ne1). */
static kp_status add_layers(kp_model *m, l2c_cursor *c, const l2c_hparams *h, const char *kind,
                            int64_t ne0, int64_t ne1, add_fn add, int32_t gs)
{
    char name[64];
    for (int l = 0; l < h->n_layers; l++) {
        snprintf(name, sizeof name, "blk.%d.%s.weight", l, kind);
        kp_status st = add(m, c, name, ne0, ne1, gs);
        if (st)
            return st;
    }
    return KP_OK;
}

/* The seven per-layer matrices in file order (wq, wk, wv, wo, w1, w2, w3). */
static kp_status add_matrices(kp_model *m, l2c_cursor *c, const l2c_hparams *h, add_fn add, int32_t gs)
{
    int64_t dim = h->dim, hid = h->hidden, kv = (int64_t)h->dim / h->n_heads * h->n_kv_heads;
    struct {
        const char *kind;
        int64_t ne0, ne1;
    } mats[] = {
        {"attn_q", dim, dim},  {"attn_k", dim, kv},  {"attn_v", dim, kv}, {"attn_output", dim, dim},
        {"ffn_gate", dim, hid}, {"ffn_down", hid, dim}, {"ffn_up", dim, hid},
    };
    for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) {
        kp_status st = add_layers(m, c, h, mats[i].kind, mats[i].ne0, mats[i].ne1, add, gs);
        if (st)
            return st;
    }
    return KP_OK;
}

static kp_status add_norms(kp_model *m, l2c_cursor *c, const l2c_hparams *h, const char *kind)
{
    return add_layers(m, c, h, kind, h->dim, 1, add_f32_any, 0);
}

static void fill_config(kp_model *m, const l2c_hparams *h, int shared)
{
    kp_model_config *cfg = &m->cfg;
    memset(cfg, 0, sizeof *cfg);
    strcpy(cfg->arch, "llama");
    cfg->n_vocab = h->vocab < 0 ? -h->vocab : h->vocab;
    cfg->n_embd = h->dim;
    cfg->n_layer = h->n_layers;
    cfg->n_head = h->n_heads;
    cfg->n_head_kv = h->n_kv_heads;
    cfg->head_dim = h->dim / h->n_heads;
    cfg->n_ff = h->hidden;
    cfg->n_ctx = h->seq_len;
    cfg->rms_eps = 1e-5f;
    cfg->rope_theta = 10000.0f;
    cfg->rope_style = KP_ROPE_NORM;
    cfg->tied_output = shared;
    cfg->stop_on_bos = 1;
}

static kp_status read_v0(kp_model *m, l2c_cursor *c)
{
    l2c_hparams h;
    const uint8_t *p = NULL;
    kp_status st = kp_l2c_take(c, 28, "header", &p);
    if (st)
        return st;
    memcpy(&h, p, 28);
    if ((st = kp_l2c_check_hparams(&h, 0)))
        return st;
    int shared = h.vocab > 0;
    fill_config(m, &h, shared);
    int64_t V = m->cfg.n_vocab, hs = m->cfg.head_dim;
    if ((st = kp_l2c_add_f32(m, c, "token_embd.weight", h.dim, V)) || (st = add_norms(m, c, &h, "attn_norm")))
        return st;
    /* v0 stores the per-kind blocks with the FFN norms between wo and w1. */
    int64_t dim = h.dim, hid = h.hidden, kv = hs * h.n_kv_heads;
    if ((st = add_layers(m, c, &h, "attn_q", dim, dim, add_f32_any, 0)) ||
        (st = add_layers(m, c, &h, "attn_k", dim, kv, add_f32_any, 0)) ||
        (st = add_layers(m, c, &h, "attn_v", dim, kv, add_f32_any, 0)) ||
        (st = add_layers(m, c, &h, "attn_output", dim, dim, add_f32_any, 0)) ||
        (st = add_norms(m, c, &h, "ffn_norm")) ||
        (st = add_layers(m, c, &h, "ffn_gate", dim, hid, add_f32_any, 0)) ||
        (st = add_layers(m, c, &h, "ffn_down", hid, dim, add_f32_any, 0)) ||
        (st = add_layers(m, c, &h, "ffn_up", dim, hid, add_f32_any, 0)) ||
        (st = kp_l2c_add_f32(m, c, "output_norm.weight", dim, 1)))
        return st;
    /* The stored RoPE tables are recomputed at run time, as llama2.c does. */
    if ((st = kp_l2c_take(c, (size_t)h.seq_len * (size_t)hs * 4, "RoPE tables", &p)))
        return st;
    if (!shared && (st = kp_l2c_add_f32(m, c, "output.weight", dim, V)))
        return st;
    return KP_OK;
}

static kp_status read_v12(kp_model *m, l2c_cursor *c, int version)
{
    const uint8_t *p = NULL;
    kp_status st = kp_l2c_take(c, L2C_HEADER_V12, "header", &p);
    if (st)
        return st;
    l2c_hparams h;
    memcpy(&h, p + 8, 28);
    if ((st = kp_l2c_check_hparams(&h, version)))
        return st;
    if (h.vocab < 0)
        return kp_fail(KP_ERR_FORMAT, "llama2.c v%d header has a negative vocab size %d", version, h.vocab);
    int shared = p[36] != 0;
    int32_t gs = 0;
    if (version == 2) {
        memcpy(&gs, p + 37, 4);
        if (gs <= 0 || h.dim % gs || h.hidden % gs)
            return kp_fail(KP_ERR_UNSUPPORTED,
                           "llama2.c v2 group size %d must be positive and divide dim %d and hidden %d",
                           gs, h.dim, h.hidden);
    }
    fill_config(m, &h, shared);
    int64_t V = m->cfg.n_vocab;
    if ((st = add_norms(m, c, &h, "attn_norm")) || (st = add_norms(m, c, &h, "ffn_norm")) ||
        (st = kp_l2c_add_f32(m, c, "output_norm.weight", h.dim, 1)))
        return st;
    if (version == 1) {
        if ((st = kp_l2c_add_f32(m, c, "token_embd.weight", h.dim, V)) || (st = add_matrices(m, c, &h, add_f32_any, 0)))
            return st;
        if (!shared && (st = kp_l2c_add_f32(m, c, "output.weight", h.dim, V)))
            return st;
    } else {
        if ((st = kp_l2c_add_i8g(m, c, "token_embd.weight", h.dim, V, gs)) || (st = add_matrices(m, c, &h, kp_l2c_add_i8g, gs)))
            return st;
        if (!shared && (st = kp_l2c_add_i8g(m, c, "output.weight", h.dim, V, gs)))
            return st;
    }
    return KP_OK;
}

kp_status kp_llama2c_read(kp_model *m)
{
    l2c_cursor c = {m->file.data, m->file.size, 0, NULL};
    uint32_t magic = 0;
    kp_status st;
    if (c.size >= 8)
        memcpy(&magic, c.base, 4);
    if (magic == L2C_MAGIC) {
        int32_t version;
        memcpy(&version, c.base + 4, 4);
        if (version != 1 && version != 2)
            return kp_fail(KP_ERR_UNSUPPORTED, "llama2.c checkpoint version %d is not supported (1 and 2 are)",
                           version);
        st = read_v12(m, &c, version);
    } else {
        st = read_v0(m, &c);
    }
    if (st)
        return st;
    if (c.off != c.size)
        kp_log(&m->log, KP_LOG_WARN, "llama2.c checkpoint has %zu bytes after its last tensor", c.size - c.off);
    return KP_OK;
}
