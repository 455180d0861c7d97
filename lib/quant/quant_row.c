/* One entry for every type the converter writes. */
#include <string.h>

#include "../tensor.h"
#include "quantize.h"

uint16_t kp_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) /* NaN: keep it a (quiet) NaN after truncation */
        return (uint16_t)((u >> 16) | 64);
    return (uint16_t)((u + (0x7FFFu + ((u >> 16) & 1))) >> 16);
}

int kp_quantize_row(kp_dtype t, const float *x, int64_t n, void *dst)
{
    const int64_t be = kp_dtype_block_elems(t);
    if (n <= 0 || be <= 0 || n % be)
        return 0;
    switch (t) {
    case KP_DTYPE_F32: memcpy(dst, x, (size_t)n * sizeof *x); return 1;
    case KP_DTYPE_F16: {
        uint16_t *h = dst;
        for (int64_t i = 0; i < n; i++)
            h[i] = kp_f32_to_f16(x[i]);
        return 1;
    }
    case KP_DTYPE_BF16: {
        uint16_t *h = dst;
        for (int64_t i = 0; i < n; i++)
            h[i] = kp_f32_to_bf16(x[i]);
        return 1;
    }
    case KP_DTYPE_Q8_0: kp_quantize_row_q8_0(x, n, dst); return 1;
    case KP_DTYPE_Q4_0: kp_quantize_row_q4_0(x, n, dst); return 1;
    case KP_DTYPE_Q4_1: kp_quantize_row_q4_1(x, n, dst); return 1;
    case KP_DTYPE_Q5_0: kp_quantize_row_q5_0(x, n, dst); return 1;
    case KP_DTYPE_Q5_1: kp_quantize_row_q5_1(x, n, dst); return 1;
    case KP_DTYPE_Q4_K: kp_quantize_row_q4_k(x, n, dst); return 1;
    case KP_DTYPE_Q5_K: kp_quantize_row_q5_k(x, n, dst); return 1;
    case KP_DTYPE_Q6_K: kp_quantize_row_q6_k(x, n, dst); return 1;
    default: return 0;
    }
}
