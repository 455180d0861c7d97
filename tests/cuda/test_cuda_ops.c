/* Every CUDA op against the CPU backend's scalar path (KP_ISA=scalar) on odd shapes: weight
 * rows not a multiple of 32 or 256, 1, 7 and 300 tokens, GQA 4:1, head sizes 64 and 128, long
 * contexts, every weight type. Matmuls are checked against a double-precision product of the
 * CPU's own dequantized rows, since the GPU keeps activations in float for every type. Outputs
 * are poisoned with NaN first, so an element the GPU never wrote fails. */
#include <math.h>
#include <stdint.h>

#include "../ops/ops_test.h"
#include "cuda_test.h"
#include "lib/kv_rows.h"

static kp_backend *gpu, *cpu;
static int failures;

static void check(const char *what, const float *got, const double *want, size_t n, double tol)
{
    double mx = 0.0, worst = 0.0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++)
        mx = fabs(want[i]) > mx ? fabs(want[i]) : mx;
    for (size_t i = 0; i < n; i++) {
        double d = isnan(got[i]) ? INFINITY : fabs(got[i] - want[i]);
        if (d > worst) {
            worst = d;
            at = i;
        }
    }
    double rel = worst / (mx > 0 ? mx : 1.0);
    int ok = rel <= tol;
    printf("%-4s %-58s max rel err %.2e (limit %.0e)%s\n", ok ? "ok" : "FAIL", what, rel, tol,
           ok ? "" : " <--");
    if (!ok) {
        printf("      at %zu: got %g want %g\n", at, got[at], want[at]);
        failures++;
    }
}

static void check_f(const char *what, const float *got, const float *want, size_t n, double tol)
{
    double *w = xmalloc(n * sizeof *w);
    for (size_t i = 0; i < n; i++)
        w[i] = want[i];
    check(what, got, w, n, tol);
    free(w);
}

static float *dev_floats(size_t n, float fill)
{
    float *h = xmalloc(n * sizeof *h);
    for (size_t i = 0; i < n; i++)
        h[i] = fill;
    float *d = dev_from(gpu, h, n * sizeof *h);
    free(h);
    return d;
}

/* ---- weights */

static void put_half(uint8_t *p, float v)
{
    uint16_t h = kp_f32_to_f16(v);
    memcpy(p, &h, 2);
}

/* Random blocks of type t with sane scales at the offsets ggml's layouts give them. */
static void fill_weight(test_rng *r, kp_dtype t, uint8_t *data, size_t nbytes, int64_t nelems)
{
    switch (t) {
    case KP_DTYPE_F32:
        fill_gauss(r, (float *)data, (size_t)nelems, 1.0f);
        return;
    case KP_DTYPE_F16:
        for (int64_t i = 0; i < nelems; i++)
            ((uint16_t *)data)[i] = kp_f32_to_f16(rng_gauss(r));
        return;
    case KP_DTYPE_BF16:
        for (int64_t i = 0; i < nelems; i++) {
            float f = rng_gauss(r);
            uint32_t u;
            memcpy(&u, &f, 4);
            ((uint16_t *)data)[i] = (uint16_t)(u >> 16);
        }
        return;
    default:
        break;
    }
    for (size_t i = 0; i < nbytes; i++)
        data[i] = (uint8_t)rng_u64(r);
    if (t == KP_DTYPE_I8G)
        return;
    const size_t bb = kp_dtype_block_bytes(t);
    for (size_t b = 0; b + bb <= nbytes; b += bb) {
        uint8_t *blk = data + b;
        float d = 0.01f + 0.04f * (rng_unif(r) + 1.0f) / 2.0f;
        switch (t) {
        case KP_DTYPE_Q6_K: put_half(blk + 208, d); break;
        case KP_DTYPE_Q4_1: case KP_DTYPE_Q5_1: case KP_DTYPE_Q4_K: case KP_DTYPE_Q5_K:
            put_half(blk, d);
            put_half(blk + 2, rng_unif(r) * 0.05f);
            break;
        default: put_half(blk, d); break;
        }
    }
}

typedef struct wcase {
    kp_dtype t;
    int64_t cols, rows;
    int32_t group; /* I8G */
    int f32_acts;  /* Hugging Face / KuiperLLama weights: the product must stay in float */
} wcase;

static void matmul_case(const wcase *c, int n, uint64_t seed)
{
    test_rng r = {seed};
    int64_t ne[2] = {c->cols, c->rows};
    kp_tensor w;
    kp_tensor_init(&w, "w", c->t, 2, ne, NULL);
    if (c->t == KP_DTYPE_I8G)
        w.nbytes = (size_t)(c->cols * c->rows);
    uint8_t *data = xmalloc(w.nbytes);
    fill_weight(&r, c->t, data, w.nbytes, c->cols * c->rows);
    w.data = data;
    float *scales = NULL;
    if (c->t == KP_DTYPE_I8G) {
        size_t ns = (size_t)((c->cols * c->rows + c->group - 1) / c->group);
        scales = xmalloc(ns * sizeof *scales);
        for (size_t i = 0; i < ns; i++)
            scales[i] = 0.002f + 0.01f * (rng_unif(&r) + 1.0f);
        w.scales = scales;
        w.group = c->group;
    }
    w.f32_acts = c->f32_acts;
    /* reference rows from the CPU backend's dequantization (its embedding op) */
    int32_t *ids = xmalloc((size_t)c->rows * sizeof *ids);
    for (int64_t i = 0; i < c->rows; i++)
        ids[i] = (int32_t)i;
    float *wf = xmalloc((size_t)(c->rows * c->cols) * sizeof *wf);
    cpu->ops->embedding(cpu, wf, &w, ids, (int)c->rows);
    float *x = xmalloc((size_t)n * c->cols * sizeof *x);
    fill_gauss(&r, x, (size_t)n * c->cols, 1.0f);
    double *want = xmalloc((size_t)n * c->rows * sizeof *want);
    for (int t = 0; t < n; t++)
        for (int64_t row = 0; row < c->rows; row++) {
            double s = 0.0;
            for (int64_t k = 0; k < c->cols; k++)
                s += (double)wf[row * c->cols + k] * x[(int64_t)t * c->cols + k];
            want[(int64_t)t * c->rows + row] = s;
        }

    /* the GPU: placed weight, its embedding and its matmul */
    const kp_tensor host = w;
    w.host_data = w.data;
    w.host_scales = w.scales;
    if (gpu->ops->place_weight(gpu, &w) != KP_OK) {
        printf("FAIL place_weight %s: %s\n", kp_dtype_name(c->t), kp_error_text());
        failures++;
        goto out;
    }
    float *dx = dev_from(gpu, x, (size_t)n * c->cols * sizeof *x);
    float *dy = dev_floats((size_t)n * c->rows, NAN);
    gpu->ops->matmul(gpu, dy, &w, dx, n, NULL);
    float *got = xmalloc((size_t)n * c->rows * sizeof *got);
    to_host(gpu, got, dy, (size_t)n * c->rows * sizeof *got);
    char what[160];
    snprintf(what, sizeof what, "matmul %s %lldx%lld, %d token%s%s%s", kp_dtype_name(c->t), (long long)c->rows,
             (long long)c->cols, n, n == 1 ? "" : "s", c->t == KP_DTYPE_I8G && c->cols % c->group ? " (groups straddle rows)" : "",
             c->f32_acts ? " f32_acts" : "");
    /* float weights in float; F16/BF16/quantized prefill goes through half-precision tiles */
    double tol = c->t == KP_DTYPE_F32 || c->f32_acts || n <= 8 ? 1e-4 : 1e-2;
    check(what, got, want, (size_t)n * c->rows, tol);
    if (n == 7) { /* embedding of 7 rows, against the CPU's dequantized floats */
        float *de = dev_floats((size_t)7 * c->cols, NAN);
        int32_t pick[7] = {0, 1, 5, 2, (int32_t)c->rows - 1, 3, 0};
        gpu->ops->embedding(gpu, de, &w, pick, 7);
        float *ge = xmalloc((size_t)7 * c->cols * sizeof *ge), *ce = xmalloc((size_t)7 * c->cols * sizeof *ce);
        to_host(gpu, ge, de, (size_t)7 * c->cols * sizeof *ge);
        cpu->ops->embedding(cpu, ce, &host, pick, 7);
        snprintf(what, sizeof what, "embedding %s, 7 rows of %lld", kp_dtype_name(c->t), (long long)c->cols);
        check_f(what, ge, ce, (size_t)7 * c->cols, 1e-6);
        free(ge);
        free(ce);
        gpu->ops->buf_free(gpu, de, (size_t)7 * c->cols * sizeof(float));
    }
    free(got);
    gpu->ops->buf_free(gpu, dx, (size_t)n * c->cols * sizeof *x);
    gpu->ops->buf_free(gpu, dy, (size_t)n * c->rows * sizeof(float));
    gpu->ops->release_weight(gpu, &w);
out:
    free(want);
    free(x);
    free(wf);
    free(ids);
    free(scales);
    free(data);
}

static void test_matmuls(void)
{
    const wcase cases[] = {
        {KP_DTYPE_F32, 67, 301, 0, 0},   {KP_DTYPE_F16, 67, 301, 0, 0},   {KP_DTYPE_BF16, 67, 301, 0, 0},
        {KP_DTYPE_Q8_0, 96, 301, 0, 0},  {KP_DTYPE_Q4_0, 96, 301, 0, 0},  {KP_DTYPE_Q4_1, 96, 301, 0, 0},
        {KP_DTYPE_Q5_0, 96, 301, 0, 0},  {KP_DTYPE_Q5_1, 96, 301, 0, 0},  {KP_DTYPE_Q4_K, 512, 301, 0, 0},
        {KP_DTYPE_Q5_K, 512, 301, 0, 0}, {KP_DTYPE_Q6_K, 512, 301, 0, 0}, {KP_DTYPE_I8G, 96, 301, 32, 0},
        {KP_DTYPE_I8G, 100, 37, 24, 0}, /* groups straddle rows, as KuiperLLama files allow */
        /* widths that allow 16-byte loads (the vectorised decode path) */
        {KP_DTYPE_F32, 132, 301, 0, 0}, {KP_DTYPE_F16, 264, 301, 0, 0}, {KP_DTYPE_BF16, 264, 301, 0, 0},
        {KP_DTYPE_F16, 67, 301, 0, 1}, {KP_DTYPE_BF16, 67, 301, 0, 1}, {KP_DTYPE_I8G, 100, 37, 24, 1},
    };
    const int ns[] = {1, 7, 300};
    uint64_t seed = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (size_t j = 0; j < 3; j++)
            matmul_case(&cases[i], ns[j], seed++);
}

/* ---- element-wise ops: the same inputs through both backends */

static void test_elementwise(void)
{
    test_rng r = {77};
    const int n = 7, dim = 1000;
    const size_t len = (size_t)n * dim;
    float *x = xmalloc(len * 4), *y = xmalloc(len * 4), *w = xmalloc(dim * 4), *got = xmalloc(len * 4);
    fill_gauss(&r, x, len, 1.0f);
    fill_gauss(&r, y, len, 1.0f);
    fill_gauss(&r, w, dim, 1.0f);
    float *dx = dev_from(gpu, x, len * 4), *dy = dev_from(gpu, y, len * 4), *dw = dev_from(gpu, w, dim * 4);
    float *dout = dev_floats(len, NAN);
    float *ref = xmalloc(len * 4);

    gpu->ops->rmsnorm(gpu, dout, dx, dw, n, dim, 1e-5f);
    to_host(gpu, got, dout, len * 4);
    cpu->ops->rmsnorm(cpu, ref, x, w, n, dim, 1e-5f);
    check_f("rmsnorm 7 x 1000", got, ref, len, 1e-5);
    /* per-head norm (qk_norm): many short rows, in place */
    gpu->ops->rmsnorm(gpu, dx, dx, dw, n * 10, 100, 1e-6f);
    to_host(gpu, got, dx, len * 4);
    memcpy(ref, x, len * 4);
    cpu->ops->rmsnorm(cpu, ref, ref, w, n * 10, 100, 1e-6f);
    check_f("rmsnorm in place 70 x 100", got, ref, len, 1e-5);
    gpu->ops->upload(gpu, dx, x, len * 4);

    gpu->ops->add_row(gpu, dx, dw, n, dim);
    to_host(gpu, got, dx, len * 4);
    memcpy(ref, x, len * 4);
    cpu->ops->add_row(cpu, ref, w, n, dim);
    check_f("add_row 7 x 1000", got, ref, len, 1e-6);

    gpu->ops->add(gpu, dx, dy, len);
    to_host(gpu, got, dx, len * 4);
    cpu->ops->add(cpu, ref, y, len);
    check_f("add 7000", got, ref, len, 1e-6);

    gpu->ops->upload(gpu, dx, x, len * 4);
    gpu->ops->swiglu(gpu, dout, dx, dy, n, dim);
    to_host(gpu, got, dout, len * 4);
    cpu->ops->swiglu(cpu, ref, x, y, n, dim);
    check_f("swiglu 7 x 1000", got, ref, len, 1e-5);

    /* kv_store, F32 and F16, at an offset; compared as position-major rows, since each backend
     * lays its cache out its own way */
    for (int f16 = 0; f16 < 2; f16++) {
        const int kv_dim = 96, pos0 = 5, rows = 20;
        const kp_kv_shape shape = {f16 ? KP_KV_F16 : KP_KV_F32, rows, 3, 32};
        const size_t es = f16 ? 2 : 4, cbytes = (size_t)rows * kv_dim * es;
        uint8_t *hc = xmalloc(cbytes), *tmp = xmalloc(cbytes);
        uint8_t *grows = xmalloc(cbytes), *hrows = xmalloc(cbytes);
        memset(hc, 0, cbytes);
        void *dc = dev_from(gpu, hc, cbytes);
        gpu->ops->kv_store(gpu, dc, &shape, dx, pos0, n);
        cpu->ops->kv_store(cpu, hc, &shape, x, pos0, n);
        int same = kp_kv_rows_download(gpu, grows, dc, &shape, rows, tmp) == KP_OK &&
                   kp_kv_rows_download(cpu, hrows, hc, &shape, rows, tmp) == KP_OK &&
                   memcmp(grows, hrows, cbytes) == 0;
        free(grows);
        free(hrows);
        free(tmp);
        printf("%-4s kv_store %s, 7 rows at position 5\n", same ? "ok" : "FAIL", f16 ? "F16" : "F32");
        failures += !same;
        gpu->ops->buf_free(gpu, dc, cbytes);
        free(hc);
        
    }

    /* rope: both styles, with and without frequency factors, head sizes 64 and 128 */
    for (int hd = 64; hd <= 128; hd += 64)
        for (int style = 0; style < 2; style++)
            for (int withff = 0; withff < 2; withff++) {
                const int heads = 5, nt = 7;
                const size_t rl = (size_t)nt * heads * hd;
                float ff[64];
                for (int i = 0; i < hd / 2; i++)
                    ff[i] = 1.0f + (float)i / 8.0f;
                float *dff = withff ? dev_from(gpu, ff, sizeof ff) : NULL;
                gpu->ops->upload(gpu, dout, x, rl * 4);
                gpu->ops->rope(gpu, dout, nt, heads, hd, 1234, 500000.0f, dff, (kp_rope_style)style);
                to_host(gpu, got, dout, rl * 4);
                memcpy(ref, x, rl * 4);
                cpu->ops->rope(cpu, ref, nt, heads, hd, 1234, 500000.0f, withff ? ff : NULL, (kp_rope_style)style);
                char what[96];
                snprintf(what, sizeof what, "rope %s hd %d at 1234%s", style ? "neox" : "norm", hd,
                         withff ? " with freq factors" : "");
                check_f(what, got, ref, rl, 1e-5);
                if (dff)
                    gpu->ops->buf_free(gpu, dff, sizeof ff);
            }
    gpu->ops->buf_free(gpu, dx, len * 4);
    gpu->ops->buf_free(gpu, dy, len * 4);
    gpu->ops->buf_free(gpu, dw, dim * 4);
    gpu->ops->buf_free(gpu, dout, len * 4);
    free(x); free(y); free(w); free(got); free(ref);
}

/* ---- attention against the CPU's, same caches */

static void attention_case(int n_head, int n_head_kv, int hd, int pos0, int n_tok, int f16)
{
    test_rng r = {(uint64_t)(n_head * 131 + hd * 7 + pos0 * 3 + n_tok + f16)};
    const int span = pos0 + n_tok, q_dim = n_head * hd, kv_dim = n_head_kv * hd;
    const size_t es = f16 ? 2 : 4, cb = (size_t)span * kv_dim * es, fb = (size_t)span * kv_dim * 4;
    /* each backend stores the same rows in its own cache layout */
    const kp_kv_shape shape = {f16 ? KP_KV_F16 : KP_KV_F32, span, n_head_kv, hd};
    float *kf = xmalloc(fb), *vf = xmalloc(fb);
    for (size_t i = 0; i < (size_t)span * kv_dim; i++)
        kf[i] = rng_gauss(&r), vf[i] = rng_gauss(&r);
    uint8_t *k = xmalloc(cb), *v = xmalloc(cb);
    cpu->ops->kv_store(cpu, k, &shape, kf, 0, span);
    cpu->ops->kv_store(cpu, v, &shape, vf, 0, span);
    float *q = xmalloc((size_t)n_tok * q_dim * 4), *out = xmalloc((size_t)n_tok * q_dim * 4),
          *got = xmalloc((size_t)n_tok * q_dim * 4), *scratch = xmalloc((size_t)n_head * span * 4);
    fill_gauss(&r, q, (size_t)n_tok * q_dim, 1.0f);
    kp_attn_args a = {out, q, k, v, f16 ? KP_KV_F16 : KP_KV_F32, span, pos0, n_tok, n_head, n_head_kv, hd,
                      1.0f / sqrtf((float)hd), scratch, 1};
    cpu->ops->attention(cpu, &a);
    kp_attn_args g = a;
    g.q = dev_from(gpu, q, (size_t)n_tok * q_dim * 4);
    float *dkf = dev_from(gpu, kf, fb), *dvf = dev_from(gpu, vf, fb);
    void *dk = dev_from(gpu, k, cb), *dv = dev_from(gpu, v, cb);
    gpu->ops->kv_store(gpu, dk, &shape, dkf, 0, span);
    gpu->ops->kv_store(gpu, dv, &shape, dvf, 0, span);
    gpu->ops->buf_free(gpu, dkf, fb);
    gpu->ops->buf_free(gpu, dvf, fb);
    g.k_cache = dk;
    g.v_cache = dv;
    g.out = dev_floats((size_t)n_tok * q_dim, NAN);
    g.scratch = dev_floats((size_t)n_head * span, 0.0f);
    gpu->ops->attention(gpu, &g);
    to_host(gpu, got, g.out, (size_t)n_tok * q_dim * 4);
    char what[128];
    snprintf(what, sizeof what, "attention %d:%d heads, hd %d, %d token%s at %d, %s KV", n_head, n_head_kv, hd,
             n_tok, n_tok == 1 ? "" : "s", pos0, f16 ? "F16" : "F32");
    check_f(what, got, out, (size_t)n_tok * q_dim, 1e-4);
    gpu->ops->buf_free(gpu, (void *)g.q, (size_t)n_tok * q_dim * 4);
    gpu->ops->buf_free(gpu, (void *)g.k_cache, cb);
    gpu->ops->buf_free(gpu, (void *)g.v_cache, cb);
    gpu->ops->buf_free(gpu, g.out, (size_t)n_tok * q_dim * 4);
    gpu->ops->buf_free(gpu, g.scratch, (size_t)n_head * span * 4);
    free(kf); free(vf); free(k); free(v); free(q); free(out); free(got); free(scratch);
}

static void test_attention(void)
{
    for (int hd = 64; hd <= 128; hd += 64)
        for (int f16 = 0; f16 < 2; f16++) {
            attention_case(8, 2, hd, 0, 1, f16);    /* GQA 4:1, first token */
            attention_case(8, 2, hd, 0, 7, f16);    /* a 7-token prompt */
            attention_case(8, 2, hd, 12, 7, f16);   /* a second turn */
            attention_case(8, 2, hd, 0, 300, f16);  /* a 300-token prompt: chunks of keys */
            attention_case(8, 8, hd, 300, 1, f16);  /* plain multi-head decode */
            attention_case(32, 8, hd, 4000, 1, f16); /* a long context */
        }
}

int main(void)
{
    int bad = 0;
    gpu = cuda_backend_or_skip("tests/cuda ops", &bad);
    if (!gpu)
        return bad ? 1 : CUDA_SKIP;
    cpu = new_backend(1);
    test_matmuls();
    test_elementwise();
    test_attention();
    kp_status st = gpu->ops->sync(gpu);
    if (st) {
        printf("FAIL: a CUDA error was pending at the end: %s\n", kp_error_text());
        failures++;
    }
    gpu->ops->destroy(gpu);
    cpu->ops->destroy(cpu);
    printf("%d failure%s\n", failures, failures == 1 ? "" : "s");
    return failures ? 1 : 0;
}
