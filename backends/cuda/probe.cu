// The CUDA module's entry point (libkuiper-cuda.so; see module.h). Only this file sees the CUDA
// runtime, which it links statically, so the module needs nothing but the driver at run time.
#include <cuda_runtime.h>
#include <stdio.h>

#include "module.h"

static int device_count(char *why, size_t cap)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        snprintf(why, cap, "cudaGetDeviceCount: %s", cudaGetErrorString(e));
        return 0;
    }
    if (n == 0)
        snprintf(why, cap, "the CUDA runtime reports 0 devices");
    return n;
}

static const kp_cuda_module_api api = {KP_CUDA_MODULE_ABI, device_count};

extern "C" __attribute__((visibility("default"))) const kp_cuda_module_api *kp_cuda_module_get(void)
{
    return &api;
}
