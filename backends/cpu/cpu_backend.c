/* The CPU backend: host memory from the user's allocator, ops on the calling thread plus a
 * worker pool for the two heavy ones (matmul split by output rows, attention by heads). */
#include <string.h>
#include <unistd.h>

#include "../../lib/internal.h"
#include "cpu_backend.h"
#include "quant/repack.h"
#include "simd.h"
#include "threadpool.h"

#if defined(KP_HAVE_BLAS)
#include <cblas.h>
#endif

/* Multiply-adds below which a loop runs on the calling thread: waking workers costs a few
 * microseconds, about what 32K multiply-adds take. */
#define MIN_PARALLEL_WORK 32768
/* Token counts from which float matmuls go to OpenBLAS sgemm by default. Below them our own
 * tiled kernel is faster (it streams the weights once per 4 rows x 3 tokens and needs no
 * packing); docs/cpu-backend.md has the measurements. The AVX2 tile is half as wide, so its
 * crossover comes earlier (estimated, not measured on an AVX2-only CPU). */
#define BLAS_MIN_TOKENS_AVX512 16
#define BLAS_MIN_TOKENS_OTHER 8

typedef struct kp_cpu_backend {
    kp_backend base;
    kp_threadpool *pool;
    int blas_min_tokens; /* 0: never; < 0: by ISA level */
} kp_cpu_backend;

static kp_threadpool *pool_of(kp_backend *be) { return ((kp_cpu_backend *)be)->pool; }

static void cpu_destroy(kp_backend *be)
{
    if (!be)
        return;
    kp_threadpool_free(pool_of(be));
    kp_dealloc(be->alloc, be, sizeof(kp_cpu_backend));
}

static void *cpu_buf_alloc(kp_backend *be, size_t size) { return kp_alloc(be->alloc, size); }

static void cpu_buf_free(kp_backend *be, void *p, size_t size) { kp_dealloc(be->alloc, p, size); }

static kp_status cpu_copy(kp_backend *be, void *dst, const void *src, size_t n)
{
    (void)be;
    if (n)
        memcpy(dst, src, n);
    return KP_OK;
}

static kp_status cpu_sync(kp_backend *be)
{
    (void)be;
    return KP_OK;
}

static int cpu_supports(kp_backend *be, kp_dtype t)
{
    (void)be;
    return kp_cpu_wtype_get(t) != NULL;
}

typedef struct embed_ctx {
    const kp_cpu_wtype *wt;
    float *out;
    const kp_tensor *table;
    const int32_t *ids;
} embed_ctx;

static void embed_task(void *p, int64_t t0, int64_t t1)
{
    const embed_ctx *c = p;
    for (int64_t t = t0; t < t1; t++)
        c->wt->dequant_row(c->table, c->ids[t], c->out + t * c->table->ne[0]);
}

/* Rows split over the threads for a batch: unpacking a packed (R8) row is byte moves, and in a
 * batched decode step it ran serially with the other threads waiting. */
static void cpu_embedding(kp_backend *be, float *out, const kp_tensor *table, const int32_t *ids,
                          int n)
{
    embed_ctx c = {kp_cpu_wtype_for(table), out, table, ids};
    if (!c.wt || n <= 0)
        return;
    const int nt = kp_threadpool_size(pool_of(be));
    if (n < 2 || nt < 2) {
        embed_task(&c, 0, n);
        return;
    }
    kp_threadpool_for(pool_of(be), n, (n + nt - 1) / nt, embed_task, &c);
}

typedef struct rmsnorm_ctx {
    float *out;
    const float *x, *w;
    int dim;
    float eps;
} rmsnorm_ctx;

static void rmsnorm_task(void *p, int64_t t0, int64_t t1)
{
    const rmsnorm_ctx *c = p;
    for (int64_t t = t0; t < t1; t++)
        kp_cpu_rmsnorm_row(c->out + t * c->dim, c->x + t * c->dim, c->w, c->dim, c->eps);
}

/* Rows split over the threads once a batch has a few: the in-order sum of squares is a serial
 * chain per row, and with the other threads waiting it was a percent of a batched decode step.
 * Each row is computed whole by one thread, so any split gives the same floats. */
static void cpu_rmsnorm(kp_backend *be, float *out, const float *x, const float *w, int n, int dim,
                        float eps)
{
    rmsnorm_ctx c = {out, x, w, dim, eps};
    const int nt = kp_threadpool_size(pool_of(be));
    if (n < 2 || (int64_t)n * dim < 4096 || nt < 2) {
        rmsnorm_task(&c, 0, n);
        return;
    }
    kp_threadpool_for(pool_of(be), n, (n + nt - 1) / nt, rmsnorm_task, &c);
}

/* The largest workspace any level may ask for, so that lowering the ISA cap between this call
 * and the matmul never leaves the buffer short. */
static size_t cpu_matmul_work_size(kp_backend *be, kp_dtype t, int64_t cols, int n)
{
    (void)be;
    size_t best = 0;
    for (int l = 0; l <= (int)kp_cpu_isa_detected(); l++) {
        const kp_cpu_wtype *wt = kp_cpu_wtype_get_isa(t, (kp_isa)l);
        size_t s = wt && wt->work_size ? wt->work_size(cols, n) : 0;
        if (s > best)
            best = s;
    }
    return best;
}

typedef struct mm_ctx {
    const kp_cpu_wtype *wt;
    float *y;
    const kp_tensor *w;
    const void *work;
    const float *x;
    int n;
} mm_ctx;

static void mm_task(void *p, int64_t r0, int64_t r1)
{
    const mm_ctx *c = p;
    c->wt->rows(c->y, c->w, c->work, c->x, c->n, r0, r1);
}

typedef struct prep_ctx {
    const kp_cpu_wtype *wt;
    void *work;
    const float *x;
    const kp_tensor *w;
    int64_t cols;
    size_t row_bytes;
} prep_ctx;

static void prep_task(void *p, int64_t t0, int64_t t1)
{
    const prep_ctx *c = p;
    c->wt->prepare((char *)c->work + (size_t)t0 * c->row_bytes, c->x + t0 * c->cols, (int)(t1 - t0), c->cols, c->w);
}

/* A batch's activation rows are split over the pool for the GGUF block types, whose prepare
 * quantizes each row on its own into consecutive rows of work_size(cols, 1) bytes: on one
 * thread they were a tenth of a batched decode step. */
static void prepare_acts(kp_threadpool *pool, const kp_cpu_wtype *wt, void *work, const float *x, int n,
                         int64_t cols, const kp_tensor *w)
{
    const size_t rb = kp_act_kind_for(w->dtype) >= 0 && wt->work_size ? wt->work_size(cols, 1) : 0;
    if (n < 2 || !rb || (int64_t)n * cols < MIN_PARALLEL_WORK / 8) {
        wt->prepare(work, x, n, cols, w);
        return;
    }
    prep_ctx c = {wt, work, x, w, cols, rb};
    const int nt = kp_threadpool_size(pool);
    kp_threadpool_for(pool, n, (n + nt - 1) / nt, prep_task, &c);
}

static void cpu_matmul(kp_backend *be, float *y, const kp_tensor *w, const float *x, int n,
                       void *work)
{
    const kp_cpu_wtype *wt = kp_cpu_wtype_for(w);
    if (!wt || n <= 0)
        return;
    const int64_t cols = w->ne[0], rows = kp_tensor_nrows(w);
    kp_threadpool *pool = pool_of(be);
#if defined(KP_HAVE_BLAS)
    int blas_min = ((kp_cpu_backend *)be)->blas_min_tokens;
    if (blas_min < 0)
        blas_min = kp_cpu_isa() >= KP_ISA_AVX512 ? BLAS_MIN_TOKENS_AVX512 : BLAS_MIN_TOKENS_OTHER;
    if (w->dtype == KP_DTYPE_F32 && blas_min > 0 && n >= blas_min) {
        /* Y (n x rows) = X (n x cols) * W^T. OpenBLAS brings its own threads; the pool lock
         * keeps them from competing with ours. */
        kp_threadpool_lock(pool);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, (blasint)rows, (blasint)cols, 1.0f,
                    x, (blasint)cols, (const float *)w->data, (blasint)cols, 0.0f, y, (blasint)rows);
        kp_threadpool_unlock(pool);
        return;
    }
#endif
    if (wt->prepare)
        prepare_acts(pool, wt, work, x, n, cols, w);
    mm_ctx c = {wt, y, w, work, x, n};
    const int nt = kp_threadpool_size(pool);
    const int64_t per_row = cols * n > 0 ? cols * n : 1;
    int64_t grain = (rows + 4 * nt - 1) / (4 * nt); /* about four chunks per thread */
    int64_t min_grain = (MIN_PARALLEL_WORK + per_row - 1) / per_row;
    if (grain < min_grain)
        grain = min_grain;
    grain = (grain + KP_R8 - 1) & ~(int64_t)(KP_R8 - 1); /* whole 8-row groups (and 4-row tiles) */
    kp_threadpool_for(pool, rows, grain, mm_task, &c);
}

static void cpu_add_row(kp_backend *be, float *x, const float *b, int n, int dim)
{
    (void)be;
    for (int t = 0; t < n; t++)
        for (int i = 0; i < dim; i++)
            x[(int64_t)t * dim + i] += b[i];
}

static void cpu_add(kp_backend *be, float *y, const float *x, size_t len)
{
    (void)be;
    for (size_t i = 0; i < len; i++)
        y[i] += x[i];
}

static void cpu_rope(kp_backend *be, float *x, int n, int n_heads, int head_dim, int32_t pos0,
                     float theta, const float *freq_factors, kp_rope_style style)
{
    (void)be;
    kp_cpu_rope(x, n, n_heads, head_dim, pos0, theta, freq_factors, style);
}

/* Head-major (the ops' kv_layout): a row's heads go to n_head_kv places so that attention reads
 * each head's positions as one forward stream. Strided by heads, 2048 cached positions decoded
 * at a third of the memory bandwidth (cpu-backend.md). */
static void cpu_kv_store(kp_backend *be, void *cache, const kp_kv_shape *shape, const float *src,
                         int32_t pos0, int n)
{
    (void)be;
    const int hd = shape->head_dim, kv_dim = shape->n_head_kv * hd;
    const kp_cpu_vec *v = kp_cpu_vec_get(kp_cpu_isa());
    for (int t = 0; t < n; t++)
        for (int h = 0; h < shape->n_head_kv; h++) {
            const float *x = src + (size_t)t * kv_dim + (size_t)h * hd;
            const size_t at = kp_kv_index(KP_KV_HEAD_MAJOR, shape, pos0 + t, h, 0);
            if (shape->type == KP_KV_F16)
                v->to_f16((uint16_t *)cache + at, x, (size_t)hd);
            else
                memcpy((float *)cache + at, x, (size_t)hd * sizeof(float));
        }
}

typedef struct attn_ctx {
    const kp_attn_args *a; /* n calls with the same n_head */
    int n;
    const kp_cpu_vec *v;
} attn_ctx;

/* Indices are call * n_head + head. */
static void attn_task(void *p, int64_t i0, int64_t i1)
{
    const attn_ctx *c = p;
    const int64_t nh = c->a[0].n_head;
    for (int64_t i = i0; i < i1;) {
        const int64_t k = i / nh, h0 = i % nh, h1 = nh < h0 + (i1 - i) ? nh : h0 + (i1 - i);
        kp_cpu_attention_heads(&c->a[k], c->v, (int)h0, (int)h1);
        i += h1 - h0;
    }
}

static int attn_args_ok(const kp_attn_args *a)
{
    return a->n_tok > 0 && a->n_head > 0 && a->n_head_kv > 0 && a->n_head % a->n_head_kv == 0;
}

/* The n calls share one parallel loop over all their heads. A chunk is whole KV-head groups
 * (their heads share the K/V reads) when that splits evenly over the threads, else an even
 * share of heads: 3 groups on 2 threads would leave one thread a third idle. */
static void cpu_attention_batch(kp_backend *be, const kp_attn_args *a, int n)
{
    if (n <= 0)
        return;
    for (int k = 0; k < n; k++)
        if (!attn_args_ok(&a[k]) || a[k].n_head != a[0].n_head || a[k].n_head_kv != a[0].n_head_kv)
            return;
    attn_ctx c = {a, n, kp_cpu_vec_get(kp_cpu_isa())};
    /* score + value passes touch about 2 * head_dim per cached position */
    int64_t work = 0;
    for (int k = 0; k < n; k++)
        work += (int64_t)a[k].n_head * a[k].n_tok * ((int64_t)a[k].pos0 + a[k].n_tok) * 2 * a[k].head_dim;
    const int nt = kp_threadpool_size(pool_of(be)), group = a[0].n_head / a[0].n_head_kv;
    const int64_t heads = (int64_t)n * a[0].n_head, groups = heads / group;
    int64_t grain = groups % nt == 0 || groups >= 4 * nt ? group : (heads + nt - 1) / nt;
    if (work < MIN_PARALLEL_WORK)
        grain = heads;
    kp_threadpool_for(pool_of(be), heads, grain, attn_task, &c);
}

static void cpu_attention(kp_backend *be, const kp_attn_args *a) { cpu_attention_batch(be, a, 1); }

typedef struct swiglu_ctx {
    float *out;
    const float *gate, *up;
} swiglu_ctx;

static void swiglu_task(void *p, int64_t i0, int64_t i1)
{
    const swiglu_ctx *c = p;
    kp_cpu_swiglu(c->out + i0, c->gate + i0, c->up + i0, (size_t)(i1 - i0));
}

/* Split over the threads once there are a few tokens: an expf per element made the serial op a
 * tenth of a batched decode step, with the other threads spinning. Elementwise, so any split
 * gives the same floats. */
static void cpu_swiglu(kp_backend *be, float *out, const float *gate, const float *up, int n,
                       int dim)
{
    const int64_t len = (int64_t)n * dim;
    if (len < 4096) {
        kp_cpu_swiglu(out, gate, up, (size_t)len);
        return;
    }
    swiglu_ctx c = {out, gate, up};
    const int nt = kp_threadpool_size(pool_of(be));
    kp_threadpool_for(pool_of(be), len, ((len + nt - 1) / nt + 15) & ~(int64_t)15, swiglu_task, &c);
}

#define CPU_OPS_COMMON \
    .destroy = cpu_destroy, \
    .buf_alloc = cpu_buf_alloc, \
    .buf_free = cpu_buf_free, \
    .upload = cpu_copy, \
    .download = cpu_copy, \
    .sync = cpu_sync, \
    .supports = cpu_supports, \
    .embedding = cpu_embedding, \
    .rmsnorm = cpu_rmsnorm, \
    .matmul_work_size = cpu_matmul_work_size, \
    .matmul = cpu_matmul, \
    .add_row = cpu_add_row, \
    .add = cpu_add, \
    .rope = cpu_rope, \
    .kv_store = cpu_kv_store, \
    .attention = cpu_attention, \
    .attention_batch = cpu_attention_batch, \
    .swiglu = cpu_swiglu, \
    .kv_layout = KP_KV_HEAD_MAJOR,

/* Weights stay in the mapped file, except matrices the R8 kernels serve: those get a packed
 * copy (quant/repack.h; the model then releases the file's pages). Below AVX2 nothing is
 * packed: the scalar code is the reference and gains nothing from the layout. Vectors up to
 * SMALL_COPY_BYTES (norms, biases) are copied at every level, so that nothing keeps the file's
 * pages around packed matrices resident: the file is mapped in 2 MiB pieces where the kernel
 * can (lib/mapfile.c), and a 3 KiB norm read in place maps its whole piece back in. */
#define SMALL_COPY_BYTES (64 * 1024)

static kp_status cpu_place(kp_backend *be, kp_tensor *t)
{
    if (!t->owned && t->data && t->nbytes <= SMALL_COPY_BYTES && t->dtype != KP_DTYPE_I8G) {
        void *d = kp_alloc(be->alloc, t->nbytes);
        if (!d)
            return kp_fail(KP_ERR_OUT_OF_MEMORY, "out of memory copying tensor '%s' (%zu bytes)",
                           t->name, t->nbytes);
        memcpy(d, t->data, t->nbytes);
        t->data = d;
        return KP_OK;
    }
    if (kp_cpu_isa() < KP_ISA_AVX2 || !kp_r8_supported(t))
        return KP_OK;
    const size_t bytes = kp_r8_packed_bytes(t);
    void *d = kp_alloc(be->alloc, bytes);
    if (!d)
        return kp_fail(KP_ERR_OUT_OF_MEMORY, "out of memory packing tensor '%s' (%zu bytes)", t->name, bytes);
    kp_r8_pack(t, t->data, d);
    t->data = d;
    t->layout = KP_LAYOUT_R8;
    return KP_OK;
}

static void cpu_release(kp_backend *be, kp_tensor *t)
{
    if (t->layout == KP_LAYOUT_R8) {
        kp_dealloc(be->alloc, t->data, kp_r8_packed_bytes(t));
        t->layout = KP_LAYOUT_FILE;
    } else if (t->data != t->host_data) {
        kp_dealloc(be->alloc, t->data, t->nbytes);
    }
}

static const kp_backend_ops cpu_ops = {
    .name = "cpu", .place_weight = cpu_place, .release_weight = cpu_release, CPU_OPS_COMMON};

/* ---- test-only placement: every weight into a copy of our own (and its I8G scales), so a
 * decoder that passed a reader's host pointer instead of t->data would show up in the tests
 * as a different result once the copy is altered. */
static kp_status cpu_place_copy(kp_backend *be, kp_tensor *t)
{
    size_t ns = t->dtype == KP_DTYPE_I8G && t->scales && t->group > 0
                    ? (size_t)((kp_tensor_nelems(t) + t->group - 1) / t->group) * sizeof(float) : 0;
    void *d = kp_alloc(be->alloc, t->nbytes ? t->nbytes : 1);
    float *sc = ns ? kp_alloc(be->alloc, ns) : NULL;
    if (!d || (ns && !sc)) {
        kp_dealloc(be->alloc, d, t->nbytes ? t->nbytes : 1);
        return kp_fail(KP_ERR_OUT_OF_MEMORY, "out of memory copying tensor '%s' (%zu bytes)", t->name,
                       t->nbytes);
    }
    if (t->nbytes)
        memcpy(d, t->data, t->nbytes);
    if (ns) {
        memcpy(sc, t->scales, ns);
        t->scales = sc;
    }
    t->data = d;
    return KP_OK;
}

static void cpu_release_copy(kp_backend *be, kp_tensor *t)
{
    if (t->dtype == KP_DTYPE_I8G && t->scales && t->scales != t->host_scales && t->group > 0)
        kp_dealloc(be->alloc, (void *)t->scales, (size_t)((kp_tensor_nelems(t) + t->group - 1) / t->group) * sizeof(float));
    kp_dealloc(be->alloc, t->data, t->nbytes ? t->nbytes : 1);
}

static const kp_backend_ops cpu_copy_ops = {
    .name = "cpu", .place_weight = cpu_place_copy, .release_weight = cpu_release_copy, CPU_OPS_COMMON};

void kp_backend_cpu_copy_weights(kp_backend *be) { be->ops = &cpu_copy_ops; }

kp_status kp_backend_cpu_new(const kp_allocator *a, int n_threads, kp_backend **out)
{
    if (!out)
        return kp_fail(KP_ERR_INVALID_ARG, "kp_backend_cpu_new: out is NULL");
    *out = NULL;
    if (n_threads < 0)
        return kp_fail(KP_ERR_INVALID_ARG, "kp_backend_cpu_new: n_threads %d < 0", n_threads);
    a = kp_allocator_or_default(a);
    if (n_threads == 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = online > 0 ? (online > 1024 ? 1024 : (int)online) : 1;
    }
    kp_cpu_backend *be = kp_calloc(a, 1, sizeof *be);
    if (!be)
        return KP_ERR_OUT_OF_MEMORY;
    be->base.ops = &cpu_ops;
    be->base.alloc = a;
    be->base.device = KP_DEVICE_CPU;
    be->blas_min_tokens = -1;
    kp_status st = kp_threadpool_new(a, n_threads, &be->pool);
    if (st != KP_OK) {
        kp_dealloc(a, be, sizeof *be);
        return st;
    }
    *out = &be->base;
    return KP_OK;
}

void kp_cpu_backend_set_blas_min_tokens(kp_backend *be, int min_tokens)
{
    ((kp_cpu_backend *)be)->blas_min_tokens = min_tokens;
}
