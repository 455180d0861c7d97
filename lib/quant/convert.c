/* kp_model_quantize: load any model through kp_model_load, decide each tensor's type
 * (mix.c), write the metadata (convert_meta.c) and stream every tensor through F32 into its
 * new type, a slab of rows at a time spread over a thread pool. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../../backends/cpu/quant/quant.h"
#include "../../backends/cpu/threadpool.h"
#include "convert.h"
#include "quantize.h"

void kp_quantize_params_init(kp_quantize_params *p)
{
    if (!p)
        return;
    memset(p, 0, sizeof *p);
    p->struct_size = sizeof *p;
    p->type = "Q8_0";
    p->log_level = KP_LOG_WARN;
}

typedef struct plan_item {
    const kp_tensor *src;
    const char *name;
    kp_dtype type;
    int permute_heads;  /* > 0: rows are rotate-half ordered in heads of this many; interleave */
} plan_item;

typedef struct conv {
    const kp_allocator *a;
    kp_model *m;
    const kp_quant_mix *mx;
    plan_item *items;
    size_t n_items, cap_items;
    kp_threadpool *pool;
    kp_logger log;
} conv;

static int planned(const conv *c, const kp_tensor *t)
{
    for (size_t i = 0; i < c->n_items; i++)
        if (c->items[i].src == t)
            return 1;
    return 0;
}

static kp_status plan_add(conv *c, const kp_tensor *t, const char *name)
{
    if (!t || planned(c, t))
        return KP_OK;
    if (c->n_items == c->cap_items) {
        size_t nc = c->cap_items ? 2 * c->cap_items : 64;
        plan_item *p = kp_realloc(c->a, c->items, c->cap_items * sizeof *p, nc * sizeof *p);
        if (!p)
            return KP_ERR_OUT_OF_MEMORY;
        c->items = p;
        c->cap_items = nc;
    }
    const kp_model_config *cfg = &c->m->cfg;
    plan_item *it = &c->items[c->n_items++];
    memset(it, 0, sizeof *it);
    it->src = t;
    it->name = name;
    kp_quant_tensor_info ti = {name, t->ndim, t->ne, kp_tensor_list_find(&c->m->tensors, "output.weight") != NULL,
                               cfg->n_layer, t->dtype};
    it->type = kp_quant_mix_pick(c->mx, &ti);
    /* llama.cpp's LLAMA architecture rotates adjacent pairs; weights made for rotate-half
     * (Hugging Face's order) are permuted into that order, as its converter does */
    if (!strcmp(cfg->arch, "llama") && cfg->rope_style == KP_ROPE_NEOX &&
        (strstr(name, ".attn_q.") || strstr(name, ".attn_k."))) {
        if (t->ndim < 2)
            return kp_fail(KP_ERR_UNSUPPORTED, "'%s': a rotate-half Llama with q/k biases has no llama.cpp form", name);
        it->permute_heads = cfg->head_dim;
    }
    return KP_OK;
}

/* Close to llama.cpp's converter: rope factors, embeddings, each layer's tensors (in the
 * loader's order), the output head; then anything a newer loader added under other names. */
static kp_status make_plan(conv *c)
{
    kp_model *m = c->m;
    const kp_tensor_list *l = &m->tensors;
    kp_status st;
    if ((st = plan_add(c, m->rope_freqs, "rope_freqs.weight")) ||
        (st = plan_add(c, kp_tensor_list_find(l, "token_embd.weight"), "token_embd.weight")))
        return st;
    for (int32_t il = 0; il < m->cfg.n_layer; il++) {
        char pre[32];
        int n = snprintf(pre, sizeof pre, "blk.%d.", il);
        for (size_t i = 0; i < l->n; i++)
            if (!strncmp(l->items[i].name, pre, (size_t)n) && (st = plan_add(c, &l->items[i], l->items[i].name)))
                return st;
    }
    if ((st = plan_add(c, kp_tensor_list_find(l, "output_norm.weight"), "output_norm.weight")) ||
        (st = plan_add(c, kp_tensor_list_find(l, "output.weight"), "output.weight")))
        return st;
    for (size_t i = 0; i < l->n; i++)
        if ((st = plan_add(c, &l->items[i], l->items[i].name)))
            return st;
    for (size_t i = 0; i < c->n_items; i++) {
        const plan_item *it = &c->items[i];
        if (it->permute_heads && (it->src->ne[1] % it->permute_heads || it->permute_heads % 2))
            return kp_fail(KP_ERR_FORMAT, "tensor '%s' has %lld rows, not whole heads of %d", it->name,
                           (long long)it->src->ne[1], it->permute_heads);
        if (it->src->device != KP_DEVICE_CPU)
            return kp_fail(KP_ERR_INTERNAL, "tensor '%s' is not in host memory", it->name);
    }
    if (strcmp(m->cfg.arch, "llama") && m->cfg.rope_style != KP_ROPE_NEOX)
        return kp_fail(KP_ERR_UNSUPPORTED, "a '%s' model with interleaved rope has no llama.cpp form", m->cfg.arch);
    return KP_OK;
}

/* ---- data */

/* Row `r` of the output comes from this row of the source. */
static int64_t src_row(const plan_item *it, int64_t r)
{
    if (!it->permute_heads)
        return r;
    const int64_t hd = it->permute_heads, h = r / hd, j = r % hd;
    return h * hd + (j % 2) * (hd / 2) + j / 2;
}

static int to_f32(const kp_tensor *t, int64_t row, float *dst)
{
    const int64_t cols = t->ne[0];
    /* the reader's bytes where the backend's copy is rearranged for its kernels */
    const int host = t->placed && t->layout != KP_LAYOUT_FILE;
    const uint8_t *base = host ? t->host_data : t->data;
    const float *scales = host ? t->host_scales : t->scales;
    switch (t->dtype) {
    case KP_DTYPE_F32: memcpy(dst, base + (size_t)row * (size_t)cols * 4, (size_t)cols * 4); return 1;
    case KP_DTYPE_F16:
    case KP_DTYPE_BF16: {
        const uint16_t *h = (const uint16_t *)base + (size_t)row * (size_t)cols;
        for (int64_t i = 0; i < cols; i++)
            dst[i] = t->dtype == KP_DTYPE_F16 ? kp_f16_to_f32(h[i]) : kp_bf16_to_f32(h[i]);
        return 1;
    }
    case KP_DTYPE_I8G: {
        const int8_t *q = (const int8_t *)base + (size_t)row * (size_t)cols;
        const int64_t first = row * cols;
        for (int64_t i = 0; i < cols; i++)
            dst[i] = q[i] * scales[(first + i) / t->group];
        return 1;
    }
    case KP_DTYPE_Q8_0: case KP_DTYPE_Q4_0: case KP_DTYPE_Q4_1: case KP_DTYPE_Q5_0: case KP_DTYPE_Q5_1:
    case KP_DTYPE_Q4_K: case KP_DTYPE_Q5_K: case KP_DTYPE_Q6_K:
        kp_qdequant(t->dtype, base + (size_t)row * kp_dtype_row_bytes(t->dtype, cols), cols, dst);
        return 1;
    default: return 0;
    }
}

typedef struct slab_job {
    const plan_item *it;
    int64_t r0;
    float *f32;
    uint8_t *out;
    size_t out_rb;
    atomic_int bad;
} slab_job;

static void slab_rows(void *ctx, int64_t begin, int64_t end)
{
    slab_job *j = ctx;
    const int64_t cols = j->it->src->ne[0];
    for (int64_t i = begin; i < end; i++) {
        float *x = j->f32 + (size_t)i * (size_t)cols;
        if (!to_f32(j->it->src, src_row(j->it, j->r0 + i), x) ||
            !kp_quantize_row(j->it->type, x, cols, j->out + (size_t)i * j->out_rb))
            atomic_store(&j->bad, 1);
    }
}

static kp_status write_tensor(conv *c, kp_gguf_writer *w, FILE *f, const plan_item *it)
{
    const kp_tensor *t = it->src;
    const int64_t cols = t->ne[0], rows = kp_tensor_nrows(t);
    const size_t out_rb = kp_dtype_row_bytes(it->type, cols);
    int64_t slab = (int64_t)((size_t)(16u << 20) / ((size_t)cols * 4 + out_rb));
    if (slab < 1)
        slab = 1;
    if (slab > rows)
        slab = rows;
    const size_t fbytes = (size_t)slab * (size_t)cols * 4, obytes = (size_t)slab * out_rb;
    float *f32 = kp_alloc(c->a, fbytes);
    uint8_t *out = kp_alloc(c->a, obytes);
    kp_status st = KP_OK;
    if (!f32 || !out)
        st = kp_fail(KP_ERR_OUT_OF_MEMORY, "out of memory converting '%s'", it->name);
    for (int64_t r0 = 0; r0 < rows && !st; r0 += slab) {
        const int64_t n = rows - r0 < slab ? rows - r0 : slab;
        slab_job j = {it, r0, f32, out, out_rb, 0};
        atomic_init(&j.bad, 0);
        kp_threadpool_for(c->pool, n, 1 + 4096 / (cols + 1), slab_rows, &j);
        if (atomic_load(&j.bad))
            st = kp_fail(KP_ERR_UNSUPPORTED, "tensor '%s' (%s) cannot be converted to %s", it->name,
                         kp_dtype_name(t->dtype), kp_dtype_name(it->type));
        else
            st = kp_gguf_w_data(w, f, out, (size_t)n * out_rb);
    }
    kp_dealloc(c->a, f32, fbytes);
    kp_dealloc(c->a, out, obytes);
    return st ? st : kp_gguf_w_pad(w, f);
}

/* general.name: the input's file or folder name without its extension. */
static void model_name(const char *path, char *buf, size_t cap)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    size_t b = n;
    while (b > 0 && path[b - 1] != '/')
        b--;
    size_t e = n;
    for (size_t i = n; i > b + 1; i--)
        if (path[i - 1] == '.') {
            e = i - 1;
            break;
        }
    snprintf(buf, cap, "%.*s", (int)(e - b), path + b);
}

/* The type most weight-matrix elements get: what general.file_type describes. */
static kp_dtype main_type(const conv *c)
{
    int64_t count[KP_DTYPE_COUNT] = {0};
    for (size_t i = 0; i < c->n_items; i++)
        if (c->items[i].src->ndim >= 2)
            count[c->items[i].type] += kp_tensor_nelems(c->items[i].src);
    kp_dtype best = KP_DTYPE_F32;
    for (int t = 0; t < KP_DTYPE_COUNT; t++)
        if (count[t] > count[best])
            best = (kp_dtype)t;
    return best;
}

static kp_status write_file(conv *c, FILE *f, const char *in_path)
{
    kp_gguf_writer w;
    kp_gguf_writer_init(&w, c->a);
    char name[256];
    model_name(in_path, name, sizeof name);
    kp_status st = kp_convert_write_meta(&w, c->m, c->mx, main_type(c), name);
    for (size_t i = 0; i < c->n_items && !st; i++) {
        const plan_item *it = &c->items[i];
        const size_t rb = kp_dtype_row_bytes(it->type, it->src->ne[0]);
        st = kp_gguf_w_tensor(&w, it->name, it->type, it->src->ndim, it->src->ne,
                              rb * (size_t)kp_tensor_nrows(it->src));
    }
    if (!st)
        st = kp_gguf_w_header(&w, f);
    for (size_t i = 0; i < c->n_items && !st; i++) {
        kp_log(&c->log, KP_LOG_INFO, "%s: %s -> %s", c->items[i].name, kp_dtype_name(c->items[i].src->dtype),
               kp_dtype_name(c->items[i].type));
        st = write_tensor(c, &w, f, &c->items[i]);
    }
    kp_gguf_writer_free(&w);
    return st;
}

kp_status kp_quantize_loaded(kp_model *m, const char *name, const char *out_path, const kp_quantize_params *qp)
{
    conv c;
    memset(&c, 0, sizeof c);
    c.a = kp_allocator_or_default(qp->allocator);
    c.log = (kp_logger){qp->log, qp->log_user, qp->log_level};
    c.m = m;
    if (!(c.mx = kp_quant_mix_find(qp->type)))
        return kp_fail(KP_ERR_INVALID_ARG, "unknown output type '%s' (known: %s)", qp->type ? qp->type : "(null)",
                       kp_quant_mix_names());
    int nt = qp->n_threads;
    if (nt == 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        nt = online > 0 ? (online > 1024 ? 1024 : (int)online) : 1;
    }
    /* a temporary file beside the output, renamed into place only when complete */
    size_t tl = strlen(out_path) + 16;
    char *tmp = kp_alloc(c.a, tl);
    FILE *f = NULL;
    kp_status st = KP_OK;
    if (!tmp) {
        st = kp_fail(KP_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    snprintf(tmp, tl, "%s.kp-partial", out_path);
    if ((st = kp_threadpool_new(c.a, nt, &c.pool)) || (st = make_plan(&c)))
        goto done;
    if (!(f = fopen(tmp, "wb"))) {
        st = kp_fail(KP_ERR_IO, "cannot create '%s': %s", out_path, strerror(errno));
        goto done;
    }
    st = write_file(&c, f, name);
    if (st) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s", kp_error_text());
        st = kp_fail(st, "%s: %s", out_path, msg);
    }
    if (fclose(f) && !st)
        st = kp_fail(KP_ERR_IO, "%s: writing failed: %s", out_path, strerror(errno));
    if (!st && rename(tmp, out_path))
        st = kp_fail(KP_ERR_IO, "cannot move the finished file to '%s': %s", out_path, strerror(errno));
    if (st)
        remove(tmp);
done:
    if (tmp)
        kp_dealloc(c.a, tmp, tl);
    kp_dealloc(c.a, c.items, c.cap_items * sizeof *c.items);
    kp_threadpool_free(c.pool);
    return st;
}

kp_status kp_model_quantize(const char *in_path, const char *out_path, const kp_quantize_params *p)
{
    kp_clear_error();
    if (!in_path || !out_path)
        return kp_fail(KP_ERR_INVALID_ARG, "kp_model_quantize: %s path is NULL", in_path ? "output" : "input");
    kp_quantize_params qp;
    kp_quantize_params_init(&qp);
    if (p) {
        if (p->struct_size < sizeof(size_t) || p->struct_size > sizeof qp)
            return kp_fail(KP_ERR_INVALID_ARG, "kp_quantize_params.struct_size %zu is not one this library knows",
                           p->struct_size);
        memcpy(&qp, p, p->struct_size);
    }
    if (!kp_quant_mix_find(qp.type))
        return kp_fail(KP_ERR_INVALID_ARG, "unknown output type '%s' (known: %s)", qp.type ? qp.type : "(null)",
                       kp_quant_mix_names());
    if (qp.n_threads < 0 || qp.n_threads > 1024)
        return kp_fail(KP_ERR_INVALID_ARG, "n_threads %d is outside [0, 1024]", qp.n_threads);
    kp_model_params mp;
    kp_model_params_init(&mp);
    mp.allocator = qp.allocator;
    mp.log = qp.log;
    mp.log_user = qp.log_user;
    mp.log_level = qp.log_level;
    mp.tokenizer_path = qp.tokenizer_path;
    mp.family = qp.family;
    mp.n_threads = 1; /* the model is only read here; the conversion has its own pool */
    kp_model *m = NULL;
    kp_status st = kp_model_load(in_path, &mp, &m);
    if (st)
        return st;
    st = kp_quantize_loaded(m, in_path, out_path, &qp);
    kp_model_free(m);
    return st;
}
