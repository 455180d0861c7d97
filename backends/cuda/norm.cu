// RMSNorm: out[t] = w * (x[t] / sqrt(mean(x[t]^2) + eps)), one block per row.
#include "cuda_be.cuh"

__global__ void rmsnorm_kernel(float *out, const float *x, const float *w, int dim, float eps)
{
    __shared__ float part[32];
    const float *xr = x + (int64_t)blockIdx.x * dim;
    float *yr = out + (int64_t)blockIdx.x * dim;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
        ss += xr[i] * xr[i];
    for (int o = 16; o > 0; o >>= 1)
        ss += __shfl_xor_sync(0xffffffffu, ss, o);
    if ((threadIdx.x & 31) == 0)
        part[threadIdx.x / 32] = ss;
    __syncthreads();
    if (threadIdx.x < 32) {
        ss = threadIdx.x < blockDim.x / 32 ? part[threadIdx.x] : 0.0f;
        for (int o = 16; o > 0; o >>= 1)
            ss += __shfl_xor_sync(0xffffffffu, ss, o);
        if (threadIdx.x == 0)
            part[0] = ss;
    }
    __syncthreads();
    const float scale = 1.0f / sqrtf(part[0] / (float)dim + eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
        yr[i] = w[i] * (scale * xr[i]);
}

void kc_rmsnorm(kp_backend *be, float *out, const float *x, const float *w, int n, int dim, float eps)
{
    kc_backend *b = kc(be);
    if (n <= 0 || dim <= 0)
        return;
    std::lock_guard<std::mutex> g(b->mu);
    const int threads = dim >= 1024 ? 1024 : dim >= 256 ? 256 : 64;
    rmsnorm_kernel<<<(unsigned)n, threads, 0, b->stream>>>(out, x, w, dim, eps);
    kc_launched(b, "rmsnorm_kernel");
}
