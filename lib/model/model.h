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
    char arch[16];          /* "llama", "qwen2" */
    int32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx;
    float rms_eps, rope_theta;
    kp_rope_style rope_style;
    int qkv_bias;           /* q/k/v projections carry biases (qwen2) */
    int tied_output;        /* the classifier is the token embedding table */
    /* llama2.c stops on BOS (and EOS); other formats use the tokenizer's end-of-generation set. */
    int stop_on_bos;
} kp_model_config;

/* Named tensors that borrow a mapped file (or own backend memory when `owned` is set). */
typedef struct kp_tensor_list {
    kp_tensor *items;
    size_t n, cap;
    const kp_allocator *alloc;
} kp_tensor_list;

void kp_tensor_list_init(kp_tensor_list *l, const kp_allocator *a);
/* Appends a copy of `t` whose name is duplicated; returns NULL on OOM. */
kp_tensor *kp_tensor_list_add(kp_tensor_list *l, const kp_tensor *t);
kp_tensor *kp_tensor_list_find(const kp_tensor_list *l, const char *name);
void kp_tensor_list_free(kp_tensor_list *l);

typedef struct kp_layer_weights {
    const kp_tensor *attn_norm, *wq, *wk, *wv, *wo, *bq, *bk, *bv;
    const kp_tensor *ffn_norm, *w_gate, *w_up, *w_down;
} kp_layer_weights;

struct kp_model {
    const kp_allocator *alloc;
    kp_allocator alloc_copy;
    kp_logger log;
    kp_model_config cfg;
    kp_mapped_file file;
    kp_tensor_list tensors;
    const kp_tensor *tok_embd, *output_norm, *output, *rope_freqs;
    kp_layer_weights *layers;
    kp_tokenizer *tok;
    char *chat_template;    /* NUL-terminated, or NULL */
    size_t chat_template_size;
    kp_backend *be;
    int64_t n_params;
    size_t n_bytes;
    uint64_t fingerprint;   /* identifies the weights for saved session state */
};

/* Binds tensors to slots and validates every shape against cfg; the message names the tensor. */
kp_status kp_model_bind(kp_model *m);

/* ---- format readers: fill cfg and m->tensors from m->file (and m->tok when the file has one) */
kp_status kp_llama2c_read(kp_model *m);
kp_status kp_gguf_read_model(kp_model *m);

#endif
