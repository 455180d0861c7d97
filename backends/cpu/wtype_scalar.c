/* Portable weight types: F32, F16, BF16 and llama2.c's group-quantized int8 (I8G). These are
 * the reference for the SIMD tables: sums run in index order in float, as llama2.c does. */
#include <math.h>
#include <string.h>

#include "simd.h"

static int64_t n_rows(const kp_tensor *w) { return kp_tensor_nrows(w); }

/* ---- F32 */

void kp_cpu_f32_dequant_row(const kp_tensor *w, int64_t row, float *dst)
{
    memcpy(dst, (const float *)w->data + row * w->ne[0], (size_t)w->ne[0] * sizeof(float));
}

static void f32_rows(float *y, const kp_tensor *w, const void *work, const float *x, int n,
                     int64_t r0, int64_t r1)
{
    (void)work;
    const int64_t cols = w->ne[0], rows = n_rows(w);
    const float *W = w->data;
    for (int64_t r = r0; r < r1; r++) {
        const float *wr = W + r * cols;
        for (int t = 0; t < n; t++) {
            const float *xr = x + (int64_t)t * cols;
            float val = 0.0f;
            for (int64_t c = 0; c < cols; c++)
                val += wr[c] * xr[c];
            y[(int64_t)t * rows + r] = val;
        }
    }
}

static const kp_cpu_wtype f32_scalar = {NULL, NULL, f32_rows, kp_cpu_f32_dequant_row};

/* ---- F16: ggml multiplies F16 weights with activations rounded to F16, so prepare does too */

void kp_cpu_f16_dequant_row(const kp_tensor *w, int64_t row, float *dst)
{
    const uint16_t *src = (const uint16_t *)w->data + row * w->ne[0];
    for (int64_t c = 0; c < w->ne[0]; c++)
        dst[c] = kp_f16_to_f32(src[c]);
}

size_t kp_cpu_f16_work_size(int64_t cols, int n) { return (size_t)cols * (size_t)n * 2; }

void kp_cpu_f16_prepare(void *work, const float *x, int n, int64_t cols, const kp_tensor *w)
{
    (void)w;
    uint16_t *h = work;
    for (int64_t i = 0; i < cols * n; i++)
        h[i] = kp_f32_to_f16(x[i]);
}

static void f16_rows(float *y, const kp_tensor *w, const void *work, const float *x, int n,
                     int64_t r0, int64_t r1)
{
    (void)x;
    const int64_t cols = w->ne[0], rows = n_rows(w);
    const uint16_t *W = w->data, *X = work;
    for (int64_t r = r0; r < r1; r++) {
        const uint16_t *wr = W + r * cols;
        for (int t = 0; t < n; t++) {
            const uint16_t *xr = X + (int64_t)t * cols;
            float val = 0.0f;
            for (int64_t c = 0; c < cols; c++)
                val += kp_f16_to_f32(wr[c]) * kp_f16_to_f32(xr[c]);
            y[(int64_t)t * rows + r] = val;
        }
    }
}

static const kp_cpu_wtype f16_scalar = {kp_cpu_f16_work_size, kp_cpu_f16_prepare, f16_rows,
                                        kp_cpu_f16_dequant_row};

/* ---- BF16: ggml rounds the activations to BF16 as well (nearest even) */

/* Inline widening: a call per element to kp_bf16_to_f32 costs more than the multiply-add. */
static inline float bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint16_t f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it quiet, drop the low payload */
        return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

void kp_cpu_bf16_dequant_row(const kp_tensor *w, int64_t row, float *dst)
{
    const uint16_t *src = (const uint16_t *)w->data + row * w->ne[0];
    for (int64_t c = 0; c < w->ne[0]; c++)
        dst[c] = bf16_to_f32(src[c]);
}

void kp_cpu_bf16_prepare(void *work, const float *x, int n, int64_t cols, const kp_tensor *w)
{
    (void)w;
    uint16_t *h = work;
    for (int64_t i = 0; i < cols * n; i++)
        h[i] = f32_to_bf16(x[i]);
}

static void bf16_rows(float *y, const kp_tensor *w, const void *work, const float *x, int n,
                      int64_t r0, int64_t r1)
{
    (void)x;
    const int64_t cols = w->ne[0], rows = n_rows(w);
    const uint16_t *W = w->data, *X = work;
    for (int64_t r = r0; r < r1; r++) {
        const uint16_t *wr = W + r * cols;
        for (int t = 0; t < n; t++) {
            const uint16_t *xr = X + (int64_t)t * cols;
            float val = 0.0f;
            for (int64_t c = 0; c < cols; c++)
                val += bf16_to_f32(wr[c]) * bf16_to_f32(xr[c]);
            y[(int64_t)t * rows + r] = val;
        }
    }
}

static const kp_cpu_wtype bf16_scalar = {kp_cpu_f16_work_size, kp_cpu_bf16_prepare, bf16_rows,
                                         kp_cpu_bf16_dequant_row};

/* ---- I8G: runq.c's arithmetic */

void kp_cpu_i8g_dequant_row(const kp_tensor *w, int64_t row, float *dst)
{
    const int64_t cols = w->ne[0], G = w->group > 0 ? w->group : 1;
    const int8_t *q = (const int8_t *)w->data + row * cols;
    for (int64_t c = 0; c < cols; c++)
        dst[c] = q[c] * w->scales[(row * cols + c) / G];
}

size_t kp_cpu_i8g_work_size(int64_t cols, int n)
{
    return kp_cpu_i8g_scales_offset(cols, n) + (size_t)cols * (size_t)n * sizeof(float);
}

void kp_cpu_i8g_prepare(void *work, const float *x, int n, int64_t cols, const kp_tensor *w)
{
    if (!kp_cpu_i8g_quantizes(w))
        return;
    const int64_t G = w->group, total = cols * n;
    int8_t *q = work;
    float *s = (float *)((char *)work + kp_cpu_i8g_scales_offset(cols, n));
    for (int64_t g = 0; g < total / G; g++) {
        const float *xg = x + g * G;
        float wmax = 0.0f;
        for (int64_t k = 0; k < G; k++) {
            float a = fabsf(xg[k]);
            if (a > wmax)
                wmax = a;
        }
        float scale = wmax / 127.0f;
        s[g] = scale;
        for (int64_t k = 0; k < G; k++) {
            /* An all-zero group has scale 0: its values are 0, not 0/0. Out-of-range values
             * only come from inf/NaN input; clamp them rather than cast them (undefined). */
            float v = scale != 0.0f ? roundf(xg[k] / scale) : 0.0f;
            q[g * G + k] = v >= -127.0f && v <= 127.0f ? (int8_t)v
                           : v > 127.0f ? 127 : v < -127.0f ? -127 : 0;
        }
    }
}

/* Groups that do not tile the rows: float activations times dequantized weights. */
static void i8g_rows_float(float *y, const kp_tensor *w, const float *x, int n, int64_t r0,
                           int64_t r1)
{
    const int64_t cols = w->ne[0], rows = n_rows(w), G = w->group > 0 ? w->group : 1;
    const int8_t *W = w->data;
    for (int64_t r = r0; r < r1; r++) {
        for (int t = 0; t < n; t++) {
            const float *xr = x + (int64_t)t * cols;
            float val = 0.0f;
            for (int64_t c = 0; c < cols; c++)
                val += xr[c] * w->scales[(r * cols + c) / G] * W[r * cols + c];
            y[(int64_t)t * rows + r] = val;
        }
    }
}

void kp_cpu_i8g_rows_scalar(float *y, const kp_tensor *w, const void *work, const float *x, int n,
                            int64_t r0, int64_t r1)
{
    if (!kp_cpu_i8g_quantizes(w)) {
        i8g_rows_float(y, w, x, n, r0, r1);
        return;
    }
    const int64_t cols = w->ne[0], rows = n_rows(w), G = w->group, ng = cols / G;
    const int8_t *W = w->data, *XQ = work;
    const float *XS = (const float *)((const char *)work + kp_cpu_i8g_scales_offset(cols, n));
    for (int64_t r = r0; r < r1; r++) {
        const int8_t *wr = W + r * cols;
        const float *ws = w->scales + r * ng;
        for (int t = 0; t < n; t++) {
            const int8_t *xq = XQ + (int64_t)t * cols;
            const float *xs = XS + (int64_t)t * ng;
            float val = 0.0f;
            for (int64_t j = 0; j < ng; j++) {
                int32_t ival = 0;
                for (int64_t k = 0; k < G; k++)
                    ival += (int32_t)xq[j * G + k] * (int32_t)wr[j * G + k];
                val += (float)ival * ws[j] * xs[j];
            }
            y[(int64_t)t * rows + r] = val;
        }
    }
}

static const kp_cpu_wtype i8g_scalar = {kp_cpu_i8g_work_size, kp_cpu_i8g_prepare,
                                        kp_cpu_i8g_rows_scalar, kp_cpu_i8g_dequant_row};

const kp_cpu_wtype *kp_cpu_wtype_scalar(kp_dtype t)
{
    switch (t) {
    case KP_DTYPE_F32: return &f32_scalar;
    case KP_DTYPE_F16: return &f16_scalar;
    case KP_DTYPE_BF16: return &bf16_scalar;
    case KP_DTYPE_I8G: return &i8g_scalar;
    default: return NULL;
    }
}
