// Appends n rows of K or V to a layer's cache, as float or rounded to half.
#include <cuda_fp16.h>

#include "cuda_be.cuh"

__global__ void kv_store_kernel(void *cache, int f16, const float *src, int64_t off, int64_t len)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += (int64_t)gridDim.x * blockDim.x) {
        if (f16)
            ((__half *)cache)[off + i] = __float2half_rn(src[i]);
        else
            ((float *)cache)[off + i] = src[i];
    }
}

// Position-major (the ops' kv_layout): the new rows are one contiguous range.
void kc_kv_store(kp_backend *be, void *cache, const kp_kv_shape *shape, const float *src, int32_t pos0, int n)
{
    kc_backend *b = kc(be);
    const int64_t kv_dim = (int64_t)shape->n_head_kv * shape->head_dim;
    const kp_kv_type kv_type = shape->type;
    const size_t len = (size_t)n * (size_t)kv_dim;
    if (!len)
        return;
    std::lock_guard<std::mutex> g(b->mu);
    unsigned grid = kc_blocks(len, 256), cap = (unsigned)b->sms * 16;
    kv_store_kernel<<<grid < cap ? grid : cap, 256, 0, b->stream>>>(cache, kv_type == KP_KV_F16, src,
                                                                     (int64_t)pos0 * kv_dim, (int64_t)len);
    kc_launched(b, "kv_store_kernel");
}
