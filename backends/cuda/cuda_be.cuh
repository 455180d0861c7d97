// Shared by the module's files: the backend struct, error recording, and the weight view the
// kernels take. Every CUDA call's error becomes a kp_status with text naming the call; the void
// ops record the first one, and the next sync or download returns it.
#ifndef KP_CUDA_BE_CUH
#define KP_CUDA_BE_CUH

#include <cuda_runtime.h>
#include <stdint.h>

#include <map>
#include <mutex>

#include "module.h"

struct kc_backend {
    kp_backend base;
    int dev;
    cudaStream_t stream;
    std::mutex mu;              // one op at a time: ops share the scratch buffers below
    kp_status err;              // first failure not yet returned
    char msg[512];
    char last[512];             // text of the last status returned (error_text)
    std::multimap<size_t, void *> cache; // free device buffers by rounded size
    size_t cached_bytes;
    int32_t *ids;               // device copy of embedding ids
    size_t ids_cap;
    void *scratch;              // dequantized weight tiles / converted activations (prefill)
    size_t scratch_cap;
    void *blas;                 // cublasHandle_t when cuBLAS could be loaded
    int sms;
};

static inline kc_backend *kc(kp_backend *be) { return (kc_backend *)be; }

// Records a failure (the first one sticks); returns st.
kp_status kc_fail(kc_backend *b, kp_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
// KP_OK, or records "`call`: <CUDA's text>" and returns the status for that error.
kp_status kc_check(kc_backend *b, cudaError_t e, const char *call);
// After a kernel launch: the launch error, if any, under the kernel's name.
static inline kp_status kc_launched(kc_backend *b, const char *kernel)
{
    return kc_check(b, cudaGetLastError(), kernel);
}
// Returns the pending failure (clearing it) with its text kept for error_text.
kp_status kc_take_error(kc_backend *b);

// ---- memory (alloc.cu)
void *kc_buf_alloc(kp_backend *be, size_t size);
void kc_buf_free(kp_backend *be, void *p, size_t size);
void kc_trim(kc_backend *b);
void kc_fail_alloc_after(long n);
// Plain cudaMalloc with the test injection applied; NULL (error recorded as OOM) on failure.
void *kc_malloc(kc_backend *b, size_t size, const char *what);
// Scratch of at least `size` bytes for the op in progress, or NULL.
void *kc_scratch(kc_backend *b, size_t size);

// ---- weight view for kernels
struct kc_weight {
    const uint8_t *data;
    const float *scales; // I8G
    int64_t cols, rows, group;
    size_t row_bytes;
    int dtype;
};
kc_weight kc_weight_of(const kp_tensor *t);

// ---- ops (one file each)
void kc_embedding(kp_backend *be, float *out, const kp_tensor *table, const int32_t *ids, int n);
void kc_rmsnorm(kp_backend *be, float *out, const float *x, const float *w, int n, int dim, float eps);
size_t kc_matmul_work_size(kp_backend *be, kp_dtype t, int64_t cols, int n);
void kc_matmul(kp_backend *be, float *y, const kp_tensor *w, const float *x, int n, void *work);
void kc_add_row(kp_backend *be, float *x, const float *b, int n, int dim);
void kc_add(kp_backend *be, float *y, const float *x, size_t len);
void kc_swiglu(kp_backend *be, float *out, const float *gate, const float *up, int n, int dim);
void kc_rope(kp_backend *be, float *x, int n, int n_heads, int head_dim, int32_t pos0, float theta,
             const float *freq_factors, kp_rope_style style);
void kc_kv_store(kp_backend *be, void *cache, const kp_kv_shape *shape, const float *src, int32_t pos0, int n);
void kc_attention(kp_backend *be, const kp_attn_args *a);

// ---- memory ops (memory.cu)
kp_status kc_upload(kp_backend *be, void *dst, const void *src, size_t n);
kp_status kc_download(kp_backend *be, void *dst, const void *src, size_t n);
kp_status kc_sync(kp_backend *be);
kp_status kc_place_weight(kp_backend *be, kp_tensor *t);
void kc_release_weight(kp_backend *be, kp_tensor *t);
kp_status kc_mem_info(kp_backend *be, size_t *free_b, size_t *total_b);

// ---- cuBLAS, loaded at run time (blas.cu). 0 when unavailable (the caller falls back).
void kc_blas_init(kc_backend *b);
void kc_blas_free(kc_backend *b);
// Y (n x rows, row-major) = X (n x cols) * W^T for W rows x cols of `type` (0 f32, 1 f16,
// 2 bf16), X of the same type. Returns 1 if done, 0 if cuBLAS is not there, -1 on error.
int kc_blas_gemm(kc_backend *b, float *y, const void *w, const void *x, int type, int64_t rows,
                 int64_t cols, int n);

static inline unsigned kc_blocks(size_t n, unsigned per) { return (unsigned)((n + per - 1) / per); }

#endif
