/* Activation quantization as ggml-cpu performs it on x86 before a quantized matmul, and
 * dequantization of weight rows. The rounding rules matter: llama.cpp's logits move by up to
 * 1e-2 of max |logit| when an activation lands in a different bucket, so each choice below
 * follows ggml's (x86 AVX2 path for Q8_0/Q8_1, the reference path for Q8_K). */
#include <math.h>
#include <string.h>

#include "quant.h"

/* Round to nearest, ties to even: adding 1.5 * 2^23 leaves the integer in the low mantissa bits
 * under the default rounding mode, as _mm256_round_ps(_MM_ROUND_NEAREST) and ggml's
 * nearest_int() do. Valid for |v| < 2^22; callers clamp first. */
static inline int round_even(float v)
{
    float t = v + 12582912.f;
    int32_t i;
    memcpy(&i, &t, 4);
    return (i & 0x007fffff) - 0x00400000;
}

/* Saturates like the packs instructions ggml uses (and maps NaN somewhere harmless). */
static inline int8_t q8_of(float v)
{
    if (!(v > -128.f))
        v = -128.f;
    if (v > 127.f)
        v = 127.f;
    return (int8_t)round_even(v);
}

static inline float f16_round(float x) { return kp_f16_to_f32(kp_f32_to_f16(x)); }

static size_t pad64(size_t n) { return (n + 63) & ~(size_t)63; }

size_t kp_act_row_bytes(kp_act_kind k, int64_t cols)
{
    size_t c = (size_t)cols;
    switch (k) {
    case KP_ACT_Q8_0: return pad64(c + c / KP_QK * 8);
    case KP_ACT_Q8_1: return pad64(c + c / KP_QK * 12);
    case KP_ACT_Q8_K: return pad64(c + c / KP_QKK * (4 + 32));
    }
    return 0;
}

/* Q8_0 (and Q8_1): d = amax/127 stored as F16; values x * (127/amax) rounded to even. Q8_1 adds
 * s = d * sum(q) (with the unrounded d), also stored as F16. */
static void quantize_q8_01(const float *x, int64_t cols, void *row, int with_sum)
{
    int8_t *qs = row;
    float *d = (float *)((uint8_t *)row + cols);
    float *s = d + cols / KP_QK;
    int32_t *isum = (int32_t *)(with_sum ? s + cols / KP_QK : s);
    for (int64_t b = 0; b < cols / KP_QK; b++) {
        const float *xb = x + b * KP_QK;
        float amax = 0.f;
        for (int j = 0; j < KP_QK; j++) {
            float a = fabsf(xb[j]);
            amax = a > amax ? a : amax;
        }
        const float db = amax / 127.f;
        const float id = amax != 0.f ? 127.f / amax : 0.f;
        int sum = 0;
        for (int j = 0; j < KP_QK; j++) {
            int8_t q = q8_of(xb[j] * id);
            qs[b * KP_QK + j] = q;
            sum += q;
        }
        d[b] = f16_round(db);
        isum[b] = sum;
        if (with_sum)
            s[b] = f16_round(db * (float)sum);
    }
}

/* Q8_K: the element of largest magnitude (first one on ties) maps to -127 via
 * iscale = -127/max; d = 1/iscale stays F32; bsums hold sums of 16 consecutive values. */
static void quantize_q8_k(const float *x, int64_t cols, void *row)
{
    int8_t *qs = row;
    float *d = (float *)((uint8_t *)row + cols);
    int16_t *bsums = (int16_t *)(d + cols / KP_QKK);
    for (int64_t b = 0; b < cols / KP_QKK; b++) {
        const float *xb = x + b * KP_QKK;
        int8_t *q = qs + b * KP_QKK;
        float max = 0.f, amax = 0.f;
        for (int j = 0; j < KP_QKK; j++) {
            float a = fabsf(xb[j]);
            if (a > amax) {
                amax = a;
                max = xb[j];
            }
        }
        if (amax == 0.f) {
            d[b] = 0.f;
            memset(q, 0, KP_QKK);
            memset(bsums + b * 16, 0, 16 * sizeof *bsums);
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < KP_QKK; j++)
            q[j] = q8_of(iscale * xb[j]);
        for (int j = 0; j < 16; j++) {
            int sum = 0;
            for (int i = 0; i < 16; i++)
                sum += q[j * 16 + i];
            bsums[b * 16 + j] = (int16_t)sum;
        }
        d[b] = 1.f / iscale;
    }
}

void kp_act_quantize_row(kp_act_kind k, const float *x, int64_t cols, void *row)
{
    switch (k) {
    case KP_ACT_Q8_0: quantize_q8_01(x, cols, row, 0); break;
    case KP_ACT_Q8_1: quantize_q8_01(x, cols, row, 1); break;
    case KP_ACT_Q8_K: quantize_q8_k(x, cols, row); break;
    }
}

int kp_act_kind_for(kp_dtype t)
{
    switch (t) {
    case KP_DTYPE_Q8_0:
    case KP_DTYPE_Q4_0:
    case KP_DTYPE_Q5_0: return KP_ACT_Q8_0;
    case KP_DTYPE_Q4_1:
    case KP_DTYPE_Q5_1: return KP_ACT_Q8_1;
    case KP_DTYPE_Q4_K:
    case KP_DTYPE_Q5_K:
    case KP_DTYPE_Q6_K: return KP_ACT_Q8_K;
    default: return -1;
    }
}

/* ---- kp_cpu_wtype pieces */

size_t kp_quant_work_size_q8_0(int64_t cols, int n) { return kp_act_row_bytes(KP_ACT_Q8_0, cols) * (size_t)n; }
size_t kp_quant_work_size_q8_1(int64_t cols, int n) { return kp_act_row_bytes(KP_ACT_Q8_1, cols) * (size_t)n; }
size_t kp_quant_work_size_q8_k(int64_t cols, int n) { return kp_act_row_bytes(KP_ACT_Q8_K, cols) * (size_t)n; }

static void prepare(kp_act_kind k, void *work, const float *x, int n, int64_t cols)
{
    size_t rb = kp_act_row_bytes(k, cols);
    for (int t = 0; t < n; t++)
        kp_act_quantize_row(k, x + (size_t)t * (size_t)cols, cols, (uint8_t *)work + (size_t)t * rb);
}

void kp_quant_prepare_q8_0(void *work, const float *x, int n, int64_t cols, const kp_tensor *w)
{
    (void)w;
    prepare(KP_ACT_Q8_0, work, x, n, cols);
}

void kp_quant_prepare_q8_1(void *work, const float *x, int n, int64_t cols, const kp_tensor *w)
{
    (void)w;
    prepare(KP_ACT_Q8_1, work, x, n, cols);
}

void kp_quant_prepare_q8_k(void *work, const float *x, int n, int64_t cols, const kp_tensor *w)
{
    (void)w;
    prepare(KP_ACT_Q8_K, work, x, n, cols);
}

/* ---- dequantization, in ggml's operation order */

static float h2f(uint16_t h) { return kp_f16_to_f32(h); }

static void dq_q8_0(const kp_blk_q8_0 *b, int64_t nb, float *y)
{
    for (int64_t i = 0; i < nb; i++, y += KP_QK) {
        const float d = h2f(b[i].d);
        for (int j = 0; j < KP_QK; j++)
            y[j] = b[i].qs[j] * d;
    }
}

static void dq_q4_0(const kp_blk_q4_0 *b, int64_t nb, float *y)
{
    for (int64_t i = 0; i < nb; i++, y += KP_QK) {
        const float d = h2f(b[i].d);
        for (int j = 0; j < 16; j++) {
            y[j] = ((b[i].qs[j] & 0xF) - 8) * d;
            y[j + 16] = ((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

static void dq_q4_1(const kp_blk_q4_1 *b, int64_t nb, float *y)
{
    for (int64_t i = 0; i < nb; i++, y += KP_QK) {
        const float d = h2f(b[i].d), m = h2f(b[i].m);
        for (int j = 0; j < 16; j++) {
            y[j] = (b[i].qs[j] & 0xF) * d + m;
            y[j + 16] = (b[i].qs[j] >> 4) * d + m;
        }
    }
}

static uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void dq_q5_0(const kp_blk_q5_0 *b, int64_t nb, float *y)
{
    for (int64_t i = 0; i < nb; i++, y += KP_QK) {
        const float d = h2f(b[i].d);
        const uint32_t qh = ld32(b[i].qh);
        for (int j = 0; j < 16; j++) {
            const int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
            y[j] = (((b[i].qs[j] & 0xF) | h0) - 16) * d;
            y[j + 16] = (((b[i].qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

static void dq_q5_1(const kp_blk_q5_1 *b, int64_t nb, float *y)
{
    for (int64_t i = 0; i < nb; i++, y += KP_QK) {
        const float d = h2f(b[i].d), m = h2f(b[i].m);
        const uint32_t qh = ld32(b[i].qh);
        for (int j = 0; j < 16; j++) {
            const int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
            y[j] = ((b[i].qs[j] & 0xF) | h0) * d + m;
            y[j + 16] = ((b[i].qs[j] >> 4) | h1) * d + m;
        }
    }
}

static void dq_q4_k(const kp_blk_q4_k *b, int64_t nb, float *y)
{
    for (int64_t i = 0; i < nb; i++) {
        const float d = h2f(b[i].d), dmin = h2f(b[i].dmin);
        const uint8_t *q = b[i].qs;
        for (int c = 0; c < 4; c++, q += 32) {
            int sc, m;
            kp_k4_scale_min(2 * c, b[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            kp_k4_scale_min(2 * c + 1, b[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * (q[l] >> 4) - m2;
        }
    }
}

static void dq_q5_k(const kp_blk_q5_k *b, int64_t nb, float *y)
{
    for (int64_t i = 0; i < nb; i++) {
        const float d = h2f(b[i].d), dmin = h2f(b[i].dmin);
        const uint8_t *ql = b[i].qs, *qh = b[i].qh;
        for (int c = 0; c < 4; c++, ql += 32) {
            int sc, m;
            kp_k4_scale_min(2 * c, b[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            kp_k4_scale_min(2 * c + 1, b[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            const uint8_t u1 = (uint8_t)(1u << (2 * c)), u2 = (uint8_t)(2u << (2 * c));
            for (int l = 0; l < 32; l++)
                *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        }
    }
}

static void dq_q6_k(const kp_blk_q6_k *b, int64_t nb, float *y)
{
    for (int64_t i = 0; i < nb; i++) {
        const float d = h2f(b[i].d);
        const uint8_t *ql = b[i].ql, *qh = b[i].qh;
        const int8_t *sc = b[i].scales;
        for (int h = 0; h < 2; h++, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * sc[is] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
        }
    }
}

void kp_qdequant(kp_dtype t, const void *w, int64_t cols, float *dst)
{
    switch (t) {
    case KP_DTYPE_Q8_0: dq_q8_0(w, cols / KP_QK, dst); break;
    case KP_DTYPE_Q4_0: dq_q4_0(w, cols / KP_QK, dst); break;
    case KP_DTYPE_Q4_1: dq_q4_1(w, cols / KP_QK, dst); break;
    case KP_DTYPE_Q5_0: dq_q5_0(w, cols / KP_QK, dst); break;
    case KP_DTYPE_Q5_1: dq_q5_1(w, cols / KP_QK, dst); break;
    case KP_DTYPE_Q4_K: dq_q4_k(w, cols / KP_QKK, dst); break;
    case KP_DTYPE_Q5_K: dq_q5_k(w, cols / KP_QKK, dst); break;
    case KP_DTYPE_Q6_K: dq_q6_k(w, cols / KP_QKK, dst); break;
    default: memset(dst, 0, (size_t)cols * sizeof *dst); break;
    }
}

void kp_quant_dequant_row(const kp_tensor *w, int64_t row, float *dst)
{
    const int64_t cols = w->ne[0];
    const size_t rb = kp_dtype_row_bytes(w->dtype, cols);
    kp_qdequant(w->dtype, (const uint8_t *)w->data + (size_t)row * rb, cols, dst);
}
