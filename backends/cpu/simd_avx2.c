/* AVX2 + FMA + F16C kernels (built with -mavx2 -mfma -mf16c; run only when detected).
 *
 * Row kernels give each output row the same instruction sequence whether it is computed alone
 * or with its neighbours, so results do not depend on how rows are split between threads. */
#include <immintrin.h>
#include <string.h>

#include "simd.h"

static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/* First k lanes set, 0 <= k <= 8. */
static inline __m256i lane_mask(int64_t k)
{
    static const int32_t tab[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(const void *)(tab + 8 - k));
}

/* ---- F32: R rows against one x, two accumulators per row (16 columns a step) */

static inline __attribute__((always_inline)) void f32_dot_rows(float *out, const float *w,
                                                               int64_t stride, int R,
                                                               const float *x, int64_t cols)
{
    __m256 a0[4], a1[4];
    for (int i = 0; i < R; i++)
        a0[i] = a1[i] = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 16 <= cols; c += 16) {
        __m256 x0 = _mm256_loadu_ps(x + c), x1 = _mm256_loadu_ps(x + c + 8);
        for (int i = 0; i < R; i++) {
            a0[i] = _mm256_fmadd_ps(_mm256_loadu_ps(w + i * stride + c), x0, a0[i]);
            a1[i] = _mm256_fmadd_ps(_mm256_loadu_ps(w + i * stride + c + 8), x1, a1[i]);
        }
    }
    if (c + 8 <= cols) {
        __m256 x0 = _mm256_loadu_ps(x + c);
        for (int i = 0; i < R; i++)
            a0[i] = _mm256_fmadd_ps(_mm256_loadu_ps(w + i * stride + c), x0, a0[i]);
        c += 8;
    }
    if (c < cols) {
        __m256i m = lane_mask(cols - c);
        __m256 x0 = _mm256_maskload_ps(x + c, m);
        for (int i = 0; i < R; i++)
            a1[i] = _mm256_fmadd_ps(_mm256_maskload_ps(w + i * stride + c, m), x0, a1[i]);
    }
    for (int i = 0; i < R; i++)
        out[i] = hsum8(_mm256_add_ps(a0[i], a1[i]));
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

const kp_cpu_wtype kp_cpu_f32_avx2 = {NULL, NULL, f32_rows, kp_cpu_f32_dequant_row};

/* ---- F16 weights times F16-rounded activations */

static inline __m256 load8h(const uint16_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
}

static inline __m256 load_tail_h(const uint16_t *p, int64_t k)
{
    uint16_t tmp[8] = {0};
    memcpy(tmp, p, (size_t)k * 2);
    return load8h(tmp);
}

static inline __attribute__((always_inline)) void f16_dot_rows(float *out, const uint16_t *w,
                                                               int64_t stride, int R,
                                                               const uint16_t *x, int64_t cols)
{
    __m256 a0[4], a1[4];
    for (int i = 0; i < R; i++)
        a0[i] = a1[i] = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 16 <= cols; c += 16) {
        __m256 x0 = load8h(x + c), x1 = load8h(x + c + 8);
        for (int i = 0; i < R; i++) {
            a0[i] = _mm256_fmadd_ps(load8h(w + i * stride + c), x0, a0[i]);
            a1[i] = _mm256_fmadd_ps(load8h(w + i * stride + c + 8), x1, a1[i]);
        }
    }
    if (c + 8 <= cols) {
        __m256 x0 = load8h(x + c);
        for (int i = 0; i < R; i++)
            a0[i] = _mm256_fmadd_ps(load8h(w + i * stride + c), x0, a0[i]);
        c += 8;
    }
    if (c < cols) {
        __m256 x0 = load_tail_h(x + c, cols - c);
        for (int i = 0; i < R; i++)
            a1[i] = _mm256_fmadd_ps(load_tail_h(w + i * stride + c, cols - c), x0, a1[i]);
    }
    for (int i = 0; i < R; i++)
        out[i] = hsum8(_mm256_add_ps(a0[i], a1[i]));
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

/* Same rounding as kp_f32_to_f16 (nearest even) for every finite value and infinity. */
static void f16_prepare(void *work, const float *x, int n, int64_t cols, const kp_tensor *w)
{
    (void)w;
    uint16_t *h = work;
    const int64_t total = cols * n;
    int64_t i = 0;
    for (; i + 8 <= total; i += 8)
        _mm_storeu_si128((__m128i *)(void *)(h + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < total; i++)
        h[i] = kp_f32_to_f16(x[i]);
}

const kp_cpu_wtype kp_cpu_f16_avx2 = {kp_cpu_f16_work_size, f16_prepare, f16_rows,
                                      kp_cpu_f16_dequant_row};

/* ---- I8G */

#define KP_DOT4(acc, u, s) \
    _mm256_add_epi32((acc), _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1)))
#include "i8g_avx_body.h"

const kp_cpu_wtype kp_cpu_i8g_avx2 = {kp_cpu_i8g_work_size, kp_cpu_i8g_prepare, i8g_rows,
                                      kp_cpu_i8g_dequant_row};

/* ---- attention primitives */

static float dot_f32(const float *a, const float *b, int n)
{
    float r;
    f32_dot_rows(&r, a, 0, 1, b, n);
    return r;
}

static float dot_f16(const float *a, const uint16_t *b, int n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), load8h(b + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), load8h(b + i + 8), a1);
    }
    float s = hsum8(_mm256_add_ps(a0, a1));
    for (; i < n; i++)
        s += a[i] * kp_f16_to_f32(b[i]);
    return s;
}

static void axpy_f32(float *y, float a, const float *x, int n)
{
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a * x[i];
}

static void axpy_f16(float *y, float a, const uint16_t *x, int n)
{
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, load8h(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a * kp_f16_to_f32(x[i]);
}

const kp_cpu_vec kp_cpu_vec_avx2 = {dot_f32, dot_f16, axpy_f32, axpy_f16};
