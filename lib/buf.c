/* Growable arrays of ids and bytes. */
#include <string.h>

#include "internal.h"

void kp_ivec_init(kp_ivec *v, const kp_allocator *a)
{
    v->data = NULL;
    v->len = v->cap = 0;
    v->alloc = kp_allocator_or_default(a);
}

kp_status kp_ivec_reserve(kp_ivec *v, size_t cap)
{
    if (cap <= v->cap)
        return KP_OK;
    size_t nc = v->cap ? v->cap : 16;
    while (nc < cap)
        nc *= 2;
    int32_t *d = kp_realloc(v->alloc, v->data, v->cap * sizeof *d, nc * sizeof *d);
    if (!d)
        return KP_ERR_OUT_OF_MEMORY;
    v->data = d;
    v->cap = nc;
    return KP_OK;
}

kp_status kp_ivec_push(kp_ivec *v, int32_t x)
{
    if (v->len == v->cap) {
        kp_status st = kp_ivec_reserve(v, v->len + 1);
        if (st)
            return st;
    }
    v->data[v->len++] = x;
    return KP_OK;
}

void kp_ivec_free(kp_ivec *v)
{
    kp_dealloc(v->alloc, v->data, v->cap * sizeof *v->data);
    v->data = NULL;
    v->len = v->cap = 0;
}

void kp_buf_init(kp_buf *b, const kp_allocator *a)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->alloc = kp_allocator_or_default(a);
}

static kp_status buf_reserve(kp_buf *b, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 64;
        while (nc < b->len + n + 1)
            nc *= 2;
        char *d = kp_realloc(b->alloc, b->data, b->cap, nc);
        if (!d)
            return KP_ERR_OUT_OF_MEMORY;
        b->data = d;
        b->cap = nc;
    }
    return KP_OK;
}

kp_status kp_buf_append_own(kp_buf *b, size_t off, size_t n)
{
    if (off > b->len || n > b->len - off)
        return kp_fail(KP_ERR_INTERNAL, "kp_buf_append_own: [%zu, +%zu) is outside %zu bytes", off, n, b->len);
    kp_status st = buf_reserve(b, n);
    if (st)
        return st;
    /* the source is read only after the growth, from the buffer's current address */
    memcpy(b->data + b->len, b->data + off, n);
    b->len += n;
    b->data[b->len] = 0;
    return KP_OK;
}

kp_status kp_buf_append(kp_buf *b, const void *p, size_t n)
{
    kp_status st = buf_reserve(b, n);
    if (st)
        return st;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return KP_OK;
}

void kp_buf_free(kp_buf *b)
{
    kp_dealloc(b->alloc, b->data, b->cap);
    b->data = NULL;
    b->len = b->cap = 0;
}
