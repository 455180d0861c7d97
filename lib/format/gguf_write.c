/* GGUF v3 writer (see gguf_write.h). */
#include <string.h>

#include "gguf_write.h"

#define GGUF_ALIGN 32

void kp_gguf_writer_init(kp_gguf_writer *w, const kp_allocator *a)
{
    memset(w, 0, sizeof *w);
    w->alloc = kp_allocator_or_default(a);
    kp_buf_init(&w->kv, w->alloc);
    kp_buf_init(&w->info, w->alloc);
}

void kp_gguf_writer_free(kp_gguf_writer *w)
{
    kp_buf_free(&w->kv);
    kp_buf_free(&w->info);
}

static void put(kp_gguf_writer *w, kp_buf *b, const void *p, size_t n)
{
    if (!w->err && kp_buf_append(b, p, n))
        w->err = kp_fail(KP_ERR_OUT_OF_MEMORY, "out of memory building GGUF metadata");
}

static void put_u32(kp_gguf_writer *w, kp_buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(w, b, x, 4);
}

static void put_u64(kp_gguf_writer *w, kp_buf *b, uint64_t v)
{
    put_u32(w, b, (uint32_t)v);
    put_u32(w, b, (uint32_t)(v >> 32));
}

static void put_str(kp_gguf_writer *w, kp_buf *b, const char *s, size_t n)
{
    put_u64(w, b, n);
    put(w, b, s, n);
}

static void put_key(kp_gguf_writer *w, const char *key, kp_gguf_vtype t)
{
    put_str(w, &w->kv, key, strlen(key));
    put_u32(w, &w->kv, (uint32_t)t);
    w->n_kv++;
}

static size_t vsize(kp_gguf_vtype t)
{
    switch (t) {
    case KP_GGUF_U8: case KP_GGUF_I8: case KP_GGUF_BOOL: return 1;
    case KP_GGUF_U16: case KP_GGUF_I16: return 2;
    case KP_GGUF_U32: case KP_GGUF_I32: case KP_GGUF_F32: return 4;
    case KP_GGUF_U64: case KP_GGUF_I64: case KP_GGUF_F64: return 8;
    default: return 0;
    }
}

kp_status kp_gguf_w_str(kp_gguf_writer *w, const char *key, const char *s, size_t n)
{
    put_key(w, key, KP_GGUF_STR);
    put_str(w, &w->kv, s, n);
    return w->err;
}

kp_status kp_gguf_w_cstr(kp_gguf_writer *w, const char *key, const char *s)
{
    return kp_gguf_w_str(w, key, s, strlen(s));
}

kp_status kp_gguf_w_scalar(kp_gguf_writer *w, const char *key, kp_gguf_vtype t, const void *v)
{
    const size_t n = vsize(t);
    if (!n)
        return w->err ? w->err : (w->err = kp_fail(KP_ERR_INTERNAL, "GGUF writer: '%s' is not a scalar type", key));
    put_key(w, key, t);
    put(w, &w->kv, v, n);
    return w->err;
}

kp_status kp_gguf_w_u32(kp_gguf_writer *w, const char *key, uint32_t v) { return kp_gguf_w_scalar(w, key, KP_GGUF_U32, &v); }
kp_status kp_gguf_w_i32(kp_gguf_writer *w, const char *key, int32_t v) { return kp_gguf_w_scalar(w, key, KP_GGUF_I32, &v); }
kp_status kp_gguf_w_f32(kp_gguf_writer *w, const char *key, float v) { return kp_gguf_w_scalar(w, key, KP_GGUF_F32, &v); }

kp_status kp_gguf_w_bool(kp_gguf_writer *w, const char *key, int v)
{
    uint8_t b = v != 0;
    return kp_gguf_w_scalar(w, key, KP_GGUF_BOOL, &b);
}

kp_status kp_gguf_w_arr(kp_gguf_writer *w, const char *key, kp_gguf_vtype elem, uint64_t n, const void *data)
{
    const size_t es = vsize(elem);
    size_t bytes;
    if (!es || !kp_mul_ok((size_t)n, es, &bytes))
        return w->err ? w->err : (w->err = kp_fail(KP_ERR_INTERNAL, "GGUF writer: bad array '%s'", key));
    put_key(w, key, KP_GGUF_ARR);
    put_u32(w, &w->kv, (uint32_t)elem);
    put_u64(w, &w->kv, n);
    put(w, &w->kv, data, bytes);
    return w->err;
}

kp_status kp_gguf_w_arr_str(kp_gguf_writer *w, const char *key, uint64_t n, const char *const *s,
                            const uint32_t *lens)
{
    put_key(w, key, KP_GGUF_ARR);
    put_u32(w, &w->kv, KP_GGUF_STR);
    put_u64(w, &w->kv, n);
    for (uint64_t i = 0; i < n && !w->err; i++)
        put_str(w, &w->kv, s[i], lens[i]);
    return w->err;
}

uint32_t kp_gguf_ggml_type_of(kp_dtype t)
{
    switch (t) {
    case KP_DTYPE_F32: return 0;
    case KP_DTYPE_F16: return 1;
    case KP_DTYPE_Q4_0: return 2;
    case KP_DTYPE_Q4_1: return 3;
    case KP_DTYPE_Q5_0: return 6;
    case KP_DTYPE_Q5_1: return 7;
    case KP_DTYPE_Q8_0: return 8;
    case KP_DTYPE_Q4_K: return 12;
    case KP_DTYPE_Q5_K: return 13;
    case KP_DTYPE_Q6_K: return 14;
    case KP_DTYPE_BF16: return 30;
    default: return UINT32_MAX;
    }
}

kp_status kp_gguf_w_tensor(kp_gguf_writer *w, const char *name, kp_dtype type, int ndim, const int64_t *ne,
                           size_t nbytes)
{
    const uint32_t gt = kp_gguf_ggml_type_of(type);
    if (gt == UINT32_MAX || ndim < 1 || ndim > 4)
        return w->err ? w->err
                      : (w->err = kp_fail(KP_ERR_INTERNAL, "GGUF writer: cannot store tensor '%s' (%s, %d dims)", name,
                                          kp_dtype_name(type), ndim));
    put_str(w, &w->info, name, strlen(name));
    put_u32(w, &w->info, (uint32_t)ndim);
    for (int i = 0; i < ndim; i++)
        put_u64(w, &w->info, (uint64_t)ne[i]);
    put_u32(w, &w->info, gt);
    put_u64(w, &w->info, w->data_size);
    w->data_size += ((uint64_t)nbytes + GGUF_ALIGN - 1) / GGUF_ALIGN * GGUF_ALIGN;
    w->n_tensors++;
    return w->err;
}

static kp_status out(kp_gguf_writer *w, FILE *f, const void *p, size_t n)
{
    if (w->err)
        return w->err;
    if (n && fwrite(p, 1, n, f) != n)
        return w->err = kp_fail(KP_ERR_IO, "writing the GGUF file failed (disk full?)");
    return KP_OK;
}

kp_status kp_gguf_w_header(kp_gguf_writer *w, FILE *f)
{
    kp_buf h;
    kp_buf_init(&h, w->alloc);
    put(w, &h, "GGUF", 4);
    put_u32(w, &h, 3);
    put_u64(w, &h, w->n_tensors);
    put_u64(w, &h, w->n_kv);
    kp_status st = out(w, f, h.data, h.len);
    kp_buf_free(&h);
    if (st || (st = out(w, f, w->kv.data, w->kv.len)) || (st = out(w, f, w->info.data, w->info.len)))
        return st;
    static const uint8_t zero[GGUF_ALIGN];
    const size_t used = 24 + w->kv.len + w->info.len;
    return out(w, f, zero, (GGUF_ALIGN - used % GGUF_ALIGN) % GGUF_ALIGN);
}

kp_status kp_gguf_w_data(kp_gguf_writer *w, FILE *f, const void *p, size_t n)
{
    kp_status st = out(w, f, p, n);
    if (!st)
        w->written += n;
    return st;
}

kp_status kp_gguf_w_pad(kp_gguf_writer *w, FILE *f)
{
    static const uint8_t zero[GGUF_ALIGN];
    const size_t pad = (size_t)((GGUF_ALIGN - w->written % GGUF_ALIGN) % GGUF_ALIGN);
    kp_status st = out(w, f, zero, pad);
    if (!st)
        w->written += pad;
    return st;
}
