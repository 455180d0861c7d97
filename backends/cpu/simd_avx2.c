/* AVX2 + FMA + F16C kernels (built with -mavx2 -mfma -mf16c; run only when detected).
 *
 * Row kernels give each output row the same instruction sequence whether it is computed alone
 * or with its neighbours, so results do not depend on how rows are split between threads. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "simd.h"

/* Tile loops have compile-time trip counts; unrolling them keeps the accumulators in
 * registers (GCC at -O2 would otherwise leave the arrays on the stack). */
#define UNROLL _Pragma("GCC unroll 4")

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

/* ---- F32, F16 and BF16 weights: tiles of R rows x T tokens. Every (row, token) dot product
 * uses the same schedule in any tile shape (two accumulators: the first and second 8 columns of
 * each 16, an 8-column remainder into the first, a masked tail into the second, then one
 * reduction), so tiling, thread splits and token counts never change a result. `kind` selects
 * the operand encoding: float, IEEE half or bfloat16, the 16-bit ones with the activations
 * already rounded to the weight's format by prepare. Widening either is exact, so the products
 * are those of the scalar reference; only the order of the sum differs. */

enum { K_F32 = 0, K_F16 = 1, K_BF16 = 2 }; /* K_F16 == 1: the attention loops pass their flag */

static inline __attribute__((always_inline)) __m256 widen8(__m128i h, int kind)
{
    if (kind == K_F16)
        return _mm256_cvtph_ps(h);
    /* bfloat16 is the top half of a float */
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

static inline __attribute__((always_inline)) __m256 ld8(const void *p, int64_t i, int kind)
{
    if (kind != K_F32)
        return widen8(_mm_loadu_si128((const __m128i *)(const void *)((const uint16_t *)p + i)), kind);
    return _mm256_loadu_ps((const float *)p + i);
}

/* The first k (< 8) elements, zeros after. */
static inline __attribute__((always_inline)) __m256 ld8_tail(const void *p, int64_t i, int64_t k,
                                                             int kind)
{
    if (kind != K_F32) { /* no 16-bit masked load in AVX2; element by element (a call would spill) */
        const uint16_t *h = (const uint16_t *)p + i;
        __m128i v = _mm_setr_epi16((short)h[0], (short)(k > 1 ? h[1] : 0), (short)(k > 2 ? h[2] : 0),
                                   (short)(k > 3 ? h[3] : 0), (short)(k > 4 ? h[4] : 0),
                                   (short)(k > 5 ? h[5] : 0), (short)(k > 6 ? h[6] : 0), 0);
        return widen8(v, kind);
    }
    return _mm256_maskload_ps((const float *)p + i, lane_mask(k));
}

/* token counts up to which the weights are walked a row at a time (see dense_rows) */
#define STREAM_MAX_TOKENS 4
#define TILE_MAX 4

static inline __attribute__((always_inline)) void
dense_tile(float *y, int64_t ys, const void *w, int64_t ws, int R, const void *x, int64_t xs, int T,
           int64_t cols, int kind)
{
    __m256 a0[TILE_MAX][2], a1[TILE_MAX][2], xv[2];
    UNROLL for (int i = 0; i < R; i++)
        UNROLL for (int t = 0; t < T; t++)
            a0[i][t] = a1[i][t] = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 16 <= cols; c += 16) {
        UNROLL for (int t = 0; t < T; t++)
            xv[t] = ld8(x, t * xs + c, kind);
        UNROLL for (int i = 0; i < R; i++) {
            __m256 wv = ld8(w, i * ws + c, kind);
            UNROLL for (int t = 0; t < T; t++)
                a0[i][t] = _mm256_fmadd_ps(wv, xv[t], a0[i][t]);
        }
        UNROLL for (int t = 0; t < T; t++)
            xv[t] = ld8(x, t * xs + c + 8, kind);
        UNROLL for (int i = 0; i < R; i++) {
            __m256 wv = ld8(w, i * ws + c + 8, kind);
            UNROLL for (int t = 0; t < T; t++)
                a1[i][t] = _mm256_fmadd_ps(wv, xv[t], a1[i][t]);
        }
    }
    if (c + 8 <= cols) {
        UNROLL for (int t = 0; t < T; t++)
            xv[t] = ld8(x, t * xs + c, kind);
        UNROLL for (int i = 0; i < R; i++) {
            __m256 wv = ld8(w, i * ws + c, kind);
            UNROLL for (int t = 0; t < T; t++)
                a0[i][t] = _mm256_fmadd_ps(wv, xv[t], a0[i][t]);
        }
        c += 8;
    }
    if (c < cols) {
        UNROLL for (int t = 0; t < T; t++)
            xv[t] = ld8_tail(x, t * xs + c, cols - c, kind);
        UNROLL for (int i = 0; i < R; i++) {
            __m256 wv = ld8_tail(w, i * ws + c, cols - c, kind);
            UNROLL for (int t = 0; t < T; t++)
                a1[i][t] = _mm256_fmadd_ps(wv, xv[t], a1[i][t]);
        }
    }
    UNROLL for (int i = 0; i < R; i++)
        UNROLL for (int t = 0; t < T; t++)
            y[t * ys + i] = hsum8(_mm256_add_ps(a0[i][t], a1[i][t]));
}

/* One call per tile shape, so each gets code with its loops unrolled. With 16 registers:
 * 2 x 2 for several tokens, 1 x 2 or 1 x 1 for a few. */
static void dense_tile_any(float *y, int64_t ys, const void *w, int64_t ws, int R, const void *x,
                           int64_t xs, int T, int64_t cols, int kind)
{
#define CASE(r, t)                                                                        \
    case r * 8 + t:                                                                       \
        if (kind == K_F16)                                                                \
            dense_tile(y, ys, w, ws, r, x, xs, t, cols, K_F16);                           \
        else if (kind == K_BF16)                                                          \
            dense_tile(y, ys, w, ws, r, x, xs, t, cols, K_BF16);                          \
        else                                                                              \
            dense_tile(y, ys, w, ws, r, x, xs, t, cols, K_F32);                           \
        return;
    switch (R * 8 + T) {
        CASE(2, 2) CASE(2, 1) CASE(1, 2) CASE(1, 1)
    }
#undef CASE
}

static void dense_rows(float *y, const kp_tensor *w, const void *xv, int n, int64_t r0,
                       int64_t r1, int kind)
{
    const int64_t cols = w->ne[0], rows = kp_tensor_nrows(w), es = kind == K_F32 ? 4 : 2;
    /* Up to 4 tokens: a row at a time, one sequential stream for the hardware prefetcher (see
     * simd_avx512.c); more: 2 x 2 tiles reuse each loaded weight and activation. */
    const int rmax = n <= STREAM_MAX_TOKENS ? 1 : 2, tmax = n == 1 ? 1 : 2;
    for (int64_t r = r0; r < r1;) {
        const int R = r1 - r >= rmax ? rmax : 1;
        for (int t = 0; t < n; t += tmax) {
            const int T = n - t >= tmax ? tmax : n - t;
            dense_tile_any(y + (int64_t)t * rows + r, rows, (const char *)w->data + r * cols * es,
                           cols, R, (const char *)xv + (int64_t)t * cols * es, cols, T, cols, kind);
        }
        r += R;
    }
}

static void f32_rows(float *y, const kp_tensor *w, const void *work, const float *x, int n,
                     int64_t r0, int64_t r1)
{
    (void)work;
    dense_rows(y, w, x, n, r0, r1, K_F32);
}

const kp_cpu_wtype kp_cpu_f32_avx2 = {NULL, NULL, f32_rows, kp_cpu_f32_dequant_row};

/* ---- F16 weights times F16-rounded activations */

static void f16_rows(float *y, const kp_tensor *w, const void *work, const float *x, int n,
                     int64_t r0, int64_t r1)
{
    (void)x;
    dense_rows(y, w, work, n, r0, r1, K_F16);
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

/* ---- BF16 weights times BF16-rounded activations (the scalar table's semantics) */

static void bf16_rows(float *y, const kp_tensor *w, const void *work, const float *x, int n,
                      int64_t r0, int64_t r1)
{
    (void)x;
    dense_rows(y, w, work, n, r0, r1, K_BF16);
}

/* kp_cpu_bf16_prepare's rounding in integer lanes: nearest even, NaNs quieted. */
static void bf16_prepare(void *work, const float *x, int n, int64_t cols, const kp_tensor *w)
{
    uint16_t *h = work;
    const int64_t total = cols * n;
    const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff);
    const __m256i abs = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
    const __m256i quiet = _mm256_set1_epi32(0x40);
    int64_t i = 0;
    for (; i + 8 <= total; i += 8) {
        __m256i u = _mm256_castps_si256(_mm256_loadu_ps(x + i)), hi = _mm256_srli_epi32(u, 16);
        __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(bias, _mm256_and_si256(hi, one)));
        r = _mm256_srli_epi32(r, 16);
        /* |u| is below 2^31, so the signed compare is the unsigned one */
        __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs), inf);
        r = _mm256_blendv_epi8(r, _mm256_or_si256(hi, quiet), nan);
        /* lanes hold values below 2^16: the saturating pack keeps them; fix its lane order */
        __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0xd8);
        _mm_storeu_si128((__m128i *)(void *)(h + i), _mm256_castsi256_si128(p));
    }
    if (i < total)
        kp_cpu_bf16_prepare(h + i, x + i, 1, total - i, w);
}

const kp_cpu_wtype kp_cpu_bf16_avx2 = {kp_cpu_f16_work_size, bf16_prepare, bf16_rows,
                                       kp_cpu_bf16_dequant_row};

/* ---- I8G */

#define KP_DOT4(acc, u, s) \
    _mm256_add_epi32((acc), _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1)))
#include "i8g_avx_body.h"

const kp_cpu_wtype kp_cpu_i8g_avx2 = {kp_cpu_i8g_work_size, kp_cpu_i8g_prepare, i8g_rows,
                                      kp_cpu_i8g_dequant_row};

/* ---- attention loops */

/* The dot products of q with P positions, one accumulator each (8 columns a step, then a
 * tail); every block size shares this schedule, so only the reduction differs. */
static inline __attribute__((always_inline)) void
scores_acc(__m256 *acc, const float *q, const void *k, int64_t stride, int P, int hd, int half, int rows)
{
    if (rows) {
        _Pragma("GCC unroll 8") for (int j = 0; j < P; j++) {
            _Pragma("GCC unroll 8") for (int i = 0; i < hd; i += 16 * (half + 1)) /* 64-byte lines */
                _mm_prefetch((const char *)k + ((j + 32) * stride + i) * (half ? 2 : 4), _MM_HINT_T0);
            acc[j] = _mm256_setzero_ps();
            _Pragma("GCC unroll 16") for (int i = 0; i < hd; i += 8)
                acc[j] = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), ld8(k, j * stride + i, half), acc[j]);
        }
        return;
    }
    _Pragma("GCC unroll 8") for (int j = 0; j < P; j++)
        acc[j] = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= hd; i += 8) {
        __m256 qv = _mm256_loadu_ps(q + i);
        _Pragma("GCC unroll 8") for (int j = 0; j < P; j++)
            acc[j] = _mm256_fmadd_ps(qv, ld8(k, j * stride + i, half), acc[j]);
    }
    if (i < hd) {
        __m256 qv = _mm256_maskload_ps(q + i, lane_mask(hd - i));
        _Pragma("GCC unroll 8") for (int j = 0; j < P; j++)
            acc[j] = _mm256_fmadd_ps(qv, ld8_tail(k, j * stride + i, hd - i, half), acc[j]);
    }
}

/* Scores of P positions at once, each reduced on its own. */
static inline __attribute__((always_inline)) void
scores_blk(float *att, const float *q, const void *k, int64_t stride, int P, int hd, float scale,
           int half, int rows)
{
    __m256 acc[8];
    scores_acc(acc, q, k, stride, P, hd, half, rows);
    UNROLL for (int j = 0; j < P; j++)
        att[j] = hsum8(acc[j]) * scale;
}

/* The 8 sums of v[0..7] in one vector (lane j = hsum8(v[j]), the same bits: halves, then lanes
 * i and i+2, then 0 and 1), so a score does not depend on whether its position is in a block of
 * 8 or alone; 21 operations instead of 8 separate reductions. */
static inline __attribute__((always_inline)) __m256 hsum8x8(const __m256 v[8])
{
    __m256 h[4], d[2];
    _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) /* lanes 0-3: v[2i] folded, 4-7: v[2i+1] */
        h[i] = _mm256_add_ps(_mm256_permute2f128_ps(v[2 * i], v[2 * i + 1], 0x20),
                             _mm256_permute2f128_ps(v[2 * i], v[2 * i + 1], 0x31));
    _Pragma("GCC unroll 2") for (int i = 0; i < 2; i++) { /* 128-bit half m: [4i+m, 4i+2+m] pairs */
        __m256d a = _mm256_castps_pd(h[2 * i]), b = _mm256_castps_pd(h[2 * i + 1]);
        d[i] = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(a, b)),
                             _mm256_castpd_ps(_mm256_unpackhi_pd(a, b)));
    }
    /* lane 4m + j holds vector m + 2j */
    __m256 e = _mm256_add_ps(_mm256_shuffle_ps(d[0], d[1], 0x88), _mm256_shuffle_ps(d[0], d[1], 0xdd));
    return _mm256_permutevar8x32_ps(e, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* 8 positions: the same accumulators, then one transposed reduction. */
static inline __attribute__((always_inline)) void
scores_blk8(float *att, const float *q, const void *k, int64_t stride, int hd, float scale, int half,
             int rows)
{
    __m256 acc[8];
    scores_acc(acc, q, k, stride, 8, hd, half, rows);
    _mm256_storeu_ps(att, _mm256_mul_ps(hsum8x8(acc), _mm256_set1_ps(scale)));
}

/* `rows` (head sizes 64 and 128, compile-time below) walks each position's row before the
 * next and prefetches the lines 32 positions ahead. Column steps across 8 rows touch a block's
 * lines out of order, and the hardware prefetchers stop at page ends (a block of 16 F32 rows of
 * 64 is a page), so scores read from DRAM at half the plain read rate (cpu-backend.md). Each
 * accumulator gets the same FMAs in the same order either way, so the bits are equal. */
static inline __attribute__((always_inline)) void
scores_run(float *att, const float *q, const void *k, int64_t stride, int np, int hd, float scale,
           int half, int rows)
{
    const int64_t es = half ? 2 : 4;
    int p = 0;
    for (; p + 8 <= np; p += 8)
        scores_blk8(att + p, q, (const char *)k + p * stride * es, stride, hd, scale, half, rows);
    for (; p + 4 <= np; p += 4)
        scores_blk(att + p, q, (const char *)k + p * stride * es, stride, 4, hd, scale, half, rows);
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

/* NV full vectors of the output held in registers over all positions. */
static inline __attribute__((always_inline)) void
wsum_blk(float *out, const float *att, const void *v, int64_t stride, int np, int NV, int half,
         int accumulate)
{
    __m256 acc[8];
    UNROLL for (int j = 0; j < NV; j++)
        acc[j] = accumulate ? _mm256_loadu_ps(out + j * 8) : _mm256_setzero_ps();
    for (int p = 0; p < np; p++) {
        __m256 a = _mm256_set1_ps(att[p]);
        UNROLL for (int j = 0; j < NV; j++)
            acc[j] = _mm256_fmadd_ps(a, ld8(v, p * stride + j * 8, half), acc[j]);
    }
    UNROLL for (int j = 0; j < NV; j++)
        _mm256_storeu_ps(out + j * 8, acc[j]);
}

static void wsum(float *out, const float *att, const void *v, int64_t stride, int np, int hd,
                 int f16, int accumulate)
{
    const int64_t es = f16 ? 2 : 4;
    int i0 = 0;
    for (; i0 + 8 <= hd; i0 += 64) {
        const int nv = (hd - i0) / 8 < 8 ? (hd - i0) / 8 : 8;
        const void *vb = (const char *)v + i0 * es;
#define CASE(n)                                                                            \
    case n:                                                                                \
        if (f16)                                                                           \
            wsum_blk(out + i0, att, vb, stride, np, n, 1, accumulate);                                 \
        else                                                                               \
            wsum_blk(out + i0, att, vb, stride, np, n, 0, accumulate);                                 \
        break;
        switch (nv) {
            CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8)
        }
#undef CASE
        if (nv < 8) {
            i0 += nv * 8;
            break;
        }
    }
    if (i0 < hd) { /* fewer than 8 columns left: one masked vector, same arithmetic */
        const int k = hd - i0;
        __m256 acc = accumulate ? _mm256_maskload_ps(out + i0, lane_mask(k)) : _mm256_setzero_ps();
        for (int p = 0; p < np; p++)
            acc = _mm256_fmadd_ps(_mm256_set1_ps(att[p]),
                                  ld8_tail((const char *)v + i0 * es, p * stride, k, f16), acc);
        _mm256_maskstore_ps(out + i0, lane_mask(k), acc);
    }
}

/* As the AVX-512 softmax: lanes start at x[0], max_ps(x, m) keeps m for a NaN x. */
static void softmax(float *x, int n)
{
    if (n <= 0)
        return;
    __m256 m = _mm256_set1_ps(x[0]);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        m = _mm256_max_ps(_mm256_loadu_ps(x + i), m);
    for (; i < n; i++) /* the tail into lane 0, by the same rule */
        m = _mm256_max_ps(_mm256_set1_ps(x[i]), m);
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    const float max = _mm_cvtss_f32(h);
    float sum = 0.0f;
    for (i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    const __m256 s = _mm256_set1_ps(sum);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_div_ps(_mm256_loadu_ps(x + i), s));
    for (; i < n; i++)
        x[i] /= sum;
}

/* F16C rounds to nearest even, overflows to infinity and keeps subnormals as kp_f32_to_f16
 * does; only a NaN's payload differs, so 8 values holding one take the scalar path. As a scalar
 * loop this store was 3% of a batched decode step with an F16 cache, all of it serial. Shared
 * with the AVX-512 level. */
void kp_cpu_to_f16_f16c(uint16_t *dst, const float *src, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(src + i);
        const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
        if (_mm256_testz_ps(nan, nan))
            _mm_storeu_si128((__m128i *)(void *)(dst + i), _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
        else
            for (size_t k = i; k < i + 8; k++)
                dst[k] = kp_f32_to_f16(src[k]);
    }
    for (; i < n; i++)
        dst[i] = kp_f32_to_f16(src[i]);
}

const kp_cpu_vec kp_cpu_vec_avx2 = {scores, wsum, softmax, kp_cpu_to_f16_f16c};
