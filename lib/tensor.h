/* kp_tensor: the one description of typed data the library passes around. Weights point into
 * the mapped model file (borrowed) or into backend buffers (owned); activations are F32. */
#ifndef KP_TENSOR_H
#define KP_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "kuiper/kuiper.h"

#define KP_MAX_DIMS 4

struct kp_tensor {
    const char *name;       /* canonical name; owned by whoever owns the tensor list */
    kp_dtype dtype;
    int ndim;
    int64_t ne[KP_MAX_DIMS];/* ne[0] is contiguous: a matrix (rows, cols) has ne[0]=cols, ne[1]=rows */
    void *data;             /* device pointer for `device` */
    size_t nbytes;
    kp_device device;
    int owned;              /* data (nbytes) was allocated with the tensor list's allocator by the
                               format reader (a converted copy) and is freed with the list */
    /* Multiply in float arithmetic with the weights widened exactly and the activations left in
     * F32 (Hugging Face transformers, KuiperLLama), instead of rounding the activations to the
     * weight's type first as ggml and llama2.c runq do. */
    int f32_acts;
    /* KP_DTYPE_I8G only: int8 values at `data`, one float scale per `group` consecutive
     * elements of the flattened tensor at `scales`. */
    const float *scales;
    int32_t group;
    /* How `data` is arranged: KP_LAYOUT_FILE (row after row, as the format stores it) unless
     * the backend rearranged a placed copy for its kernels (see backends/cpu/quant/repack.h). */
    int layout;
    /* Set while the backend holds a placed copy (kp_model_place): data/scales are the
     * backend's, these keep the reader's host pointers for the release. */
    int placed;
    void *host_data;
    const float *host_scales;
};

enum { KP_LAYOUT_FILE = 0, KP_LAYOUT_R8 = 1 };

/* Elements per block and bytes per block of a dtype (1 and element size for plain types). */
int64_t kp_dtype_block_elems(kp_dtype t);
size_t kp_dtype_block_bytes(kp_dtype t);
/* Bytes of a row of `n` elements; 0 if `n` is not a multiple of the block size. */
size_t kp_dtype_row_bytes(kp_dtype t, int64_t n);

int64_t kp_tensor_nelems(const kp_tensor *t);
/* Rows of a matrix: product of ne[1..]. */
int64_t kp_tensor_nrows(const kp_tensor *t);

/* Fills a borrowed host tensor. ne[] has `ndim` entries (ne[0] contiguous). */
void kp_tensor_init(kp_tensor *t, const char *name, kp_dtype dtype, int ndim, const int64_t *ne,
                    void *data);

/* IEEE half and bfloat16 conversions, round to nearest even. */
float kp_f16_to_f32(uint16_t h);
uint16_t kp_f32_to_f16(float f);
float kp_bf16_to_f32(uint16_t h);

#endif
