// out[t] = row ids[t] of the table as float. The ids come from the host; they are staged in a
// device buffer the backend keeps (ops hold the backend's lock, and the copy is stream-ordered
// before the kernel, so the next call cannot overwrite ids still to be read).
#include "deq.cuh"

template <int DT>
__global__ void embedding_kernel(float *out, kc_weight w, const int32_t *ids, int n)
{
    const int t = blockIdx.y;
    const int64_t r = ids[t];
    for (int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; c < w.cols; c += (int64_t)gridDim.x * blockDim.x)
        out[(int64_t)t * w.cols + c] = kc_deq<DT>(w, r, c);
}

void kc_embedding(kp_backend *be, float *out, const kp_tensor *table, const int32_t *ids, int n)
{
    kc_backend *b = kc(be);
    if (n <= 0)
        return;
    std::lock_guard<std::mutex> g(b->mu);
    if ((size_t)n > b->ids_cap) {
        if (b->ids) {
            cudaStreamSynchronize(b->stream);
            cudaFree(b->ids);
            b->ids = NULL;
            b->ids_cap = 0;
        }
        size_t cap = (size_t)n < 512 ? 512 : (size_t)n;
        b->ids = (int32_t *)kc_malloc(b, cap * sizeof(int32_t), "embedding ids");
        if (!b->ids)
            return;
        b->ids_cap = cap;
    }
    if (kc_check(b, cudaMemcpyAsync(b->ids, ids, (size_t)n * sizeof *ids, cudaMemcpyHostToDevice, b->stream),
                 "cudaMemcpyAsync(embedding ids)"))
        return;
    const kc_weight w = kc_weight_of(table);
    dim3 grid(kc_blocks((size_t)w.cols, 256) < 64 ? kc_blocks((size_t)w.cols, 256) : 64, (unsigned)n);
    KC_DISPATCH(w.dtype, kc_fail(b, KP_ERR_UNSUPPORTED, "embedding: weight type %d has no CUDA kernel", w.dtype),
                embedding_kernel<DT><<<grid, 256, 0, b->stream>>>(out, w, b->ids, n));
    kc_launched(b, "embedding_kernel");
}
