/* kp_model: load a file or a Hugging Face folder (format detected from the path and the first
 * bytes), bind weights, attach the tokenizer and a backend. */
#include <stdio.h>
#include <string.h>

#include <sys/stat.h>

#include "format/llama2c.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

void kp_model_params_init(kp_model_params *p)
{
    if (!p)
        return;
    memset(p, 0, sizeof *p);
    p->struct_size = sizeof *p;
    p->log_level = KP_LOG_WARN;
    p->device = KP_DEVICE_CPU;
}

static int is_gguf(const kp_mapped_file *f)
{
    return f->size >= 4 && memcmp(f->data, "GGUF", 4) == 0;
}

/* llama2.c v1/v2 start with "ak42"; legacy v0 (and KuiperLLama) with a bare header that must
 * at least be self-consistent. */
static int is_llama2c(const kp_mapped_file *f)
{
    if (f->size >= 8 && memcmp(f->data, "24ka", 4) == 0)
        return 1;
    if (f->size < 28)
        return 0;
    l2c_hparams h;
    memcpy(&h, f->data, 28);
    int ok = kp_l2c_check_hparams(&h, 0) == KP_OK;
    kp_clear_error();
    return ok;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* A Hugging Face folder, or a file inside one (its config.json or a safetensors file): the
 * folder's path into `dir`. */
static int hf_folder(const char *path, char *dir, size_t cap)
{
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return snprintf(dir, cap, "%s", path) < (int)cap;
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    if (!ends_with(path, ".safetensors") && strcmp(base, "config.json") != 0)
        return 0;
    int dl = slash ? (int)(slash - path) : 1;
    return snprintf(dir, cap, "%.*s", dl, slash ? path : ".") < (int)cap;
}

/* The tokenizer named by `path` replaces the model's own; then it must fit the model: the same
 * number of ids, or fewer (padding ids past the vocabulary, as Qwen's embedding has). */
static kp_status attach_tokenizer(kp_model *m, const char *path)
{
    if (path) {
        kp_tokenizer_params tp;
        kp_tokenizer_params_init(&tp);
        tp.allocator = m->alloc;
        tp.n_vocab = m->cfg.n_vocab;
        kp_tokenizer *t = NULL;
        kp_status st = kp_tokenizer_load(path, &tp, &t);
        if (st)
            return st;
        kp_tokenizer_free(m->tok);
        m->tok = t;
    }
    if (!m->tok)
        return kp_fail(KP_ERR_INVALID_ARG,
                       "this model file stores no tokenizer: pass tokenizer_path (e.g. tokenizer.bin)");
    if (m->tok->n_vocab > m->cfg.n_vocab || kp_tokenizer_pad(m->tok, m->cfg.n_vocab))
        return kp_fail(KP_ERR_TOKENIZER_MISMATCH, "tokenizer '%s' has %d tokens, the model %d",
                       path ? path : "(the model's)", m->tok->n_vocab, m->cfg.n_vocab);
    return KP_OK;
}

/* Picks the reader for `path`: a folder (or a file in one) is Hugging Face, else the file's
 * first bytes decide; KuiperLLama files look like llama2.c ones and need a family. */
static kp_status read_model(kp_model *m, const char *path, const kp_model_params *p)
{
    char dir[4096];
    if (hf_folder(path, dir, sizeof dir))
        return kp_hf_read_model(m, dir, p->tokenizer_path == NULL);
    kp_status st = kp_file_map(path, &m->file);
    if (st)
        return st;
    if (is_gguf(&m->file))
        return kp_gguf_read_model(m);
    const char *family = p->family;
    if (!family && (st = kp_kuiper_family_beside(m->alloc, path, &family)) != KP_ERR_NOT_FOUND)
        if (st)
            return st;
    if (family)
        return kp_kuiper_read(m, family);
    if (is_llama2c(&m->file))
        return kp_llama2c_read(m);
    return kp_format_not_a_model(&m->file);
}

kp_status kp_model_load(const char *path, const kp_model_params *p, kp_model **out)
{
    kp_clear_error();
    if (!out)
        return kp_fail(KP_ERR_INVALID_ARG, "kp_model_load: out is NULL");
    *out = NULL;
    if (!path)
        return kp_fail(KP_ERR_INVALID_ARG, "kp_model_load: path is NULL");
    kp_model_params dp;
    kp_model_params_init(&dp);
    if (p) {
        if (p->struct_size < sizeof(size_t) || p->struct_size > sizeof dp)
            return kp_fail(KP_ERR_INVALID_ARG, "kp_model_params.struct_size %zu is not one this library knows",
                           p->struct_size);
        memcpy(&dp, p, p->struct_size);
    }
    if (dp.n_threads < 0 || dp.n_threads > 1024)
        return kp_fail(KP_ERR_INVALID_ARG, "n_threads %d is outside [0, 1024]", dp.n_threads);
    const kp_allocator *a = kp_allocator_or_default(dp.allocator);
    kp_model *m = a->alloc(a->user, sizeof *m, 64);
    if (!m)
        return kp_fail(KP_ERR_OUT_OF_MEMORY, "out of memory allocating the model");
    memset(m, 0, sizeof *m);
    m->alloc_copy = *a;
    m->alloc = &m->alloc_copy;
    m->log = (kp_logger){dp.log, dp.log_user, dp.log_level};
    kp_tensor_list_init(&m->tensors, m->alloc);

    kp_status st;
    if (dp.device == KP_DEVICE_CUDA)
        st = kp_backend_cuda_new(m->alloc, &m->be);
    else if (dp.device == KP_DEVICE_CPU)
        st = kp_backend_cpu_new(m->alloc, dp.n_threads, &m->be);
    else
        st = kp_fail(KP_ERR_INVALID_ARG, "unknown device %d", (int)dp.device);
    if (st)
        goto fail;
    if ((st = read_model(m, path, &dp))) {
        /* Prefix the path so the message says which file is at fault, once. */
        char msg[400];
        snprintf(msg, sizeof msg, "%s", kp_error_text());
        if (!strstr(msg, path))
            kp_fail(st, "%s: %s", path, msg);
        goto fail;
    }
    if ((st = kp_model_bind(m)) || (st = kp_model_place(m)) || (st = attach_tokenizer(m, dp.tokenizer_path)))
        goto fail;
    kp_log(&m->log, KP_LOG_INFO, "loaded %s: %s, %d layers, %d embd, %d vocab, %lld params", path, m->cfg.arch,
           m->cfg.n_layer, m->cfg.n_embd, m->cfg.n_vocab, (long long)m->n_params);
    *out = m;
    return KP_OK;
fail:
    if (st == KP_ERR_OUT_OF_MEMORY && !kp_error_text()[0])
        kp_fail(st, "out of memory loading '%s'", path);
    kp_model_free(m);
    return st;
}

void kp_model_free(kp_model *m)
{
    if (!m)
        return;
    kp_tokenizer_free(m->tok);
    kp_dealloc(m->alloc, m->layers, (size_t)(m->cfg.n_layer > 0 ? m->cfg.n_layer : 0) * sizeof *m->layers);
    for (size_t i = 0; i < m->n_shards; i++)
        kp_file_unmap(&m->shards[i]);
    kp_dealloc(m->alloc, m->shards, m->n_shards * sizeof *m->shards);
    kp_model_unplace(m);
    kp_tensor_list_free(&m->tensors);
    if (m->be)
        m->be->ops->destroy(m->be);
    kp_file_unmap(&m->file);
    kp_allocator a = m->alloc_copy;
    a.free(a.user, m, sizeof *m);
}

const kp_tokenizer *kp_model_tokenizer_borrow(const kp_model *m) { return m ? m->tok : NULL; }

const char *kp_model_arch_borrow(const kp_model *m) { return m ? m->cfg.arch : ""; }

int64_t kp_model_info_get(const kp_model *m, kp_model_info key)
{
    if (!m)
        return -1;
    const kp_model_config *c = &m->cfg;
    switch (key) {
    case KP_INFO_N_VOCAB: return c->n_vocab;
    case KP_INFO_N_CTX: return c->n_ctx;
    case KP_INFO_N_EMBD: return c->n_embd;
    case KP_INFO_N_LAYER: return c->n_layer;
    case KP_INFO_N_HEAD: return c->n_head;
    case KP_INFO_N_HEAD_KV: return c->n_head_kv;
    case KP_INFO_N_PARAMS: return m->n_params;
    case KP_INFO_N_BYTES: return (int64_t)m->n_bytes;
    }
    return -1;
}

const kp_tensor *kp_model_tensor_borrow(const kp_model *m, const char *name)
{
    return (m && name) ? kp_tensor_list_find(&m->tensors, name) : NULL;
}
