/* x86 dot products of GGUF blocks with quantized activations. This file is compiled twice:
 * with AVX2+FMA+F16C (KP_QUANT_VNNI undefined), 256-bit throughout, and with AVX-512 VNNI
 * (KP_QUANT_VNNI=1), where vpdpbusd replaces the maddubs/madd pair of the byte products and
 * Q8_0/Q4_0/Q4_1 rows take 512-bit paths over groups of 8 blocks. Integer block sums are exact,
 * so each variant differs from the scalar reference only in the order of the float additions. */
#include <immintrin.h>
#include <string.h>

#include "quant.h"

#ifdef KP_QUANT_VNNI
#define KP_QV(name) name##_avx512vnni
#else
#define KP_QV(name) name##_avx2
#endif

static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

static inline float hsum_ps(__m256 v)
{
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

/* 8 int32 lanes, each the sum of 4 products of unsigned bytes `u` with signed bytes `s`.
 * Without VNNI the int16 stage cannot saturate here: |u| <= 128 paired with |s| <= 127. */
static inline __m256i dot_us(__m256i u, __m256i s)
{
#ifdef KP_QUANT_VNNI
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

/* Signed bytes times signed bytes: move the sign of `a` onto `b`. */
static inline __m256i dot_ss(__m256i a, __m256i b)
{
    return dot_us(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
}

/* 32 nibbles of 16 bytes: low nibbles are elements 0..15, high nibbles 16..31. */
static inline __m256i nibbles32(const uint8_t *p)
{
    const __m128i raw = _mm_loadu_si128((const __m128i *)p);
    const __m256i v = _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}

/* Byte i is 0xFF where bit i of the 32-bit little-endian word at p is set. */
static inline __m256i bits32(const uint8_t *p)
{
    uint32_t x;
    memcpy(&x, p, 4);
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2,
                                            2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x(0x8040201008040201LL);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x), spread);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

static inline __m256i ld256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

#ifdef KP_QUANT_VNNI
/* ---- 512-bit paths for one token over whole groups of 8 blocks (AVX-512 VNNI level only).
 * Two blocks share a zmm register and the block scales of 8 blocks are gathered and converted
 * at once. Unsigned nibbles go straight into vpdpbusd; Q4_0's offset of 8 comes out in the
 * integers, so every float operation is the one the 256-bit path (and ggml) performs: a
 * different float rounding here shifts which activations land across a rounding boundary
 * downstream, and with it the logits by up to ~1. */

/* The F16 at byte offset `off` of 8 consecutive blocks of `stride` bytes, as floats. Each
 * gathered dword stays inside its block (blocks are at least 18 bytes, off + 4 <= 4). */
static inline __m256 f16x8(const uint8_t *base, int stride, int off)
{
    const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(stride));
    const __m256i g = _mm256_i32gather_epi32((const int *)(const void *)(base + off), idx, 1);
    return _mm256_cvtph_ps(_mm256_cvtepi32_epi16(g));
}

/* Lanes 0-7 = scale of block j, lanes 8-15 = block j+1, from 8 block scales. */
static inline __m512 pair_scale(__m256 s8, int j)
{
    const __m512i idx = _mm512_set_epi32(j + 1, j + 1, j + 1, j + 1, j + 1, j + 1, j + 1, j + 1, j, j, j, j, j, j, j, j);
    return _mm512_permutexvar_ps(idx, _mm512_castps256_ps512(s8));
}

/* 64 nibble values of two consecutive 32-element blocks (16 packed bytes each, `stride` apart),
 * in element order: block b low nibbles, block b high nibbles, then block b+1's. */
static inline __m512i nibbles64(const uint8_t *q0, const uint8_t *q1)
{
    const __m256i raw = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)q0)),
                                                _mm_loadu_si128((const __m128i *)q1), 1);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i lo = _mm256_and_si256(raw, m4), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
    /* [b0 lo | b1 lo | b0 hi | b1 hi] -> [b0 lo | b0 hi | b1 lo | b1 hi] */
    const __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    return _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 4, 5, 2, 3, 6, 7), v);
}

/* sum over each 4 bytes of (nib - 8) * a, as ggml's lanes hold it: the offset comes out in the
 * integers, so the float arithmetic is the same as for signed values */
static inline __m512i q4_0_lanes(__m512i nib, __m512i a)
{
    return _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), nib, a),
                            _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(8), a));
}

/* Q4_0 over blocks [0, nb8): sum of d_w d_a sum((nib - 8) * a). */
static inline float zmm_q4_0(const kp_blk_q4_0 *x, const int8_t *q, const float *d, int64_t nb8)
{
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb8; b += 8) {
        const __m256 sc = _mm256_mul_ps(f16x8((const uint8_t *)&x[b], (int)sizeof *x, 0), _mm256_loadu_ps(d + b));
        for (int j = 0; j < 8; j += 2) {
            const __m512i p = q4_0_lanes(nibbles64(x[b + j].qs, x[b + j + 1].qs), _mm512_loadu_si512(q + (b + j) * KP_QK));
            acc = _mm512_fmadd_ps(pair_scale(sc, j), _mm512_cvtepi32_ps(p), acc);
        }
    }
    return _mm512_reduce_add_ps(acc);
}

/* Q4_1 over blocks [0, nb8): sum of d_w d_a sum(nib * a) + m_w s_a (the minimum terms summed
 * block by block, as ggml does). */
static inline float zmm_q4_1(const kp_blk_q4_1 *x, const int8_t *q, const float *d, const float *s, int64_t nb8,
                             float *summs)
{
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb8; b += 8) {
        const __m256 sc = _mm256_mul_ps(f16x8((const uint8_t *)&x[b], (int)sizeof *x, 0), _mm256_loadu_ps(d + b));
        for (int j = 0; j < 8; j++)
            *summs += h2f(x[b + j].m) * s[b + j];
        for (int j = 0; j < 8; j += 2) {
            const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), nibbles64(x[b + j].qs, x[b + j + 1].qs),
                                                  _mm512_loadu_si512(q + (b + j) * KP_QK));
            acc = _mm512_fmadd_ps(pair_scale(sc, j), _mm512_cvtepi32_ps(p), acc);
        }
    }
    return _mm512_reduce_add_ps(acc);
}

/* Q8_0 over blocks [0, nb8): signed times signed via |w| and a with w's sign. */
static inline float zmm_q8_0(const kp_blk_q8_0 *x, const int8_t *q, const float *d, int64_t nb8)
{
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb8; b += 8) {
        const __m256 sc = _mm256_mul_ps(f16x8((const uint8_t *)&x[b], (int)sizeof *x, 0), _mm256_loadu_ps(d + b));
        for (int j = 0; j < 8; j += 2) {
            const __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(ld256(x[b + j].qs)), ld256(x[b + j + 1].qs), 1);
            const __m512i a = _mm512_loadu_si512(q + (b + j) * KP_QK);
            const __m512i sa = _mm512_mask_sub_epi8(a, _mm512_movepi8_mask(w), _mm512_setzero_si512(), a);
            const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(w), sa);
            acc = _mm512_fmadd_ps(pair_scale(sc, j), _mm512_cvtepi32_ps(p), acc);
        }
    }
    return _mm512_reduce_add_ps(acc);
}
#endif

/* ---- 32-element block types, one token. Two accumulators hide the FMA latency. */

static inline float dot_q8_0(const void *w, const void *act, int64_t cols)
{
    const kp_blk_q8_0 *x = w;
    const int8_t *q = act;
    const float *d = kp_act_d(act, cols);
    const int64_t nb = cols / KP_QK;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t b = 0;
    float head = 0.f;
#ifdef KP_QUANT_VNNI
    b = nb & ~(int64_t)7;
    head = zmm_q8_0(x, q, d, b);
#endif
    for (; b + 1 < nb; b += 2) {
        const __m256i p0 = dot_ss(ld256(x[b].qs), ld256(q + b * KP_QK));
        const __m256i p1 = dot_ss(ld256(x[b + 1].qs), ld256(q + (b + 1) * KP_QK));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * d[b]), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b + 1].d) * d[b + 1]), _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; b < nb; b++) {
        const __m256i p0 = dot_ss(ld256(x[b].qs), ld256(q + b * KP_QK));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * d[b]), _mm256_cvtepi32_ps(p0), acc0);
    }
    return head + hsum_ps(_mm256_add_ps(acc0, acc1));
}

static inline float dot_q4_0(const void *w, const void *act, int64_t cols)
{
    const kp_blk_q4_0 *x = w;
    const int8_t *q = act;
    const float *d = kp_act_d(act, cols);
    const int64_t nb = cols / KP_QK;
    const __m256i eight = _mm256_set1_epi8(8);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t b = 0;
    float head = 0.f;
#ifdef KP_QUANT_VNNI
    b = nb & ~(int64_t)7;
    head = zmm_q4_0(x, q, d, b);
#endif
    for (; b + 1 < nb; b += 2) {
        const __m256i w0 = _mm256_sub_epi8(nibbles32(x[b].qs), eight);
        const __m256i w1 = _mm256_sub_epi8(nibbles32(x[b + 1].qs), eight);
        const __m256i p0 = dot_ss(w0, ld256(q + b * KP_QK));
        const __m256i p1 = dot_ss(w1, ld256(q + (b + 1) * KP_QK));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * d[b]), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b + 1].d) * d[b + 1]), _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; b < nb; b++) {
        const __m256i w0 = _mm256_sub_epi8(nibbles32(x[b].qs), eight);
        const __m256i p0 = dot_ss(w0, ld256(q + b * KP_QK));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * d[b]), _mm256_cvtepi32_ps(p0), acc0);
    }
    return head + hsum_ps(_mm256_add_ps(acc0, acc1));
}

/* ---- unpacking 32-element blocks to one byte per value */

/* Q4_0 and Q5_0: signed values after the offset, so the sign trick as for Q8_0. */
static inline __m256i unpack_q4_0(const kp_blk_q4_0 *x)
{
    return _mm256_sub_epi8(nibbles32(x->qs), _mm256_set1_epi8(8));
}

static inline __m256i unpack_q5_0(const kp_blk_q5_0 *x)
{
    const __m256i v = _mm256_or_si256(nibbles32(x->qs), _mm256_and_si256(bits32(x->qh), _mm256_set1_epi8(0x10)));
    return _mm256_sub_epi8(v, _mm256_set1_epi8(16));
}

static inline __m256i unpack_q4_1(const kp_blk_q4_1 *x) { return nibbles32(x->qs); }

static inline __m256i unpack_q5_1(const kp_blk_q5_1 *x)
{
    return _mm256_or_si256(nibbles32(x->qs), _mm256_and_si256(bits32(x->qh), _mm256_set1_epi8(0x10)));
}

/* Q4_1 / Q5_1: unsigned values times activations, plus min * (the Q8_1 block sum). */
/* HEAD may take whole groups of 8 blocks first (the 512-bit path), setting b and summs. */
#ifdef KP_QUANT_VNNI
#define KP_Q4_1_HEAD(x, q, d, s, nb, b, summs) (b = (nb) & ~(int64_t)7, head = zmm_q4_1(x, q, d, s, b, &summs))
#else
#define KP_Q4_1_HEAD(x, q, d, s, nb, b, summs) ((void)0)
#endif
#define KP_NO_HEAD(x, q, d, s, nb, b, summs) ((void)0)

#define KP_DOT_MIN32(name, blk_t, unpack, HEAD)                                                            \
    static inline float name(const void *w, const void *act, int64_t cols)                                 \
    {                                                                                                      \
        const blk_t *x = w;                                                                                \
        const int8_t *q = act;                                                                             \
        const float *d = kp_act_d(act, cols), *s = kp_act_s(act, cols);                                    \
        const int64_t nb = cols / KP_QK;                                                                   \
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();                                     \
        float summs = 0.f, head = 0.f;                                                                     \
        int64_t b = 0;                                                                                     \
        HEAD(x, q, d, s, nb, b, summs);                                                                    \
        for (; b + 1 < nb; b += 2) {                                                                       \
            const __m256i p0 = dot_us(unpack(&x[b]), ld256(q + b * KP_QK));                                \
            const __m256i p1 = dot_us(unpack(&x[b + 1]), ld256(q + (b + 1) * KP_QK));                      \
            acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * d[b]), _mm256_cvtepi32_ps(p0), acc0);      \
            acc1 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b + 1].d) * d[b + 1]), _mm256_cvtepi32_ps(p1), acc1); \
            summs += h2f(x[b].m) * s[b] + h2f(x[b + 1].m) * s[b + 1];                                      \
        }                                                                                                  \
        for (; b < nb; b++) {                                                                              \
            const __m256i p0 = dot_us(unpack(&x[b]), ld256(q + b * KP_QK));                                \
            acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * d[b]), _mm256_cvtepi32_ps(p0), acc0);      \
            summs += h2f(x[b].m) * s[b];                                                                   \
        }                                                                                                  \
        return head + hsum_ps(_mm256_add_ps(acc0, acc1)) + summs;                                          \
    }

KP_DOT_MIN32(dot_q4_1, kp_blk_q4_1, unpack_q4_1, KP_Q4_1_HEAD)
KP_DOT_MIN32(dot_q5_1, kp_blk_q5_1, unpack_q5_1, KP_NO_HEAD)

/* Q5_0: signed after the offset, sign trick as for Q8_0. */
static inline float dot_q5_0(const void *w, const void *act, int64_t cols)
{
    const kp_blk_q5_0 *x = w;
    const int8_t *q = act;
    const float *d = kp_act_d(act, cols);
    const int64_t nb = cols / KP_QK;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 1 < nb; b += 2) {
        const __m256i p0 = dot_ss(unpack_q5_0(&x[b]), ld256(q + b * KP_QK));
        const __m256i p1 = dot_ss(unpack_q5_0(&x[b + 1]), ld256(q + (b + 1) * KP_QK));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * d[b]), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b + 1].d) * d[b + 1]), _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; b < nb; b++) {
        const __m256i p0 = dot_ss(unpack_q5_0(&x[b]), ld256(q + b * KP_QK));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * d[b]), _mm256_cvtepi32_ps(p0), acc0);
    }
    return hsum_ps(_mm256_add_ps(acc0, acc1));
}

/* ---- K-quants: per-sub-block integer scales are applied with madd on the int16 products,
 * then one float multiply per super-block. */

/* The eight 6-bit scales (as bytes) and mins (as int16) of a Q4_K/Q5_K super-block, unpacked
 * four at a time with 32-bit operations: scales 0-3 and mins 0-3 are the low 6 bits of bytes
 * 0-3 and 4-7; scales/mins 4-7 take their low 4 bits from bytes 8-11 and their top 2 bits from
 * the top of bytes 0-3 / 4-7. */
static inline void k4_unpack(const uint8_t *s, uint8_t sc[8], __m128i *mins16)
{
    uint32_t w0, w1, w2;
    memcpy(&w0, s, 4);
    memcpy(&w1, s + 4, 4);
    memcpy(&w2, s + 8, 4);
    const uint32_t sc_lo = w0 & 0x3f3f3f3fu, sc_hi = (w2 & 0x0f0f0f0fu) | ((w0 >> 2) & 0x30303030u);
    const uint32_t m_lo = w1 & 0x3f3f3f3fu, m_hi = ((w2 >> 4) & 0x0f0f0f0fu) | ((w1 >> 2) & 0x30303030u);
    memcpy(sc, &sc_lo, 4);
    memcpy(sc + 4, &sc_hi, 4);
    *mins16 = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int)m_hi, (int)m_lo));
}

/* sum over the 8 sub-blocks of min * (sum of its 32 activations), from the Q8_K 16-sums */
static inline int k4_mins(__m128i mins16, const int16_t *bs)
{
    const __m128i pairs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)bs), _mm_loadu_si128((const __m128i *)(bs + 8)));
    __m128i p = _mm_madd_epi16(mins16, pairs);
    p = _mm_add_epi32(p, _mm_shuffle_epi32(p, 0x4E));
    p = _mm_add_epi32(p, _mm_shuffle_epi32(p, 0xB1));
    return _mm_cvtsi128_si32(p);
}

/* products of 32 unsigned (<= 63) weights with 32 activations, times a per-32 scale */
static inline __m256i scaled32(__m256i u, __m256i a, int16_t sc)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, a), _mm256_set1_epi16(sc));
}

static inline float dot_q4_k(const void *w, const void *act, int64_t cols)
{
    const kp_blk_q4_k *x = w;
    const int8_t *q8 = act;
    const float *d8 = kp_act_d(act, cols);
    const int16_t *bs = kp_act_bsums(act, cols);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.f;
    for (int64_t b = 0; b < cols / KP_QKK; b++, q8 += KP_QKK, bs += 16) {
        uint8_t sc[8];
        __m128i mn;
        k4_unpack(x[b].scales, sc, &mn);
        __m256i sumi = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            const __m256i raw = ld256(x[b].qs + 32 * c);
            const __m256i lo = _mm256_and_si256(raw, m4);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
            sumi = _mm256_add_epi32(sumi, scaled32(lo, ld256(q8 + 64 * c), sc[2 * c]));
            sumi = _mm256_add_epi32(sumi, scaled32(hi, ld256(q8 + 64 * c + 32), sc[2 * c + 1]));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * d8[b]), _mm256_cvtepi32_ps(sumi), acc);
        mins += (h2f(x[b].dmin) * d8[b]) * (float)k4_mins(mn, bs);
    }
    return hsum_ps(acc) - mins;
}

static inline float dot_q5_k(const void *w, const void *act, int64_t cols)
{
    const kp_blk_q5_k *x = w;
    const int8_t *q8 = act;
    const float *d8 = kp_act_d(act, cols);
    const int16_t *bs = kp_act_bsums(act, cols);
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps();
    float mins = 0.f;
    for (int64_t b = 0; b < cols / KP_QKK; b++, q8 += KP_QKK, bs += 16) {
        uint8_t sc[8];
        __m128i mn;
        k4_unpack(x[b].scales, sc, &mn);
        __m256i hb = ld256(x[b].qh), sumi = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            /* bit 2c of qh[l] tops element 64c+l, bit 2c+1 element 64c+32+l; shifting the
             * 16-bit lanes by 2 per step only ever pulls foreign bits above bit 1 */
            const __m256i raw = ld256(x[b].qs + 32 * c);
            const __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(hb, one), 4);
            const __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 1), one), 4);
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(raw, m4), h0);
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(raw, 4), m4), h1);
            sumi = _mm256_add_epi32(sumi, scaled32(lo, ld256(q8 + 64 * c), sc[2 * c]));
            sumi = _mm256_add_epi32(sumi, scaled32(hi, ld256(q8 + 64 * c + 32), sc[2 * c + 1]));
            hb = _mm256_srli_epi16(hb, 2);
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * d8[b]), _mm256_cvtepi32_ps(sumi), acc);
        mins += (h2f(x[b].dmin) * d8[b]) * (float)k4_mins(mn, bs);
    }
    return hsum_ps(acc) - mins;
}

/* Q6_K helpers. The 16 int8 scales of a super-block apply to 16 elements each; for the 32
 * elements of one maddubs, lanes 0-7 need scale 2k and lanes 8-15 scale 2k+1 of the half. */
static const uint8_t q6_pair_shuffle[4][32] = {
#define KP_Q6P(a, b) a, b, a, b, a, b, a, b, a, b, a, b, a, b, a, b
    {KP_Q6P(0, 1), KP_Q6P(2, 3)},
    {KP_Q6P(4, 5), KP_Q6P(6, 7)},
    {KP_Q6P(8, 9), KP_Q6P(10, 11)},
    {KP_Q6P(12, 13), KP_Q6P(14, 15)},
#undef KP_Q6P
};

/* The four 32-element groups of half h of a Q6_K block as unsigned 6-bit values (q + 32). */
static inline void q6_unpack(const kp_blk_q6_k *x, int h, __m256i q[4])
{
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
    const __m256i l0 = ld256(x->ql + 64 * h), l1 = ld256(x->ql + 64 * h + 32), hv = ld256(x->qh + 32 * h);
    q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hv, m2), 4));
    q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hv, 2), m2), 4));
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hv, 4), m2), 4));
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hv, 6), m2), 4));
}

/* Per-group scale vectors of half h (see q6_pair_shuffle). */
static inline void q6_scales(const kp_blk_q6_k *x, int h, __m256i s[4])
{
    const __m256i s16 = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(x->scales + 8 * h))));
    for (int k = 0; k < 4; k++)
        s[k] = _mm256_shuffle_epi8(s16, _mm256_loadu_si256((const __m256i *)q6_pair_shuffle[k]));
}

/* 32 * sum_j scale_j * bsum_j: what the +32 offset of the stored values adds, as 8 lanes. */
static inline __m256i q6_offset(const kp_blk_q6_k *x, const int16_t *bs)
{
    const __m256i sc = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)x->scales));
    return _mm256_slli_epi32(_mm256_madd_epi16(sc, _mm256_loadu_si256((const __m256i *)bs)), 5);
}

static inline float dot_q6_k(const void *w, const void *act, int64_t cols)
{
    const kp_blk_q6_k *x = w;
    const int8_t *q8 = act;
    const float *d8 = kp_act_d(act, cols);
    const int16_t *bs = kp_act_bsums(act, cols);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < cols / KP_QKK; b++, q8 += KP_QKK, bs += 16) {
        __m256i sumi = _mm256_sub_epi32(_mm256_setzero_si256(), q6_offset(&x[b], bs));
        for (int h = 0; h < 2; h++) {
            __m256i q[4], s[4];
            q6_unpack(&x[b], h, q);
            q6_scales(&x[b], h, s);
            for (int k = 0; k < 4; k++) {
                const __m256i p = _mm256_maddubs_epi16(q[k], ld256(q8 + 128 * h + 32 * k));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, s[k]));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * d8[b]), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum_ps(acc);
}

/* ---- several tokens at once: each weight block is unpacked once and multiplied with up to
 * KP_TILE activation rows, which is what makes batched prompts compute-bound rather than
 * unpack-bound. `nt` is a constant at every call site, so each use is specialised. */

#define KP_TILE 4
#define KP_ALWAYS_INLINE inline __attribute__((always_inline))
/* Full unrolling over the tile keeps each token's accumulators in registers. */
#define KP_UNROLL _Pragma("GCC unroll 4")

static KP_ALWAYS_INLINE void tile_q8_0(const void *w, const uint8_t *act, size_t as, int64_t cols, int nt,
                                       float *out)
{
    const kp_blk_q8_0 *x = w;
    __m256 acc[KP_TILE];
    const float *d[KP_TILE];
    KP_UNROLL for (int t = 0; t < nt; t++)
        acc[t] = _mm256_setzero_ps(), d[t] = kp_act_d(act + t * as, cols);
    for (int64_t b = 0; b < cols / KP_QK; b++) {
        const __m256i wq = ld256(x[b].qs), u = _mm256_sign_epi8(wq, wq);
        const float dw = h2f(x[b].d);
        KP_UNROLL for (int t = 0; t < nt; t++) {
            const __m256i p = dot_us(u, _mm256_sign_epi8(ld256(act + t * as + b * KP_QK), wq));
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * d[t][b]), _mm256_cvtepi32_ps(p), acc[t]);
        }
    }
    KP_UNROLL for (int t = 0; t < nt; t++)
        out[t] = hsum_ps(acc[t]);
}

#define KP_TILE_SIGNED32(name, blk_t, unpack)                                                               \
    static KP_ALWAYS_INLINE void name(const void *w, const uint8_t *act, size_t as, int64_t cols, int nt,    \
                                      float *out)                                                           \
    {                                                                                                       \
        const blk_t *x = w;                                                                                 \
        __m256 acc[KP_TILE];                                                                                \
        const float *d[KP_TILE];                                                                            \
        KP_UNROLL for (int t = 0; t < nt; t++)                                                                        \
            acc[t] = _mm256_setzero_ps(), d[t] = kp_act_d(act + t * as, cols);                              \
        for (int64_t b = 0; b < cols / KP_QK; b++) {                                                        \
            const __m256i wq = unpack(&x[b]), u = _mm256_sign_epi8(wq, wq);                                 \
            const float dw = h2f(x[b].d);                                                                   \
            KP_UNROLL for (int t = 0; t < nt; t++) {                                                                  \
                const __m256i p = dot_us(u, _mm256_sign_epi8(ld256(act + t * as + b * KP_QK), wq));         \
                acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * d[t][b]), _mm256_cvtepi32_ps(p), acc[t]);      \
            }                                                                                               \
        }                                                                                                   \
        KP_UNROLL for (int t = 0; t < nt; t++)                                                                        \
            out[t] = hsum_ps(acc[t]);                                                                       \
    }
KP_TILE_SIGNED32(tile_q4_0, kp_blk_q4_0, unpack_q4_0)
KP_TILE_SIGNED32(tile_q5_0, kp_blk_q5_0, unpack_q5_0)

#define KP_TILE_MIN32(name, blk_t, unpack)                                                                  \
    static KP_ALWAYS_INLINE void name(const void *w, const uint8_t *act, size_t as, int64_t cols, int nt,    \
                                      float *out)                                                           \
    {                                                                                                       \
        const blk_t *x = w;                                                                                 \
        __m256 acc[KP_TILE];                                                                                \
        float summs[KP_TILE];                                                                               \
        const float *d[KP_TILE], *s[KP_TILE];                                                               \
        KP_UNROLL for (int t = 0; t < nt; t++) {                                                                      \
            acc[t] = _mm256_setzero_ps(), summs[t] = 0.f;                                                   \
            d[t] = kp_act_d(act + t * as, cols), s[t] = kp_act_s(act + t * as, cols);                       \
        }                                                                                                   \
        for (int64_t b = 0; b < cols / KP_QK; b++) {                                                        \
            const __m256i u = unpack(&x[b]);                                                                \
            const float dw = h2f(x[b].d), mw = h2f(x[b].m);                                                 \
            KP_UNROLL for (int t = 0; t < nt; t++) {                                                                  \
                const __m256i p = dot_us(u, ld256(act + t * as + b * KP_QK));                               \
                acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * d[t][b]), _mm256_cvtepi32_ps(p), acc[t]);      \
                summs[t] += mw * s[t][b];                                                                   \
            }                                                                                               \
        }                                                                                                   \
        KP_UNROLL for (int t = 0; t < nt; t++)                                                                        \
            out[t] = hsum_ps(acc[t]) + summs[t];                                                            \
    }
KP_TILE_MIN32(tile_q4_1, kp_blk_q4_1, unpack_q4_1)
KP_TILE_MIN32(tile_q5_1, kp_blk_q5_1, unpack_q5_1)

/* Q4_K / Q5_K: the two 32-element halves of each 64-element chunk, unpacked once per chunk. */
static KP_ALWAYS_INLINE const uint8_t *qh_of_q4_k(const kp_blk_q4_k *x)
{
    (void)x;
    return NULL;
}
static KP_ALWAYS_INLINE const uint8_t *qh_of_q5_k(const kp_blk_q5_k *x) { return x->qh; }

#define KP_TILE_K45(name, blk_t, HAS_QH)                                                                    \
    static KP_ALWAYS_INLINE void name(const void *w, const uint8_t *act, size_t as, int64_t cols, int nt,    \
                                      float *out)                                                           \
    {                                                                                                       \
        const kp_blk_##blk_t *x = w;                                                                        \
        const __m256i m4 = _mm256_set1_epi8(0x0F);                                                          \
        __m256 acc[KP_TILE];                                                                                \
        float mins[KP_TILE];                                                                                \
        KP_UNROLL for (int t = 0; t < nt; t++)                                                                        \
            acc[t] = _mm256_setzero_ps(), mins[t] = 0.f;                                                    \
        for (int64_t b = 0; b < cols / KP_QKK; b++) {                                                       \
            uint8_t sc[8];                                                                                  \
            __m128i mn;                                                                                     \
            k4_unpack(x[b].scales, sc, &mn);                                                                \
            __m256i sumi[KP_TILE];                                                                          \
            KP_UNROLL for (int t = 0; t < nt; t++)                                                                    \
                sumi[t] = _mm256_setzero_si256();                                                           \
            const uint8_t *qhp = qh_of_##blk_t(&x[b]);                                                      \
            __m256i hb = qhp ? ld256(qhp) : _mm256_setzero_si256();                                         \
            KP_UNROLL for (int c = 0; c < 4; c++) {                                                                   \
                const __m256i raw = ld256(x[b].qs + 32 * c);                                                \
                __m256i lo = _mm256_and_si256(raw, m4);                                                     \
                __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);                               \
                if (HAS_QH) {                                                                               \
                    const __m256i one = _mm256_set1_epi8(1);                                                \
                    lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(hb, one), 4));              \
                    hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 1), one), 4)); \
                    hb = _mm256_srli_epi16(hb, 2);                                                          \
                }                                                                                           \
                KP_UNROLL for (int t = 0; t < nt; t++) {                                                              \
                    const int8_t *q8 = (const int8_t *)(act + t * as) + b * KP_QKK + 64 * c;                \
                    sumi[t] = _mm256_add_epi32(sumi[t], scaled32(lo, ld256(q8), sc[2 * c]));                \
                    sumi[t] = _mm256_add_epi32(sumi[t], scaled32(hi, ld256(q8 + 32), sc[2 * c + 1]));       \
                }                                                                                           \
            }                                                                                               \
            const float dw = h2f(x[b].d), dmw = h2f(x[b].dmin);                                             \
            KP_UNROLL for (int t = 0; t < nt; t++) {                                                                  \
                const float d8 = kp_act_d(act + t * as, cols)[b];                                           \
                acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * d8), _mm256_cvtepi32_ps(sumi[t]), acc[t]);     \
                mins[t] += (dmw * d8) * (float)k4_mins(mn, kp_act_bsums(act + t * as, cols) + 16 * b);      \
            }                                                                                               \
        }                                                                                                   \
        KP_UNROLL for (int t = 0; t < nt; t++)                                                                        \
            out[t] = hsum_ps(acc[t]) - mins[t];                                                             \
    }
KP_TILE_K45(tile_q4_k, q4_k, 0)
KP_TILE_K45(tile_q5_k, q5_k, 1)

static KP_ALWAYS_INLINE void tile_q6_k(const void *w, const uint8_t *act, size_t as, int64_t cols, int nt,
                                       float *out)
{
    const kp_blk_q6_k *x = w;
    __m256 acc[KP_TILE];
    KP_UNROLL for (int t = 0; t < nt; t++)
        acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < cols / KP_QKK; b++) {
        __m256i sumi[KP_TILE];
        KP_UNROLL for (int t = 0; t < nt; t++)
            sumi[t] = _mm256_sub_epi32(_mm256_setzero_si256(),
                                       q6_offset(&x[b], kp_act_bsums(act + t * as, cols) + 16 * b));
        for (int h = 0; h < 2; h++) {
            __m256i q[4], s[4];
            q6_unpack(&x[b], h, q);
            q6_scales(&x[b], h, s);
            KP_UNROLL for (int k = 0; k < 4; k++) {
                KP_UNROLL for (int t = 0; t < nt; t++) {
                    const int8_t *q8 = (const int8_t *)(act + t * as) + b * KP_QKK + 128 * h + 32 * k;
                    sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], ld256(q8)), s[k]));
                }
            }
        }
        const float dw = h2f(x[b].d);
        KP_UNROLL for (int t = 0; t < nt; t++)
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(dw * kp_act_d(act + t * as, cols)[b]), _mm256_cvtepi32_ps(sumi[t]),
                                     acc[t]);
    }
    KP_UNROLL for (int t = 0; t < nt; t++)
        out[t] = hsum_ps(acc[t]);
}

#ifdef KP_QUANT_VNNI
/* Batched versions of the 512-bit paths (rows whose block count is a multiple of 8): each pair
 * of weight blocks is unpacked once for up to KP_TILE tokens. */
#define KP_ZTILE_BEGIN(blk_t)                                                                               \
    const blk_t *x = w;                                                                                     \
    const int64_t nb = cols / KP_QK;                                                                        \
    __m512 acc[KP_TILE];                                                                                    \
    __m256 side[KP_TILE];                                                                                   \
    const int8_t *q[KP_TILE];                                                                               \
    const float *d[KP_TILE], *s[KP_TILE];                                                                   \
    KP_UNROLL for (int t = 0; t < nt; t++) {                                                                \
        acc[t] = _mm512_setzero_ps(), side[t] = _mm256_setzero_ps();                                        \
        q[t] = (const int8_t *)(act + t * as), d[t] = kp_act_d(act + t * as, cols);                         \
        s[t] = kp_act_s(act + t * as, cols);                                                                \
    }

static KP_ALWAYS_INLINE void ztile_q4_0(const void *w, const uint8_t *act, size_t as, int64_t cols, int nt,
                                        float *out)
{
    KP_ZTILE_BEGIN(kp_blk_q4_0)
    for (int64_t b = 0; b < nb; b += 8) {
        const __m256 sw = f16x8((const uint8_t *)&x[b], (int)sizeof *x, 0);
        __m256 sc[KP_TILE];
        KP_UNROLL for (int t = 0; t < nt; t++)
            sc[t] = _mm256_mul_ps(sw, _mm256_loadu_ps(d[t] + b));
        KP_UNROLL for (int j = 0; j < 8; j += 2) {
            const __m512i nib = nibbles64(x[b + j].qs, x[b + j + 1].qs);
            KP_UNROLL for (int t = 0; t < nt; t++) {
                const __m512i p = q4_0_lanes(nib, _mm512_loadu_si512(q[t] + (b + j) * KP_QK));
                acc[t] = _mm512_fmadd_ps(pair_scale(sc[t], j), _mm512_cvtepi32_ps(p), acc[t]);
            }
        }
    }
    (void)s, (void)side;
    KP_UNROLL for (int t = 0; t < nt; t++)
        out[t] = _mm512_reduce_add_ps(acc[t]);
}

static KP_ALWAYS_INLINE void ztile_q4_1(const void *w, const uint8_t *act, size_t as, int64_t cols, int nt,
                                        float *out)
{
    KP_ZTILE_BEGIN(kp_blk_q4_1)
    float summs[KP_TILE];
    KP_UNROLL for (int t = 0; t < nt; t++)
        summs[t] = 0.f;
    for (int64_t b = 0; b < nb; b += 8) {
        const __m256 sw = f16x8((const uint8_t *)&x[b], (int)sizeof *x, 0);
        __m256 sc[KP_TILE];
        KP_UNROLL for (int t = 0; t < nt; t++)
            sc[t] = _mm256_mul_ps(sw, _mm256_loadu_ps(d[t] + b));
        for (int j = 0; j < 8; j++) {
            const float mw = h2f(x[b + j].m);
            KP_UNROLL for (int t = 0; t < nt; t++)
                summs[t] += mw * s[t][b + j];
        }
        KP_UNROLL for (int j = 0; j < 8; j += 2) {
            const __m512i nib = nibbles64(x[b + j].qs, x[b + j + 1].qs);
            KP_UNROLL for (int t = 0; t < nt; t++) {
                const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), nib, _mm512_loadu_si512(q[t] + (b + j) * KP_QK));
                acc[t] = _mm512_fmadd_ps(pair_scale(sc[t], j), _mm512_cvtepi32_ps(p), acc[t]);
            }
        }
    }
    (void)side;
    KP_UNROLL for (int t = 0; t < nt; t++)
        out[t] = _mm512_reduce_add_ps(acc[t]) + summs[t];
}

static KP_ALWAYS_INLINE void ztile_q8_0(const void *w, const uint8_t *act, size_t as, int64_t cols, int nt,
                                        float *out)
{
    KP_ZTILE_BEGIN(kp_blk_q8_0)
    (void)s, (void)side; /* Q8_0 has no offset or minimum term */
    for (int64_t b = 0; b < nb; b += 8) {
        const __m256 sw = f16x8((const uint8_t *)&x[b], (int)sizeof *x, 0);
        __m256 sc[KP_TILE];
        KP_UNROLL for (int t = 0; t < nt; t++)
            sc[t] = _mm256_mul_ps(sw, _mm256_loadu_ps(d[t] + b));
        KP_UNROLL for (int j = 0; j < 8; j += 2) {
            const __m512i wq = _mm512_inserti64x4(_mm512_castsi256_si512(ld256(x[b + j].qs)), ld256(x[b + j + 1].qs), 1);
            const __m512i u = _mm512_abs_epi8(wq);
            const __mmask64 neg = _mm512_movepi8_mask(wq);
            KP_UNROLL for (int t = 0; t < nt; t++) {
                const __m512i a = _mm512_loadu_si512(q[t] + (b + j) * KP_QK);
                const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u,
                                                      _mm512_mask_sub_epi8(a, neg, _mm512_setzero_si512(), a));
                acc[t] = _mm512_fmadd_ps(pair_scale(sc[t], j), _mm512_cvtepi32_ps(p), acc[t]);
            }
        }
    }
    KP_UNROLL for (int t = 0; t < nt; t++)
        out[t] = _mm512_reduce_add_ps(acc[t]);
}
#define KP_HAVE_ZTILE 1
#else
#define ztile_q4_0 tile_q4_0
#define ztile_q4_1 tile_q4_1
#define ztile_q8_0 tile_q8_0
#define KP_HAVE_ZTILE 0
#endif
#define ztile_q5_0 tile_q5_0
#define ztile_q5_1 tile_q5_1
#define ztile_q4_k tile_q4_k
#define ztile_q5_k tile_q5_k
#define ztile_q6_k tile_q6_k

#define KP_PREFETCH_ROWS 4

/* The matmul rows: one token uses the single-row dots (two accumulators), batches go through
 * the tiles, KP_TILE tokens at a time. */
#define KP_DEFINE_TILED_ROWS(fname, dotfn, tilefn, kind)                                                    \
    KP_DEFINE_TILED_ROWS_(fname##_256, dotfn, tilefn, kind)                                                 \
    KP_DEFINE_TILED_ROWS_(fname##_512, dotfn, z##tilefn, kind)                                              \
    static void fname(float *y, const kp_tensor *w, const void *work, const float *x, int n, int64_t r0,    \
                      int64_t r1)                                                                           \
    {                                                                                                       \
        if (KP_HAVE_ZTILE && n > 1 && (w->ne[0] / KP_QK) % 8 == 0)                                          \
            fname##_512(y, w, work, x, n, r0, r1);                                                          \
        else                                                                                                \
            fname##_256(y, w, work, x, n, r0, r1);                                                          \
    }

#define KP_DEFINE_TILED_ROWS_(fname, dotfn, tilefn, kind)                                                   \
    static void fname(float *y, const kp_tensor *w, const void *work, const float *x, int n, int64_t r0,    \
                      int64_t r1)                                                                           \
    {                                                                                                       \
        (void)x;                                                                                            \
        const int64_t cols = w->ne[0];                                                                      \
        const size_t rows = (size_t)w->ne[1];                                                               \
        const size_t wrb = kp_dtype_row_bytes(w->dtype, cols), arb = kp_act_row_bytes(kind, cols);          \
        const uint8_t *a = work;                                                                            \
        for (int64_t r = r0; r < r1; r++) {                                                                 \
            const uint8_t *wr = (const uint8_t *)w->data + (size_t)r * wrb;                                 \
            if (r + KP_PREFETCH_ROWS < r1) /* weights stream from memory once per token */                 \
                for (size_t o_ = 0; o_ < wrb; o_ += 64)                                                     \
                    _mm_prefetch((const char *)wr + KP_PREFETCH_ROWS * wrb + o_, _MM_HINT_T0);              \
            float o[KP_TILE];                                                                               \
            int t = 0;                                                                                      \
            for (; t + KP_TILE <= n; t += KP_TILE) {                                                        \
                tilefn(wr, a + (size_t)t * arb, arb, cols, KP_TILE, o);                                     \
                for (int k = 0; k < KP_TILE; k++)                                                           \
                    y[(size_t)(t + k) * rows + (size_t)r] = o[k];                                           \
            }                                                                                               \
            switch (n - t) {                                                                                \
            case 3: tilefn(wr, a + (size_t)t * arb, arb, cols, 3, o); break;                                \
            case 2: tilefn(wr, a + (size_t)t * arb, arb, cols, 2, o); break;                                \
            case 1: o[0] = dotfn(wr, a + (size_t)t * arb, cols); break;                                     \
            default: break;                                                                                 \
            }                                                                                               \
            for (int k = 0; k < n - t; k++)                                                                 \
                y[(size_t)(t + k) * rows + (size_t)r] = o[k];                                               \
        }                                                                                                   \
    }

/* ---- exported dots (for tests) and the table */

float KP_QV(kp_qdot_q8_0)(const void *w, const void *act, int64_t cols) { return dot_q8_0(w, act, cols); }
float KP_QV(kp_qdot_q4_0)(const void *w, const void *act, int64_t cols) { return dot_q4_0(w, act, cols); }
float KP_QV(kp_qdot_q4_1)(const void *w, const void *act, int64_t cols) { return dot_q4_1(w, act, cols); }
float KP_QV(kp_qdot_q5_0)(const void *w, const void *act, int64_t cols) { return dot_q5_0(w, act, cols); }
float KP_QV(kp_qdot_q5_1)(const void *w, const void *act, int64_t cols) { return dot_q5_1(w, act, cols); }
float KP_QV(kp_qdot_q4_k)(const void *w, const void *act, int64_t cols) { return dot_q4_k(w, act, cols); }
float KP_QV(kp_qdot_q5_k)(const void *w, const void *act, int64_t cols) { return dot_q5_k(w, act, cols); }
float KP_QV(kp_qdot_q6_k)(const void *w, const void *act, int64_t cols) { return dot_q6_k(w, act, cols); }

KP_DEFINE_TILED_ROWS(rows_q8_0, dot_q8_0, tile_q8_0, KP_ACT_Q8_0)
KP_DEFINE_TILED_ROWS(rows_q4_0, dot_q4_0, tile_q4_0, KP_ACT_Q8_0)
KP_DEFINE_TILED_ROWS(rows_q5_0, dot_q5_0, tile_q5_0, KP_ACT_Q8_0)
KP_DEFINE_TILED_ROWS(rows_q4_1, dot_q4_1, tile_q4_1, KP_ACT_Q8_1)
KP_DEFINE_TILED_ROWS(rows_q5_1, dot_q5_1, tile_q5_1, KP_ACT_Q8_1)
KP_DEFINE_TILED_ROWS(rows_q4_k, dot_q4_k, tile_q4_k, KP_ACT_Q8_K)
KP_DEFINE_TILED_ROWS(rows_q5_k, dot_q5_k, tile_q5_k, KP_ACT_Q8_K)
KP_DEFINE_TILED_ROWS(rows_q6_k, dot_q6_k, tile_q6_k, KP_ACT_Q8_K)

#define Q8_0_FAMILY(rows) {kp_quant_work_size_q8_0, kp_quant_prepare_q8_0, rows, kp_quant_dequant_row}
#define Q8_1_FAMILY(rows) {kp_quant_work_size_q8_1, kp_quant_prepare_q8_1, rows, kp_quant_dequant_row}
#define Q8_K_FAMILY(rows) {kp_quant_work_size_q8_k, kp_quant_prepare_q8_k, rows, kp_quant_dequant_row}

static const kp_cpu_wtype table[KP_DTYPE_COUNT] = {
    [KP_DTYPE_Q8_0] = Q8_0_FAMILY(rows_q8_0),
    [KP_DTYPE_Q4_0] = Q8_0_FAMILY(rows_q4_0),
    [KP_DTYPE_Q5_0] = Q8_0_FAMILY(rows_q5_0),
    [KP_DTYPE_Q4_1] = Q8_1_FAMILY(rows_q4_1),
    [KP_DTYPE_Q5_1] = Q8_1_FAMILY(rows_q5_1),
    [KP_DTYPE_Q4_K] = Q8_K_FAMILY(rows_q4_k),
    [KP_DTYPE_Q5_K] = Q8_K_FAMILY(rows_q5_k),
    [KP_DTYPE_Q6_K] = Q8_K_FAMILY(rows_q6_k),
};

const kp_cpu_wtype *KP_QV(kp_quant_get)(kp_dtype t)
{
    return ((unsigned)t < KP_DTYPE_COUNT && table[t].rows) ? &table[t] : NULL;
}
