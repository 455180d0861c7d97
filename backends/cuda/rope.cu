// Rotary embedding, both pairings: NORM rotates (2i, 2i+1), NEOX (i, i + d/2); frequency
// factors (Llama 3.1) divide pair i's frequency. One thread per pair of one head of one token.
#include "cuda_be.cuh"

__global__ void rope_kernel(float *x, int n, int n_heads, int head_dim, int32_t pos0, float theta,
                            const float *ff, int neox)
{
    const int half = head_dim / 2;
    const int64_t total = (int64_t)n * n_heads * half;
    for (int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; k < total; k += (int64_t)gridDim.x * blockDim.x) {
        const int i = (int)(k % half);
        const int64_t th = k / half; // token * n_heads + head
        const int t = (int)(th / n_heads);
        float freq = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
        if (ff)
            freq /= ff[i];
        const float val = (float)(pos0 + t) * freq;
        float s, c;
        sincosf(val, &s, &c);
        float *v = x + th * head_dim + (neox ? i : 2 * i);
        const int other = neox ? half : 1;
        const float v0 = v[0], v1 = v[other];
        v[0] = v0 * c - v1 * s;
        v[other] = v0 * s + v1 * c;
    }
}

void kc_rope(kp_backend *be, float *x, int n, int n_heads, int head_dim, int32_t pos0, float theta,
             const float *freq_factors, kp_rope_style style)
{
    kc_backend *b = kc(be);
    const size_t total = (size_t)n * n_heads * (head_dim / 2);
    if (!total)
        return;
    std::lock_guard<std::mutex> g(b->mu);
    unsigned grid = kc_blocks(total, 256), cap = (unsigned)b->sms * 16;
    rope_kernel<<<grid < cap ? grid : cap, 256, 0, b->stream>>>(x, n, n_heads, head_dim, pos0, theta, freq_factors,
                                                                 style == KP_ROPE_NEOX);
    kc_launched(b, "rope_kernel");
}
