/* Q4_K, Q5_K and Q6_K. Each sub-block gets the scale (and, for Q4_K/Q5_K, the min) that
 * minimises the weighted squared error over a sweep of candidate scales, each candidate's
 * integer levels refitted by least squares; the winners are then expressed as 6-bit (8-bit for
 * Q6_K) multiples of one F16 super-block scale and every value is re-quantized with the scale
 * it will actually be read back with. The weights favour large values, which carry most of a
 * matrix product. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "../tensor.h"
#include "../../backends/cpu/quant/quant.h"
#include "quantize.h"

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }
static int near_int(float v) { return (int)lrintf(v); }

/* ---- x ~ s*q + b with q in [0, nmax], s >= 0, b <= 0 (the "min" is -b) */

static float affine_err(const float *x, const float *w, const uint8_t *q, int n, float s, float b)
{
    float e = 0;
    for (int i = 0; i < n; i++) {
        const float r = s * q[i] + b - x[i];
        e += w[i] * r * r;
    }
    return e;
}

/* Least-squares s and b for fixed levels q (b clipped to <= 0). */
static void affine_lsq(const float *x, const float *w, const uint8_t *q, int n, float *s, float *b)
{
    double sw = 0, sq = 0, sqq = 0, sx = 0, sqx = 0;
    for (int i = 0; i < n; i++) {
        sw += w[i];
        sq += w[i] * q[i];
        sqq += (double)w[i] * q[i] * q[i];
        sx += w[i] * x[i];
        sqx += (double)w[i] * q[i] * x[i];
    }
    const double det = sw * sqq - sq * sq;
    double ss = 0, bb = 0;
    if (det > 0) {
        ss = (sw * sqx - sq * sx) / det;
        bb = (sqq * sx - sq * sqx) / det;
    }
    if (bb > 0 || det <= 0) {
        bb = 0;
        ss = sqq > 0 ? sqx / sqq : 0;
    }
    if (ss < 0)
        ss = 0;
    *s = (float)ss;
    *b = (float)bb;
}

static void affine_levels(const float *x, int n, int nmax, float s, float b, uint8_t *q)
{
    const float is = s > 0 ? 1.0f / s : 0.0f;
    for (int i = 0; i < n; i++)
        q[i] = (uint8_t)clampi(near_int((x[i] - b) * is), 0, nmax);
}

static void fit_affine(const float *x, const float *w, int n, int nmax, float *s_out, float *m_out)
{
    float mn = x[0], mx = x[0];
    for (int i = 1; i < n; i++) {
        mn = fminf(mn, x[i]);
        mx = fmaxf(mx, x[i]);
    }
    if (mn > 0)
        mn = 0;
    if (mx <= mn) {
        *s_out = 0;
        *m_out = -mn;
        return;
    }
    uint8_t q[32], bq[32];
    float best = FLT_MAX, bs = 0, bb = mn;
    for (int k = -20; k <= 20; k++) {
        const float is = ((float)nmax + 0.05f * (float)k) / (mx - mn);
        for (int i = 0; i < n; i++)
            q[i] = (uint8_t)clampi(near_int((x[i] - mn) * is), 0, nmax);
        float s, b;
        affine_lsq(x, w, q, n, &s, &b);
        const float e = affine_err(x, w, q, n, s, b);
        if (e < best) {
            best = e;
            bs = s;
            bb = b;
            memcpy(bq, q, (size_t)n);
        }
    }
    /* a few rounds of requantize-and-refit from the best candidate */
    for (int it = 0; it < 3 && bs > 0; it++) {
        float s, b;
        affine_levels(x, n, nmax, bs, bb, q);
        affine_lsq(x, w, q, n, &s, &b);
        const float e = affine_err(x, w, q, n, s, b);
        if (!(e < best))
            break;
        best = e;
        bs = s;
        bb = b;
    }
    *s_out = bs;
    *m_out = -bb;
}

/* Packs sub-block j's 6-bit scale and min the way kp_k4_scale_min unpacks them. */
static void k4_put(uint8_t *s, int j, int sc, int m)
{
    if (j < 4) {
        s[j] = (uint8_t)((s[j] & 0xC0) | sc);
        s[j + 4] = (uint8_t)((s[j + 4] & 0xC0) | m);
    } else {
        s[j + 4] = (uint8_t)((sc & 0xF) | ((m & 0xF) << 4));
        s[j - 4] = (uint8_t)(s[j - 4] | ((sc >> 4) << 6));
        s[j] = (uint8_t)(s[j] | ((m >> 4) << 6));
    }
}

/* Error of sub-block j (32 values) read back as D*q - M with the best levels for D, M. */
static float sub_err(const float *x, const float *w, int nmax, float D, float M, uint8_t *q)
{
    float e = 0;
    for (int i = 0; i < 32; i++) {
        q[i] = D > 0 ? (uint8_t)clampi(near_int((x[i] + M) / D), 0, nmax) : 0;
        const float r = D * q[i] - M - x[i];
        e += w[i] * r * r;
    }
    return e;
}

/* For F16 super-scales d and dmin: each sub-block's 6-bit scale and min, chosen among the
 * neighbours of the rounded ideal values, and the levels. Returns the total error. */
static float k_assign(const float *x, const float *w, int nmax, const float *s, const float *m, float d, float dmin,
                      int *sc, int *mm, uint8_t *L)
{
    float tot = 0;
    uint8_t q[32];
    for (int j = 0; j < 8; j++) {
        const int s0 = d > 0 ? clampi(near_int(s[j] / d), 0, 63) : 0;
        const int m0 = dmin > 0 ? clampi(near_int(m[j] / dmin), 0, 63) : 0;
        float best = FLT_MAX;
        for (int a = s0 - 1; a <= s0 + 1; a++)
            for (int b = m0 - 1; b <= m0 + 1; b++) {
                if (a < 0 || a > 63 || b < 0 || b > 63 || (b && dmin <= 0))
                    continue;
                const float e = sub_err(x + 32 * j, w + 32 * j, nmax, d * (float)a, dmin * (float)b, q);
                if (e < best) {
                    best = e;
                    sc[j] = a;
                    mm[j] = b;
                    memcpy(L + 32 * j, q, 32);
                }
            }
        tot += best;
    }
    return tot;
}

/* Shared by Q4_K (nmax 15) and Q5_K (nmax 31): levels L[256], d, dmin and scales. After the
 * per-sub-block fit, d and dmin are refitted jointly by least squares over the whole
 * super-block with the integer scales and levels fixed, and the assignment repeated. */
static void k_affine_block(const float *x, int nmax, uint8_t *L, uint16_t *d16, uint16_t *dmin16,
                           uint8_t *scales)
{
    float w[256], s[8], m[8];
    float sum2 = 0;
    for (int i = 0; i < 256; i++)
        sum2 += x[i] * x[i];
    const float av = sqrtf(sum2 / 256);
    for (int i = 0; i < 256; i++)
        w[i] = av + fabsf(x[i]);
    float max_s = 0, max_m = 0;
    for (int j = 0; j < 8; j++) {
        fit_affine(x + 32 * j, w + 32 * j, 32, nmax, &s[j], &m[j]);
        max_s = fmaxf(max_s, s[j]);
        max_m = fmaxf(max_m, m[j]);
    }
    uint16_t hd = kp_f32_to_f16(max_s / 63), hm = kp_f32_to_f16(max_m / 63);
    int sc[8], mm[8], bsc[8], bmm[8];
    uint8_t Lt[256];
    float best = k_assign(x, w, nmax, s, m, kp_f16_to_f32(hd), kp_f16_to_f32(hm), bsc, bmm, L);
    *d16 = hd;
    *dmin16 = hm;
    memcpy(sc, bsc, sizeof sc);
    memcpy(mm, bmm, sizeof mm);
    memcpy(Lt, L, 256);
    for (int it = 0; it < 2; it++) {
        /* x ~ d*A - dmin*B with A = sc*q, B = mm */
        double aa = 0, ab = 0, bb = 0, ax = 0, bx = 0;
        for (int i = 0; i < 256; i++) {
            const double A = (double)sc[i / 32] * Lt[i], B = mm[i / 32];
            aa += w[i] * A * A;
            ab += w[i] * A * B;
            bb += w[i] * B * B;
            ax += w[i] * A * x[i];
            bx += w[i] * B * x[i];
        }
        const double det = aa * bb - ab * ab;
        double nd, nm;
        if (bb > 0 && det > 1e-30 * aa * bb) {
            nd = (ax * bb - ab * bx) / det;
            nm = (ax * ab - aa * bx) / det;
        } else {
            nd = aa > 0 ? ax / aa : 0;
            nm = 0;
        }
        if (!(nd > 0) || nm < 0)
            break;
        hd = kp_f32_to_f16((float)nd);
        hm = kp_f32_to_f16((float)nm);
        /* the ideal per-sub-block values stay the reference for the neighbour search */
        const float e = k_assign(x, w, nmax, s, m, kp_f16_to_f32(hd), kp_f16_to_f32(hm), sc, mm, Lt);
        if (!(e < best))
            break;
        best = e;
        *d16 = hd;
        *dmin16 = hm;
        memcpy(bsc, sc, sizeof bsc);
        memcpy(bmm, mm, sizeof bmm);
        memcpy(L, Lt, 256);
    }
    memset(scales, 0, 12);
    for (int j = 0; j < 8; j++)
        k4_put(scales, j, bsc[j], bmm[j]);
}

void kp_quantize_row_q4_k(const float *x, int64_t n, void *dst)
{
    kp_blk_q4_k *y = dst;
    uint8_t L[256];
    for (int64_t b = 0; b < n / KP_QKK; b++, x += KP_QKK) {
        k_affine_block(x, 15, L, &y[b].d, &y[b].dmin, y[b].scales);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
                y[b].qs[32 * c + l] = (uint8_t)(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
    }
}

void kp_quantize_row_q5_k(const float *x, int64_t n, void *dst)
{
    kp_blk_q5_k *y = dst;
    uint8_t L[256];
    for (int64_t b = 0; b < n / KP_QKK; b++, x += KP_QKK) {
        k_affine_block(x, 31, L, &y[b].d, &y[b].dmin, y[b].scales);
        memset(y[b].qh, 0, sizeof y[b].qh);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                const int lo = L[64 * c + l], hi = L[64 * c + 32 + l];
                y[b].qs[32 * c + l] = (uint8_t)((lo & 0xF) | ((hi & 0xF) << 4));
                y[b].qh[l] |= (uint8_t)(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
            }
    }
}

/* ---- Q6_K: x ~ s*q with q in [-32, 31] over sub-blocks of 16 */

static float sym_fit(const float *x, const float *w, int n, int8_t *q_out)
{
    float amax = 0, vmax = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            vmax = x[i];
        }
    if (amax == 0) {
        memset(q_out, 0, (size_t)n);
        return 0;
    }
    float best = FLT_MAX, bs = 0;
    int8_t q[16];
    for (int side = 0; side < 2; side++)
        for (int k = -10; k <= 10; k++) {
            /* side 0 maps the extreme value to -32, side 1 to +31 */
            const float is = side == 0 ? -(32.0f + 0.1f * (float)k) / vmax : (31.0f + 0.1f * (float)k) / vmax;
            double sxq = 0, sqq = 0;
            for (int i = 0; i < n; i++) {
                q[i] = (int8_t)clampi(near_int(x[i] * is), -32, 31);
                sxq += (double)w[i] * x[i] * q[i];
                sqq += (double)w[i] * q[i] * q[i];
            }
            if (sqq <= 0)
                continue;
            const float s = (float)(sxq / sqq);
            float e = 0;
            for (int i = 0; i < n; i++) {
                const float r = s * q[i] - x[i];
                e += w[i] * r * r;
            }
            if (e < best) {
                best = e;
                bs = s;
            }
        }
    return bs;
}

void kp_quantize_row_q6_k(const float *x, int64_t n, void *dst)
{
    kp_blk_q6_k *y = dst;
    for (int64_t b = 0; b < n / KP_QKK; b++, x += KP_QKK) {
        float w[256], s[16];
        int8_t L[256];
        for (int i = 0; i < 256; i++)
            w[i] = x[i] * x[i];
        float smax = 0, sabs = 0;
        for (int j = 0; j < 16; j++) {
            s[j] = sym_fit(x + 16 * j, w + 16 * j, 16, L + 16 * j);
            if (fabsf(s[j]) > sabs) {
                sabs = fabsf(s[j]);
                smax = s[j];
            }
        }
        y[b].d = kp_f32_to_f16(smax / -128);
        const float d = kp_f16_to_f32(y[b].d);
        for (int j = 0; j < 16; j++) {
            const int sc = d != 0 ? clampi(near_int(s[j] / d), -128, 127) : 0;
            y[b].scales[j] = (int8_t)sc;
            const float D = d * (float)sc;
            for (int i = 0; i < 16; i++)
                L[16 * j + i] = (int8_t)(D != 0 ? clampi(near_int(x[16 * j + i] / D), -32, 31) : 0);
        }
        memset(y[b].qh, 0, sizeof y[b].qh);
        for (int h = 0; h < 2; h++) {
            uint8_t *ql = y[b].ql + 64 * h, *qh = y[b].qh + 32 * h;
            const int8_t *Lh = L + 128 * h;
            for (int l = 0; l < 32; l++) {
                const int q1 = Lh[l] + 32, q2 = Lh[l + 32] + 32, q3 = Lh[l + 64] + 32, q4 = Lh[l + 96] + 32;
                ql[l] = (uint8_t)((q1 & 0xF) | ((q3 & 0xF) << 4));
                ql[l + 32] = (uint8_t)((q2 & 0xF) | ((q4 & 0xF) << 4));
                qh[l] = (uint8_t)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
        }
    }
}
