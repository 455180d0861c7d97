/* Causal attention against a double-precision reference (scores, softmax, weighted values),
 * with F32 and F16 caches, grouped-query heads, several positions and token counts; every
 * SIMD level against the bound, and 1 / 2 / 3 threads for identical bits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ops_test.h"
#include "lib/tensor.h"

enum { TILE = 8 }; /* scratch rows per head, as a session gives them */

typedef struct acase {
    int n_head, n_head_kv, hd, pos0, n_tok;
} acase;

static const acase CASES[] = {
    {1, 1, 1, 0, 1},  {4, 2, 16, 0, 3},  {8, 8, 64, 5, 1},  {6, 2, 17, 100, 3},
    {8, 4, 32, 0, 7}, {32, 8, 128, 40, 2}, {2, 1, 255, 3, 4},
    {4, 1, 16, 600, 2}, /* several position blocks, one KV head for all */
};

typedef struct abuf {
    float *q, *out, *scratch, *kf, *vf;
    void *k, *v; /* cache of the case's type, in the backend's layout */
    size_t n_q, n_kv;
    kp_kv_layout layout;
    kp_kv_shape shape;
} abuf;

static void abuf_make(abuf *b, const acase *c, kp_kv_type kt, test_rng *rng, kp_backend *be)
{
    const int q_dim = c->n_head * c->hd, kv_dim = c->n_head_kv * c->hd, span = c->pos0 + c->n_tok;
    b->n_q = (size_t)c->n_tok * q_dim;
    b->n_kv = (size_t)span * kv_dim;
    b->q = xmalloc(b->n_q * 4);
    b->out = xmalloc(b->n_q * 4);
    b->scratch = xmalloc((size_t)c->n_head * TILE * span * 4);
    b->kf = xmalloc(b->n_kv * 4);
    b->vf = xmalloc(b->n_kv * 4);
    fill_gauss(rng, b->q, b->n_q, 1.0f);
    fill_gauss(rng, b->kf, b->n_kv, 1.0f);
    fill_gauss(rng, b->vf, b->n_kv, 1.0f);
    size_t es = kt == KP_KV_F16 ? 2 : 4;
    /* room for 5 positions more than used, as a session's cache has: a head-major cache's heads
     * are n_ctx rows apart, not span */
    b->layout = be->ops->kv_layout;
    b->shape = (kp_kv_shape){kt, span + 5, c->n_head_kv, c->hd};
    b->k = xmalloc((size_t)(span + 5) * kv_dim * es);
    b->v = xmalloc((size_t)(span + 5) * kv_dim * es);
    be->ops->kv_store(be, b->k, &b->shape, b->kf, 0, span);
    be->ops->kv_store(be, b->v, &b->shape, b->vf, 0, span);
}

static void abuf_free(abuf *b)
{
    free(b->q), free(b->out), free(b->scratch), free(b->kf), free(b->vf), free(b->k), free(b->v);
}

static kp_attn_args args_for(const acase *c, kp_kv_type kt, abuf *b)
{
    kp_attn_args a = {
        .out = b->out, .q = b->q, .k_cache = b->k, .v_cache = b->v, .kv_type = kt,
        .n_ctx = b->shape.n_ctx, .pos0 = c->pos0, .n_tok = c->n_tok, .n_head = c->n_head, .n_head_kv = c->n_head_kv,
        .head_dim = c->hd, .scale = 1.0f / sqrtf((float)c->hd), .scratch = b->scratch, .scratch_tokens = TILE,
    };
    return a;
}

static double cache_at(const void *cache, kp_kv_type kt, size_t i)
{
    return kt == KP_KV_F16 ? ref_half(((const uint16_t *)cache)[i]) : ((const float *)cache)[i];
}

/* Checks b->out against the double reference read from the stored cache. Bound: each score is
 * a float dot product off by at most hd*u*sum|q k| (times the scale), a change d in the scores
 * moves each softmax weight by at most 2d relatively, exp / sum / divide add (np+4)u, and the
 * weighted sum of values adds np*u of sum att*|v|: so |err| <= max|v| * (2d + (2np+8)u),
 * doubled for margin (FLT_EPSILON = 2u). */
static void check(const acase *c, kp_kv_type kt, const abuf *b, const kp_attn_args *a,
                  const char *what)
{
    const int q_dim = c->n_head * c->hd;
    const int group = c->n_head / c->n_head_kv;
    double *att = xmalloc((size_t)(c->pos0 + c->n_tok) * 8);
    for (int t = 0; t < c->n_tok; t++)
        for (int h = 0; h < c->n_head; h++) {
            const float *q = b->q + (size_t)t * q_dim + (size_t)h * c->hd;
            const int np = c->pos0 + t + 1, kvh = h / group;
            double max = -INFINITY, sum = 0, dmax = 0, vmax = 0;
            for (int p = 0; p < np; p++) {
                double s = 0, sa = 0;
                for (int i = 0; i < c->hd; i++) {
                    double kk = cache_at(b->k, kt, kp_kv_index(b->layout, &b->shape, p, kvh, i));
                    s += q[i] * kk;
                    sa += fabs(q[i] * kk);
                }
                att[p] = s * a->scale;
                max = fmax(max, att[p]);
                dmax = fmax(dmax, (c->hd + 2) * FLT_EPSILON * sa * a->scale);
            }
            for (int p = 0; p < np; p++)
                sum += (att[p] = exp(att[p] - max));
            for (int i = 0; i < c->hd; i++) {
                double o = 0;
                for (int p = 0; p < np; p++) {
                    double vv = cache_at(b->v, kt, kp_kv_index(b->layout, &b->shape, p, kvh, i));
                    o += att[p] / sum * vv;
                    vmax = fmax(vmax, fabs(vv));
                }
                double got = b->out[(size_t)t * q_dim + (size_t)h * c->hd + i];
                double tol = 2 * vmax * (2 * dmax + (2 * np + 8) * FLT_EPSILON) + 1e-30;
                if (!(fabs(got - o) <= tol)) {
                    fprintf(stderr, "%s: t %d head %d dim %d: %.9g vs %.9g (tol %.3g)\n", what, t, h,
                            i, got, o, tol);
                    fail();
                }
            }
        }
    free(att);
}

static void test_attention_reference(void **state)
{
    (void)state;
    test_rng rng = {21};
    kp_backend *be = new_backend(2);
    char what[160];
    for (size_t ci = 0; ci < sizeof CASES / sizeof *CASES; ci++)
        for (int kt = 0; kt < 2; kt++) {
            const acase *c = &CASES[ci];
            abuf b;
            abuf_make(&b, c, (kp_kv_type)kt, &rng, be);
            kp_attn_args a = args_for(c, (kp_kv_type)kt, &b);
            for (int l = 0; l <= (int)kp_cpu_isa_detected(); l++) {
                kp_isa old = kp_cpu_isa_cap((kp_isa)l);
                memset(b.out, 0xff, b.n_q * 4); /* NaN: every output must be written */
                be->ops->attention(be, &a);
                kp_cpu_isa_cap(old);
                snprintf(what, sizeof what, "heads %d/%d hd %d pos0 %d n %d kv %s %s", c->n_head,
                         c->n_head_kv, c->hd, c->pos0, c->n_tok, kt ? "f16" : "f32",
                         kp_isa_name((kp_isa)l));
                check(c, (kp_kv_type)kt, &b, &a, what);
            }
            abuf_free(&b);
        }
    be->ops->destroy(be);
}

/* n_tok rows in one call equal one call per token (the causal mask is per token), and tiles
 * of 8, 3 or 1 token per pass over K and V give the same bits. */
static void test_batched_equals_stepwise(void **state)
{
    (void)state;
    test_rng rng = {22};
    kp_backend *be = new_backend(2);
    const acase c = {8, 2, 32, 300, 11}; /* two token tiles, several position blocks */
    abuf b;
    abuf_make(&b, &c, KP_KV_F32, &rng, be);
    kp_attn_args a = args_for(&c, KP_KV_F32, &b);
    const int q_dim = c.n_head * c.hd;
    float *tiled = xmalloc(b.n_q * 4);
    for (int tq = 1; tq <= TILE; tq += tq == 1 ? 2 : 5) {
        a.scratch_tokens = tq;
        be->ops->attention(be, &a);
        if (tq > 1)
            assert_memory_equal(tiled, b.out, b.n_q * 4);
        memcpy(tiled, b.out, b.n_q * 4);
    }
    free(tiled);
    float *one = xmalloc((size_t)q_dim * 4);
    for (int t = 0; t < c.n_tok; t++) {
        kp_attn_args s = a;
        s.q = b.q + (size_t)t * q_dim;
        s.out = one;
        s.pos0 = c.pos0 + t;
        s.n_tok = 1;
        be->ops->attention(be, &s);
        assert_memory_equal(one, b.out + (size_t)t * q_dim, (size_t)q_dim * 4);
    }
    free(one);
    abuf_free(&b);
    be->ops->destroy(be);
}

static void test_threads_identical(void **state)
{
    (void)state;
    kp_backend *be[3] = {new_backend(1), new_backend(2), new_backend(3)};
    /* 4 KV heads (whole groups per chunk) and 1 KV head (groups split between threads) */
    static const acase cases[] = {{12, 4, 64, 200, 3}, {6, 1, 32, 300, 2}};
    for (int ci = 0; ci < 2; ci++)
        for (int kt = 0; kt < 2; kt++) {
            test_rng rng = {23};
            const acase *c = &cases[ci];
            abuf b;
            abuf_make(&b, c, (kp_kv_type)kt, &rng, be[0]);
            kp_attn_args a = args_for(c, (kp_kv_type)kt, &b);
            float *y[3];
            for (int k = 0; k < 3; k++) {
                be[k]->ops->attention(be[k], &a);
                y[k] = xmalloc(b.n_q * 4);
                memcpy(y[k], b.out, b.n_q * 4);
            }
            assert_memory_equal(y[0], y[1], b.n_q * 4);
            assert_memory_equal(y[0], y[2], b.n_q * 4);
            for (int k = 0; k < 3; k++)
                free(y[k]);
            abuf_free(&b);
        }
    for (int k = 0; k < 3; k++)
        be[k]->ops->destroy(be[k]);
}

/* A score is the same bits whether its position is scored in a block (the SIMD kernels reduce
 * 8 or 16 positions' sums in one transposed tree) or alone (one reduction each). */
static void test_scores_blocks_equal_single(void **state)
{
    (void)state;
    static const int hds[] = {1, 7, 16, 17, 40, 64, 100, 128, 255};
    enum { NP = 53, STRIDE = 300 };
    test_rng rng = {24};
    float *q = xmalloc(256 * 4), *kf = xmalloc((size_t)NP * STRIDE * 4), *all = xmalloc(NP * 4);
    uint16_t *kh = xmalloc((size_t)NP * STRIDE * 2);
    fill_gauss(&rng, q, 256, 1.0f);
    fill_gauss(&rng, kf, (size_t)NP * STRIDE, 1.0f);
    for (size_t i = 0; i < (size_t)NP * STRIDE; i++)
        kh[i] = kp_f32_to_f16(kf[i]);
    for (int l = KP_ISA_AVX2; l <= (int)kp_cpu_isa_detected(); l++) {
        const kp_cpu_vec *vec = kp_cpu_vec_get((kp_isa)l);
        for (size_t hi = 0; hi < sizeof hds / sizeof *hds; hi++)
            for (int f16 = 0; f16 < 2; f16++) {
                const void *k = f16 ? (const void *)kh : (const void *)kf;
                const int hd = hds[hi];
                vec->scores(all, q, k, STRIDE, NP, hd, 0.125f, f16);
                for (int p = 0; p < NP; p++) {
                    float one;
                    vec->scores(&one, q, (const char *)k + (size_t)p * STRIDE * (f16 ? 2 : 4), STRIDE, 1, hd,
                                0.125f, f16);
                    if (memcmp(&one, &all[p], 4) != 0) {
                        fprintf(stderr, "%s hd %d %s position %d: %.9g in a block, %.9g alone\n",
                                kp_isa_name((kp_isa)l), hd, f16 ? "f16" : "f32", p, all[p], one);
                        fail();
                    }
                }
            }
    }
    free(q), free(kf), free(kh), free(all);
}

/* The SIMD softmax writes the scalar one's bits: rows of every tail length, with ties, signed
 * zeros, huge values, infinities and NaNs. */
static void test_softmax_equals_scalar(void **state)
{
    (void)state;
    test_rng rng = {25};
    enum { N = 300 };
    float *x = xmalloc(N * 4), *a = xmalloc(N * 4), *b = xmalloc(N * 4);
    for (int trial = 0; trial < 200; trial++) {
        const int n = trial < 40 ? trial + 1 : 1 + (int)(rng_u64(&rng) % N);
        fill_gauss(&rng, x, (size_t)n, trial % 3 ? 4.0f : 40.0f);
        for (int i = 0; i < n; i++) {
            const uint32_t r = rng_u64(&rng) % 97;
            x[i] = r == 0 ? 0.0f : r == 1 ? -0.0f : r == 2 && trial > 100 ? INFINITY : r == 3 && trial > 150 ? NAN
                 : r == 4 ? x[0] : x[i];
        }
        for (int l = KP_ISA_AVX2; l <= (int)kp_cpu_isa_detected(); l++) {
            memcpy(a, x, (size_t)n * 4);
            memcpy(b, x, (size_t)n * 4);
            kp_softmax_f32(a, n);
            kp_cpu_vec_get((kp_isa)l)->softmax(b, n);
            if (memcmp(a, b, (size_t)n * 4) != 0) {
                fprintf(stderr, "%s softmax, trial %d, n %d\n", kp_isa_name((kp_isa)l), trial, n);
                fail();
            }
        }
    }
    free(x), free(a), free(b);
}

int main(void)
{
    for (int l = KP_ISA_AVX2; l < KP_ISA_COUNT; l++)
        have_isa((kp_isa)l, "attention SIMD comparisons");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attention_reference),
        cmocka_unit_test(test_batched_equals_stepwise),
        cmocka_unit_test(test_threads_identical),
        cmocka_unit_test(test_scores_blocks_equal_single),
        cmocka_unit_test(test_softmax_equals_scalar),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
