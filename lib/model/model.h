/* The generic decoder's model: a config (the architecture as flags) plus weights bound to
 * slots by canonical name. Format readers produce a kp_tensor_list and a config; they never
 * touch the forward pass. */
#ifndef KP_MODEL_H
#define KP_MODEL_H

#include "../internal.h"
#include "../tensor.h"
#include "../mapfile.h"
#include "../../backends/backend.h"

typedef struct kp_model_config {
    char arch[16];          /* "llama", "qwen2", "qwen3" */
    int32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx;
    float rms_eps, rope_theta;
    kp_rope_style rope_style;
    int qkv_bias;           /* q/k/v projections carry biases (qwen2) */
    int qk_norm;            /* per-head RMSNorm of q and k before rope (qwen3) */
    int tied_output;        /* the classifier is the token embedding table */
    /* llama2.c stops on BOS (and EOS); other formats use the tokenizer's end-of-generation set. */
    int stop_on_bos;
} kp_model_config;

/* Named tensors that borrow a mapped file, or own a converted copy when `owned` is set. */
typedef struct kp_tensor_list {
    kp_tensor *items;
    size_t n, cap;
    const kp_allocator *alloc;
} kp_tensor_list;

void kp_tensor_list_init(kp_tensor_list *l, const kp_allocator *a);
/* Appends a copy of `t` whose name is duplicated; returns NULL on OOM. With t->owned the list
 * takes t->data (nbytes, from the list's allocator) even when the append fails. */
kp_tensor *kp_tensor_list_add(kp_tensor_list *l, const kp_tensor *t);
kp_tensor *kp_tensor_list_find(const kp_tensor_list *l, const char *name);
void kp_tensor_list_free(kp_tensor_list *l);

typedef struct kp_layer_weights {
    const kp_tensor *attn_norm, *wq, *wk, *wv, *wo, *bq, *bk, *bv, *q_norm, *k_norm;
    const kp_tensor *ffn_norm, *w_gate, *w_up, *w_down;
} kp_layer_weights;

struct kp_model {
    const kp_allocator *alloc;
    kp_allocator alloc_copy;
    kp_logger log;
    kp_model_config cfg;
    kp_mapped_file file;    /* single-file formats */
    kp_mapped_file *shards; /* Hugging Face folders: every safetensors file, n_shards of them */
    size_t n_shards;
    kp_tensor_list tensors;
    const kp_tensor *tok_embd, *output_norm, *output, *rope_freqs;
    kp_layer_weights *layers;
    kp_tokenizer *tok;
    kp_backend *be;
    int64_t n_params;
    size_t n_bytes;
    uint64_t fingerprint;   /* identifies the weights for saved session state */
};

/* Binds tensors to slots and validates every shape against cfg; the message names the tensor. */
kp_status kp_model_bind(kp_model *m);
/* Places every tensor with the backend (see kp_backend_ops.place_weight); KP_ERR_OUT_OF_MEMORY
 * with the sizes when the weights exceed the backend's free memory. kp_model_unplace gives the
 * placed copies back (kp_model_free calls it). */
kp_status kp_model_place(kp_model *m);
void kp_model_unplace(kp_model *m);

/* ---- format readers: fill cfg and m->tensors from m->file (and m->tok when the file has one) */
kp_status kp_llama2c_read(kp_model *m);
kp_status kp_gguf_read_model(kp_model *m);
/* A Hugging Face folder: config.json, safetensors (sharded or not), tokenizer files. */
kp_status kp_hf_read_model(kp_model *m, const char *dir, int need_tokenizer);
/* A KuiperLLama export (fp32 or int8, told apart by size) of the named family ("llama2",
 * "llama3", "qwen2"). */
kp_status kp_kuiper_read(kp_model *m, const char *family);
/* The family named by a config.json beside a KuiperLLama file: KP_ERR_NOT_FOUND (no message)
 * without one, KP_ERR_INVALID_ARG when it does not say. */
kp_status kp_kuiper_family_beside(const kp_allocator *a, const char *bin_path, const char **family);
/* A file no reader takes: a status and a message saying what it looks like and what we read. */
kp_status kp_format_not_a_model(const kp_mapped_file *f);

#endif
