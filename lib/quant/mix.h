/* Which type each tensor gets for a requested output type, following llama.cpp's rules
 * (llama_tensor_get_type) for the types we write, so our files have the same layout as
 * llama-quantize's for the same request. */
#ifndef KP_QUANT_MIX_H
#define KP_QUANT_MIX_H

#include <stdint.h>

#include "kuiper/kuiper.h"

typedef struct kp_quant_mix {
    const char *name;    /* "Q4_K_M" */
    kp_dtype base;       /* the type of most weight matrices; KP_DTYPE_COUNT: each keeps its own */
    int more_bits;       /* _M mixes: some attn_v / ffn_down layers get Q6_K */
    uint32_t file_type;  /* general.file_type (llama.cpp's llama_ftype) */
} kp_quant_mix;

/* The mix of a type name (case-insensitive); NULL if unknown. */
const kp_quant_mix *kp_quant_mix_find(const char *name);
/* The accepted names, space-separated (for messages). */
const char *kp_quant_mix_names(void);

typedef struct kp_quant_tensor_info {
    const char *name;    /* canonical GGUF name */
    int ndim;
    const int64_t *ne;
    int has_output;      /* the model has an output.weight of its own */
    int n_layer;
    kp_dtype src_type;   /* the type it has in the input */
} kp_quant_tensor_info;

/* llama.cpp's file type for a file whose weight matrices are mostly `t` ("COPY"). */
uint32_t kp_quant_file_type_of(kp_dtype t);

/* The dtype tensor `ti` is written as: F32 for everything that is not a weight matrix (norms,
 * biases, rope_freqs), else the mix's base type adjusted by llama.cpp's rules: the classifier
 * (output.weight, or token_embd.weight when tied) is Q6_K for quantized mixes (Q8_0 when its
 * rows are not a multiple of 256 and for Q8_0 itself); _M mixes raise attn_v and ffn_down of
 * the first and last eighth of the layers and every third in between to Q6_K; a K-quant
 * whose rows are not a multiple of 256 falls back to Q5_0 / Q5_1 / Q8_0, and a block type whose
 * rows are not a multiple of 32 to F16. "COPY" keeps each matrix's type where GGUF has it
 * (else F32, an exact upcast). */
kp_dtype kp_quant_mix_pick(const kp_quant_mix *mx, const kp_quant_tensor_info *ti);

#endif
