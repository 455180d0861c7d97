/* An allocator for out-of-memory tests: it fails one chosen allocation and counts what is still
 * outstanding, so a test can fail every allocation of a run in turn and check nothing leaks. */
#ifndef KP_FAIL_ALLOC_H
#define KP_FAIL_ALLOC_H

#include <stdlib.h>

#include <kuiper/kuiper.h>

typedef struct fail_alloc {
    long n;         /* allocations asked for so far */
    long fail_at;   /* index (from 0) of the one to refuse; -1 refuses none */
    long live;      /* blocks handed out and not yet freed */
    size_t live_bytes;
} fail_alloc;

static void *fail_alloc_alloc(void *user, size_t size, size_t align)
{
    fail_alloc *f = user;
    if (f->n++ == f->fail_at)
        return NULL;
    void *p = NULL;
    if (posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, size ? size : 1))
        return NULL;
    f->live++;
    f->live_bytes += size;
    return p;
}

static void fail_alloc_free(void *user, void *p, size_t size)
{
    fail_alloc *f = user;
    f->live--;
    f->live_bytes -= size;
    free(p);
}

/* Resets the counters, arms failure at `fail_at` and returns an allocator bound to `f`. */
static inline kp_allocator fail_alloc_arm(fail_alloc *f, long fail_at)
{
    *f = (fail_alloc){0, fail_at, 0, 0};
    return (kp_allocator){fail_alloc_alloc, fail_alloc_free, f};
}

#endif
