// Device memory: a caching allocator over plain cudaMalloc (never managed memory). Freed
// buffers go to a per-backend cache keyed by rounded size and are reused by the next request of
// that size, so sessions created and freed in a loop never reach cudaFree. When cudaMalloc
// fails the cache is given back and the request tried once more before reporting OOM.
#include <atomic>

#include "cuda_be.cuh"

static std::atomic<long> g_fail_after(-1);

void kc_fail_alloc_after(long n) { g_fail_after.store(n); }

// True when the test injection says this allocation fails.
static bool injected_failure(void)
{
    long n = g_fail_after.load();
    while (n >= 0) {
        if (g_fail_after.compare_exchange_weak(n, n - 1))
            return n == 0;
    }
    return false;
}

// Small requests round to 512 bytes, large ones to 2 MiB, so a few sizes cover the pool.
static size_t rounded(size_t n)
{
    const size_t small = 512, big = (size_t)2 << 20;
    if (n == 0)
        n = 1;
    return n <= ((size_t)1 << 20) ? (n + small - 1) / small * small : (n + big - 1) / big * big;
}

void *kc_malloc(kc_backend *b, size_t size, const char *what)
{
    if (injected_failure()) {
        kc_fail(b, KP_ERR_OUT_OF_MEMORY, "cudaMalloc(%zu) for %s: out of memory (injected by a test)", size,
                what);
        return NULL;
    }
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, size);
    if (e == cudaErrorMemoryAllocation && !b->cache.empty()) {
        cudaGetLastError(); // an allocation failure is not sticky: clear it and retry
        cudaStreamSynchronize(b->stream);
        kc_trim(b);
        e = cudaMalloc(&p, size);
    }
    if (e != cudaSuccess) {
        cudaGetLastError();
        size_t free_b = 0, total_b = 0;
        cudaMemGetInfo(&free_b, &total_b);
        kc_fail(b, e == cudaErrorMemoryAllocation ? KP_ERR_OUT_OF_MEMORY : KP_ERR_INTERNAL,
                "cudaMalloc(%zu) for %s: %s (%zu of %zu bytes free)", size, what, cudaGetErrorString(e), free_b,
                total_b);
        return NULL;
    }
    return p;
}

void *kc_buf_alloc(kp_backend *be, size_t size)
{
    kc_backend *b = kc(be);
    std::lock_guard<std::mutex> g(b->mu);
    size_t r = rounded(size);
    auto it = b->cache.find(r);
    if (it != b->cache.end()) {
        void *p = it->second;
        b->cache.erase(it);
        b->cached_bytes -= r;
        return p;
    }
    void *p = kc_malloc(b, r, "a buffer");
    if (!p) // the caller reports OOM itself; the recorded text must not surface later
        kc_take_error(b);
    return p;
}

void kc_buf_free(kp_backend *be, void *p, size_t size)
{
    if (!p)
        return;
    kc_backend *b = kc(be);
    std::lock_guard<std::mutex> g(b->mu);
    size_t r = rounded(size);
    b->cache.emplace(r, p);
    b->cached_bytes += r;
}

void kc_trim(kc_backend *b)
{
    for (auto &kv : b->cache)
        cudaFree(kv.second);
    b->cache.clear();
    b->cached_bytes = 0;
}

void *kc_scratch(kc_backend *b, size_t size)
{
    if (size <= b->scratch_cap)
        return b->scratch;
    if (b->scratch) {
        cudaStreamSynchronize(b->stream); // kernels still queued may read the old one
        cudaFree(b->scratch);
        b->scratch = NULL;
        b->scratch_cap = 0;
    }
    size_t want = size + size / 4;
    b->scratch = kc_malloc(b, want, "matmul scratch");
    if (b->scratch)
        b->scratch_cap = want;
    return b->scratch;
}
