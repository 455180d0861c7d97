// cuBLAS, loaded at run time: the module links only the CUDA runtime, so a machine without
// cuBLAS still gets the backend (prefill then uses the tiled kernel in matmul.cu). The header
// supplies types and constants only; every function comes from dlsym.
#include <cublas_v2.h>
#include <dlfcn.h>
#include <string.h>

#include "cuda_be.cuh"

typedef cublasStatus_t (*create_fn)(cublasHandle_t *);
typedef cublasStatus_t (*destroy_fn)(cublasHandle_t);
typedef cublasStatus_t (*stream_fn)(cublasHandle_t, cudaStream_t);
typedef cublasStatus_t (*gemmex_fn)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                                    const void *, const void *, cudaDataType, int, const void *, cudaDataType,
                                    int, const void *, void *, cudaDataType, int, cublasComputeType_t,
                                    cublasGemmAlgo_t);

static struct {
    std::once_flag once;
    void *lib;
    create_fn create;
    destroy_fn destroy;
    stream_fn set_stream;
    gemmex_fn gemm_ex;
} g;

template <typename T>
static T sym(const char *name)
{
    T f;
    void *p = dlsym(g.lib, name);
    memcpy(&f, &p, sizeof f);
    return f;
}

static void load(void)
{
    const char *env = getenv("KP_CUDA_NO_CUBLAS"); // tests: force the fallback kernels
    if (env && *env && strcmp(env, "0"))
        return;
    const char *names[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so"};
    for (const char *n : names)
        if ((g.lib = dlopen(n, RTLD_NOW | RTLD_LOCAL)))
            break;
    if (!g.lib)
        return;
    g.create = sym<create_fn>("cublasCreate_v2");
    g.destroy = sym<destroy_fn>("cublasDestroy_v2");
    g.set_stream = sym<stream_fn>("cublasSetStream_v2");
    g.gemm_ex = sym<gemmex_fn>("cublasGemmEx");
    if (!g.create || !g.destroy || !g.set_stream || !g.gemm_ex)
        g.create = NULL;
}

void kc_blas_init(kc_backend *b)
{
    std::call_once(g.once, load);
    b->blas = NULL;
    if (!g.create)
        return;
    cublasHandle_t h = NULL;
    if (g.create(&h) != CUBLAS_STATUS_SUCCESS)
        return; // prefill falls back to our own kernel
    if (g.set_stream(h, b->stream) != CUBLAS_STATUS_SUCCESS) {
        g.destroy(h);
        return;
    }
    b->blas = h;
}

void kc_blas_free(kc_backend *b)
{
    if (b->blas)
        g.destroy((cublasHandle_t)b->blas);
    b->blas = NULL;
}

int kc_blas_gemm(kc_backend *b, float *y, const void *w, const void *x, int type, int64_t rows, int64_t cols, int n)
{
    if (!b->blas)
        return 0;
    if (rows > 0x7fffffff || cols > 0x7fffffff)
        return 0;
    // Row-major Y (n x rows) is column-major (rows x n) = W^T x X with W column-major (cols x rows).
    const cudaDataType t = type == 0 ? CUDA_R_32F : type == 1 ? CUDA_R_16F : CUDA_R_16BF;
    const float one = 1.0f, zero = 0.0f;
    cublasStatus_t st = g.gemm_ex((cublasHandle_t)b->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)rows, n, (int)cols, &one,
                                  w, t, (int)cols, x, t, (int)cols, &zero, y, CUDA_R_32F, (int)rows,
                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS) {
        kc_fail(b, st == CUBLAS_STATUS_ALLOC_FAILED ? KP_ERR_OUT_OF_MEMORY : KP_ERR_INTERNAL,
                "cublasGemmEx(%lld x %d x %lld): cuBLAS status %d", (long long)rows, n, (long long)cols, (int)st);
        return -1;
    }
    return 1;
}
