/* Quantized block kernels: activation quantizers on hand-checked values (ggml's rounding),
 * each type's dot against a double-precision dot of the dequantized operands, every SIMD level
 * against the scalar one, the registered matmul traits (prepare + rows over ranges and batches),
 * and dequantization of the real quantized fixtures against the F32 file holding the same
 * weights. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/quant/quant.h"
#include "lib/format/gguf.h"
#include "lib/mapfile.h"
#include "testdata.h"

static const kp_dtype qtypes[] = {KP_DTYPE_Q8_0, KP_DTYPE_Q4_0, KP_DTYPE_Q4_1, KP_DTYPE_Q5_0,
                                  KP_DTYPE_Q5_1, KP_DTYPE_Q4_K, KP_DTYPE_Q5_K, KP_DTYPE_Q6_K};
#define N_QTYPES (sizeof qtypes / sizeof qtypes[0])

/* ---- deterministic random numbers */
static uint64_t rng_state = 0x853c49e6748fea9bull;
static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}
static float urand(void) { return (float)rnd() / 2147483648.f; } /* [0, 1) */
static float nrand(void)
{
    float u = urand() + 1e-7f, v = urand();
    return sqrtf(-2.f * logf(u)) * cosf(6.2831853f * v);
}

static void put16(uint8_t *p, uint16_t h) { memcpy(p, &h, 2); }

/* Random but well-formed blocks: random quant bytes, positive F16 scales of a plausible size. */
static void random_row(kp_dtype t, int64_t cols, uint8_t *w)
{
    const size_t bb = kp_dtype_block_bytes(t), nb = (size_t)(cols / kp_dtype_block_elems(t));
    for (size_t i = 0; i < nb * bb; i++)
        w[i] = (uint8_t)rnd();
    for (size_t b = 0; b < nb; b++) {
        uint8_t *blk = w + b * bb;
        uint16_t d = kp_f32_to_f16(0.001f + 0.05f * urand());
        uint16_t m = kp_f32_to_f16(-0.2f + 0.4f * urand());
        switch (t) {
        case KP_DTYPE_Q8_0:
        case KP_DTYPE_Q4_0:
        case KP_DTYPE_Q5_0: put16(blk, d); break;
        case KP_DTYPE_Q4_1:
        case KP_DTYPE_Q5_1: put16(blk, d), put16(blk + 2, m); break;
        case KP_DTYPE_Q4_K:
        case KP_DTYPE_Q5_K: put16(blk, d), put16(blk + 2, kp_f32_to_f16(0.001f + 0.02f * urand())); break;
        case KP_DTYPE_Q6_K: put16(blk + 208, d); break;
        default: break;
        }
    }
}

static void random_acts(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        x[i] = nrand();
        if (rnd() % 97 == 0)
            x[i] *= 20.f; /* outliers, as real activations have */
        if (rnd() % 211 == 0)
            x[i] = 0.f;
    }
}

/* Dequantized activation value i of a quantized row. */
static double act_value(kp_act_kind k, const void *row, int64_t cols, int64_t i)
{
    const int8_t *q = row;
    const float *d = kp_act_d(row, cols);
    return (double)q[i] * (double)d[i / (k == KP_ACT_Q8_K ? KP_QKK : KP_QK)];
}

/* Reference: double dot of dequantized weights with dequantized activations. Q8_1 carries the
 * block sum as its own F16 value s (ggml multiplies the weight minimum by it), so the reference
 * replaces d * sum(q) by s in the minimum term, exactly as the format defines it. */
static double ref_dot(kp_dtype t, const uint8_t *w, const void *act, int64_t cols, double *mag)
{
    kp_act_kind k = (kp_act_kind)kp_act_kind_for(t);
    float *wf = malloc(sizeof(float) * (size_t)cols);
    kp_qdequant(t, w, cols, wf);
    double sum = 0, m = 0;
    for (int64_t i = 0; i < cols; i++) {
        double p = (double)wf[i] * act_value(k, act, cols, i);
        sum += p;
        m += fabs(p);
    }
    if (k == KP_ACT_Q8_1) {
        const float *d = kp_act_d(act, cols), *s = kp_act_s(act, cols);
        const int8_t *q = act;
        const size_t bb = kp_dtype_block_bytes(t);
        for (int64_t b = 0; b < cols / KP_QK; b++) {
            uint16_t mh;
            memcpy(&mh, w + (size_t)b * bb + 2, 2);
            double qs = 0;
            for (int j = 0; j < KP_QK; j++)
                qs += q[b * KP_QK + j];
            sum += (double)kp_f16_to_f32(mh) * ((double)s[b] - (double)d[b] * qs);
        }
    }
    free(wf);
    *mag = m;
    return sum;
}

typedef float (*dot_fn)(const void *, const void *, int64_t);

static dot_fn scalar_dot(kp_dtype t)
{
    switch (t) {
    case KP_DTYPE_Q8_0: return kp_qdot_q8_0_scalar;
    case KP_DTYPE_Q4_0: return kp_qdot_q4_0_scalar;
    case KP_DTYPE_Q4_1: return kp_qdot_q4_1_scalar;
    case KP_DTYPE_Q5_0: return kp_qdot_q5_0_scalar;
    case KP_DTYPE_Q5_1: return kp_qdot_q5_1_scalar;
    case KP_DTYPE_Q4_K: return kp_qdot_q4_k_scalar;
    case KP_DTYPE_Q5_K: return kp_qdot_q5_k_scalar;
    case KP_DTYPE_Q6_K: return kp_qdot_q6_k_scalar;
    default: return NULL;
    }
}

#ifdef KP_QUANT_X86
#define SIMD_DOT(sfx)                                  \
    static dot_fn sfx##_dot(kp_dtype t)                \
    {                                                  \
        switch (t) {                                   \
        case KP_DTYPE_Q8_0: return kp_qdot_q8_0_##sfx; \
        case KP_DTYPE_Q4_0: return kp_qdot_q4_0_##sfx; \
        case KP_DTYPE_Q4_1: return kp_qdot_q4_1_##sfx; \
        case KP_DTYPE_Q5_0: return kp_qdot_q5_0_##sfx; \
        case KP_DTYPE_Q5_1: return kp_qdot_q5_1_##sfx; \
        case KP_DTYPE_Q4_K: return kp_qdot_q4_k_##sfx; \
        case KP_DTYPE_Q5_K: return kp_qdot_q5_k_##sfx; \
        case KP_DTYPE_Q6_K: return kp_qdot_q6_k_##sfx; \
        default: return NULL;                          \
        }                                              \
    }
SIMD_DOT(avx2)
SIMD_DOT(avx512vnni)

static int have_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
static int have_vnni(void)
{
    __builtin_cpu_init();
    return have_avx2() && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw");
}
#endif

/* ---------------------------------------------------------------- activation quantizers */

static void test_q8_0_rounding(void **state)
{
    (void)state;
    /* amax 127 makes the multiplier exactly 1, so the rounding rule shows: ties go to even
     * (x86 ggml rounds with _mm256_round_ps), not away from zero. */
    float x[32] = {127.f, 2.5f, 3.5f, -2.5f, -3.5f, 0.5f, 1.5f, -0.5f, 126.49f, -127.f, 0.f, 1.4999f};
    uint8_t row[256];
    assert_true(kp_act_row_bytes(KP_ACT_Q8_1, 32) <= sizeof row);
    kp_act_quantize_row(KP_ACT_Q8_1, x, 32, row);
    const int8_t *q = (const int8_t *)row;
    const int want[12] = {127, 2, 4, -2, -4, 0, 2, 0, 126, -127, 0, 1};
    for (int i = 0; i < 12; i++)
        assert_int_equal(q[i], want[i]);
    assert_true(kp_act_d(row, 32)[0] == 1.0f);
    int sum = 0;
    for (int i = 0; i < 32; i++)
        sum += q[i];
    assert_true(kp_act_s(row, 32)[0] == (float)sum); /* d = 1, so s = sum exactly */

    /* d is stored as F16: 1/127 is not representable, the stored value is its F16 rounding */
    float y[32];
    for (int i = 0; i < 32; i++)
        y[i] = (float)(i - 16) / 16.f;
    kp_act_quantize_row(KP_ACT_Q8_0, y, 32, row);
    assert_true(kp_act_d(row, 32)[0] == kp_f16_to_f32(kp_f32_to_f16(1.f / 127.f)));
    assert_int_equal(q[0], -127);
    assert_int_equal(q[8], (int)lrint(-0.5 * 127)); /* -63.5 -> -64 (even) */

    /* all-zero block: d = 0, q = 0 */
    memset(y, 0, sizeof y);
    kp_act_quantize_row(KP_ACT_Q8_0, y, 32, row);
    assert_true(kp_act_d(row, 32)[0] == 0.f);
    for (int i = 0; i < 32; i++)
        assert_int_equal(q[i], 0);
}

static void test_q8_k_rounding(void **state)
{
    (void)state;
    float x[256];
    memset(x, 0, sizeof x);
    /* the element of largest magnitude, 127, maps to -127: iscale = -1, d = -1 */
    x[0] = 2.5f, x[1] = 3.5f, x[2] = -2.5f, x[3] = 127.f, x[17] = -127.f, x[18] = 0.5f, x[255] = 1.5f;
    uint8_t row[1024];
    assert_true(kp_act_row_bytes(KP_ACT_Q8_K, 256) <= sizeof row);
    kp_act_quantize_row(KP_ACT_Q8_K, x, 256, row);
    const int8_t *q = (const int8_t *)row;
    assert_true(kp_act_d(row, 256)[0] == -1.f);
    assert_int_equal(q[0], -2);
    assert_int_equal(q[1], -4);
    assert_int_equal(q[2], 2);
    assert_int_equal(q[3], -127);
    assert_int_equal(q[17], 127); /* ties in magnitude: the first one sets the sign */
    assert_int_equal(q[18], 0);
    assert_int_equal(q[255], -2);
    const int16_t *bs = kp_act_bsums(row, 256);
    assert_int_equal(bs[0], -2 - 4 + 2 - 127);
    assert_int_equal(bs[1], 127);
    assert_int_equal(bs[15], -2);
    for (int j = 2; j < 15; j++)
        assert_int_equal(bs[j], 0);
}

/* Quantized activations reconstruct the input to within half a step. */
static void test_act_roundtrip(void **state)
{
    (void)state;
    const int64_t cols = 768;
    float x[768];
    random_acts(x, cols);
    for (int k = 0; k < 3; k++) {
        uint8_t *row = malloc(kp_act_row_bytes((kp_act_kind)k, cols));
        kp_act_quantize_row((kp_act_kind)k, x, cols, row);
        const int bs = k == KP_ACT_Q8_K ? KP_QKK : KP_QK;
        for (int64_t b = 0; b < cols / bs; b++) {
            double amax = 0;
            for (int j = 0; j < bs; j++)
                amax = fmax(amax, fabs(x[b * bs + j]));
            for (int j = 0; j < bs; j++) {
                double v = act_value((kp_act_kind)k, row, cols, b * bs + j);
                /* half a step, plus F16 rounding of d for the 32-blocks (2^-11 of amax) */
                assert_true(fabs(v - x[b * bs + j]) <= amax / 127.0 * 0.5 + amax * 1e-3 + 1e-30);
            }
        }
        free(row);
    }
}

/* ---------------------------------------------------------------- dot products */

static void check_dots(kp_dtype t, int64_t cols)
{
    const size_t wb = kp_dtype_row_bytes(t, cols);
    kp_act_kind k = (kp_act_kind)kp_act_kind_for(t);
    uint8_t *w = malloc(wb);
    float *x = malloc(sizeof(float) * (size_t)cols);
    uint8_t *a = malloc(kp_act_row_bytes(k, cols));
    for (int trial = 0; trial < 40; trial++) {
        random_row(t, cols, w);
        random_acts(x, cols);
        kp_act_quantize_row(k, x, cols, a);
        double mag;
        const double ref = ref_dot(t, w, a, cols, &mag);
        const float s = scalar_dot(t)(w, a, cols);
        /* float32 accumulation over cols terms: a few ulps of the absolute sum */
        const double tol = 2e-6 * mag + 1e-30;
        if (fabs(s - ref) > tol)
            fail_msg("%s cols %lld: scalar %.9g vs double %.9g (|terms| %.3g)", kp_dtype_name(t),
                     (long long)cols, s, ref, mag);
#ifdef KP_QUANT_X86
        if (have_avx2()) {
            const float v = avx2_dot(t)(w, a, cols);
            if (fabs(v - s) > tol)
                fail_msg("%s cols %lld: avx2 %.9g vs scalar %.9g", kp_dtype_name(t), (long long)cols, v, s);
        }
        if (have_vnni()) {
            const float v = avx512vnni_dot(t)(w, a, cols);
            if (fabs(v - s) > tol)
                fail_msg("%s cols %lld: avx512vnni %.9g vs scalar %.9g", kp_dtype_name(t), (long long)cols,
                         v, s);
        }
#endif
    }
    free(w);
    free(x);
    free(a);
}

static void test_dots(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_QTYPES; i++) {
        const int64_t bs = kp_dtype_block_elems(qtypes[i]);
        const int64_t sizes[] = {bs, 2 * bs, 3 * bs, 768, 2304};
        for (size_t j = 0; j < sizeof sizes / sizeof sizes[0]; j++)
            if (sizes[j] % bs == 0)
                check_dots(qtypes[i], sizes[j]);
    }
#ifdef KP_QUANT_X86
    if (!have_vnni())
        fprintf(stderr, "note: this CPU has no AVX-512 VNNI; that level was not exercised\n");
#endif
}

/* Extreme inputs: all-max weights against all-max activations must not saturate any path. */
static void test_dots_extremes(void **state)
{
    (void)state;
    const int64_t cols = 512;
    float x[512];
    for (int i = 0; i < cols; i++)
        x[i] = (i & 1) ? -1.f : 1.f;
    for (size_t i = 0; i < N_QTYPES; i++) {
        kp_dtype t = qtypes[i];
        kp_act_kind k = (kp_act_kind)kp_act_kind_for(t);
        uint8_t *w = malloc(kp_dtype_row_bytes(t, cols));
        uint8_t *a = malloc(kp_act_row_bytes(k, cols));
        for (int fill = 0; fill < 3; fill++) {
            random_row(t, cols, w); /* scales */
            const size_t bb = kp_dtype_block_bytes(t);
            for (size_t b = 0; b < kp_dtype_row_bytes(t, cols) / bb; b++) {
                uint8_t *blk = w + b * bb;
                size_t lo = 0, hi = bb; /* quant bytes range, keeping the scale fields */
                if (t == KP_DTYPE_Q8_0 || t == KP_DTYPE_Q4_0 || t == KP_DTYPE_Q5_0)
                    lo = 2;
                else if (t == KP_DTYPE_Q4_1 || t == KP_DTYPE_Q5_1)
                    lo = 4;
                else if (t == KP_DTYPE_Q4_K || t == KP_DTYPE_Q5_K)
                    lo = 4;
                else
                    hi = 208;
                memset(blk + lo, fill == 0 ? 0xFF : fill == 1 ? 0x80 : 0x00, hi - lo);
            }
            kp_act_quantize_row(k, x, cols, a);
            double mag;
            const double ref = ref_dot(t, w, a, cols, &mag);
            const double tol = 2e-6 * mag + 1e-30;
            assert_true(fabs(scalar_dot(t)(w, a, cols) - ref) <= tol);
#ifdef KP_QUANT_X86
            if (have_avx2() && fabs(avx2_dot(t)(w, a, cols) - ref) > tol)
                fail_msg("%s fill %d: avx2 %.9g vs %.9g", kp_dtype_name(t), fill, avx2_dot(t)(w, a, cols), ref);
            if (have_vnni() && fabs(avx512vnni_dot(t)(w, a, cols) - ref) > tol)
                fail_msg("%s fill %d: vnni %.9g vs %.9g", kp_dtype_name(t), fill,
                         avx512vnni_dot(t)(w, a, cols), ref);
#endif
        }
        free(w);
        free(a);
    }
}

/* ---------------------------------------------------------------- registered traits */

static void test_traits(void **state)
{
    (void)state;
    const int64_t cols = 512, rows = 37;
    static const int batches[] = {1, 2, 3, 5, 8}; /* every tile width and remainder */
    for (size_t k = 0; k < N_QTYPES * 5; k++) {
        const size_t i = k % N_QTYPES;
        const int n = batches[k / N_QTYPES];
        kp_dtype t = qtypes[i];
        const size_t rb = kp_dtype_row_bytes(t, cols);
        uint8_t *wd = malloc(rb * rows);
        for (int64_t r = 0; r < rows; r++)
            random_row(t, cols, wd + r * rb);
        kp_tensor w;
        int64_t ne[2] = {cols, rows};
        kp_tensor_init(&w, "w", t, 2, ne, wd);
        float *x = malloc(sizeof(float) * (size_t)(cols * n));
        random_acts(x, cols * n);
        float *ref = malloc(sizeof(float) * (size_t)(rows * n));
        float *y = malloc(sizeof(float) * (size_t)(rows * n));
        float *deq = malloc(sizeof(float) * (size_t)cols);
        for (int isa = KP_ISA_SCALAR; isa < KP_ISA_COUNT; isa++) {
#ifdef KP_QUANT_X86
            if ((isa >= KP_ISA_AVX2 && !have_avx2()) || (isa >= KP_ISA_AVX512_VNNI && !have_vnni()))
                continue;
#endif
            const kp_cpu_wtype *wt = kp_cpu_quant_wtype_get(t, (kp_isa)isa);
            assert_non_null(wt);
            assert_non_null(wt->prepare);
            size_t ws = wt->work_size(cols, n);
            void *work = aligned_alloc(64, (ws + 63) & ~(size_t)63);
            wt->prepare(work, x, n, cols, &w);
            memset(y, 0, sizeof(float) * (size_t)(rows * n));
            /* uneven ranges, as threads would split them */
            wt->rows(y, &w, work, x, n, 0, 7);
            wt->rows(y, &w, work, x, n, 7, 8);
            wt->rows(y, &w, work, x, n, 8, rows);
            const size_t arb = kp_act_row_bytes((kp_act_kind)kp_act_kind_for(t), cols);
            for (int tk = 0; tk < n; tk++)
                for (int64_t r = 0; r < rows; r++) {
                    double mag;
                    double want = ref_dot(t, wd + r * rb, (uint8_t *)work + tk * arb, cols, &mag);
                    if (fabs(y[tk * rows + r] - want) > 2e-6 * mag)
                        fail_msg("%s isa %d: y[%d][%lld] = %.9g, want %.9g", kp_dtype_name(t), isa, tk,
                                 (long long)r, y[tk * rows + r], want);
                }
            /* dequant_row is the shared scalar one */
            wt->dequant_row(&w, 3, deq);
            float deq2[512];
            kp_qdequant(t, wd + 3 * rb, cols, deq2);
            assert_memory_equal(deq, deq2, sizeof(float) * (size_t)cols);
            free(work);
        }
        assert_null(kp_cpu_quant_wtype_get(KP_DTYPE_F32, KP_ISA_SCALAR));
        assert_null(kp_cpu_quant_wtype_get(KP_DTYPE_Q8_K, KP_ISA_AVX2));
        free(wd), free(x), free(ref), free(y), free(deq);
    }
}

/* ---------------------------------------------------------------- dequantizing the fixtures */

typedef struct qfile {
    kp_mapped_file f;
    kp_gguf *g;
} qfile;

static int open_q(qfile *q, const char *name)
{
    char rel[256], path[1024];
    snprintf(rel, sizeof rel, "models/gguf/%s", name);
    if (!kp_test_file(path, sizeof path, rel))
        return 0;
    assert_int_equal(kp_file_map(path, &q->f), KP_OK);
    assert_int_equal(kp_gguf_open(NULL, q->f.data, q->f.size, &q->g), KP_OK);
    return 1;
}

static void close_q(qfile *q)
{
    kp_gguf_free(q->g);
    kp_file_unmap(&q->f);
}

/* The quantized kp-llama-small files hold the F32 file's weights, quantized by llama.cpp.
 * Dequantizing them must land within the format's step of the originals; a wrong bit layout
 * gives errors of the order of the weights themselves. */
static void test_fixture_dequant(void **state)
{
    (void)state;
    static const struct {
        const char *file;
        double max_rel_rms; /* rms(error) / rms(weights) over a tensor, per type */
    } files[] = {
        {"kp-llama-small-Q8_0.gguf", 0.01}, {"kp-llama-small-Q4_0.gguf", 0.15},
        {"kp-llama-small-Q4_1.gguf", 0.15}, {"kp-llama-small-Q5_0.gguf", 0.08},
        {"kp-llama-small-Q6_K.gguf", 0.04}, {"kp-llama-small-Q4_K_M.gguf", 0.15},
    };
    qfile ref;
    if (!open_q(&ref, "kp-llama-small.gguf"))
        skip();
    double worst[KP_DTYPE_COUNT] = {0};
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        qfile q;
        if (!open_q(&q, files[k].file))
            skip();
        int n_checked = 0;
        for (size_t i = 0; i < q.g->n_tensors; i++) {
            const kp_gguf_tensor *t = &q.g->tensors[i];
            if (kp_act_kind_for(t->dtype) < 0)
                continue;
            const kp_gguf_tensor *o = kp_gguf_find_tensor(ref.g, t->name);
            assert_non_null(o);
            assert_int_equal(o->dtype, KP_DTYPE_F32);
            assert_memory_equal(o->ne, t->ne, sizeof o->ne);
            const int64_t cols = t->ne[0], rows = t->ne[1];
            const size_t rb = kp_dtype_row_bytes(t->dtype, cols);
            float *row = malloc(sizeof(float) * (size_t)cols);
            double se = 0, sw = 0;
            for (int64_t r = 0; r < rows; r++) {
                kp_qdequant(t->dtype, t->data + r * rb, cols, row);
                const float *orig = (const float *)o->data + r * cols;
                for (int64_t c = 0; c < cols; c++) {
                    se += ((double)row[c] - orig[c]) * ((double)row[c] - orig[c]);
                    sw += (double)orig[c] * orig[c];
                }
            }
            free(row);
            const double rel = sqrt(se / sw);
            if (rel > worst[t->dtype])
                worst[t->dtype] = rel;
            double lim = t->dtype == KP_DTYPE_Q6_K ? 0.04 : files[k].max_rel_rms;
            if (rel > lim)
                fail_msg("%s %s (%s): rms error %.4f of rms weight, limit %.3f", files[k].file, t->name,
                         kp_dtype_name(t->dtype), rel, lim);
            n_checked++;
        }
        assert_true(n_checked >= 28);
        close_q(&q);
    }
    for (int t = 0; t < KP_DTYPE_COUNT; t++)
        if (worst[t] > 0)
            fprintf(stderr, "  dequant %-5s: worst rms error / rms weight %.4f\n", kp_dtype_name((kp_dtype)t),
                    worst[t]);
    close_q(&ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_q8_0_rounding),   cmocka_unit_test(test_q8_k_rounding),
        cmocka_unit_test(test_act_roundtrip),   cmocka_unit_test(test_dots),
        cmocka_unit_test(test_dots_extremes),   cmocka_unit_test(test_traits),
        cmocka_unit_test(test_fixture_dequant),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
