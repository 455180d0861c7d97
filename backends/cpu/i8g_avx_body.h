/* I8G (runq) row kernel on 256-bit integer vectors, included by simd_avx2.c and
 * simd_avx512_vnni.c, which define KP_DOT4(acc, u8, s8): acc's eight int32 lanes plus the sums
 * of four adjacent u8*s8 products (exact: no saturation for |u8| <= 128, |s8| <= 127).
 *
 * Per group the integer sum is exact and then scaled as runq does ((float)ival * w_s * x_s);
 * only the float sum over groups is reassociated (eight groups per vector lane). */
#ifndef KP_I8G_AVX_BODY_H
#define KP_I8G_AVX_BODY_H

/* Adds the 4-product sums of w[0..32) * x[0..32) to acc. |w| goes in the unsigned operand
 * (so -128 is still 128) and x takes w's sign; quantized x never reaches -128. */
static inline __m256i i8g_dot32(__m256i acc, const int8_t *w, const int8_t *x)
{
    __m256i wv = _mm256_loadu_si256((const __m256i *)(const void *)w);
    __m256i xv = _mm256_loadu_si256((const __m256i *)(const void *)x);
    return KP_DOT4(acc, _mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv));
}

/* Lane i = total of s[i]'s eight lanes. */
static inline __m256i i8g_reduce8(const __m256i s[8])
{
    __m256i t0 = _mm256_hadd_epi32(s[0], s[1]), t1 = _mm256_hadd_epi32(s[2], s[3]);
    __m256i t2 = _mm256_hadd_epi32(s[4], s[5]), t3 = _mm256_hadd_epi32(s[6], s[7]);
    __m256i u0 = _mm256_hadd_epi32(t0, t1), u1 = _mm256_hadd_epi32(t2, t3);
    return _mm256_add_epi32(_mm256_permute2x128_si256(u0, u1, 0x20),
                            _mm256_permute2x128_si256(u0, u1, 0x31));
}

/* Integer sums of eight consecutive groups of G starting at w, x (G one of 4, 8, 16 or a
 * multiple of 32), lane i = group i. */
static inline __m256i i8g_groups8(const int8_t *w, const int8_t *x, int64_t G)
{
    const __m256i z = _mm256_setzero_si256();
    if (G == 4)
        return i8g_dot32(z, w, x);
    if (G == 8) {
        /* hadd leaves groups as 0 1 4 5 | 2 3 6 7; the qword permute restores the order */
        __m256i h = _mm256_hadd_epi32(i8g_dot32(z, w, x), i8g_dot32(z, w + 32, x + 32));
        return _mm256_permute4x64_epi64(h, 0xd8);
    }
    if (G == 16) {
        __m256i h1 = _mm256_hadd_epi32(i8g_dot32(z, w, x), i8g_dot32(z, w + 32, x + 32));
        __m256i h2 = _mm256_hadd_epi32(i8g_dot32(z, w + 64, x + 64), i8g_dot32(z, w + 96, x + 96));
        /* groups now sit as 0 2 4 6 | 1 3 5 7 */
        return _mm256_permutevar8x32_epi32(_mm256_hadd_epi32(h1, h2),
                                           _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    }
    __m256i s[8];
    /* unrolled so that s[] stays in registers */
    _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) {
        __m256i acc = z;
        for (int64_t c = 0; c < G; c += 32)
            acc = i8g_dot32(acc, w + k * G + c, x + k * G + c);
        s[k] = acc;
    }
    return i8g_reduce8(s);
}

static inline float i8g_hsum_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

static float i8g_row(const int8_t *w, const float *ws, const int8_t *x, const float *xs,
                     int64_t cols, int64_t G)
{
    const int64_t ng = cols / G;
    int64_t j = 0;
    __m256 acc = _mm256_setzero_ps();
    if (G == 4 || G == 8 || G == 16 || G % 32 == 0) {
        for (; j + 8 <= ng; j += 8) {
            __m256 gi = _mm256_cvtepi32_ps(i8g_groups8(w + j * G, x + j * G, G));
            __m256 p = _mm256_mul_ps(_mm256_mul_ps(gi, _mm256_loadu_ps(ws + j)),
                                     _mm256_loadu_ps(xs + j));
            acc = _mm256_add_ps(acc, p);
        }
    }
    float val = i8g_hsum_ps(acc), tail = 0.0f;
    for (; j < ng; j++) {
        int32_t ival = 0;
        int64_t k = 0;
        if (G % 32 == 0) { /* the same exact integer, a vector at a time */
            __m256i s = _mm256_setzero_si256();
            for (; k < G; k += 32)
                s = i8g_dot32(s, w + j * G + k, x + j * G + k);
            __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
            h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
            h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
            ival = _mm_cvtsi128_si32(h);
        }
        for (; k < G; k++)
            ival += (int32_t)x[j * G + k] * (int32_t)w[j * G + k];
        tail += (float)ival * ws[j] * xs[j];
    }
    return val + tail;
}

static void i8g_rows(float *y, const kp_tensor *w, const void *work, const float *x, int n,
                     int64_t r0, int64_t r1)
{
    if (!kp_cpu_i8g_quantizes(w)) {
        kp_cpu_i8g_rows_scalar(y, w, work, x, n, r0, r1);
        return;
    }
    const int64_t cols = w->ne[0], rows = kp_tensor_nrows(w), G = w->group, ng = cols / G;
    const int8_t *W = w->data, *XQ = work;
    const float *XS = (const float *)((const char *)work + kp_cpu_i8g_scales_offset(cols, n));
    for (int64_t r = r0; r < r1; r++)
        for (int t = 0; t < n; t++)
            y[(int64_t)t * rows + r] = i8g_row(W + r * cols, w->scales + r * ng,
                                               XQ + (int64_t)t * cols, XS + (int64_t)t * ng, cols, G);
}

#endif
