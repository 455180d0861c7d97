/* The CUDA backend's entry point. Kernels are a later milestone; for now this reports whether
 * a device exists, so callers get KP_ERR_UNSUPPORTED with a reason instead of a crash. */
#include "../backend.h"
#include "../../lib/internal.h"

#ifdef KP_HAVE_CUDA
int kp_cuda_device_count(void); /* probe.cu */
#endif

kp_status kp_backend_cuda_new(const kp_allocator *a, kp_backend **out)
{
    (void)a;
    *out = NULL;
#ifdef KP_HAVE_CUDA
    int n = kp_cuda_device_count();
    if (n <= 0)
        return kp_fail(KP_ERR_UNSUPPORTED, "no CUDA device is present");
    return kp_fail(KP_ERR_UNSUPPORTED, "the CUDA backend has no kernels yet (%d device%s found)", n,
                   n == 1 ? "" : "s");
#else
    return kp_fail(KP_ERR_UNSUPPORTED, "libkuiper was built without CUDA (-Dcuda=disabled or no nvcc)");
#endif
}
