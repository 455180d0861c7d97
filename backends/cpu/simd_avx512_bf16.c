/* AVX-512 BF16 (vdpbf16ps): BF16 weights times the BF16-rounded activations with no widening,
 * two products per lane per instruction. Offered at the avx512_vnni level when cpuid also
 * reports AVX512_BF16 (Zen 4, Sapphire Rapids); the rest of the level is simd_avx512.c.
 *
 * vdpbf16ps adds each of a lane's two products to the accumulator in turn, each add rounded
 * once; a BF16 x BF16 product is exact in float, so that is the arithmetic of an FMA chain
 * over the same pairs and the result differs from the scalar reference only by the order of
 * the sum. It treats subnormal inputs and results as zero (values below 1e-38, far inside the
 * rounding tolerance of any dot product that has a normal term). */
#include <immintrin.h>

#include "simd.h"

#define UNROLL _Pragma("GCC unroll 4")

#define STREAM_MAX_TOKENS 4
#define TILE_R 4
#define TILE_T 3

static inline __attribute__((always_inline)) __m512bh ld32m(__mmask32 m, const uint16_t *p,
                                                             int64_t i)
{
    return (__m512bh)_mm512_maskz_loadu_epi16(m, p + i);
}

/* One 32-column step at column c into acc: the x vectors loaded once for all R rows; `m`
 * selects the columns (all 32 but in the tail). */
static inline __attribute__((always_inline)) void
step32(__m512 acc[TILE_R][TILE_T], const uint16_t *w, int64_t ws, int R, const uint16_t *x, int64_t xs,
       int T, int64_t c, __mmask32 m)
{
    __m512bh xv[TILE_T];
    UNROLL for (int t = 0; t < T; t++)
        xv[t] = ld32m(m, x, t * xs + c);
    UNROLL for (int i = 0; i < R; i++) {
        __m512bh wv = ld32m(m, w, i * ws + c);
        UNROLL for (int t = 0; t < T; t++)
            acc[i][t] = _mm512_dpbf16_ps(acc[i][t], wv, xv[t]);
    }
}

/* R rows x T tokens; every (row, token) pair gets the same schedule in any tile shape (two
 * accumulators: the first and second 32 columns of each 64, a 32-column remainder into the
 * first, a masked tail into the second, one reduction), so tiles, thread splits and token
 * counts never change a result. */
static inline __attribute__((always_inline)) void
dense_tile(float *y, int64_t ys, const uint16_t *w, int64_t ws, int R, const uint16_t *x,
           int64_t xs, int T, int64_t cols)
{
    __m512 a0[TILE_R][TILE_T], a1[TILE_R][TILE_T];
    UNROLL for (int i = 0; i < R; i++)
        UNROLL for (int t = 0; t < T; t++)
            a0[i][t] = a1[i][t] = _mm512_setzero_ps();
    const __mmask32 all = (__mmask32)0xffffffffu;
    int64_t c = 0;
    for (; c + 64 <= cols; c += 64) {
        step32(a0, w, ws, R, x, xs, T, c, all);
        step32(a1, w, ws, R, x, xs, T, c + 32, all);
    }
    if (c + 32 <= cols) {
        step32(a0, w, ws, R, x, xs, T, c, all);
        c += 32;
    }
    if (c < cols)
        step32(a1, w, ws, R, x, xs, T, c, (__mmask32)((1u << (cols - c)) - 1));
    UNROLL for (int i = 0; i < R; i++)
        UNROLL for (int t = 0; t < T; t++)
            y[t * ys + i] = _mm512_reduce_add_ps(_mm512_add_ps(a0[i][t], a1[i][t]));
}

static void dense_tile_any(float *y, int64_t ys, const uint16_t *w, int64_t ws, int R,
                           const uint16_t *x, int64_t xs, int T, int64_t cols)
{
#define CASE(r, t)                                          \
    case r * 8 + t:                                         \
        dense_tile(y, ys, w, ws, r, x, xs, t, cols);        \
        return;
    switch (R * 8 + T) {
        CASE(4, 3) CASE(4, 2) CASE(4, 1) CASE(1, 3) CASE(1, 2) CASE(1, 1)
    }
#undef CASE
}

static void bf16_rows(float *y, const kp_tensor *w, const void *work, const float *x, int n,
                      int64_t r0, int64_t r1)
{
    (void)x;
    const int64_t cols = w->ne[0], rows = kp_tensor_nrows(w);
    const uint16_t *W = w->data, *X = work;
    /* up to 4 tokens: a row at a time, one sequential stream (see simd_avx512.c) */
    const int rmax = n <= STREAM_MAX_TOKENS ? 1 : TILE_R;
    for (int64_t r = r0; r < r1;) {
        const int R = r1 - r >= rmax ? rmax : 1;
        for (int t = 0; t < n; t += TILE_T) {
            const int T = n - t >= TILE_T ? TILE_T : n - t;
            dense_tile_any(y + (int64_t)t * rows + r, rows, W + r * cols, cols, R,
                           X + (int64_t)t * cols, cols, T, cols);
        }
        r += R;
    }
}

/* The activations are rounded exactly as at the avx512 level. */
static void bf16_prepare(void *work, const float *x, int n, int64_t cols, const kp_tensor *w)
{
    kp_cpu_bf16_avx512.prepare(work, x, n, cols, w);
}

const kp_cpu_wtype kp_cpu_bf16_avx512_bf16 = {kp_cpu_f16_work_size, bf16_prepare, bf16_rows,
                                              kp_cpu_bf16_dequant_row};
