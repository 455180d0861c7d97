/* ISA detection and capping: names, the cap's effect on dispatch, and KP_ISA (read once per
 * process; meson runs this program again under KP_ISA=scalar / avx2 / avx512). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ops_test.h"

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(kp_isa_name(KP_ISA_SCALAR), "scalar");
    assert_string_equal(kp_isa_name(KP_ISA_AVX2), "avx2");
    assert_string_equal(kp_isa_name(KP_ISA_AVX512), "avx512");
    assert_string_equal(kp_isa_name(KP_ISA_AVX512_VNNI), "avx512_vnni");
    assert_string_equal(kp_isa_name(KP_ISA_COUNT), "invalid");
}

/* The level in use honours KP_ISA when set. */
static void test_env(void **state)
{
    (void)state;
    const char *e = getenv("KP_ISA");
    kp_isa want = kp_cpu_isa_detected();
    for (int l = 0; e && l < KP_ISA_COUNT; l++)
        if (strcmp(e, kp_isa_name((kp_isa)l)) == 0 && (kp_isa)l < want)
            want = (kp_isa)l;
    fprintf(stderr, "KP_ISA=%s detected=%s in use=%s\n", e ? e : "(unset)",
            kp_isa_name(kp_cpu_isa_detected()), kp_isa_name(kp_cpu_isa()));
    assert_int_equal(kp_cpu_isa(), want);
}

static void test_cap(void **state)
{
    (void)state;
    kp_isa before = kp_cpu_isa();
    kp_isa old = kp_cpu_isa_cap(KP_ISA_SCALAR);
    assert_int_equal(kp_cpu_isa(), KP_ISA_SCALAR);
    /* dispatch follows the cap */
    assert_ptr_equal(kp_cpu_wtype_get(KP_DTYPE_F32), kp_cpu_wtype_get_isa(KP_DTYPE_F32, KP_ISA_SCALAR));
    assert_ptr_equal(kp_cpu_wtype_get(KP_DTYPE_I8G), kp_cpu_wtype_get_isa(KP_DTYPE_I8G, KP_ISA_SCALAR));
    assert_int_equal(kp_cpu_isa_cap(old), KP_ISA_SCALAR);
    assert_int_equal(kp_cpu_isa(), before);
    /* a level above the hardware is never handed out */
    assert_ptr_equal(kp_cpu_wtype_get_isa(KP_DTYPE_F32, KP_ISA_AVX512_VNNI),
                     kp_cpu_wtype_get_isa(KP_DTYPE_F32, kp_cpu_isa_detected()));
    /* types without kernels */
    assert_null(kp_cpu_wtype_get_isa(KP_DTYPE_I32, KP_ISA_SCALAR));
    assert_null(kp_cpu_wtype_get_isa(KP_DTYPE_COUNT, KP_ISA_SCALAR));
    /* distinct SIMD tables exist where the CPU has them */
    if (have_isa(KP_ISA_AVX2, "distinct AVX2 table"))
        assert_ptr_not_equal(kp_cpu_wtype_get_isa(KP_DTYPE_F32, KP_ISA_AVX2),
                             kp_cpu_wtype_get_isa(KP_DTYPE_F32, KP_ISA_SCALAR));
    if (have_isa(KP_ISA_AVX512_VNNI, "distinct VNNI table"))
        assert_ptr_not_equal(kp_cpu_wtype_get_isa(KP_DTYPE_I8G, KP_ISA_AVX512_VNNI),
                             kp_cpu_wtype_get_isa(KP_DTYPE_I8G, KP_ISA_AVX512));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
