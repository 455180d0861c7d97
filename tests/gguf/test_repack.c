/* The packed layout of the CPU backend (backends/cpu/quant/repack.h) on odd shapes: packing is
 * lossless, packed rows dequantize to the file's floats, the scalar kernel on packed data
 * equals the file-layout scalar kernel bit for bit (Q4_K's scale bytes are rebuilt exactly), and every SIMD level's packed GEMM agrees
 * with the scalar reference for 1..9 tokens, on random and on saturating inputs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cpu/cpu_features.h"
#include "backends/cpu/quant/repack.h"

static const kp_dtype types[] = {KP_DTYPE_Q4_0, KP_DTYPE_Q4_1, KP_DTYPE_Q8_0, KP_DTYPE_Q4_K, KP_DTYPE_Q5_K, KP_DTYPE_Q6_K};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}
static float urand(void) { return (float)rnd() / 4294967296.f; }

/* Random blocks with plausible F16 scale (and min) fields; `extreme` makes every value the
 * largest magnitude of its type, so no integer path may saturate. */
static void random_matrix(kp_dtype t, int64_t rows, int64_t cols, uint8_t *w, int extreme)
{
    const size_t bb = kp_dtype_block_bytes(t), n = (size_t)(rows * cols / kp_dtype_block_elems(t));
    for (size_t b = 0; b < n; b++) {
        uint8_t *blk = w + b * bb;
        for (size_t i = 0; i < bb; i++)
            blk[i] = extreme ? (t == KP_DTYPE_Q8_0 ? 0x80 : 0x00) : (uint8_t)rnd(); /* -128 / nibble 0 */
        if (extreme && t == KP_DTYPE_Q4_1)
            memset(blk + 4, 0xFF, 16);
        const int k4 = t == KP_DTYPE_Q4_K || t == KP_DTYPE_Q5_K;
        if (extreme && k4) /* largest scales, mins and values */
            memset(blk + 4, 0xFF, bb - 4);
        if (t == KP_DTYPE_Q6_K) { /* values, scales, then d; extreme: q = 0 (-32), scales -128 */
            kp_blk_q6_k *k6 = (kp_blk_q6_k *)(void *)blk;
            if (extreme)
                memset(k6->scales, 0x80, sizeof k6->scales);
            k6->d = kp_f32_to_f16(0.0005f + 0.002f * urand());
            continue;
        }
        uint16_t d = kp_f32_to_f16(0.001f + 0.05f * urand()), m = kp_f32_to_f16(-0.2f + 0.4f * urand());
        if (k4) {
            d = kp_f32_to_f16(0.0005f + 0.002f * urand());
            m = kp_f32_to_f16(0.0002f + 0.001f * urand());
        }
        memcpy(blk, &d, 2);
        if (t == KP_DTYPE_Q4_1 || k4)
            memcpy(blk + 2, &m, 2);
    }
}

static void make_tensor(kp_tensor *w, kp_dtype t, int64_t rows, int64_t cols, void *data)
{
    const int64_t ne[2] = {cols, rows};
    kp_tensor_init(w, "w", t, 2, ne, data);
}

static void test_supported(void **state)
{
    (void)state;
    static uint8_t buf[8 * 64 * 34];
    kp_tensor w;
    make_tensor(&w, KP_DTYPE_Q4_0, 16, 64, buf);
    assert_true(kp_r8_supported(&w));
    make_tensor(&w, KP_DTYPE_Q4_0, 12, 64, buf); /* not whole groups of 8 rows */
    assert_false(kp_r8_supported(&w));
    make_tensor(&w, KP_DTYPE_Q4_K, 8, 256, buf);
    assert_true(kp_r8_supported(&w));
    make_tensor(&w, KP_DTYPE_Q4_K, 8, 288, buf); /* not whole super-blocks */
    assert_false(kp_r8_supported(&w));
    make_tensor(&w, KP_DTYPE_Q5_K, 16, 512, buf);
    assert_true(kp_r8_supported(&w));
    make_tensor(&w, KP_DTYPE_Q6_K, 8, 256, buf);
    assert_true(kp_r8_supported(&w));
    make_tensor(&w, KP_DTYPE_Q5_0, 8, 256, buf); /* no packed kernels for Q5_0 */
    assert_false(kp_r8_supported(&w));
    make_tensor(&w, KP_DTYPE_F32, 8, 64, buf);
    assert_false(kp_r8_supported(&w));
}

static void check_shape(kp_dtype t, int64_t rows, int64_t cols, int extreme)
{
    const size_t rb = kp_dtype_row_bytes(t, cols), nbytes = rb * (size_t)rows;
    uint8_t *file = malloc(nbytes), *row = malloc(rb);
    random_matrix(t, rows, cols, file, extreme);
    kp_tensor wf, wp;
    make_tensor(&wf, t, rows, cols, file);
    make_tensor(&wp, t, rows, cols, NULL);
    assert_true(kp_r8_supported(&wf));
    uint8_t *packed = malloc(kp_r8_packed_bytes(&wf));
    wp.data = packed;
    kp_r8_pack(&wf, file, packed);
    wp.layout = KP_LAYOUT_R8;

    /* lossless, and the same floats when dequantized */
    float *a = malloc(sizeof(float) * (size_t)cols), *b = malloc(sizeof(float) * (size_t)cols);
    const kp_cpu_wtype *fs = kp_cpu_wtype_get_isa(t, KP_ISA_SCALAR), *ps = kp_r8_wtype_get(t, KP_ISA_SCALAR);
    for (int64_t r = 0; r < rows; r++) {
        kp_r8_unpack_row(&wp, r, row);
        assert_memory_equal(row, file + (size_t)r * rb, rb);
        fs->dequant_row(&wf, r, a);
        ps->dequant_row(&wp, r, b);
        assert_memory_equal(a, b, sizeof(float) * (size_t)cols);
    }

    const int n_max = 9;
    float *x = malloc(sizeof(float) * (size_t)(cols * n_max));
    for (int64_t i = 0; i < cols * n_max; i++)
        x[i] = extreme ? ((i & 1) ? -1.f : 1.f) : 4.f * (urand() - 0.5f) * (rnd() % 50 ? 1.f : 25.f);
    void *work = malloc(fs->work_size(cols, n_max));
    float *want = malloc(sizeof(float) * (size_t)(rows * n_max)), *got = malloc(sizeof(float) * (size_t)(rows * n_max));
    for (int n = 1; n <= n_max; n++) {
        fs->prepare(work, x, n, cols, &wf);
        fs->rows(want, &wf, work, x, n, 0, rows);
        /* scalar on packed data: bit for bit */
        ps->rows(got, &wp, work, x, n, 0, rows);
        assert_memory_equal(got, want, sizeof(float) * (size_t)(rows * n));
        for (int l = KP_ISA_AVX2; l <= (int)kp_cpu_isa_detected(); l++) {
            const kp_cpu_wtype *pv = kp_r8_wtype_get(t, (kp_isa)l);
            memset(got, 0, sizeof(float) * (size_t)(rows * n));
            /* two ranges of whole groups, as the thread pool splits them */
            const int64_t mid = (rows / 2) & ~(int64_t)7;
            pv->rows(got, &wp, work, x, n, 0, mid);
            pv->rows(got, &wp, work, x, n, mid, rows);
            for (int64_t i = 0; i < rows * n; i++) {
                /* the block sums are exact integers; only the float accumulation order differs */
                const double tol = 1e-5 * (fabs(want[i]) + 1.0) + 1e-4 * (double)cols / 256.0;
                if (fabs((double)got[i] - (double)want[i]) > tol)
                    fail_msg("%s %s rows %lld cols %lld n %d: out %lld = %.9g, scalar %.9g", kp_dtype_name(t),
                             kp_isa_name((kp_isa)l), (long long)rows, (long long)cols, n, (long long)i, got[i],
                             want[i]);
            }
        }
    }
    free(file), free(packed), free(row), free(a), free(b), free(x), free(work), free(want), free(got);
}

static void test_shapes(void **state)
{
    (void)state;
    const int64_t shapes[][2] = {{8, 32}, {16, 96}, {24, 160}, {40, 800}, {8, 256}, {24, 768}, {64, 2048}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            if (shapes[s][1] % kp_dtype_block_elems(types[i]) == 0)
                check_shape(types[i], shapes[s][0], shapes[s][1], 0);
    if (kp_cpu_isa_detected() < KP_ISA_AVX512_VNNI)
        fprintf(stderr, "note: this CPU has no AVX-512 VNNI; that level of the packed kernels was not run\n");
    if (kp_cpu_isa_detected() < KP_ISA_AVX2)
        fprintf(stderr, "note: this CPU has no AVX2; only the scalar packed kernel was run\n");
}

static void test_extremes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        check_shape(types[i], 16, 512, 1);
}

/* The packed kernels' own activation quantizer writes the scalar one's bytes, on ordinary,
 * huge, tiny, zero, infinite and NaN inputs. */
static void test_prepare(void **state)
{
    (void)state;
    const int64_t cols = 768; /* whole Q8_K super-blocks too */
    const int n = 5;
    float *x = malloc(sizeof(float) * (size_t)(cols * n));
    for (int trial = 0; trial < 20; trial++) {
        for (int64_t i = 0; i < cols * n; i++) {
            const uint32_t r = rnd() % 64;
            x[i] = r == 0 ? 0.f : r == 1 ? 1e30f : r == 2 ? -1e-30f : r == 3 && trial > 10 ? INFINITY
                 : r == 4 && trial > 15 ? NAN : 8.f * (urand() - 0.5f);
        }
        for (int64_t i = 0; i < 32; i++) /* a block of zeros */
            x[64 + i] = 0.f;
        for (int64_t i = 0; i < 256; i++) /* a super-block of zeros, and ties of opposite sign */
            x[256 + i] = 0.f;
        for (int64_t i = 512; i < 1024; i++)
            x[i] = 0.5f * (urand() - 0.5f);
        x[512 + 7] = 3.f, x[512 + 100] = -3.f, x[768 + 9] = -2.5f, x[768 + 50] = 2.5f;
        for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
            const kp_cpu_wtype *ref = kp_cpu_wtype_get_isa(types[k], KP_ISA_SCALAR);
            const size_t ws = ref->work_size(cols, n);
            uint8_t *a = calloc(1, ws), *b = calloc(1, ws);
            ref->prepare(a, x, n, cols, NULL);
            for (int l = KP_ISA_AVX2; l <= (int)kp_cpu_isa_detected(); l++) {
                memset(b, 0, ws);
                kp_r8_wtype_get(types[k], (kp_isa)l)->prepare(b, x, n, cols, NULL);
                assert_memory_equal(a, b, ws);
            }
            free(a), free(b);
        }
    }
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_supported),
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_extremes),
        cmocka_unit_test(test_prepare),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
