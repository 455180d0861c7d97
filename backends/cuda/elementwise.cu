// Bias add, residual add and SwiGLU: one pass each over float rows.
#include "cuda_be.cuh"

__global__ void add_row_kernel(float *x, const float *bias, int64_t len, int dim)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += (int64_t)gridDim.x * blockDim.x)
        x[i] += bias[i % dim];
}

__global__ void add_kernel(float *y, const float *x, int64_t len)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += (int64_t)gridDim.x * blockDim.x)
        y[i] += x[i];
}

__global__ void swiglu_kernel(float *out, const float *g, const float *up, int64_t len)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += (int64_t)gridDim.x * blockDim.x) {
        const float v = g[i];
        out[i] = v * (1.0f / (1.0f + expf(-v))) * up[i];
    }
}

static unsigned grid_for(kc_backend *b, size_t len)
{
    unsigned n = kc_blocks(len, 256), cap = (unsigned)b->sms * 16;
    return n < cap ? (n ? n : 1) : cap;
}

void kc_add_row(kp_backend *be, float *x, const float *bias, int n, int dim)
{
    kc_backend *b = kc(be);
    const size_t len = (size_t)n * (size_t)dim;
    if (!len)
        return;
    std::lock_guard<std::mutex> g(b->mu);
    add_row_kernel<<<grid_for(b, len), 256, 0, b->stream>>>(x, bias, (int64_t)len, dim);
    kc_launched(b, "add_row_kernel");
}

void kc_add(kp_backend *be, float *y, const float *x, size_t len)
{
    kc_backend *b = kc(be);
    if (!len)
        return;
    std::lock_guard<std::mutex> g(b->mu);
    add_kernel<<<grid_for(b, len), 256, 0, b->stream>>>(y, x, (int64_t)len);
    kc_launched(b, "add_kernel");
}

void kc_swiglu(kp_backend *be, float *out, const float *gate, const float *up, int n, int dim)
{
    kc_backend *b = kc(be);
    const size_t len = (size_t)n * (size_t)dim;
    if (!len)
        return;
    std::lock_guard<std::mutex> g(b->mu);
    swiglu_kernel<<<grid_for(b, len), 256, 0, b->stream>>>(out, gate, up, (int64_t)len);
    kc_launched(b, "swiglu_kernel");
}
