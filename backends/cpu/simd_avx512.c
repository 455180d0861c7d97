/* AVX-512 F/BW/VL/DQ kernels (512-bit float work; run only when detected). Same structure as
 * simd_avx2.c at twice the width; I8G stays on the AVX2 kernel below VNNI. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "simd.h"

/* Tile loops have compile-time trip counts; unrolling them keeps the accumulators in
 * registers (GCC at -O2 would otherwise leave the arrays on the stack). */
#define UNROLL _Pragma("GCC unroll 4")

static inline __mmask16 first_lanes(int64_t k) { return (__mmask16)((1u << k) - 1); }

/* ---- F32, F16 and BF16 weights: tiles of R rows x T tokens. Every (row, token) dot product
 * uses the same schedule in any tile shape (two accumulators: the first and second 16 columns of
 * each 32, a 16-column remainder into the first, a masked tail into the second, then one
 * reduction), so tiling, thread splits and token counts never change a result. `kind` selects
 * the operand encoding: float, IEEE half or bfloat16, the 16-bit ones with the activations
 * already rounded to the weight's format by prepare. Widening either is exact, so the products
 * are those of the scalar reference; only the order of the sum differs. */

enum { K_F32 = 0, K_F16 = 1, K_BF16 = 2 }; /* K_F16 == 1: the attention loops pass their flag */

static inline __attribute__((always_inline)) __m512 widen16(__m256i h, int kind)
{
    if (kind == K_F16)
        return _mm512_cvtph_ps(h);
    /* bfloat16 is the top half of a float */
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

static inline __attribute__((always_inline)) __m512 ld16(const void *p, int64_t i, int kind)
{
    if (kind != K_F32)
        return widen16(_mm256_loadu_si256((const __m256i *)(const void *)((const uint16_t *)p + i)), kind);
    return _mm512_loadu_ps((const float *)p + i);
}

static inline __attribute__((always_inline)) __m512 ld16m(__mmask16 m, const void *p, int64_t i,
                                                          int kind)
{
    if (kind != K_F32)
        return widen16(_mm256_maskz_loadu_epi16(m, (const uint16_t *)p + i), kind);
    return _mm512_maskz_loadu_ps(m, (const float *)p + i);
}

/* token counts up to which the weights are walked a row at a time (see dense_rows) */
#define STREAM_MAX_TOKENS 4
#define TILE_R 4
#define TILE_T 3

static inline __attribute__((always_inline)) void
dense_tile(float *y, int64_t ys, const void *w, int64_t ws, int R, const void *x, int64_t xs, int T,
           int64_t cols, int kind, int xk)
{
    __m512 a0[TILE_R][TILE_T], a1[TILE_R][TILE_T], xv[TILE_T];
    UNROLL for (int i = 0; i < R; i++)
        UNROLL for (int t = 0; t < T; t++)
            a0[i][t] = a1[i][t] = _mm512_setzero_ps();
    int64_t c = 0;
    for (; c + 32 <= cols; c += 32) {
        UNROLL for (int t = 0; t < T; t++)
            xv[t] = ld16(x, t * xs + c, xk);
        UNROLL for (int i = 0; i < R; i++) {
            __m512 wv = ld16(w, i * ws + c, kind);
            UNROLL for (int t = 0; t < T; t++)
                a0[i][t] = _mm512_fmadd_ps(wv, xv[t], a0[i][t]);
        }
        UNROLL for (int t = 0; t < T; t++)
            xv[t] = ld16(x, t * xs + c + 16, xk);
        UNROLL for (int i = 0; i < R; i++) {
            __m512 wv = ld16(w, i * ws + c + 16, kind);
            UNROLL for (int t = 0; t < T; t++)
                a1[i][t] = _mm512_fmadd_ps(wv, xv[t], a1[i][t]);
        }
    }
    if (c + 16 <= cols) {
        UNROLL for (int t = 0; t < T; t++)
            xv[t] = ld16(x, t * xs + c, xk);
        UNROLL for (int i = 0; i < R; i++) {
            __m512 wv = ld16(w, i * ws + c, kind);
            UNROLL for (int t = 0; t < T; t++)
                a0[i][t] = _mm512_fmadd_ps(wv, xv[t], a0[i][t]);
        }
        c += 16;
    }
    if (c < cols) {
        __mmask16 m = first_lanes(cols - c);
        UNROLL for (int t = 0; t < T; t++)
            xv[t] = ld16m(m, x, t * xs + c, xk);
        UNROLL for (int i = 0; i < R; i++) {
            __m512 wv = ld16m(m, w, i * ws + c, kind);
            UNROLL for (int t = 0; t < T; t++)
                a1[i][t] = _mm512_fmadd_ps(wv, xv[t], a1[i][t]);
        }
    }
    UNROLL for (int i = 0; i < R; i++)
        UNROLL for (int t = 0; t < T; t++)
            y[t * ys + i] = _mm512_reduce_add_ps(_mm512_add_ps(a0[i][t], a1[i][t]));
}

/* One call per tile shape, so each gets code with its loops unrolled. */
static void dense_tile_any(float *y, int64_t ys, const void *w, int64_t ws, int R, const void *x,
                           int64_t xs, int T, int64_t cols, int kind, int xk)
{
#define CASE(r, t)                                                                        \
    case r * 8 + t:                                                                       \
        if (kind == K_F16 && xk == K_F32)                                                 \
            dense_tile(y, ys, w, ws, r, x, xs, t, cols, K_F16, K_F32);                    \
        else if (kind == K_F16)                                                           \
            dense_tile(y, ys, w, ws, r, x, xs, t, cols, K_F16, K_F16);                    \
        else if (kind == K_BF16)                                                          \
            dense_tile(y, ys, w, ws, r, x, xs, t, cols, K_BF16, K_BF16);                  \
        else                                                                              \
            dense_tile(y, ys, w, ws, r, x, xs, t, cols, K_F32, K_F32);                    \
        return;
    switch (R * 8 + T) {
        CASE(4, 3) CASE(4, 2) CASE(4, 1) CASE(1, 3) CASE(1, 2) CASE(1, 1)
    }
#undef CASE
}

static void dense_rows(float *y, const kp_tensor *w, const void *xv, int n, int64_t r0,
                       int64_t r1, int kind, int xk)
{
    const int64_t cols = w->ne[0], rows = kp_tensor_nrows(w), es = kind == K_F32 ? 4 : 2;
    const int64_t xes = xk == K_F32 ? 4 : 2;
    /* A few tokens read each weight about once, so the loop is bound by memory: a row at a time
     * keeps the reads one sequential stream, which the hardware prefetcher follows; rows in step
     * (four streams a row apart) ran at half the bandwidth on Zen 4 (110M model, one thread:
     * F16 decode 42 -> 90 tok/s; 2-token steps 72 -> 110-130 tok/s, 4-token 130 -> 140-170).
     * From about 8 tokens the 4-row tile's reuse of each activation load wins. */
    const int rmax = n <= STREAM_MAX_TOKENS ? 1 : TILE_R;
    for (int64_t r = r0; r < r1;) {
        const int R = r1 - r >= rmax ? rmax : 1;
        for (int t = 0; t < n; t += TILE_T) {
            const int T = n - t >= TILE_T ? TILE_T : n - t;
            dense_tile_any(y + (int64_t)t * rows + r, rows, (const char *)w->data + r * cols * es,
                           cols, R, (const char *)xv + (int64_t)t * cols * xes, cols, T, cols, kind, xk);
        }
        r += R;
    }
}

static void f32_rows(float *y, const kp_tensor *w, const void *work, const float *x, int n,
                     int64_t r0, int64_t r1)
{
    (void)work;
    dense_rows(y, w, x, n, r0, r1, K_F32, K_F32);
}

const kp_cpu_wtype kp_cpu_f32_avx512 = {NULL, NULL, f32_rows, kp_cpu_f32_dequant_row};

static void f16_rows(float *y, const kp_tensor *w, const void *work, const float *x, int n,
                     int64_t r0, int64_t r1)
{
    (void)x;
    dense_rows(y, w, work, n, r0, r1, K_F16, n > 1 ? K_F32 : K_F16);
}

static void f16_prepare(void *work, const float *x, int n, int64_t cols, const kp_tensor *w)
{
    (void)w;
    uint16_t *h = work;
    const int64_t total = cols * n;
    int64_t i = 0;
    if (n > 1) {
        float *f = work;
        for (; i + 16 <= total; i += 16)
            _mm512_storeu_ps(f + i, _mm512_cvtph_ps(_mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
        for (; i < total; i++)
            f[i] = kp_f16_to_f32(kp_f32_to_f16(x[i]));
        return;
    }
    for (; i + 16 <= total; i += 16)
        _mm256_storeu_si256((__m256i *)(void *)(h + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < total; i++)
        h[i] = kp_f32_to_f16(x[i]);
}

static size_t f16_work_size(int64_t cols, int n) { return (size_t)cols * (size_t)n * (n > 1 ? 4 : 2); }

const kp_cpu_wtype kp_cpu_f16_avx512 = {f16_work_size, f16_prepare, f16_rows,
                                        kp_cpu_f16_dequant_row};

/* ---- BF16 weights times BF16-rounded activations (the scalar table's semantics) */

static void bf16_rows(float *y, const kp_tensor *w, const void *work, const float *x, int n,
                      int64_t r0, int64_t r1)
{
    (void)x;
    dense_rows(y, w, work, n, r0, r1, K_BF16, K_BF16);
}

/* kp_cpu_bf16_prepare's rounding in integer lanes: nearest even, NaNs quieted. (vcvtneps2bf16
 * would flush subnormal inputs to zero, which the reference does not.) */
static void bf16_prepare(void *work, const float *x, int n, int64_t cols, const kp_tensor *w)
{
    uint16_t *h = work;
    const int64_t total = cols * n;
    const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7fff);
    const __m512i abs = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
    const __m512i quiet = _mm512_set1_epi32(0x40);
    int64_t i = 0;
    for (; i + 16 <= total; i += 16) {
        __m512i u = _mm512_castps_si512(_mm512_loadu_ps(x + i)), hi = _mm512_srli_epi32(u, 16);
        __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(bias, _mm512_and_si512(hi, one)));
        r = _mm512_srli_epi32(r, 16);
        __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, abs), inf);
        r = _mm512_mask_or_epi32(r, nan, hi, quiet);
        _mm256_storeu_si256((__m256i *)(void *)(h + i), _mm512_cvtepi32_epi16(r));
    }
    if (i < total)
        kp_cpu_bf16_prepare(h + i, x + i, 1, total - i, w);
}

const kp_cpu_wtype kp_cpu_bf16_avx512 = {kp_cpu_f16_work_size, bf16_prepare, bf16_rows,
                                         kp_cpu_bf16_dequant_row};

/* ---- attention loops */

/* The dot products of q with P positions, one accumulator each (16 columns a step, masked
 * tail); every block size shares this schedule, so only the reduction differs. */
static inline __attribute__((always_inline)) void
scores_acc(__m512 *acc, const float *q, const void *k, int64_t stride, int P, int hd, int half, int rows)
{
    if (rows) {
        _Pragma("GCC unroll 16") for (int j = 0; j < P; j++) {
            _Pragma("GCC unroll 8") for (int i = 0; i < hd; i += 16 * (half + 1)) /* 64-byte lines */
                _mm_prefetch((const char *)k + ((j + 32) * stride + i) * (half ? 2 : 4), _MM_HINT_T0);
            acc[j] = _mm512_setzero_ps();
            _Pragma("GCC unroll 16") for (int i = 0; i < hd; i += 16)
                acc[j] = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), ld16(k, j * stride + i, half), acc[j]);
        }
        return;
    }
    _Pragma("GCC unroll 16") for (int j = 0; j < P; j++)
        acc[j] = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= hd; i += 16) {
        __m512 qv = _mm512_loadu_ps(q + i);
        _Pragma("GCC unroll 16") for (int j = 0; j < P; j++)
            acc[j] = _mm512_fmadd_ps(qv, ld16(k, j * stride + i, half), acc[j]);
    }
    if (i < hd) {
        __mmask16 m = first_lanes(hd - i);
        __m512 qv = _mm512_maskz_loadu_ps(m, q + i);
        _Pragma("GCC unroll 16") for (int j = 0; j < P; j++)
            acc[j] = _mm512_fmadd_ps(qv, ld16m(m, k, j * stride + i, half), acc[j]);
    }
}

/* Scores of P positions at once, each reduced on its own. */
static inline __attribute__((always_inline)) void
scores_blk(float *att, const float *q, const void *k, int64_t stride, int P, int hd, float scale,
           int half, int rows)
{
    __m512 acc[8];
    scores_acc(acc, q, k, stride, P, hd, half, rows);
    UNROLL for (int j = 0; j < P; j++)
        att[j] = _mm512_reduce_add_ps(acc[j]) * scale;
}

/* The 16 sums of v[0..15] in one vector (lane j = sum of v[j]), added in exactly the tree of
 * _mm512_reduce_add_ps (halves, then quarters, then lanes i and i+2, then 0 and 1), so a score
 * is the same bits whether its position is in a block of 16 or alone; 45 operations instead of
 * 16 separate reductions. */
static inline __attribute__((always_inline)) __m512 hsum16x16(const __m512 v[16])
{
    __m512 h[8], c[4], d[2];
    _Pragma("GCC unroll 8") for (int i = 0; i < 8; i++) /* lanes 0-7: v[2i] folded, 8-15: v[2i+1] */
        h[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44),
                             _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xee));
    _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) /* 128-bit chunk m: vector 4i + m */
        c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(h[2 * i], h[2 * i + 1], 0x88),
                             _mm512_shuffle_f32x4(h[2 * i], h[2 * i + 1], 0xdd));
    _Pragma("GCC unroll 2") for (int i = 0; i < 2; i++) { /* chunk m: [8i+m, 8i+4+m] pairs */
        __m512d a = _mm512_castps_pd(c[2 * i]), b = _mm512_castps_pd(c[2 * i + 1]);
        d[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)),
                             _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
    }
    /* lane 4m + j holds vector m + 4j */
    __m512 e = _mm512_add_ps(_mm512_shuffle_ps(d[0], d[1], 0x88), _mm512_shuffle_ps(d[0], d[1], 0xdd));
    return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), e);
}

/* 16 positions: the same accumulators, then one transposed reduction. */
static inline __attribute__((always_inline)) void
scores_blk16(float *att, const float *q, const void *k, int64_t stride, int hd, float scale, int half,
             int rows)
{
    __m512 acc[16];
    scores_acc(acc, q, k, stride, 16, hd, half, rows);
    _mm512_storeu_ps(att, _mm512_mul_ps(hsum16x16(acc), _mm512_set1_ps(scale)));
}

/* `rows` (head sizes 64 and 128, compile-time below) walks each position's row before the
 * next and prefetches the lines 32 positions ahead. Column steps across 16 rows touch a block's
 * lines out of order, and the hardware prefetchers stop at page ends (a block of 16 F32 rows of
 * 64 is a page), so scores read from DRAM at half the plain read rate (cpu-backend.md). Each
 * accumulator gets the same FMAs in the same order either way, so the bits are equal. */
static inline __attribute__((always_inline)) void
scores_run(float *att, const float *q, const void *k, int64_t stride, int np, int hd, float scale,
           int half, int rows)
{
    const int64_t es = half ? 2 : 4;
    int p = 0;
    for (; p + 16 <= np; p += 16)
        scores_blk16(att + p, q, (const char *)k + p * stride * es, stride, hd, scale, half, rows);
    for (; p + 8 <= np; p += 8)
        scores_blk(att + p, q, (const char *)k + p * stride * es, stride, 8, hd, scale, half, rows);
    for (; p < np; p++)
        scores_blk(att + p, q, (const char *)k + p * stride * es, stride, 1, hd, scale, half, rows);
}

static void scores(float *att, const float *q, const void *k, int64_t stride, int np, int hd,
                   float scale, int f16)
{
    if (hd == 64 && f16)
        scores_run(att, q, k, stride, np, 64, scale, 1, 1);
    else if (hd == 64)
        scores_run(att, q, k, stride, np, 64, scale, 0, 1);
    else if (hd == 128 && f16)
        scores_run(att, q, k, stride, np, 128, scale, 1, 1);
    else if (hd == 128)
        scores_run(att, q, k, stride, np, 128, scale, 0, 1);
    else if (f16)
        scores_run(att, q, k, stride, np, hd, scale, 1, 0);
    else
        scores_run(att, q, k, stride, np, hd, scale, 0, 0);
}

/* Up to NV vectors of the output held in registers over all positions; the last one masked. */
static inline __attribute__((always_inline)) void
wsum_blk(float *out, const float *att, const void *v, int64_t stride, int np, int NV,
         __mmask16 last, int half, int accumulate)
{
    __m512 acc[8];
    UNROLL for (int j = 0; j < NV; j++)
        acc[j] = accumulate ? _mm512_maskz_loadu_ps(j == NV - 1 ? last : (__mmask16)0xffff, out + j * 16)
                            : _mm512_setzero_ps();
    for (int p = 0; p < np; p++) {
        __m512 a = _mm512_set1_ps(att[p]);
        UNROLL for (int j = 0; j < NV; j++) {
            __mmask16 m = j == NV - 1 ? last : (__mmask16)0xffff;
            acc[j] = _mm512_fmadd_ps(a, ld16m(m, v, p * stride + j * 16, half), acc[j]);
        }
    }
    UNROLL for (int j = 0; j < NV; j++)
        _mm512_mask_storeu_ps(out + j * 16, j == NV - 1 ? last : (__mmask16)0xffff, acc[j]);
}

static void wsum(float *out, const float *att, const void *v, int64_t stride, int np, int hd,
                 int f16, int accumulate)
{
    const int64_t es = f16 ? 2 : 4;
    for (int i0 = 0; i0 < hd; i0 += 128) {
        const int rem = hd - i0 < 128 ? hd - i0 : 128, nv = (rem + 15) / 16;
        const __mmask16 last = rem % 16 ? first_lanes(rem % 16) : (__mmask16)0xffff;
        const void *vb = (const char *)v + i0 * es;
#define CASE(n)                                                                            \
    case n:                                                                                \
        if (f16)                                                                           \
            wsum_blk(out + i0, att, vb, stride, np, n, last, 1, accumulate);                           \
        else                                                                               \
            wsum_blk(out + i0, att, vb, stride, np, n, last, 0, accumulate);                           \
        break;
        switch (nv) {
            CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8)
        }
#undef CASE
    }
}

/* Every lane starts at x[0] and max_ps(x, m) keeps m when x is NaN, as the scalar
 * `x > max` does, so the maximum is the scalar one (a zero of the other sign at most, which
 * gives the same x - max for every x). */
static void softmax(float *x, int n)
{
    if (n <= 0)
        return;
    __m512 m = _mm512_set1_ps(x[0]);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        m = _mm512_max_ps(_mm512_loadu_ps(x + i), m);
    if (i < n)
        m = _mm512_max_ps(_mm512_mask_loadu_ps(m, first_lanes(n - i), x + i), m);
    const float max = _mm512_reduce_max_ps(m);
    float sum = 0.0f;
    for (i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    const __m512 s = _mm512_set1_ps(sum);
    for (i = 0; i + 16 <= n; i += 16)
        _mm512_storeu_ps(x + i, _mm512_div_ps(_mm512_loadu_ps(x + i), s));
    if (i < n)
        _mm512_mask_storeu_ps(x + i, first_lanes(n - i), _mm512_div_ps(_mm512_maskz_loadu_ps(first_lanes(n - i), x + i), s));
}

const kp_cpu_vec kp_cpu_vec_avx512 = {scores, wsum, softmax, kp_cpu_to_f16_f16c};
