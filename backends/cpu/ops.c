/* Scalar float kernels with llama2.c's arithmetic (run.c: rmsnorm, RoPE, SwiGLU), and
 * the scalar attention primitives. Kept in plain C on purpose: these ops are a small share of
 * the time, and matching the reference bit for bit keeps end-to-end comparisons tight. */
#include <math.h>
#include <string.h>

#include "simd.h"
#include "../../lib/vecmath.h"

void kp_cpu_rmsnorm_row(float *out, const float *x, const float *w, int dim, float eps)
{
    float ss = 0.0f;
    for (int i = 0; i < dim; i++)
        ss += x[i] * x[i];
    ss /= (float)dim;
    ss += eps;
    ss = 1.0f / sqrtf(ss);
    for (int i = 0; i < dim; i++)
        out[i] = w[i] * (ss * x[i]);
}

static float rope_freq(int i, int head_dim, float theta, const float *freq_factors)
{
    float freq = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
    return freq_factors ? freq / freq_factors[i] : freq;
}

/* The frequencies of the last (theta, head_dim, factors) this thread used, and the cosines and
 * sines of the last few single positions: a batched decode step ropes q and k of one row per
 * session in every layer, and a powf and a sincosf per pair and call were 2-3% of the step, all
 * serial. The factors are compared by value (a freed model's address may come back with other
 * factors). Same expressions, so the same floats. */
#define ROPE_MAX_HALF 256
#define ROPE_SLOTS 16 /* positions, direct-mapped */
static _Thread_local struct {
    float theta;
    int head_dim, has_factors;
    float factors[ROPE_MAX_HALF], freq[ROPE_MAX_HALF];
    int32_t pos1[ROPE_SLOTS]; /* position + 1; 0: empty */
    float cs[ROPE_SLOTS][2][ROPE_MAX_HALF];
} rope_memo;

static const float *rope_freqs(int head_dim, float theta, const float *freq_factors)
{
    const int half = head_dim / 2;
    if (half > ROPE_MAX_HALF)
        return NULL;
    if (rope_memo.head_dim != head_dim || rope_memo.theta != theta || rope_memo.has_factors != !!freq_factors ||
        (freq_factors && memcmp(rope_memo.factors, freq_factors, (size_t)half * sizeof *freq_factors))) {
        for (int i = 0; i < half; i++)
            rope_memo.freq[i] = rope_freq(i, head_dim, theta, freq_factors);
        if (freq_factors)
            memcpy(rope_memo.factors, freq_factors, (size_t)half * sizeof *freq_factors);
        rope_memo.theta = theta;
        rope_memo.head_dim = head_dim;
        rope_memo.has_factors = freq_factors != NULL;
        memset(rope_memo.pos1, 0, sizeof rope_memo.pos1);
    }
    return rope_memo.freq;
}

static void rope_angles(int half, const float *fr, int head_dim, float theta, const float *freq_factors,
                        int32_t p, float *c, float *s)
{
    const float pos = (float)p;
    for (int i = 0; i < half; i++) {
        const float val = pos * (fr ? fr[i] : rope_freq(i, head_dim, theta, freq_factors));
        c[i] = cosf(val);
        s[i] = sinf(val);
    }
}

void kp_cpu_rope(float *x, int n, int n_heads, int head_dim, int32_t pos0, float theta,
                 const float *freq_factors, kp_rope_style style)
{
    const int half = head_dim / 2;
    /* NORM pairs (2i, 2i+1); NEOX pairs (i, i + half). Both use frequency index i. */
    const int step = style == KP_ROPE_NEOX ? 1 : 2, other = style == KP_ROPE_NEOX ? half : 1;
    const float *fr = rope_freqs(head_dim, theta, freq_factors);
    float cbuf[ROPE_MAX_HALF], sbuf[ROPE_MAX_HALF];
    for (int t = 0; t < n; t++) {
        float *row = x + (int64_t)t * n_heads * head_dim;
        const int32_t p = pos0 + t;
        const float *c = cbuf, *s = sbuf;
        if (fr && n == 1 && p >= 0) { /* a decode row: likely seen by the layer before */
            const int k = p % ROPE_SLOTS;
            if (rope_memo.pos1[k] != p + 1) {
                rope_angles(half, fr, head_dim, theta, freq_factors, p, rope_memo.cs[k][0], rope_memo.cs[k][1]);
                rope_memo.pos1[k] = p + 1;
            }
            c = rope_memo.cs[k][0], s = rope_memo.cs[k][1];
        } else if (fr) {
            rope_angles(half, fr, head_dim, theta, freq_factors, p, cbuf, sbuf);
        }
        for (int i = 0; i < half; i++) {
            float fcr, fci;
            if (fr) {
                fcr = c[i], fci = s[i];
            } else { /* a head too wide for the tables */
                const float val = (float)p * rope_freq(i, head_dim, theta, freq_factors);
                fcr = cosf(val), fci = sinf(val);
            }
            for (int h = 0; h < n_heads; h++) {
                float *v = row + h * head_dim + i * step;
                const float v0 = v[0], v1 = v[other];
                v[0] = v0 * fcr - v1 * fci;
                v[other] = v0 * fci + v1 * fcr;
            }
        }
    }
}

void kp_cpu_swiglu(float *out, const float *g, const float *up, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        float val = g[i];
        val *= 1.0f / (1.0f + expf(-val));
        out[i] = val * up[i];
    }
}

/* ---- scalar attention loops: in-order float sums, as run.c */

static float elem(const void *p, int64_t i, int f16)
{
    return f16 ? kp_f16_to_f32(((const uint16_t *)p)[i]) : ((const float *)p)[i];
}

static void scores(float *att, const float *q, const void *k, int64_t stride, int np, int hd,
                   float scale, int f16)
{
    for (int p = 0; p < np; p++) {
        float s = 0.0f;
        for (int i = 0; i < hd; i++)
            s += q[i] * elem(k, p * stride + i, f16);
        att[p] = s * scale;
    }
}

static void wsum(float *out, const float *att, const void *v, int64_t stride, int np, int hd,
                 int f16, int accumulate)
{
    for (int i = 0; i < hd && !accumulate; i++)
        out[i] = 0.0f;
    for (int p = 0; p < np; p++)
        for (int i = 0; i < hd; i++)
            out[i] += att[p] * elem(v, p * stride + i, f16);
}

static void to_f16(uint16_t *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = kp_f32_to_f16(src[i]);
}

static const kp_cpu_vec vec_scalar = {scores, wsum, kp_softmax_f32, to_f16};

const kp_cpu_vec *kp_cpu_vec_get(kp_isa isa)
{
    kp_isa hw = kp_cpu_isa_detected();
    if ((int)isa > (int)hw)
        isa = hw;
#if defined(KP_CPU_X86)
    if (isa >= KP_ISA_AVX512)
        return &kp_cpu_vec_avx512;
    if (isa >= KP_ISA_AVX2)
        return &kp_cpu_vec_avx2;
#endif
    return &vec_scalar;
}
