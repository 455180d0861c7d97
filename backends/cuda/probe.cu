// Counts CUDA devices; 0 when the driver or a device is missing (never aborts).
#include <cuda_runtime.h>

extern "C" __attribute__((visibility("hidden"))) int kp_cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess)
        return 0;
    return n;
}
