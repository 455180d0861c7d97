/* The row-wise ops (rmsnorm, RoPE, SwiGLU, softmax, argmax, adds, embedding, KV store) against
 * double-precision references written here from their definitions. Tolerances are rounding
 * bounds worked out next to each check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ops_test.h"
#include "lib/kv_rows.h"

static const int DIMS[] = {1, 3, 17, 64, 172, 255, 4097};

static void test_rmsnorm(void **state)
{
    (void)state;
    test_rng rng = {11};
    kp_backend *be = new_backend(2);
    for (size_t di = 0; di < sizeof DIMS / sizeof *DIMS; di++) {
        const int dim = DIMS[di], n = 3;
        const float eps = 1e-5f;
        float *x = xmalloc((size_t)(n * dim) * 4), *w = xmalloc((size_t)dim * 4);
        float *out = xmalloc((size_t)(n * dim) * 4), *inplace = xmalloc((size_t)(n * dim) * 4);
        fill_gauss(&rng, x, (size_t)(n * dim), 2.0f);
        fill_gauss(&rng, w, (size_t)dim, 1.0f);
        memcpy(inplace, x, (size_t)(n * dim) * 4);
        be->ops->rmsnorm(be, out, x, w, n, dim, eps);
        be->ops->rmsnorm(be, inplace, inplace, w, n, dim, eps);
        assert_memory_equal(out, inplace, (size_t)(n * dim) * 4);
        for (int t = 0; t < n; t++) {
            double ss = 0;
            for (int i = 0; i < dim; i++)
                ss += (double)x[t * dim + i] * x[t * dim + i];
            double inv = 1.0 / sqrt(ss / dim + eps);
            for (int i = 0; i < dim; i++) {
                double ref = w[i] * (inv * x[t * dim + i]);
                /* The float sum of dim positive squares is within dim*u relatively; the
                 * divide, add, sqrt, reciprocal and two products add about 6u. */
                double tol = (dim + 16) * FLT_EPSILON * fabs(ref) + 1e-30;
                assert_true(fabs(out[t * dim + i] - ref) <= tol);
            }
        }
        free(x), free(w), free(out), free(inplace);
    }
    be->ops->destroy(be);
}

static void rope_ref(double *x, int n_heads, int hd, double pos, double theta, const float *ff,
                     kp_rope_style style)
{
    for (int h = 0; h < n_heads; h++)
        for (int i = 0; i < hd / 2; i++) {
            double freq = 1.0 / pow(theta, (2.0 * i) / hd);
            if (ff)
                freq /= ff[i];
            double a = pos * freq;
            int i0 = style == KP_ROPE_NEOX ? i : 2 * i, i1 = style == KP_ROPE_NEOX ? i + hd / 2 : 2 * i + 1;
            double x0 = x[h * hd + i0], x1 = x[h * hd + i1];
            x[h * hd + i0] = x0 * cos(a) - x1 * sin(a);
            x[h * hd + i1] = x0 * sin(a) + x1 * cos(a);
        }
}

/* The CPU rope keeps the last frequency table per thread: factors changed in place (a freed
 * model's buffer reused) must not reach it, so the same pointer with new values gives the
 * rotation of those values, bit for bit equal to a call through another pointer. */
static void test_rope_factors_memo(void **state)
{
    (void)state;
    test_rng rng = {19};
    kp_backend *be = new_backend(1);
    enum { NH = 2, HD = 16, D = NH * HD };
    float ff[HD / 2], other[HD / 2], x0[D], a[D], b[D], c[D];
    fill_gauss(&rng, x0, D, 1.0f);
    for (int i = 0; i < HD / 2; i++)
        ff[i] = 1.0f + (float)i, other[i] = 8.0f - (float)i / 2;
    memcpy(a, x0, sizeof a);
    be->ops->rope(be, a, 1, NH, HD, 50, 1e4f, ff, KP_ROPE_NORM);
    memcpy(ff, other, sizeof ff); /* same address, new values */
    memcpy(b, x0, sizeof b);
    be->ops->rope(be, b, 1, NH, HD, 50, 1e4f, ff, KP_ROPE_NORM);
    memcpy(c, x0, sizeof c);
    be->ops->rope(be, c, 1, NH, HD, 50, 1e4f, other, KP_ROPE_NORM);
    assert_memory_equal(b, c, sizeof b);
    assert_memory_not_equal(a, b, sizeof a);
    /* one-row calls go through a small table of positions (5 and 21 share a slot): each must
     * equal the same row of a multi-row call, which computes its angles afresh */
    const int32_t seq[] = {5, 21, 5, 5, 37, 21};
    for (size_t k = 0; k < sizeof seq / sizeof *seq; k++) {
        float one[D], many[3 * D];
        memcpy(one, x0, sizeof one);
        for (int t = 0; t < 3; t++)
            memcpy(many + t * D, x0, sizeof x0);
        be->ops->rope(be, one, 1, NH, HD, seq[k], 1e4f, NULL, KP_ROPE_NEOX);
        be->ops->rope(be, many, 3, NH, HD, seq[k], 1e4f, NULL, KP_ROPE_NEOX);
        assert_memory_equal(one, many, sizeof one);
    }
    be->ops->destroy(be);
}

static void test_rope(void **state)
{
    (void)state;
    test_rng rng = {12};
    kp_backend *be = new_backend(1);
    static const struct {
        int n_heads, hd;
    } shapes[] = {{1, 2}, {3, 16}, {8, 64}, {2, 128}, {5, 6}};
    static const int32_t POS0[] = {0, 7, 1000};
    float ff[64];
    for (int i = 0; i < 64; i++)
        ff[i] = 1.0f + (float)i / 8.0f;
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++)
        for (size_t pi = 0; pi < 3; pi++)
            for (int style = 0; style < 2; style++)
                for (int use_ff = 0; use_ff < 2; use_ff++) {
                    const int nh = shapes[si].n_heads, hd = shapes[si].hd, n = 3, d = nh * hd;
                    const float theta = style ? 1e6f : 1e4f;
                    const float *f = use_ff ? ff : NULL;
                    float *x = xmalloc((size_t)(n * d) * 4);
                    double *ref = xmalloc((size_t)(n * d) * 8);
                    fill_gauss(&rng, x, (size_t)(n * d), 1.0f);
                    for (int i = 0; i < n * d; i++)
                        ref[i] = x[i];
                    float *in = xmalloc((size_t)(n * d) * 4);
                    memcpy(in, x, (size_t)(n * d) * 4);
                    be->ops->rope(be, x, n, nh, hd, POS0[pi], theta, f, (kp_rope_style)style);
                    for (int t = 0; t < n; t++) {
                        double pos = POS0[pi] + t;
                        rope_ref(ref + t * d, nh, hd, pos, theta, f, (kp_rope_style)style);
                        for (int h = 0; h < nh; h++)
                            for (int i = 0; i < hd / 2; i++) {
                                int i0 = style ? i : 2 * i, i1 = style ? i + hd / 2 : 2 * i + 1;
                                int64_t b = (int64_t)t * d + h * hd;
                                /* The angle pos*freq carries about 20u of relative error (the
                                 * exponent 2i/hd rounds by u and theta^e multiplies that by
                                 * ln(theta) <= 14, plus powf, the divisions and the product);
                                 * cosf/sinf and the rotation add a few u of |x|. */
                                double angle = pos / pow(theta, (2.0 * i) / hd);
                                double mag = fabs(in[b + i0]) + fabs(in[b + i1]);
                                double tol = mag * (fabs(angle) * 20 + 4) * FLT_EPSILON + 1e-30;
                                assert_true(fabs(x[b + i0] - ref[b + i0]) <= tol);
                                assert_true(fabs(x[b + i1] - ref[b + i1]) <= tol);
                            }
                    }
                    free(x), free(ref), free(in);
                }
    be->ops->destroy(be);
}

static void test_swiglu(void **state)
{
    (void)state;
    test_rng rng = {13};
    kp_backend *be = new_backend(1);
    const int n = 3, dim = 255;
    float g[3 * 255], up[3 * 255], out[3 * 255], gi[3 * 255];
    fill_gauss(&rng, g, (size_t)(n * dim), 4.0f);
    fill_gauss(&rng, up, (size_t)(n * dim), 1.0f);
    g[0] = 100.0f, g[1] = -100.0f, g[2] = 0.0f, g[3] = -90.0f;
    memcpy(gi, g, sizeof g);
    be->ops->swiglu(be, out, g, up, n, dim);
    be->ops->swiglu(be, gi, gi, up, n, dim);
    assert_memory_equal(out, gi, sizeof out);
    for (int i = 0; i < n * dim; i++) {
        double ref = g[i] / (1.0 + exp(-(double)g[i])) * up[i];
        /* expf within an ulp or two, then four correctly rounded operations */
        assert_true(fabs(out[i] - ref) <= 8 * FLT_EPSILON * fabs(ref) + 1e-37);
    }
    be->ops->destroy(be);
}

/* swiglu (op 0) or rmsnorm rows (op 1) of n rows of dim */
static void split_op(kp_backend *be, int op, float *out, const float *in, const float *up, const float *w, int n,
                     int dim)
{
    if (op == 0)
        be->ops->swiglu(be, out, in, up, n, dim);
    else
        be->ops->rmsnorm(be, out, in, w, n, dim, 1e-5f);
}

/* Split over the threads once large enough: the same floats as one thread, in place too. */
static void test_split_ops_threads(void **state)
{
    (void)state;
    test_rng rng = {15};
    kp_backend *one = new_backend(1), *three = new_backend(3);
    const int n = 11, dim = 1537;
    const size_t len = (size_t)n * dim;
    float *x = xmalloc(len * 4), *up = xmalloc(len * 4), *w = xmalloc((size_t)dim * 4), *a = xmalloc(len * 4),
          *b = xmalloc(len * 4);
    fill_gauss(&rng, x, len, 4.0f);
    fill_gauss(&rng, up, len, 1.0f);
    fill_gauss(&rng, w, (size_t)dim, 1.0f);
    for (int op = 0; op < 2; op++) {
        split_op(one, op, a, x, up, w, n, dim);
        split_op(three, op, b, x, up, w, n, dim);
        assert_memory_equal(a, b, len * 4);
        memcpy(b, x, len * 4);
        split_op(three, op, b, b, up, w, n, dim);
        assert_memory_equal(a, b, len * 4);
    }
    free(x), free(up), free(w), free(a), free(b);
    one->ops->destroy(one);
    three->ops->destroy(three);
}

static void test_softmax(void **state)
{
    (void)state;
    test_rng rng = {14};
    for (size_t di = 0; di < sizeof DIMS / sizeof *DIMS; di++) {
        const int n = DIMS[di];
        float *x = xmalloc((size_t)n * 4), *in = xmalloc((size_t)n * 4);
        fill_gauss(&rng, x, (size_t)n, 5.0f);
        memcpy(in, x, (size_t)n * 4);
        kp_softmax_f32(x, n);
        double max = in[0], sum = 0;
        for (int i = 1; i < n; i++)
            max = fmax(max, in[i]);
        for (int i = 0; i < n; i++)
            sum += exp(in[i] - max);
        for (int i = 0; i < n; i++) {
            double ref = exp(in[i] - max) / sum;
            /* x - max rounds by u relative to |x - max| (exp turns that into an absolute
             * error of the exponent), expf adds an ulp, the float sum n*u, the division u */
            double tol = ref * (fabs(in[i] - max) + n + 4) * FLT_EPSILON + 1e-45;
            assert_true(fabs(x[i] - ref) <= tol);
        }
        free(x), free(in);
    }
    float one[1] = {-3.0f};
    kp_softmax_f32(one, 1);
    assert_true(one[0] == 1.0f);
}

/* The scan the vector argmax must agree with, including NaNs, infinities and signed zeros. */
static int32_t argmax_scan(const float *x, int n)
{
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

static void test_argmax(void **state)
{
    (void)state;
    const float a[] = {1, 3, 3, 2};
    assert_int_equal(kp_argmax_f32(a, 4), 1);
    const float b[] = {-5, -5, -5};
    assert_int_equal(kp_argmax_f32(b, 3), 0);
    const float c[] = {-1e30f, -INFINITY, -2e30f, 0.5f};
    assert_int_equal(kp_argmax_f32(c, 4), 3);
    assert_int_equal(kp_argmax_f32(c, 1), 0);
    test_rng rng = {15};
    float x[32000];
    fill_gauss(&rng, x, 32000, 1.0f);
    assert_int_equal(kp_argmax_f32(x, 32000), argmax_scan(x, 32000));
}

static void test_argmax_special(void **state)
{
    (void)state;
    test_rng rng = {17};
    const float pool[] = {NAN, -NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1.0f, -1.0f, 2.0f, FLT_MAX, -FLT_MAX};
    const int np = (int)(sizeof pool / sizeof *pool);
    float x[200];
    for (int trial = 0; trial < 20000; trial++) {
        const int n = 1 + (int)(rng_u64(&rng) % 70); /* every tail length, short and longer rows */
        for (int i = 0; i < n; i++)
            x[i] = pool[rng_u64(&rng) % (uint64_t)np];
        if (trial % 3 == 0 && n > 1) /* NaN at 0 only now and then: it decides alone */
            x[0] = (float)(rng_u64(&rng) % 5);
        assert_int_equal(kp_argmax_f32(x, n), argmax_scan(x, n));
    }
    const float zeros[] = {-0.0f, 0.0f, -0.0f, 0.0f, 0.0f};
    assert_int_equal(kp_argmax_f32(zeros, 5), 0);
    const float nan_first[] = {NAN, 1, 2, 3, 4, 5, 6};
    assert_int_equal(kp_argmax_f32(nan_first, 7), 0);
    const float late_tie[] = {1, 7, 2, 3, 4, 5, 6, 7, 7};
    assert_int_equal(kp_argmax_f32(late_tie, 9), 1);
    assert_int_equal(kp_argmax_f32(late_tie, 0), 0);
}

/* Float addition is correctly rounded, and so is a double sum of two floats rounded to float
 * (53 >= 2*24 + 2 bits), so the adds must match exactly. */
static void test_adds(void **state)
{
    (void)state;
    test_rng rng = {16};
    kp_backend *be = new_backend(1);
    const int n = 3, dim = 173;
    float x[3 * 173], y[3 * 173], b[173], y0[3 * 173];
    fill_gauss(&rng, x, sizeof x / 4, 1.0f);
    fill_gauss(&rng, y, sizeof y / 4, 100.0f);
    fill_gauss(&rng, b, sizeof b / 4, 1e-3f);
    memcpy(y0, y, sizeof y);
    be->ops->add(be, y, x, (size_t)(n * dim));
    for (int i = 0; i < n * dim; i++)
        assert_true(y[i] == (float)((double)y0[i] + x[i]));
    memcpy(y0, y, sizeof y);
    be->ops->add_row(be, y, b, n, dim);
    for (int t = 0; t < n; t++)
        for (int i = 0; i < dim; i++)
            assert_true(y[t * dim + i] == (float)((double)y0[t * dim + i] + b[i]));
    be->ops->destroy(be);
}

static uint16_t bf16_trunc(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)(u >> 16);
}

/* Embedding rows decode exactly: F16/BF16 widen exactly, I8G is one product q*scale. */
static void test_embedding(void **state)
{
    (void)state;
    test_rng rng = {17};
    kp_backend *one = new_backend(1), *three = new_backend(3); /* rows split over threads too */
    const int64_t V = 37, D = 20;
    const int G = 4;
    int64_t ne[2] = {D, V};
    float *f = xmalloc((size_t)(V * D) * 4);
    uint16_t *h = xmalloc((size_t)(V * D) * 2), *bf = xmalloc((size_t)(V * D) * 2);
    int8_t *q = xmalloc((size_t)(V * D));
    float *s = xmalloc((size_t)(V * D / G) * 4);
    fill_gauss(&rng, f, (size_t)(V * D), 1.0f);
    for (int64_t i = 0; i < V * D; i++) {
        h[i] = kp_f32_to_f16(f[i]);
        bf[i] = bf16_trunc(f[i]);
        q[i] = (int8_t)rng_int(&rng, -128, 127);
    }
    for (int64_t g = 0; g < V * D / G; g++)
        s[g] = rng_unif(&rng);
    kp_tensor t[4];
    kp_tensor_init(&t[0], "f32", KP_DTYPE_F32, 2, ne, f);
    kp_tensor_init(&t[1], "f16", KP_DTYPE_F16, 2, ne, h);
    kp_tensor_init(&t[2], "bf16", KP_DTYPE_BF16, 2, ne, bf);
    kp_tensor_init(&t[3], "i8g", KP_DTYPE_I8G, 2, ne, q);
    t[3].scales = s;
    t[3].group = G;
    const int32_t ids[5] = {0, 36, 5, 5, 17};
    float out[5 * 20];
    for (int k = 0; k < 8; k++) {
        kp_backend *be = k < 4 ? one : three;
        be->ops->embedding(be, out, &t[k % 4], ids, 5);
        for (int j = 0; j < 5; j++)
            for (int64_t c = 0; c < D; c++) {
                int64_t i = ids[j] * D + c;
                double ref = k % 4 == 0 ? f[i]
                           : k % 4 == 1 ? ref_half(h[i])
                           : k % 4 == 2 ? ref_bf16(bf[i])
                                        : (float)((double)q[i] * s[i / G]);
                assert_true(out[j * D + c] == ref);
            }
    }
    free(f), free(h), free(bf), free(q), free(s);
    one->ops->destroy(one);
    three->ops->destroy(three);
}

/* Every level's F16 store equals kp_f32_to_f16 bit for bit: a sweep over the float bit patterns
 * (every 997th, both signs), then halfway cases, overflow edges, subnormals and NaN payloads;
 * odd lengths reach the tails. */
static void test_to_f16_levels(void **state)
{
    (void)state;
    enum { N = 1 << 16 };
    float *x = xmalloc(N * 4);
    uint16_t *got = xmalloc(N * 2);
    const uint32_t special[] = {0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc00001u,
                                0x7f800001u, 0x7fbfffffu, 0x477ff000u, 0x477fefffu, 0x477fe000u, 0x38800000u,
                                0x387fffffu, 0x33000000u, 0x33000001u, 0x32ffffffu, 0x3f801000u, 0x3f803000u,
                                0x3f800fffu, 0x00000001u, 0x807fffffu, 0x7f7fffffu};
    for (int l = 0; l <= (int)kp_cpu_isa_detected(); l++) {
        const kp_cpu_vec *vec = kp_cpu_vec_get((kp_isa)l);
        uint64_t checked = 0;
        for (uint64_t base = 0; base < (1ull << 32); base += (uint64_t)N * 997) {
            int n = N - (int)(base / 997 / N % 7); /* a different tail each time */
            for (int i = 0; i < n; i++) {
                uint32_t u = (uint32_t)(base + (uint64_t)i * 997);
                if (i < (int)(sizeof special / sizeof *special))
                    u = special[i] ^ (uint32_t)(base & 0x80000000u);
                memcpy(&x[i], &u, 4);
            }
            vec->to_f16(got, x, (size_t)n);
            for (int i = 0; i < n; i++)
                if (got[i] != kp_f32_to_f16(x[i])) {
                    uint32_t u;
                    memcpy(&u, &x[i], 4);
                    fail_msg("level %d: 0x%08x -> 0x%04x, expected 0x%04x", l, u, got[i], kp_f32_to_f16(x[i]));
                }
            checked += (uint64_t)n;
        }
        printf("  level %s: %llu values\n", kp_isa_name((kp_isa)l), (unsigned long long)checked);
    }
    free(x), free(got);
}

/* KV rows land at pos0..pos0+n-1 (where kp_kv_index says for the backend's layout) and nowhere
 * else; F16 caches hold the nearest half. */
static void test_kv_store(void **state)
{
    (void)state;
    test_rng rng = {18};
    kp_backend *be = new_backend(1);
    const int n_ctx = 10, n_kv = 3, hd = 8, kv_dim = n_kv * hd, n = 3, pos0 = 4;
    const kp_kv_shape sf = {KP_KV_F32, n_ctx, n_kv, hd}, sh = {KP_KV_F16, n_ctx, n_kv, hd};
    float src[3 * 24];
    fill_gauss(&rng, src, sizeof src / 4, 2.0f);
    src[0] = 1e-6f, src[1] = -70000.0f, src[2] = 0.0f;
    float cf[10 * 24];
    uint16_t ch[10 * 24];
    for (int i = 0; i < n_ctx * kv_dim; i++)
        cf[i] = -1.0f, ch[i] = 0x1234;
    be->ops->kv_store(be, cf, &sf, src, pos0, n);
    be->ops->kv_store(be, ch, &sh, src, pos0, n);
    for (int p = 0; p < n_ctx; p++)
        for (int i = 0; i < kv_dim; i++) {
            size_t k = kp_kv_index(be->ops->kv_layout, &sf, p, i / hd, i % hd);
            if (p < pos0 || p >= pos0 + n) {
                assert_true(cf[k] == -1.0f);
                assert_int_equal(ch[k], 0x1234);
                continue;
            }
            float v = src[(p - pos0) * kv_dim + i];
            assert_true(cf[k] == v);
            double d = fabs(ref_half(ch[k]) - v);
            /* no half is closer (beyond the largest finite half, infinity is the answer) */
            if (fabs(v) < 65520.0) {
                assert_true(d <= fabs(ref_half((uint16_t)(ch[k] + 1)) - v));
                if (ch[k] & 0x7fff)
                    assert_true(d <= fabs(ref_half((uint16_t)(ch[k] - 1)) - v));
            } else {
                assert_true(isinf(ref_half(ch[k])) && (ref_half(ch[k]) < 0) == (v < 0));
            }
        }
    /* as position-major rows (the state file's order): the fill, then the stored rows */
    float rows[7 * 24], tmp[7 * 24];
    assert_int_equal(kp_kv_rows_download(be, rows, cf, &sf, pos0 + n, tmp), KP_OK);
    for (int p = 0; p < pos0 + n; p++)
        for (int i = 0; i < kv_dim; i++)
            assert_true(rows[p * kv_dim + i] == (p < pos0 ? -1.0f : src[(p - pos0) * kv_dim + i]));
    uint16_t hrows[7 * 24], htmp[7 * 24], hback[7 * 24];
    assert_int_equal(kp_kv_rows_download(be, hrows, ch, &sh, pos0 + n, htmp), KP_OK);
    for (int i = 0; i < n * kv_dim; i++)
        assert_int_equal(hrows[pos0 * kv_dim + i], ch[kp_kv_index(be->ops->kv_layout, &sh, pos0 + i / kv_dim, i % kv_dim / hd, i % hd)]);
    /* and back: rows uploaded into a fresh cache come out the same; positions past them untouched */
    for (int i = 0; i < n_ctx * kv_dim; i++)
        ch[i] = 0x4321;
    assert_int_equal(kp_kv_rows_upload(be, ch, hrows, &sh, pos0 + n, htmp), KP_OK);
    assert_int_equal(kp_kv_rows_download(be, hback, ch, &sh, pos0 + n, htmp), KP_OK);
    assert_memory_equal(hback, hrows, sizeof hrows);
    for (int p = pos0 + n; p < n_ctx; p++)
        for (int i = 0; i < kv_dim; i++)
            assert_int_equal(ch[kp_kv_index(be->ops->kv_layout, &sh, p, i / hd, i % hd)], 0x4321);
    /* a position-major backend (CUDA's layout; here the CPU's copies under that name): the rows
     * are the cache's first bytes, both ways */
    kp_backend_ops pm_ops = *be->ops;
    pm_ops.kv_layout = KP_KV_POS_MAJOR;
    kp_backend pm = *be;
    pm.ops = &pm_ops;
    for (int i = 0; i < n_ctx * kv_dim; i++)
        cf[i] = (float)i;
    assert_int_equal(kp_kv_rows_download(&pm, rows, cf, &sf, pos0 + n, NULL), KP_OK);
    assert_memory_equal(rows, cf, sizeof rows);
    for (int i = 0; i < 7 * kv_dim; i++)
        rows[i] = -(float)i;
    assert_int_equal(kp_kv_rows_upload(&pm, cf, rows, &sf, pos0 + n, NULL), KP_OK);
    assert_memory_equal(cf, rows, sizeof rows);
    assert_true(cf[7 * kv_dim] == (float)(7 * kv_dim));
    be->ops->destroy(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rmsnorm),   cmocka_unit_test(test_rope),
        cmocka_unit_test(test_rope_factors_memo),
        cmocka_unit_test(test_swiglu),    cmocka_unit_test(test_split_ops_threads),    cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_argmax),
        cmocka_unit_test(test_argmax_special),
        cmocka_unit_test(test_adds),
        cmocka_unit_test(test_embedding), cmocka_unit_test(test_kv_store),
        cmocka_unit_test(test_to_f16_levels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
