/* Weight-type traits for the CPU matmul: how to prepare activations for a weight type and how
 * to multiply rows of it. One table entry per dtype and ISA level; the backend picks once per
 * call with kp_cpu_wtype_get(), so adding a type never touches the matmul driver. */
#ifndef KP_CPU_WTYPE_H
#define KP_CPU_WTYPE_H

#include <stddef.h>
#include <stdint.h>

#include "../../lib/tensor.h"
#include "cpu_features.h"

typedef struct kp_cpu_wtype {
    /* Bytes of activation workspace for n rows of `cols` (0 when x is used as is). */
    size_t (*work_size)(int64_t cols, int n);
    /* Quantizes n rows of x (cols each) into `work` the way the reference engine does for this
     * weight type (ggml: Q8_0, Q8_1, Q8_K; llama2.c runq: groups of w->group). May be NULL. */
    void (*prepare)(void *work, const float *x, int n, int64_t cols, const kp_tensor *w);
    /* y[t*rows + r] = dot(W row r, x row t) for r in [r0, r1), t < n; rows = w->ne[1]. */
    void (*rows)(float *y, const kp_tensor *w, const void *work, const float *x, int n, int64_t r0,
                 int64_t r1);
    /* Dequantizes row `row` of w (w->ne[0] elements) to dst. */
    void (*dequant_row)(const kp_tensor *w, int64_t row, float *dst);
} kp_cpu_wtype;

/* Traits for dtype `t` at the current ISA level (kp_cpu_isa()), NULL if unsupported. */
const kp_cpu_wtype *kp_cpu_wtype_get(kp_dtype t);
/* Traits for multiplying by `w` at the current level: as kp_cpu_wtype_get(w->dtype), except that
 * weights flagged f32_acts keep the activations in float. */
const kp_cpu_wtype *kp_cpu_wtype_for(const kp_tensor *w);
/* Traits at an explicit level (falls back to the best lower level that has the type). */
const kp_cpu_wtype *kp_cpu_wtype_get_isa(kp_dtype t, kp_isa isa);

/* Provided by backends/cpu/quant/ for the GGUF block types (Q8_0, Q4_0, ... Q6_K);
 * NULL for other types or levels it has no kernel for. */
const kp_cpu_wtype *kp_cpu_quant_wtype_get(kp_dtype t, kp_isa isa);

#endif
