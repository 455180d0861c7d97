/* KuiperLLama exports (tools/export.py and export_qwen2.py). Neither the architecture nor the
 * precision is stored: the caller names the family, and fp32 ("version 0": llama2.c's legacy
 * layout, Qwen2 adding each layer's q/k/v bias after its weight) and int8 ("version 3": grouped
 * int8 matrices, then the fp32 embedding and norms) are told apart by the file size, which each
 * layout fixes exactly. Layouts: docs/formats.md. */
#include <stdio.h>
#include <string.h>

#include "../json.h"
#include "llama2c.h"

typedef struct family {
    const char *name, *arch;
    kp_rope_style rope;
    float theta, eps;
    int bias; /* fp32 files carry q/k/v biases (int8 files never do) */
} family;

static const family FAMILIES[] = {
    {"llama2", "llama", KP_ROPE_NORM, 10000.0f, 1e-5f, 0},
    {"llama3", "llama", KP_ROPE_NEOX, 500000.0f, 1e-5f, 0},
    {"qwen2", "qwen2", KP_ROPE_NEOX, 1000000.0f, 1e-6f, 1},
};

typedef struct dims {
    uint64_t V, d, L, kv, h, S, hs;
} dims;

static uint64_t fp32_size(const dims *z, int shared, int bias)
{
    uint64_t f = z->V * z->d + z->L * z->d + z->L * (z->d * z->d + 2 * z->kv * z->d + z->d * z->d) + z->L * z->d +
                 3 * z->L * z->h * z->d + z->d + z->S * z->hs + (shared ? 0 : z->V * z->d);
    if (bias)
        f += z->L * (z->d + 2 * z->kv);
    return 28 + 4 * f;
}

static uint64_t int8_size(const dims *z, int shared, uint64_t gs)
{
    const uint64_t mats = z->L * (2 * z->d * z->d + 2 * z->kv * z->d + 3 * z->h * z->d) + (shared ? 0 : z->V * z->d);
    return 32 + mats + mats / gs * 4 + 4 * (z->V * z->d + 2 * z->L * z->d + z->d);
}

/* int8 values then scales, groups of `gs` over the flattened matrix (they may straddle rows). */
static kp_status add_int8(kp_model *m, l2c_cursor *c, const char *name, int64_t ne0, int64_t ne1, int32_t gs)
{
    const size_t n = (size_t)(ne0 * ne1);
    const uint8_t *q = NULL, *s = NULL;
    kp_status st;
    if (n % (size_t)gs)
        return kp_fail(KP_ERR_FORMAT, "KuiperLLama int8 tensor '%s' has %zu values, not whole groups of %d", name, n, gs);
    if ((st = kp_l2c_take(c, n, name, &q)) || (st = kp_l2c_take(c, n / (size_t)gs * 4, name, &s)))
        return st;
    if ((uintptr_t)s % 4)
        return kp_fail(KP_ERR_UNSUPPORTED, "KuiperLLama int8 tensor '%s' has misaligned scales", name);
    int64_t ne[2] = {ne0, ne1};
    kp_tensor t;
    kp_tensor_init(&t, name, KP_DTYPE_I8G, 2, ne, (void *)q);
    t.scales = (const float *)(const void *)s;
    t.group = gs;
    t.f32_acts = 1; /* KuiperLLama's int8 kernel keeps the activations in float */
    return kp_tensor_list_add(&m->tensors, &t) ? KP_OK : KP_ERR_OUT_OF_MEMORY;
}

typedef kp_status (*add_fn)(kp_model *, l2c_cursor *, const char *, int64_t, int64_t, int32_t);

static kp_status add_fp32(kp_model *m, l2c_cursor *c, const char *name, int64_t ne0, int64_t ne1, int32_t gs)
{
    (void)gs;
    return kp_l2c_add_f32(m, c, name, ne0, ne1);
}

/* blk.<l>.<kind>.weight for every layer, each followed by blk.<l>.<bias> when `bias` is set. */
static kp_status add_layers(kp_model *m, l2c_cursor *c, int L, const char *kind, int64_t ne0, int64_t ne1,
                            add_fn add, int32_t gs, const char *bias)
{
    char name[64];
    kp_status st = KP_OK;
    for (int l = 0; l < L && !st; l++) {
        snprintf(name, sizeof name, "blk.%d.%s.weight", l, kind);
        st = add(m, c, name, ne0, ne1, gs);
        if (!st && bias) {
            snprintf(name, sizeof name, "blk.%d.%s", l, bias);
            st = kp_l2c_add_f32(m, c, name, ne1, 1);
        }
    }
    return st;
}

kp_status kp_kuiper_read(kp_model *m, const char *family_name)
{
    const family *fam = NULL;
    for (size_t i = 0; i < sizeof FAMILIES / sizeof FAMILIES[0]; i++)
        if (!strcmp(family_name, FAMILIES[i].name))
            fam = &FAMILIES[i];
    if (!fam)
        return kp_fail(KP_ERR_INVALID_ARG, "unknown KuiperLLama family '%.32s' (llama2, llama3 or qwen2)", family_name);
    l2c_cursor c = {m->file.data, m->file.size, 0, NULL};
    l2c_hparams h;
    const uint8_t *p = NULL;
    kp_status st = kp_l2c_take(&c, 28, "header", &p);
    if (st)
        return st;
    memcpy(&h, p, 28);
    if ((st = kp_l2c_check_hparams(&h, 0)))
        return st;
    const int shared = h.vocab > 0;
    const int L = h.n_layers;
    dims z = {(uint64_t)(shared ? h.vocab : -h.vocab), (uint64_t)h.dim, (uint64_t)L,
              (uint64_t)(h.dim / h.n_heads * h.n_kv_heads), (uint64_t)h.hidden, (uint64_t)h.seq_len,
              (uint64_t)(h.dim / h.n_heads)};
    int32_t gs = 0;
    if (c.size >= 32)
        memcpy(&gs, c.base + 28, 4);
    const uint64_t f32 = fp32_size(&z, shared, fam->bias), i8 = gs > 0 ? int8_size(&z, shared, (uint64_t)gs) : 0;
    const int quant = c.size != f32 && c.size == i8;
    if (c.size != f32 && !quant)
        return kp_fail(KP_ERR_FORMAT,
                       "a KuiperLLama %s file with this header is %llu bytes as fp32 or %llu bytes as int8 (group %d), "
                       "but this one has %zu: truncated, another family, or not a KuiperLLama file",
                       fam->name, (unsigned long long)f32, (unsigned long long)i8, gs, c.size);
    kp_model_config *k = &m->cfg;
    memset(k, 0, sizeof *k);
    snprintf(k->arch, sizeof k->arch, "%s", fam->arch);
    k->n_vocab = (int32_t)z.V;
    k->n_embd = h.dim;
    k->n_layer = L;
    k->n_head = h.n_heads;
    k->n_head_kv = h.n_kv_heads;
    k->head_dim = h.dim / h.n_heads;
    k->n_ff = h.hidden;
    k->n_ctx = h.seq_len;
    k->rms_eps = fam->eps;
    k->rope_theta = fam->theta;
    k->rope_style = fam->rope;
    k->qkv_bias = fam->bias && !quant;
    k->tied_output = shared;
    const int64_t d = h.dim, kv = (int64_t)z.kv, hid = h.hidden, V = (int64_t)z.V;
    const int b = k->qkv_bias;
    if (quant) {
        c.off = 32;
        if ((st = add_layers(m, &c, L, "attn_q", d, d, add_int8, gs, NULL)) ||
            (st = add_layers(m, &c, L, "attn_k", d, kv, add_int8, gs, NULL)) ||
            (st = add_layers(m, &c, L, "attn_v", d, kv, add_int8, gs, NULL)) ||
            (st = add_layers(m, &c, L, "attn_output", d, d, add_int8, gs, NULL)) ||
            (st = add_layers(m, &c, L, "ffn_gate", d, hid, add_int8, gs, NULL)) ||
            (st = add_layers(m, &c, L, "ffn_down", hid, d, add_int8, gs, NULL)) ||
            (st = add_layers(m, &c, L, "ffn_up", d, hid, add_int8, gs, NULL)) ||
            (!shared && (st = add_int8(m, &c, "output.weight", d, V, gs))) ||
            (st = kp_l2c_add_f32(m, &c, "token_embd.weight", d, V)) ||
            (st = add_layers(m, &c, L, "attn_norm", d, 1, add_fp32, 0, NULL)) ||
            (st = add_layers(m, &c, L, "ffn_norm", d, 1, add_fp32, 0, NULL)) ||
            (st = kp_l2c_add_f32(m, &c, "output_norm.weight", d, 1)))
            return st;
    } else {
        if ((st = kp_l2c_add_f32(m, &c, "token_embd.weight", d, V)) ||
            (st = add_layers(m, &c, L, "attn_norm", d, 1, add_fp32, 0, NULL)) ||
            (st = add_layers(m, &c, L, "attn_q", d, d, add_fp32, 0, b ? "attn_q.bias" : NULL)) ||
            (st = add_layers(m, &c, L, "attn_k", d, kv, add_fp32, 0, b ? "attn_k.bias" : NULL)) ||
            (st = add_layers(m, &c, L, "attn_v", d, kv, add_fp32, 0, b ? "attn_v.bias" : NULL)) ||
            (st = add_layers(m, &c, L, "attn_output", d, d, add_fp32, 0, NULL)) ||
            (st = add_layers(m, &c, L, "ffn_norm", d, 1, add_fp32, 0, NULL)) ||
            (st = add_layers(m, &c, L, "ffn_gate", d, hid, add_fp32, 0, NULL)) ||
            (st = add_layers(m, &c, L, "ffn_down", hid, d, add_fp32, 0, NULL)) ||
            (st = add_layers(m, &c, L, "ffn_up", d, hid, add_fp32, 0, NULL)) ||
            (st = kp_l2c_add_f32(m, &c, "output_norm.weight", d, 1)) ||
            (st = kp_l2c_take(&c, (size_t)(z.S * z.hs * 4), "RoPE tables", &p)) || /* recomputed, as KuiperLLama does */
            (!shared && (st = kp_l2c_add_f32(m, &c, "output.weight", d, V))))
            return st;
    }
    kp_log(&m->log, KP_LOG_INFO, "KuiperLLama %s file, family %s", quant ? "int8 (version 3)" : "fp32 (version 0)",
           fam->name);
    return KP_OK;
}

kp_status kp_kuiper_family_beside(const kp_allocator *a, const char *bin_path, const char **family)
{
    *family = NULL;
    char path[4096];
    const char *slash = strrchr(bin_path, '/');
    int dl = slash ? (int)(slash - bin_path) : 1;
    int n = snprintf(path, sizeof path, "%.*s/config.json", dl, slash ? bin_path : ".");
    if (n < 0 || (size_t)n >= sizeof path)
        return KP_ERR_NOT_FOUND;
    kp_mapped_file f;
    if (kp_file_map(path, &f)) {
        kp_clear_error();
        return KP_ERR_NOT_FOUND;
    }
    kp_json_doc *doc = NULL;
    kp_status st = kp_json_parse(a, (const char *)f.data, f.size, "config.json", &doc);
    if (!st) {
        const kp_json *root = kp_json_root(doc), *archs = kp_json_get_type(root, "architectures", KP_JSON_ARRAY);
        const kp_json *arch = archs && archs->len ? &archs->u.kids[0] : NULL, *theta = kp_json_get(root, "rope_theta");
        if (kp_json_str_eq(arch, "Qwen2ForCausalLM"))
            *family = "qwen2";
        else if (kp_json_str_eq(arch, "LlamaForCausalLM") && theta && theta->type == KP_JSON_NUMBER &&
                 theta->u.num == 500000.0)
            *family = "llama3";
        else
            st = kp_fail(KP_ERR_INVALID_ARG, "the config.json beside this KuiperLLama file does not tell its family: "
                                             "give one (llama2, llama3 or qwen2)");
    }
    kp_json_free(doc);
    kp_file_unmap(&f);
    return st;
}
