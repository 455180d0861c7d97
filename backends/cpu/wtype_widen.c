/* Weights flagged f32_acts (Hugging Face and KuiperLLama models): their reference engines widen
 * every weight to float and keep the activations in float, so rounding the activations to the
 * weight's type (ggml's way, 1e-2-sized errors) would not reproduce them. A slice of a weight row
 * is widened on the stack and dotted with each token's slice by the ISA's float dot product. */
#include <string.h>

#include "simd.h"

#define SLICE 512 /* floats widened at a time: a 2 KiB stack buffer */
#define TOKENS 64 /* partial sums kept per pass over a row */

static inline float bf16_val(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* dst[i] = element (row, c0 + i) of w as float, for i < len. */
static void widen_slice(const kp_tensor *w, int64_t row, int64_t c0, int64_t len, float *dst)
{
    const int64_t base = row * w->ne[0] + c0;
    switch (w->dtype) {
    case KP_DTYPE_F16: {
        const uint16_t *s = (const uint16_t *)w->data + base;
        for (int64_t i = 0; i < len; i++)
            dst[i] = kp_f16_to_f32(s[i]);
        break;
    }
    case KP_DTYPE_BF16: {
        const uint16_t *s = (const uint16_t *)w->data + base;
        for (int64_t i = 0; i < len; i++)
            dst[i] = bf16_val(s[i]);
        break;
    }
    case KP_DTYPE_I8G: {
        /* KuiperLLama indexes scales by the flattened element, so groups may straddle rows */
        const int8_t *q = (const int8_t *)w->data + base;
        for (int64_t i = 0; i < len; i++)
            dst[i] = (float)q[i] * w->scales[(base + i) / w->group];
        break;
    }
    default:
        memset(dst, 0, (size_t)len * sizeof *dst);
    }
}

static void widen_rows(float *y, const kp_tensor *w, const void *work, const float *x, int n, int64_t r0,
                       int64_t r1)
{
    (void)work;
    const kp_cpu_vec *v = kp_cpu_vec_get(kp_cpu_isa());
    const int64_t cols = w->ne[0], rows = kp_tensor_nrows(w);
    float slice[SLICE], part[TOKENS], acc[TOKENS];
    for (int t0 = 0; t0 < n; t0 += TOKENS) {
        const int nt = n - t0 < TOKENS ? n - t0 : TOKENS;
        const float *xt = x + (int64_t)t0 * cols;
        for (int64_t r = r0; r < r1; r++) {
            memset(acc, 0, sizeof acc);
            for (int64_t c0 = 0; c0 < cols; c0 += SLICE) {
                const int64_t len = cols - c0 < SLICE ? cols - c0 : SLICE;
                widen_slice(w, r, c0, len, slice);
                v->scores(part, slice, xt + c0, cols, nt, (int)len, 1.0f, 0);
                for (int t = 0; t < nt; t++)
                    acc[t] += part[t];
            }
            for (int t = 0; t < nt; t++)
                y[(int64_t)(t0 + t) * rows + r] = acc[t];
        }
    }
}

static void widen_dequant_row(const kp_tensor *w, int64_t row, float *dst)
{
    widen_slice(w, row, 0, w->ne[0], dst);
}

const kp_cpu_wtype kp_cpu_widen = {NULL, NULL, widen_rows, widen_dequant_row};
