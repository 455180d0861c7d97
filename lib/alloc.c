/* Allocation through the user's kp_allocator hooks. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define KP_ALIGN 64

static void *default_alloc(void *user, size_t size, size_t alignment)
{
    (void)user;
    void *p = NULL;
    if (alignment < sizeof(void *))
        alignment = sizeof(void *);
    if (posix_memalign(&p, alignment, size ? size : 1) != 0)
        return NULL;
    return p;
}

static void default_free(void *user, void *ptr, size_t size)
{
    (void)user;
    (void)size;
    free(ptr);
}

static const kp_allocator default_allocator = {default_alloc, default_free, NULL};

const kp_allocator *kp_allocator_default(void) { return &default_allocator; }

const kp_allocator *kp_allocator_or_default(const kp_allocator *a)
{
    return (a && a->alloc && a->free) ? a : &default_allocator;
}

void *kp_alloc(const kp_allocator *a, size_t size)
{
    void *p = a->alloc(a->user, size ? size : 1, KP_ALIGN);
    if (!p)
        kp_fail(KP_ERR_OUT_OF_MEMORY, "out of memory allocating %zu bytes", size);
    return p;
}

void *kp_calloc(const kp_allocator *a, size_t count, size_t size)
{
    size_t total;
    if (!kp_mul_ok(count, size, &total)) {
        kp_fail(KP_ERR_OUT_OF_MEMORY, "allocation of %zu x %zu bytes overflows", count, size);
        return NULL;
    }
    void *p = kp_alloc(a, total);
    if (p)
        memset(p, 0, total);
    return p;
}

void kp_dealloc(const kp_allocator *a, void *p, size_t size)
{
    if (p)
        a->free(a->user, p, size ? size : 1);
}

void *kp_realloc(const kp_allocator *a, void *p, size_t old_size, size_t new_size)
{
    void *q = kp_alloc(a, new_size);
    if (!q)
        return NULL;
    if (p) {
        memcpy(q, p, old_size < new_size ? old_size : new_size);
        kp_dealloc(a, p, old_size);
    }
    return q;
}

char *kp_strndup(const kp_allocator *a, const char *s, size_t len)
{
    char *d = kp_alloc(a, len + 1);
    if (!d)
        return NULL;
    if (len)
        memcpy(d, s, len);
    d[len] = 0;
    return d;
}

int kp_mul_ok(size_t a, size_t b, size_t *out)
{
    if (b && a > SIZE_MAX / b)
        return 0;
    *out = a * b;
    return 1;
}

int kp_add_ok(size_t a, size_t b, size_t *out)
{
    if (a > SIZE_MAX - b)
        return 0;
    *out = a + b;
    return 1;
}
