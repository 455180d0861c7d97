/* Worker pool. A loop is published by bumping a generation counter; workers spin briefly on it
 * (a decode step issues hundreds of small loops, and a condition-variable wake-up costs more
 * than a small matmul), then sleep on the condition variable so idle pools burn no CPU. */
#include <pthread.h>
#include <stdatomic.h>

#include "../../lib/internal.h"
#include "threadpool.h"

#if defined(__x86_64__) || defined(__i386__)
#define CPU_RELAX() __builtin_ia32_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

/* Spin iterations before sleeping: a few tens of microseconds, about the gap between two
 * matmuls of one decode step. */
#define SPIN_LIMIT 4096

struct kp_threadpool {
    const kp_allocator *alloc;
    int n_threads;   /* including the caller */
    int n_started;   /* workers actually running */
    pthread_t *threads;

    pthread_mutex_t call_lock; /* one loop at a time */

    pthread_mutex_t mu; /* guards the sleeping side of gen / pending / stop */
    pthread_cond_t wake, done;
    _Atomic uint64_t gen;
    _Atomic int pending; /* workers that have not finished the current loop */
    _Atomic int stop;
    _Atomic int sleepers_done; /* the caller is asleep waiting for `pending` */

    /* the current loop */
    kp_parallel_fn fn;
    void *ctx;
    int64_t n, grain;
    _Atomic int64_t next;
};

static void run_chunks(kp_threadpool *p)
{
    for (;;) {
        int64_t b = atomic_fetch_add_explicit(&p->next, p->grain, memory_order_relaxed);
        if (b >= p->n)
            break;
        int64_t e = b + p->grain < p->n ? b + p->grain : p->n;
        p->fn(p->ctx, b, e);
    }
}

static void *worker(void *arg)
{
    kp_threadpool *p = arg;
    uint64_t seen = 0;
    for (;;) {
        uint64_t g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen &&
               !atomic_load_explicit(&p->stop, memory_order_acquire) && spins < SPIN_LIMIT) {
            CPU_RELAX();
            spins++;
        }
        if (g == seen && !atomic_load(&p->stop)) {
            pthread_mutex_lock(&p->mu);
            while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->wake, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop))
            return NULL;
        seen = g;
        run_chunks(p);
        /* seq_cst on both sides (this and the caller's sleepers_done / pending pair) so one of
         * the two always sees the other. */
        if (atomic_fetch_sub(&p->pending, 1) == 1 &&
            atomic_load(&p->sleepers_done)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

static void stop_workers(kp_threadpool *p)
{
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_started; i++)
        pthread_join(p->threads[i], NULL);
    p->n_started = 0;
}

kp_status kp_threadpool_new(const kp_allocator *a, int n_threads, kp_threadpool **out)
{
    *out = NULL;
    if (n_threads < 1)
        return kp_fail(KP_ERR_INVALID_ARG, "thread pool: n_threads %d < 1", n_threads);
    kp_threadpool *p = kp_calloc(a, 1, sizeof *p);
    if (!p)
        return KP_ERR_OUT_OF_MEMORY;
    p->alloc = a;
    p->n_threads = n_threads;
    if (n_threads > 1) {
        p->threads = kp_calloc(a, (size_t)(n_threads - 1), sizeof *p->threads);
        if (!p->threads) {
            kp_dealloc(a, p, sizeof *p);
            return KP_ERR_OUT_OF_MEMORY;
        }
    }
    int err = pthread_mutex_init(&p->call_lock, NULL);
    int inited = 0;
    if (!err && ++inited && !(err = pthread_mutex_init(&p->mu, NULL)) && ++inited &&
        !(err = pthread_cond_init(&p->wake, NULL)) && ++inited &&
        !(err = pthread_cond_init(&p->done, NULL)))
        ++inited;
    if (err) {
        if (inited > 2)
            pthread_cond_destroy(&p->wake);
        if (inited > 1)
            pthread_mutex_destroy(&p->mu);
        if (inited > 0)
            pthread_mutex_destroy(&p->call_lock);
        kp_dealloc(a, p->threads, (size_t)(n_threads - 1) * sizeof *p->threads);
        kp_dealloc(a, p, sizeof *p);
        return kp_fail(KP_ERR_INTERNAL, "thread pool: cannot create a mutex (error %d)", err);
    }
    for (int i = 0; i < n_threads - 1; i++) {
        err = pthread_create(&p->threads[i], NULL, worker, p);
        if (err) {
            kp_threadpool_free(p);
            return kp_fail(KP_ERR_INTERNAL, "thread pool: cannot start thread %d of %d (error %d)",
                           i + 1, n_threads - 1, err);
        }
        p->n_started++;
    }
    *out = p;
    return KP_OK;
}

void kp_threadpool_free(kp_threadpool *p)
{
    if (!p)
        return;
    stop_workers(p);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->call_lock);
    if (p->threads)
        kp_dealloc(p->alloc, p->threads, (size_t)(p->n_threads - 1) * sizeof *p->threads);
    kp_dealloc(p->alloc, p, sizeof *p);
}

int kp_threadpool_size(const kp_threadpool *p) { return p ? p->n_threads : 1; }

void kp_threadpool_lock(kp_threadpool *p) { pthread_mutex_lock(&p->call_lock); }
void kp_threadpool_unlock(kp_threadpool *p) { pthread_mutex_unlock(&p->call_lock); }

void kp_threadpool_for(kp_threadpool *p, int64_t n, int64_t grain, kp_parallel_fn fn, void *ctx)
{
    if (n <= 0)
        return;
    if (grain < 1)
        grain = 1;
    if (!p || p->n_started == 0 || n <= grain) {
        /* Too small to share, or no workers: run inline (still serialized when pooled, so
         * the "one loop at a time" promise holds for callers that rely on it). */
        if (p)
            pthread_mutex_lock(&p->call_lock);
        fn(ctx, 0, n);
        if (p)
            pthread_mutex_unlock(&p->call_lock);
        return;
    }
    pthread_mutex_lock(&p->call_lock);
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->grain = grain;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    atomic_store_explicit(&p->pending, p->n_started, memory_order_relaxed);
    atomic_store_explicit(&p->sleepers_done, 0, memory_order_relaxed);
    /* Publish under the mutex so a worker between its check and its wait cannot miss it. */
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);

    run_chunks(p);

    int spins = 0;
    while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0 && spins < SPIN_LIMIT) {
        CPU_RELAX();
        spins++;
    }
    if (atomic_load_explicit(&p->pending, memory_order_acquire) > 0) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->sleepers_done, 1);
        while (atomic_load(&p->pending) > 0)
            pthread_cond_wait(&p->done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_unlock(&p->call_lock);
}
