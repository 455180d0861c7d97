/* AVX-512 F/BW/VL/DQ kernels (512-bit float work; run only when detected). Same structure as
 * simd_avx2.c at twice the width; I8G stays on the AVX2 kernel below VNNI. */
#include <immintrin.h>
#include <string.h>

#include "simd.h"

static inline __mmask16 first_lanes(int64_t k) { return (__mmask16)((1u << k) - 1); }

/* ---- F32: R rows against one x, two accumulators per row (32 columns a step) */

static inline __attribute__((always_inline)) void f32_dot_rows(float *out, const float *w,
                                                               int64_t stride, int R,
                                                               const float *x, int64_t cols)
{
    __m512 a0[4], a1[4];
    for (int i = 0; i < R; i++)
        a0[i] = a1[i] = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + 32 <= cols; c += 32) {
        __m512 x0 = _mm512_loadu_ps(x + c), x1 = _mm512_loadu_ps(x + c + 16);
        for (int i = 0; i < R; i++) {
            a0[i] = _mm512_fmadd_ps(_mm512_loadu_ps(w + i * stride + c), x0, a0[i]);
            a1[i] = _mm512_fmadd_ps(_mm512_loadu_ps(w + i * stride + c + 16), x1, a1[i]);
        }
    }
    if (c + 16 <= cols) {
        __m512 x0 = _mm512_loadu_ps(x + c);
        for (int i = 0; i < R; i++)
            a0[i] = _mm512_fmadd_ps(_mm512_loadu_ps(w + i * stride + c), x0, a0[i]);
        c += 16;
    }
    if (c < cols) {
        __mmask16 m = first_lanes(cols - c);
        __m512 x0 = _mm512_maskz_loadu_ps(m, x + c);
        for (int i = 0; i < R; i++)
            a1[i] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + i * stride + c), x0, a1[i]);
    }
    for (int i = 0; i < R; i++)
        out[i] = _mm512_reduce_add_ps(_mm512_add_ps(a0[i], a1[i]));
}

static void f32_rows(float *y, const kp_tensor *w, const void *work, const float *x, int n,
                     int64_t r0, int64_t r1)
{
    (void)work;
    const int64_t cols = w->ne[0], rows = kp_tensor_nrows(w);
    const float *W = w->data;
    float o[4];
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4)
        for (int t = 0; t < n; t++) {
            f32_dot_rows(o, W + r * cols, cols, 4, x + (int64_t)t * cols, cols);
            memcpy(y + (int64_t)t * rows + r, o, sizeof o);
        }
    for (; r < r1; r++)
        for (int t = 0; t < n; t++)
            f32_dot_rows(y + (int64_t)t * rows + r, W + r * cols, cols, 1, x + (int64_t)t * cols,
                         cols);
}

const kp_cpu_wtype kp_cpu_f32_avx512 = {NULL, NULL, f32_rows, kp_cpu_f32_dequant_row};

/* ---- F16 */

static inline __m512 load16h(const uint16_t *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)p));
}

static inline __m512 load16h_mask(__mmask16 m, const uint16_t *p)
{
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}

static inline __attribute__((always_inline)) void f16_dot_rows(float *out, const uint16_t *w,
                                                               int64_t stride, int R,
                                                               const uint16_t *x, int64_t cols)
{
    __m512 a0[4], a1[4];
    for (int i = 0; i < R; i++)
        a0[i] = a1[i] = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + 32 <= cols; c += 32) {
        __m512 x0 = load16h(x + c), x1 = load16h(x + c + 16);
        for (int i = 0; i < R; i++) {
            a0[i] = _mm512_fmadd_ps(load16h(w + i * stride + c), x0, a0[i]);
            a1[i] = _mm512_fmadd_ps(load16h(w + i * stride + c + 16), x1, a1[i]);
        }
    }
    if (c + 16 <= cols) {
        __m512 x0 = load16h(x + c);
        for (int i = 0; i < R; i++)
            a0[i] = _mm512_fmadd_ps(load16h(w + i * stride + c), x0, a0[i]);
        c += 16;
    }
    if (c < cols) {
        __mmask16 m = first_lanes(cols - c);
        __m512 x0 = load16h_mask(m, x + c);
        for (int i = 0; i < R; i++)
            a1[i] = _mm512_fmadd_ps(load16h_mask(m, w + i * stride + c), x0, a1[i]);
    }
    for (int i = 0; i < R; i++)
        out[i] = _mm512_reduce_add_ps(_mm512_add_ps(a0[i], a1[i]));
}

static void f16_rows(float *y, const kp_tensor *w, const void *work, const float *x, int n,
                     int64_t r0, int64_t r1)
{
    (void)x;
    const int64_t cols = w->ne[0], rows = kp_tensor_nrows(w);
    const uint16_t *W = w->data, *X = work;
    float o[4];
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4)
        for (int t = 0; t < n; t++) {
            f16_dot_rows(o, W + r * cols, cols, 4, X + (int64_t)t * cols, cols);
            memcpy(y + (int64_t)t * rows + r, o, sizeof o);
        }
    for (; r < r1; r++)
        for (int t = 0; t < n; t++)
            f16_dot_rows(y + (int64_t)t * rows + r, W + r * cols, cols, 1, X + (int64_t)t * cols,
                         cols);
}

static void f16_prepare(void *work, const float *x, int n, int64_t cols, const kp_tensor *w)
{
    (void)w;
    uint16_t *h = work;
    const int64_t total = cols * n;
    int64_t i = 0;
    for (; i + 16 <= total; i += 16)
        _mm256_storeu_si256((__m256i *)(void *)(h + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < total; i++)
        h[i] = kp_f32_to_f16(x[i]);
}

const kp_cpu_wtype kp_cpu_f16_avx512 = {kp_cpu_f16_work_size, f16_prepare, f16_rows,
                                        kp_cpu_f16_dequant_row};

/* ---- attention primitives */

static float dot_f32(const float *a, const float *b, int n)
{
    float r;
    f32_dot_rows(&r, a, 0, 1, b, n);
    return r;
}

static float dot_f16(const float *a, const uint16_t *b, int n)
{
    __m512 acc = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16)
        acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), load16h(b + i), acc);
    if (i < n) {
        __mmask16 m = first_lanes(n - i);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), load16h_mask(m, b + i), acc);
    }
    return _mm512_reduce_add_ps(acc);
}

static void axpy_f32(float *y, float a, const float *x, int n)
{
    __m512 va = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 m = first_lanes(n - i);
        _mm512_mask_storeu_ps(y + i, m,
                              _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i),
                                              _mm512_maskz_loadu_ps(m, y + i)));
    }
}

static void axpy_f16(float *y, float a, const uint16_t *x, int n)
{
    __m512 va = _mm512_set1_ps(a);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, load16h(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 m = first_lanes(n - i);
        _mm512_mask_storeu_ps(y + i, m,
                              _mm512_fmadd_ps(va, load16h_mask(m, x + i),
                                              _mm512_maskz_loadu_ps(m, y + i)));
    }
}

const kp_cpu_vec kp_cpu_vec_avx512 = {dot_f32, dot_f16, axpy_f32, axpy_f16};
