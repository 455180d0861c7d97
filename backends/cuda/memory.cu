// Host <-> device copies on the backend's own stream, and weight placement: each model tensor
// gets a cudaMalloc of its own at load (not the cache: weights live as long as the model).
#include "cuda_be.cuh"

kp_status kc_upload(kp_backend *be, void *dst, const void *src, size_t n)
{
    kc_backend *b = kc(be);
    std::lock_guard<std::mutex> g(b->mu);
    if (n)
        kc_check(b, cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, b->stream), "cudaMemcpyAsync(upload)");
    // the caller may reuse `src` at once: pageable copies are staged, but wait to be sure
    kc_check(b, cudaStreamSynchronize(b->stream), "cudaStreamSynchronize(upload)");
    return kc_take_error(b);
}

kp_status kc_download(kp_backend *be, void *dst, const void *src, size_t n)
{
    kc_backend *b = kc(be);
    std::lock_guard<std::mutex> g(b->mu);
    if (n)
        kc_check(b, cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, b->stream),
                 "cudaMemcpyAsync(download)");
    kc_check(b, cudaStreamSynchronize(b->stream), "cudaStreamSynchronize(download)");
    return kc_take_error(b);
}

kp_status kc_sync(kp_backend *be)
{
    kc_backend *b = kc(be);
    std::lock_guard<std::mutex> g(b->mu);
    kc_check(b, cudaStreamSynchronize(b->stream), "cudaStreamSynchronize");
    return kc_take_error(b);
}

kp_status kc_mem_info(kp_backend *be, size_t *free_b, size_t *total_b)
{
    kc_backend *b = kc(be);
    std::lock_guard<std::mutex> g(b->mu);
    kc_check(b, cudaMemGetInfo(free_b, total_b), "cudaMemGetInfo");
    return kc_take_error(b);
}

static size_t scale_bytes(const kp_tensor *t)
{
    if (t->dtype != KP_DTYPE_I8G || !t->scales || t->group <= 0)
        return 0;
    int64_t n = 1;
    for (int i = 0; i < KP_MAX_DIMS; i++)
        n *= t->ne[i];
    return (size_t)((n + t->group - 1) / t->group) * sizeof(float);
}

kp_status kc_place_weight(kp_backend *be, kp_tensor *t)
{
    kc_backend *b = kc(be);
    std::lock_guard<std::mutex> g(b->mu);
    const size_t ns = scale_bytes(t);
    char what[160];
    snprintf(what, sizeof what, "tensor '%.120s'", t->name ? t->name : "?");
    void *d = kc_malloc(b, t->nbytes ? t->nbytes : 1, what);
    void *s = d && ns ? kc_malloc(b, ns, what) : NULL;
    if (!d || (ns && !s)) {
        if (d)
            cudaFree(d);
        return kc_take_error(b);
    }
    if (t->nbytes)
        kc_check(b, cudaMemcpyAsync(d, t->data, t->nbytes, cudaMemcpyHostToDevice, b->stream), "cudaMemcpyAsync(weight)");
    if (ns)
        kc_check(b, cudaMemcpyAsync(s, t->scales, ns, cudaMemcpyHostToDevice, b->stream), "cudaMemcpyAsync(scales)");
    kc_check(b, cudaStreamSynchronize(b->stream), "cudaStreamSynchronize(weight upload)");
    kp_status st = kc_take_error(b);
    if (st) {
        cudaFree(d);
        if (s)
            cudaFree(s);
        return st;
    }
    t->data = d;
    if (ns)
        t->scales = (const float *)s;
    t->device = KP_DEVICE_CUDA;
    return KP_OK;
}

void kc_release_weight(kp_backend *be, kp_tensor *t)
{
    kc_backend *b = kc(be);
    std::lock_guard<std::mutex> g(b->mu);
    cudaStreamSynchronize(b->stream);
    if (t->scales && t->scales != t->host_scales)
        cudaFree((void *)t->scales);
    cudaFree(t->data);
}

kc_weight kc_weight_of(const kp_tensor *t)
{
    kc_weight w;
    w.data = (const uint8_t *)t->data;
    w.scales = t->scales;
    w.cols = t->ne[0];
    w.rows = t->ne[1] * t->ne[2] * t->ne[3];
    w.group = t->group > 0 ? t->group : 1;
    w.dtype = (int)t->dtype;
    int64_t be = 1, bb = 1;
    switch (t->dtype) {
    case KP_DTYPE_F32: bb = 4; break;
    case KP_DTYPE_F16: case KP_DTYPE_BF16: bb = 2; break;
    case KP_DTYPE_I8G: bb = 1; break;
    case KP_DTYPE_Q8_0: be = 32; bb = 34; break;
    case KP_DTYPE_Q4_0: be = 32; bb = 18; break;
    case KP_DTYPE_Q4_1: be = 32; bb = 20; break;
    case KP_DTYPE_Q5_0: be = 32; bb = 22; break;
    case KP_DTYPE_Q5_1: be = 32; bb = 24; break;
    case KP_DTYPE_Q4_K: be = 256; bb = 144; break;
    case KP_DTYPE_Q5_K: be = 256; bb = 176; break;
    case KP_DTYPE_Q6_K: be = 256; bb = 210; break;
    default: break;
    }
    w.row_bytes = (size_t)(w.cols / be * bb);
    return w;
}
