/* Q8_0, Q4_0, Q4_1, Q5_0, Q5_1. Bit-exactness with llama.cpp depends on doing each float
 * operation exactly as its reference does: the scale is a float division, the inverse scale a
 * float reciprocal (0 for an all-zero block), each product rounded to float before the offset
 * is added, and the quantized value truncated toward zero. Separate statements keep compilers
 * from fusing the multiply and the add. */
#include <math.h>
#include <string.h>

#include "../tensor.h"
#include "../../backends/cpu/quant/quant.h"
#include "quantize.h"

/* The signed value of largest magnitude (the first one on ties). */
static float signed_absmax(const float *x)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < KP_QK; j++) {
        const float v = x[j];
        if (amax < fabsf(v)) {
            amax = fabsf(v);
            max = v;
        }
    }
    return max;
}

static void min_max(const float *x, float *mn, float *mx)
{
    float lo = x[0], hi = x[0];
    for (int j = 1; j < KP_QK; j++) {
        if (x[j] < lo)
            lo = x[j];
        if (x[j] > hi)
            hi = x[j];
    }
    *mn = lo;
    *mx = hi;
}

/* roundf: halves away from zero, as C's roundf (not the current rounding mode). */
void kp_quantize_row_q8_0(const float *x, int64_t n, void *dst)
{
    kp_blk_q8_0 *y = dst;
    for (int64_t i = 0; i < n / KP_QK; i++, x += KP_QK) {
        float amax = 0.0f;
        for (int j = 0; j < KP_QK; j++)
            amax = fmaxf(amax, fabsf(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = kp_f32_to_f16(d);
        for (int j = 0; j < KP_QK; j++) {
            const float v = x[j] * id;
            y[i].qs[j] = (int8_t)roundf(v);
        }
    }
}

/* ggml's rounding for the 4- and 5-bit blocks: add the offset (with +0.5), truncate through an
 * int8, clamp at the top code. */
static inline int code(float v, float offset, int top)
{
    const int q = (int8_t)(v + offset);
    return q < top ? q : top;
}

void kp_quantize_row_q4_0(const float *x, int64_t n, void *dst)
{
    kp_blk_q4_0 *y = dst;
    for (int64_t i = 0; i < n / KP_QK; i++, x += KP_QK) {
        const float d = signed_absmax(x) / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = kp_f32_to_f16(d);
        for (int j = 0; j < 16; j++) {
            const float x0 = x[j] * id, x1 = x[j + 16] * id;
            const int q0 = code(x0, 8.5f, 15), q1 = code(x1, 8.5f, 15);
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

void kp_quantize_row_q4_1(const float *x, int64_t n, void *dst)
{
    kp_blk_q4_1 *y = dst;
    for (int64_t i = 0; i < n / KP_QK; i++, x += KP_QK) {
        float mn, mx;
        min_max(x, &mn, &mx);
        const float d = (mx - mn) / 15.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = kp_f32_to_f16(d);
        y[i].m = kp_f32_to_f16(mn);
        for (int j = 0; j < 16; j++) {
            const float x0 = (x[j] - mn) * id, x1 = (x[j + 16] - mn) * id;
            const int q0 = code(x0, 0.5f, 15), q1 = code(x1, 0.5f, 15);
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

void kp_quantize_row_q5_0(const float *x, int64_t n, void *dst)
{
    kp_blk_q5_0 *y = dst;
    for (int64_t i = 0; i < n / KP_QK; i++, x += KP_QK) {
        const float d = signed_absmax(x) / -16.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = kp_f32_to_f16(d);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            const float x0 = x[j] * id, x1 = x[j + 16] * id;
            const int q0 = code(x0, 16.5f, 31), q1 = code(x1, 16.5f, 31);
            y[i].qs[j] = (uint8_t)((q0 & 0xF) | ((q1 & 0xF) << 4));
            qh |= (uint32_t)((q0 >> 4) & 1) << j;
            qh |= (uint32_t)((q1 >> 4) & 1) << (j + 16);
        }
        put32(y[i].qh, qh);
    }
}

void kp_quantize_row_q5_1(const float *x, int64_t n, void *dst)
{
    kp_blk_q5_1 *y = dst;
    for (int64_t i = 0; i < n / KP_QK; i++, x += KP_QK) {
        float mn, mx;
        min_max(x, &mn, &mx);
        const float d = (mx - mn) / 31.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = kp_f32_to_f16(d);
        y[i].m = kp_f32_to_f16(mn);
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            const float x0 = (x[j] - mn) * id, x1 = (x[j + 16] - mn) * id;
            const float s0 = x0 + 0.5f, s1 = x1 + 0.5f;
            int q0 = (uint8_t)s0, q1 = (uint8_t)s1;
            q0 = q0 < 31 ? q0 : 31;
            q1 = q1 < 31 ? q1 : 31;
            y[i].qs[j] = (uint8_t)((q0 & 0xF) | ((q1 & 0xF) << 4));
            qh |= (uint32_t)((q0 >> 4) & 1) << j;
            qh |= (uint32_t)((q1 >> 4) & 1) << (j + 16);
        }
        put32(y[i].qh, qh);
    }
}
