/* kp_model: load a file (format detected from its first bytes), bind weights, attach the
 * tokenizer and a backend. */
#include <stdio.h>
#include <string.h>

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

static kp_status attach_tokenizer(kp_model *m, const char *path)
{
    if (!path) {
        if (m->tok)
            return KP_OK;
        return kp_fail(KP_ERR_INVALID_ARG,
                       "this model file stores no tokenizer: pass tokenizer_path (e.g. tokenizer.bin)");
    }
    kp_tokenizer_params tp;
    kp_tokenizer_params_init(&tp);
    tp.allocator = m->alloc;
    tp.n_vocab = m->cfg.n_vocab;
    kp_tokenizer *t = NULL;
    kp_status st = kp_tokenizer_load(path, &tp, &t);
    if (st)
        return st;
    if (t->n_vocab != m->cfg.n_vocab) {
        int32_t tn = t->n_vocab;
        kp_tokenizer_free(t);
        return kp_fail(KP_ERR_TOKENIZER_MISMATCH, "tokenizer '%s' has %d tokens, the model %d", path, tn,
                       m->cfg.n_vocab);
    }
    kp_tokenizer_free(m->tok);
    m->tok = t;
    return KP_OK;
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

    kp_status st = kp_file_map(path, &m->file);
    if (st)
        goto fail;
    if (dp.device == KP_DEVICE_CUDA)
        st = kp_backend_cuda_new(m->alloc, &m->be);
    else if (dp.device == KP_DEVICE_CPU)
        st = kp_backend_cpu_new(m->alloc, dp.n_threads, &m->be);
    else
        st = kp_fail(KP_ERR_INVALID_ARG, "unknown device %d", (int)dp.device);
    if (st)
        goto fail;
    st = is_gguf(&m->file) ? kp_gguf_read_model(m) : kp_llama2c_read(m);
    if (st) {
        /* Prefix the path so the message says which file is at fault. */
        char msg[400];
        snprintf(msg, sizeof msg, "%s", kp_error_text());
        kp_fail(st, "%s: %s", path, msg);
        goto fail;
    }
    if ((st = kp_model_bind(m)) || (st = attach_tokenizer(m, dp.tokenizer_path)))
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
    kp_dealloc(m->alloc, m->chat_template, m->chat_template_size);
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
