/* Row quantizers: F32 rows into the block layouts of backends/cpu/quant/quant.h (ggml's), so
 * that kp_qdequant reads back what they write. */
#ifndef KP_QUANTIZE_H
#define KP_QUANTIZE_H

#include <stddef.h>
#include <stdint.h>

#include "kuiper/kuiper.h"

/* Legacy 32-element blocks, computed with the same float operations in the same order as
 * ggml's reference quantizers, so the bytes are identical to llama.cpp's for the same input.
 * n is a multiple of 32. */
void kp_quantize_row_q8_0(const float *x, int64_t n, void *dst);
void kp_quantize_row_q4_0(const float *x, int64_t n, void *dst);
void kp_quantize_row_q4_1(const float *x, int64_t n, void *dst);
void kp_quantize_row_q5_0(const float *x, int64_t n, void *dst);
void kp_quantize_row_q5_1(const float *x, int64_t n, void *dst);

/* K-quant super-blocks (n a multiple of 256): our own fit, a search over sub-block scales
 * (and mins) that minimises the weighted squared error, then 6/8-bit scales relative to the
 * super-block's F16 scale. */
void kp_quantize_row_q4_k(const float *x, int64_t n, void *dst);
void kp_quantize_row_q5_k(const float *x, int64_t n, void *dst);
void kp_quantize_row_q6_k(const float *x, int64_t n, void *dst);

/* Any writable type: F32, F16, BF16 and the block types above. Returns 0 for a type it cannot
 * write or an n that is not a multiple of the type's block. */
int kp_quantize_row(kp_dtype t, const float *x, int64_t n, void *dst);

/* F32 -> BF16, round to nearest even, NaN kept quiet. */
uint16_t kp_f32_to_bf16(float f);

#endif
