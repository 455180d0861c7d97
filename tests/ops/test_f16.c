/* Half-precision conversions: all 65536 halves decode like the format definition and
 * re-encode to the same bits; encoding rounds to nearest, ties to even, at every midpoint;
 * the F16C prepare paths agree with the portable encoder bit for bit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ops_test.h"

static int is_nan_half(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff); }

static void test_exhaustive_round_trip(void **state)
{
    (void)state;
    for (uint32_t i = 0; i < 65536; i++) {
        uint16_t h = (uint16_t)i;
        float f = kp_f16_to_f32(h);
        double r = ref_half(h);
        if (is_nan_half(h)) {
            assert_true(isnan(f));
            assert_true(is_nan_half(kp_f32_to_f16(f)));
            continue;
        }
        assert_true((double)f == r);
        assert_true(!!signbit(f) == (int)(i >> 15));
        assert_int_equal(kp_f32_to_f16(f), h);
    }
}

/* Between two adjacent finite halves of the same sign, the midpoint (exact in float: 12
 * significant bits) goes to the one with an even last bit; one float ulp either side goes to
 * the nearer one. */
static void test_midpoints(void **state)
{
    (void)state;
    for (uint32_t i = 0; i < 0x7bff; i++)
        for (int s = 0; s < 2; s++) {
            uint16_t lo = (uint16_t)(i | (s << 15)), hi = (uint16_t)(lo + 1);
            double a = ref_half(lo), b = ref_half(hi);
            float mid = (float)((a + b) / 2);
            assert_true((double)mid == (a + b) / 2);
            uint16_t even = (lo & 1) ? hi : lo;
            assert_int_equal(kp_f32_to_f16(mid), even);
            float toward_lo = nextafterf(mid, (float)a), toward_hi = nextafterf(mid, (float)b);
            assert_int_equal(kp_f32_to_f16(toward_lo), lo);
            assert_int_equal(kp_f32_to_f16(toward_hi), hi);
        }
}

static void test_edges(void **state)
{
    (void)state;
    assert_int_equal(kp_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(kp_f32_to_f16(65519.99f), 0x7bff);
    assert_int_equal(kp_f32_to_f16(65520.0f), 0x7c00); /* the tie above the max rounds to inf */
    assert_int_equal(kp_f32_to_f16(-1e10f), 0xfc00);
    assert_int_equal(kp_f32_to_f16(INFINITY), 0x7c00);
    assert_int_equal(kp_f32_to_f16(-0.0f), 0x8000);
    assert_int_equal(kp_f32_to_f16(0x1p-25f), 0x0000);     /* half of the smallest subnormal: tie to 0 */
    assert_int_equal(kp_f32_to_f16(0x1.000002p-25f), 0x0001);
    assert_int_equal(kp_f32_to_f16(0x1p-24f), 0x0001);
    assert_int_equal(kp_f32_to_f16(0x1.8p-24f), 0x0002); /* 1.5 x smallest: tie to even (2) */
    assert_int_equal(kp_f32_to_f16(1e-30f), 0x0000);
    assert_true(is_nan_half(kp_f32_to_f16(NAN)));
}

/* The F16 prepare steps (F16C at AVX2 and AVX-512) encode exactly like kp_f32_to_f16 for
 * every non-NaN float; checked on random bit patterns over the whole range plus each half's
 * neighbourhood. */
static void test_simd_encoders_agree(void **state)
{
    (void)state;
    const int n = 1 << 16;
    float *x = xmalloc((size_t)n * 4);
    uint16_t *want = xmalloc((size_t)n * 2), *got = xmalloc((size_t)n * 2);
    test_rng rng = {3};
    for (int i = 0; i < n; i++) {
        uint32_t u;
        if (i & 1) {
            u = (uint32_t)rng_u64(&rng);
        } else { /* near a half value: its float plus a few ulps */
            float f = kp_f16_to_f32((uint16_t)(i >> 1));
            memcpy(&u, &f, 4);
            u += (uint32_t)rng_int(&rng, -4096, 4096);
        }
        memcpy(&x[i], &u, 4);
        if (isnan(x[i]))
            x[i] = 0.0f;
        want[i] = kp_f32_to_f16(x[i]);
    }
    float one = 1.0f;
    int64_t ne[2] = {1, 1};
    kp_tensor t;
    kp_tensor_init(&t, "w", KP_DTYPE_F16, 2, ne, &one);
    for (int l = KP_ISA_AVX2; l < KP_ISA_COUNT; l++) {
        if (!have_isa((kp_isa)l, "F16C encoder agreement"))
            continue;
        const kp_cpu_wtype *wt = kp_cpu_wtype_get_isa(KP_DTYPE_F16, (kp_isa)l);
        wt->prepare(got, x, 1, n, &t);
        assert_memory_equal(got, want, (size_t)n * 2);
    }
    free(x), free(want), free(got);
}

static void test_bf16_decode(void **state)
{
    (void)state;
    for (uint32_t i = 0; i < 65536; i++) {
        float f = kp_bf16_to_f32((uint16_t)i);
        double r = ref_bf16((uint16_t)i);
        if (isnan(r))
            assert_true(isnan(f));
        else
            assert_true((double)f == r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exhaustive_round_trip),
        cmocka_unit_test(test_midpoints),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_simd_encoders_agree),
        cmocka_unit_test(test_bf16_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
