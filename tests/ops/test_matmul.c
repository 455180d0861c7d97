/* Matmul for every weight type this backend implements (F32, F16, BF16, I8G), checked against
 * double-precision references written here from each type's definition:
 *  - random data against a rigorous rounding bound,
 *  - integer-valued data, where every partial sum is exact in float, for exact equality (this
 *    catches a dropped or repeated element that the rounding bound is too loose to see),
 *  - every SIMD level against the scalar table, and 1 / 2 / 3 threads for identical bits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "backends/cpu/cpu_backend.h"
#include "ops_test.h"

/* ---- test weights: values chosen in float, stored in the type's encoding */

typedef struct tw {
    kp_tensor t;
    void *data;
    float *scales;
} tw;

/* bfloat16 from float, nearest even (the test's own, from the format definition). */
static uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}

/* Quantizes `v` like llama2.c's exporter (scale = max|v|/127 per group; q = round(v / scale)). */
static void quant_i8g(const float *v, int64_t n, int G, int8_t *q, float *s)
{
    for (int64_t g = 0; g < n / G; g++) {
        double m = 0;
        for (int k = 0; k < G; k++)
            m = fmax(m, fabs(v[g * G + k]));
        float scale = (float)m / 127.0f;
        s[g] = scale;
        for (int k = 0; k < G; k++)
            q[g * G + k] = scale == 0 ? 0 : (int8_t)lround(v[g * G + k] / scale);
    }
}

static void tw_make(tw *w, kp_dtype dt, int64_t rows, int64_t cols, int G, const float *v)
{
    int64_t ne[2] = {cols, rows}, n = rows * cols;
    memset(w, 0, sizeof *w);
    if (dt == KP_DTYPE_F32) {
        w->data = xmalloc((size_t)n * 4);
        memcpy(w->data, v, (size_t)n * 4);
    } else if (dt == KP_DTYPE_F16 || dt == KP_DTYPE_BF16) {
        uint16_t *h = xmalloc((size_t)n * 2);
        for (int64_t i = 0; i < n; i++)
            h[i] = dt == KP_DTYPE_F16 ? kp_f32_to_f16(v[i]) : to_bf16(v[i]);
        w->data = h;
    } else {
        w->data = xmalloc((size_t)n);
        w->scales = xmalloc((size_t)(n / G) * 4 + 4);
        quant_i8g(v, n, G, w->data, w->scales);
    }
    kp_tensor_init(&w->t, "w", dt, 2, ne, w->data);
    w->t.scales = w->scales;
    w->t.group = G;
}

static void tw_free(tw *w)
{
    free(w->data);
    free(w->scales);
}

/* W[r][c] as the reference reads it. */
static double w_at(const tw *w, int64_t r, int64_t c)
{
    int64_t cols = w->t.ne[0], i = r * cols + c;
    switch (w->t.dtype) {
    case KP_DTYPE_F32: return ((const float *)w->data)[i];
    case KP_DTYPE_F16: return ref_half(((const uint16_t *)w->data)[i]);
    case KP_DTYPE_BF16: return ref_bf16(((const uint16_t *)w->data)[i]);
    default: return (double)((const int8_t *)w->data)[i] * w->scales[i / w->t.group];
    }
}

/* Reference y (n x rows) in double, plus for each output the bound on the float result's
 * error. The kernel sums `terms` products in float; each product is rounded once (twice for
 * I8G: ival*ws*xs) and a float sum of k terms is off by at most (k-1)u * sum|terms|, u = 2^-24,
 * so (terms + 2) * FLT_EPSILON * sum|terms| is twice the worst case. */
static void reference(const tw *w, const float *x, int n, double *ref, double *bound)
{
    const int64_t cols = w->t.ne[0], rows = w->t.ne[1];
    const int G = w->t.group;
    const int quantized = !w->t.f32_acts && w->t.dtype == KP_DTYPE_I8G && G > 0 && cols % G == 0;
    int8_t *xq = xmalloc((size_t)cols);
    float *xs = xmalloc((size_t)cols * 4);
    double *xr = xmalloc((size_t)cols * 8);
    for (int t = 0; t < n; t++) {
        const float *xt = x + (int64_t)t * cols;
        for (int64_t c = 0; c < cols; c++) {
            /* what the type's prepare step feeds the dot product */
            xr[c] = w->t.f32_acts                ? xt[c]
                    : w->t.dtype == KP_DTYPE_F16  ? ref_half(kp_f32_to_f16(xt[c]))
                    : w->t.dtype == KP_DTYPE_BF16 ? ref_bf16(to_bf16(xt[c]))
                                                  : xt[c];
        }
        if (quantized)
            quant_i8g(xt, cols, G, xq, xs);
        for (int64_t r = 0; r < rows; r++) {
            double s = 0, a = 0;
            int64_t terms = cols;
            if (quantized) {
                const int8_t *wq = (const int8_t *)w->data + r * cols;
                const float *ws = w->scales + r * cols / G;
                terms = cols / G;
                for (int64_t j = 0; j < cols / G; j++) {
                    int64_t iv = 0;
                    for (int k = 0; k < G; k++)
                        iv += (int64_t)xq[j * G + k] * wq[j * G + k];
                    double p = (double)iv * ws[j] * xs[j];
                    s += p;
                    a += fabs(p);
                }
            } else {
                for (int64_t c = 0; c < cols; c++) {
                    double p = w_at(w, r, c) * xr[c];
                    s += p;
                    a += fabs(p);
                }
            }
            ref[(int64_t)t * rows + r] = s;
            bound[(int64_t)t * rows + r] = (double)(terms + 2) * FLT_EPSILON * a + 1e-30;
        }
    }
    free(xq);
    free(xs);
    free(xr);
}

/* Runs one wtype table directly: prepare into a fresh workspace, then all rows. */
static void run_wtype(const kp_cpu_wtype *wt, const tw *w, const float *x, int n, float *y)
{
    size_t ws = wt->work_size ? wt->work_size(w->t.ne[0], n) : 0;
    void *work = xmalloc(ws);
    if (wt->prepare)
        wt->prepare(work, x, n, w->t.ne[0], &w->t);
    wt->rows(y, &w->t, work, x, n, 0, w->t.ne[1]);
    free(work);
}

static void run_backend(kp_backend *be, const tw *w, const float *x, int n, float *y)
{
    size_t ws = be->ops->matmul_work_size(be, w->t.dtype, w->t.ne[0], n);
    void *work = xmalloc(ws);
    be->ops->matmul(be, y, &w->t, x, n, work);
    free(work);
}

static const int64_t COLS[] = {1, 3, 17, 64, 172, 255, 4097};
static const int64_t ROWS[] = {1, 5, 67};
static const kp_dtype FLOAT_TYPES[] = {KP_DTYPE_F32, KP_DTYPE_F16, KP_DTYPE_BF16};

static void check_close(const float *y, const double *ref, const double *bound, size_t n,
                        double factor, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        if (!(fabs(y[i] - ref[i]) <= factor * bound[i])) {
            fprintf(stderr, "%s: y[%zu] = %.9g, reference %.9g, bound %.3g\n", what, i, y[i], ref[i],
                    factor * bound[i]);
            fail();
        }
    }
}

static void test_supports(void **state)
{
    (void)state;
    kp_backend *be = new_backend(1);
    assert_true(be->ops->supports(be, KP_DTYPE_F32));
    assert_true(be->ops->supports(be, KP_DTYPE_F16));
    assert_true(be->ops->supports(be, KP_DTYPE_BF16));
    assert_true(be->ops->supports(be, KP_DTYPE_I8G));
    assert_false(be->ops->supports(be, KP_DTYPE_I32));
    be->ops->destroy(be);
}

/* Random gaussian data, every float type, every shape, every level, n = 1 to 7 (full and
 * partial token tiles at every level). */
static void test_float_types_random(void **state)
{
    (void)state;
    test_rng rng = {1234};
    char what[128];
    for (size_t d = 0; d < 3; d++)
        for (size_t ci = 0; ci < sizeof COLS / sizeof *COLS; ci++)
            for (size_t ri = 0; ri < sizeof ROWS / sizeof *ROWS; ri++)
                for (int n = 1; n <= 7; n++) {
                    int64_t cols = COLS[ci], rows = ROWS[ri];
                    float *v = xmalloc((size_t)(rows * cols) * 4), *x = xmalloc((size_t)(n * cols) * 4);
                    fill_gauss(&rng, v, (size_t)(rows * cols), 0.5f);
                    fill_gauss(&rng, x, (size_t)(n * cols), 1.0f);
                    tw w;
                    tw_make(&w, FLOAT_TYPES[d], rows, cols, 0, v);
                    double *ref = xmalloc((size_t)(n * rows) * 8), *bound = xmalloc((size_t)(n * rows) * 8);
                    reference(&w, x, n, ref, bound);
                    float *y = xmalloc((size_t)(n * rows) * 4);
                    for (int l = 0; l <= (int)kp_cpu_isa_detected(); l++) {
                        snprintf(what, sizeof what, "%s %lldx%lld n=%d %s", kp_dtype_name(FLOAT_TYPES[d]),
                                 (long long)rows, (long long)cols, n, kp_isa_name((kp_isa)l));
                        run_wtype(kp_cpu_wtype_get_isa(FLOAT_TYPES[d], (kp_isa)l), &w, x, n, y);
                        check_close(y, ref, bound, (size_t)(n * rows), 1.0, what);
                    }
                    free(v), free(x), free(ref), free(bound), free(y);
                    tw_free(&w);
                }
}

/* Small integers: products and all partial sums are integers below 2^24, exact in float in
 * any order, so every level must equal the reference exactly. */
static void test_float_types_exact(void **state)
{
    (void)state;
    test_rng rng = {99};
    char what[128];
    for (size_t d = 0; d < 3; d++)
        for (size_t ci = 0; ci < sizeof COLS / sizeof *COLS; ci++) {
            int64_t cols = COLS[ci], rows = 67;
            int n = 2;
            float *v = xmalloc((size_t)(rows * cols) * 4), *x = xmalloc((size_t)(n * cols) * 4);
            for (int64_t i = 0; i < rows * cols; i++)
                v[i] = (float)rng_int(&rng, -8, 8);
            for (int64_t i = 0; i < n * cols; i++)
                x[i] = (float)rng_int(&rng, -8, 8);
            tw w;
            tw_make(&w, FLOAT_TYPES[d], rows, cols, 0, v);
            double *ref = xmalloc((size_t)(n * rows) * 8), *bound = xmalloc((size_t)(n * rows) * 8);
            reference(&w, x, n, ref, bound);
            float *y = xmalloc((size_t)(n * rows) * 4);
            for (int l = 0; l <= (int)kp_cpu_isa_detected(); l++) {
                run_wtype(kp_cpu_wtype_get_isa(FLOAT_TYPES[d], (kp_isa)l), &w, x, n, y);
                for (int64_t i = 0; i < n * rows; i++) {
                    snprintf(what, sizeof what, "%s cols %lld %s", kp_dtype_name(FLOAT_TYPES[d]),
                             (long long)cols, kp_isa_name((kp_isa)l));
                    if ((double)y[i] != ref[i]) {
                        fprintf(stderr, "%s: y[%lld] = %.9g, exact %.9g\n", what, (long long)i, y[i],
                                ref[i]);
                        fail();
                    }
                }
            }
            free(v), free(x), free(ref), free(bound), free(y);
            tw_free(&w);
        }
}

/* The F16 and BF16 prepare steps round each activation to the weight's format. */
static void test_prepare_rounds_activations(void **state)
{
    (void)state;
    test_rng rng = {7};
    const int64_t cols = 37;
    const int n = 3;
    float x[3 * 37];
    fill_gauss(&rng, x, (size_t)(n * cols), 3.0f);
    x[0] = 65519.0f;   /* rounds to the largest half */
    x[1] = 1e-7f;      /* a half subnormal */
    x[2] = -0.0f;
    uint16_t h[3 * 37];
    tw w;
    float one = 1.0f;
    /* F16: the workspace layout is each level's own (halves, or for several tokens the
     * rounded values widened back to float), so check what the kernel multiplies with: an
     * identity weight gives back each rounded activation exactly. One token and three. */
    float *eye = xmalloc((size_t)(cols * cols) * 4), y[3 * 37];
    for (int64_t i = 0; i < cols * cols; i++)
        eye[i] = i % (cols + 1) == 0 ? 1.0f : 0.0f;
    tw_make(&w, KP_DTYPE_F16, cols, cols, 0, eye);
    for (int l = 0; l <= (int)kp_cpu_isa_detected(); l++)
        for (int nn = 1; nn <= n; nn += 2) {
            run_wtype(kp_cpu_wtype_get_isa(KP_DTYPE_F16, (kp_isa)l), &w, x, nn, y);
            for (int i = 0; i < nn * cols; i++) {
                /* nearest half, nearest even on ties (checked in ops-f16): the reference's bits */
                assert_true(y[i] == (float)ref_half(kp_f32_to_f16(x[i])));
            }
        }
    tw_free(&w);
    free(eye);
    /* BF16 at every level: nearest even, including ties, values that round up to infinity,
     * subnormals (kept, not flushed) and NaN (stays a NaN, quieted) */
    x[3] = 1.00390625f;                /* 1 + 2^-8: a tie, rounds down to even 1 */
    x[4] = 1.01171875f;                /* 1 + 3 * 2^-8: a tie, rounds up to even */
    x[5] = 3.4e38f;                    /* rounds up to infinity */
    x[6] = -INFINITY;
    x[7] = 1e-39f;                     /* float subnormal */
    x[8] = -5.9e-39f;
    x[20] = 1e-40f;                    /* in the vector part at every width */
    float nanv;
    const uint32_t snan = 0x7f800001u; /* signalling NaN whose payload sits in the low half */
    memcpy(&nanv, &snan, 4);
    x[9] = nanv;
    x[40] = NAN;
    tw_make(&w, KP_DTYPE_BF16, 1, 1, 0, &one);
    for (int l = 0; l <= (int)kp_cpu_isa_detected(); l++) {
        const kp_cpu_wtype *wt = kp_cpu_wtype_get_isa(KP_DTYPE_BF16, (kp_isa)l);
        assert_true(wt->work_size(cols, n) >= sizeof h);
        memset(h, 0, sizeof h);
        wt->prepare(h, x, n, cols, &w.t);
        for (int i = 0; i < n * cols; i++) {
            if (isnan(x[i])) {
                assert_true(isnan(ref_bf16(h[i])));
                assert_true(h[i] & 0x40); /* quiet */
            } else {
                assert_int_equal(h[i], to_bf16(x[i]));
            }
        }
        assert_int_equal(h[3], 0x3f80);
        assert_int_equal(h[4], 0x3f82);
        assert_int_equal(h[5], 0x7f80);
        assert_int_equal(h[6], 0xff80);
        assert_true(h[7] != 0 && h[8] != 0x8000 && h[20] != 0);
    }
    tw_free(&w);
}

/* I8G against the double reference of quantize-then-dot, for group sizes hitting each kernel
 * branch (G = 1, 2 scalar; 4, 8, 16 lane-shuffled; 32, 64 and 96 blocked; 3, 12 fallback). */
static void test_i8g_random(void **state)
{
    (void)state;
    static const struct {
        int64_t cols;
        int G;
    } cases[] = {{1, 1},     {3, 3},    {4, 2},    {12, 12},  {64, 4},   {172, 4},  {68, 4},
                 {256, 8},   {72, 8},   {256, 16}, {208, 16}, {288, 32}, {288, 96}, {64, 64},
                 {576, 64},  {4096, 64}, {4096, 32}, {255, 17}, {4097, 17}};
    test_rng rng = {4242};
    char what[128];
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++)
        for (size_t ri = 0; ri < sizeof ROWS / sizeof *ROWS; ri++)
            for (int n = 1; n <= 3; n += 2) {
                int64_t cols = cases[k].cols, rows = ROWS[ri];
                float *v = xmalloc((size_t)(rows * cols) * 4), *x = xmalloc((size_t)(n * cols) * 4);
                fill_gauss(&rng, v, (size_t)(rows * cols), 0.5f);
                fill_gauss(&rng, x, (size_t)(n * cols), 1.0f);
                for (int64_t i = 0; i < cols && i < 5; i++)
                    x[i] = 0.0f; /* an all-zero group when G <= 5: scale 0, no 0/0 */
                tw w;
                tw_make(&w, KP_DTYPE_I8G, rows, cols, cases[k].G, v);
                double *ref = xmalloc((size_t)(n * rows) * 8), *bound = xmalloc((size_t)(n * rows) * 8);
                reference(&w, x, n, ref, bound);
                float *y = xmalloc((size_t)(n * rows) * 4);
                for (int l = 0; l <= (int)kp_cpu_isa_detected(); l++) {
                    snprintf(what, sizeof what, "i8g G=%d %lldx%lld n=%d %s", cases[k].G,
                             (long long)rows, (long long)cols, n, kp_isa_name((kp_isa)l));
                    run_wtype(kp_cpu_wtype_get_isa(KP_DTYPE_I8G, (kp_isa)l), &w, x, n, y);
                    check_close(y, ref, bound, (size_t)(n * rows), 1.0, what);
                }
                free(v), free(x), free(ref), free(bound), free(y);
                tw_free(&w);
            }
}

/* Exact I8G: x already on the int8 grid with a 127 in each group (scale 1), weight scales
 * powers of two: all arithmetic is exact, so every level equals the reference. Weights
 * include -128, which the exporter never writes but a file may hold. */
static void test_i8g_exact(void **state)
{
    (void)state;
    static const int GS[] = {4, 8, 16, 32, 64, 2, 12};
    test_rng rng = {5};
    for (size_t gi = 0; gi < sizeof GS / sizeof *GS; gi++) {
        const int G = GS[gi];
        /* 9 groups per row keeps every partial sum below 2^22, exact in float in halves */
        const int64_t cols = (int64_t)G * 9, rows = 9;
        const int n = 2;
        int8_t *q = xmalloc((size_t)(rows * cols));
        float *s = xmalloc((size_t)(rows * cols / G) * 4);
        for (int64_t i = 0; i < rows * cols; i++)
            q[i] = (int8_t)rng_int(&rng, -128, 127);
        for (int64_t g = 0; g < rows * cols / G; g++)
            s[g] = (g % 3) ? 0.5f : 2.0f;
        float *x = xmalloc((size_t)(n * cols) * 4);
        for (int64_t i = 0; i < n * cols; i++)
            x[i] = (i % G == 1) ? ((i / G) % 2 ? -127.0f : 127.0f) : (float)rng_int(&rng, -127, 127);
        int64_t ne[2] = {cols, rows};
        kp_tensor t;
        kp_tensor_init(&t, "q", KP_DTYPE_I8G, 2, ne, q);
        t.scales = s;
        t.group = G;
        float *y = xmalloc((size_t)(n * rows) * 4);
        for (int l = 0; l <= (int)kp_cpu_isa_detected(); l++) {
            const kp_cpu_wtype *wt = kp_cpu_wtype_get_isa(KP_DTYPE_I8G, (kp_isa)l);
            void *work = xmalloc(wt->work_size(cols, n));
            wt->prepare(work, x, n, cols, &t);
            wt->rows(y, &t, work, x, n, 0, rows);
            free(work);
            for (int tk = 0; tk < n; tk++)
                for (int64_t r = 0; r < rows; r++) {
                    double ref = 0;
                    for (int64_t c = 0; c < cols; c++)
                        ref += (double)q[r * cols + c] * s[(r * cols + c) / G] * x[tk * cols + c];
                    if ((double)y[tk * rows + r] != ref) {
                        fprintf(stderr, "i8g exact G=%d %s: row %lld token %d: %.9g vs %.9g\n", G,
                                kp_isa_name((kp_isa)l), (long long)r, tk, y[tk * rows + r], ref);
                        fail();
                    }
                }
        }
        free(q), free(s), free(x), free(y);
    }
}

/* Activation quantization rounds halves away from zero (C round), like runq. */
static void test_i8g_prepare_rounding(void **state)
{
    (void)state;
    /* group max 127 gives scale exactly 1; the other values sit on .5 boundaries */
    const float x[8] = {127.0f, 0.5f, 1.5f, -2.5f, -0.5f, 2.49f, -126.5f, 0.0f};
    const int8_t want[8] = {127, 1, 2, -3, -1, 2, -127, 0};
    int8_t q1 = 0;
    float s1 = 1;
    int64_t ne[2] = {8, 1};
    kp_tensor t;
    kp_tensor_init(&t, "q", KP_DTYPE_I8G, 2, ne, &q1);
    t.scales = &s1;
    t.group = 8;
    const kp_cpu_wtype *wt = kp_cpu_wtype_get_isa(KP_DTYPE_I8G, KP_ISA_SCALAR);
    size_t ws = wt->work_size(8, 1);
    char *work = xmalloc(ws);
    wt->prepare(work, x, 1, 8, &t);
    assert_memory_equal(work, want, 8);
    free(work);
}

/* A group that does not divide the row: activations stay float and each weight takes the
 * scale of its flattened index (groups cross rows). */
static void test_i8g_groups_cross_rows(void **state)
{
    (void)state;
    test_rng rng = {31};
    const int64_t rows = 7, cols = 17;
    const int G = 4;
    int8_t q[7 * 17];
    float s[(7 * 17 + 3) / 4], x[17];
    for (int i = 0; i < rows * cols; i++)
        q[i] = (int8_t)rng_int(&rng, -127, 127);
    for (size_t i = 0; i < sizeof s / sizeof *s; i++)
        s[i] = rng_unif(&rng);
    fill_gauss(&rng, x, 17, 1.0f);
    int64_t ne[2] = {cols, rows};
    kp_tensor t;
    kp_tensor_init(&t, "q", KP_DTYPE_I8G, 2, ne, q);
    t.scales = s;
    t.group = G;
    for (int l = 0; l <= (int)kp_cpu_isa_detected(); l++) {
        float y[7];
        const kp_cpu_wtype *wt = kp_cpu_wtype_get_isa(KP_DTYPE_I8G, (kp_isa)l);
        void *work = xmalloc(wt->work_size(cols, 1));
        wt->prepare(work, x, 1, cols, &t);
        wt->rows(y, &t, work, x, 1, 0, rows);
        free(work);
        for (int64_t r = 0; r < rows; r++) {
            double ref = 0, a = 0;
            for (int64_t c = 0; c < cols; c++) {
                double p = (double)x[c] * s[(r * cols + c) / G] * q[r * cols + c];
                ref += p;
                a += fabs(p);
            }
            assert_true(fabs(y[r] - ref) <= (cols + 3) * FLT_EPSILON * a);
        }
    }
}

/* Through the backend: prepare, threading, BLAS for float prefill, under every ISA cap. */
static void test_backend_matmul(void **state)
{
    (void)state;
    test_rng rng = {77};
    static const kp_dtype types[] = {KP_DTYPE_F32, KP_DTYPE_F16, KP_DTYPE_BF16, KP_DTYPE_I8G};
    static const int NS[] = {1, 2, 7, 32};
    kp_backend *be = new_backend(2);
    char what[128];
    for (size_t d = 0; d < 4; d++)
        for (size_t ni = 0; ni < 4; ni++) {
            const int64_t rows = 333, cols = 288;
            const int n = NS[ni];
            float *v = xmalloc((size_t)(rows * cols) * 4), *x = xmalloc((size_t)(n * cols) * 4);
            fill_gauss(&rng, v, (size_t)(rows * cols), 0.5f);
            fill_gauss(&rng, x, (size_t)(n * cols), 1.0f);
            tw w;
            tw_make(&w, types[d], rows, cols, 32, v);
            double *ref = xmalloc((size_t)(n * rows) * 8), *bound = xmalloc((size_t)(n * rows) * 8);
            reference(&w, x, n, ref, bound);
            float *y = xmalloc((size_t)(n * rows) * 4);
            for (int l = 0; l <= (int)kp_cpu_isa_detected(); l++)
                for (int blas = 0; blas < 2; blas++) {
                    /* blas 0: the backend's own kernel even for float prefill */
                    kp_cpu_backend_set_blas_min_tokens(be, blas ? 1 : 0);
                    kp_isa old = kp_cpu_isa_cap((kp_isa)l);
                    snprintf(what, sizeof what, "backend %s n=%d cap %s blas %d",
                             kp_dtype_name(types[d]), n, kp_isa_name((kp_isa)l), blas);
                    run_backend(be, &w, x, n, y);
                    kp_cpu_isa_cap(old);
                    check_close(y, ref, bound, (size_t)(n * rows), 1.0, what);
                }
            free(v), free(x), free(ref), free(bound), free(y);
            tw_free(&w);
        }
    be->ops->destroy(be);
}

/* Weights flagged f32_acts (Hugging Face, KuiperLLama) keep the activations in float: every
 * level against the double reference, with rows longer than one widened slice, token counts
 * past one pass of partial sums, and I8G groups that straddle rows. */
static void test_f32_acts(void **state)
{
    (void)state;
    test_rng rng = {91};
    static const struct {
        kp_dtype dt;
        int G;
    } cases[] = {{KP_DTYPE_F16, 0}, {KP_DTYPE_BF16, 0}, {KP_DTYPE_I8G, 64}, {KP_DTYPE_I8G, 4}};
    static const int NS[] = {1, 7, 70};
    kp_backend *be = new_backend(2);
    char what[128];
    for (size_t d = 0; d < sizeof cases / sizeof cases[0]; d++)
        for (size_t ni = 0; ni < 3; ni++) {
            const int64_t rows = 37, cols = 1100;
            const int n = NS[ni];
            float *v = xmalloc((size_t)(rows * cols) * 4), *x = xmalloc((size_t)(n * cols) * 4);
            fill_gauss(&rng, v, (size_t)(rows * cols), 0.5f);
            fill_gauss(&rng, x, (size_t)(n * cols), 1.0f);
            tw w;
            tw_make(&w, cases[d].dt, rows, cols, cases[d].G, v);
            w.t.f32_acts = 1;
            double *ref = xmalloc((size_t)(n * rows) * 8), *bound = xmalloc((size_t)(n * rows) * 8);
            reference(&w, x, n, ref, bound);
            float *y = xmalloc((size_t)(n * rows) * 4);
            for (int l = 0; l <= (int)kp_cpu_isa_detected(); l++) {
                kp_isa old = kp_cpu_isa_cap((kp_isa)l);
                snprintf(what, sizeof what, "f32_acts %s G=%d n=%d cap %s", kp_dtype_name(cases[d].dt), cases[d].G,
                         n, kp_isa_name((kp_isa)l));
                run_backend(be, &w, x, n, y);
                kp_cpu_isa_cap(old);
                check_close(y, ref, bound, (size_t)(n * rows), 1.0, what);
            }
            free(v), free(x), free(ref), free(bound), free(y);
            tw_free(&w);
        }
    be->ops->destroy(be);
}

/* The same matmul on 1, 2 and 3 threads gives the same bits (rows never depend on how the
 * row range is cut). Shapes leave partial 4-row blocks. */
static void test_threads_identical(void **state)
{
    (void)state;
    test_rng rng = {2024};
    static const kp_dtype types[] = {KP_DTYPE_F32, KP_DTYPE_F16, KP_DTYPE_BF16, KP_DTYPE_I8G};
    kp_backend *be[3] = {new_backend(1), new_backend(2), new_backend(3)};
    for (size_t d = 0; d < 4; d++)
        for (int n = 1; n <= 5; n += 4) {
            const int64_t rows = 1027, cols = 96;
            float *v = xmalloc((size_t)(rows * cols) * 4), *x = xmalloc((size_t)(n * cols) * 4);
            fill_gauss(&rng, v, (size_t)(rows * cols), 0.5f);
            fill_gauss(&rng, x, (size_t)(n * cols), 1.0f);
            tw w;
            tw_make(&w, types[d], rows, cols, 32, v);
            float *y[3];
            for (int k = 0; k < 3; k++) {
                y[k] = xmalloc((size_t)(n * rows) * 4);
                run_backend(be[k], &w, x, n, y[k]);
            }
            assert_memory_equal(y[0], y[1], (size_t)(n * rows) * 4);
            assert_memory_equal(y[0], y[2], (size_t)(n * rows) * 4);
            for (int k = 0; k < 3; k++)
                free(y[k]);
            free(v), free(x);
            tw_free(&w);
        }
    for (int k = 0; k < 3; k++)
        be[k]->ops->destroy(be[k]);
}

/* With the backend's own kernels, a row of a batch equals the same row computed alone: prompt
 * prefill and one-token decode agree bit for bit (tiles never change a dot product). */
static void test_batch_equals_single(void **state)
{
    (void)state;
    test_rng rng = {555};
    static const kp_dtype types[] = {KP_DTYPE_F32, KP_DTYPE_F16, KP_DTYPE_BF16, KP_DTYPE_I8G};
    kp_backend *be = new_backend(2);
    kp_cpu_backend_set_blas_min_tokens(be, 0);
    for (int l = 0; l <= (int)kp_cpu_isa_detected(); l++)
        for (size_t d = 0; d < 4; d++) {
            const int64_t rows = 71, cols = 160;
            const int n = 7;
            float *v = xmalloc((size_t)(rows * cols) * 4), *x = xmalloc((size_t)(n * cols) * 4);
            fill_gauss(&rng, v, (size_t)(rows * cols), 0.5f);
            fill_gauss(&rng, x, (size_t)(n * cols), 1.0f);
            tw w;
            tw_make(&w, types[d], rows, cols, 32, v);
            float *yb = xmalloc((size_t)(n * rows) * 4), *y1 = xmalloc((size_t)rows * 4);
            kp_isa old = kp_cpu_isa_cap((kp_isa)l);
            run_backend(be, &w, x, n, yb);
            for (int t = 0; t < n; t++) {
                run_backend(be, &w, x + t * cols, 1, y1);
                assert_memory_equal(y1, yb + t * rows, (size_t)rows * 4);
            }
            kp_cpu_isa_cap(old);
            free(v), free(x), free(yb), free(y1);
            tw_free(&w);
        }
    be->ops->destroy(be);
}

int main(void)
{
    fprintf(stderr, "detected ISA: %s, in use: %s\n", kp_isa_name(kp_cpu_isa_detected()),
            kp_isa_name(kp_cpu_isa()));
    for (int l = KP_ISA_AVX2; l < KP_ISA_COUNT; l++)
        have_isa((kp_isa)l, "matmul SIMD comparisons");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_supports),
        cmocka_unit_test(test_float_types_random),
        cmocka_unit_test(test_float_types_exact),
        cmocka_unit_test(test_prepare_rounds_activations),
        cmocka_unit_test(test_i8g_random),
        cmocka_unit_test(test_i8g_exact),
        cmocka_unit_test(test_i8g_prepare_rounding),
        cmocka_unit_test(test_i8g_groups_cross_rows),
        cmocka_unit_test(test_backend_matmul),
        cmocka_unit_test(test_f32_acts),
        cmocka_unit_test(test_threads_identical),
        cmocka_unit_test(test_batch_equals_single),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
