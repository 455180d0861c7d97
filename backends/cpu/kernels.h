/* Plain CPU kernels on float rows: the scalar reference semantics of every backend op (each
 * follows llama2.c run.c's arithmetic), and the per-ISA vector
 * primitives attention is built from. */
#ifndef KP_CPU_KERNELS_H
#define KP_CPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "../backend.h"
#include "cpu_features.h"

/* One row: ss = 1/sqrtf(mean(x^2) + eps); out[i] = w[i] * (ss * x[i]). out may equal x. */
void kp_cpu_rmsnorm_row(float *out, const float *x, const float *w, int dim, float eps);
/* Rotary embedding of n rows of n_heads * head_dim at positions pos0 + t. */
void kp_cpu_rope(float *x, int n, int n_heads, int head_dim, int32_t pos0, float theta,
                 const float *freq_factors, kp_rope_style style);
/* out[i] = silu(g[i]) * up[i]; out may equal g. */
void kp_cpu_swiglu(float *out, const float *g, const float *up, size_t len);

/* The two inner loops of attention, per ISA. Operands k / v are float, or IEEE half when
 * `f16` is set (F16 KV cache); row p of them starts p * stride elements after the pointer.
 *   scores: att[p] = dot(q, k_p) * scale for p < np (SIMD entries reassociate the dot product)
 *   wsum:   out[i] = sum over p < np, in order, of att[p] * v_p[i], i < hd; with `accumulate`
 *           the sum continues from the values already in out (so a sum split over position
 *           blocks equals the unsplit one bit for bit) */
typedef struct kp_cpu_vec {
    void (*scores)(float *att, const float *q, const void *k, int64_t stride, int np, int hd,
                   float scale, int f16);
    void (*wsum)(float *out, const float *att, const void *v, int64_t stride, int np, int hd,
                 int f16, int accumulate);
    /* kp_softmax_f32 (lib/vecmath.h), bit for bit: only the max and the divisions are vectors (max is
     * exact in any order; expf and the sum stay scalar and in order) */
    void (*softmax)(float *x, int n);
    /* dst[i] = kp_f32_to_f16(src[i]), bit for bit (the F16 KV cache's store) */
    void (*to_f16)(uint16_t *dst, const float *src, size_t n);
} kp_cpu_vec;

/* Vector primitives for `isa` (the best level at or below it that this build has). */
const kp_cpu_vec *kp_cpu_vec_get(kp_isa isa);

/* Scaled-dot-product attention for heads [h0, h1) of one call (see kp_attn_args). */
void kp_cpu_attention_heads(const kp_attn_args *a, const kp_cpu_vec *v, int h0, int h1);

#endif
