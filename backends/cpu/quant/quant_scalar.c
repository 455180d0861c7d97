/* Scalar reference dot products of GGUF weight blocks with quantized activations: the
 * definition every SIMD variant is tested against. Integer sums per block are exact; the float
 * combination follows ggml (block scale product times the integer sum, mins subtracted per
 * super-block). */
#include <string.h>

#include "quant.h"

static float h2f(uint16_t h) { return kp_f16_to_f32(h); }

static uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

float kp_qdot_q8_0_scalar(const void *w, const void *act, int64_t cols)
{
    const kp_blk_q8_0 *x = w;
    const int8_t *q = act;
    const float *d = kp_act_d(act, cols);
    float sum = 0.f;
    for (int64_t b = 0; b < cols / KP_QK; b++, q += KP_QK) {
        int s = 0;
        for (int j = 0; j < KP_QK; j++)
            s += x[b].qs[j] * q[j];
        sum += (float)s * (h2f(x[b].d) * d[b]);
    }
    return sum;
}

float kp_qdot_q4_0_scalar(const void *w, const void *act, int64_t cols)
{
    const kp_blk_q4_0 *x = w;
    const int8_t *q = act;
    const float *d = kp_act_d(act, cols);
    float sum = 0.f;
    for (int64_t b = 0; b < cols / KP_QK; b++, q += KP_QK) {
        int s = 0;
        for (int j = 0; j < 16; j++)
            s += ((x[b].qs[j] & 0xF) - 8) * q[j] + ((x[b].qs[j] >> 4) - 8) * q[j + 16];
        sum += (float)s * (h2f(x[b].d) * d[b]);
    }
    return sum;
}

float kp_qdot_q4_1_scalar(const void *w, const void *act, int64_t cols)
{
    const kp_blk_q4_1 *x = w;
    const int8_t *q = act;
    const float *d = kp_act_d(act, cols), *s8 = kp_act_s(act, cols);
    float sum = 0.f;
    for (int64_t b = 0; b < cols / KP_QK; b++, q += KP_QK) {
        int s = 0;
        for (int j = 0; j < 16; j++)
            s += (x[b].qs[j] & 0xF) * q[j] + (x[b].qs[j] >> 4) * q[j + 16];
        sum += (h2f(x[b].d) * d[b]) * (float)s + h2f(x[b].m) * s8[b];
    }
    return sum;
}

float kp_qdot_q5_0_scalar(const void *w, const void *act, int64_t cols)
{
    const kp_blk_q5_0 *x = w;
    const int8_t *q = act;
    const float *d = kp_act_d(act, cols);
    float sum = 0.f;
    for (int64_t b = 0; b < cols / KP_QK; b++, q += KP_QK) {
        const uint32_t qh = ld32(x[b].qh);
        int s = 0;
        for (int j = 0; j < 16; j++) {
            const int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
            s += (((x[b].qs[j] & 0xF) | h0) - 16) * q[j] + (((x[b].qs[j] >> 4) | h1) - 16) * q[j + 16];
        }
        sum += (float)s * (h2f(x[b].d) * d[b]);
    }
    return sum;
}

float kp_qdot_q5_1_scalar(const void *w, const void *act, int64_t cols)
{
    const kp_blk_q5_1 *x = w;
    const int8_t *q = act;
    const float *d = kp_act_d(act, cols), *s8 = kp_act_s(act, cols);
    float sum = 0.f;
    for (int64_t b = 0; b < cols / KP_QK; b++, q += KP_QK) {
        const uint32_t qh = ld32(x[b].qh);
        int s = 0;
        for (int j = 0; j < 16; j++) {
            const int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
            s += ((x[b].qs[j] & 0xF) | h0) * q[j] + ((x[b].qs[j] >> 4) | h1) * q[j + 16];
        }
        sum += (h2f(x[b].d) * d[b]) * (float)s + h2f(x[b].m) * s8[b];
    }
    return sum;
}

float kp_qdot_q4_k_scalar(const void *w, const void *act, int64_t cols)
{
    const kp_blk_q4_k *x = w;
    const int8_t *q8 = act;
    const float *d8 = kp_act_d(act, cols);
    const int16_t *bs = kp_act_bsums(act, cols);
    float sum = 0.f;
    for (int64_t b = 0; b < cols / KP_QKK; b++, q8 += KP_QKK, bs += 16) {
        const uint8_t *q = x[b].qs;
        int sumi = 0, summ = 0;
        for (int c = 0; c < 4; c++, q += 32) {
            int sc0, m0, sc1, m1;
            kp_k4_scale_min(2 * c, x[b].scales, &sc0, &m0);
            kp_k4_scale_min(2 * c + 1, x[b].scales, &sc1, &m1);
            int s0 = 0, s1 = 0;
            for (int l = 0; l < 32; l++) {
                s0 += (q[l] & 0xF) * q8[64 * c + l];
                s1 += (q[l] >> 4) * q8[64 * c + 32 + l];
            }
            sumi += sc0 * s0 + sc1 * s1;
            summ += m0 * (bs[4 * c] + bs[4 * c + 1]) + m1 * (bs[4 * c + 2] + bs[4 * c + 3]);
        }
        sum += (h2f(x[b].d) * d8[b]) * (float)sumi - (h2f(x[b].dmin) * d8[b]) * (float)summ;
    }
    return sum;
}

float kp_qdot_q5_k_scalar(const void *w, const void *act, int64_t cols)
{
    const kp_blk_q5_k *x = w;
    const int8_t *q8 = act;
    const float *d8 = kp_act_d(act, cols);
    const int16_t *bs = kp_act_bsums(act, cols);
    float sum = 0.f;
    for (int64_t b = 0; b < cols / KP_QKK; b++, q8 += KP_QKK, bs += 16) {
        const uint8_t *q = x[b].qs, *qh = x[b].qh;
        int sumi = 0, summ = 0;
        for (int c = 0; c < 4; c++, q += 32) {
            int sc0, m0, sc1, m1;
            kp_k4_scale_min(2 * c, x[b].scales, &sc0, &m0);
            kp_k4_scale_min(2 * c + 1, x[b].scales, &sc1, &m1);
            int s0 = 0, s1 = 0;
            for (int l = 0; l < 32; l++) {
                s0 += ((q[l] & 0xF) | (((qh[l] >> (2 * c)) & 1) << 4)) * q8[64 * c + l];
                s1 += ((q[l] >> 4) | (((qh[l] >> (2 * c + 1)) & 1) << 4)) * q8[64 * c + 32 + l];
            }
            sumi += sc0 * s0 + sc1 * s1;
            summ += m0 * (bs[4 * c] + bs[4 * c + 1]) + m1 * (bs[4 * c + 2] + bs[4 * c + 3]);
        }
        sum += (h2f(x[b].d) * d8[b]) * (float)sumi - (h2f(x[b].dmin) * d8[b]) * (float)summ;
    }
    return sum;
}

float kp_qdot_q6_k_scalar(const void *w, const void *act, int64_t cols)
{
    const kp_blk_q6_k *x = w;
    const int8_t *q8 = act;
    const float *d8 = kp_act_d(act, cols);
    float sum = 0.f;
    for (int64_t b = 0; b < cols / KP_QKK; b++, q8 += KP_QKK) {
        const uint8_t *ql = x[b].ql, *qh = x[b].qh;
        int sub[16] = {0}; /* per 16-element group: sum of (q6 - 32) * q8 */
        for (int h = 0; h < 2; h++, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                const int e = 128 * h + l;
                sub[e / 16] += q1 * q8[e];
                sub[(e + 32) / 16] += q2 * q8[e + 32];
                sub[(e + 64) / 16] += q3 * q8[e + 64];
                sub[(e + 96) / 16] += q4 * q8[e + 96];
            }
        }
        int sumi = 0;
        for (int j = 0; j < 16; j++)
            sumi += x[b].scales[j] * sub[j];
        sum += (h2f(x[b].d) * d8[b]) * (float)sumi;
    }
    return sum;
}

KP_QUANT_DEFINE_ROWS(rows_q8_0, kp_qdot_q8_0_scalar, KP_ACT_Q8_0)
KP_QUANT_DEFINE_ROWS(rows_q4_0, kp_qdot_q4_0_scalar, KP_ACT_Q8_0)
KP_QUANT_DEFINE_ROWS(rows_q5_0, kp_qdot_q5_0_scalar, KP_ACT_Q8_0)
KP_QUANT_DEFINE_ROWS(rows_q4_1, kp_qdot_q4_1_scalar, KP_ACT_Q8_1)
KP_QUANT_DEFINE_ROWS(rows_q5_1, kp_qdot_q5_1_scalar, KP_ACT_Q8_1)
KP_QUANT_DEFINE_ROWS(rows_q4_k, kp_qdot_q4_k_scalar, KP_ACT_Q8_K)
KP_QUANT_DEFINE_ROWS(rows_q5_k, kp_qdot_q5_k_scalar, KP_ACT_Q8_K)
KP_QUANT_DEFINE_ROWS(rows_q6_k, kp_qdot_q6_k_scalar, KP_ACT_Q8_K)

#define Q8_0_FAMILY(rows) {kp_quant_work_size_q8_0, kp_quant_prepare_q8_0, rows, kp_quant_dequant_row}
#define Q8_1_FAMILY(rows) {kp_quant_work_size_q8_1, kp_quant_prepare_q8_1, rows, kp_quant_dequant_row}
#define Q8_K_FAMILY(rows) {kp_quant_work_size_q8_k, kp_quant_prepare_q8_k, rows, kp_quant_dequant_row}

static const kp_cpu_wtype scalar_table[KP_DTYPE_COUNT] = {
    [KP_DTYPE_Q8_0] = Q8_0_FAMILY(rows_q8_0),
    [KP_DTYPE_Q4_0] = Q8_0_FAMILY(rows_q4_0),
    [KP_DTYPE_Q5_0] = Q8_0_FAMILY(rows_q5_0),
    [KP_DTYPE_Q4_1] = Q8_1_FAMILY(rows_q4_1),
    [KP_DTYPE_Q5_1] = Q8_1_FAMILY(rows_q5_1),
    [KP_DTYPE_Q4_K] = Q8_K_FAMILY(rows_q4_k),
    [KP_DTYPE_Q5_K] = Q8_K_FAMILY(rows_q5_k),
    [KP_DTYPE_Q6_K] = Q8_K_FAMILY(rows_q6_k),
};

const kp_cpu_wtype *kp_quant_scalar_get(kp_dtype t)
{
    return ((unsigned)t < KP_DTYPE_COUNT && scalar_table[t].rows) ? &scalar_table[t] : NULL;
}
