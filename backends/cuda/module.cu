// The CUDA module's entry point (libkuiper-cuda.so; see module.h): device probe, backend
// creation and the ops table. Only the module sees the CUDA runtime, which it links
// statically, so it needs nothing but the driver at run time.
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <new>

#include "cuda_be.cuh"

kp_status kc_fail(kc_backend *b, kp_status st, const char *fmt, ...)
{
    if (b->err == KP_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->msg, sizeof b->msg, fmt, ap);
        va_end(ap);
        b->err = st;
    }
    return st;
}

kp_status kc_check(kc_backend *b, cudaError_t e, const char *call)
{
    if (e == cudaSuccess)
        return KP_OK;
    kp_status st = e == cudaErrorMemoryAllocation ? KP_ERR_OUT_OF_MEMORY : KP_ERR_INTERNAL;
    return kc_fail(b, st, "%s: %s (CUDA error %d)", call, cudaGetErrorString(e), (int)e);
}

kp_status kc_take_error(kc_backend *b)
{
    kp_status st = b->err;
    if (st) {
        snprintf(b->last, sizeof b->last, "%s", b->msg);
        b->err = KP_OK;
        b->msg[0] = '\0';
    }
    return st;
}

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

static int kc_supports(kp_backend *be, kp_dtype t)
{
    (void)be;
    switch (t) {
    case KP_DTYPE_F32: case KP_DTYPE_F16: case KP_DTYPE_BF16: case KP_DTYPE_Q8_0: case KP_DTYPE_Q4_0:
    case KP_DTYPE_Q4_1: case KP_DTYPE_Q5_0: case KP_DTYPE_Q5_1: case KP_DTYPE_Q4_K: case KP_DTYPE_Q5_K:
    case KP_DTYPE_Q6_K: case KP_DTYPE_I8G:
        return 1;
    default:
        return 0;
    }
}

static void kc_destroy(kp_backend *be)
{
    if (!be)
        return;
    kc_backend *b = kc(be);
    cudaStreamSynchronize(b->stream);
    kc_blas_free(b);
    kc_trim(b);
    if (b->ids)
        cudaFree(b->ids);
    if (b->scratch)
        cudaFree(b->scratch);
    cudaStreamDestroy(b->stream);
    const kp_allocator *a = be->alloc;
    b->~kc_backend();
    a->free(a->user, b, sizeof *b);
}

static const kp_backend_ops ops = {
    "cuda",            kc_destroy,  kc_buf_alloc,  kc_buf_free,        kc_upload,  kc_download,
    kc_sync,           kc_place_weight, kc_release_weight, kc_mem_info, kc_supports, kc_embedding,
    kc_rmsnorm,        kc_matmul_work_size, kc_matmul, kc_add_row,      kc_add,     kc_rope,
    kc_kv_store,       kc_attention,
    nullptr, /* attention_batch: the decoder makes one attention call per session */
    kc_swiglu,
    KP_KV_POS_MAJOR,
};

static kp_status backend_new(const kp_allocator *a, kp_backend **out, char *why, size_t cap)
{
    *out = NULL;
    void *mem = a->alloc(a->user, sizeof(kc_backend), 64);
    if (!mem) {
        snprintf(why, cap, "out of host memory creating the CUDA backend");
        return KP_ERR_OUT_OF_MEMORY;
    }
    kc_backend *b = new (mem) kc_backend();
    b->base.ops = &ops;
    b->base.alloc = a;
    b->base.device = KP_DEVICE_CUDA;
    b->err = KP_OK;
    b->msg[0] = b->last[0] = '\0';
    b->cached_bytes = b->ids_cap = b->scratch_cap = 0;
    b->ids = NULL;
    b->scratch = b->blas = NULL;
    cudaError_t e = cudaGetDevice(&b->dev);
    const char *call = "cudaGetDevice";
    if (e == cudaSuccess) {
        call = "cudaDeviceGetAttribute(multiProcessorCount)";
        e = cudaDeviceGetAttribute(&b->sms, cudaDevAttrMultiProcessorCount, b->dev);
    }
    if (e == cudaSuccess) {
        call = "cudaStreamCreateWithFlags";
        e = cudaStreamCreateWithFlags(&b->stream, cudaStreamNonBlocking);
    }
    if (e != cudaSuccess) {
        snprintf(why, cap, "%s: %s (CUDA error %d)", call, cudaGetErrorString(e), (int)e);
        b->~kc_backend();
        a->free(a->user, b, sizeof *b);
        return e == cudaErrorMemoryAllocation ? KP_ERR_OUT_OF_MEMORY : KP_ERR_INTERNAL;
    }
    kc_blas_init(b);
    *out = &b->base;
    return KP_OK;
}

static const char *error_text(kp_backend *be) { return kc(be)->last; }

static void trim(kp_backend *be)
{
    kc_backend *b = kc(be);
    std::lock_guard<std::mutex> g(b->mu);
    cudaStreamSynchronize(b->stream);
    kc_trim(b);
}

static const kp_cuda_module_api api = {KP_CUDA_MODULE_ABI, device_count, backend_new, error_text,
                                       kc_fail_alloc_after, trim};

extern "C" __attribute__((visibility("default"))) const kp_cuda_module_api *kp_cuda_module_get(void)
{
    return &api;
}
