/* The CUDA backend is a module loaded at run time (backends/cuda/module.h): whatever is missing
 * (the module, its entry point, the driver, a device, or CUDA in this build), asking for a CUDA
 * backend must be KP_ERR_UNSUPPORTED "no CUDA device" saying which, never a crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "backends/backend.h"

static kp_status try_cuda(void)
{
    kp_backend *be = (kp_backend *)1;
    kp_status st = kp_backend_cuda_new(NULL, &be);
    assert_null(be);
    return st;
}

#ifdef KP_HAVE_CUDA
/* The module built beside this test's library (KP_TEST_CUDA_MODULE, from meson): it loads, and
 * without a GPU the runtime's own reason is passed on. */
static void module_loads(void **state)
{
    (void)state;
    assert_int_equal(setenv("KP_CUDA_MODULE", KP_TEST_CUDA_MODULE, 1), 0);
    kp_status st = try_cuda();
    const char *msg = kp_last_error();
    assert_int_equal(st, KP_ERR_UNSUPPORTED);
    /* With a GPU: "no kernels yet (N devices found)"; without: the runtime's reason. */
    if (!strstr(msg, "no kernels yet")) {
        assert_non_null(strstr(msg, "no CUDA device ("));
        assert_null(strstr(msg, "could not be loaded"));
    }
}

/* A library that is not our module, and a path that does not exist: each named in the message. */
static void wrong_or_missing_module(void **state)
{
    (void)state;
    assert_int_equal(setenv("KP_CUDA_MODULE", "libm.so.6", 1), 0);
    assert_int_equal(try_cuda(), KP_ERR_UNSUPPORTED);
    assert_non_null(strstr(kp_last_error(), "no CUDA device: the CUDA module libkuiper-cuda.so could not be loaded"));
    assert_non_null(strstr(kp_last_error(), "libm.so.6: no kp_cuda_module_get symbol"));

    assert_int_equal(setenv("KP_CUDA_MODULE", "/nonexistent/libkuiper-cuda.so", 1), 0);
    assert_int_equal(try_cuda(), KP_ERR_UNSUPPORTED);
    assert_non_null(strstr(kp_last_error(), "/nonexistent/libkuiper-cuda.so: cannot open shared object file"));
    unsetenv("KP_CUDA_MODULE");
}
#else
static void built_without_cuda(void **state)
{
    (void)state;
    assert_int_equal(setenv("KP_CUDA_MODULE", "/nonexistent/libkuiper-cuda.so", 1), 0);
    assert_int_equal(try_cuda(), KP_ERR_UNSUPPORTED);
    assert_non_null(strstr(kp_last_error(), "no CUDA device: libkuiper was built without CUDA"));
    unsetenv("KP_CUDA_MODULE");
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
#ifdef KP_HAVE_CUDA
        /* First: once the real module is loaded (it is never unloaded), the loader's last
         * fallback, dlopen("libkuiper-cuda.so"), finds it already in the process. */
        cmocka_unit_test(wrong_or_missing_module),
        cmocka_unit_test(module_loads),
#else
        cmocka_unit_test(built_without_cuda),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
