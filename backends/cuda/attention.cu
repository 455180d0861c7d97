// Causal attention over the KV cache, flash-attention style: keys are split into chunks of
// CHUNK positions, one block per (head, token, chunk) walks its chunk in tiles of TILE keys
// with an online softmax (running max and sum), and a second kernel merges the chunks. Long
// contexts thus spread over many blocks, and no block holds a whole row of scores.
#include <cuda_fp16.h>
#include <math.h>

#include "cuda_be.cuh"

#define CHUNK 256
#define TILE 64
#define THREADS 128
#define MAX_HD 256

struct attn_params {
    const float *q;
    const void *k, *v;
    int32_t pos0, n_tok, n_head, group, hd;
    int64_t q_dim, kv_dim;
    float scale;
    int nsplit;
};

template <int F16>
__device__ __forceinline__ float kv_at(const void *p, int64_t i)
{
    return F16 ? __half2float(((const __half *)p)[i]) : ((const float *)p)[i];
}

template <int F16>
__global__ void __launch_bounds__(THREADS) attn_partial_kernel(attn_params a, float *part)
{
    __shared__ float qs[MAX_HD], ps[TILE];
    const int h = blockIdx.x, t = blockIdx.y, s = blockIdx.z, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int hd = a.hd, kvh = h / a.group;
    const int np = a.pos0 + t + 1, pb = s * CHUNK, pe = np < pb + CHUNK ? np : pb + CHUNK;
    const float *q = a.q + (int64_t)t * a.q_dim + (int64_t)h * hd;
    for (int d = tid; d < hd; d += THREADS)
        qs[d] = q[d];
    __syncthreads();
    const int64_t koff = (int64_t)kvh * hd;
    float m = -INFINITY, l = 0.0f, o0 = 0.0f, o1 = 0.0f;
    for (int p0 = pb; p0 < pe; p0 += TILE) {
        const int len = pe - p0 < TILE ? pe - p0 : TILE;
        for (int j = warp; j < len; j += THREADS / 32) {
            const int64_t base = (int64_t)(p0 + j) * a.kv_dim + koff;
            float dot = 0.0f;
            for (int d = lane; d < hd; d += 32)
                dot += qs[d] * kv_at<F16>(a.k, base + d);
            for (int o = 16; o > 0; o >>= 1)
                dot += __shfl_xor_sync(0xffffffffu, dot, o);
            if (lane == 0)
                ps[j] = dot * a.scale;
        }
        __syncthreads();
        float mt = -INFINITY;
        for (int j = 0; j < len; j++)
            mt = fmaxf(mt, ps[j]);
        const float mn = fmaxf(m, mt), corr = expf(m - mn);
        __syncthreads(); // every thread has its max before the scores become weights
        if (tid < len)
            ps[tid] = expf(ps[tid] - mn);
        __syncthreads();
        float lt = 0.0f, a0 = 0.0f, a1 = 0.0f;
        for (int j = 0; j < len; j++) {
            const float p = ps[j];
            const int64_t base = (int64_t)(p0 + j) * a.kv_dim + koff;
            lt += p;
            if (tid < hd)
                a0 += p * kv_at<F16>(a.v, base + tid);
            if (tid + THREADS < hd)
                a1 += p * kv_at<F16>(a.v, base + tid + THREADS);
        }
        l = l * corr + lt;
        o0 = o0 * corr + a0;
        o1 = o1 * corr + a1;
        m = mn;
        __syncthreads();
    }
    float *out = part + (((int64_t)t * a.n_head + h) * a.nsplit + s) * (hd + 2);
    if (tid == 0) {
        out[0] = m;
        out[1] = l;
    }
    if (tid < hd)
        out[2 + tid] = o0;
    if (tid + THREADS < hd)
        out[2 + tid + THREADS] = o1;
}

__global__ void attn_merge_kernel(float *dst, const float *part, int n_head, int hd, int nsplit, int64_t q_dim)
{
    const int h = blockIdx.x, t = blockIdx.y;
    const float *p = part + ((int64_t)t * n_head + h) * nsplit * (hd + 2);
    float M = -INFINITY;
    for (int s = 0; s < nsplit; s++)
        M = fmaxf(M, p[s * (hd + 2)]);
    float L = 0.0f;
    for (int s = 0; s < nsplit; s++)
        if (p[s * (hd + 2) + 1] > 0.0f)
            L += expf(p[s * (hd + 2)] - M) * p[s * (hd + 2) + 1];
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float O = 0.0f;
        for (int s = 0; s < nsplit; s++)
            if (p[s * (hd + 2) + 1] > 0.0f)
                O += expf(p[s * (hd + 2)] - M) * p[s * (hd + 2) + 2 + d];
        dst[(int64_t)t * q_dim + (int64_t)h * hd + d] = O / L;
    }
}

void kc_attention(kp_backend *be, const kp_attn_args *x)
{
    kc_backend *b = kc(be);
    if (x->n_tok <= 0 || x->n_head <= 0 || x->n_head_kv <= 0 || x->n_head % x->n_head_kv)
        return;
    std::lock_guard<std::mutex> g(b->mu);
    if (x->head_dim > MAX_HD) {
        kc_fail(b, KP_ERR_UNSUPPORTED, "attention: head size %d is over the CUDA kernel's %d", x->head_dim, MAX_HD);
        return;
    }
    attn_params a;
    a.q = x->q;
    a.k = x->k_cache;
    a.v = x->v_cache;
    a.pos0 = x->pos0;
    a.n_tok = x->n_tok;
    a.n_head = x->n_head;
    a.group = x->n_head / x->n_head_kv;
    a.hd = x->head_dim;
    a.q_dim = (int64_t)x->n_head * x->head_dim;
    a.kv_dim = (int64_t)x->n_head_kv * x->head_dim;
    a.scale = x->scale;
    a.nsplit = (x->pos0 + x->n_tok + CHUNK - 1) / CHUNK;
    const size_t bytes = (size_t)x->n_tok * x->n_head * a.nsplit * (x->head_dim + 2) * sizeof(float);
    float *part = (float *)kc_scratch(b, bytes);
    if (!part)
        return;
    dim3 grid((unsigned)x->n_head, (unsigned)x->n_tok, (unsigned)a.nsplit);
    if (x->kv_type == KP_KV_F16)
        attn_partial_kernel<1><<<grid, THREADS, 0, b->stream>>>(a, part);
    else
        attn_partial_kernel<0><<<grid, THREADS, 0, b->stream>>>(a, part);
    if (kc_launched(b, "attn_partial_kernel"))
        return;
    attn_merge_kernel<<<dim3((unsigned)x->n_head, (unsigned)x->n_tok), THREADS, 0, b->stream>>>(
        x->out, part, x->n_head, x->head_dim, a.nsplit, a.q_dim);
    kc_launched(b, "attn_merge_kernel");
}
