/* GGUF model reader: the architecture config from metadata, the tensors (borrowed from the
 * mapping under their canonical names) and the vocabulary. Shapes are
 * validated against the config by kp_model_bind afterwards. The chat template travels with the
 * vocabulary (gguf_vocab.c). */
#include <stdio.h>
#include <string.h>

#include "../model/model.h"
#include "../tokenizer/tokenizer.h"
#include "gguf.h"
#include "gguf_vocab.h"

/* Reads "<arch>.<suffix>" as an integer in [lo, hi]; `def` < 0 makes the key required. */
static kp_status arch_int(const kp_gguf *g, const char *arch, const char *suffix, int64_t lo, int64_t hi,
                          int64_t def, int32_t *out)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int64_t v;
    kp_status st = def < 0 ? kp_gguf_get_int(g, key, lo, hi, &v) : kp_gguf_get_int_or(g, key, lo, hi, def, &v);
    if (st == KP_ERR_NOT_FOUND) /* a model without it is malformed, not a failed lookup */
        return kp_fail(KP_ERR_FORMAT, "GGUF: required metadata key '%s' is missing", key);
    if (st)
        return st;
    *out = (int32_t)v;
    return KP_OK;
}

static kp_status arch_float(const kp_gguf *g, const char *arch, const char *suffix, double def, int required,
                            double *out)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    kp_status st = required ? kp_gguf_get_float(g, key, out) : kp_gguf_get_float_or(g, key, def, out);
    if (st == KP_ERR_NOT_FOUND)
        return kp_fail(KP_ERR_FORMAT, "GGUF: required metadata key '%s' is missing", key);
    return st;
}

/* Rope scaling written as keys: only "none" (or a linear factor of 1) leaves positions as they
 * are. Llama 3.1-style scaling arrives as the rope_freqs tensor instead, which the decoder uses. */
static kp_status check_rope_scaling(const kp_gguf *g, const char *arch)
{
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    kp_gguf_str type;
    if (!kp_gguf_find(g, key))
        return KP_OK;
    kp_status st = kp_gguf_get_str(g, key, &type);
    if (st)
        return st;
    if (kp_gguf_str_eq(type, "none"))
        return KP_OK;
    double factor = 1.0;
    if ((st = arch_float(g, arch, "rope.scaling.factor", 1.0, 0, &factor)))
        return st;
    if (kp_gguf_str_eq(type, "linear") && factor == 1.0)
        return KP_OK;
    return kp_fail(KP_ERR_UNSUPPORTED, "GGUF: rope scaling '%.*s' (factor %g) is not supported", (int)(type.n < 32 ? type.n : 32),
                   type.p, factor);
}

static kp_status read_config(kp_model *m, const kp_gguf *g)
{
    kp_model_config *c = &m->cfg;
    memset(c, 0, sizeof *c);
    kp_gguf_str arch_s;
    kp_status st = kp_gguf_get_str(g, "general.architecture", &arch_s);
    if (st == KP_ERR_NOT_FOUND)
        return kp_fail(KP_ERR_FORMAT, "GGUF: required metadata key 'general.architecture' is missing");
    if (st)
        return st;
    int is_llama = kp_gguf_str_eq(arch_s, "llama"), is_qwen2 = kp_gguf_str_eq(arch_s, "qwen2"),
        is_qwen3 = kp_gguf_str_eq(arch_s, "qwen3");
    if (!is_llama && !is_qwen2 && !is_qwen3)
        return kp_fail(KP_ERR_UNSUPPORTED, "GGUF: architecture '%.*s' is not supported (llama, qwen2 and qwen3 are)",
                       (int)(arch_s.n < 64 ? arch_s.n : 64), arch_s.p);
    const char *arch = is_llama ? "llama" : is_qwen2 ? "qwen2" : "qwen3";
    snprintf(c->arch, sizeof c->arch, "%s", arch);
    const int64_t BIG = 1 << 24; /* far above any real width, keeps products in range */
    if ((st = arch_int(g, arch, "embedding_length", 1, 1 << 20, -1, &c->n_embd)) ||
        (st = arch_int(g, arch, "block_count", 1, 4096, -1, &c->n_layer)) ||
        (st = arch_int(g, arch, "feed_forward_length", 1, BIG, -1, &c->n_ff)) ||
        (st = arch_int(g, arch, "attention.head_count", 1, 1 << 14, -1, &c->n_head)) ||
        (st = arch_int(g, arch, "context_length", 1, INT32_MAX, -1, &c->n_ctx)))
        return st;
    if ((st = arch_int(g, arch, "attention.head_count_kv", 1, c->n_head, c->n_head, &c->n_head_kv)))
        return st;
    /* head_dim is n_embd / n_head unless the file says otherwise (key_length) */
    int32_t def_hd = c->n_embd % c->n_head == 0 ? c->n_embd / c->n_head : 0, hd_v = 0;
    if ((st = arch_int(g, arch, "attention.key_length", 1, 1 << 16, def_hd ? def_hd : -1, &c->head_dim)) ||
        (st = arch_int(g, arch, "attention.value_length", 1, 1 << 16, c->head_dim, &hd_v)))
        return st;
    if (hd_v != c->head_dim)
        return kp_fail(KP_ERR_UNSUPPORTED, "GGUF: key length %d differs from value length %d", c->head_dim, hd_v);
    int32_t rope_dim = 0;
    if ((st = arch_int(g, arch, "rope.dimension_count", 1, 1 << 16, c->head_dim, &rope_dim)))
        return st;
    if (rope_dim != c->head_dim)
        return kp_fail(KP_ERR_UNSUPPORTED, "GGUF: rope over %d of %d head dimensions (partial rotary) is not supported",
                       rope_dim, c->head_dim);
    double theta, eps;
    if ((st = arch_float(g, arch, "rope.freq_base", 10000.0, 0, &theta)) ||
        (st = arch_float(g, arch, "attention.layer_norm_rms_epsilon", 0, 1, &eps)) ||
        (st = check_rope_scaling(g, arch)))
        return st;
    c->rope_theta = (float)theta;
    c->rms_eps = (float)eps;
    /* llama.cpp's LLAMA rotates adjacent pairs, QWEN2 and QWEN3 the two halves (NEOX) */
    c->rope_style = is_llama ? KP_ROPE_NORM : KP_ROPE_NEOX;
    c->qkv_bias = kp_gguf_find_tensor(g, "blk.0.attn_q.bias") != NULL;
    c->qk_norm = is_qwen3;
    c->tied_output = kp_gguf_find_tensor(g, "output.weight") == NULL;
    c->stop_on_bos = 0;
    const kp_gguf_tensor *emb = kp_gguf_find_tensor(g, "token_embd.weight");
    if (!emb)
        return kp_fail(KP_ERR_FORMAT, "GGUF: model has no tensor 'token_embd.weight'");
    if (emb->ne[1] <= 0 || emb->ne[1] > INT32_MAX)
        return kp_fail(KP_ERR_FORMAT, "GGUF: token_embd.weight has %lld rows", (long long)emb->ne[1]);
    c->n_vocab = (int32_t)emb->ne[1];
    return KP_OK;
}

static kp_status add_tensors(kp_model *m, const kp_gguf *g)
{
    for (size_t i = 0; i < g->n_tensors; i++) {
        const kp_gguf_tensor *gt = &g->tensors[i];
        if (gt->dtype == KP_DTYPE_COUNT)
            return kp_fail(KP_ERR_UNSUPPORTED, "GGUF: tensor '%.64s' has type %s, which libkuiper does not support",
                           gt->name, kp_gguf_ggml_type_name(gt->ggml_type));
        kp_tensor t;
        kp_tensor_init(&t, gt->name, gt->dtype, gt->n_dims, gt->ne, (void *)gt->data);
        t.nbytes = gt->nbytes;
        if (!kp_tensor_list_add(&m->tensors, &t))
            return KP_ERR_OUT_OF_MEMORY;
    }
    return KP_OK;
}

kp_status kp_gguf_read_model(kp_model *m)
{
    kp_gguf *g = NULL;
    kp_status st = kp_gguf_open(m->alloc, m->file.data, m->file.size, &g);
    if (st)
        return st;
    if ((st = read_config(m, g)) || (st = add_tensors(m, g)))
        goto done;
    if (kp_gguf_find(g, "tokenizer.ggml.model")) {
        if ((st = kp_gguf_vocab_tokenizer(m->alloc, g, &m->tok)))
            goto done;
        if (m->tok->n_vocab != m->cfg.n_vocab) {
            st = kp_fail(KP_ERR_TOKENIZER_MISMATCH, "GGUF: the vocabulary has %d tokens, token_embd.weight %d rows",
                         m->tok->n_vocab, m->cfg.n_vocab);
            goto done;
        }
    }
done:
    kp_gguf_free(g);
    return st;
}
