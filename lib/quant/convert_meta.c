/* The metadata llama.cpp expects of a GGUF model: the architecture's hyperparameters under
 * "<arch>.", the vocabulary under "tokenizer.ggml.", and the chat template. */
#include <stdio.h>
#include <string.h>

#include "../tokenizer/tokenizer.h"
#include "convert.h"

static kp_status arch_u32(kp_gguf_writer *w, const char *arch, const char *suffix, int64_t v)
{
    char key[96];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return kp_gguf_w_u32(w, key, (uint32_t)v);
}

static kp_status arch_f32(kp_gguf_writer *w, const char *arch, const char *suffix, float v)
{
    char key[96];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return kp_gguf_w_f32(w, key, v);
}

static kp_status write_hparams(kp_gguf_writer *w, const kp_model_config *c)
{
    const char *a = c->arch;
    arch_u32(w, a, "vocab_size", c->n_vocab);
    arch_u32(w, a, "context_length", c->n_ctx);
    arch_u32(w, a, "embedding_length", c->n_embd);
    arch_u32(w, a, "block_count", c->n_layer);
    arch_u32(w, a, "feed_forward_length", c->n_ff);
    arch_u32(w, a, "attention.head_count", c->n_head);
    arch_u32(w, a, "attention.head_count_kv", c->n_head_kv);
    arch_u32(w, a, "attention.key_length", c->head_dim);
    arch_u32(w, a, "attention.value_length", c->head_dim);
    arch_f32(w, a, "attention.layer_norm_rms_epsilon", c->rms_eps);
    arch_f32(w, a, "rope.freq_base", c->rope_theta);
    return arch_u32(w, a, "rope.dimension_count", c->head_dim);
}

static void opt_id(kp_gguf_writer *w, const char *key, int32_t id)
{
    if (id >= 0)
        kp_gguf_w_u32(w, key, (uint32_t)id);
}

static kp_status write_vocab(kp_gguf_writer *w, const kp_model *m)
{
    const kp_tokenizer *t = m->tok;
    kp_vocab_export v;
    kp_status st = kp_tokenizer_vocab_export(t, m->alloc, &v);
    if (st) {
        kp_vocab_export_free(&v);
        return st;
    }
    kp_gguf_w_cstr(w, "tokenizer.ggml.model", v.model);
    kp_gguf_w_cstr(w, "tokenizer.ggml.pre", v.pre ? v.pre : "default");
    kp_gguf_w_arr_str(w, "tokenizer.ggml.tokens", (uint64_t)v.n, v.tokens, v.token_lens);
    if (v.scores)
        kp_gguf_w_arr(w, "tokenizer.ggml.scores", KP_GGUF_F32, (uint64_t)v.n, v.scores);
    kp_gguf_w_arr(w, "tokenizer.ggml.token_type", KP_GGUF_I32, (uint64_t)v.n, v.types);
    if (v.n_merges)
        kp_gguf_w_arr_str(w, "tokenizer.ggml.merges", (uint64_t)v.n_merges, v.merges, v.merge_lens);
    opt_id(w, "tokenizer.ggml.bos_token_id", t->bos);
    opt_id(w, "tokenizer.ggml.eos_token_id", t->eos);
    if (t->eot != t->eos)
        opt_id(w, "tokenizer.ggml.eot_token_id", t->eot);
    opt_id(w, "tokenizer.ggml.unknown_token_id", t->unk);
    opt_id(w, "tokenizer.ggml.padding_token_id", t->pad);
    kp_gguf_w_bool(w, "tokenizer.ggml.add_bos_token", v.add_bos);
    kp_gguf_w_bool(w, "tokenizer.ggml.add_eos_token", v.add_eos);
    if (!strcmp(v.model, "llama"))
        kp_gguf_w_bool(w, "tokenizer.ggml.add_space_prefix", v.add_space_prefix);
    kp_vocab_export_free(&v);
    /* the model's template first: that is the one kp_chat_format uses */
    const char *tmpl = t->chat_template;
    if (tmpl)
        kp_gguf_w_str(w, "tokenizer.chat_template", tmpl, strlen(tmpl));
    return w->err;
}

kp_status kp_convert_write_meta(kp_gguf_writer *w, const kp_model *m, const kp_quant_mix *mx, kp_dtype main_type,
                                const char *name)
{
    kp_gguf_w_cstr(w, "general.architecture", m->cfg.arch);
    kp_gguf_w_cstr(w, "general.name", name);
    kp_gguf_w_u32(w, "general.file_type", mx->base == KP_DTYPE_COUNT ? kp_quant_file_type_of(main_type) : mx->file_type);
    if (kp_dtype_block_elems(main_type) > 1)
        kp_gguf_w_u32(w, "general.quantization_version", 2);
    kp_status st = write_hparams(w, &m->cfg);
    if (st)
        return st;
    if (!m->tok)
        return kp_fail(KP_ERR_INVALID_ARG, "the model has no tokenizer to write");
    return write_vocab(w, m);
}
