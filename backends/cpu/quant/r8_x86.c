/* x86 kernels for packed (KP_LAYOUT_R8) Q4_0, Q4_1, Q8_0, Q4_K, Q5_K and Q6_K matrices: a tile of 8 rows by up to
 * KP_RT tokens. Each weight piece is loaded once per tile and each activation piece is
 * broadcast once per 8 rows; lanes are rows, so the 8 outputs of a tile row are one store.
 * Compiled twice, like quant_x86.c: AVX2 (vpdpbusd done as maddubs + madd) and AVX-512 VNNI
 * (the 256-bit vpdpbusd of AVX512VL: 8 rows fill a register, and 32 registers keep a whole
 * tile's weights and accumulators without spills). Integer block sums are exact; per block the
 * float work is (d_w d_a) * sum (+ m_w s_a for Q4_1), as in the scalar reference, fused. */
#include <immintrin.h>
#include <string.h>

#include "repack.h"

#ifdef KP_QUANT_VNNI
#define KP_RV(name) name##_avx512vnni
#else
#define KP_RV(name) name##_avx2
#endif

#define KP_RT 4 /* tokens per tile */
#define KP_AI inline __attribute__((always_inline))
#define KP_UNROLL_T _Pragma("GCC unroll 4")

/* acc + per 32-bit lane the sum of 4 products of unsigned bytes u with signed bytes s. Without
 * VNNI the int16 pair sums are exact for every caller: u <= 15 (nibbles) or u <= 128 (|w|),
 * against |s| <= 127. */
static KP_AI __m256i dpb(__m256i acc, __m256i u, __m256i s)
{
#ifdef KP_QUANT_VNNI
    return _mm256_dpbusd_epi32(acc, u, s);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

/* 4 activation bytes in every lane */
static KP_AI __m256i bc4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

static KP_AI __m256i ld(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

static KP_AI __m256 f16x8(const uint16_t *h) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)h)); }

/* The 8 unsigned nibble vectors of a Q4 unit: w[k] pairs with activation piece 4k. */
static KP_AI void nibbles(const uint8_t *qs, __m256i w[8])
{
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int c = 0; c < 4; c++) {
        const __m256i raw = ld(qs + 32 * c);
        w[c] = _mm256_and_si256(raw, m4);
        w[c + 4] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
    }
}

/* sum over the 8 pieces of w[k] . q[4k..4k+3], from `init`; two chains hide the latency */
static KP_AI __m256i dot8(const __m256i w[8], const int8_t *q, __m256i init)
{
    __m256i i0 = init, i1 = _mm256_setzero_si256();
    for (int k = 0; k < 8; k += 2) {
        i0 = dpb(i0, w[k], bc4(q + 4 * k));
        i1 = dpb(i1, w[k + 1], bc4(q + 4 * k + 4));
    }
    return _mm256_add_epi32(i0, i1);
}

typedef struct tile_act {
    const int8_t *q[KP_RT];
    const float *d[KP_RT], *s[KP_RT];
    const int32_t *isum[KP_RT];
    const int16_t *bs[KP_RT];
} tile_act;

static KP_AI void act_of(tile_act *a, kp_act_kind k, const uint8_t *act, size_t as, int64_t cols, int nt)
{
    for (int t = 0; t < nt; t++) {
        const uint8_t *row = act + (size_t)t * as;
        a->q[t] = (const int8_t *)row;
        a->d[t] = kp_act_d(row, cols);
        if (k == KP_ACT_Q8_K) {
            a->bs[t] = kp_act_bsums(row, cols);
        } else {
            a->s[t] = kp_act_s(row, cols);
            a->isum[t] = kp_act_isum(k, row, cols);
        }
    }
}

static KP_AI void tile_q4_0(const kp_r8_q4_0 *u, int64_t nb, const tile_act *a, int nt, __m256 *acc)
{
    KP_UNROLL_T for (int t = 0; t < nt; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i w[8];
        nibbles(u[b].qs, w);
        const __m256 dw = f16x8(u[b].d);
        KP_UNROLL_T for (int t = 0; t < nt; t++) {
            /* (nib - 8) . q = nib . q - 8 sum(q) */
            const __m256i s = dot8(w, a->q[t] + b * KP_QK, _mm256_set1_epi32(-8 * a->isum[t][b]));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw, _mm256_set1_ps(a->d[t][b])), acc[t]);
        }
    }
}

static KP_AI void tile_q4_1(const kp_r8_q4_1 *u, int64_t nb, const tile_act *a, int nt, __m256 *acc)
{
    KP_UNROLL_T for (int t = 0; t < nt; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i w[8];
        nibbles(u[b].qs, w);
        const __m256 dw = f16x8(u[b].d), mw = f16x8(u[b].m);
        KP_UNROLL_T for (int t = 0; t < nt; t++) {
            const __m256i s = dot8(w, a->q[t] + b * KP_QK, _mm256_setzero_si256());
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw, _mm256_set1_ps(a->d[t][b])), acc[t]);
            acc[t] = _mm256_fmadd_ps(mw, _mm256_set1_ps(a->s[t][b]), acc[t]);
        }
    }
}

static KP_AI void tile_q8_0(const kp_r8_q8_0 *u, int64_t nb, const tile_act *a, int nt, __m256 *acc)
{
    KP_UNROLL_T for (int t = 0; t < nt; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const __m256 dw = f16x8(u[b].d);
#ifdef KP_QUANT_VNNI
        /* w + 128 is unsigned; the 128 sum(q) it adds comes out in the integers */
        __m256i w[8];
        for (int c = 0; c < 8; c++)
            w[c] = _mm256_xor_si256(ld(u[b].qs + 32 * c), _mm256_set1_epi8((char)0x80));
        KP_UNROLL_T for (int t = 0; t < nt; t++) {
            const __m256i s = dot8(w, a->q[t] + b * KP_QK, _mm256_set1_epi32(-128 * a->isum[t][b]));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dw, _mm256_set1_ps(a->d[t][b])), acc[t]);
        }
#else
        /* |w| times q with w's sign */
        KP_UNROLL_T for (int t = 0; t < nt; t++) {
            const int8_t *q = a->q[t] + b * KP_QK;
            __m256i i0 = _mm256_setzero_si256(), i1 = _mm256_setzero_si256();
            for (int c = 0; c < 8; c += 2) {
                const __m256i w0 = ld(u[b].qs + 32 * c), w1 = ld(u[b].qs + 32 * c + 32);
                i0 = dpb(i0, _mm256_sign_epi8(w0, w0), _mm256_sign_epi8(bc4(q + 4 * c), w0));
                i1 = dpb(i1, _mm256_sign_epi8(w1, w1), _mm256_sign_epi8(bc4(q + 4 * c + 4), w1));
            }
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(i0, i1)),
                                     _mm256_mul_ps(dw, _mm256_set1_ps(a->d[t][b])), acc[t]);
        }
#endif
    }
}

/* Q4_K and Q5_K (`q5`: a fifth bit from the qh pieces): per 32-element sub-block the 8 rows'
 * integer sums times their 6-bit scales (exact int32), the mins against the activation block
 * sums as int16 pairs; then per super-block (d_w d_a) * sum - (dmin_w d_a) * summ, as the
 * scalar reference. Both units share the layout up to the value bytes. */
static KP_AI void tile_k4(const uint8_t *units, size_t unit_bytes, int q5, int64_t nb, const tile_act *a, int nt,
                          __m256 *acc)
{
    const __m256i m4 = _mm256_set1_epi8(0x0F), b4 = _mm256_set1_epi8(0x10);
    KP_UNROLL_T for (int t = 0; t < nt; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const kp_r8_q4_k *u = (const kp_r8_q4_k *)(const void *)(units + (size_t)b * unit_bytes);
        const uint8_t *qh = q5 ? ((const kp_r8_q5_k *)(const void *)u)->qh : NULL;
        const uint8_t *qs = q5 ? ((const kp_r8_q5_k *)(const void *)u)->qs : u->qs;
        __m256i isum[KP_RT];
        KP_UNROLL_T for (int t = 0; t < nt; t++) isum[t] = _mm256_setzero_si256();
        _Pragma("GCC unroll 4") for (int c = 0; c < 4; c++) {
            __m256i lo[8], hi[8];
            for (int k = 0; k < 8; k++) {
                const __m256i raw = ld(qs + 256 * c + 32 * k);
                lo[k] = _mm256_and_si256(raw, m4);
                hi[k] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
                if (q5) { /* bit 2c of qh byte l tops element 64c+l, bit 2c+1 element 64c+32+l: one
                           * shift each brings it to bit 4 (a 16-bit shift of at most 4 moves no other
                           * byte's bit there) */
                    const __m256i h = ld(qh + 32 * k);
                    const __m256i hl = 2 * c <= 4 ? _mm256_slli_epi16(h, 4 - 2 * c) : _mm256_srli_epi16(h, 2 * c - 4);
                    const __m256i hh = 2 * c + 1 <= 4 ? _mm256_slli_epi16(h, 3 - 2 * c) : _mm256_srli_epi16(h, 2 * c - 3);
                    lo[k] = _mm256_or_si256(lo[k], _mm256_and_si256(hl, b4));
                    hi[k] = _mm256_or_si256(hi[k], _mm256_and_si256(hh, b4));
                }
            }
            const __m256i sc0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)u->sc[2 * c]));
            const __m256i sc1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)u->sc[2 * c + 1]));
            KP_UNROLL_T for (int t = 0; t < nt; t++) {
                const int8_t *q = a->q[t] + b * KP_QKK + 64 * c;
                const __m256i s0 = dot8(lo, q, _mm256_setzero_si256()), s1 = dot8(hi, q + 32, _mm256_setzero_si256());
                isum[t] = _mm256_add_epi32(isum[t], _mm256_add_epi32(_mm256_mullo_epi32(s0, sc0),
                                                                     _mm256_mullo_epi32(s1, sc1)));
            }
        }
        __m256i mp[4]; /* lane r: (m[2j][r], m[2j+1][r]) as int16 */
        for (int j = 0; j < 4; j++)
            mp[j] = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)u->m[2 * j]),
                                                           _mm_loadl_epi64((const __m128i *)u->m[2 * j + 1])));
        const __m256 dw = f16x8(u->d), dmw = f16x8(u->dmin);
        KP_UNROLL_T for (int t = 0; t < nt; t++) {
            const int16_t *bs = a->bs[t] + 16 * b;
            __m256i summ = _mm256_setzero_si256();
            for (int j = 0; j < 4; j++) {
                const int b0 = bs[4 * j] + bs[4 * j + 1], b1 = bs[4 * j + 2] + bs[4 * j + 3];
                const __m256i pair = _mm256_set1_epi32((int)((uint32_t)(uint16_t)b0 | ((uint32_t)(uint16_t)b1 << 16)));
                summ = _mm256_add_epi32(summ, _mm256_madd_epi16(mp[j], pair));
            }
            const __m256 da = _mm256_set1_ps(a->d[t][b]);
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_mul_ps(dw, da), acc[t]);
            acc[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(summ), _mm256_mul_ps(dmw, da), acc[t]);
        }
    }
}

static KP_AI void tile_q4_k(const kp_r8_q4_k *u, int64_t nb, const tile_act *a, int nt, __m256 *acc)
{
    tile_k4((const uint8_t *)u, sizeof *u, 0, nb, a, nt, acc);
}

static KP_AI void tile_q5_k(const kp_r8_q5_k *u, int64_t nb, const tile_act *a, int nt, __m256 *acc)
{
    tile_k4((const uint8_t *)u, sizeof *u, 1, nb, a, nt, acc);
}

/* Q6_K: values q in 0..63 stand for q - 32. Per 16-element sub-block the 8 rows' sums of
 * q * a times their int8 scales (exact int32), minus 32 times the scales against the activation
 * block sums (int16 pairs); then per super-block (d_w d_a) * sum, as the scalar reference.
 * Byte l of a half's ql holds elements l and l+64 (low and high nibble; l < 32) or l and l+64
 * after +32 (l >= 32); qh byte l holds the two top bits of elements l, l+32, l+64, l+96. */
static KP_AI void tile_q6_k(const kp_r8_q6_k *u, int64_t nb, const tile_act *a, int nt, __m256 *acc)
{
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    KP_UNROLL_T for (int t = 0; t < nt; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const kp_r8_q6_k *ub = u + b;
        __m256i isum[KP_RT];
        KP_UNROLL_T for (int t = 0; t < nt; t++) isum[t] = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++)
            for (int g = 0; g < 2; g++) { /* pieces 4g..4g+3 of the half: sub-blocks 8h + g + 2v */
                __m256i w[4][4];          /* [v][k]: elements 128h + 32v + 16g + 4k, 4 per row */
                for (int k = 0; k < 4; k++) {
                    const uint8_t *st = ub->q[8 * h + 4 * g + k][0];
                    const __m256i la = ld(st), lb = ld(st + 32), hb = ld(st + 64);
                    w[0][k] = _mm256_or_si256(_mm256_and_si256(la, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 4), m30));
                    w[1][k] = _mm256_or_si256(_mm256_and_si256(lb, m4), _mm256_and_si256(_mm256_slli_epi16(hb, 2), m30));
                    w[2][k] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(la, 4), m4), _mm256_and_si256(hb, m30));
                    w[3][k] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(lb, 4), m4),
                                              _mm256_and_si256(_mm256_srli_epi16(hb, 2), m30));
                }
                __m256i sc[4];
                for (int v = 0; v < 4; v++)
                    sc[v] = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)ub->sc[8 * h + g + 2 * v]));
                KP_UNROLL_T for (int t = 0; t < nt; t++) {
                    const int8_t *q = a->q[t] + b * KP_QKK + 128 * h + 16 * g;
                    for (int v = 0; v < 4; v++) {
                        __m256i s = dpb(_mm256_setzero_si256(), w[v][0], bc4(q + 32 * v));
                        s = dpb(s, w[v][1], bc4(q + 32 * v + 4));
                        s = dpb(s, w[v][2], bc4(q + 32 * v + 8));
                        s = dpb(s, w[v][3], bc4(q + 32 * v + 12));
                        isum[t] = _mm256_add_epi32(isum[t], _mm256_mullo_epi32(s, sc[v]));
                    }
                }
            }
        __m256i sp[8]; /* lane r: (sc[2j][r], sc[2j+1][r]) as int16 */
        for (int j = 0; j < 8; j++)
            sp[j] = _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)ub->sc[2 * j]),
                                                           _mm_loadl_epi64((const __m128i *)ub->sc[2 * j + 1])));
        const __m256 dw = f16x8(ub->d);
        KP_UNROLL_T for (int t = 0; t < nt; t++) {
            const int16_t *bs = a->bs[t] + 16 * b;
            __m256i corr = _mm256_setzero_si256();
            for (int j = 0; j < 8; j++) {
                const __m256i pair =
                    _mm256_set1_epi32((int)((uint32_t)(uint16_t)bs[2 * j] | ((uint32_t)(uint16_t)bs[2 * j + 1] << 16)));
                corr = _mm256_add_epi32(corr, _mm256_madd_epi16(sp[j], pair));
            }
            const __m256i sum = _mm256_sub_epi32(isum[t], _mm256_slli_epi32(corr, 5));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_mul_ps(dw, _mm256_set1_ps(a->d[t][b])), acc[t]);
        }
    }
}

/* y[t*rows + r] for the 8-row groups in [r0, r1) (multiples of 8: the matmul splits work in
 * whole groups) and every token, KP_RT tokens per pass over a group's weights. */
#define KP_R8_ROWS(fname, unit_t, tile, kind, elems)                                                        \
    static void fname(float *y, const kp_tensor *w, const void *work, const float *x, int n, int64_t r0,    \
                      int64_t r1)                                                                           \
    {                                                                                                       \
        (void)x;                                                                                            \
        const int64_t cols = w->ne[0], nb = cols / (elems);                                                 \
        const size_t rows = (size_t)kp_tensor_nrows(w), arb = kp_act_row_bytes(kind, cols);                 \
        for (int64_t g = r0 / KP_R8; g < r1 / KP_R8; g++) {                                                 \
            const unit_t *u = (const unit_t *)w->data + g * nb;                                             \
            for (int t = 0; t < n; t += KP_RT) {                                                            \
                const int nt = n - t < KP_RT ? n - t : KP_RT;                                               \
                tile_act a;                                                                                 \
                __m256 acc[KP_RT];                                                                          \
                const uint8_t *act = (const uint8_t *)work + (size_t)t * arb;                               \
                switch (nt) {                                                                               \
                case 4: act_of(&a, kind, act, arb, cols, 4); tile(u, nb, &a, 4, acc); break;                \
                case 3: act_of(&a, kind, act, arb, cols, 3); tile(u, nb, &a, 3, acc); break;                \
                case 2: act_of(&a, kind, act, arb, cols, 2); tile(u, nb, &a, 2, acc); break;                \
                default: act_of(&a, kind, act, arb, cols, 1); tile(u, nb, &a, 1, acc); break;               \
                }                                                                                           \
                for (int k = 0; k < nt; k++)                                                                \
                    _mm256_storeu_ps(y + (size_t)(t + k) * rows + (size_t)g * KP_R8, acc[k]);               \
            }                                                                                               \
        }                                                                                                   \
    }

KP_R8_ROWS(rows_q4_0, kp_r8_q4_0, tile_q4_0, KP_ACT_Q8_0, KP_QK)
KP_R8_ROWS(rows_q4_1, kp_r8_q4_1, tile_q4_1, KP_ACT_Q8_1, KP_QK)
KP_R8_ROWS(rows_q8_0, kp_r8_q8_0, tile_q8_0, KP_ACT_Q8_0, KP_QK)
KP_R8_ROWS(rows_q4_k, kp_r8_q4_k, tile_q4_k, KP_ACT_Q8_K, KP_QKK)
KP_R8_ROWS(rows_q5_k, kp_r8_q5_k, tile_q5_k, KP_ACT_Q8_K, KP_QKK)
KP_R8_ROWS(rows_q6_k, kp_r8_q6_k, tile_q6_k, KP_ACT_Q8_K, KP_QKK)

/* ---- activation rows (Q8_0 / Q8_1 with block sums), the scalar quantizer's arithmetic done 8
 * lanes at a time: the same multiply, clamp and add-magic rounding per element, and max and
 * integer sums, which do not depend on order, so the rows are identical byte for byte. With a
 * batch's weights multiplied this fast, the scalar quantizer was a tenth of a decode step. */
/* F16C rounds to nearest even as kp_f32_to_f16 does; a NaN (inf * 0 in s) takes the library's
 * path so that its payload is the same too. */
static inline float f16_round(float v)
{
    return v == v ? _cvtsh_ss(_cvtss_sh(v, _MM_FROUND_TO_NEAREST_INT)) : kp_f16_to_f32(kp_f32_to_f16(v));
}

static inline void quantize_row_q8(const float *x, int64_t cols, uint8_t *row, int with_sum)
{
    const int64_t nb = cols / KP_QK;
    int8_t *qs = (int8_t *)row;
    float *d = (float *)(row + cols), *s = d + nb;
    int32_t *isum = (int32_t *)(with_sum ? s + nb : s);
    const __m256 sign = _mm256_set1_ps(-0.f), lo = _mm256_set1_ps(-128.f), hi = _mm256_set1_ps(127.f);
    const __m256 magic = _mm256_set1_ps(12582912.f);
    const __m256i mant = _mm256_set1_epi32(0x007fffff), bias = _mm256_set1_epi32(0x00400000);
    for (int64_t b = 0; b < nb; b++) {
        const float *xb = x + b * KP_QK;
        __m256 v[4], m = _mm256_setzero_ps();
        for (int j = 0; j < 4; j++) {
            v[j] = _mm256_loadu_ps(xb + 8 * j);
            /* max(|x|, m) keeps m where |x| is NaN, as the scalar `a > amax ? a : amax` does */
            m = _mm256_max_ps(_mm256_andnot_ps(sign, v[j]), m);
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        const float db = amax / 127.f, id = amax != 0.f ? 127.f / amax : 0.f;
        const __m256 vid = _mm256_set1_ps(id);
        __m256i q[4], sum = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++) {
            __m256 t = _mm256_mul_ps(v[j], vid);
            t = _mm256_blendv_ps(lo, t, _mm256_cmp_ps(t, lo, _CMP_GT_OQ)); /* NaN and below -> -128 */
            t = _mm256_min_ps(t, hi);
            q[j] = _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(_mm256_add_ps(t, magic)), mant), bias);
            sum = _mm256_add_epi32(sum, q[j]);
        }
        const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        _mm256_storeu_si256((__m256i *)(qs + b * KP_QK),
                            _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
        s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
        const int total = _mm_cvtsi128_si32(s4);
        d[b] = f16_round(db);
        isum[b] = total;
        if (with_sum)
            s[b] = f16_round(db * (float)total);
    }
}

static void prepare_q8_0(void *work, const float *x, int n, int64_t cols, const kp_tensor *w)
{
    (void)w;
    const size_t rb = kp_act_row_bytes(KP_ACT_Q8_0, cols);
    for (int t = 0; t < n; t++)
        quantize_row_q8(x + (size_t)t * (size_t)cols, cols, (uint8_t *)work + (size_t)t * rb, 0);
}

static void prepare_q8_1(void *work, const float *x, int n, int64_t cols, const kp_tensor *w)
{
    (void)w;
    const size_t rb = kp_act_row_bytes(KP_ACT_Q8_1, cols);
    for (int t = 0; t < n; t++)
        quantize_row_q8(x + (size_t)t * (size_t)cols, cols, (uint8_t *)work + (size_t)t * rb, 1);
}

/* Q8_K rows for the K-quants, the scalar quantizer's bytes: the block's element of largest
 * magnitude (the first one on ties, found by an equality scan after the exact max) maps to -127,
 * each value is clamped and rounded as q8_of does, bsums are exact integer sums. It was a tenth
 * of a K-quant prompt on the scalar path. */
static inline void quantize_row_q8k(const float *x, int64_t cols, uint8_t *row)
{
    int8_t *qs = (int8_t *)row;
    float *d = (float *)(row + cols);
    int16_t *bsums = (int16_t *)(d + cols / KP_QKK);
    const __m256 sign = _mm256_set1_ps(-0.f), lo = _mm256_set1_ps(-128.f), hi = _mm256_set1_ps(127.f);
    const __m256 magic = _mm256_set1_ps(12582912.f);
    const __m256i mant = _mm256_set1_epi32(0x007fffff), bias = _mm256_set1_epi32(0x00400000);
    for (int64_t b = 0; b < cols / KP_QKK; b++) {
        const float *xb = x + b * KP_QKK;
        int8_t *q = qs + b * KP_QKK;
        __m256 m = _mm256_setzero_ps();
        for (int j = 0; j < KP_QKK; j += 8) /* a NaN |x| leaves m, as `a > amax` skips it */
            m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(xb + j)), m);
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        if (amax == 0.f) {
            d[b] = 0.f;
            memset(q, 0, KP_QKK);
            memset(bsums + b * 16, 0, 16 * sizeof *bsums);
            continue;
        }
        int first = 0;
        for (int j = 0; j < KP_QKK; j += 8) {
            const int eq = _mm256_movemask_ps(
                _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(xb + j)), _mm256_set1_ps(amax), _CMP_EQ_OQ));
            if (eq) {
                first = j + __builtin_ctz((unsigned)eq);
                break;
            }
        }
        const float iscale = -127.f / xb[first];
        const __m256 vis = _mm256_set1_ps(iscale);
        for (int j = 0; j < KP_QKK; j += 32) {
            __m256i v[4];
            for (int k = 0; k < 4; k++) {
                __m256 t = _mm256_mul_ps(_mm256_loadu_ps(xb + j + 8 * k), vis);
                t = _mm256_blendv_ps(lo, t, _mm256_cmp_ps(t, lo, _CMP_GT_OQ)); /* NaN and below -> -128 */
                t = _mm256_min_ps(t, hi);
                v[k] = _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(_mm256_add_ps(t, magic)), mant), bias);
            }
            const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
            _mm256_storeu_si256((__m256i *)(void *)(q + j),
                                _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
            /* the two 16-value sums: lanes of v[0]+v[1] and of v[2]+v[3] */
            const __m256i s = _mm256_hadd_epi32(_mm256_add_epi32(v[0], v[1]), _mm256_add_epi32(v[2], v[3]));
            __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
            h = _mm_hadd_epi32(h, h); /* lanes 0, 1: the two sums */
            bsums[b * 16 + j / 16] = (int16_t)_mm_cvtsi128_si32(h);
            bsums[b * 16 + j / 16 + 1] = (int16_t)_mm_extract_epi32(h, 1);
        }
        d[b] = 1.f / iscale;
    }
}

static void prepare_q8_k(void *work, const float *x, int n, int64_t cols, const kp_tensor *w)
{
    (void)w;
    const size_t rb = kp_act_row_bytes(KP_ACT_Q8_K, cols);
    for (int t = 0; t < n; t++)
        quantize_row_q8k(x + (size_t)t * (size_t)cols, cols, (uint8_t *)work + (size_t)t * rb);
}

static const kp_cpu_wtype r8_q4_0 = {kp_quant_work_size_q8_0, prepare_q8_0, rows_q4_0, kp_r8_dequant_row};
static const kp_cpu_wtype r8_q4_1 = {kp_quant_work_size_q8_1, prepare_q8_1, rows_q4_1, kp_r8_dequant_row};
static const kp_cpu_wtype r8_q8_0 = {kp_quant_work_size_q8_0, prepare_q8_0, rows_q8_0, kp_r8_dequant_row};
static const kp_cpu_wtype r8_q4_k = {kp_quant_work_size_q8_k, prepare_q8_k, rows_q4_k, kp_r8_dequant_row};
static const kp_cpu_wtype r8_q5_k = {kp_quant_work_size_q8_k, prepare_q8_k, rows_q5_k, kp_r8_dequant_row};
static const kp_cpu_wtype r8_q6_k = {kp_quant_work_size_q8_k, prepare_q8_k, rows_q6_k, kp_r8_dequant_row};

const kp_cpu_wtype *KP_RV(kp_r8_get)(kp_dtype t)
{
    switch (t) {
    case KP_DTYPE_Q4_0: return &r8_q4_0;
    case KP_DTYPE_Q4_1: return &r8_q4_1;
    case KP_DTYPE_Q8_0: return &r8_q8_0;
    case KP_DTYPE_Q4_K: return &r8_q4_k;
    case KP_DTYPE_Q5_K: return &r8_q5_k;
    case KP_DTYPE_Q6_K: return &r8_q6_k;
    default: return NULL;
    }
}
