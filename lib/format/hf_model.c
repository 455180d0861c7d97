/* Hugging Face model folders: config.json gives the architecture, safetensors files (one, or
 * shards listed by model.safetensors.index.json) the weights, tokenizer.json and
 * tokenizer_config.json the vocabulary and chat template, generation_config.json the end ids.
 * Matrices stay in the mapped files and are multiplied with float activations (f32_acts), as
 * transformers does; only 1-D F16/BF16 tensors (norms, biases) become F32 copies. Hugging Face
 * stores q/k rows in rotate-half order, so the rope style is NEOX and nothing is permuted. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../json.h"
#include "../model/model.h"
#include "../tokenizer/tokenizer.h"
#include "safetensors.h"

#define MAX_SHARDS 4096

typedef struct hf_json {
    kp_mapped_file f; /* strings of the tree point into it */
    kp_json_doc *doc;
} hf_json;

typedef struct hf_ctx {
    kp_model *m;
    const char *dir;
    const char *dtype; /* config.json torch_dtype / dtype as a safetensors name, or NULL */
} hf_ctx;

static kp_status join(char *buf, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap)
        return kp_fail(KP_ERR_INVALID_ARG, "path '%s/%s' is too long", dir, name);
    return KP_OK;
}

static int is_file(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int has_file(const char *dir, const char *name)
{
    char path[4096];
    return !join(path, sizeof path, dir, name) && is_file(path);
}

static void json_close(hf_json *j)
{
    kp_json_free(j->doc);
    kp_file_unmap(&j->f);
}

/* Maps and parses dir/name. */
static kp_status json_open(const kp_allocator *a, const char *dir, const char *name, hf_json *out)
{
    char path[4096];
    memset(out, 0, sizeof *out);
    kp_status st = join(path, sizeof path, dir, name);
    if (st)
        return st;
    if (!is_file(path))
        return kp_fail(KP_ERR_FORMAT, "the folder has no %s", name);
    if ((st = kp_file_map(path, &out->f)))
        return st;
    if ((st = kp_json_parse(a, (const char *)out->f.data, out->f.size, name, &out->doc)))
        kp_file_unmap(&out->f);
    else if (kp_json_root(out->doc)->type != KP_JSON_OBJECT)
        st = kp_fail(KP_ERR_FORMAT, "%s is not a JSON object", name);
    if (st)
        json_close(out);
    return st;
}

/* ---- config.json */

static kp_status cfg_int(const kp_json *cfg, const char *key, int64_t lo, int64_t hi, int64_t def, int32_t *out)
{
    const kp_json *v = kp_json_get(cfg, key);
    int64_t x = def;
    if (v && v->type != KP_JSON_NULL && !kp_json_int(v, lo, hi, &x))
        return kp_fail(KP_ERR_FORMAT, "config.json: \"%s\" is not an integer in [%lld, %lld]", key, (long long)lo,
                       (long long)hi);
    if ((!v || v->type == KP_JSON_NULL) && def < 0)
        return kp_fail(KP_ERR_FORMAT, "config.json: \"%s\" is missing", key);
    *out = (int32_t)x;
    return KP_OK;
}

static kp_status cfg_num(const kp_json *obj, const char *where, const char *key, double def, double *out)
{
    const kp_json *v = kp_json_get(obj, key);
    if (!v || v->type == KP_JSON_NULL) {
        if (isnan(def))
            return kp_fail(KP_ERR_FORMAT, "config.json: \"%s%s\" is missing", where, key);
        *out = def;
        return KP_OK;
    }
    if (v->type != KP_JSON_NUMBER || !isfinite(v->u.num))
        return kp_fail(KP_ERR_FORMAT, "config.json: \"%s%s\" is not a number", where, key);
    *out = v->u.num;
    return KP_OK;
}

static int cfg_true(const kp_json *cfg, const char *key) { return kp_json_bool(kp_json_get(cfg, key), 0) == 1; }

static kp_status read_arch(hf_ctx *c, const kp_json *cfg)
{
    kp_model_config *k = &c->m->cfg;
    const kp_json *archs = kp_json_get_type(cfg, "architectures", KP_JSON_ARRAY);
    const kp_json *a = archs && archs->len ? &archs->u.kids[0] : NULL;
    if (!a || a->type != KP_JSON_STRING)
        return kp_fail(KP_ERR_FORMAT, "config.json: no \"architectures\" list naming the model class");
    if (kp_json_str_eq(a, "LlamaForCausalLM")) {
        strcpy(k->arch, "llama");
        if (cfg_true(cfg, "attention_bias") || cfg_true(cfg, "mlp_bias"))
            return kp_fail(KP_ERR_UNSUPPORTED, "config.json: Llama with attention_bias or mlp_bias is not supported");
    } else if (kp_json_str_eq(a, "Qwen2ForCausalLM")) {
        strcpy(k->arch, "qwen2");
        k->qkv_bias = 1;
        if (cfg_true(cfg, "use_sliding_window"))
            return kp_fail(KP_ERR_UNSUPPORTED, "config.json: Qwen2 with use_sliding_window is not supported");
    } else if (kp_json_str_eq(a, "Qwen3ForCausalLM")) {
        strcpy(k->arch, "qwen3");
        k->qk_norm = 1;
        if (cfg_true(cfg, "attention_bias") || cfg_true(cfg, "use_sliding_window"))
            return kp_fail(KP_ERR_UNSUPPORTED,
                           "config.json: Qwen3 with attention_bias or use_sliding_window is not supported");
    } else {
        return kp_fail(KP_ERR_UNSUPPORTED,
                       "config.json: architecture '%.64s' is not supported (LlamaForCausalLM, Qwen2ForCausalLM and "
                       "Qwen3ForCausalLM are)",
                       a->u.str);
    }
    const kp_json *act = kp_json_get(cfg, "hidden_act");
    if (act && !kp_json_str_eq(act, "silu"))
        return kp_fail(KP_ERR_UNSUPPORTED, "config.json: hidden_act '%.32s' is not supported (silu is)",
                       act->type == KP_JSON_STRING ? act->u.str : "?");
    return KP_OK;
}

/* Llama 3.x "llama3" rope scaling as per-frequency divisors (llama.cpp's rope_freqs tensor):
 * long wavelengths are slowed by `factor`, short ones kept, the band between blended. */
static kp_status llama3_factors(hf_ctx *c, const kp_json *sc)
{
    const kp_model_config *k = &c->m->cfg;
    double factor = 0, lo = 0, hi = 0, orig = 0;
    kp_status st;
    if ((st = cfg_num(sc, "rope_scaling.", "factor", NAN, &factor)) ||
        (st = cfg_num(sc, "rope_scaling.", "low_freq_factor", 1.0, &lo)) ||
        (st = cfg_num(sc, "rope_scaling.", "high_freq_factor", 4.0, &hi)) ||
        (st = cfg_num(sc, "rope_scaling.", "original_max_position_embeddings", 8192.0, &orig)))
        return st;
    if (!(factor > 0) || !(lo > 0) || !(hi > lo) || !(orig > 0))
        return kp_fail(KP_ERR_FORMAT, "config.json: llama3 rope_scaling needs factor > 0 and high_freq_factor > "
                                      "low_freq_factor > 0");
    const int n = k->head_dim / 2;
    float *ff = kp_alloc(c->m->alloc, (size_t)n * sizeof *ff);
    if (!ff)
        return KP_ERR_OUT_OF_MEMORY;
    const double lo_wave = orig / lo, hi_wave = orig / hi;
    for (int i = 0; i < n; i++) {
        double inv = pow((double)k->rope_theta, -2.0 * i / k->head_dim), wave = 2.0 * M_PI / inv, scaled = inv;
        if (wave > lo_wave) {
            scaled = inv / factor;
        } else if (wave >= hi_wave) {
            double s = (orig / wave - lo) / (hi - lo);
            scaled = (1.0 - s) * inv / factor + s * inv;
        }
        ff[i] = (float)(inv / scaled);
    }
    int64_t ne[1] = {n};
    kp_tensor t;
    kp_tensor_init(&t, "rope_freqs.weight", KP_DTYPE_F32, 1, ne, ff);
    t.owned = 1;
    return kp_tensor_list_add(&c->m->tensors, &t) ? KP_OK : KP_ERR_OUT_OF_MEMORY;
}

static kp_status read_rope(hf_ctx *c, const kp_json *cfg)
{
    kp_model_config *k = &c->m->cfg;
    /* transformers 4 writes rope_theta and rope_scaling; 5 nests both in rope_parameters */
    const kp_json *params = kp_json_get_type(cfg, "rope_parameters", KP_JSON_OBJECT);
    double theta = 0;
    kp_status st = cfg_num(cfg, "", "rope_theta", NAN, &theta);
    if (st && params) {
        kp_clear_error();
        st = cfg_num(params, "rope_parameters.", "rope_theta", 10000.0, &theta);
    } else if (st) {
        kp_clear_error();
        theta = 10000.0;
        st = KP_OK;
    }
    if (st)
        return st;
    if (!(theta > 0) || theta > 1e12)
        return kp_fail(KP_ERR_FORMAT, "config.json: rope_theta %g is out of range", theta);
    k->rope_theta = (float)theta;
    const kp_json *sc = kp_json_get_type(cfg, "rope_scaling", KP_JSON_OBJECT);
    if (!sc)
        sc = params;
    const kp_json *type = sc ? kp_json_get(sc, "rope_type") : NULL;
    if (!type || type->type != KP_JSON_STRING)
        type = sc ? kp_json_get(sc, "type") : NULL;
    if (!type || type->type == KP_JSON_NULL || kp_json_str_eq(type, "default"))
        return KP_OK;
    if (kp_json_str_eq(type, "llama3"))
        return llama3_factors(c, sc);
    double factor = 1.0;
    if (kp_json_str_eq(type, "linear") && !cfg_num(sc, "rope_scaling.", "factor", 1.0, &factor) && factor == 1.0)
        return KP_OK;
    return kp_fail(KP_ERR_UNSUPPORTED, "config.json: rope scaling '%.32s' is not supported (llama3 is)",
                   type->type == KP_JSON_STRING ? type->u.str : "?");
}

static kp_status read_config(hf_ctx *c, const kp_json *cfg)
{
    kp_model_config *k = &c->m->cfg;
    memset(k, 0, sizeof *k);
    kp_status st = read_arch(c, cfg);
    if (st)
        return st;
    const int64_t BIG = 1 << 24;
    if ((st = cfg_int(cfg, "hidden_size", 1, 1 << 20, -1, &k->n_embd)) ||
        (st = cfg_int(cfg, "num_hidden_layers", 1, 4096, -1, &k->n_layer)) ||
        (st = cfg_int(cfg, "intermediate_size", 1, BIG, -1, &k->n_ff)) ||
        (st = cfg_int(cfg, "num_attention_heads", 1, 1 << 14, -1, &k->n_head)) ||
        (st = cfg_int(cfg, "num_key_value_heads", 1, k->n_head, k->n_head, &k->n_head_kv)) ||
        (st = cfg_int(cfg, "vocab_size", 1, BIG, -1, &k->n_vocab)) ||
        (st = cfg_int(cfg, "max_position_embeddings", 1, INT32_MAX, 2048, &k->n_ctx)))
        return st;
    if (k->n_embd % k->n_head && !kp_json_get(cfg, "head_dim"))
        return kp_fail(KP_ERR_FORMAT, "config.json: hidden_size %d is not a multiple of %d heads and no head_dim is "
                                      "given", k->n_embd, k->n_head);
    if ((st = cfg_int(cfg, "head_dim", 2, 1 << 16, k->n_embd / k->n_head, &k->head_dim)))
        return st;
    double eps = 0, rot = 0;
    if ((st = cfg_num(cfg, "", "rms_norm_eps", 1e-6, &eps)) || (st = cfg_num(cfg, "", "partial_rotary_factor", 1.0, &rot)))
        return st;
    if (!(eps > 0) || eps > 1)
        return kp_fail(KP_ERR_FORMAT, "config.json: rms_norm_eps %g is out of range", eps);
    if (rot != 1.0)
        return kp_fail(KP_ERR_UNSUPPORTED, "config.json: partial_rotary_factor %g is not supported", rot);
    k->rms_eps = (float)eps;
    k->rope_style = KP_ROPE_NEOX;
    if (k->head_dim % 2)
        return kp_fail(KP_ERR_FORMAT, "config.json: head_dim %d is odd", k->head_dim);
    const kp_json *dt = kp_json_get_type(cfg, "torch_dtype", KP_JSON_STRING);
    if (!dt)
        dt = kp_json_get_type(cfg, "dtype", KP_JSON_STRING);
    c->dtype = kp_json_str_eq(dt, "float32") ? "F32" : kp_json_str_eq(dt, "float16") ? "F16"
             : kp_json_str_eq(dt, "bfloat16") ? "BF16" : NULL;
    return read_rope(c, cfg);
}

/* ---- tensors */

/* Hugging Face name -> canonical name; 0 if the name is not one a decoder layer or the model
 * ends have. *layer gets the layer index (-1 for the ends). */
static int canonical(const char *hf, char *out, size_t cap, long *layer)
{
    static const char *const ends[][2] = {
        {"model.embed_tokens.weight", "token_embd.weight"},
        {"model.norm.weight", "output_norm.weight"},
        {"lm_head.weight", "output.weight"},
    };
    static const char *const parts[][2] = {
        {"input_layernorm.weight", "attn_norm.weight"},
        {"self_attn.q_proj.weight", "attn_q.weight"},
        {"self_attn.k_proj.weight", "attn_k.weight"},
        {"self_attn.v_proj.weight", "attn_v.weight"},
        {"self_attn.q_proj.bias", "attn_q.bias"},
        {"self_attn.k_proj.bias", "attn_k.bias"},
        {"self_attn.v_proj.bias", "attn_v.bias"},
        {"self_attn.o_proj.weight", "attn_output.weight"},
        {"self_attn.q_norm.weight", "attn_q_norm.weight"},
        {"self_attn.k_norm.weight", "attn_k_norm.weight"},
        {"post_attention_layernorm.weight", "ffn_norm.weight"},
        {"mlp.gate_proj.weight", "ffn_gate.weight"},
        {"mlp.up_proj.weight", "ffn_up.weight"},
        {"mlp.down_proj.weight", "ffn_down.weight"},
    };
    *layer = -1;
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++)
        if (!strcmp(hf, ends[i][0]))
            return snprintf(out, cap, "%s", ends[i][1]) > 0;
    const char *pre = "model.layers.";
    if (strncmp(hf, pre, strlen(pre)))
        return 0;
    const char *p = hf + strlen(pre);
    long l = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 6)
        l = l * 10 + (*p++ - '0'), digits++;
    if (!digits || *p++ != '.')
        return 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        if (!strcmp(p, parts[i][0])) {
            *layer = l;
            return snprintf(out, cap, "blk.%ld.%s", l, parts[i][1]) > 0;
        }
    return 0;
}

/* A copy of `t`'s data as F32 (1-D tensors, or any tensor whose data is misaligned). */
static void *widen_copy(const kp_allocator *a, const kp_st_tensor *t, size_t count)
{
    float *dst = kp_alloc(a, count * sizeof *dst);
    if (!dst)
        return NULL;
    const uint8_t *src = t->data;
    for (size_t i = 0; i < count; i++) {
        uint16_t h;
        if (t->dtype == KP_DTYPE_F32) {
            memcpy(&dst[i], src + 4 * i, 4);
            continue;
        }
        memcpy(&h, src + 2 * i, 2);
        dst[i] = t->dtype == KP_DTYPE_F16 ? kp_f16_to_f32(h) : kp_bf16_to_f32(h);
    }
    return dst;
}

static kp_status add_tensor(hf_ctx *c, const kp_st_tensor *t, const char *file)
{
    kp_model *m = c->m;
    char name[96];
    long layer;
    if (!canonical(t->name, name, sizeof name, &layer)) {
        const char *dot = strrchr(t->name, '.');
        if (dot && !strcmp(dot, ".inv_freq")) /* a rope buffer older transformers saved; recomputed */
            return KP_OK;
        return kp_fail(KP_ERR_UNSUPPORTED, "%s: tensor '%.96s' is not part of a %s model libkuiper knows", file,
                       t->name, m->cfg.arch);
    }
    if (layer >= m->cfg.n_layer)
        return kp_fail(KP_ERR_FORMAT, "%s: tensor '%.96s' is for layer %ld, but config.json has %d layers", file,
                       t->name, layer, m->cfg.n_layer);
    if (t->dtype == KP_DTYPE_COUNT)
        return kp_fail(KP_ERR_UNSUPPORTED, "%s: tensor '%.96s' has dtype %s (F32, F16 and BF16 are supported)", file,
                       t->name, t->dtype_name);
    if (t->ndim < 1 || t->ndim > 2)
        return kp_fail(KP_ERR_FORMAT, "%s: tensor '%.96s' has %d dimensions", file, t->name, t->ndim);
    if (t->ndim == 2 && c->dtype && strcmp(c->dtype, t->dtype_name))
        return kp_fail(KP_ERR_FORMAT, "%s: tensor '%.96s' is %s, but config.json says the weights are %s", file,
                       t->name, t->dtype_name, c->dtype);
    int64_t ne[2] = {t->shape[t->ndim - 1], t->ndim == 2 ? t->shape[0] : 1};
    size_t count = (size_t)ne[0] * (size_t)ne[1], esize = t->dtype == KP_DTYPE_F32 ? 4 : 2;
    kp_tensor kt;
    kp_tensor_init(&kt, name, t->dtype, t->ndim, ne, (void *)t->data);
    kt.f32_acts = 1;
    /* Norms and biases feed F32 ops directly; misaligned data cannot be read in place. */
    if (t->ndim == 1 || (uintptr_t)t->data % esize) {
        void *d = widen_copy(m->alloc, t, count);
        if (!d)
            return KP_ERR_OUT_OF_MEMORY;
        kp_tensor_init(&kt, name, KP_DTYPE_F32, t->ndim, ne, d);
        kt.owned = 1;
    }
    if (kp_tensor_list_find(&m->tensors, name)) {
        if (kt.owned)
            kp_dealloc(m->alloc, kt.data, kt.nbytes);
        return kp_fail(KP_ERR_FORMAT, "%s: tensor '%.96s' appears twice in the folder", file, t->name);
    }
    return kp_tensor_list_add(&m->tensors, &kt) ? KP_OK : KP_ERR_OUT_OF_MEMORY;
}

/* Maps shard `file` into m->shards[i] and adds its tensors. `index` (may be NULL) is the weight
 * map: every tensor it places in this file must be there. */
static kp_status load_shard(hf_ctx *c, size_t i, const char *file, const kp_json *index)
{
    kp_model *m = c->m;
    char path[4096];
    kp_status st = join(path, sizeof path, c->dir, file);
    if (st)
        return st;
    if (!is_file(path))
        return kp_fail(KP_ERR_FORMAT, "shard '%s' listed in model.safetensors.index.json is missing", file);
    if ((st = kp_file_map(path, &m->shards[i])))
        return st;
    kp_safetensors *s = NULL;
    if ((st = kp_safetensors_open(m->alloc, m->shards[i].data, m->shards[i].size, file, &s)))
        return st;
    for (uint32_t k = 0; index && k < index->len && !st; k++) {
        const kp_json *e = &index->u.kids[k];
        if (!kp_json_str_eq(e, file))
            continue;
        char nm[256];
        if (e->key_len >= sizeof nm || memchr(e->key, 0, e->key_len)) {
            st = kp_fail(KP_ERR_FORMAT, "model.safetensors.index.json: a tensor name is too long");
            break;
        }
        memcpy(nm, e->key, e->key_len);
        nm[e->key_len] = 0;
        if (!kp_safetensors_find(s, nm))
            st = kp_fail(KP_ERR_FORMAT, "model.safetensors.index.json places tensor '%s' in '%s', which does not hold it",
                         nm, file);
    }
    for (size_t k = 0; k < s->n && !st; k++)
        st = add_tensor(c, &s->tensors[k], file);
    kp_safetensors_free(s);
    return st;
}

/* A shard name from the index: a plain file name inside the folder. */
static int safe_name(const kp_json *v)
{
    return v->type == KP_JSON_STRING && v->len > 0 && v->len < 200 && v->u.str[0] != '.' &&
           !memchr(v->u.str, '/', v->len) && !memchr(v->u.str, 0, v->len);
}

static kp_status load_weights(hf_ctx *c)
{
    kp_model *m = c->m;
    if (!has_file(c->dir, "model.safetensors.index.json")) {
        if (!has_file(c->dir, "model.safetensors"))
            return kp_fail(KP_ERR_FORMAT,
                           "the folder has neither model.safetensors nor model.safetensors.index.json%s",
                           has_file(c->dir, "pytorch_model.bin") ? " (PyTorch .bin weights are not read: convert "
                                                                   "them to safetensors)" : "");
        if (!(m->shards = kp_calloc(m->alloc, 1, sizeof *m->shards)))
            return KP_ERR_OUT_OF_MEMORY;
        m->n_shards = 1;
        return load_shard(c, 0, "model.safetensors", NULL);
    }
    hf_json idx;
    kp_status st = json_open(m->alloc, c->dir, "model.safetensors.index.json", &idx);
    if (st)
        return st;
    const kp_json *map = kp_json_get_type(kp_json_root(idx.doc), "weight_map", KP_JSON_OBJECT);
    if (!map || map->len == 0) {
        json_close(&idx);
        return kp_fail(KP_ERR_FORMAT, "model.safetensors.index.json has no \"weight_map\"");
    }
    /* the distinct shard names, in first-seen order */
    const kp_json **files = kp_alloc(m->alloc, map->len * sizeof *files);
    size_t nf = 0;
    if (!files) {
        json_close(&idx);
        return KP_ERR_OUT_OF_MEMORY;
    }
    for (uint32_t k = 0; k < map->len && !st; k++) {
        const kp_json *v = &map->u.kids[k];
        if (!safe_name(v)) {
            st = kp_fail(KP_ERR_FORMAT, "model.safetensors.index.json: tensor '%.*s' maps to a bad file name",
                         (int)(v->key_len > 96 ? 96 : v->key_len), v->key);
            break;
        }
        size_t j = 0;
        while (j < nf && !(files[j]->len == v->len && !memcmp(files[j]->u.str, v->u.str, v->len)))
            j++;
        if (j == nf)
            files[nf++] = v;
    }
    if (!st && nf > MAX_SHARDS)
        st = kp_fail(KP_ERR_UNSUPPORTED, "model.safetensors.index.json lists %zu shards (at most %d)", nf, MAX_SHARDS);
    if (!st && !(m->shards = kp_calloc(m->alloc, nf, sizeof *m->shards)))
        st = KP_ERR_OUT_OF_MEMORY;
    else if (!st)
        m->n_shards = nf; /* unmapped entries stay empty, which kp_file_unmap accepts */
    for (size_t j = 0; j < nf && !st; j++) {
        char file[256];
        memcpy(file, files[j]->u.str, files[j]->len);
        file[files[j]->len] = 0;
        st = load_shard(c, j, file, map);
    }
    kp_dealloc(m->alloc, files, map->len * sizeof *files);
    json_close(&idx);
    return st;
}

/* ---- tokenizer and end ids */

static void mark_eog(kp_tokenizer *t, const kp_json *v)
{
    int64_t id;
    if (v && v->type == KP_JSON_ARRAY) {
        for (uint32_t i = 0; i < v->len; i++)
            mark_eog(t, &v->u.kids[i]);
    } else if (v && kp_json_int(v, 0, t->n_vocab - 1, &id)) {
        t->eog[id] = 1;
    }
}

static kp_status load_tokenizer(hf_ctx *c, const kp_json *cfg)
{
    kp_model *m = c->m;
    char path[4096];
    kp_status st = join(path, sizeof path, c->dir, "tokenizer.json");
    if (st)
        return st;
    if (!is_file(path))
        return kp_fail(KP_ERR_FORMAT, "the folder has no tokenizer.json%s (pass a tokenizer path)",
                       has_file(c->dir, "tokenizer.model") ? ", only a SentencePiece tokenizer.model" : "");
    kp_tokenizer_params tp;
    kp_tokenizer_params_init(&tp);
    tp.allocator = m->alloc;
    if ((st = kp_tokenizer_load(path, &tp, &m->tok)))
        return st;
    mark_eog(m->tok, kp_json_get(cfg, "eos_token_id"));
    hf_json gen;
    if (has_file(c->dir, "generation_config.json")) {
        if ((st = json_open(m->alloc, c->dir, "generation_config.json", &gen)))
            return st;
        mark_eog(m->tok, kp_json_get(kp_json_root(gen.doc), "eos_token_id"));
        json_close(&gen);
    }
    /* transformers 4.43+ may keep the template in a file of its own */
    if (!m->tok->chat_template && has_file(c->dir, "chat_template.jinja")) {
        kp_mapped_file f;
        if ((st = join(path, sizeof path, c->dir, "chat_template.jinja")) || (st = kp_file_map(path, &f)))
            return st;
        st = kp_tokenizer_set_chat_template(m->tok, (const char *)f.data, f.size);
        kp_file_unmap(&f);
    }
    return st;
}

kp_status kp_hf_read_model(kp_model *m, const char *dir, int need_tokenizer)
{
    hf_ctx c = {m, dir, NULL};
    hf_json cfg;
    kp_status st = json_open(m->alloc, dir, "config.json", &cfg);
    if (st)
        return st;
    const kp_json *root = kp_json_root(cfg.doc);
    if (!(st = read_config(&c, root)) && !(st = load_weights(&c))) {
        const kp_json *tie = kp_json_get(root, "tie_word_embeddings");
        int has_head = kp_tensor_list_find(&m->tensors, "output.weight") != NULL;
        m->cfg.tied_output = tie && tie->type != KP_JSON_NULL ? kp_json_bool(tie, 0) == 1 : !has_head;
        if (!m->cfg.tied_output && !has_head)
            st = kp_fail(KP_ERR_FORMAT, "config.json says tie_word_embeddings is false, but there is no lm_head.weight");
        else if (need_tokenizer)
            st = load_tokenizer(&c, root);
    }
    json_close(&cfg);
    return st;
}
