/* The backend seam. The decoder calls only these function pointers, so it never touches
 * device memory itself: activations and the KV cache are device buffers allocated here.
 * Shapes follow one rule: an activation matrix X of n rows (tokens) and d columns is stored
 * row-major, X[t*d + i]. */
#ifndef KP_BACKEND_H
#define KP_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "kuiper/kuiper.h"
#include "../lib/tensor.h"

typedef struct kp_backend kp_backend;

typedef enum kp_rope_style {
    KP_ROPE_NORM = 0, /* rotate adjacent pairs (2i, 2i+1): llama2.c, llama.cpp LLAMA */
    KP_ROPE_NEOX = 1  /* rotate (i, i + d/2): Hugging Face rotate_half, qwen2 */
} kp_rope_style;

/* How a layer's K (or V) cache holds n_ctx positions of n_head_kv heads of head_dim values; each
 * backend picks the order its attention reads best (kp_backend_ops.kv_layout). */
typedef enum kp_kv_layout {
    KP_KV_POS_MAJOR = 0, /* [n_ctx][n_head_kv][head_dim]: a position's heads side by side */
    KP_KV_HEAD_MAJOR = 1 /* [n_head_kv][n_ctx][head_dim]: a head's positions one forward stream */
} kp_kv_layout;

typedef struct kp_kv_shape {
    kp_kv_type type;
    int32_t n_ctx, n_head_kv, head_dim;
} kp_kv_shape;

/* Element index of (position p, head h, value i) in a cache of this layout and shape. */
static inline size_t kp_kv_index(kp_kv_layout layout, const kp_kv_shape *s, int32_t p, int32_t h, int32_t i)
{
    if (layout == KP_KV_HEAD_MAJOR)
        return ((size_t)h * (size_t)s->n_ctx + (size_t)p) * (size_t)s->head_dim + (size_t)i;
    return ((size_t)p * (size_t)s->n_head_kv + (size_t)h) * (size_t)s->head_dim + (size_t)i;
}

/* One attention call covers n_tok new query rows at positions pos0 .. pos0+n_tok-1; token t
 * sees cache positions 0 .. pos0+t (causal). */
typedef struct kp_attn_args {
    float *out;          /* [n_tok][n_head*head_dim] */
    const float *q;      /* [n_tok][n_head*head_dim], already roped */
    const void *k_cache; /* this layer's, of kv_type, in the backend's kv_layout */
    const void *v_cache; /* same */
    kp_kv_type kv_type;
    int32_t n_ctx;       /* positions each cache holds */
    int32_t pos0, n_tok;
    int32_t n_head, n_head_kv, head_dim;
    float scale;         /* usually 1/sqrt(head_dim) */
    /* device floats, caller-owned: scratch_tokens (>= 1) rows of pos0 + n_tok per head, head h's
     * rows first at h * scratch_tokens * (pos0 + n_tok); a CPU backend scores that many of a
     * prompt's tokens per pass over K and V */
    float *scratch;
    int32_t scratch_tokens;
} kp_attn_args;

typedef struct kp_backend_ops {
    const char *name;
    void (*destroy)(kp_backend *be);

    /* -- memory: device buffers, 64-byte aligned */
    void *(*buf_alloc)(kp_backend *be, size_t size);
    void (*buf_free)(kp_backend *be, void *p, size_t size);
    kp_status (*upload)(kp_backend *be, void *dst, const void *src, size_t n);
    kp_status (*download)(kp_backend *be, void *dst, const void *src, size_t n);
    kp_status (*sync)(kp_backend *be);
    /* -- weights. place_weight moves one model tensor into memory the backend owns, setting
     * t->data (and t->scales for I8G) to backend pointers; the caller has saved the host
     * pointers in t->host_data / t->host_scales and restores them after release_weight, which
     * frees what place_weight took. NULL for both: weights stay where the reader put them
     * (host memory the CPU backend reads directly). */
    kp_status (*place_weight)(kp_backend *be, kp_tensor *t);
    void (*release_weight)(kp_backend *be, kp_tensor *t);
    /* Free and total bytes of the backend's memory; NULL when that is host memory. */
    kp_status (*mem_info)(kp_backend *be, size_t *free_bytes, size_t *total_bytes);
    /* Non-zero if `matmul` and `embedding` accept weights of this type. */
    int (*supports)(kp_backend *be, kp_dtype weight_type);

    /* -- ops (all F32 activations unless stated) */
    /* out[t] = row ids[t] of `table` (any supported dtype), as F32; out is [n][table cols]. */
    void (*embedding)(kp_backend *be, float *out, const kp_tensor *table, const int32_t *ids, int n);
    /* out[t] = w * x[t] / sqrt(mean(x[t]^2) + eps) for n rows of `dim`. out may equal x. */
    void (*rmsnorm)(kp_backend *be, float *out, const float *x, const float *w, int n, int dim,
                    float eps);
    /* Bytes of `work` that matmul needs for n rows against a weight of this type and width. */
    size_t (*matmul_work_size)(kp_backend *be, kp_dtype w_type, int64_t cols, int n);
    /* Y[t][r] = sum_c W[r][c] * X[t][c] for t < n; W is (rows, cols) = (ne[1], ne[0]).
     * Quantized weights quantize X into `work` first, the way ggml does for that type. */
    void (*matmul)(kp_backend *be, float *y, const kp_tensor *w, const float *x, int n, void *work);
    /* x[t][i] += b[i] for n rows of `dim` (bias add). */
    void (*add_row)(kp_backend *be, float *x, const float *b, int n, int dim);
    /* y[i] += x[i] for i < len (residual). */
    void (*add)(kp_backend *be, float *y, const float *x, size_t len);
    /* Rotates n rows of n_heads heads of head_dim at positions pos0+t. `freq_factors` (may be
     * NULL) divides the frequency of pair i (Llama 3.1 scaling). */
    void (*rope)(kp_backend *be, float *x, int n, int n_heads, int head_dim, int32_t pos0,
                 float theta, const float *freq_factors, kp_rope_style style);
    /* Stores n rows of n_head_kv*head_dim floats as positions pos0.. of the cache (converting
     * to the shape's type). */
    void (*kv_store)(kp_backend *be, void *cache, const kp_kv_shape *shape, const float *src, int32_t pos0,
                     int n);
    void (*attention)(kp_backend *be, const kp_attn_args *a);
    /* Optional: n independent attention calls at once (one per session of a batched decode
     * step), so a backend can spread all their heads over its threads in one go. NULL: the
     * decoder makes the n calls one by one. */
    void (*attention_batch)(kp_backend *be, const kp_attn_args *a, int n);
    /* out[i] = silu(gate[i]) * up[i] for n rows of dim; out may equal gate. */
    void (*swiglu)(kp_backend *be, float *out, const float *gate, const float *up, int n, int dim);
    /* The order of this backend's KV caches. Outside the backend only kv_rows.c (the session
     * state file's position-major rows) depends on it. */
    kp_kv_layout kv_layout;
} kp_backend_ops;

/* A backend may be shared by sessions on several threads: implementations serialize their
 * parallel work internally, and keep no per-call state outside the arguments. */
struct kp_backend {
    const kp_backend_ops *ops;
    const kp_allocator *alloc;
    kp_device device;
};

/* CPU backend; n_threads 0 = one per online CPU. */
kp_status kp_backend_cpu_new(const kp_allocator *a, int n_threads, kp_backend **out);
/* CUDA backend; KP_ERR_UNSUPPORTED when built without CUDA or no device is present. */
kp_status kp_backend_cuda_new(const kp_allocator *a, kp_backend **out);
/* Tests: the n-th CUDA device allocation from now fails (-1: none), in every CUDA backend;
 * and a backend's cached free buffers go back to the device (so a leak check sees them). */
kp_status kp_backend_cuda_test_fail_alloc(long n);
void kp_backend_cuda_test_trim(kp_backend *be);
/* Test-only: makes a CPU backend place every weight into copies of its own, so tests can check
 * that the decoder passes only placed pointers (tests/core/test_place.c). */
void kp_backend_cpu_copy_weights(kp_backend *be);

#endif
