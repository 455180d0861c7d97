/* A fixed pool of worker threads with one operation: a parallel loop over [0, n) in chunks.
 * The calling thread works too, so a pool of n threads starts n - 1 workers. Calls are
 * serialized by a mutex: a backend shared by several sessions runs one loop at a time, each
 * still using every thread. */
#ifndef KP_THREADPOOL_H
#define KP_THREADPOOL_H

#include <stdint.h>

#include "kuiper/kuiper.h"

typedef struct kp_threadpool kp_threadpool;

/* Body of a parallel loop: handles indices [begin, end). */
typedef void (*kp_parallel_fn)(void *ctx, int64_t begin, int64_t end);

/* n_threads >= 1 (the caller counts as one). Failure to start a thread is reported, not fatal. */
kp_status kp_threadpool_new(const kp_allocator *a, int n_threads, kp_threadpool **out);
/* Joins every worker. NULL is fine. */
void kp_threadpool_free(kp_threadpool *p);
int kp_threadpool_size(const kp_threadpool *p);

/* Calls fn on chunks of `grain` indices (the last may be shorter) until [0, n) is covered,
 * spread over the pool; returns when all are done. Which thread runs which chunk varies, so fn
 * must give the same result for an index whichever chunk it lands in. */
void kp_threadpool_for(kp_threadpool *p, int64_t n, int64_t grain, kp_parallel_fn fn, void *ctx);

/* Takes the pool's call lock, for work that must not overlap a parallel loop (an external
 * BLAS call that brings its own threads). */
void kp_threadpool_lock(kp_threadpool *p);
void kp_threadpool_unlock(kp_threadpool *p);

#endif
