/* Worker pool. A loop is published by opening a new generation in one atomic state word;
 * workers join it (a compare-and-swap that counts them in) only while it is open, take chunks
 * from a shared counter, and leave. The caller takes chunks too, and once none are left it
 * waits only for workers that joined: a worker the OS has not scheduled yet does not hold the
 * loop up (the machine may be shared), it finds the generation closed and skips it.
 *
 * Idle workers spin briefly (a decode step issues hundreds of small loops, and a futex wake
 * costs more than a small matmul), then sleep on a condition variable. */
#include <pthread.h>
#include <stdatomic.h>

#include "../../lib/internal.h"
#include "threadpool.h"

#if defined(__x86_64__) || defined(__i386__)
#define CPU_RELAX() __builtin_ia32_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

/* Spin iterations before sleeping: some tens of microseconds, the usual gap between two ops of
 * a decode step. */
#define SPIN_LIMIT 2048

/* state = generation << GEN_SHIFT | CLOSED | active workers */
#define ACTIVE_MASK ((uint64_t)0xffff)
#define CLOSED ((uint64_t)1 << 16)
#define GEN_SHIFT 17

struct kp_threadpool {
    const kp_allocator *alloc;
    int n_threads; /* including the caller */
    int n_started; /* workers actually running */
    pthread_t *threads;

    pthread_mutex_t call_lock; /* one loop at a time */

    _Atomic uint64_t state;
    _Atomic int stop;

    pthread_mutex_t mu; /* for sleeping: workers on `wake`, the caller on `done` */
    pthread_cond_t wake, done;
    int sleeping;            /* workers in pthread_cond_wait (under mu) */
    _Atomic int caller_waits; /* the caller sleeps on `done` */

    /* the current loop; stable while it is open */
    kp_parallel_fn fn;
    void *ctx;
    int64_t n, grain;
    _Atomic int64_t next;
};

static uint64_t gen_of(uint64_t s) { return s >> GEN_SHIFT; }

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

/* Counts this worker into generation g if it is still open. */
static int join(kp_threadpool *p, uint64_t g)
{
    uint64_t s = atomic_load(&p->state);
    while (gen_of(s) == g && !(s & CLOSED)) {
        if (atomic_compare_exchange_weak(&p->state, &s, s + 1))
            return 1;
    }
    return 0;
}

static void leave(kp_threadpool *p)
{
    /* seq_cst here and on the caller's caller_waits / state pair: one always sees the other */
    uint64_t before = atomic_fetch_sub(&p->state, 1);
    if ((before & ACTIVE_MASK) == 1 && atomic_load(&p->caller_waits)) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->mu);
    }
}

static void *worker(void *arg)
{
    kp_threadpool *p = arg;
    uint64_t seen = gen_of(atomic_load(&p->state));
    for (;;) {
        uint64_t g;
        int spins = 0;
        while ((g = gen_of(atomic_load_explicit(&p->state, memory_order_acquire))) == seen &&
               !atomic_load_explicit(&p->stop, memory_order_relaxed) && spins < SPIN_LIMIT) {
            CPU_RELAX();
            spins++;
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            p->sleeping++;
            while ((g = gen_of(atomic_load(&p->state))) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->wake, &p->mu);
            p->sleeping--;
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop))
            return NULL;
        seen = g;
        if (join(p, g)) {
            run_chunks(p);
            leave(p);
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
    atomic_init(&p->state, CLOSED);
    if (n_threads > 1) {
        p->threads = kp_calloc(a, (size_t)(n_threads - 1), sizeof *p->threads);
        if (!p->threads) {
            kp_dealloc(a, p, sizeof *p);
            return KP_ERR_OUT_OF_MEMORY;
        }
    }
    int err, inited = 0;
    if (!(err = pthread_mutex_init(&p->call_lock, NULL)) && ++inited &&
        !(err = pthread_mutex_init(&p->mu, NULL)) && ++inited &&
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
        if (p->threads)
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

/* Closes the current generation once no worker is in it. */
static void close_loop(kp_threadpool *p)
{
    int spins = 0;
    for (;;) {
        uint64_t s = atomic_load(&p->state);
        if ((s & ACTIVE_MASK) == 0) {
            if (atomic_compare_exchange_weak(&p->state, &s, s | CLOSED))
                return;
            continue; /* a worker joined (it will find no chunks) or a spurious failure */
        }
        if (spins < SPIN_LIMIT) {
            CPU_RELAX();
            spins++;
            continue;
        }
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->caller_waits, 1);
        while (atomic_load(&p->state) & ACTIVE_MASK)
            pthread_cond_wait(&p->done, &p->mu);
        atomic_store(&p->caller_waits, 0);
        pthread_mutex_unlock(&p->mu);
    }
}

void kp_threadpool_for(kp_threadpool *p, int64_t n, int64_t grain, kp_parallel_fn fn, void *ctx)
{
    if (n <= 0)
        return;
    if (grain < 1)
        grain = 1;
    if (p)
        pthread_mutex_lock(&p->call_lock);
    if (!p || p->n_started == 0 || n <= grain) {
        fn(ctx, 0, n); /* one chunk, or nobody to share with */
        if (p)
            pthread_mutex_unlock(&p->call_lock);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->grain = grain;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    /* Open generation g+1 with no workers; the release orders the loop fields before it. */
    pthread_mutex_lock(&p->mu);
    uint64_t g = gen_of(atomic_load(&p->state)) + 1;
    atomic_store_explicit(&p->state, g << GEN_SHIFT, memory_order_release);
    if (p->sleeping)
        pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);

    run_chunks(p);
    close_loop(p);
    pthread_mutex_unlock(&p->call_lock);
}
